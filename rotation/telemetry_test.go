package rotation_test

import (
	"context"
	"strings"
	"testing"

	"github.com/keyward/keyward/rotation"
	"github.com/keyward/keyward/telemetry"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestTelemetry(t *testing.T) {
	ctx := context.Background()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	kr := newKeyring(t)
	m := newMemTarget()
	fill(t, kr, m, 0, 10)
	if _, err := kr.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := rotation.Reencrypt(ctx, kr, m, rotation.WithBatchSize(3),
		rotation.WithTelemetry(telemetry.WithTracerProvider(tp), telemetry.WithMeterProvider(mp)))
	if err != nil || st.Rewritten != 10 {
		t.Fatalf("Reencrypt = %+v, %v", st, err)
	}
	// One span for the run, and one per batch under it.
	var run sdktrace.ReadOnlySpan
	var batches []sdktrace.ReadOnlySpan
	for _, sp := range rec.Ended() {
		switch sp.Name() {
		case rotation.SpanReencrypt:
			require.Nil(t, run, "two %s spans", rotation.SpanReencrypt)
			run = sp
		case rotation.SpanBatch:
			batches = append(batches, sp)
		default:
			t.Errorf("unexpected span %s", sp.Name())
		}
	}
	require.NotNil(t, run, "no %s span", rotation.SpanReencrypt)
	require.Len(t, batches, 4, "10 values in batches of 3")
	var batchRewritten int64
	for _, b := range batches {
		assert.Equal(t, run.SpanContext().SpanID(), b.Parent().SpanID(), "a batch span's parent is the run's span")
		for _, a := range b.Attributes() {
			if a.Key == rotation.AttrRewritten {
				batchRewritten += a.Value.AsInt64()
			}
		}
	}
	assert.Equal(t, int64(10), batchRewritten, "values rewritten in the batch spans")
	attrs := map[string]string{}
	for _, a := range run.Attributes() {
		attrs[string(a.Key)] = a.Value.String()
		if strings.Contains(a.Value.String(), "SECRET") || strings.Contains(a.Value.String(), "kw1.") {
			t.Errorf("attribute %s = %q carries data", a.Key, a.Value.String())
		}
	}
	for k, want := range map[string]string{
		string(rotation.AttrScanned):   "10",
		string(rotation.AttrRewritten): "10",
		string(rotation.AttrFailed):    "0",
		string(telemetry.AttrKeyring):  "test",
		string(telemetry.AttrOutcome):  "ok",
	} {
		if attrs[k] != want {
			t.Errorf("span attribute %s = %q, want %q", k, attrs[k], want)
		}
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			if mt.Name != telemetry.MetricOperations {
				continue
			}
			sum, ok := mt.Data.(metricdata.Sum[int64])
			if !ok {
				t.Fatalf("%s is a %T", mt.Name, mt.Data)
			}
			for _, dp := range sum.DataPoints {
				op, _ := dp.Attributes.Value(telemetry.AttrOperation)
				counts[op.AsString()] += dp.Value
			}
		}
	}
	if counts["decrypt"] != 10 || counts["encrypt"] != 10 {
		t.Errorf("%s = %v, want 10 decrypt and 10 encrypt", telemetry.MetricOperations, counts)
	}
}
