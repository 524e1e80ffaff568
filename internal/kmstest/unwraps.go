package kmstest

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/telemetry"
)

// Unwraps follows the key-source unwraps of a keyring, from their spans
// (keyring.SpanUnwrap): an unwrap's span ends once the keyring has acted on
// its result (cached the key, or recorded the failure), so a test that
// waits for it knows that a background refresh is over, without sleeping.
type Unwraps struct {
	done chan struct{}
}

// NewUnwraps returns an Unwraps and the keyring option that feeds it (a
// tracer provider of its own, shut down when the test ends).
func NewUnwraps(t testing.TB) (*Unwraps, keyring.Option) {
	u := &Unwraps{done: make(chan struct{}, 4096)}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(u))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return u, keyring.WithTelemetry(telemetry.WithTracerProvider(tp))
}

// Wait waits for n more unwraps to end, failing the test after 30 seconds.
func (u *Unwraps) Wait(t testing.TB, n int) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for i := range n {
		select {
		case <-u.done:
		case <-timeout:
			t.Fatalf("waited 30s for unwrap %d of %d", i+1, n)
		}
	}
}

// Pending returns how many ended unwraps were not waited for yet.
func (u *Unwraps) Pending() int { return len(u.done) }

// OnEnd implements sdktrace.SpanProcessor.
func (u *Unwraps) OnEnd(s sdktrace.ReadOnlySpan) {
	if s.Name() == keyring.SpanUnwrap {
		u.done <- struct{}{}
	}
}

// OnStart implements sdktrace.SpanProcessor.
func (u *Unwraps) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// Shutdown implements sdktrace.SpanProcessor.
func (u *Unwraps) Shutdown(context.Context) error { return nil }

// ForceFlush implements sdktrace.SpanProcessor.
func (u *Unwraps) ForceFlush(context.Context) error { return nil }
