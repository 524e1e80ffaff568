package otelaccess

import (
	"context"

	"go.opentelemetry.io/otel/trace"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/internal/instrument"
	"github.com/keyward/keyward/telemetry"
)

// Scope is the instrumentation scope of the access telemetry: this
// package's import path.
const Scope = "github.com/keyward/keyward/access/otelaccess"

// Sink is an access.Sink that turns audit records into telemetry.
type Sink struct {
	in *instrument.Instrumentation
}

var _ access.Sink = (*Sink)(nil)

// NewSink returns a Sink whose instrumentation takes opts (providers,
// sinks, pseudonymizer; defaults as telemetry.New).
func NewSink(opts ...telemetry.Option) (*Sink, error) {
	in, err := instrument.New(Scope, opts...)
	if err != nil {
		return nil, err
	}
	return &Sink{in: in}, nil
}

// WriteRecord implements access.Sink. It never fails.
func (s *Sink) WriteRecord(ctx context.Context, r access.Record) error {
	outcome := telemetry.OutcomeOK
	if r.Decision != access.DecisionAllow {
		outcome = telemetry.OutcomeDenied
	}
	s.in.RecordOp(ctx, telemetry.ActionAccess, "", 0, outcome, 1)
	e := telemetry.Event{
		Time:      r.Time,
		Action:    telemetry.ActionAccess,
		UserID:    r.UserID,
		DataID:    r.Resource,
		Success:   r.Decision == access.DecisionAllow,
		Attempted: telemetry.Action(r.Action),
	}
	if len(r.Roles) > 0 {
		e.Role = r.Roles[0]
	}
	s.in.Record(ctx, e)
	return nil
}

// TraceID returns the trace ID of the span in ctx, or "" without one: the
// function for access.WithTraceIDFunc.
func TraceID(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		return sc.TraceID().String()
	}
	return ""
}
