package keyring

import (
	"context"
	"fmt"
	"strconv"
	"sync"
)

// Store keeps keysets (wrapped data keys and their states). Stores are shared
// by many keyrings and processes, so Save is a compare-and-swap.
type Store interface {
	// Load returns the keyset named name, or an error wrapping
	// ErrKeyringNotFound.
	Load(ctx context.Context, name string) (Keyset, error)

	// Save stores ks if the stored keyset's version equals ks.Version (0 =
	// no keyset of that name exists yet), and records it with version
	// ks.Version+1. If the stored version differs it stores nothing and
	// returns an error wrapping ErrConflict.
	Save(ctx context.Context, ks Keyset) error
}

// MemoryStore is a Store in memory, for tests and single-process programs
// whose keys need not outlive the process. Safe for concurrent use.
type MemoryStore struct {
	mu     sync.Mutex
	sets   map[string]Keyset
	counts map[string]map[uint32]uint64 // encryptions by keyring and key
}

var _ Store = (*MemoryStore)(nil)

// String describes the store by the number of keysets it holds.
func (m *MemoryStore) String() string {
	m.mu.Lock()
	n := len(m.sets)
	m.mu.Unlock()
	return "keyring.MemoryStore{" + strconv.Itoa(n) + " keysets}"
}

// GoString is String.
func (m *MemoryStore) GoString() string { return m.String() }

// Format prints String under every verb: never the wrapped keys.
func (m *MemoryStore) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(m.String())) }

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{sets: map[string]Keyset{}} }

// Load implements Store.
func (m *MemoryStore) Load(ctx context.Context, name string) (Keyset, error) {
	if err := ctx.Err(); err != nil {
		return Keyset{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ks, ok := m.sets[name]
	if !ok {
		return Keyset{}, fmt.Errorf("%w: %q", ErrKeyringNotFound, name)
	}
	return ks.Clone(), nil
}

// Save implements Store.
func (m *MemoryStore) Save(ctx context.Context, ks Keyset) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := ks.Validate(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur := m.sets[ks.Name]; cur.Version != ks.Version {
		return fmt.Errorf("%w: keyset %q is at version %d, not %d", ErrConflict, ks.Name, cur.Version, ks.Version)
	}
	ks = ks.Clone()
	ks.Version++
	m.sets[ks.Name] = ks
	return nil
}
