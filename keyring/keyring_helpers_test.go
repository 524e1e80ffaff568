package keyring_test

import (
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/keyring"
)

// source wraps a real file-key source, counting calls and injecting faults.
type source struct {
	inner   *filekey.Source
	wraps   atomic.Int64
	unwraps atomic.Int64

	mu       sync.Mutex
	fail     error         // returned by Unwrap when set
	block    chan struct{} // Unwrap waits on it (or ctx) when set
	entered  chan struct{} // receives a value when an Unwrap starts, if set
	override string        // ID override
}

var _ keyring.KeySource = (*source)(nil)

func newSource(t testing.TB) *source {
	t.Helper()
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	s, err := filekey.New(k)
	if err != nil {
		t.Fatal(err)
	}
	return &source{inner: s}
}

func (s *source) ID() string {
	if s.override != "" {
		return s.override
	}
	return s.inner.ID()
}

func (s *source) Wrap(ctx context.Context, dek, aad []byte) ([]byte, error) {
	s.wraps.Add(1)
	return s.inner.Wrap(ctx, dek, aad)
}

func (s *source) Unwrap(ctx context.Context, w, aad []byte) ([]byte, error) {
	s.unwraps.Add(1)
	s.mu.Lock()
	fail, block, entered := s.fail, s.block, s.entered
	s.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if fail != nil {
		return nil, fail
	}
	return s.inner.Unwrap(ctx, w, aad)
}

func (s *source) setFail(err error) {
	s.mu.Lock()
	s.fail = err
	s.mu.Unlock()
}

// clock is a settable keyring.Clock: Advance moves the time and runs the
// timers that come due, in order, in the calling goroutine.
type clock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at    time.Time
	f     func()
	ended bool // fired or stopped
}

var _ keyring.Clock = (*clock)(nil)

func newClock() *clock { return &clock{now: time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.ended
		t.ended = true
		return was
	}
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	target := c.now.Add(d)
	for {
		var next *fakeTimer
		for _, t := range c.timers {
			if !t.ended && !t.at.After(target) && (next == nil || t.at.Before(next.at)) {
				next = t
			}
		}
		if next == nil {
			break
		}
		next.ended = true
		if next.at.After(c.now) {
			c.now = next.at
		}
		c.mu.Unlock()
		next.f()
		c.mu.Lock()
	}
	c.now = target
	c.mu.Unlock()
}

// countingStore counts Loads.
type countingStore struct {
	keyring.Store
	loads atomic.Int64
}

func (c *countingStore) Load(ctx context.Context, name string) (keyring.Keyset, error) {
	c.loads.Add(1)
	return c.Store.Load(ctx, name)
}

func open(t testing.TB, name string, src keyring.KeySource, store keyring.Store, opts ...keyring.Option) *keyring.Keyring {
	t.Helper()
	kr, err := keyring.New(context.Background(), name, src, store, opts...)
	if err != nil {
		t.Fatalf("keyring.New: %v", err)
	}
	t.Cleanup(func() { kr.Close() })
	return kr
}

// denyAll is an Authorizer that refuses everything but the listed actions.
type allowOnly map[string]bool

var errDenied = errors.New("test: access denied")

func (a allowOnly) Authorize(_ context.Context, action, _ string) error {
	if a[action] {
		return nil
	}
	return errDenied
}
