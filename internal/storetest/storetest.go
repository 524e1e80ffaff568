package storetest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/cipher"
	"github.com/keyward/keyward/keyring"
)

// NewStore returns an empty store; use t.Cleanup to release it. Stores
// returned by two calls within one test must share their data when shared
// is true (two handles on one database or file, as two processes would
// have); the suite uses that to test compare-and-swap across handles.
type NewStore func(t *testing.T) (a, b keyring.Store)

func keyset(name string, ids ...uint32) keyring.Keyset {
	ks := keyring.Keyset{Name: name, KEK: "test:kek"}
	now := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	for i, id := range ids {
		st := keyring.StateEnabled
		if i == len(ids)-1 {
			st = keyring.StateActive
		}
		k := keyring.Key{
			ID: id, Purpose: keyring.PurposeData, Algorithm: cipher.AES256GCM, State: st,
			KEK: "test:kek", Wrapped: []byte{1, 2, 3, byte(id)}, Created: now, Updated: now,
		}
		if st != keyring.StateActive {
			k.Retired = now.Add(time.Duration(i+1) * time.Minute)
		}
		ks.Keys = append(ks.Keys, k)
	}
	return ks
}

// fullKeyset is a keyset in which every field of Keyset and Key holds a
// value: a store that drops a field fails CreateLoad.
func fullKeyset(name string) keyring.Keyset {
	ks := keyset(name, 7, 8, 9, 10)
	t := time.Date(2026, 11, 2, 10, 30, 15, 0, time.UTC)
	ks.Keys[0].State, ks.Keys[0].Disabled, ks.Keys[0].Updated = keyring.StateDisabled, t, t
	ks.Keys[1].State, ks.Keys[1].Wrapped, ks.Keys[1].Updated = keyring.StateDestroyed, nil, t.Add(time.Hour)
	ks.Keys[1].Disabled = t.Add(-time.Hour)
	ks.Keys[2].Purpose, ks.Keys[2].Algorithm = keyring.PurposeDerive, cipher.AES256GCM
	ks.Keys[2].State, ks.Keys[2].Retired = keyring.StateActive, time.Time{}
	ks.Keys[3].Algorithm, ks.Keys[3].KEK = cipher.XChaCha20Poly1305, "test:other-kek"
	return ks
}

// Run runs the suite: one named subtest per property.
func Run(t *testing.T, newStore NewStore) {
	for _, tc := range []struct {
		name string
		test func(*testing.T, NewStore)
	}{
		{"NotFound", testNotFound},
		{"Counts", testCounts},
		{"CreateLoad", testCreateLoad},
		{"CompareAndSwap", testCompareAndSwap},
		{"ConcurrentWriters", testConcurrentWriters},
		{"Validation", testValidation},
		{"NamesAndCopies", testNamesAndCopies},
		{"Cancelled", testCancelled},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.test(t, newStore) })
	}
}

// testNotFound: Load of a keyring never saved is ErrKeyringNotFound.
func testNotFound(t *testing.T, newStore NewStore) {
	s, _ := newStore(t)
	_, err := s.Load(context.Background(), "missing")
	assert.ErrorIs(t, err, keyring.ErrKeyringNotFound, "Load(missing)")
}

// testCounts: encryption counts added through two handles at once add up,
// are kept per keyring and do not change the keyset's version.
func testCounts(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s, other := newStore(t)
	a, ok := s.(keyring.CountStore)
	b, ok2 := other.(keyring.CountStore)
	if !ok || !ok2 {
		t.Skip("not a keyring.CountStore")
	}
	require.NoError(t, s.Save(ctx, keyset("counted", 7, 9)), "Save")
	// Two handles add at once, as two processes of a fleet.
	var wg sync.WaitGroup
	for i := range 20 {
		cs := a
		if i%2 == 1 {
			cs = b
		}
		wg.Go(func() {
			_, err := cs.AddEncryptions(ctx, "counted", map[uint32]uint64{7: 3, 9: 1})
			assert.NoError(t, err, "AddEncryptions %d", i)
		})
	}
	wg.Wait()
	got, err := b.AddEncryptions(ctx, "counted", nil)
	require.NoError(t, err, "AddEncryptions(nil)")
	assert.Equal(t, map[uint32]uint64{7: 60, 9: 20}, got, "counts after 20 additions of {7: 3, 9: 1}")
	none, err := a.AddEncryptions(ctx, "other", nil)
	require.NoError(t, err, "AddEncryptions(other keyring, nil)")
	assert.Empty(t, none, "counts of a keyring nothing was counted for")
	ks, err := other.Load(ctx, "counted")
	require.NoError(t, err, "Load after counting")
	assert.Equal(t, uint64(1), ks.Version, "keyset version after counting (counting must not change it)")
}

// testCreateLoad: a saved keyset comes back field for field through both
// handles, at version 1.
func testCreateLoad(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s, other := newStore(t)
	want := fullKeyset("default")
	require.NoError(t, want.Validate(), "the suite's keyset")
	require.NoError(t, s.Save(ctx, want))
	want.Version = 1
	for i, st := range []keyring.Store{s, other} {
		got, err := st.Load(ctx, "default")
		require.NoError(t, err, "Load through handle %d", i)
		// Every field comes back as saved: a field a store does not
		// keep shows here.
		assert.Equal(t, want, got, "Load through handle %d of the saved keyset", i)
	}
}

// testCompareAndSwap: a save from a version other than the stored one is
// ErrConflict and changes nothing.
func testCompareAndSwap(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s, other := newStore(t)
	require.NoError(t, s.Save(ctx, keyset("default", 1)), "Save(version 0)")
	err := other.Save(ctx, keyset("default", 1, 2))
	require.ErrorIs(t, err, keyring.ErrConflict, "Save(version 0) over an existing keyset")
	ks, err := other.Load(ctx, "default")
	require.NoError(t, err, "Load")
	next := keyset("default", 1, 2)
	next.Version = ks.Version
	require.NoError(t, other.Save(ctx, next), "Save(current version %d)", ks.Version)
	stale := keyset("default", 1, 3)
	stale.Version = ks.Version
	require.ErrorIs(t, s.Save(ctx, stale), keyring.ErrConflict, "Save(stale version %d)", ks.Version)
	got, err := s.Load(ctx, "default")
	require.NoError(t, err, "Load after a refused save")
	assert.Equal(t, uint64(2), got.Version, "version after a refused save")
	if assert.Len(t, got.Keys, 2, "keys after a refused save") {
		assert.Equal(t, uint32(2), got.Keys[1].ID, "second key after a refused save")
	}
}

// testConcurrentWriters: of 8 writers saving from one version through two
// handles, exactly one succeeds and 7 get ErrConflict.
func testConcurrentWriters(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s, other := newStore(t)
	require.NoError(t, s.Save(ctx, keyset("default", 1)), "Save(version 0)")
	var ok, conflicts atomic.Int64
	var wg sync.WaitGroup
	for i := range 8 {
		st := s
		if i%2 == 1 {
			st = other
		}
		wg.Go(func() {
			ks := keyset("default", 1, uint32(100+i))
			ks.Version = 1
			switch err := st.Save(ctx, ks); {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, keyring.ErrConflict):
				conflicts.Add(1)
			default:
				assert.NoError(t, err, "writer %d: Save", i)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(1), ok.Load(), "writers that saved, of 8 from version 1")
	assert.Equal(t, int64(7), conflicts.Load(), "writers refused with ErrConflict, of 8 from version 1")
	got, err := s.Load(ctx, "default")
	require.NoError(t, err, "Load")
	assert.Equal(t, uint64(2), got.Version, "version after the writers")
}

// testValidation: the store refuses invalid keysets and stores nothing.
func testValidation(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s, _ := newStore(t)
	assert.Error(t, s.Save(ctx, keyset("default", 5, 5)), "Save(duplicate key IDs)")
	bad := keyset("default", 5, 6)
	bad.Keys[0].State = keyring.StateActive
	assert.Error(t, s.Save(ctx, bad), "Save(two active keys)")
	_, err := s.Load(ctx, "default")
	assert.ErrorIs(t, err, keyring.ErrKeyringNotFound, "Load after refused saves (they must store nothing)")
}

// testNamesAndCopies: keyrings are kept apart by name, and a loaded keyset
// is a copy.
func testNamesAndCopies(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s, _ := newStore(t)
	require.NoError(t, s.Save(ctx, keyset("a", 1)), "Save(a)")
	require.NoError(t, s.Save(ctx, keyset("b", 2)), "Save(b)")
	a, err := s.Load(ctx, "a")
	require.NoError(t, err, "Load(a)")
	a.Keys[0].Wrapped[0] = 99
	a.Keys[0].State = keyring.StateDisabled
	again, err := s.Load(ctx, "a")
	require.NoError(t, err, "Load(a) again")
	assert.Equal(t, byte(1), again.Keys[0].Wrapped[0], "wrapped key after changing a loaded copy")
	assert.Equal(t, keyring.StateActive, again.Keys[0].State, "state after changing a loaded copy")
	b, err := s.Load(ctx, "b")
	require.NoError(t, err, "Load(b)")
	assert.Equal(t, uint32(2), b.Keys[0].ID, "key ID of keyset b")
	assert.Equal(t, uint64(1), b.Version, "version of keyset b")
}

// testCancelled: Load and Save honour a cancelled context.
func testCancelled(t *testing.T, newStore NewStore) {
	s, _ := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Load(ctx, "default")
	assert.ErrorIs(t, err, context.Canceled, "Load(cancelled context)")
	assert.ErrorIs(t, s.Save(ctx, keyset("default", 1)), context.Canceled, "Save(cancelled context)")
}
