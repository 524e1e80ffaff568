package keyservice_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/keyward/keyward/adapters/keyservice"
	"github.com/keyward/keyward/telemetry"
	"github.com/keyward/keyward/telemetry/anomaly"
)

type eventLog struct {
	mu sync.Mutex
	ev []telemetry.Event
}

func (l *eventLog) WriteEvent(_ context.Context, e telemetry.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ev = append(l.ev, e)
	return nil
}

func (l *eventLog) all() []telemetry.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]telemetry.Event(nil), l.ev...)
}

// TestTelemetry: the service's spans, metrics and usage events use the
// telemetry package's names, name the principal and the peer address, and
// feed the anomaly analyzer, which sees a principal unwrapping far more
// keys than usual as a bulk read. Nothing secret appears in any of them or
// in the logs.
func TestTelemetry(t *testing.T) {
	spans, reader := tracetest.NewSpanRecorder(), sdkmetric.NewManualReader()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	events := &eventLog{}
	var fmu sync.Mutex
	var findings []anomaly.Finding
	analyzer, err := anomaly.NewAnalyzer(anomaly.Config{}, anomaly.WithAlert(func(f anomaly.Finding) {
		fmu.Lock()
		defer fmu.Unlock()
		findings = append(findings, f)
	}))
	require.NoError(t, err)
	var logs bytes.Buffer
	svc := startService(t, serviceConfig{audit: true, log: slogTo(&logs), opts: []keyservice.ServerOption{
		keyservice.WithTelemetry(telemetry.WithTracerProvider(tp), telemetry.WithMeterProvider(mp), telemetry.WithSinks(events, analyzer)),
		keyservice.WithRateLimit(1e6, 1e6),
	}})
	src := svc.client(t, billing)

	// 150 distinct data keys wrapped, then unwrapped in batches: a bulk read.
	const n = 150
	var deks [][]byte
	items := make([]keyservice.Item, n)
	for i := range items {
		deks = append(deks, randomKey(t))
		items[i] = keyservice.Item{Ref: strconv.Itoa(i), Key: deks[i], AAD: dekAAD("pii", uint32(1000+i))}
	}
	for lo := 0; lo < n; lo += 50 {
		rs, err := src.WrapBatch(ctx, items[lo:lo+50])
		require.NoError(t, err)
		for i, r := range rs {
			require.NoError(t, r.Err)
			items[lo+i].Key = r.Key
		}
	}
	for lo := 0; lo < n; lo += 50 {
		rs, err := src.UnwrapBatch(ctx, items[lo:lo+50])
		require.NoError(t, err)
		for _, r := range rs {
			require.NoError(t, r.Err)
		}
	}
	// One single call, and one denied call.
	_, err = src.Unwrap(ctx, items[0].Key, items[0].AAD)
	require.NoError(t, err)
	_, err = svc.client(t, outsider).Unwrap(ctx, items[0].Key, items[0].AAD)
	require.Error(t, err)

	// Usage events: one per item, with principal, data ID, key ID, source.
	var decrypts, denied int
	for _, e := range events.all() {
		assert.Equal(t, "127.0.0.1", e.Source, "event %+v: source is the peer address", e)
		switch e.Action {
		case telemetry.ActionDecrypt:
			decrypts++
			assert.Equal(t, billing, e.UserID, "event %+v: user", e)
			assert.Equal(t, "pii/"+e.KeyID, e.DataID, "event %+v: data ID is keyring/key ID", e)
			assert.True(t, e.Success, "event %+v: success", e)
		case telemetry.ActionAccess:
			denied++
			assert.Equal(t, outsider, e.UserID, "event %+v: user", e)
			assert.Equal(t, telemetry.ActionDecrypt, e.Attempted, "event %+v: attempted", e)
			assert.False(t, e.Success, "event %+v: success", e)
		}
	}
	assert.Equal(t, n+1, decrypts, "decrypt events")
	assert.Equal(t, 1, denied, "access (denied) events")

	// The analyzer saw the bulk read: one incident (its alert and
	// escalations share an ID).
	fmu.Lock()
	bulk := map[string]anomaly.Finding{}
	for _, f := range findings {
		if f.Kind == anomaly.KindBulkRead {
			bulk[f.ID] = f
		}
	}
	fmu.Unlock()
	require.Len(t, bulk, 1, "bulk_read incidents: %v", findings)
	for _, f := range bulk {
		assert.Equal(t, billing, f.UserID, "bulk_read finding: user")
	}

	// Spans: one per call, named after the action, with count for batches.
	names := map[string]int{}
	for _, s := range spans.Ended() {
		names[s.Name()]++
		attrs := map[string]string{}
		for _, kv := range s.Attributes() {
			attrs[string(kv.Key)] = kv.Value.String()
		}
		assert.Equal(t, "127.0.0.1", attrs[string(telemetry.AttrSource)], "span %s: source", s.Name())
		assert.NotEmpty(t, attrs[string(telemetry.AttrUserID)], "span %s: user", s.Name())
		assertNoSecret(t, fmt.Sprint(attrs)+fmt.Sprint(s.Events()), deks, "span "+s.Name())
	}
	assert.Equal(t, map[string]int{telemetry.ActionEncrypt.SpanName(): 3, telemetry.ActionDecrypt.SpanName(): 5}, names, "spans by name")

	// Metrics: keyward.operations by operation and outcome.
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(ctx, &rm))
	ops := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != telemetry.MetricOperations {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				op, _ := dp.Attributes.Value(telemetry.AttrOperation)
				out, _ := dp.Attributes.Value(telemetry.AttrOutcome)
				ops[op.AsString()+"/"+out.AsString()] += dp.Value
			}
		}
	}
	assert.Equal(t, map[string]int64{"encrypt/ok": n, "decrypt/ok": n + 1, "decrypt/denied": 1}, ops, "keyward.operations")

	// Nothing secret in the logs or the audit log.
	assertNoSecret(t, logs.String(), deks, "server logs")
	assertNoSecret(t, fmt.Sprint(svc.records(t)), deks, "audit records")
}

// assertNoSecret fails if s holds any of keys, raw, in hex or in base64.
func assertNoSecret(t *testing.T, s string, keys [][]byte, where string) {
	t.Helper()
	for _, k := range keys {
		for _, form := range []string{string(k), hex.EncodeToString(k), base64.StdEncoding.EncodeToString(k), base64.RawURLEncoding.EncodeToString(k)} {
			if bytes.Contains([]byte(s), []byte(form)) {
				t.Fatalf("%s hold a data key", where)
			}
		}
	}
}
