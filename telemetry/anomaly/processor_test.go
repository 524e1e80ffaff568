package anomaly

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"

	"github.com/keyward/keyward/telemetry"
)

// collector gathers the findings handed to alert and report functions.
type collector struct {
	mu              sync.Mutex
	alerts, reports []Finding
}

func (c *collector) alert(f Finding)  { c.mu.Lock(); c.alerts = append(c.alerts, f); c.mu.Unlock() }
func (c *collector) report(f Finding) { c.mu.Lock(); c.reports = append(c.reports, f); c.mu.Unlock() }

func TestProcessorLive(t *testing.T) {
	var got collector
	// All hours are working hours: the test runs at any time of day.
	p, err := NewProcessor(Config{CanaryDataIDs: []string{"patients/0/ssn"}, WorkHours: "0-24"}, WithAlert(got.alert), WithReport(got.report))
	require.NoError(t, err)
	exported := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exported), sdktrace.WithSpanProcessor(p))
	in, err := telemetry.New("github.com/keyward/keyward/keyring", telemetry.WithTracerProvider(tp), telemetry.WithSinks())
	require.NoError(t, err)
	ctx := context.Background()

	// Ordinary use: a few decrypts in a request span, none alarming.
	c, span := tp.Tracer("app").Start(ctx, "GET /patients")
	for i := range 5 {
		in.LogDecryptionEvent(c, fmt.Sprintf("patients/%d/dob", i+1), "alice")
	}
	span.End()
	// Spans that are not keyward's cost nothing and yield nothing.
	_, span = tp.Tracer("app").Start(ctx, "SELECT 1")
	span.End()

	// Exfiltration: one user reads 150 distinct records through the
	// spec's logging function, in one request span (the SDK keeps 128 span
	// events and counts the rest as dropped) ...
	c, span = tp.Tracer("app").Start(ctx, "GET /export")
	for i := range 150 {
		in.LogDecryptionEvent(c, fmt.Sprintf("patients/%d/ssn", 100+i), "mallory")
	}
	span.End()
	// ... another in one GORM-like batch span of 3000 values ...
	_, span = in.Start(ctx, telemetry.ActionDecrypt, in.UserID("eve"), in.DataID("patients/*/ssn"))
	in.End(span, telemetry.OutcomeOK, 3000, nil)
	// ... and someone touches the canary.
	_, span = in.Start(ctx, telemetry.ActionDecrypt, in.UserID("bob"), in.DataID("patients/0/ssn"))
	in.End(span, telemetry.OutcomeOK, 1, nil)

	// The processor holds events for ReorderDelay to observe them in time
	// order; ForceFlush observes them now.
	require.NoError(t, tp.ForceFlush(ctx))
	got.mu.Lock()
	// mallory's incident is raised at 100 distinct IDs and escalated to
	// medium at 150 (the 128 span events and the 22 dropped ones).
	assert.Equal(t, []string{"bulk_read/mallory/100", "bulk_read/mallory/150", "bulk_read/eve/3000", "canary_access/bob/1"}, kinds(got.alerts), "alerts")
	require.Len(t, got.alerts, 4)
	assert.Equal(t, got.alerts[0].ID, got.alerts[1].ID, "an escalation carries the incident's ID")
	assert.Equal(t, []Severity{SeverityLow, SeverityMedium}, []Severity{got.alerts[0].Severity, got.alerts[1].Severity}, "severities of mallory's alerts")
	got.mu.Unlock()
	assert.Len(t, exported.GetSpans(), 5, "the processor must not interfere with the exporter")
	require.NoError(t, tp.Shutdown(ctx))
	got.mu.Lock()
	defer got.mu.Unlock()
	assert.Equal(t, []string{"bulk_read/mallory/150", "bulk_read/eve/3000", "canary_access/bob/1"}, kinds(got.reports), "reports at shutdown")
	// After Shutdown, spans are ignored.
	p.OnEnd(nil)
}

func TestProcessorInvalid(t *testing.T) {
	_, err := NewProcessor(Config{FailureMin: -3})
	assert.ErrorIs(t, err, ErrInvalidConfig, "NewProcessor(invalid config)")
	alert := func(Finding) {}
	_, err = NewProcessor(Config{}, WithAlert(alert), WithAlert(alert))
	assert.ErrorIs(t, err, ErrInvalidOption, "NewProcessor(two alerts)")
	_, err = NewAnalyzer(Config{}, WithReport(nil))
	assert.ErrorIs(t, err, ErrInvalidOption, "NewAnalyzer(WithReport(nil))")
}

func TestProcessorAsSinkToo(t *testing.T) {
	p, err := NewProcessor(Config{})
	require.NoError(t, err)
	var n int
	var _ telemetry.Sink = p.Analyzer()
	in, err := telemetry.New("x", telemetry.WithSinks(p.Analyzer(), telemetry.SinkFunc(func(context.Context, telemetry.Event) error { n++; return nil })))
	require.NoError(t, err)
	in.LogDecryptionEvent(context.Background(), "d", "u")
	assert.Equal(t, 1, n, "events the other sink saw")
	assert.Len(t, p.Analyzer().users, 1, "identities the analyzer saw")
	assert.NoError(t, p.ForceFlush(context.Background()))
	assert.NoError(t, p.Shutdown(context.Background()))
	assert.NoError(t, p.Shutdown(context.Background()), "a second Shutdown")
}

// TestProcessorAgreesWithDetect: the same events, recorded as span events
// through the OpenTelemetry SDK, give the live processor the findings that
// Detect gives. The scenario has every pattern, so every detector takes
// part, and the live alerts of each incident end in its final finding.
// (That Detect over an export of such spans equals Detect over the events
// is checked on the monitoring example's real export, and the event
// conversion of the readers in the telemetry package's tests.)
func TestProcessorAgreesWithDetect(t *testing.T) {
	gc := smallScenario
	gc.services = 0 // fewer events: each is a span through the SDK
	sc := generate(gc)
	want := Detect(sc.events, sc.cfg)
	require.NotEmpty(t, want)

	var got collector
	p, err := NewProcessor(sc.cfg, WithAlert(got.alert), WithReport(got.report))
	require.NoError(t, err)
	res := resource.NewSchemaless(semconv.ServiceName("clinic-web"))
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSpanProcessor(p))
	in, err := telemetry.New("example.com/clinic", telemetry.WithTracerProvider(tp), telemetry.WithSinks())
	require.NoError(t, err)
	tracer := tp.Tracer("example.com/clinic")
	ctx := context.Background()
	// A request span per run of events of one identity (at most 100, within
	// an hour), each event a span event.
	for i := 0; i < len(sc.events); {
		j := i + 1
		for j < len(sc.events) && j-i < 100 && sc.events[j].UserID == sc.events[i].UserID && sc.events[j].Time.Sub(sc.events[i].Time) < time.Hour {
			j++
		}
		c, span := tracer.Start(ctx, "request")
		for _, e := range sc.events[i:j] {
			in.Record(c, e)
		}
		span.End()
		i = j
	}
	require.NoError(t, tp.Shutdown(ctx))

	got.mu.Lock()
	defer got.mu.Unlock()
	sortFindings(got.reports)
	assert.Equal(t, want, got.reports, "live processor's final findings vs Detect over %d events", len(sc.events))
	// Every alert belongs to a final finding, and the last alert of an
	// incident has the final severity.
	final := map[string]Finding{}
	for _, f := range got.reports {
		final[f.ID] = f
	}
	last := map[string]Finding{}
	for _, a := range got.alerts {
		f, ok := final[a.ID]
		if assert.True(t, ok, "alert %v has no final finding", a) {
			assert.LessOrEqual(t, a.Events, f.Events, "alert %v counts more than its final finding", a)
		}
		last[a.ID] = a
	}
	assert.Len(t, last, len(final), "incidents alerted vs reported")
	for id, a := range last {
		assert.Equal(t, final[id].Severity, a.Severity, "severity of the last alert of %s", id)
	}
}
