package access

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"
)

// Decision is the outcome of an access attempt.
type Decision string

// Decisions.
const (
	DecisionAllow Decision = "allow"
	DecisionDeny  Decision = "deny"
)

// Record is one audited access attempt. It names who, what and why, never
// key material, plaintext or the principal's attributes.
type Record struct {
	Time     time.Time // when; the Auditor sets it when zero
	UserID   string    // the principal's user ID; "" when there was none
	Roles    []string  // the principal's roles
	Action   string    // e.g. "decrypt"
	Resource string    // e.g. "field:users.ssn"; "" when not known
	Decision Decision  // DecisionAllow or DecisionDeny
	Reason   string    // why it was denied; "" when allowed
	TraceID  string    // trace of the operation; the Auditor fills it when empty
}

// Sink receives audit records. WriteRecord must be safe for concurrent use,
// must return an error when the record was not stored, and must neither
// modify nor keep r.Roles (it may be shared with the principal). *AuditLog
// is a Sink; so is the log/slog sink the Auditor uses by default.
type Sink interface {
	WriteRecord(ctx context.Context, r Record) error
}

// Auditor writes audit records to its sinks. By default it fails closed: a
// record that a sink could not store is an error wrapping ErrAuditFailed,
// and Guard then fails the operation it audited. An Auditor is safe for
// concurrent use.
type Auditor struct {
	sinks   []Sink
	traceID func(context.Context) string
	now     func() time.Time
	onError func(error)
}

// String describes the Auditor by its number of sinks, never their
// content (an *AuditLog sink holds its key).
func (a *Auditor) String() string {
	return "access.Auditor{" + strconv.Itoa(len(a.sinks)) + " sinks}"
}

// GoString is String.
func (a *Auditor) GoString() string { return a.String() }

// Format prints String under every verb.
func (a *Auditor) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(a.String())) }

// AuditorOption configures NewAuditor.
type AuditorOption interface {
	apply(*Auditor) error
}

// auditorOptionFunc adapts a function to AuditorOption.
type auditorOptionFunc func(*Auditor) error

func (f auditorOptionFunc) apply(c *Auditor) error { return f(c) }

// WithLogger adds a log/slog sink writing to l: allowed attempts at level
// Info, denied ones at Warn, with the message "access decision". A handler
// that does not enable the level drops the record. Without any WithLogger or
// WithSink option the Auditor logs to slog.Default().
func WithLogger(l *slog.Logger) AuditorOption {
	return auditorOptionFunc(func(a *Auditor) error {
		if l == nil {
			return errors.New("access: WithLogger: nil logger")
		}
		a.sinks = append(a.sinks, slogSink{l})
		return nil
	})
}

// WithSink adds a sink, for example an *AuditLog.
func WithSink(s Sink) AuditorOption {
	return auditorOptionFunc(func(a *Auditor) error {
		if s == nil {
			return errors.New("access: WithSink: nil sink")
		}
		a.sinks = append(a.sinks, s)
		return nil
	})
}

// WithTraceIDFunc sets the function that reads the trace ID of a record from
// its context, for example the OpenTelemetry span context's trace ID. By
// default records carry no trace ID.
func WithTraceIDFunc(f func(context.Context) string) AuditorOption {
	return auditorOptionFunc(func(a *Auditor) error {
		if f == nil {
			return errors.New("access: WithTraceIDFunc: nil function")
		}
		a.traceID = f
		return nil
	})
}

// WithClock sets the clock that stamps records (default time.Now).
func WithClock(now func() time.Time) AuditorOption {
	return auditorOptionFunc(func(a *Auditor) error {
		if now == nil {
			return errors.New("access: WithClock: nil function")
		}
		a.now = now
		return nil
	})
}

// WithFailOpen makes the Auditor fail open: a record that could not be
// stored is passed to onError (as an error wrapping ErrAuditFailed) and the
// audited operation goes on. Use it only where availability matters more
// than a complete audit trail.
func WithFailOpen(onError func(error)) AuditorOption {
	return auditorOptionFunc(func(a *Auditor) error {
		if onError == nil {
			return errors.New("access: WithFailOpen: nil error callback")
		}
		a.onError = onError
		return nil
	})
}

// NewAuditor returns an Auditor writing to the sinks given by WithLogger and
// WithSink, or to slog.Default() when there are none.
func NewAuditor(opts ...AuditorOption) (*Auditor, error) {
	a := &Auditor{now: time.Now}
	for _, o := range opts {
		if err := o.apply(a); err != nil {
			return nil, err
		}
	}
	if len(a.sinks) == 0 {
		a.sinks = []Sink{slogSink{slog.Default()}}
	}
	return a, nil
}

// Record writes r to every sink. It sets r.Time when zero and r.TraceID when
// empty and a trace ID function is configured. It returns an error wrapping
// ErrAuditFailed (and the sinks' errors) when a sink failed, unless the
// Auditor fails open, in which case the error goes to the error callback
// and Record returns nil. A Decision other than DecisionAllow or
// DecisionDeny is an error and is not written.
func (a *Auditor) Record(ctx context.Context, r Record) error {
	if r.Decision != DecisionAllow && r.Decision != DecisionDeny {
		return fmt.Errorf("%w: invalid decision %q", ErrAuditFailed, r.Decision)
	}
	if r.Time.IsZero() {
		r.Time = a.now()
	}
	if r.TraceID == "" && a.traceID != nil {
		r.TraceID = a.traceID(ctx)
	}
	var errs []error
	for _, s := range a.sinks {
		if err := s.WriteRecord(ctx, r); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	err := fmt.Errorf("%w: %w", ErrAuditFailed, errors.Join(errs...))
	if a.onError != nil {
		a.onError(err)
		return nil
	}
	return err
}

// LogAccessAttempt records that userID attempted action, and whether it
// succeeded. It is Record without roles or resource; see Record for the
// error.
func (a *Auditor) LogAccessAttempt(ctx context.Context, userID, action string, success bool) error {
	d := DecisionDeny
	if success {
		d = DecisionAllow
	}
	return a.Record(ctx, Record{UserID: userID, Action: action, Decision: d})
}

// Keys of the attributes the slog sink writes.
const (
	AttrUser     = "user"
	AttrRoles    = "roles"
	AttrAction   = "action"
	AttrResource = "resource"
	AttrDecision = "decision"
	AttrReason   = "reason"
	AttrTraceID  = "trace_id"
)

type slogSink struct{ l *slog.Logger }

func (s slogSink) WriteRecord(ctx context.Context, r Record) error {
	level := slog.LevelInfo
	if r.Decision == DecisionDeny {
		level = slog.LevelWarn
	}
	h := s.l.Handler()
	if !h.Enabled(ctx, level) {
		return nil
	}
	rec := slog.NewRecord(r.Time, level, "access decision", 0)
	rec.AddAttrs(
		slog.String(AttrUser, r.UserID),
		slog.Any(AttrRoles, r.Roles),
		slog.String(AttrAction, r.Action),
		slog.String(AttrResource, r.Resource),
		slog.String(AttrDecision, string(r.Decision)),
	)
	if r.Reason != "" {
		rec.AddAttrs(slog.String(AttrReason, r.Reason))
	}
	if r.TraceID != "" {
		rec.AddAttrs(slog.String(AttrTraceID, r.TraceID))
	}
	return h.Handle(ctx, rec)
}
