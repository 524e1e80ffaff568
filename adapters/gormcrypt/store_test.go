package gormcrypt_test

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"

	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/adapters/gormcrypt"
	"github.com/keyward/keyward/internal/dbtest"
	"github.com/keyward/keyward/internal/storetest"
	"github.com/keyward/keyward/keyring"
	"gorm.io/gorm"
)

func TestStore(t *testing.T) {
	for _, kind := range []string{dbtest.SQLite, dbtest.Postgres} {
		t.Run(kind, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) (keyring.Store, keyring.Store) {
				db := dbtest.Open(t, kind, nil)
				a, err := gormcrypt.NewStore(t.Context(), db)
				if err != nil {
					t.Fatal(err)
				}
				b, err := gormcrypt.NewStore(t.Context(), dbtest.Reopen(t, db, nil))
				if err != nil {
					t.Fatal(err)
				}
				return a, b
			})
		})
	}
}

// barrier releases the held saves once n loads have happened.
type barrier struct {
	mu      sync.Mutex
	armed   bool
	loads   int
	n       int
	release chan struct{}
}

func (b *barrier) loaded() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.armed {
		b.loads++
		if b.loads == b.n {
			close(b.release)
		}
	}
}

func (b *barrier) wait(ctx context.Context) error {
	b.mu.Lock()
	armed := b.armed
	b.mu.Unlock()
	if !armed {
		return nil
	}
	select {
	case <-b.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// barrierStore holds each Save until the barrier's loads have happened, so
// that two keyrings read the same keyset before either writes.
type barrierStore struct {
	keyring.Store
	b *barrier
}

func (s *barrierStore) Load(ctx context.Context, name string) (keyring.Keyset, error) {
	ks, err := s.Store.Load(ctx, name)
	s.b.loaded()
	return ks, err
}

func (s *barrierStore) Save(ctx context.Context, ks keyring.Keyset) error {
	if err := s.b.wait(ctx); err != nil {
		return err
	}
	return s.Store.Save(ctx, ks)
}

// TestConcurrentRotation has two keyrings (two processes) on one database
// rotate at the same moment: both read the keyset before either saves, and
// they end with exactly one new primary.
func TestConcurrentRotation(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		k := make([]byte, 32)
		_, _ = rand.Read(k)
		src, _ := filekey.New(k)
		b := &barrier{n: 2, release: make(chan struct{})}
		var stores [2]keyring.Store
		var krs [2]*keyring.Keyring
		for i := range 2 {
			h := db
			if i == 1 {
				h = dbtest.Reopen(t, db, nil)
			}
			s, err := gormcrypt.NewStore(t.Context(), h)
			if err != nil {
				t.Fatal(err)
			}
			stores[i] = s
			if krs[i], err = keyring.New(t.Context(), "shared", src, &barrierStore{Store: s, b: b}); err != nil {
				t.Fatal(err)
			}
			defer krs[i].Close()
		}
		first := krs[0].Primary()
		if krs[1].Primary() != first {
			t.Fatal("the two keyrings do not share their first key")
		}
		b.mu.Lock()
		b.armed = true
		b.mu.Unlock()
		var ids [2]uint32
		var errs [2]error
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Go(func() { ids[i], errs[i] = krs[i].Rotate(t.Context()) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("Rotate %d: %v", i, err)
			}
		}
		if ids[0] != ids[1] || ids[0] == first {
			t.Fatalf("Rotate returned %d and %d (first primary %d), want one new primary", ids[0], ids[1], first)
		}
		ks, err := stores[0].Load(t.Context(), "shared")
		if err != nil {
			t.Fatal(err)
		}
		data, active := 0, 0
		for _, key := range ks.Keys {
			if key.Purpose == keyring.PurposeData {
				data++
				if key.State == keyring.StateActive {
					active++
				}
			}
		}
		if data != 2 || active != 1 {
			t.Errorf("after concurrent rotations: %d data keys, %d active; want 2 and 1", data, active)
		}
		for i, kr := range krs {
			if kr.Primary() != ids[0] {
				t.Errorf("keyring %d has primary %d, want %d", i, kr.Primary(), ids[0])
			}
		}
	})
}

// TestNewStoreConcurrently starts several stores on one empty database at
// once, as instances of an application starting together would.
func TestNewStoreConcurrently(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		handles := []*gorm.DB{db, dbtest.Reopen(t, db, nil), dbtest.Reopen(t, db, nil)}
		errs := make([]error, len(handles))
		var wg sync.WaitGroup
		for i, h := range handles {
			wg.Go(func() { _, errs[i] = gormcrypt.NewStore(t.Context(), h, gormcrypt.WithTablePrefix("app_")) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("NewStore %d: %v", i, err)
			}
		}
		if !db.Migrator().HasTable("app_keysets") || !db.Migrator().HasTable("app_keys") {
			t.Error("tables app_keysets and app_keys not created")
		}
	})
}
