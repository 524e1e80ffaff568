package keyring

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// CountStore is the optional capability of a Store that keeps how many
// values each data key has encrypted, summed over every process sharing
// the store, so that a rotation policy sees the fleet's total (random
// 96-bit GCM nonces must stay far below 2^32 messages per key, whichever
// process sends them). A Keyring over such a store adds its count to the
// store every DefaultCountInterval (WithCountInterval) and after every
// CountEvery encryptions, never once per encryption. MemoryStore,
// FileStore and gormcrypt's Store are CountStores.
type CountStore interface {
	Store
	// AddEncryptions adds n[id] to the counts of keyring name's keys and
	// returns the counts of all its keys after the addition. With n
	// empty it only reads them.
	AddEncryptions(ctx context.Context, name string, n map[uint32]uint64) (map[uint32]uint64, error)
}

// Counting defaults.
const (
	// DefaultCountInterval is how often a keyring adds its encryption
	// counts to a CountStore.
	DefaultCountInterval = 10 * time.Second
	// CountEvery is how many encryptions under one key make a keyring add
	// its counts to a CountStore before the interval ends.
	CountEvery = 1 << 16
)

// WithCountInterval sets how often the keyring adds its encryption counts
// to a CountStore (default DefaultCountInterval).
func WithCountInterval(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d <= 0 {
			return errors.New("keyring: count interval must be positive")
		}
		c.countInterval = d
		return c.once("WithCountInterval")
	})
}

// fleetCounts is a keyring's exchange of encryption counts with a
// CountStore.
type fleetCounts struct {
	cs   CountStore
	busy atomic.Bool // an exchange is under way in the background

	mu      sync.Mutex
	added   map[uint32]uint64 // this process's encryptions already added, by key
	fleet   map[uint32]uint64 // the store's counts as of the last exchange
	stop    func() bool       // the pending timer
	lastErr error
}

// startCounts sets up the exchange when the store counts.
func (k *Keyring) startCounts() {
	cs, ok := k.store.(CountStore)
	if !ok {
		return
	}
	k.counts = &fleetCounts{cs: cs, added: map[uint32]uint64{}, fleet: map[uint32]uint64{}}
	k.armCounts()
}

// armCounts sets the timer of the next exchange.
func (k *Keyring) armCounts() {
	fc := k.counts
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if k.closed.Load() {
		return
	}
	fc.stop = k.cfg.clock.AfterFunc(k.countInterval(), func() {
		k.goBackground(func(ctx context.Context) { _ = k.SyncEncryptions(ctx) })
		k.armCounts()
	})
}

func (k *Keyring) countInterval() time.Duration {
	if k.cfg.countInterval > 0 {
		return k.cfg.countInterval
	}
	return DefaultCountInterval
}

// counted is called with a key's encryption count after an encryption:
// every CountEvery encryptions it starts an exchange in the background.
func (k *Keyring) counted(n uint64) {
	if n%CountEvery != 0 || k.counts == nil || !k.counts.busy.CompareAndSwap(false, true) {
		return
	}
	if !k.goBackground(func(ctx context.Context) {
		defer k.counts.busy.Store(false)
		_ = k.SyncEncryptions(ctx)
	}) {
		k.counts.busy.Store(false)
	}
}

// SyncEncryptions adds this process's encryption counts to the store now
// and reads the fleet's totals, when the store is a CountStore (else it
// does nothing). The keyring does it by itself every count interval; a
// rotation scheduler calls it before it decides.
func (k *Keyring) SyncEncryptions(ctx context.Context) error {
	fc := k.counts
	if fc == nil {
		return nil
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	k.mu.Lock()
	delta := map[uint32]uint64{}
	local := map[uint32]uint64{}
	for id, e := range k.entries {
		n := e.encryptions.Load()
		local[id] = n
		if d := n - fc.added[id]; d > 0 {
			delta[id] = d
		}
	}
	k.mu.Unlock()
	totals, err := fc.cs.AddEncryptions(ctx, k.name, delta)
	if err != nil {
		fc.lastErr = err
		return fmt.Errorf("keyring: add encryption counts of %q: %w", k.name, err)
	}
	for id, d := range delta {
		fc.added[id] += d
	}
	fc.fleet, fc.lastErr = totals, nil
	return nil
}

// fleetEncryptions returns the fleet's count of key id: the store's total
// as of the last exchange plus what this process has not added yet.
func (k *Keyring) fleetEncryptions(id uint32, local uint64) uint64 {
	fc := k.counts
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return fc.fleet[id] + local - fc.added[id]
}

// closeCounts stops the timer and adds what is left to the store, bounded
// by a short timeout.
func (k *Keyring) closeCounts() {
	fc := k.counts
	if fc == nil {
		return
	}
	fc.mu.Lock()
	if fc.stop != nil {
		fc.stop()
	}
	fc.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = k.SyncEncryptions(ctx)
}

// AddEncryptions implements CountStore.
func (m *MemoryStore) AddEncryptions(ctx context.Context, name string, n map[uint32]uint64) (map[uint32]uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.counts == nil {
		m.counts = map[string]map[uint32]uint64{}
	}
	c := m.counts[name]
	if c == nil {
		c = map[uint32]uint64{}
		m.counts[name] = c
	}
	for id, d := range n {
		c[id] += d
	}
	return copyCounts(c), nil
}

var _ CountStore = (*MemoryStore)(nil)
