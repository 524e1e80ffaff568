package anomaly

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/keyward/keyward/telemetry"
)

func TestProcessorLive(t *testing.T) {
	var mu sync.Mutex
	var alerts, reports []Finding
	// All hours are working hours: the test runs at any time of day.
	p, err := NewProcessor(Config{CanaryDataIDs: []string{"patients/0/ssn"}, WorkHours: "0-24"},
		WithAlert(func(f Finding) { mu.Lock(); alerts = append(alerts, f); mu.Unlock() }),
		WithReport(func(f Finding) { mu.Lock(); reports = append(reports, f); mu.Unlock() }))
	if err != nil {
		t.Fatal(err)
	}
	exported := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exported), sdktrace.WithSpanProcessor(p))
	in, err := telemetry.New("github.com/keyward/keyward/keyring", telemetry.WithTracerProvider(tp), telemetry.WithSinks())
	if err != nil {
		t.Fatal(err)
	}
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

	mu.Lock()
	got := kinds(alerts)
	mu.Unlock()
	want := []string{"bulk_read/mallory/100", "bulk_read/eve/3000", "canary_access/bob/1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("alerts = %v, want %v", got, want)
	}
	if len(exported.GetSpans()) != 5 {
		t.Errorf("exporter got %d spans, want 5 (the processor must not interfere)", len(exported.GetSpans()))
	}
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := kinds(reports); fmt.Sprint(got) != "[bulk_read/mallory/150 bulk_read/eve/3000 canary_access/bob/1]" {
		t.Errorf("reports at shutdown = %v", got)
	}
	// After Shutdown, spans are ignored.
	p.OnEnd(nil)
}

func TestProcessorInvalid(t *testing.T) {
	if _, err := NewProcessor(Config{FailureMin: -3}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("NewProcessor(invalid config) = %v, want ErrInvalidConfig", err)
	}
	alert := func(Finding) {}
	if _, err := NewProcessor(Config{}, WithAlert(alert), WithAlert(alert)); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("NewProcessor(two alerts) = %v, want ErrInvalidOption", err)
	}
	if _, err := NewAnalyzer(Config{}, WithReport(nil)); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("NewAnalyzer(WithReport(nil)) = %v, want ErrInvalidOption", err)
	}
}

func TestProcessorAsSinkToo(t *testing.T) {
	p, err := NewProcessor(Config{})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var _ telemetry.Sink = p.Analyzer()
	in, _ := telemetry.New("x", telemetry.WithSinks(p.Analyzer(), telemetry.SinkFunc(func(context.Context, telemetry.Event) error { n++; return nil })))
	in.LogDecryptionEvent(context.Background(), "d", "u")
	if n != 1 || len(p.Analyzer().users) != 1 {
		t.Errorf("sink saw %d events, analyzer %d users", n, len(p.Analyzer().users))
	}
	if err := p.ForceFlush(context.Background()); err != nil {
		t.Error(err)
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}
