package keyring

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/trace"

	"github.com/keyward/keyward/cipher"
)

// entry caches the unwrapped form of one key version.
type entry struct {
	id          uint32
	cur         atomic.Pointer[loaded]
	encryptions atomic.Uint64
	busy        atomic.Bool // an unwrap is under way
	backingOff  atomic.Bool // the last unwrap failed transiently moments ago
	failing     atomic.Bool // the last unwrap failed transiently (cleared by a success)

	mu      sync.Mutex
	flight  *flight // the unwrap under way, if any
	lastErr error   // the transient error of the last unwrap, while failing
}

// Ages of a cached key, advanced by timers so that the hot path reads an
// atomic value instead of the clock.
const (
	stageFresh   int32 = iota // younger than 80% of the TTL
	stageRefresh              // within the TTL, due for a background refresh
	stageExpired              // past the TTL, within the stale window
	stageDead                 // past the TTL and the stale window
)

// loaded is an unwrapped key: its AEAD (data keys) or raw bytes (derive
// keys, which HKDF needs).
type loaded struct {
	aead  *cipher.AEAD
	raw   []byte
	stage atomic.Int32

	mu       sync.Mutex
	stop     func() bool // the pending stage timer
	disarmed bool
}

type flight struct {
	done       chan struct{}
	revalidate bool // started in the background while a cached copy was served
	l          *loaded
	err        error
}

func newLoaded(key Key, raw []byte) (*loaded, error) {
	if len(raw) != cipher.KeySize {
		return nil, fmt.Errorf("%w: key ID %d unwrapped to %d bytes, want %d", ErrUnwrap, key.ID, len(raw), cipher.KeySize)
	}
	l := &loaded{}
	if key.Purpose == PurposeDerive {
		l.raw = append([]byte(nil), raw...)
		return l, nil
	}
	c, err := cipher.NewAEAD(key.Algorithm, raw, key.ID)
	if err != nil {
		return nil, fmt.Errorf("keyring: key ID %d: %w", key.ID, err)
	}
	l.aead = c
	return l, nil
}

// arm starts the timers that age l: refresh-due at 80% of the TTL, expired
// at the TTL, dead after the stale window.
func (k *Keyring) arm(l *loaded) {
	steps := []struct {
		wait  int64
		stage int32
	}{
		{int64(k.refreshAt), stageRefresh},
		{int64(k.cfg.ttl - k.refreshAt), stageExpired},
		{int64(k.cfg.stale), stageDead},
	}
	var next func(i int)
	next = func(i int) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.disarmed || i == len(steps) {
			return
		}
		st := steps[i]
		l.stop = k.cfg.clock.AfterFunc(durationOf(st.wait), func() {
			l.stage.Store(st.stage)
			next(i + 1)
		})
	}
	next(0)
}

// disarm stops l's timers.
func (l *loaded) disarm() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.disarmed = true
	if l.stop != nil {
		l.stop()
	}
}

// cache makes l the cached key of e, retiring the previous one.
func (k *Keyring) cache(e *entry, l *loaded) {
	k.arm(l)
	if old := e.cur.Swap(l); old != nil {
		old.disarm()
	}
}

// erase drops the cached key and zeroes what can be zeroed.
func (e *entry) erase() {
	if l := e.cur.Swap(nil); l != nil {
		l.disarm()
		clear(l.raw)
	}
}

// aead returns the unwrapped key of sl, from the cache when it can.
//
//   - younger than 80% of the TTL: served;
//   - older, up to the end of the stale window: served at once, and
//     refreshed in the background (refresh-ahead before the TTL,
//     stale-while-revalidate after it), one refresh at a time, none while
//     backing off after a transient failure;
//   - past the stale window: if the key source failed the last refresh, or
//     has not answered the background refresh still under way, the call
//     fails at once with ErrKEKUnavailable, and starts a background retry
//     unless one is under way (one at a time), which brings the key back
//     once the key source answers;
//     otherwise (nothing is known of the key source: the key aged unused)
//     it is unwrapped and the caller waits, as for a key not cached;
//   - not cached: unwrapped, and the caller waits;
//   - a definitive refusal evicts the key at once.
//
// Concurrent callers that wait share one unwrap. No call waits for a key
// source that is unavailable while a cached copy may be served.
//
// hit reports whether the key was served without waiting for the key source.
func (k *Keyring) aead(ctx context.Context, sl *slot) (l *loaded, hit bool, err error) {
	if sl == nil {
		return nil, false, fmt.Errorf("keyring: keyring %q has no primary data key", k.name)
	}
	e := sl.e
	l = e.cur.Load()
	if l == nil {
		l, err = k.unwrap(ctx, sl)
		return l, false, err
	}
	switch l.stage.Load() {
	case stageFresh:
		return l, true, nil
	case stageRefresh, stageExpired:
		if !e.busy.Load() && !e.backingOff.Load() {
			k.refreshAsync(sl)
		}
		return l, true, nil
	}
	l, err = k.unwrapPastStale(ctx, sl)
	return l, false, err
}

// unwrap waits for an unwrap of sl, starting one if none is under way,
// until it ends or ctx is done.
func (k *Keyring) unwrap(ctx context.Context, sl *slot) (*loaded, error) {
	e := sl.e
	e.mu.Lock()
	f := k.startFlight(ctx, e, sl, false)
	e.mu.Unlock()
	return k.wait(ctx, sl, f)
}

// unwrapPastStale is unwrap for a key whose cached copy is past the stale
// window: it fails at once when the key source is known to be unavailable.
func (k *Keyring) unwrapPastStale(ctx context.Context, sl *slot) (*loaded, error) {
	e := sl.e
	e.mu.Lock()
	if e.failing.Load() || (e.flight != nil && e.flight.revalidate) {
		why, last := "the key source has not answered the refresh under way", e.lastErr
		if e.flight == nil {
			k.startFlight(context.Background(), e, sl, true) // retry in the background
		}
		e.mu.Unlock()
		if last != nil {
			return nil, fmt.Errorf("keyring: key ID %d of keyring %q: its cached copy is past the stale window (%v after the TTL) and the last unwrap failed: %w",
				sl.key.ID, k.name, k.cfg.stale, last)
		}
		return nil, fmt.Errorf("keyring: key ID %d of keyring %q: %w: its cached copy is past the stale window (%v after the TTL) and %s",
			sl.key.ID, k.name, ErrKEKUnavailable, k.cfg.stale, why)
	}
	f := k.startFlight(ctx, e, sl, false)
	e.mu.Unlock()
	return k.wait(ctx, sl, f)
}

// wait waits for f until it ends or ctx is done.
func (k *Keyring) wait(ctx context.Context, sl *slot, f *flight) (*loaded, error) {
	select {
	case <-f.done:
		if f.err != nil {
			return nil, f.err
		}
		return f.l, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("keyring: unwrap key ID %d of keyring %q: %w", sl.key.ID, k.name, ctx.Err())
	}
}

// refreshAsync starts a background unwrap of sl unless one is under way.
func (k *Keyring) refreshAsync(sl *slot) {
	e := sl.e
	e.mu.Lock()
	if e.flight == nil {
		k.startFlight(context.Background(), e, sl, true)
	}
	e.mu.Unlock()
}

// startFlight returns the unwrap under way for e, or starts one. The unwrap
// runs detached from any one caller, bounded by the KMS timeout and Close;
// its span continues the trace of caller, the context that started it.
// revalidate marks a refresh started while a cached copy is served. e.mu
// must be held.
func (k *Keyring) startFlight(caller context.Context, e *entry, sl *slot, revalidate bool) *flight {
	if e.flight != nil {
		return e.flight
	}
	f := &flight{done: make(chan struct{}), revalidate: revalidate}
	e.flight = f
	e.busy.Store(true)
	parent := trace.SpanContextFromContext(caller)
	started := k.goBackground(func(ctx context.Context) {
		if parent.IsValid() {
			ctx = trace.ContextWithSpanContext(ctx, parent)
		}
		l, end, err := k.fetch(ctx, sl.key.ID)
		e.mu.Lock()
		switch {
		case err == nil:
			k.cache(e, l)
			e.failing.Store(false)
			e.lastErr = nil
			if !k.usable(sl.key.ID) {
				e.erase() // disabled or destroyed while it was unwrapped (install erases after it publishes)
			}
		case transient(err):
			e.lastErr = unavailable(err)
			e.failing.Store(true)
			e.backingOff.Store(true)
			k.cfg.clock.AfterFunc(k.backoff, func() { e.backingOff.Store(false) })
		default:
			e.failing.Store(false)
			e.lastErr = nil
			e.erase()
		}
		f.l, f.err = l, err
		e.flight = nil
		e.busy.Store(false)
		e.mu.Unlock()
		end() // the unwrap's span ends once its result is in effect, before callers go on
		close(f.done)
	})
	if !started {
		f.err = ErrClosed
		e.flight = nil
		e.busy.Store(false)
		close(f.done)
	}
	return f
}

// unavailable makes a transient error match ErrKEKUnavailable (an error no
// KeySource classified is treated as unavailability).
func unavailable(err error) error {
	if errors.Is(err, ErrKEKUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrKEKUnavailable, err)
}

// usable reports whether key id may be used according to the current
// snapshot.
func (k *Keyring) usable(id uint32) bool {
	sl, ok := k.snap.Load().byID[id]
	return ok && sl.usable
}

// fetch unwraps the current stored version of key id. end ends the
// unwrap's span (a no-op when there is none); call it once the result is in
// effect.
func (k *Keyring) fetch(ctx context.Context, id uint32) (l *loaded, end func(), err error) {
	end = func() {}
	sl, ok := k.snap.Load().byID[id]
	if !ok || sl.key.State == StateDestroyed {
		return nil, end, fmt.Errorf("%w: key ID %d of keyring %q", ErrKeyDestroyed, id, k.name)
	}
	key := sl.key
	src, err := k.sourceFor(key)
	if err != nil {
		return nil, end, err
	}
	raw, end, err := k.unwrapSpan(ctx, key, src, func(ctx context.Context) ([]byte, error) {
		return src.Unwrap(ctx, key.Wrapped, dekAAD(k.name, key.ID, key.Purpose, key.Algorithm))
	})
	if err != nil {
		return nil, end, fmt.Errorf("keyring: unwrap key ID %d of keyring %q with %s: %w", key.ID, k.name, src.ID(), err)
	}
	defer clear(raw)
	l, err = newLoaded(key, raw)
	return l, end, err
}
