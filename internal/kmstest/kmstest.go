package kmstest

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/keyring"
)

// Remote is a key source over one key of a KMS emulator, with the
// emulator's controls.
type Remote struct {
	// Source is a key source over the emulator's key.
	Source keyring.KeySource

	// Wraps and Unwraps return how many wrap and unwrap requests (Encrypt
	// and Decrypt) the emulator received, failed ones included.
	Wraps, Unwraps func() int64

	// Down makes the emulator answer every request with a transient error
	// (a 5xx, UNAVAILABLE) until Up.
	Down, Up func()

	// Hang makes every request wait until release is called (or the
	// request's context ends); started receives a value when the first
	// request arrives. Run calls release before the test ends.
	Hang func() (started <-chan struct{}, release func())

	// Throttle makes the next n requests fail as throttled.
	Throttle func(n int)

	// Unreachable returns a key source over the same key whose KMS
	// endpoint refuses connections.
	Unreachable func(t *testing.T) keyring.KeySource
}

// Run runs the suite; newRemote is called once per subtest.
func Run(t *testing.T, newRemote func(t *testing.T) Remote) {
	t.Run("CallsPerVersionPerTTL", func(t *testing.T) { callsPerVersionPerTTL(t, newRemote(t)) })
	t.Run("ColdCacheOneCall", func(t *testing.T) { coldCacheOneCall(t, newRemote(t)) })
	t.Run("DownAfterWarmUp", func(t *testing.T) { downAfterWarmUp(t, newRemote(t)) })
	t.Run("DownAtStart", func(t *testing.T) { downAtStart(t, newRemote(t)) })
	t.Run("HangAtStart", func(t *testing.T) { hangAtStart(t, newRemote(t)) })
	t.Run("HangAfterWarmUp", func(t *testing.T) { hangAfterWarmUp(t, newRemote(t)) })
	t.Run("SourceWhileHanging", func(t *testing.T) { sourceWhileHanging(t, newRemote(t)) })
	t.Run("ThrottledThenOK", func(t *testing.T) { throttledThenOK(t, newRemote(t)) })
}

const (
	name  = "orders"
	ttl   = time.Minute
	stale = 5 * time.Minute
)

var (
	ctx = context.Background()
	aad = []byte("orders.card_number")
)

func open(t *testing.T, src keyring.KeySource, store keyring.Store, opts ...keyring.Option) *keyring.Keyring {
	t.Helper()
	kr, err := keyring.New(ctx, name, src, store, opts...)
	if err != nil {
		t.Fatalf("keyring.New: %v", err)
	}
	t.Cleanup(func() { _ = kr.Close() })
	return kr
}

// seed makes a keyring in a new store with two data key versions, and
// returns the store and a token under the first (now non-primary) version.
// The keyring that made them is closed: later keyrings over the store start
// with a cold cache, like another process.
func seed(t *testing.T, r Remote) (keyring.Store, []byte) {
	t.Helper()
	store := keyring.NewMemoryStore()
	kr, err := keyring.New(ctx, name, r.Source, store)
	if err != nil {
		t.Fatalf("keyring.New: %v", err)
	}
	defer kr.Close()
	old, err := kr.Encrypt(ctx, []byte("first version"), aad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kr.Rotate(ctx); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	return store, old
}

func decrypt(t *testing.T, kr *keyring.Keyring, tok []byte, want string) {
	t.Helper()
	got, err := kr.Decrypt(ctx, tok, aad)
	if err != nil || string(got) != want {
		t.Fatalf("Decrypt = %q, %v, want %q", got, err, want)
	}
}

func callsPerVersionPerTTL(t *testing.T, r Remote) {
	store, old := seed(t, r)
	clk := NewClock()
	u0 := r.Unwraps()
	unwraps, watch := NewUnwraps(t)
	kr := open(t, r.Source, store, WithClock(clk), keyring.WithCacheTTL(ttl), keyring.WithStaleWindow(stale), watch)
	unwraps.Wait(t, 1)
	require.Equal(t, int64(1), r.Unwraps()-u0, "unwraps at the KMS when opening a keyring: want 1 (the primary version)")
	pt := bytes.Repeat([]byte{'x'}, 64)
	roundTrips := func(n int) {
		t.Helper()
		for range n {
			tok, err := kr.Encrypt(ctx, pt, aad)
			require.NoError(t, err, "Encrypt")
			_, err = kr.Decrypt(ctx, tok, aad)
			require.NoError(t, err, "Decrypt")
		}
		decrypt(t, kr, old, "first version")
	}
	roundTrips(100_000)
	unwraps.Wait(t, 1) // the first version, at its first use
	require.Equal(t, int64(2), r.Unwraps()-u0, "unwraps at the KMS for 100,000 Encrypt+Decrypt over 2 key versions within one TTL")
	assert.Equal(t, int64(2), r.Wraps(), "wraps: one per version, when made")
	for period := int64(1); period <= 3; period++ {
		clk.Advance(ttl)
		// Past the TTL each version is served from the cache at once and
		// refreshed in the background, once.
		roundTrips(1000)
		unwraps.Wait(t, 2)
		require.Equal(t, 2+2*period, r.Unwraps()-u0, "unwraps at the KMS after %d TTLs: want one per version per TTL", period)
	}
	assert.Zero(t, unwraps.Pending(), "unwraps beyond one per version per TTL")
}

func coldCacheOneCall(t *testing.T, r Remote) {
	store, old := seed(t, r)
	kr := open(t, r.Source, store)
	u0 := r.Unwraps()
	started, release := r.Hang()
	t.Cleanup(release)

	const n = 64
	var ready sync.WaitGroup
	ready.Add(n)
	errs := make(chan error, n)
	for range n {
		go func() {
			ready.Done()
			got, err := kr.Decrypt(ctx, old, aad)
			if err == nil && string(got) != "first version" {
				err = errors.New("wrong plaintext")
			}
			errs <- err
		}()
	}
	ready.Wait()
	<-started
	release()
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("Decrypt: %v", err)
		}
	}
	if got := r.Unwraps() - u0; got != 1 {
		t.Errorf("%d goroutines on a cold key: %d unwraps at the KMS, want 1", n, got)
	}
}

func downAfterWarmUp(t *testing.T, r Remote) {
	store, old := seed(t, r)
	clk := NewClock()
	unwraps, watch := NewUnwraps(t)
	kr := open(t, r.Source, store, WithClock(clk), keyring.WithCacheTTL(ttl), keyring.WithStaleWindow(stale), watch)
	decrypt(t, kr, old, "first version")
	tok, err := kr.Encrypt(ctx, []byte("warm"), aad)
	require.NoError(t, err)
	unwraps.Wait(t, 2) // both versions cached
	r.Down()
	u0 := r.Unwraps()

	// The cached keys expire: they are served at once while the KMS is
	// asked in the background, and fails.
	clk.Advance(ttl)
	decrypt(t, kr, old, "first version")
	decrypt(t, kr, tok, "warm")
	_, err = kr.Encrypt(ctx, []byte("during the outage"), aad)
	require.NoError(t, err, "Encrypt during the stale window")
	unwraps.Wait(t, 2)
	require.Greater(t, r.Unwraps(), u0, "the expired keys were served without asking the KMS")

	clk.Advance(stale - time.Second) // still within the stale window
	decrypt(t, kr, tok, "warm")
	unwraps.Wait(t, 1) // its background refresh failed again

	clk.Advance(2 * time.Second) // past it: calls fail, at once
	_, err = kr.Decrypt(ctx, tok, aad)
	require.ErrorIs(t, err, keyring.ErrKEKUnavailable, "Decrypt past the stale window")
	_, err = kr.Encrypt(ctx, []byte("x"), aad)
	require.ErrorIs(t, err, keyring.ErrKEKUnavailable, "Encrypt past the stale window")
	unwraps.Wait(t, 1) // the one background retry the first call started

	// The KMS is back: the next call still fails at once, and starts the
	// background retry that brings the key back.
	r.Up()
	_, err = kr.Decrypt(ctx, tok, aad)
	require.ErrorIs(t, err, keyring.ErrKEKUnavailable, "Decrypt past the stale window, the KMS just back")
	unwraps.Wait(t, 1)
	decrypt(t, kr, tok, "warm")
}

func downAtStart(t *testing.T, r Remote) {
	store, _ := seed(t, r)
	src := r.Unreachable(t)
	for _, tc := range []struct {
		name  string
		store keyring.Store
	}{{"NewKeyring", keyring.NewMemoryStore()}, {"ExistingKeyring", store}} {
		t.Run(tc.name, func(t *testing.T) {
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			kr, err := keyring.New(cctx, name, src, tc.store)
			if err == nil {
				kr.Close()
				t.Fatal("keyring.New over an unreachable KMS succeeded")
			}
			if !errors.Is(err, keyring.ErrKEKUnavailable) {
				t.Errorf("keyring.New over an unreachable KMS = %v, want ErrKEKUnavailable", err)
			}
			if cctx.Err() != nil {
				t.Errorf("keyring.New over an unreachable KMS used up its deadline: %v", err)
			}
		})
	}
}

func hangAtStart(t *testing.T, r Remote) {
	store, _ := seed(t, r)
	_, release := r.Hang()
	t.Cleanup(release)
	for _, tc := range []struct {
		name  string
		store keyring.Store
	}{{"NewKeyring", keyring.NewMemoryStore()}, {"ExistingKeyring", store}} {
		t.Run(tc.name, func(t *testing.T) {
			const deadline = 300 * time.Millisecond
			cctx, cancel := context.WithTimeout(ctx, deadline)
			defer cancel()
			start := time.Now()
			kr, err := keyring.New(cctx, name, r.Source, tc.store)
			took := time.Since(start)
			if err == nil {
				kr.Close()
				t.Fatal("keyring.New over a hanging KMS succeeded")
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("keyring.New over a hanging KMS = %v, want context.DeadlineExceeded", err)
			}
			if took > deadline+2*time.Second {
				t.Errorf("keyring.New over a hanging KMS returned after %v, deadline %v", took, deadline)
			}
		})
	}
}

// sourceWhileHanging: the key source itself, over a KMS that does not
// answer, returns by the caller's deadline with context.DeadlineExceeded
// and ErrKEKUnavailable, and at once when the caller cancels.
func sourceWhileHanging(t *testing.T, r Remote) {
	// A keyring wraps its first data key: the recorded call gives the
	// associated data a key source is given (a key service checks it).
	rec := &recordingSource{KeySource: r.Source}
	require.NoError(t, open(t, rec, keyring.NewMemoryStore()).Close(), "Close")
	require.NotNil(t, rec.aad, "keyring.New did not wrap a data key")
	dek, aad := bytes.Repeat([]byte{7}, 32), rec.aad
	w, err := r.Source.Wrap(ctx, dek, aad)
	require.NoError(t, err, "Wrap before the KMS hangs")
	_, release := r.Hang()
	t.Cleanup(release)
	for _, op := range []struct {
		name string
		call func(context.Context) error
	}{
		{"Wrap", func(c context.Context) error { _, err := r.Source.Wrap(c, dek, aad); return err }},
		{"Unwrap", func(c context.Context) error { _, err := r.Source.Unwrap(c, w, aad); return err }},
	} {
		t.Run(op.name, func(t *testing.T) {
			const deadline = 200 * time.Millisecond
			c, cancel := context.WithTimeout(ctx, deadline)
			defer cancel()
			start := time.Now()
			err := op.call(c)
			assert.Less(t, time.Since(start), deadline+2*time.Second, "%s over a hanging KMS returned long after its deadline %v", op.name, deadline)
			assert.ErrorIs(t, err, context.DeadlineExceeded, "%s over a hanging KMS", op.name)
			assert.ErrorIs(t, err, keyring.ErrKEKUnavailable, "%s over a hanging KMS", op.name)
		})
	}
	t.Run("Cancel", func(t *testing.T) {
		release()
		started, release := r.Hang()
		t.Cleanup(release)
		c, cancel := context.WithCancel(ctx)
		go func() { <-started; cancel() }()
		_, err := r.Source.Unwrap(c, w, aad)
		assert.ErrorIs(t, err, context.Canceled, "Unwrap cancelled while the KMS hangs")
	})
}

// recordingSource records the associated data of the last Wrap.
type recordingSource struct {
	keyring.KeySource
	aad []byte
}

func (r *recordingSource) Wrap(ctx context.Context, dek, aad []byte) ([]byte, error) {
	r.aad = bytes.Clone(aad)
	return r.KeySource.Wrap(ctx, dek, aad)
}

// hangAfterWarmUp: a KMS that hangs (no answer, no error) once the cached
// keys pass their TTL stalls no call: every call is served from the cache
// at once while one refresh per key waits on the KMS in the background;
// past the stale window calls fail at once with ErrKEKUnavailable instead
// of waiting for the KMS. The KMS timeout is an hour and the calls carry no
// deadline, so a call that waited for the KMS would not return at all.
func hangAfterWarmUp(t *testing.T, r Remote) {
	store, old := seed(t, r)
	clk := NewClock()
	unwraps, watch := NewUnwraps(t)
	kr := open(t, r.Source, store, WithClock(clk), keyring.WithCacheTTL(ttl), keyring.WithStaleWindow(stale),
		keyring.WithKMSTimeout(time.Hour), watch)
	decrypt(t, kr, old, "first version")
	tok, err := kr.Encrypt(ctx, []byte("warm"), aad)
	require.NoError(t, err)
	unwraps.Wait(t, 2)

	started, release := r.Hang()
	t.Cleanup(release)
	u0 := r.Unwraps()
	clk.Advance(ttl)

	// returns runs f in a goroutine and fails the test if it does not
	// return: it waits on the hanging KMS.
	returns := func(what string, f func() error) error {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- f() }()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			t.Fatalf("%s waited on the hanging KMS", what)
			return nil
		}
	}
	for i := range 50 {
		err := returns("Decrypt past the TTL", func() error {
			got, err := kr.Decrypt(ctx, tok, aad)
			if err == nil && string(got) != "warm" {
				err = errors.New("wrong plaintext")
			}
			return err
		})
		require.NoError(t, err, "Decrypt %d past the TTL while the KMS hangs", i)
		err = returns("Encrypt past the TTL", func() error { _, err := kr.Encrypt(ctx, []byte("hang"), aad); return err })
		require.NoError(t, err, "Encrypt %d past the TTL while the KMS hangs", i)
		err = returns("Decrypt of the first version past the TTL", func() error { _, err := kr.Decrypt(ctx, old, aad); return err })
		require.NoError(t, err, "Decrypt %d of the first version past the TTL while the KMS hangs", i)
	}
	<-started
	assert.LessOrEqual(t, r.Unwraps()-u0, int64(2), "requests to the hanging KMS: want one refresh per version")

	clk.Advance(stale) // past the stale window, the refreshes still hanging
	for _, tc := range []struct {
		name string
		f    func() error
	}{
		{"Decrypt", func() error { _, err := kr.Decrypt(ctx, tok, aad); return err }},
		{"Encrypt", func() error { _, err := kr.Encrypt(ctx, []byte("x"), aad); return err }},
		{"Decrypt of the first version", func() error { _, err := kr.Decrypt(ctx, old, aad); return err }},
	} {
		err := returns(tc.name+" past the stale window", tc.f)
		require.ErrorIs(t, err, keyring.ErrKEKUnavailable, "%s past the stale window while the KMS hangs", tc.name)
	}
	assert.LessOrEqual(t, r.Unwraps()-u0, int64(2), "requests to the hanging KMS past the stale window: want no more")

	// The KMS answers again: the pending refreshes bring the keys back.
	release()
	unwraps.Wait(t, 2)
	decrypt(t, kr, tok, "warm")
	decrypt(t, kr, old, "first version")
}

func throttledThenOK(t *testing.T, r Remote) {
	r.Throttle(2)
	store := keyring.NewMemoryStore()
	kr := open(t, r.Source, store)
	if got := r.Wraps(); got != 3 {
		t.Errorf("creating a keyring with 2 throttled answers: %d wrap requests, want 3", got)
	}
	tok, err := kr.Encrypt(ctx, []byte("throttled"), aad)
	if err != nil {
		t.Fatal(err)
	}
	u0 := r.Unwraps()
	r.Throttle(2)
	kr2 := open(t, r.Source, store)
	if got := r.Unwraps() - u0; got != 3 {
		t.Errorf("opening a keyring with 2 throttled answers: %d unwrap requests, want 3", got)
	}
	decrypt(t, kr2, tok, "throttled")
}
