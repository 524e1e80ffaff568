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

// Run runs the suite.
func Run(t *testing.T, newStore NewStore) {
	ctx := context.Background()

	t.Run("NotFound", func(t *testing.T) {
		s, _ := newStore(t)
		if _, err := s.Load(ctx, "missing"); !errors.Is(err, keyring.ErrKeyringNotFound) {
			t.Fatalf("Load(missing) = %v, want ErrKeyringNotFound", err)
		}
	})

	t.Run("Counts", func(t *testing.T) {
		s, other := newStore(t)
		a, ok := s.(keyring.CountStore)
		b, ok2 := other.(keyring.CountStore)
		if !ok || !ok2 {
			t.Skip("not a keyring.CountStore")
		}
		if err := s.Save(ctx, keyset("counted", 7, 9)); err != nil {
			t.Fatal(err)
		}
		// Two handles add at once, as two processes of a fleet.
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for i := range 20 {
			cs := a
			if i%2 == 1 {
				cs = b
			}
			wg.Go(func() {
				_, err := cs.AddEncryptions(ctx, "counted", map[uint32]uint64{7: 3, 9: 1})
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("AddEncryptions: %v", err)
			}
		}
		got, err := b.AddEncryptions(ctx, "counted", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got[7] != 60 || got[9] != 20 || len(got) != 2 {
			t.Fatalf("counts after 20 additions of {7: 3, 9: 1} = %v, want {7: 60, 9: 20}", got)
		}
		if other, err := a.AddEncryptions(ctx, "other", nil); err != nil || len(other) != 0 {
			t.Fatalf("counts of another keyring = %v, %v; want none", other, err)
		}
		ks, err := other.Load(ctx, "counted")
		if err != nil || ks.Version != 1 {
			t.Fatalf("keyset after counting = version %d, %v; want version 1", ks.Version, err)
		}
	})

	t.Run("CreateLoad", func(t *testing.T) {
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
	})

	t.Run("CompareAndSwap", func(t *testing.T) {
		s, other := newStore(t)
		if err := s.Save(ctx, keyset("default", 1)); err != nil {
			t.Fatal(err)
		}
		if err := other.Save(ctx, keyset("default", 1, 2)); !errors.Is(err, keyring.ErrConflict) {
			t.Fatalf("Save(version 0) over an existing keyset = %v, want ErrConflict", err)
		}
		ks, _ := other.Load(ctx, "default")
		next := keyset("default", 1, 2)
		next.Version = ks.Version
		if err := other.Save(ctx, next); err != nil {
			t.Fatal(err)
		}
		stale := keyset("default", 1, 3)
		stale.Version = ks.Version
		if err := s.Save(ctx, stale); !errors.Is(err, keyring.ErrConflict) {
			t.Fatalf("Save(stale version) = %v, want ErrConflict", err)
		}
		got, _ := s.Load(ctx, "default")
		if got.Version != 2 || len(got.Keys) != 2 || got.Keys[1].ID != 2 {
			t.Fatalf("after a refused save: %+v", got)
		}
	})

	t.Run("ConcurrentWriters", func(t *testing.T) {
		s, other := newStore(t)
		if err := s.Save(ctx, keyset("default", 1)); err != nil {
			t.Fatal(err)
		}
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
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if ok.Load() != 1 || conflicts.Load() != 7 {
			t.Fatalf("8 writers from version 1: %d saved, %d conflicts; want 1 and 7", ok.Load(), conflicts.Load())
		}
		if got, _ := s.Load(ctx, "default"); got.Version != 2 {
			t.Fatalf("version = %d, want 2", got.Version)
		}
	})

	t.Run("Validation", func(t *testing.T) {
		s, _ := newStore(t)
		bad := keyset("default", 5, 5)
		if err := s.Save(ctx, bad); err == nil {
			t.Error("Save(duplicate key IDs) succeeded")
		}
		bad = keyset("default", 5, 6)
		bad.Keys[0].State = keyring.StateActive
		if err := s.Save(ctx, bad); err == nil {
			t.Error("Save(two active keys) succeeded")
		}
		if _, err := s.Load(ctx, "default"); !errors.Is(err, keyring.ErrKeyringNotFound) {
			t.Errorf("a refused save stored something: %v", err)
		}
	})

	t.Run("NamesAndCopies", func(t *testing.T) {
		s, _ := newStore(t)
		if err := s.Save(ctx, keyset("a", 1)); err != nil {
			t.Fatal(err)
		}
		if err := s.Save(ctx, keyset("b", 2)); err != nil {
			t.Fatal(err)
		}
		a, _ := s.Load(ctx, "a")
		a.Keys[0].Wrapped[0] = 99
		a.Keys[0].State = keyring.StateDisabled
		again, _ := s.Load(ctx, "a")
		if again.Keys[0].Wrapped[0] != 1 || again.Keys[0].State != keyring.StateActive {
			t.Error("changing a loaded keyset changed the store")
		}
		if b, _ := s.Load(ctx, "b"); b.Keys[0].ID != 2 || b.Version != 1 {
			t.Errorf("keyset b = %+v", b)
		}
	})

	t.Run("Cancelled", func(t *testing.T) {
		s, _ := newStore(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.Load(cctx, "default"); !errors.Is(err, context.Canceled) {
			t.Errorf("Load(cancelled) = %v, want context.Canceled", err)
		}
		if err := s.Save(cctx, keyset("default", 1)); !errors.Is(err, context.Canceled) {
			t.Errorf("Save(cancelled) = %v, want context.Canceled", err)
		}
	})
}
