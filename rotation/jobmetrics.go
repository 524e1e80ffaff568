package rotation

import (
	"context"
	"time"

	"github.com/keyward/keyward/internal/instrument"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/telemetry"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// leftCounter is what a Job may tell besides its parts: an estimate of the
// rows left to do, for MetricLeft.
type leftCounter interface {
	Left(ctx context.Context) (int64, error)
}

// jobMetrics records a job's metrics.
type jobMetrics struct {
	err     error
	attrs   []attribute.KeyValue // of the run's spans
	set     attribute.Set
	values  metric.Int64Counter
	left    metric.Int64Gauge
	lag     metric.Float64Gauge
	job     Job
	created time.Time // of the primary data key
}

func newJobMetrics(in *instrument.Instrumentation, kr *keyring.Keyring, job Job) *jobMetrics {
	m := &jobMetrics{job: job, attrs: []attribute.KeyValue{telemetry.AttrKeyring.String(kr.Name()), telemetry.KeyID(kr.Primary())}}
	m.set = attribute.NewSet(telemetry.AttrKeyring.String(kr.Name()))
	for _, k := range kr.Keys() {
		if k.ID == kr.Primary() {
			m.created = k.Created
		}
	}
	meter := in.Meter()
	if m.values, m.err = meter.Int64Counter(MetricValues, metric.WithDescription("values a re-encryption job went through, by outcome"), metric.WithUnit("{value}")); m.err != nil {
		return m
	}
	if m.left, m.err = meter.Int64Gauge(MetricLeft, metric.WithDescription("rows a re-encryption job has left to do (estimate)"), metric.WithUnit("{row}")); m.err != nil {
		return m
	}
	m.lag, m.err = meter.Float64Gauge(MetricLag, metric.WithDescription("age of the primary data key a running re-encryption job re-encrypts to"), metric.WithUnit("s"))
	return m
}

// batch records a batch's counts, the rows left and the lag.
func (m *jobMetrics) batch(ctx context.Context, d Stats) {
	if !m.values.Enabled(ctx) {
		return
	}
	for _, o := range []struct {
		outcome string
		n       int64
	}{{OutcomeRewritten, d.Rewritten}, {OutcomeCurrent, d.Current}, {OutcomeSkipped, d.Skipped}, {OutcomeFailed, d.Failed}} {
		if o.n > 0 {
			m.values.Add(ctx, o.n, metric.WithAttributeSet(m.set), metric.WithAttributes(telemetry.AttrOutcome.String(o.outcome)))
		}
	}
	if lc, ok := m.job.(leftCounter); ok {
		if n, err := lc.Left(ctx); err == nil {
			m.left.Record(ctx, n, metric.WithAttributeSet(m.set))
		}
	}
	if !m.created.IsZero() {
		m.lag.Record(ctx, time.Since(m.created).Seconds(), metric.WithAttributeSet(m.set))
	}
}
