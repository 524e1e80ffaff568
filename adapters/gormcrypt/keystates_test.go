package gormcrypt_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/adapters/gormcrypt"
	"github.com/keyward/keyward/cipher"
	"github.com/keyward/keyward/internal/dbtest"
	"github.com/keyward/keyward/internal/kmstest"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/rotation"
)

// Chart has an auto-increment key (its values are bound to table and
// column) and a text and a binary encrypted column.
type Chart struct {
	ID        uint
	Diagnosis string `gorm:"serializer:keyward"`
	Scan      []byte `gorm:"serializer:keyward"`
}

// targetUsage answers a keyring's UsageChecker from rotation targets that
// count their values by key: the hook a database inventory plugs into.
type targetUsage struct {
	mu      sync.Mutex
	targets []rotation.KeyCounter
}

func (u *targetUsage) add(t rotation.KeyCounter) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.targets = append(u.targets, t)
}

func (u *targetUsage) KeyInUse(ctx context.Context, _ string, keyID uint32) (bool, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, t := range u.targets {
		counts, err := t.CountByKey(ctx)
		if err != nil {
			return false, err
		}
		if counts[keyID] > 0 {
			return true, nil
		}
	}
	return false, nil
}

// rawChartKeys returns the key ID of every stored chart value, by chart ID.
func rawChartKeys(t *testing.T, db *gorm.DB) map[uint][]uint32 {
	t.Helper()
	rows, err := db.Raw("SELECT id, diagnosis, scan FROM charts ORDER BY id").Rows()
	require.NoError(t, err)
	defer rows.Close()
	out := map[uint][]uint32{}
	for rows.Next() {
		var (
			id         uint
			diag, scan []byte
		)
		require.NoError(t, rows.Scan(&id, &diag, &scan))
		for _, v := range [][]byte{diag, scan} {
			kid, ok := cipher.PeekKeyID(string(v))
			require.True(t, ok, "chart %d holds a value that is not a token", id)
			out[id] = append(out[id], kid)
		}
	}
	require.NoError(t, rows.Err())
	return out
}

// TestKeyStatesTwoProcesses stands two processes on one database, each
// with its own connection, store handle (gormcrypt.NewStore) and keyring:
// A, the operator's, rotates, re-encrypts and retires the old key; B, the
// application, writes and reads charts throughout. Nothing B writes is lost.
func TestKeyStatesTwoProcesses(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dbA *gorm.DB) {
		ctx := context.Background()
		dbB := dbtest.Reopen(t, dbA, nil)
		clk := kmstest.NewClock()
		raw := make([]byte, 32)
		_, _ = rand.Read(raw)
		src, err := filekey.New(raw)
		require.NoError(t, err)
		storeA, err := gormcrypt.NewStore(ctx, dbA)
		require.NoError(t, err)
		storeB, err := gormcrypt.NewStore(ctx, dbB)
		require.NoError(t, err)
		usage := &targetUsage{}
		opts := []keyring.Option{kmstest.WithClock(clk), keyring.WithCacheTTL(time.Hour)}
		a, err := keyring.New(ctx, "charts", src, storeA, append(opts, keyring.WithUsageChecker(usage))...)
		require.NoError(t, err)
		t.Cleanup(func() { a.Close() })
		b, err := keyring.New(ctx, "charts", src, storeB, opts...)
		require.NoError(t, err)
		t.Cleanup(func() { b.Close() })
		_, err = gormcrypt.Register(dbA, a)
		require.NoError(t, err)
		_, err = gormcrypt.Register(dbB, b)
		require.NoError(t, err)
		require.NoError(t, dbB.AutoMigrate(&Chart{}))
		target, err := gormcrypt.NewTarget(dbA, &Chart{})
		require.NoError(t, err)
		usage.add(target)

		write := func(i int) {
			t.Helper()
			c := &Chart{Diagnosis: fmt.Sprintf("CANARY-diagnosis-%d", i), Scan: []byte(fmt.Sprintf("CANARY-scan-%d", i))}
			require.NoError(t, dbB.Create(c).Error, "B writes chart %d", i)
		}
		readAll := func(what string) []Chart {
			t.Helper()
			var got []Chart
			require.NoError(t, dbB.Order("id").Find(&got).Error, "B reads every chart %s", what)
			for _, c := range got {
				i := int(c.ID)
				require.Equal(t, fmt.Sprintf("CANARY-diagnosis-%d", i), c.Diagnosis, "chart %d %s", i, what)
				require.Equal(t, fmt.Sprintf("CANARY-scan-%d", i), string(c.Scan), "chart %d %s", i, what)
			}
			return got
		}
		for i := 1; i <= 10; i++ {
			write(i)
		}
		old := a.Primary()

		// A rotates. B has not reloaded its keyring yet and goes on writing
		// under the old primary: the window the settle time covers.
		_, err = a.Rotate(ctx)
		require.NoError(t, err)
		write(11)
		require.Equal(t, []uint32{old, old}, rawChartKeys(t, dbA)[11], "B, not reloaded, writes chart 11 under the old primary")
		require.ErrorIs(t, a.Disable(ctx, old), keyring.ErrTooSoon, "A disabling the old primary while B may still write under it")

		// B reloads within the settle time (its reload interval); A waits
		// the settle time and re-encrypts everything B wrote.
		require.NoError(t, b.Reload(ctx))
		write(12)
		clk.Advance(keyring.DefaultSettleTime)
		st, err := rotation.Reencrypt(ctx, a, target, rotation.WithBatchSize(4))
		require.NoError(t, err, "Reencrypt")
		assert.Equal(t, int64(22), st.Rewritten, "values rewritten: charts 1-11, two each")
		assert.Zero(t, st.Remaining, "values left under other keys")
		counts, err := target.CountByKey(ctx)
		require.NoError(t, err)
		assert.Equal(t, map[uint32]int64{a.Primary(): 24}, counts, "CountByKey after the run: every value under the primary")

		require.NoError(t, a.Disable(ctx, old), "A disables the old key once settled and re-encrypted")
		require.NoError(t, b.Reload(ctx))
		readAll("after the old key was disabled")

		// A value under the old key comes back (a row restored from a
		// backup, written by a process on the keyset as it was): B cannot
		// read it, Destroy refuses, the next run fails closed.
		restore(t, ctx, dbA, storeA, src, old, &Chart{Diagnosis: "CANARY-diagnosis-13", Scan: []byte("CANARY-scan-13")})
		require.Equal(t, []uint32{old, old}, rawChartKeys(t, dbA)[13], "the restored chart is under the old key")
		require.NoError(t, b.Reload(ctx))
		var c13 Chart
		require.ErrorIs(t, dbB.First(&c13, 13).Error, keyring.ErrKeyDisabled, "B reading the restored chart under the disabled key")
		require.ErrorIs(t, a.Destroy(ctx, old), keyring.ErrTooSoon, "A destroying the key disabled moments ago")
		clk.Advance(keyring.DefaultSettleTime)
		require.ErrorIs(t, a.Destroy(ctx, old), keyring.ErrKeyInUse, "A destroying the key the restored chart uses")
		_, err = rotation.Reencrypt(ctx, a, target)
		require.ErrorIs(t, err, keyring.ErrKeyDisabled, "Reencrypt of a value under the disabled key fails closed")

		// The way out: enable, re-encrypt, disable, wait, destroy.
		require.NoError(t, a.Enable(ctx, old))
		st, err = rotation.Reencrypt(ctx, a, target)
		require.NoError(t, err, "Reencrypt of the restored chart")
		assert.Equal(t, int64(2), st.Rewritten, "values rewritten")
		require.NoError(t, a.Disable(ctx, old))
		clk.Advance(keyring.DefaultSettleTime)
		require.NoError(t, a.Destroy(ctx, old), "Destroy of the settled, unused old key")

		// B learns it on reload: the old key is gone, every chart reads.
		require.NoError(t, b.Reload(ctx))
		got := readAll("after the old key was destroyed")
		require.Len(t, got, 13)
		ks, err := storeB.Load(ctx, "charts")
		require.NoError(t, err)
		k, ok := ks.Lookup(old)
		require.True(t, ok)
		assert.Equal(t, keyring.StateDestroyed, k.State)
		assert.False(t, k.Retired.IsZero(), "Retired stored")
		assert.False(t, k.Disabled.IsZero(), "Disabled stored")
		assert.Equal(t, src.ID(), ks.KEK, "the keyset's KEK stored")
	})
}

// restore writes row through a keyring over a copy of the keyset in which
// key old is still the primary.
func restore(t *testing.T, ctx context.Context, db *gorm.DB, store keyring.Store, src keyring.KeySource, old uint32, row any) {
	t.Helper()
	ks, err := store.Load(ctx, "charts")
	require.NoError(t, err)
	for i := range ks.Keys {
		switch {
		case ks.Keys[i].ID == old:
			ks.Keys[i].State = keyring.StateActive
		case ks.Keys[i].State == keyring.StateActive:
			ks.Keys[i].State = keyring.StateEnabled
		}
	}
	ks.Version = 0
	backup := keyring.NewMemoryStore()
	require.NoError(t, backup.Save(ctx, ks))
	kr, err := keyring.New(ctx, "charts", src, backup)
	require.NoError(t, err)
	defer kr.Close()
	dbR := dbtest.Reopen(t, db, nil)
	_, err = gormcrypt.Register(dbR, kr)
	require.NoError(t, err)
	require.NoError(t, dbR.Create(row).Error)
}

// The store's rows as they were before keys recorded their retired and
// disabled times and keysets their KEK.
type earlierKeysetRow struct {
	Name    string    `gorm:"primaryKey;size:64"`
	Version int64     `gorm:"not null"`
	Updated time.Time `gorm:"not null"`
}

type earlierKeyRow struct {
	Keyring   string    `gorm:"primaryKey;size:64"`
	KeyID     int64     `gorm:"primaryKey;autoIncrement:false"`
	Position  int       `gorm:"not null"`
	Purpose   string    `gorm:"size:16;not null"`
	Algorithm string    `gorm:"size:32;not null"`
	State     string    `gorm:"size:16;not null"`
	KEK       string    `gorm:"column:kek;size:1024;not null"`
	Wrapped   []byte    `gorm:""`
	Created   time.Time `gorm:"not null"`
	Updated   time.Time `gorm:"not null"`
}

// TestStoreMigratesEarlierTables: NewStore adds the new columns to tables
// made by an earlier version, and their keysets load as they were (no
// recorded times, no required KEK) and stay usable.
func TestStoreMigratesEarlierTables(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		require.NoError(t, db.Table("keyward_keysets").AutoMigrate(&earlierKeysetRow{}))
		require.NoError(t, db.Table("keyward_keys").AutoMigrate(&earlierKeyRow{}))

		// A keyset written by a keyring over a memory store, copied into
		// the earlier tables.
		raw := make([]byte, 32)
		_, _ = rand.Read(raw)
		src, err := filekey.New(raw)
		require.NoError(t, err)
		mem := keyring.NewMemoryStore()
		kr, err := keyring.New(ctx, "legacy", src, mem)
		require.NoError(t, err)
		tok, err := kr.EncryptString(ctx, "CANARY-legacy")
		require.NoError(t, err)
		kr.Close()
		ks, err := mem.Load(ctx, "legacy")
		require.NoError(t, err)
		now := time.Now().UTC().Truncate(time.Second)
		require.NoError(t, db.Table("keyward_keysets").Create(&earlierKeysetRow{Name: "legacy", Version: 1, Updated: now}).Error)
		for i, k := range ks.Keys {
			require.NoError(t, db.Table("keyward_keys").Create(&earlierKeyRow{
				Keyring: "legacy", KeyID: int64(k.ID), Position: i, Purpose: string(k.Purpose),
				Algorithm: k.Algorithm.String(), State: string(k.State), KEK: k.KEK, Wrapped: k.Wrapped,
				Created: k.Created, Updated: k.Updated,
			}).Error)
		}

		store, err := gormcrypt.NewStore(ctx, db)
		require.NoError(t, err, "NewStore over the earlier tables")
		got, err := store.Load(ctx, "legacy")
		require.NoError(t, err, "Load of a keyset of the earlier tables")
		assert.Empty(t, got.KEK, "an earlier keyset requires no KEK")
		require.Len(t, got.Keys, 1)
		assert.True(t, got.Keys[0].Retired.IsZero() && got.Keys[0].Disabled.IsZero(), "no recorded times")

		kr, err = keyring.New(ctx, "legacy", src, store)
		require.NoError(t, err)
		defer kr.Close()
		pt, err := kr.DecryptString(ctx, tok)
		require.NoError(t, err)
		assert.Equal(t, "CANARY-legacy", pt)
		_, err = kr.Rotate(ctx)
		require.NoError(t, err, "Rotate of an earlier keyset")
		got, err = store.Load(ctx, "legacy")
		require.NoError(t, err)
		assert.False(t, got.Keys[0].Retired.IsZero(), "the rotation recorded when the first key was retired")
	})
}
