package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// collect is a Sink keeping events in memory.
type collect struct {
	mu     sync.Mutex
	events []Event
}

func (c *collect) WriteEvent(_ context.Context, e Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, e)
	return nil
}

func (c *collect) all() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Event(nil), c.events...)
}

type sdk struct {
	rec    *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
}

func newSDK(t *testing.T) *sdk {
	s := &sdk{rec: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	s.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(s.rec))
	s.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(s.reader))
	t.Cleanup(func() {
		s.tp.Shutdown(context.Background())
		s.mp.Shutdown(context.Background())
	})
	return s
}

func attrMap(kvs []attribute.KeyValue) map[attribute.Key]string {
	m := map[attribute.Key]string{}
	for _, kv := range kvs {
		m[kv.Key] = kv.Value.String()
	}
	return m
}

func TestInstrumentationSpansAndMetrics(t *testing.T) {
	s := newSDK(t)
	sink := &collect{}
	in, err := New("github.com/keyward/keyward/keyring", WithTracerProvider(s.tp), WithMeterProvider(s.mp), WithSinks(sink),
		WithErrorClassifier(func(err error) string { return "decrypt_failed" }))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, span := in.Start(ctx, ActionDecrypt, AttrKeyring.String("pii"), KeyID(3), in.UserID("u1"))
	for i := range 3 {
		in.Record(c, Event{Action: ActionDecrypt, UserID: "u1", DataID: fmt.Sprintf("t/%d/c", i), Success: true})
	}
	in.End(span, OutcomeOK, 3, nil)

	_, span = in.Start(ctx, ActionDecrypt)
	in.End(span, OutcomeError, 1, errors.New("secret detail patients/9"))
	_, span = in.Start(ctx, ActionAccess)
	in.End(span, OutcomeDenied, 1, nil)

	spans := s.rec.Ended()
	if len(spans) != 3 {
		t.Fatalf("%d spans, want 3", len(spans))
	}
	sp := spans[0]
	a := attrMap(sp.Attributes())
	if sp.Name() != "keyward.decrypt" || a[AttrOperation] != "decrypt" || a[AttrKeyring] != "pii" || a[AttrKeyID] != "3" ||
		a[AttrOutcome] != "ok" || a[AttrCount] != "3" || a[AttrUserID] != "u1" || sp.Status().Code != codes.Unset {
		t.Errorf("span = %s %v %v", sp.Name(), a, sp.Status())
	}
	if sp.InstrumentationScope().Name != "github.com/keyward/keyward/keyring" {
		t.Errorf("scope = %v", sp.InstrumentationScope())
	}
	if len(sp.Events()) != 3 || sp.Events()[2].Name != "keyward.decrypt" || attrMap(sp.Events()[2].Attributes)[AttrDataID] != "t/2/c" {
		t.Errorf("span events = %+v", sp.Events())
	}
	a = attrMap(spans[1].Attributes())
	if a[AttrErrorType] != "decrypt_failed" || spans[1].Status().Code != codes.Error || spans[1].Status().Description != "decrypt_failed" {
		t.Errorf("failed span = %v %v", a, spans[1].Status())
	}
	a = attrMap(spans[2].Attributes())
	if a[AttrOutcome] != "denied" || a[AttrErrorType] != "denied" || spans[2].Status().Code != codes.Error {
		t.Errorf("denied span = %v %v", a, spans[2].Status())
	}
	for _, sp := range spans {
		if strings.Contains(fmt.Sprint(sp.Attributes(), sp.Status(), sp.Events()), "secret detail") {
			t.Error("error message leaked into a span")
		}
	}
	if got := sink.all(); len(got) != 3 || got[0].Time.IsZero() || got[1].DataID != "t/1/c" {
		t.Errorf("sink got %+v", got)
	}

}

func TestInstrumentationPseudonymizes(t *testing.T) {
	s := newSDK(t)
	p, _ := NewPseudonymizer(make([]byte, 32))
	sink := &collect{}
	in, err := New("x", WithTracerProvider(s.tp), WithSinks(sink), WithPseudonymizer(p))
	if err != nil {
		t.Fatal(err)
	}
	c, span := in.Start(context.Background(), ActionDecrypt, in.UserID("alice"), in.DataID("patients/42/ssn"))
	in.LogDecryptionEvent(c, "patients/42/ssn", "alice")
	in.End(span, OutcomeOK, 1, nil)
	all := fmt.Sprint(s.rec.Ended()[0].Attributes(), s.rec.Ended()[0].Events(), sink.all())
	if strings.Contains(all, "alice") || strings.Contains(all, "patients/42") {
		t.Errorf("plain IDs left the process: %s", all)
	}
	if !strings.Contains(all, p.UserID("alice")) || !strings.Contains(all, p.DataID("patients/42/ssn")) {
		t.Errorf("pseudonyms missing: %s", all)
	}
}

func TestDefaultInstrumentation(t *testing.T) {
	t.Cleanup(func() { SetDefault(nil) })
	s := newSDK(t)
	sink := &collect{}
	p, _ := NewPseudonymizer(make([]byte, 32))
	def, err := New(ScopeName, WithTracerProvider(s.tp), WithSinks(sink), WithPseudonymizer(p))
	if err != nil {
		t.Fatal(err)
	}
	// Before SetDefault, the package functions reach no sink.
	LogDecryptionEvent(context.Background(), "d0", "u0")
	SetDefault(def)
	if Default() != def {
		t.Fatal("Default() is not the instrumentation set")
	}
	ctx, span := s.tp.Tracer("app").Start(context.Background(), "handler")
	LogEncryptionEvent(ctx, "d1", "u1")
	LogDecryptionEvent(ctx, "d2", "u2")
	span.End()

	// A library instrumentation without its own sinks follows the default.
	lib, _ := New("lib")
	lib.Record(context.Background(), Event{Action: ActionRotate, UserID: "admin", DataID: "keyring/pii", Success: true})
	own := &collect{}
	libOwn, _ := New("lib", WithSinks(own), WithPseudonymizer(nil))
	libOwn.Record(context.Background(), Event{Action: ActionRotate, UserID: "admin", DataID: "keyring/pii", Success: true})

	got := sink.all()
	if len(got) != 3 {
		t.Fatalf("default sink got %d events, want 3", len(got))
	}
	if got[0].Action != ActionEncrypt || got[0].DataID != p.DataID("d1") || got[1].UserID != p.UserID("u2") || got[2].UserID != p.UserID("admin") {
		t.Errorf("default sink got %+v", got)
	}
	if o := own.all(); len(o) != 1 || o[0].UserID != "admin" {
		t.Errorf("own sink got %+v", o)
	}
	evs := s.rec.Ended()[0].Events()
	if len(evs) != 2 || evs[0].Name != spanEncrypt || evs[1].Name != spanDecrypt {
		t.Errorf("span events = %+v", evs)
	}
	SetDefault(nil)
	if Default() == def || Default() == nil {
		t.Error("SetDefault(nil) did not restore the built-in default")
	}
}

type failingSink struct{}

func (failingSink) WriteEvent(context.Context, Event) error { return fs.ErrPermission }

func TestSinkErrorsGoToHandler(t *testing.T) {
	var got []error
	var mu sync.Mutex
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { mu.Lock(); got = append(got, err); mu.Unlock() }))
	t.Cleanup(func() { otel.SetErrorHandler(otel.ErrorHandlerFunc(func(error) {})) })
	in, _ := New("x", WithSinks(failingSink{}))
	in.LogEncryptionEvent(context.Background(), "d", "u")
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || !errors.Is(got[0], fs.ErrPermission) {
		t.Errorf("handler got %v", got)
	}
}

func TestNewOptionErrors(t *testing.T) {
	for name, o := range map[string]Option{
		"nil tp":         WithTracerProvider(nil),
		"nil mp":         WithMeterProvider(nil),
		"nil sink":       WithSinks(nil),
		"nil classifier": WithErrorClassifier(nil),
	} {
		if _, err := New("x", o); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("New(%s) = %v, want ErrInvalidOption", name, err)
		}
	}
	if _, err := New("x", WithSinks(), WithSinks()); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("New(WithSinks twice) = %v, want ErrInvalidOption", err)
	}
	if _, err := New("x", WithPseudonymizer(nil), WithPseudonymizer(nil)); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("New(WithPseudonymizer twice) = %v, want ErrInvalidOption", err)
	}
	if _, err := New(""); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("New(\"\") = %v, want ErrInvalidOption", err)
	}
}

type typedErr struct{}

func (typedErr) Error() string { return "typed" }

func TestErrorType(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{errors.New("x"), "_OTHER"},
		{fmt.Errorf("wrap: %w", errors.New("x")), "_OTHER"},
		{fmt.Errorf("wrap: %w", typedErr{}), "telemetry.typedErr"},
		{fmt.Errorf("a: %w", fmt.Errorf("b: %w", fs.ErrNotExist)), "_OTHER"},
		{&fs.PathError{Op: "open", Path: "/secret", Err: fs.ErrNotExist}, "_OTHER"},
		{context.DeadlineExceeded, "context.deadlineExceededError"},
	}
	for _, tt := range tests {
		if got := ErrorType(tt.err); got != tt.want {
			t.Errorf("ErrorType(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// TestRecordAllocations: with a span that is not recording and a sink that
// does not allocate, recording an event does not allocate; nor do Start
// and End on a no-op provider beyond the context, nor the metric calls on
// disabled instruments.
func TestRecordAllocations(t *testing.T) {
	var n int
	sink := SinkFunc(func(_ context.Context, e Event) error { n += len(e.DataID); return nil })
	in, err := New("x", WithTracerProvider(tracenoop.NewTracerProvider()), WithSinks(sink), WithPseudonymizer(nil))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	e := Event{Time: time.Now(), Action: ActionDecrypt, UserID: "u", DataID: "users/1/ssn", Success: true}
	if a := testing.AllocsPerRun(1000, func() { in.Record(ctx, e) }); a != 0 {
		t.Errorf("Record allocates %.1f times, want 0", a)
	}
	// Emit does not allocate even under a recording span.
	s := newSDK(t)
	rctx, span := s.tp.Tracer("x").Start(ctx, "statement")
	if a := testing.AllocsPerRun(1000, func() { in.Emit(rctx, e) }); a != 0 {
		t.Errorf("Emit allocates %.1f times, want 0", a)
	}
	span.End()
	if len(s.rec.Ended()[0].Events()) != 0 {
		t.Error("Emit added span events")
	}
	if a := testing.AllocsPerRun(1000, func() {
		_, span := in.Start(ctx, ActionDecrypt)
		in.End(span, OutcomeOK, 3000, nil)
	}); a > 1 {
		t.Errorf("Start+End on a no-op tracer allocate %.1f times, want at most 1", a)
	}
	var _ trace.Span = trace.SpanFromContext(ctx)
}
