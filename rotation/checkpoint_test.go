package rotation_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/cipher"
	"github.com/keyward/keyward/internal/kmstest"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/rotation"
)

// namedTarget is a memTarget with a name (rotation.NamedTarget) and a count
// of its values by key (rotation.KeyCounter).
type namedTarget struct {
	*memTarget
	name string
}

var (
	_ rotation.NamedTarget = namedTarget{}
	_ rotation.KeyCounter  = namedTarget{}
)

func (n namedTarget) TargetName() string { return n.name }

func (n namedTarget) CountByKey(ctx context.Context) (map[uint32]int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	counts := map[uint32]int64{}
	for _, v := range n.vals {
		id, _ := cipher.PeekKeyID(string(v)) // 0 for what is not a token
		counts[id]++
	}
	return counts, nil
}

// stoppedRun returns a target of 20 rows under kr's old primary, kr rotated,
// and a checkpoint of a run over it stopped after 2 batches of 5.
func stoppedRun(t *testing.T, kr *keyring.Keyring, name string) (namedTarget, *rotation.FileCheckpoint) {
	t.Helper()
	ctx := context.Background()
	m := namedTarget{newMemTarget(), name}
	fill(t, kr, m.memTarget, 0, 20)
	_, err := kr.Rotate(ctx)
	require.NoError(t, err)
	cp, err := rotation.NewFileCheckpoint(filepath.Join(t.TempDir(), "cp.json"))
	require.NoError(t, err)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	_, err = rotation.Reencrypt(cctx, kr, m, rotation.WithBatchSize(5), rotation.WithWorkers(1), rotation.WithCheckpoint(cp),
		rotation.WithProgress(func(s rotation.Stats) {
			if s.Batches == 2 {
				cancel()
			}
		}))
	require.ErrorIs(t, err, context.Canceled, "the run stopped after 2 batches")
	p, ok, err := cp.Load(ctx)
	require.NoError(t, err)
	require.True(t, ok, "the stopped run saved a checkpoint")
	require.Equal(t, key(9), p.Cursor, "checkpoint cursor")
	return m, cp
}

// editCheckpoint rewrites the checkpoint file's JSON fields.
func editCheckpoint(t *testing.T, cp *rotation.FileCheckpoint, edit func(f map[string]any)) {
	t.Helper()
	data, err := os.ReadFile(cp.Path())
	require.NoError(t, err)
	var f map[string]any
	require.NoError(t, json.Unmarshal(data, &f))
	edit(f)
	data, err = json.Marshal(f)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(cp.Path(), data, 0o600))
}

// TestCheckpointAuthenticated: a run resumes only from a checkpoint that
// its own keyring authenticates for its own target and primary; anything
// else stops it with a clear error, rewriting nothing and keeping the
// checkpoint for inspection.
func TestCheckpointAuthenticated(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		// prepare changes the stopped run's world; it returns the target
		// to run over.
		prepare func(t *testing.T, kr *keyring.Keyring, m namedTarget, cp *rotation.FileCheckpoint) rotation.Target
		want    error
	}{
		{
			name: "own checkpoint resumes",
			prepare: func(t *testing.T, kr *keyring.Keyring, m namedTarget, cp *rotation.FileCheckpoint) rotation.Target {
				return m
			},
		},
		{
			// The attack: a checkpoint built only from public
			// values (format, keyring name, primary key ID) with a cursor
			// past the last row.
			name: "forged from public values",
			prepare: func(t *testing.T, kr *keyring.Keyring, m namedTarget, cp *rotation.FileCheckpoint) rotation.Target {
				forged := `{"format":"keyward.rotation.checkpoint/v2","run":"keyring:test:` + strconv.FormatUint(uint64(kr.Primary()), 10) +
					`","cursor":"` + key(99999) + `","mac":"d1:` + "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff" + `"}`
				require.NoError(t, os.WriteFile(cp.Path(), []byte(forged), 0o600))
				return m
			},
			want: rotation.ErrCheckpointAuth,
		},
		{
			name: "cursor moved past the end",
			prepare: func(t *testing.T, kr *keyring.Keyring, m namedTarget, cp *rotation.FileCheckpoint) rotation.Target {
				editCheckpoint(t, cp, func(f map[string]any) { f["cursor"] = key(99999) })
				return m
			},
			want: rotation.ErrCheckpointAuth,
		},
		{
			name: "MAC of a v1 file dropped",
			prepare: func(t *testing.T, kr *keyring.Keyring, m namedTarget, cp *rotation.FileCheckpoint) rotation.Target {
				editCheckpoint(t, cp, func(f map[string]any) {
					f["format"] = "keyward.rotation.checkpoint/v1"
					delete(f, "mac")
				})
				return m
			},
			want: rotation.ErrCheckpointAuth,
		},
		{
			name: "another target's checkpoint",
			prepare: func(t *testing.T, kr *keyring.Keyring, m namedTarget, cp *rotation.FileCheckpoint) rotation.Target {
				return namedTarget{m.memTarget, "another table"}
			},
			want: rotation.ErrCheckpointAuth,
		},
		{
			name: "another keyring's checkpoint",
			prepare: func(t *testing.T, kr *keyring.Keyring, m namedTarget, cp *rotation.FileCheckpoint) rotation.Target {
				// A keyring of the same name over another store: its own
				// stopped run leaves a checkpoint in cp's place.
				other := kmstest.MemoryKeyring(t)
				_, otherCP := stoppedRun(t, other, m.name)
				data, err := os.ReadFile(otherCP.Path())
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(cp.Path(), data, 0o600))
				return m
			},
			want: rotation.ErrCheckpointAuth,
		},
		{
			name: "stale: the primary changed since",
			prepare: func(t *testing.T, kr *keyring.Keyring, m namedTarget, cp *rotation.FileCheckpoint) rotation.Target {
				_, err := kr.Rotate(ctx)
				require.NoError(t, err)
				return m
			},
			want: rotation.ErrCheckpointStale,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kr := newKeyring(t)
			m, cp := stoppedRun(t, kr, "patients")
			target := tc.prepare(t, kr, m, cp)
			m.mu.Lock()
			m.swaps = 0
			m.mu.Unlock()
			st, err := rotation.Reencrypt(ctx, kr, target, rotation.WithBatchSize(5), rotation.WithCheckpoint(cp))
			if tc.want == nil {
				require.NoError(t, err, "Reencrypt from its own checkpoint")
				assert.True(t, st.Resumed, "resumed")
				assert.Equal(t, int64(10), st.Scanned, "values after the checkpoint")
				checkAll(t, kr, m.memTarget, 20)
				return
			}
			require.ErrorIs(t, err, tc.want, "Reencrypt with the checkpoint")
			require.ErrorIs(t, err, rotation.ErrCheckpoint, "every checkpoint refusal is an ErrCheckpoint")
			noSecrets(t, err.Error())
			assert.Zero(t, st.Scanned, "values scanned by a refused run")
			assert.Zero(t, m.swaps, "values rewritten by a refused run")
			_, statErr := os.Stat(cp.Path())
			assert.NoError(t, statErr, "a refused checkpoint is kept, not cleared")
		})
	}
}

// hidingTarget is a namedTarget whose Scan finds nothing, as a broken or
// misconfigured target would, while its values stay under the old key.
type hidingTarget struct{ namedTarget }

func (h hidingTarget) Scan(ctx context.Context, cursor string, limit int) ([]rotation.Value, string, error) {
	return nil, cursor, ctx.Err()
}

// rotated returns a keyring and a target of 20 rows under its primary,
// which it then rotates.
func rotated(t *testing.T) (*keyring.Keyring, namedTarget) {
	t.Helper()
	kr := newKeyring(t)
	m := namedTarget{newMemTarget(), "patients"}
	fill(t, kr, m.memTarget, 0, 20)
	_, err := kr.Rotate(context.Background())
	require.NoError(t, err)
	return kr, m
}

// TestReencryptChecksEndState: with a KeyCounter target, a run that ends
// with values under another key than the primary fails, whatever it
// scanned, and says how many.
func TestReencryptChecksEndState(t *testing.T) {
	ctx := context.Background()
	t.Run("Scanned 0 on a table of old values", func(t *testing.T) {
		kr, m := rotated(t)
		st, err := rotation.Reencrypt(ctx, kr, hidingTarget{m})
		require.ErrorIs(t, err, rotation.ErrIncomplete, "Reencrypt that scanned nothing of 20 old values")
		assert.Zero(t, st.Scanned)
		assert.Equal(t, int64(20), st.Remaining, "Stats.Remaining")
		assert.ErrorContains(t, err, "20 values")
	})
	t.Run("old value written meanwhile", func(t *testing.T) {
		kr, m := rotated(t)
		oldTok := m.get(key(0))
		// While the job writes the last row, a process that has not seen
		// the rotation writes row 0 (scanned already) under the old key.
		m.beforeSwap = func(v rotation.Value) {
			if v.Row.(string) == key(19) {
				m.put(key(0), oldTok, rotation.FormatText)
			}
		}
		st, err := rotation.Reencrypt(ctx, kr, m, rotation.WithBatchSize(5), rotation.WithWorkers(1))
		require.ErrorIs(t, err, rotation.ErrIncomplete, "Reencrypt that left a value under the old key")
		assert.Equal(t, int64(1), st.Remaining, "Stats.Remaining")
		m.beforeSwap = nil
		st, err = rotation.Reencrypt(ctx, kr, m)
		require.NoError(t, err, "the second Reencrypt")
		assert.Zero(t, st.Remaining)
		assert.Equal(t, int64(1), st.Rewritten)
		checkAll(t, kr, m.memTarget, 20)
	})
	t.Run("all under the primary", func(t *testing.T) {
		kr, m := rotated(t)
		st, err := rotation.Reencrypt(ctx, kr, m)
		require.NoError(t, err)
		assert.Equal(t, int64(20), st.Rewritten)
		assert.Zero(t, st.Remaining)
	})
}

// TestRotateKeyCheckpointAuthenticated: raw-key runs authenticate their
// checkpoints under the new key.
func TestRotateKeyCheckpointAuthenticated(t *testing.T) {
	ctx := context.Background()
	oldKey, err := rotation.GenerateKey()
	require.NoError(t, err)
	newKey, err := rotation.GenerateKey()
	require.NoError(t, err)
	m := newMemTarget()
	for i := range 20 {
		tok, err := cipher.EncryptData(plaintext(i), oldKey, cipher.WithAAD(aad(key(i))))
		require.NoError(t, err)
		m.put(key(i), []byte(tok), rotation.FormatText)
	}
	cp, err := rotation.NewFileCheckpoint(filepath.Join(t.TempDir(), "cp.json"))
	require.NoError(t, err)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	err = rotation.RotateKey(cctx, oldKey, newKey, m, rotation.WithBatchSize(5), rotation.WithWorkers(1), rotation.WithCheckpoint(cp),
		rotation.WithProgress(func(s rotation.Stats) {
			if s.Batches == 1 {
				cancel()
			}
		}))
	require.ErrorIs(t, err, context.Canceled)
	editCheckpoint(t, cp, func(f map[string]any) { f["cursor"] = key(99999) })
	err = rotation.RotateKey(ctx, oldKey, newKey, m, rotation.WithCheckpoint(cp))
	require.ErrorIs(t, err, rotation.ErrCheckpointAuth, "RotateKey from an edited checkpoint")

	require.NoError(t, cp.Clear(ctx))
	require.NoError(t, rotation.RotateKey(ctx, oldKey, newKey, m, rotation.WithCheckpoint(cp)), "RotateKey from the start")
	for i := range 20 {
		pt, err := cipher.DecryptData(string(m.get(key(i))), newKey, cipher.WithAAD(aad(key(i))))
		require.NoError(t, err, "row %d under the new key", i)
		assert.Equal(t, plaintext(i), pt)
	}
}
