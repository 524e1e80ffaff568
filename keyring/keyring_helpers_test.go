package keyring_test

import (
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/internal/kmstest"
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

// newClock returns a settable clock: Advance moves the time and runs the
// timers that come due.
func newClock() *kmstest.Clock { return kmstest.NewClock() }

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
