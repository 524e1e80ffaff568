package access

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// memSink records what it is given; fail makes it refuse.
type memSink struct {
	mu   sync.Mutex
	recs []Record
	fail error
}

func (s *memSink) WriteRecord(_ context.Context, r Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.recs = append(s.recs, r)
	return nil
}

func (s *memSink) records() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Record(nil), s.recs...)
}

func newTestGuard(t *testing.T, sink Sink, opts ...AuditorOption) *Guard {
	t.Helper()
	a, err := NewAuditor(append([]AuditorOption{WithSink(sink)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGuard(mustPolicy(t, testConfig()), a)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

type traceKey struct{}

func TestGuardAuditsEveryDecision(t *testing.T) {
	sink := &memSink{}
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	g := newTestGuard(t, sink, WithClock(func() time.Time { return clock }),
		WithTraceIDFunc(func(ctx context.Context) string { s, _ := ctx.Value(traceKey{}).(string); return s }))
	ctx := context.WithValue(context.Background(), traceKey{}, "trace-1")
	alice := WithPrincipal(ctx, Principal{UserID: "alice", Roles: []string{"support"}, Attributes: map[string]string{"secret": "s3cr3t"}})

	if err := g.Authorize(alice, ActionDecrypt, FieldResource("users", "email")); err != nil {
		t.Fatalf("allowed Authorize = %v", err)
	}
	err := g.Authorize(alice, ActionDecrypt, FieldResource("users", "ssn"))
	if !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("denied Authorize = %v, want ErrAccessDenied", err)
	}
	if err := g.Authorize(ctx, ActionEncrypt, KeyringResource("pii")); !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("Authorize without principal = %v, want ErrAccessDenied", err)
	}
	want := []Record{
		{Time: clock, UserID: "alice", Roles: []string{"support"}, Action: "decrypt", Resource: "field:users.email", Decision: DecisionAllow, TraceID: "trace-1"},
		{Time: clock, UserID: "alice", Roles: []string{"support"}, Action: "decrypt", Resource: "field:users.ssn", Decision: DecisionDeny, Reason: reasonNoPermission, TraceID: "trace-1"},
		{Time: clock, Action: "encrypt", Resource: "keyring:pii", Decision: DecisionDeny, Reason: reasonNoPrincipal, TraceID: "trace-1"},
	}
	got := sink.records()
	if len(got) != len(want) {
		t.Fatalf("audited %d records, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := mustJSON(t, got[i]), mustJSON(t, want[i])
		if g != w {
			t.Errorf("record %d = %s, want %s", i, g, w)
		}
		if bytes.Contains([]byte(g), []byte("s3cr3t")) {
			t.Errorf("record %d holds a principal attribute", i)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestGuardFailsClosed(t *testing.T) {
	errDisk := errors.New("disk full")
	sink := &memSink{fail: errDisk}
	g := newTestGuard(t, sink)
	ctx := WithPrincipal(context.Background(), Principal{UserID: "alice", Roles: []string{"support"}})
	err := g.Authorize(ctx, ActionDecrypt, FieldResource("users", "email"))
	if !errors.Is(err, ErrAuditFailed) || !errors.Is(err, errDisk) || errors.Is(err, ErrAccessDenied) {
		t.Fatalf("allowed Authorize with failing audit = %v, want ErrAuditFailed wrapping the sink error", err)
	}
	err = g.Authorize(ctx, ActionDecrypt, FieldResource("users", "ssn"))
	if !errors.Is(err, ErrAccessDenied) || !errors.Is(err, ErrAuditFailed) {
		t.Fatalf("denied Authorize with failing audit = %v, want both ErrAccessDenied and ErrAuditFailed", err)
	}
}

func TestGuardFailOpen(t *testing.T) {
	errDisk := errors.New("disk full")
	var reported []error
	g := newTestGuard(t, &memSink{fail: errDisk}, WithFailOpen(func(err error) { reported = append(reported, err) }))
	ctx := WithPrincipal(context.Background(), Principal{UserID: "alice", Roles: []string{"support"}})
	if err := g.Authorize(ctx, ActionDecrypt, FieldResource("users", "email")); err != nil {
		t.Fatalf("fail-open Authorize = %v, want nil", err)
	}
	if err := g.Authorize(ctx, ActionDecrypt, FieldResource("users", "ssn")); !errors.Is(err, ErrAccessDenied) || errors.Is(err, ErrAuditFailed) {
		t.Fatalf("fail-open denied Authorize = %v, want ErrAccessDenied only", err)
	}
	if len(reported) != 2 || !errors.Is(reported[0], ErrAuditFailed) || !errors.Is(reported[0], errDisk) {
		t.Fatalf("reported = %v, want two errors wrapping ErrAuditFailed and the sink error", reported)
	}
}

func TestGuardWritesAllSinks(t *testing.T) {
	good, bad := &memSink{}, &memSink{fail: errors.New("down")}
	a, err := NewAuditor(WithSink(bad), WithSink(good))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.LogAccessAttempt(context.Background(), "bob", ActionRotate, true); !errors.Is(err, ErrAuditFailed) {
		t.Fatalf("LogAccessAttempt = %v, want ErrAuditFailed", err)
	}
	if recs := good.records(); len(recs) != 1 || recs[0].UserID != "bob" || recs[0].Decision != DecisionAllow || recs[0].Time.IsZero() {
		t.Fatalf("good sink got %+v, want bob's allowed attempt despite the failing sink", recs)
	}
}

func TestAuditorRejectsInvalid(t *testing.T) {
	for name, opt := range map[string]AuditorOption{
		"nil logger": WithLogger(nil), "nil sink": WithSink(nil), "nil trace": WithTraceIDFunc(nil),
		"nil clock": WithClock(nil), "nil fail-open": WithFailOpen(nil),
	} {
		if a, err := NewAuditor(opt); a != nil || err == nil {
			t.Errorf("NewAuditor(%s) = %v, %v, want an error", name, a, err)
		}
	}
	a, _ := NewAuditor(WithSink(&memSink{}))
	if err := a.Record(context.Background(), Record{Decision: "maybe"}); !errors.Is(err, ErrAuditFailed) {
		t.Errorf("Record(invalid decision) = %v, want ErrAuditFailed", err)
	}
	if _, err := NewGuard(nil, a); err == nil {
		t.Error("NewGuard(nil policy) succeeded")
	}
	if _, err := NewGuard(mustPolicy(t, testConfig()), nil); err == nil {
		t.Error("NewGuard(nil auditor) succeeded")
	}
}

func TestSlogSink(t *testing.T) {
	var buf bytes.Buffer
	a, err := NewAuditor(WithLogger(slog.New(slog.NewJSONHandler(&buf, nil))))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := a.Record(ctx, Record{UserID: "alice", Roles: []string{"support"}, Action: "decrypt", Resource: "field:users.ssn", Decision: DecisionDeny, Reason: "no matching permission", TraceID: "abc"}); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("slog output %q: %v", buf.String(), err)
	}
	for k, want := range map[string]any{"level": "WARN", "msg": "access decision", AttrUser: "alice", AttrAction: "decrypt",
		AttrResource: "field:users.ssn", AttrDecision: "deny", AttrReason: "no matching permission", AttrTraceID: "abc"} {
		if got[k] != want {
			t.Errorf("slog %s = %v, want %v", k, got[k], want)
		}
	}
	// A handler error is reported.
	errHandler := errors.New("handler broke")
	a, _ = NewAuditor(WithLogger(slog.New(failingHandler{errHandler})))
	if err := a.LogAccessAttempt(ctx, "alice", "decrypt", true); !errors.Is(err, errHandler) {
		t.Fatalf("LogAccessAttempt through failing handler = %v, want its error", err)
	}
}

type failingHandler struct{ err error }

func (failingHandler) Enabled(context.Context, slog.Level) bool    { return true }
func (h failingHandler) Handle(context.Context, slog.Record) error { return h.err }
func (h failingHandler) WithAttrs([]slog.Attr) slog.Handler        { return h }
func (h failingHandler) WithGroup(string) slog.Handler             { return h }

func TestGuardSetPolicyConcurrent(t *testing.T) {
	g := newTestGuard(t, &memSink{})
	open := mustPolicy(t, Config{Roles: []Role{{Name: "support", Permissions: []Permission{{Actions: []string{"*"}, Resources: []string{"*"}}}}}})
	closed := mustPolicy(t, Config{Roles: []Role{{Name: "support"}}})
	if err := g.SetPolicy(nil); err == nil {
		t.Fatal("SetPolicy(nil) succeeded")
	}
	ctx := WithPrincipal(context.Background(), Principal{UserID: "alice", Roles: []string{"support"}})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				err := g.Authorize(ctx, ActionRotate, KeyringResource("pii"))
				if err != nil && !errors.Is(err, ErrAccessDenied) {
					t.Errorf("Authorize = %v", err)
				}
			}
		})
	}
	for i := range 200 {
		p := open
		if i%2 == 1 {
			p = closed
		}
		if err := g.SetPolicy(p); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if err := g.Authorize(ctx, ActionRotate, KeyringResource("pii")); !errors.Is(err, ErrAccessDenied) || g.Policy() != closed {
		t.Fatalf("after the last swap Authorize = %v, want denied under the closed policy", err)
	}
}
