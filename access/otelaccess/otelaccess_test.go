package otelaccess_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/access/otelaccess"
	"github.com/keyward/keyward/telemetry"
	"github.com/keyward/keyward/telemetry/anomaly"
)

type recorder struct {
	mu sync.Mutex
	r  []access.Record
}

func (r *recorder) WriteRecord(_ context.Context, rec access.Record) error {
	r.mu.Lock()
	r.r = append(r.r, rec)
	r.mu.Unlock()
	return nil
}

func TestSink(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer tp.Shutdown(context.Background())

	// The analyzer reads the access events; a burst of denials is a finding.
	var findings []anomaly.Finding
	var fmu sync.Mutex
	an, err := anomaly.NewAnalyzer(anomaly.Config{}, anomaly.WithAlert(func(f anomaly.Finding) {
		fmu.Lock()
		findings = append(findings, f)
		fmu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	sink, err := otelaccess.NewSink(telemetry.WithTracerProvider(tp), telemetry.WithSinks(an))
	if err != nil {
		t.Fatal(err)
	}
	audit := &recorder{}
	auditor, err := access.NewAuditor(access.WithSink(audit), access.WithSink(sink), access.WithTraceIDFunc(otelaccess.TraceID))
	if err != nil {
		t.Fatal(err)
	}
	policy, err := access.NewPolicy(access.Config{Roles: []access.Role{{Name: "reader",
		Permissions: []access.Permission{{Actions: []string{"decrypt"}, Resources: []string{"field:users.email"}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	guard, err := access.NewGuard(policy, auditor)
	if err != nil {
		t.Fatal(err)
	}

	ctx, span := tp.Tracer("test").Start(context.Background(), "request")
	mallory := access.WithPrincipal(ctx, access.Principal{UserID: "mallory", Roles: []string{"reader"}})
	if err := guard.Authorize(mallory, "decrypt", access.FieldResource("users", "email")); err != nil {
		t.Fatal(err)
	}
	for range 60 {
		if err := guard.Authorize(mallory, "decrypt", access.FieldResource("users", "ssn")); !errors.Is(err, access.ErrAccessDenied) {
			t.Fatalf("Authorize = %v", err)
		}
	}
	span.End()
	an.Flush()

	ended := spans.Ended()
	if len(ended) != 1 || len(ended[0].Events()) != 61 || ended[0].Events()[1].Name != telemetry.ActionAccess.SpanName() {
		t.Fatalf("span events = %d", len(ended[0].Events()))
	}
	if audit.r[0].TraceID != span.SpanContext().TraceID().String() {
		t.Errorf("audit record trace ID = %q", audit.r[0].TraceID)
	}
	fmu.Lock()
	defer fmu.Unlock()
	found := false
	for _, f := range findings {
		found = found || (f.Kind == anomaly.KindAccessDeniedBurst && f.UserID == "mallory")
	}
	if !found {
		t.Errorf("no access_denied_burst finding for mallory: %+v", findings)
	}
	if otelaccess.TraceID(context.Background()) != "" {
		t.Error("TraceID without a span is not empty")
	}
}
