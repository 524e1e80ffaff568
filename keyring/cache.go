package keyring

import (
	"context"
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

	mu     sync.Mutex
	flight *flight // the unwrap under way, if any
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
	done chan struct{}
	l    *loaded
	err  error
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

// aead returns the unwrapped key of sl, from the cache when fresh.
//
//   - younger than 80% of the TTL: served;
//   - older, but within the TTL: served, refreshed in the background;
//   - past the TTL: refreshed, and the caller waits; if the key source is
//     unavailable (transient error, or no answer before the caller's context
//     ends) the cached key is served until the stale window passes;
//   - a definitive refusal evicts the key at once.
//
// Concurrent callers share one unwrap.
//
// hit reports whether the key was served without waiting for the key source.
func (k *Keyring) aead(ctx context.Context, sl *slot) (l *loaded, hit bool, err error) {
	if sl == nil {
		return nil, false, fmt.Errorf("keyring: keyring %q has no primary data key", k.name)
	}
	l = sl.e.cur.Load()
	if l == nil {
		l, err = k.unwrap(ctx, sl, nil)
		return l, false, err
	}
	switch l.stage.Load() {
	case stageFresh:
		return l, true, nil
	case stageRefresh:
		if !sl.e.busy.Load() && !sl.e.backingOff.Load() {
			k.refreshAsync(sl)
		}
		return l, true, nil
	case stageExpired:
		l, err = k.unwrap(ctx, sl, l)
		return l, false, err
	}
	l, err = k.unwrap(ctx, sl, nil)
	return l, false, err
}

// unwrap waits for an unwrap of sl (starting one if none is under way). With
// a stale copy it falls back to it when the key source is unavailable.
func (k *Keyring) unwrap(ctx context.Context, sl *slot, stale *loaded) (*loaded, error) {
	e := sl.e
	if stale != nil && e.backingOff.Load() && !e.busy.Load() {
		return stale, nil // the key source failed moments ago: do not hammer it
	}
	e.mu.Lock()
	f := k.startFlight(ctx, e, sl)
	e.mu.Unlock()

	select {
	case <-f.done:
		if f.err == nil {
			return f.l, nil
		}
		if stale != nil && transient(f.err) {
			return stale, nil
		}
		return nil, f.err
	case <-ctx.Done():
		if stale != nil {
			return stale, nil
		}
		return nil, fmt.Errorf("keyring: unwrap key ID %d of keyring %q: %w", sl.key.ID, k.name, ctx.Err())
	}
}

// refreshAsync starts a background unwrap of sl unless one is under way.
func (k *Keyring) refreshAsync(sl *slot) {
	e := sl.e
	e.mu.Lock()
	if e.flight == nil {
		k.startFlight(context.Background(), e, sl)
	}
	e.mu.Unlock()
}

// startFlight returns the unwrap under way for e, or starts one. The unwrap
// runs detached from any one caller, bounded by the KMS timeout and Close;
// its span continues the trace of caller, the context that started it.
// e.mu must be held.
func (k *Keyring) startFlight(caller context.Context, e *entry, sl *slot) *flight {
	if e.flight != nil {
		return e.flight
	}
	f := &flight{done: make(chan struct{})}
	e.flight = f
	e.busy.Store(true)
	parent := trace.SpanContextFromContext(caller)
	started := k.goBackground(func(ctx context.Context) {
		if parent.IsValid() {
			ctx = trace.ContextWithSpanContext(ctx, parent)
		}
		l, err := k.fetch(ctx, sl.key.ID)
		e.mu.Lock()
		switch {
		case err == nil:
			k.cache(e, l)
		case transient(err):
			e.backingOff.Store(true)
			k.cfg.clock.AfterFunc(k.backoff, func() { e.backingOff.Store(false) })
		default:
			e.erase()
		}
		f.l, f.err = l, err
		e.flight = nil
		e.busy.Store(false)
		e.mu.Unlock()
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

// fetch unwraps the current stored version of key id.
func (k *Keyring) fetch(ctx context.Context, id uint32) (*loaded, error) {
	sl, ok := k.snap.Load().byID[id]
	if !ok || sl.key.State == StateDestroyed {
		return nil, fmt.Errorf("%w: key ID %d of keyring %q", ErrKeyDestroyed, id, k.name)
	}
	key := sl.key
	src, err := k.sourceFor(key)
	if err != nil {
		return nil, err
	}
	raw, err := k.unwrapSpan(ctx, key, src, func(ctx context.Context) ([]byte, error) {
		return src.Unwrap(ctx, key.Wrapped, dekAAD(k.name, key.ID, key.Purpose, key.Algorithm))
	})
	if err != nil {
		return nil, fmt.Errorf("keyring: unwrap key ID %d of keyring %q with %s: %w", key.ID, k.name, src.ID(), err)
	}
	defer clear(raw)
	return newLoaded(key, raw)
}
