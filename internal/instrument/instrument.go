package instrument

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/keyward/keyward/internal/hook"
	"github.com/keyward/keyward/telemetry"
)

// Instrumentation is a telemetry.Instrumentation plus keyward's metric
// instruments.
type Instrumentation struct {
	*telemetry.Instrumentation
	hasSinks  func() bool
	component string // the scope: the recording package's import path
	ops       metric.Int64Counter
	kms       metric.Float64Histogram
	cache     metric.Int64Counter
	kmsOpt    map[telemetry.Outcome]metric.RecordOption

	mu        sync.RWMutex
	opOpts    map[opKey]metric.AddOption
	cacheOpts map[cacheKey]metric.AddOption
}

type cacheKey struct {
	keyring string
	hit     bool
}

type opKey struct {
	action  telemetry.Action
	keyring string
	keyID   uint32
	outcome telemetry.Outcome
}

// maxCachedSets bounds each attribute-set cache; past it, sets are built per
// call (correct, just slower).
const maxCachedSets = 4096

// New returns the Instrumentation of the package whose import path is
// scope. Spans and the KMS and cache metrics are under that scope;
// telemetry.MetricOperations is one instrument under telemetry.ScopeName,
// shared by every package, with scope as its telemetry.AttrComponent. It
// fails as telemetry.New does, and with the meter's error if it refuses an
// instrument.
func New(scope string, opts ...telemetry.Option) (*Instrumentation, error) {
	tel, err := telemetry.New(scope, opts...)
	if err != nil {
		return nil, err
	}
	st := hook.TelemetryStateOf(tel)
	in := &Instrumentation{
		Instrumentation: tel,
		hasSinks:        st.HasSinks,
		component:       scope,
		kmsOpt:          make(map[telemetry.Outcome]metric.RecordOption),
		opOpts:          make(map[opKey]metric.AddOption),
		cacheOpts:       make(map[cacheKey]metric.AddOption),
	}
	shared := st.MeterProvider.Meter(telemetry.ScopeName,
		metric.WithInstrumentationVersion(st.Version), metric.WithSchemaURL(telemetry.SchemaURL))
	meter := tel.Meter()
	if in.ops, err = shared.Int64Counter(telemetry.MetricOperations,
		metric.WithDescription("Values processed by keyward operations."),
		metric.WithUnit("{value}")); err != nil {
		return nil, fmt.Errorf("telemetry: create %s: %w", telemetry.MetricOperations, err)
	}
	if in.kms, err = meter.Float64Histogram(telemetry.MetricKMSDuration,
		metric.WithDescription("Duration of KMS calls."),
		metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)); err != nil {
		return nil, fmt.Errorf("telemetry: create %s: %w", telemetry.MetricKMSDuration, err)
	}
	if in.cache, err = meter.Int64Counter(telemetry.MetricCacheLookups,
		metric.WithDescription("Data-key lookups, served from the cache or not."),
		metric.WithUnit("{lookup}")); err != nil {
		return nil, fmt.Errorf("telemetry: create %s: %w", telemetry.MetricCacheLookups, err)
	}
	for _, o := range []telemetry.Outcome{telemetry.OutcomeOK, telemetry.OutcomeDenied, telemetry.OutcomeError} {
		in.kmsOpt[o] = metric.WithAttributeSet(attribute.NewSet(telemetry.AttrOutcome.String(string(o))))
	}
	return in, nil
}

// HasSinks reports whether events handed to Record or Emit go anywhere, so
// a caller can skip building events nobody reads.
func (in *Instrumentation) HasSinks() bool { return in.hasSinks() }

// KMSLatency returns the telemetry.AttrKMSLatency attribute, in seconds.
func KMSLatency(d time.Duration) attribute.KeyValue {
	return telemetry.AttrKMSLatency.Float64(d.Seconds())
}

// RecordOp adds count values to telemetry.MetricOperations with the
// component, operation, keyring, key ID (0 = none) and outcome as
// attributes.
func (in *Instrumentation) RecordOp(ctx context.Context, action telemetry.Action, keyring string, keyID uint32, outcome telemetry.Outcome, count int64) {
	if count <= 0 || !in.ops.Enabled(ctx) {
		return
	}
	k := opKey{action, keyring, keyID, outcome}
	in.mu.RLock()
	opt, ok := in.opOpts[k]
	in.mu.RUnlock()
	if !ok {
		attrs := []attribute.KeyValue{
			telemetry.AttrComponent.String(in.component),
			telemetry.AttrOperation.String(string(action)),
			telemetry.AttrKeyring.String(keyring),
			telemetry.AttrOutcome.String(string(outcome)),
		}
		if keyID != 0 {
			attrs = append(attrs, telemetry.KeyID(keyID))
		}
		opt = metric.WithAttributeSet(attribute.NewSet(attrs...))
		in.mu.Lock()
		if len(in.opOpts) < maxCachedSets {
			in.opOpts[k] = opt
		}
		in.mu.Unlock()
	}
	in.ops.Add(ctx, count, opt)
}

// MetricsEnabled reports whether the operation counter records anything in
// ctx, so that a hot path skips building a call to RecordOpCache when
// metrics are off.
func (in *Instrumentation) MetricsEnabled(ctx context.Context) bool { return in.ops.Enabled(ctx) }

// RecordOpCache is RecordOp of one value plus, when hit, one cache-hit
// count: the per-value call of a keyring, with a single enabled check for
// both instruments (they come from one meter provider).
func (in *Instrumentation) RecordOpCache(ctx context.Context, action telemetry.Action, keyring string, keyID uint32, outcome telemetry.Outcome, hit bool) {
	if !in.ops.Enabled(ctx) {
		return
	}
	in.RecordOp(ctx, action, keyring, keyID, outcome, 1)
	if hit {
		in.RecordCache(ctx, keyring, true)
	}
}

// RecordKMS records the duration of one KMS call in
// telemetry.MetricKMSDuration.
func (in *Instrumentation) RecordKMS(ctx context.Context, d time.Duration, outcome telemetry.Outcome) {
	if !in.kms.Enabled(ctx) {
		return
	}
	opt, ok := in.kmsOpt[outcome]
	if !ok {
		opt = metric.WithAttributeSet(attribute.NewSet(telemetry.AttrOutcome.String(string(outcome))))
	}
	in.kms.Record(ctx, d.Seconds(), opt)
}

// RecordCache counts one data-key cache lookup of a keyring in
// telemetry.MetricCacheLookups, as a hit or a miss (telemetry.AttrCacheHit).
func (in *Instrumentation) RecordCache(ctx context.Context, keyring string, hit bool) {
	if !in.cache.Enabled(ctx) {
		return
	}
	k := cacheKey{keyring, hit}
	in.mu.RLock()
	opt, ok := in.cacheOpts[k]
	in.mu.RUnlock()
	if !ok {
		opt = metric.WithAttributeSet(attribute.NewSet(telemetry.AttrKeyring.String(keyring), telemetry.AttrCacheHit.Bool(hit)))
		in.mu.Lock()
		if len(in.cacheOpts) < maxCachedSets {
			in.cacheOpts[k] = opt
		}
		in.mu.Unlock()
	}
	in.cache.Add(ctx, 1, opt)
}
