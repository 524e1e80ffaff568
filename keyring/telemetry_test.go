package keyring_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/cipher"
	"github.com/keyward/keyward/internal/instrument"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/telemetry"
)

type otelSDK struct {
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
	events *eventLog
}

type eventLog struct {
	mu sync.Mutex
	ev []telemetry.Event
}

func (l *eventLog) WriteEvent(_ context.Context, e telemetry.Event) error {
	l.mu.Lock()
	l.ev = append(l.ev, e)
	l.mu.Unlock()
	return nil
}

func (l *eventLog) all() []telemetry.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]telemetry.Event(nil), l.ev...)
}

func newOtelSDK(t *testing.T) *otelSDK {
	s := &otelSDK{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader(), events: &eventLog{}}
	s.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(s.spans))
	s.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(s.reader))
	t.Cleanup(func() {
		s.tp.Shutdown(context.Background())
		s.mp.Shutdown(context.Background())
	})
	return s
}

func (s *otelSDK) options() []keyring.Option {
	return []keyring.Option{keyring.WithTelemetry(telemetry.WithTracerProvider(s.tp)), keyring.WithTelemetry(telemetry.WithMeterProvider(s.mp)),
		keyring.WithTelemetry(telemetry.WithSinks(s.events))}
}

// ops sums keyward.operations by "operation/outcome".
func (s *otelSDK) ops(t *testing.T) map[string]int64 {
	var rm metricdata.ResourceMetrics
	if err := s.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				continue
			}
			for _, dp := range sum.DataPoints {
				op, _ := dp.Attributes.Value(telemetry.AttrOperation)
				o, _ := dp.Attributes.Value(telemetry.AttrOutcome)
				key := m.Name
				if op.AsString() != "" {
					key += ":" + op.AsString() + "/" + o.AsString()
				}
				if hit, ok := dp.Attributes.Value(telemetry.AttrCacheHit); ok && !hit.AsBool() {
					key += ":miss"
				}
				out[key] += dp.Value
			}
		}
	}
	return out
}

// dump renders every span (name, attributes, events), metric data point and
// event as text, for scans.
func (s *otelSDK) dump(t *testing.T) string {
	var b strings.Builder
	for _, sp := range s.spans.Ended() {
		fmt.Fprintf(&b, "span %s %v %v\n", sp.Name(), sp.Attributes(), sp.Status())
		for _, e := range sp.Events() {
			fmt.Fprintf(&b, "  event %s %v\n", e.Name, e.Attributes)
		}
	}
	var rm metricdata.ResourceMetrics
	if err := s.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	mb, _ := json.Marshal(rm)
	b.Write(mb)
	for _, e := range s.events.all() {
		eb, _ := json.Marshal(e)
		b.Write(eb)
	}
	return b.String()
}

func spanAttrs(sp sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range sp.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

func TestTelemetry(t *testing.T) {
	s := newOtelSDK(t)
	src, store := newSource(t), keyring.NewMemoryStore()
	w := open(t, "pii", src, store)
	old, _ := w.EncryptString(ctx, "old value")
	if _, err := w.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	kr := open(t, "pii", src, store, s.options()...)
	alice := access.WithPrincipal(ctx, access.Principal{UserID: "alice", Roles: []string{"analyst"}})

	// Untraced calls: metrics, no spans.
	tok, err := kr.EncryptString(alice, "v")
	if err != nil {
		t.Fatal(err)
	}
	for _, sp := range s.spans.Ended() {
		if sp.Name() != keyring.SpanUnwrap { // New warms the primary: one unwrap span
			t.Fatalf("span %s for an untraced call", sp.Name())
		}
	}
	// Traced calls: one child span each.
	tctx, parent := s.tp.Tracer("test").Start(alice, "request")
	if _, err := kr.DecryptString(tctx, tok); err != nil {
		t.Fatal(err)
	}
	if _, err := kr.DecryptString(tctx, old); err != nil { // cold key: one unwrap
		t.Fatal(err)
	}
	bad := tok[:len(tok)-3] + "AAA"
	if _, err := kr.DecryptString(tctx, bad); !errors.Is(err, keyring.ErrDecrypt) {
		t.Fatalf("tampered: %v", err)
	}
	parent.End()

	var decrypts, unwraps []sdktrace.ReadOnlySpan
	for _, sp := range s.spans.Ended() {
		switch sp.Name() {
		case telemetry.ActionDecrypt.SpanName():
			decrypts = append(decrypts, sp)
		case keyring.SpanUnwrap:
			unwraps = append(unwraps, sp)
		}
	}
	if len(decrypts) != 3 || len(unwraps) != 2 {
		t.Fatalf("%d decrypt spans and %d unwrap spans, want 3 and 2 (warm-up, cold key)", len(decrypts), len(unwraps))
	}
	unwraps = unwraps[1:]
	a := spanAttrs(decrypts[0])
	if a[telemetry.AttrKeyring].AsString() != "pii" || a[telemetry.AttrUserID].AsString() != "alice" ||
		a[telemetry.AttrOutcome].AsString() != "ok" || !a[telemetry.AttrCacheHit].AsBool() || a[telemetry.AttrKeyID].AsInt64() != int64(kr.Primary()) {
		t.Errorf("decrypt span attributes = %v", decrypts[0].Attributes())
	}
	if a := spanAttrs(decrypts[1]); a[telemetry.AttrCacheHit].AsBool() {
		t.Error("a cold decrypt is marked as a cache hit")
	}
	if a := spanAttrs(decrypts[2]); a[telemetry.AttrOutcome].AsString() != "error" || a[telemetry.AttrErrorType].AsString() == "" {
		t.Errorf("failed decrypt span = %v", decrypts[2].Attributes())
	}
	if u := unwraps[0]; u.Parent().TraceID() != parent.SpanContext().TraceID() || spanAttrs(u)[telemetry.AttrKMSLatency].AsFloat64() <= 0 || spanAttrs(u)[keyring.AttrKEK].AsString() != src.ID() {
		t.Errorf("unwrap span = %v (trace %v)", u.Attributes(), u.Parent().TraceID())
	}

	// Inside a batch: no spans, counts only.
	before := len(s.spans.Ended())
	b := &instrument.Batch{}
	bctx := instrument.WithBatch(tctx, b)
	for range 10 {
		if _, err := kr.DecryptString(bctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.spans.Ended()) != before || b.Count(telemetry.ActionDecrypt, telemetry.OutcomeOK) != 10 {
		t.Fatalf("batch: %d new spans, %d counted", len(s.spans.Ended())-before, b.Count(telemetry.ActionDecrypt, telemetry.OutcomeOK))
	}

	// Key management.
	if _, err := kr.Rotate(alice); err != nil {
		t.Fatal(err)
	}
	ops := s.ops(t)
	for k, want := range map[string]int64{
		telemetry.MetricOperations + ":encrypt/ok": 1, telemetry.MetricOperations + ":decrypt/ok": 2,
		telemetry.MetricOperations + ":decrypt/error": 1, telemetry.MetricCacheLookups + ":miss": 2,
	} {
		if ops[k] != want {
			t.Errorf("%s = %d, want %d (all: %v)", k, ops[k], want, ops)
		}
	}
	kinds := map[string]int{}
	for _, e := range s.events.all() {
		kinds[string(e.Action)+fmt.Sprint(e.Success)]++
		if e.UserID != "alice" {
			t.Errorf("event without the principal: %+v", e)
		}
	}
	// With a sink: every untraced and traced operation, the failure, the rotation.
	if kinds["decrypttrue"] != 2 || kinds["decryptfalse"] != 1 || kinds["encrypttrue"] != 1 || kinds["rotatetrue"] != 1 {
		t.Errorf("events = %v", kinds)
	}
}

// TestTelemetryNeverCarriesSecrets plants a canary plaintext, uses it as
// plaintext and associated data, and scans every exported span, metric and
// event for it, for the key material and for the tokens.
func TestTelemetryNeverCarriesSecrets(t *testing.T) {
	s := newOtelSDK(t)
	src := newSource(t)
	kr := open(t, "pii", src, keyring.NewMemoryStore(), s.options()...)
	const canary = "CANARY-7f3a9c1e-plaintext"
	ctx, span := s.tp.Tracer("test").Start(access.WithPrincipal(ctx, access.Principal{UserID: "u1"}), "request")
	tok, err := kr.EncryptText(ctx, canary, []byte(canary+"-aad"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kr.DecryptText(ctx, tok, []byte(canary+"-aad")); err != nil {
		t.Fatal(err)
	}
	_, _ = kr.DecryptText(ctx, tok, []byte("wrong")) // a failure, with its error
	dk, _ := kr.DeriveKey(ctx, "x")
	if _, err := kr.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	span.End()
	out := s.dump(t)
	raw, _ := cipher.DecodeText(tok)
	for what, secret := range map[string]string{
		"plaintext": canary, "token": tok[4:24], "ciphertext": fmt.Sprintf("%x", raw[20:30]),
		"derived key": fmt.Sprintf("%x", dk.Bytes()[:8]),
	} {
		if strings.Contains(out, secret) {
			t.Errorf("telemetry output contains the %s", what)
		}
	}
	if !strings.Contains(out, "keyward.decrypt") || !strings.Contains(out, "u1") {
		t.Fatalf("the scan saw no keyward telemetry:\n%s", out)
	}
}
