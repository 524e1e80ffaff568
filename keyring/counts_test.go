package keyring_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/keyring"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFleetEncryptions: two keyrings over one store stand for two
// processes; each sees the encryptions of both once counts are exchanged.
func TestFleetEncryptions(t *testing.T) {
	ctx := context.Background()
	fileStore, err := keyring.NewFileStore(filepath.Join(t.TempDir(), "keys.json"))
	require.NoError(t, err)
	for name, store := range map[string]keyring.CountStore{"memory": keyring.NewMemoryStore(), "file": fileStore} {
		t.Run(name, func(t *testing.T) {
			src, err := filekey.New(make([]byte, 32))
			require.NoError(t, err)
			a, err := keyring.New(ctx, "fleet-"+name, src, store)
			require.NoError(t, err)
			b, err := keyring.New(ctx, "fleet-"+name, src, store)
			require.NoError(t, err)
			defer b.Close()
			id := a.Primary()
			for range 10 {
				_, err := a.EncryptString(ctx, "x")
				require.NoError(t, err)
			}
			for range 5 {
				_, err := b.EncryptString(ctx, "x")
				require.NoError(t, err)
			}
			assert.Equal(t, uint64(5), b.Encryptions(id), "before any exchange: this process's own")
			require.NoError(t, a.Close(), "Close adds what is left")
			require.NoError(t, b.SyncEncryptions(ctx))
			assert.Equal(t, uint64(15), b.Encryptions(id), "after the exchange: the fleet's total")
			_, err = b.EncryptString(ctx, "x")
			require.NoError(t, err)
			assert.Equal(t, uint64(16), b.Encryptions(id), "plus this process's since")
			counts, err := store.AddEncryptions(ctx, "fleet-"+name, nil)
			require.NoError(t, err)
			assert.Equal(t, uint64(15), counts[id], "the store's count (read only)")
			ks, err := store.Load(ctx, "fleet-"+name)
			require.NoError(t, err)
			assert.Equal(t, uint64(1), ks.Version, "counting does not change the keyset")
		})
	}
}

// TestRotateFrom: processes that judged the same primary due rotate once.
func TestRotateFrom(t *testing.T) {
	ctx := context.Background()
	store := keyring.NewMemoryStore()
	src, err := filekey.New(make([]byte, 32))
	require.NoError(t, err)
	krs := make([]*keyring.Keyring, 4)
	for i := range krs {
		krs[i], err = keyring.New(ctx, "rotate-from", src, store)
		require.NoError(t, err)
		defer krs[i].Close()
	}
	from := krs[0].Primary()
	rotations := 0
	var newID uint32
	for i, kr := range krs {
		id, rotated, err := kr.RotateFrom(ctx, from)
		require.NoError(t, err, "RotateFrom of process %d", i)
		if rotated {
			rotations++
			newID = id
		}
		assert.NotEqual(t, from, id, "process %d's primary after RotateFrom", i)
		assert.Equal(t, id, kr.Primary(), "process %d installed the primary it returned", i)
	}
	assert.Equal(t, 1, rotations, "rotations among processes that all judged key %d due", from)
	for _, kr := range krs {
		assert.Equal(t, newID, kr.Primary())
	}
	ks, err := store.Load(ctx, "rotate-from")
	require.NoError(t, err)
	assert.Len(t, ks.Keys, 2, "one new key")
}
