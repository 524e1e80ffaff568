package telemetry

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/keyward/keyward/internal/hook"
)

// Option configures an [Instrumentation].
type Option interface {
	apply(*config) error
}

// optionFunc adapts a function to Option.
type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

type config struct {
	set      map[string]bool // options given, to refuse one given twice
	tp       trace.TracerProvider
	mp       metric.MeterProvider
	pseudo   *Pseudonymizer
	pseudoOK bool
	sinks    []Sink
	sinksOK  bool
	classify func(error) string
}

// WithTracerProvider sets the tracer provider. Without it, the global one
// ([otel.GetTracerProvider]) at the time of [New] is used.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) error {
		if tp == nil {
			return fmt.Errorf("%w: nil tracer provider", ErrInvalidOption)
		}
		if err := c.once("WithTracerProvider"); err != nil {
			return err
		}
		c.tp = tp
		return nil
	})
}

// WithMeterProvider sets the meter provider. Without it, the global one
// ([otel.GetMeterProvider]) at the time of [New] is used.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) error {
		if mp == nil {
			return fmt.Errorf("%w: nil meter provider", ErrInvalidOption)
		}
		if err := c.once("WithMeterProvider"); err != nil {
			return err
		}
		c.mp = mp
		return nil
	})
}

// WithPseudonymizer replaces user IDs and data IDs by pseudonyms in
// everything the Instrumentation emits. A nil p turns pseudonymization off
// explicitly. Without this option, the pseudonymizer of the default
// Instrumentation ([SetDefault]) at the time of each call is used.
func WithPseudonymizer(p *Pseudonymizer) Option {
	return optionFunc(func(c *config) error {
		if err := c.once("WithPseudonymizer"); err != nil {
			return err
		}
		c.pseudo, c.pseudoOK = p, true
		return nil
	})
}

// WithSinks sets where [Instrumentation.Record] hands events; calling it
// with no sinks sends events nowhere (only span events are recorded).
// Without this option, the sinks of the default Instrumentation
// ([SetDefault]) at the time of each event are used, so a program configures
// sinks once and every keyward library follows.
func WithSinks(sinks ...Sink) Option {
	return optionFunc(func(c *config) error {
		for _, s := range sinks {
			if s == nil {
				return fmt.Errorf("%w: nil sink", ErrInvalidOption)
			}
		}
		if err := c.once("WithSinks"); err != nil {
			return err
		}
		c.sinks, c.sinksOK = append([]Sink(nil), sinks...), true
		return nil
	})
}

// WithErrorClassifier sets how a failed operation's error becomes the
// low-cardinality [AttrErrorType] value; a library maps its sentinel errors
// to short names there. The default is the Go type name of the innermost
// wrapped error, or "_OTHER" for plain errors.New and fmt.Errorf values. The
// classifier must not return messages, IDs or anything secret.
func WithErrorClassifier(fn func(error) string) Option {
	return optionFunc(func(c *config) error {
		if fn == nil {
			return fmt.Errorf("%w: nil error classifier", ErrInvalidOption)
		}
		if err := c.once("WithErrorClassifier"); err != nil {
			return err
		}
		c.classify = fn
		return nil
	})
}

// once records that an option was given and refuses it a second time: two
// values for one setting contradict each other.
func (c *config) once(name string) error {
	if c.set[name] {
		return fmt.Errorf("%w: %s given twice", ErrInvalidOption, name)
	}
	if c.set == nil {
		c.set = make(map[string]bool)
	}
	c.set[name] = true
	return nil
}

// Instrumentation is what an instrumented library creates once, under its
// own scope name, and then uses for every operation: spans named after
// [Action] values, a meter for the library's own instruments, attribute
// helpers that apply pseudonymization, and event recording for sinks and the
// analyzer.
//
// Its calls are cheap when the providers are no-op: [Instrumentation.Start]
// and [Instrumentation.End] only touch attributes on a recording span. A
// batch (a GORM statement of 1000 rows x 3 fields) is meant to be one span
// with [AttrCount], plus one
// [Instrumentation.Emit] per value for the sinks (no span event per value),
// which does not allocate when the sinks do not (the analyzer does not).
//
// It is safe for concurrent use.
type Instrumentation struct {
	tracer   trace.Tracer
	meter    metric.Meter
	cfg      config
	startOpt map[Action][]trace.SpanStartOption
}

// New returns an Instrumentation whose tracer and meter are named scope,
// which should be the instrumented package's import path (this package's
// own is [ScopeName]). It fails with [ErrInvalidOption] if an option is
// invalid or given twice.
func New(scope string, opts ...Option) (*Instrumentation, error) {
	if scope == "" {
		return nil, fmt.Errorf("%w: empty scope name", ErrInvalidOption)
	}
	var cfg config
	for _, o := range opts {
		if err := o.apply(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.tp == nil {
		cfg.tp = otel.GetTracerProvider()
	}
	if cfg.mp == nil {
		cfg.mp = otel.GetMeterProvider()
	}
	if cfg.classify == nil {
		cfg.classify = ErrorType
	}
	in := &Instrumentation{
		tracer:   cfg.tp.Tracer(scope, trace.WithInstrumentationVersion(version()), trace.WithSchemaURL(SchemaURL)),
		meter:    cfg.mp.Meter(scope, metric.WithInstrumentationVersion(version()), metric.WithSchemaURL(SchemaURL)),
		cfg:      cfg,
		startOpt: make(map[Action][]trace.SpanStartOption),
	}
	for _, a := range []Action{ActionEncrypt, ActionDecrypt, ActionAccess, ActionRotate, ActionRewrap, ActionDestroy} {
		in.startOpt[a] = []trace.SpanStartOption{trace.WithAttributes(AttrOperation.String(string(a)))}
	}
	return in, nil
}

// Tracer returns the tracer, for spans other than the keyward operations.
func (in *Instrumentation) Tracer() trace.Tracer { return in.tracer }

// Meter returns the meter, for instruments of the library's own.
func (in *Instrumentation) Meter() metric.Meter { return in.meter }

// Pseudonymizer returns the pseudonymizer in effect (nil if none).
func (in *Instrumentation) Pseudonymizer() *Pseudonymizer {
	if in.cfg.pseudoOK {
		return in.cfg.pseudo
	}
	if d := defaultInst.Load(); d != nil && d != in {
		return d.cfg.pseudo
	}
	return nil
}

func (in *Instrumentation) sinks() []Sink {
	if in.cfg.sinksOK {
		return in.cfg.sinks
	}
	if d := defaultInst.Load(); d != nil && d != in {
		return d.cfg.sinks
	}
	return nil
}

// Start starts the span of one operation, named after the action
// ([Action.SpanName]) with [AttrOperation] set. attrs are set only if the
// span is recording. End it with [Instrumentation.End].
func (in *Instrumentation) Start(ctx context.Context, action Action, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	ctx, span := in.tracer.Start(ctx, action.SpanName(), in.startOpt[action]...)
	if len(attrs) > 0 && span.IsRecording() {
		span.SetAttributes(attrs...)
	}
	return ctx, span
}

// End ends a span from [Instrumentation.Start]: it sets [AttrOutcome],
// [AttrCount] when count > 1 and, for a non-nil err, [AttrErrorType] and
// an Error status whose description is the error type (never the message,
// which may name data).
func (in *Instrumentation) End(span trace.Span, outcome Outcome, count int, err error) {
	if span.IsRecording() {
		span.SetAttributes(AttrOutcome.String(string(outcome)))
		if count > 1 {
			span.SetAttributes(AttrCount.Int(count))
		}
		switch {
		case err != nil:
			et := in.cfg.classify(err)
			span.SetAttributes(AttrErrorType.String(et))
			span.SetStatus(codes.Error, et)
		case outcome != OutcomeOK:
			span.SetAttributes(AttrErrorType.String(string(outcome)))
			span.SetStatus(codes.Error, string(outcome))
		}
	}
	span.End()
}

// UserID returns the [AttrUserID] attribute, pseudonymized if configured.
func (in *Instrumentation) UserID(id string) attribute.KeyValue {
	return AttrUserID.String(in.Pseudonymizer().UserID(id))
}

// DataID returns the [AttrDataID] attribute, pseudonymized if configured.
func (in *Instrumentation) DataID(id string) attribute.KeyValue {
	return AttrDataID.String(in.Pseudonymizer().DataID(id))
}

// KeyID returns the [AttrKeyID] attribute of a data key ID.
func KeyID(id uint32) attribute.KeyValue { return AttrKeyID.Int64(int64(id)) }

// Record records one usage event: its user and data IDs are pseudonymized
// if configured, it is added as a span event (named [Action.SpanName]) to
// the span in ctx if that span is recording, and it is handed to every sink.
// A zero Time is set to now. Sink errors go to the OpenTelemetry error
// handler ([otel.Handle]); Record never fails the caller's operation.
//
// For the values of a batch, use [Instrumentation.Emit] per value and one
// span with a count: the SDK keeps only the first 128 events of a span.
func (in *Instrumentation) Record(ctx context.Context, e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e = in.Pseudonymizer().Event(e)
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent(e.Action.SpanName(), trace.WithTimestamp(e.Time), trace.WithAttributes(eventAttrs(&e)...))
	}
	in.emit(ctx, &e)
}

// Emit hands one usage event to the sinks only, with no span event: the
// per-value call inside a batch whose span carries the count. IDs are
// pseudonymized if configured and a zero Time is set to now. It does not
// allocate when the sinks do not (the analyzer does not) and no
// pseudonymizer is set.
func (in *Instrumentation) Emit(ctx context.Context, e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if p := in.Pseudonymizer(); p != nil {
		e = p.Event(e)
	}
	in.emit(ctx, &e)
}

func (in *Instrumentation) emit(ctx context.Context, e *Event) {
	for _, s := range in.sinks() {
		if err := s.WriteEvent(ctx, *e); err != nil {
			otel.Handle(fmt.Errorf("telemetry: event sink: %w", err))
		}
	}
}

// eventAttrs returns the span-event attributes of e; fields the span
// already carries are repeated so each span event stands alone.
func eventAttrs(e *Event) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, 8)
	attrs = append(attrs, AttrUserID.String(e.UserID), AttrDataID.String(e.DataID))
	if e.Success {
		attrs = append(attrs, AttrOutcome.String(string(OutcomeOK)))
	} else if e.Action == ActionAccess {
		attrs = append(attrs, AttrOutcome.String(string(OutcomeDenied)))
	} else {
		attrs = append(attrs, AttrOutcome.String(string(OutcomeError)))
	}
	if e.Role != "" {
		attrs = append(attrs, AttrUserRoles.StringSlice([]string{e.Role}))
	}
	if e.KeyID != "" {
		if id, err := strconv.ParseUint(e.KeyID, 10, 32); err == nil {
			attrs = append(attrs, AttrKeyID.Int64(int64(id))) // as on spans
		} else {
			attrs = append(attrs, AttrKeyID.String(e.KeyID))
		}
	}
	if e.Source != "" {
		attrs = append(attrs, AttrSource.String(e.Source))
	}
	if e.Resource != "" {
		attrs = append(attrs, AttrResource.String(e.Resource))
	}
	if e.Client != "" {
		attrs = append(attrs, AttrClient.String(e.Client))
	}
	if e.Attempted != "" {
		attrs = append(attrs, AttrAttempted.String(string(e.Attempted)))
	}
	if e.Count > 1 {
		attrs = append(attrs, AttrCount.Int(e.Count))
	}
	return attrs
}

// LogEncryptionEvent records a successful encryption of dataID by userID;
// see [Instrumentation.Record].
func (in *Instrumentation) LogEncryptionEvent(ctx context.Context, dataID, userID string) {
	in.Record(ctx, Event{Action: ActionEncrypt, UserID: userID, DataID: dataID, Success: true})
}

// LogDecryptionEvent records a successful decryption of dataID by userID;
// see [Instrumentation.Record].
func (in *Instrumentation) LogDecryptionEvent(ctx context.Context, dataID, userID string) {
	in.Record(ctx, Event{Action: ActionDecrypt, UserID: userID, DataID: dataID, Success: true})
}

// ErrorType is the default error classifier (see [WithErrorClassifier]):
// the Go type name of the innermost error of err's Unwrap chain, or
// "_OTHER" when that is a plain errors.New or fmt.Errorf value.
func ErrorType(err error) string {
	if err == nil {
		return ""
	}
	for {
		next := errors.Unwrap(err)
		if next == nil {
			break
		}
		err = next
	}
	t := reflect.TypeOf(err)
	name := t.String()
	switch name {
	case "*errors.errorString", "*fmt.wrapError", "*fmt.wrapErrors", "*errors.joinError":
		return "_OTHER"
	}
	return name
}

// The default Instrumentation: the one global of this package, like the
// OpenTelemetry global providers. It exists because the spec's
// LogEncryptionEvent(ctx, dataID, userID) has no parameter to carry sinks.
var (
	defaultInst    atomic.Pointer[Instrumentation]
	builtinOnce    sync.Once
	builtinDefault *Instrumentation
)

// SetDefault makes in the default Instrumentation: the one the package-level
// [LogEncryptionEvent] and [LogDecryptionEvent] use, and whose sinks and
// pseudonymizer every Instrumentation created without [WithSinks] or
// [WithPseudonymizer] follows. SetDefault(nil) restores the built-in
// default (global providers, no sinks, no pseudonymizer). It is safe to call
// at any time; a program normally calls it once in main.
func SetDefault(in *Instrumentation) { defaultInst.Store(in) }

// Default returns the default Instrumentation (see [SetDefault]).
func Default() *Instrumentation {
	if in := defaultInst.Load(); in != nil {
		return in
	}
	builtinOnce.Do(func() {
		builtinDefault, _ = New(ScopeName) // no options, no error
	})
	return builtinDefault
}

// LogEncryptionEvent records that userID encrypted dataID, through the
// default Instrumentation: a "keyward.encrypt" span event on the span in ctx
// (if recording) and an [Event] to the default sinks (see [SetDefault]).
func LogEncryptionEvent(ctx context.Context, dataID, userID string) {
	Default().LogEncryptionEvent(ctx, dataID, userID)
}

// LogDecryptionEvent records that userID decrypted dataID, through the
// default Instrumentation: a "keyward.decrypt" span event on the span in ctx
// (if recording) and an [Event] to the default sinks (see [SetDefault]).
func LogDecryptionEvent(ctx context.Context, dataID, userID string) {
	Default().LogDecryptionEvent(ctx, dataID, userID)
}

// version is the instrumentation version of every scope: the version of
// this module in the program's build information ("(devel)" when the module
// is the main one, as in its own tests).
var version = sync.OnceValue(func() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	if info.Main.Path == module {
		return info.Main.Version
	}
	for _, d := range info.Deps {
		if d.Path == module {
			if d.Replace != nil && d.Replace.Version != "" {
				return d.Replace.Version
			}
			return d.Version
		}
	}
	return ""
})

// module is the path of this module.
const module = "github.com/keyward/keyward"

// The recording code of keyward's own packages (internal/instrument) reads
// the meter provider and the sinks in effect through hook.
func init() {
	hook.TelemetryStateOf = func(v any) hook.TelemetryState {
		in := v.(*Instrumentation)
		return hook.TelemetryState{MeterProvider: in.cfg.mp, Version: version(), HasSinks: func() bool { return len(in.sinks()) > 0 }}
	}
}
