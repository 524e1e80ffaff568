package gormcrypt_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/internal/kmstest"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/telemetry"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/keyward/keyward/adapters/gormcrypt"
	"github.com/keyward/keyward/internal/dbtest"
	"github.com/keyward/keyward/rotation"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
)

// holdings returns Inventory as "table.column" -> key ID -> values.
func holdings(t *testing.T, db *gorm.DB) map[string]map[uint32]int64 {
	t.Helper()
	inv, err := gormcrypt.Inventory(context.Background(), db)
	require.NoError(t, err, "Inventory")
	out := map[string]map[uint32]int64{}
	for _, h := range inv {
		k := h.Table + "." + h.Column
		if out[k] == nil {
			out[k] = map[uint32]int64{}
		}
		out[k][h.KeyID] += h.Values
	}
	return out
}

func TestInventoryAndUsage(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		kr := newKeyring(t)
		_, err := gormcrypt.Register(db, kr, gormcrypt.WithLegacyPlaintext())
		require.NoError(t, err)
		require.NoError(t, gormcrypt.AutoMigrate(db, &Company{}, &Patient{}, &Visit{}, &Account{}))
		old := kr.Primary()
		for i := range 5 {
			p := newPatient("old")
			if i < 2 {
				p.Phone = nil // NULL is not a value
			}
			require.NoError(t, db.Create(p).Error)
		}
		require.NoError(t, db.Exec("INSERT INTO accounts (owner, balance) VALUES (?, ?)", "legacy owner", "7").Error)
		_, err = kr.Rotate(ctx)
		require.NoError(t, err)
		for range 3 {
			require.NoError(t, db.Create(newPatient("new")).Error)
		}
		cur := kr.Primary()

		got := holdings(t, db)
		assert.Equal(t, map[uint32]int64{old: 5, cur: 3}, got["patients.ssn"], "patients.ssn by key")
		assert.Equal(t, map[uint32]int64{old: 3, cur: 3}, got["patients.phone"], "patients.phone without its NULLs")
		assert.Equal(t, map[uint32]int64{0: 1}, got["accounts.owner"], "legacy plaintext under key ID 0")
		assert.Empty(t, got["companies.secret"], "an empty table holds nothing")

		u := gormcrypt.NewUsage(db)
		inUse, err := u.KeyInUse(ctx, kr.Name(), old)
		require.NoError(t, err)
		assert.True(t, inUse, "KeyInUse of the old key")
		n, err := u.KeyValues(ctx, kr.Name(), old)
		require.NoError(t, err)
		assert.Equal(t, int64(5*6-2), n, "values of the old key (5 patients, 2 NULL phones)")
		inUse, err = u.KeyInUse(ctx, "another-keyring", old)
		require.NoError(t, err)
		assert.False(t, inUse, "KeyInUse in another keyring's columns")

		targets, err := gormcrypt.RegistryTargets(ctx, db, kr)
		require.NoError(t, err)
		for _, target := range targets {
			_, err := rotation.Reencrypt(ctx, kr, target)
			require.NoError(t, err, "Reencrypt %s", target.Table())
		}
		inUse, err = u.KeyInUse(ctx, kr.Name(), old)
		require.NoError(t, err)
		assert.False(t, inUse, "KeyInUse of the old key after re-encryption")
		got = holdings(t, db)
		assert.Equal(t, map[uint32]int64{cur: 8}, got["patients.ssn"], "patients.ssn after re-encryption")
		assert.Equal(t, map[uint32]int64{cur: 1}, got["accounts.owner"], "legacy plaintext encrypted")
	})
}

func TestUsageWithoutRegistry(t *testing.T) {
	db := dbtest.Open(t, dbtest.SQLite, nil)
	_, err := gormcrypt.NewUsage(db).KeyInUse(context.Background(), "test", 7)
	assert.ErrorIs(t, err, gormcrypt.ErrNoRegistry, "a database without a registry cannot tell a key is unused")
	_, err = gormcrypt.Inventory(context.Background(), db)
	assert.ErrorIs(t, err, gormcrypt.ErrNoRegistry)
}

// TestGuardedDestroy: the keyring refuses to destroy a key the registry's
// columns still use, and a forced destroy records how many values it made
// unreadable.
func TestGuardedDestroy(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		clk := kmstest.NewClock()
		src, err := filekey.New(bytes.Repeat([]byte{7}, 32))
		require.NoError(t, err)
		store, err := gormcrypt.NewStore(ctx, db)
		require.NoError(t, err)
		rec := tracetest.NewSpanRecorder()
		var mu sync.Mutex
		var events []telemetry.Event
		sink := telemetry.SinkFunc(func(_ context.Context, e telemetry.Event) error {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, e)
			return nil
		})
		kr, err := keyring.New(ctx, "guarded", src, store, kmstest.WithClock(clk),
			keyring.WithUsageChecker(gormcrypt.NewUsage(db)),
			keyring.WithTelemetry(telemetry.WithTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))),
			keyring.WithTelemetry(telemetry.WithSinks(sink)))
		require.NoError(t, err)
		defer kr.Close()
		_, err = gormcrypt.Register(db, kr)
		require.NoError(t, err)
		require.NoError(t, gormcrypt.AutoMigrate(db, &Company{}))
		for i := range 3 {
			require.NoError(t, db.Create(&Company{Name: fmt.Sprint(i), Secret: "s"}).Error)
		}
		old := kr.Primary()
		_, err = kr.Rotate(ctx)
		require.NoError(t, err)
		clk.Advance(keyring.DefaultSettleTime)
		require.NoError(t, kr.Disable(ctx, old))
		clk.Advance(keyring.DefaultSettleTime)

		err = kr.Destroy(ctx, old)
		require.ErrorIs(t, err, keyring.ErrKeyInUse, "Destroy of a key 3 values use")
		require.NoError(t, kr.Destroy(ctx, old, keyring.Force()), "forced Destroy")

		var lost int64 = -1
		for _, sp := range rec.Ended() {
			for _, a := range sp.Attributes() {
				if a.Key == keyring.AttrLostValues {
					lost = a.Value.AsInt64()
				}
			}
		}
		assert.Equal(t, int64(3), lost, "the forced destroy's span counts the values it made unreadable")
		counted := false
		mu.Lock()
		defer mu.Unlock()
		for _, e := range events {
			if e.Action == telemetry.ActionDestroy && e.Success {
				assert.Equal(t, 3, e.Count, "the forced destroy's event")
				counted = true
			}
		}
		assert.True(t, counted, "a destroy event was recorded")
	})
}
