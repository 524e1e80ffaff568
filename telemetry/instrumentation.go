package telemetry

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	noopmetric "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
)

// Option configures an [Instrumentation].
type Option func(*config) error

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
	return func(c *config) error {
		if tp == nil {
			return fmt.Errorf("%w: nil tracer provider", ErrInvalidOption)
		}
		if err := c.once("WithTracerProvider"); err != nil {
			return err
		}
		c.tp = tp
		return nil
	}
}

// WithMeterProvider sets the meter provider. Without it, the global one
// ([otel.GetMeterProvider]) at the time of [New] is used.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) error {
		if mp == nil {
			return fmt.Errorf("%w: nil meter provider", ErrInvalidOption)
		}
		if err := c.once("WithMeterProvider"); err != nil {
			return err
		}
		c.mp = mp
		return nil
	}
}

// WithPseudonymizer replaces user IDs and data IDs by pseudonyms in
// everything the Instrumentation emits. A nil p turns pseudonymization off
// explicitly. Without this option, the pseudonymizer of the default
// Instrumentation ([SetDefault]) at the time of each call is used.
func WithPseudonymizer(p *Pseudonymizer) Option {
	return func(c *config) error {
		if err := c.once("WithPseudonymizer"); err != nil {
			return err
		}
		c.pseudo, c.pseudoOK = p, true
		return nil
	}
}

// WithSinks sets where [Instrumentation.Record] hands events; calling it
// with no sinks sends events nowhere (only span events are recorded).
// Without this option, the sinks of the default Instrumentation
// ([SetDefault]) at the time of each event are used, so a program configures
// sinks once and every keyward library follows.
func WithSinks(sinks ...Sink) Option {
	return func(c *config) error {
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
	}
}

// WithErrorClassifier sets how a failed operation's error becomes the
// low-cardinality [AttrErrorType] value; a library maps its sentinel errors
// to short names there. The default is the Go type name of the innermost
// wrapped error, or "_OTHER" for plain errors.New and fmt.Errorf values. The
// classifier must not return messages, IDs or anything secret.
func WithErrorClassifier(fn func(error) string) Option {
	return func(c *config) error {
		if fn == nil {
			return fmt.Errorf("%w: nil error classifier", ErrInvalidOption)
		}
		if err := c.once("WithErrorClassifier"); err != nil {
			return err
		}
		c.classify = fn
		return nil
	}
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
// [Action] values, pre-built metric instruments, attribute helpers that
// apply pseudonymization, and event recording for sinks and the analyzer.
//
// Its calls are cheap when the providers are no-op: [Instrumentation.Start]
// and [Instrumentation.End] only touch attributes on a recording span, and
// the Record* metric calls return at once for a disabled instrument and
// reuse cached attribute sets otherwise. A batch (a GORM statement of 1000
// rows x 3 fields) is meant to be one span with [AttrCount], plus one
// [Instrumentation.Emit] per value for the sinks (no span event per value),
// which does not allocate when the sinks do not (the analyzer does not).
//
// It is safe for concurrent use.
type Instrumentation struct {
	tracer   trace.Tracer
	meter    metric.Meter
	ops      metric.Int64Counter
	kms      metric.Float64Histogram
	hits     metric.Int64Counter
	misses   metric.Int64Counter
	cfg      config
	startOpt map[Action][]trace.SpanStartOption
	kmsOpt   map[Outcome]metric.RecordOption

	mu        sync.RWMutex
	opOpts    map[opKey]metric.AddOption
	cacheOpts map[string]metric.AddOption
}

type opKey struct {
	action  Action
	keyring string
	keyID   uint32
	outcome Outcome
}

// maxCachedSets bounds each attribute-set cache; past it, sets are built per
// call (correct, just slower).
const maxCachedSets = 4096

// New returns an Instrumentation whose tracer and meter are named scope,
// which should be the instrumented package's import path (this package's
// own is [ScopeName]). It fails with [ErrInvalidOption] if an option is
// invalid or given twice, and with the meter's error if it refuses an
// instrument.
func New(scope string, opts ...Option) (*Instrumentation, error) {
	if scope == "" {
		return nil, fmt.Errorf("%w: empty scope name", ErrInvalidOption)
	}
	var cfg config
	for _, o := range opts {
		if err := o(&cfg); err != nil {
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
		tracer:    cfg.tp.Tracer(scope, trace.WithSchemaURL(SchemaURL)),
		meter:     cfg.mp.Meter(scope, metric.WithSchemaURL(SchemaURL)),
		cfg:       cfg,
		startOpt:  make(map[Action][]trace.SpanStartOption),
		kmsOpt:    make(map[Outcome]metric.RecordOption),
		opOpts:    make(map[opKey]metric.AddOption),
		cacheOpts: make(map[string]metric.AddOption),
	}
	var err error
	if in.ops, err = in.meter.Int64Counter(MetricOperations,
		metric.WithDescription("Values processed by keyward operations."),
		metric.WithUnit("{value}")); err != nil {
		return nil, fmt.Errorf("telemetry: create %s: %w", MetricOperations, err)
	}
	if in.kms, err = in.meter.Float64Histogram(MetricKMSDuration,
		metric.WithDescription("Duration of KMS calls."),
		metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)); err != nil {
		return nil, fmt.Errorf("telemetry: create %s: %w", MetricKMSDuration, err)
	}
	if in.hits, err = in.meter.Int64Counter(MetricCacheHits,
		metric.WithDescription("Data-key lookups served from the cache."),
		metric.WithUnit("{lookup}")); err != nil {
		return nil, fmt.Errorf("telemetry: create %s: %w", MetricCacheHits, err)
	}
	if in.misses, err = in.meter.Int64Counter(MetricCacheMisses,
		metric.WithDescription("Data-key lookups that had to unwrap the key."),
		metric.WithUnit("{lookup}")); err != nil {
		return nil, fmt.Errorf("telemetry: create %s: %w", MetricCacheMisses, err)
	}
	for _, a := range []Action{ActionEncrypt, ActionDecrypt, ActionAccess, ActionRotate, ActionRewrap, ActionDestroy} {
		in.startOpt[a] = []trace.SpanStartOption{trace.WithAttributes(AttrOperation.String(string(a)))}
	}
	for _, o := range []Outcome{OutcomeOK, OutcomeDenied, OutcomeError} {
		in.kmsOpt[o] = metric.WithAttributeSet(attribute.NewSet(AttrOutcome.String(string(o))))
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

// KMSLatency returns the [AttrKMSLatency] attribute, in seconds.
func KMSLatency(d time.Duration) attribute.KeyValue { return AttrKMSLatency.Float64(d.Seconds()) }

// RecordOp adds count values to [MetricOperations] with the operation,
// keyring, key ID (0 = none) and outcome as attributes.
func (in *Instrumentation) RecordOp(ctx context.Context, action Action, keyring string, keyID uint32, outcome Outcome, count int64) {
	if count <= 0 || !in.ops.Enabled(ctx) {
		return
	}
	k := opKey{action, keyring, keyID, outcome}
	in.mu.RLock()
	opt, ok := in.opOpts[k]
	in.mu.RUnlock()
	if !ok {
		attrs := []attribute.KeyValue{
			AttrOperation.String(string(action)),
			AttrKeyring.String(keyring),
			AttrOutcome.String(string(outcome)),
		}
		if keyID != 0 {
			attrs = append(attrs, KeyID(keyID))
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

// RecordOpCache is RecordOp of one value plus, when hit, one
// [MetricCacheHits] count: the per-value call of a keyring, with a single
// enabled check for both instruments (they come from one meter).
func (in *Instrumentation) RecordOpCache(ctx context.Context, action Action, keyring string, keyID uint32, outcome Outcome, hit bool) {
	if !in.ops.Enabled(ctx) {
		return
	}
	in.RecordOp(ctx, action, keyring, keyID, outcome, 1)
	if hit {
		in.RecordCache(ctx, keyring, true)
	}
}

// RecordKMS records the duration of one KMS call in [MetricKMSDuration].
func (in *Instrumentation) RecordKMS(ctx context.Context, d time.Duration, outcome Outcome) {
	if !in.kms.Enabled(ctx) {
		return
	}
	opt, ok := in.kmsOpt[outcome]
	if !ok {
		opt = metric.WithAttributeSet(attribute.NewSet(AttrOutcome.String(string(outcome))))
	}
	in.kms.Record(ctx, d.Seconds(), opt)
}

// RecordCache counts one data-key cache lookup of a keyring in
// [MetricCacheHits] or [MetricCacheMisses].
func (in *Instrumentation) RecordCache(ctx context.Context, keyring string, hit bool) {
	c := in.misses
	if hit {
		c = in.hits
	}
	if !c.Enabled(ctx) {
		return
	}
	in.mu.RLock()
	opt, ok := in.cacheOpts[keyring]
	in.mu.RUnlock()
	if !ok {
		opt = metric.WithAttributeSet(attribute.NewSet(AttrKeyring.String(keyring)))
		in.mu.Lock()
		if len(in.cacheOpts) < maxCachedSets {
			in.cacheOpts[keyring] = opt
		}
		in.mu.Unlock()
	}
	c.Add(ctx, 1, opt)
}

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
		in, err := New(ScopeName)
		if err != nil {
			// The global meter rejected an instrument; fall back to
			// no metrics rather than no events.
			otel.Handle(err)
			in, _ = New(ScopeName, WithMeterProvider(noopMeterProvider()))
		}
		builtinDefault = in
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

func noopMeterProvider() metric.MeterProvider { return noopmetric.NewMeterProvider() }
