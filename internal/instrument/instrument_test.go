package instrument

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/keyward/keyward/telemetry"
)

const keyringScope = "github.com/keyward/keyward/keyring"

// meter is a meter provider with a manual reader.
type meter struct {
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
}

func newMeter(t *testing.T) *meter {
	m := &meter{reader: sdkmetric.NewManualReader()}
	m.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(m.reader))
	t.Cleanup(func() { _ = m.mp.Shutdown(context.Background()) })
	return m
}

// collect returns the metrics by "scope metric", checking that every scope
// has a version and the schema URL.
func (m *meter) collect(t *testing.T) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, m.reader.Collect(context.Background(), &rm))
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		assert.NotEmpty(t, sm.Scope.Version, "version of scope %s", sm.Scope.Name)
		assert.Equal(t, telemetry.SchemaURL, sm.Scope.SchemaURL, "schema URL of scope %s", sm.Scope.Name)
		for _, md := range sm.Metrics {
			out[sm.Scope.Name+" "+md.Name] = md.Data
		}
	}
	return out
}

func TestRecordMetrics(t *testing.T) {
	m := newMeter(t)
	in, err := New(keyringScope, telemetry.WithMeterProvider(m.mp))
	require.NoError(t, err)
	c := context.Background()
	in.RecordOp(c, telemetry.ActionDecrypt, "pii", 3, telemetry.OutcomeOK, 3)
	in.RecordOp(c, telemetry.ActionDecrypt, "pii", 3, telemetry.OutcomeOK, 2)
	in.RecordOp(c, telemetry.ActionDecrypt, "pii", 0, telemetry.OutcomeError, 1)
	in.RecordKMS(c, 20*time.Millisecond, telemetry.OutcomeOK)
	in.RecordCache(c, "pii", true)
	in.RecordCache(c, "pii", true)
	in.RecordCache(c, "pii", false)

	got := m.collect(t)
	ops, ok := got[telemetry.ScopeName+" "+telemetry.MetricOperations].(metricdata.Sum[int64])
	require.True(t, ok, "%s missing under scope %s, or not an int64 sum: %v", telemetry.MetricOperations, telemetry.ScopeName, got)
	var okSum, errSum int64
	for _, dp := range ops.DataPoints {
		c, _ := dp.Attributes.Value(telemetry.AttrComponent)
		assert.Equal(t, keyringScope, c.AsString(), "component of %v", dp.Attributes)
		o, _ := dp.Attributes.Value(telemetry.AttrOutcome)
		switch o.AsString() {
		case "ok":
			okSum += dp.Value
			k, _ := dp.Attributes.Value(telemetry.AttrKeyID)
			assert.Equal(t, int64(3), k.AsInt64(), "key ID of the ok data point")
		case "error":
			errSum += dp.Value
			assert.False(t, dp.Attributes.HasValue(telemetry.AttrKeyID), "key ID 0 recorded as an attribute")
		}
	}
	assert.Equal(t, int64(5), okSum, "ok values")
	assert.Equal(t, int64(1), errSum, "error values")
	h, ok := got[keyringScope+" "+telemetry.MetricKMSDuration].(metricdata.Histogram[float64])
	require.True(t, ok, "%s missing", telemetry.MetricKMSDuration)
	require.Len(t, h.DataPoints, 1)
	assert.Equal(t, uint64(1), h.DataPoints[0].Count)
	assert.Equal(t, 0.02, h.DataPoints[0].Sum)
	lookups, ok := got[keyringScope+" "+telemetry.MetricCacheLookups].(metricdata.Sum[int64])
	require.True(t, ok, "%s missing", telemetry.MetricCacheLookups)
	byHit := map[bool]int64{}
	for _, dp := range lookups.DataPoints {
		hit, _ := dp.Attributes.Value(telemetry.AttrCacheHit)
		byHit[hit.AsBool()] += dp.Value
	}
	assert.Equal(t, map[bool]int64{true: 2, false: 1}, byHit, "cache lookups by hit")
}

// TestOneOperationsInstrument: two packages count their operations in one
// instrument under one scope, told apart by the component attribute.
func TestOneOperationsInstrument(t *testing.T) {
	m := newMeter(t)
	c := context.Background()
	for _, scope := range []string{keyringScope, "github.com/keyward/keyward/rotation"} {
		in, err := New(scope, telemetry.WithMeterProvider(m.mp))
		require.NoError(t, err)
		in.RecordOp(c, telemetry.ActionDecrypt, "pii", 3, telemetry.OutcomeOK, 1)
	}
	var rm metricdata.ResourceMetrics
	require.NoError(t, m.reader.Collect(c, &rm))
	components := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, md := range sm.Metrics {
			if md.Name != telemetry.MetricOperations {
				continue
			}
			assert.Equal(t, telemetry.ScopeName, sm.Scope.Name, "scope of %s", md.Name)
			for _, dp := range md.Data.(metricdata.Sum[int64]).DataPoints {
				v, _ := dp.Attributes.Value(telemetry.AttrComponent)
				components[v.AsString()] += dp.Value
			}
		}
	}
	assert.Equal(t, map[string]int64{keyringScope: 1, "github.com/keyward/keyward/rotation": 1}, components, "operations by component")
}

func TestHasSinks(t *testing.T) {
	sink := telemetry.SinkFunc(func(context.Context, telemetry.Event) error { return nil })
	with, err := New("x", telemetry.WithSinks(sink))
	require.NoError(t, err)
	assert.True(t, with.HasSinks(), "HasSinks with WithSinks(sink)")
	none, err := New("x", telemetry.WithSinks())
	require.NoError(t, err)
	assert.False(t, none.HasSinks(), "HasSinks with WithSinks()")

	// Without WithSinks, the sinks of the default Instrumentation count, at
	// the time of the call.
	follow, err := New("x")
	require.NoError(t, err)
	def, err := telemetry.New("default", telemetry.WithSinks(sink))
	require.NoError(t, err)
	telemetry.SetDefault(def)
	t.Cleanup(func() { telemetry.SetDefault(nil) })
	assert.True(t, follow.HasSinks(), "HasSinks following a default with a sink")
	telemetry.SetDefault(nil)
	assert.False(t, follow.HasSinks(), "HasSinks following the built-in default")
}

// TestRecordAllocations: the metric calls on a no-op meter do not allocate,
// and RecordOp with a cached attribute set allocates at most once on the SDK.
func TestRecordAllocations(t *testing.T) {
	ctx := context.Background()
	in, err := New("x", telemetry.WithTracerProvider(tracenoop.NewTracerProvider()), telemetry.WithSinks())
	require.NoError(t, err)
	a := testing.AllocsPerRun(1000, func() {
		in.RecordOp(ctx, telemetry.ActionDecrypt, "pii", 3, telemetry.OutcomeOK, 1)
		in.RecordCache(ctx, "pii", true)
		in.RecordKMS(ctx, time.Millisecond, telemetry.OutcomeOK)
	})
	assert.Zero(t, a, "metric calls on a no-op meter allocate %.1f times, want 0", a)

	m := newMeter(t)
	in, err = New(keyringScope, telemetry.WithMeterProvider(m.mp))
	require.NoError(t, err)
	in.RecordOp(ctx, telemetry.ActionDecrypt, "pii", 3, telemetry.OutcomeOK, 1)
	a = testing.AllocsPerRun(1000, func() { in.RecordOp(ctx, telemetry.ActionDecrypt, "pii", 3, telemetry.OutcomeOK, 1) })
	assert.LessOrEqual(t, a, 1.0, "RecordOp with a cached attribute set allocates %.1f times, want at most 1", a)
}

func TestBatch(t *testing.T) {
	ctx := context.Background()
	require.Nil(t, BatchFrom(ctx), "BatchFrom(empty context)")
	b := &Batch{}
	ctx = WithBatch(ctx, b)
	require.Same(t, b, BatchFrom(ctx), "BatchFrom(WithBatch(ctx, b))")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				BatchFrom(ctx).Add(telemetry.ActionDecrypt, "pii", 7, telemetry.OutcomeOK, 1)
			}
			BatchFrom(ctx).Add(telemetry.ActionDecrypt, "pii", 7, telemetry.OutcomeError, 2)
		})
	}
	wg.Wait()
	assert.Equal(t, int64(816), b.Total(), "Total")
	assert.Equal(t, int64(800), b.Count(telemetry.ActionDecrypt, telemetry.OutcomeOK), "Count(decrypt, ok)")
	assert.Equal(t, int64(16), b.Count(telemetry.ActionDecrypt, telemetry.OutcomeError), "Count(decrypt, error)")
	assert.Zero(t, b.Count(telemetry.ActionEncrypt, telemetry.OutcomeOK), "Count(encrypt, ok)")
}

func TestRecordBatch(t *testing.T) {
	m := newMeter(t)
	in, err := New(keyringScope, telemetry.WithMeterProvider(m.mp))
	require.NoError(t, err)
	b := &Batch{}
	b.Add(telemetry.ActionDecrypt, "pii", 3, telemetry.OutcomeOK, 2999)
	b.Add(telemetry.ActionDecrypt, "pii", 3, telemetry.OutcomeError, 1)
	b.Add(telemetry.ActionEncrypt, "pii", 4, telemetry.OutcomeOK, 10)
	in.RecordBatch(context.Background(), b)
	ops, ok := m.collect(t)[telemetry.ScopeName+" "+telemetry.MetricOperations].(metricdata.Sum[int64])
	require.True(t, ok, "%s missing", telemetry.MetricOperations)
	got := map[string]int64{}
	for _, dp := range ops.DataPoints {
		op, _ := dp.Attributes.Value(telemetry.AttrOperation)
		o, _ := dp.Attributes.Value(telemetry.AttrOutcome)
		k, _ := dp.Attributes.Value(telemetry.AttrKeyID)
		got[op.AsString()+"/"+o.AsString()+"/"+k.String()] += dp.Value
	}
	assert.Equal(t, map[string]int64{"decrypt/ok/3": 2999, "decrypt/error/3": 1, "encrypt/ok/4": 10}, got)
}
