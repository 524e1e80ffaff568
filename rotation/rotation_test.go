package rotation_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/cipher"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/rotation"
)

func TestReencrypt(t *testing.T) {
	ctx := context.Background()
	kr := newKeyring(t)
	m := newMemTarget()
	fill(t, kr, m, 0, 50)
	if _, err := kr.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	fill(t, kr, m, 50, 10) // already under the new primary
	before := map[int][]byte{}
	for i := 50; i < 60; i++ {
		before[i] = m.get(key(i))
	}
	var progress []int64
	st, err := rotation.Reencrypt(ctx, kr, m, rotation.WithBatchSize(7), rotation.WithWorkers(3),
		rotation.WithProgress(func(s rotation.Stats) { progress = append(progress, s.Scanned) }))
	if err != nil {
		t.Fatal(err)
	}
	want := rotation.Stats{Scanned: 60, Rewritten: 50, Current: 10, Batches: 9}
	if st.Scanned != want.Scanned || st.Rewritten != want.Rewritten || st.Current != want.Current || st.Batches != want.Batches || st.Skipped != 0 || st.Failed != 0 || st.Resumed {
		t.Errorf("Reencrypt stats = %+v, want %+v", st, want)
	}
	if len(progress) != 9 || progress[8] != 60 {
		t.Errorf("progress calls = %v, want 9 ending at 60", progress)
	}
	checkAll(t, kr, m, 60)
	for i, b := range before {
		if !bytes.Equal(m.get(key(i)), b) {
			t.Errorf("row %d was already current but was rewritten", i)
		}
	}
	// A second run finds nothing to do.
	st, err = rotation.Reencrypt(ctx, kr, m)
	if err != nil || st.Rewritten != 0 || st.Current != 60 {
		t.Errorf("second Reencrypt = %+v, %v; want 60 current", st, err)
	}
}

func TestReencryptFormats(t *testing.T) {
	ctx := context.Background()
	kr := newKeyring(t)
	m := newMemTarget()
	bin, err := kr.Encrypt(ctx, []byte(plaintext(0)), aad(key(0)))
	if err != nil {
		t.Fatal(err)
	}
	m.put(key(0), bin, rotation.FormatBinary)
	m.put(key(1), []byte(plaintext(1)), rotation.FormatPlaintext)
	if _, err := kr.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := rotation.Reencrypt(ctx, kr, m)
	if err != nil || st.Rewritten != 2 || st.Legacy != 1 {
		t.Fatalf("Reencrypt = %+v, %v; want 2 rewritten, 1 legacy", st, err)
	}
	got := m.get(key(0))
	if id, _ := cipher.PeekKeyID(got); id != kr.Primary() {
		t.Errorf("binary value under key %d, want %d", id, kr.Primary())
	}
	if pt, err := kr.Decrypt(ctx, got, aad(key(0))); err != nil || string(pt) != plaintext(0) {
		t.Errorf("binary value decrypts to %q, %v", pt, err)
	}
	if pt, err := kr.DecryptText(ctx, string(m.get(key(1))), aad(key(1))); err != nil || pt != plaintext(1) {
		t.Errorf("legacy value decrypts to %q, %v", pt, err)
	}
}

func TestReencryptCASMiss(t *testing.T) {
	ctx := context.Background()
	kr := newKeyring(t)
	m := newMemTarget()
	fill(t, kr, m, 0, 20)
	if _, err := kr.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	const app = "written by the application"
	m.beforeSwap = func(v rotation.Value) {
		if v.Row.(string) == key(5) {
			tok, err := kr.EncryptText(ctx, app, aad(key(5)))
			if err != nil {
				t.Error(err)
			}
			m.put(key(5), []byte(tok), rotation.FormatText)
		}
	}
	st, err := rotation.Reencrypt(ctx, kr, m, rotation.WithBatchSize(4))
	if err != nil || st.Skipped != 1 || st.Rewritten != 19 {
		t.Fatalf("Reencrypt = %+v, %v; want 1 skipped, 19 rewritten", st, err)
	}
	if pt, err := kr.DecryptText(ctx, string(m.get(key(5))), aad(key(5))); err != nil || pt != app {
		t.Errorf("row 5 = %q, %v; the application's write was lost", pt, err)
	}
}

func TestReencryptFailsClosed(t *testing.T) {
	ctx := context.Background()
	kr := newKeyring(t)
	m := newMemTarget()
	fill(t, kr, m, 0, 20)
	// Row 7 holds row 3's token: it does not authenticate there.
	m.put(key(7), m.get(key(3)), rotation.FormatText)
	if _, err := kr.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cp, err := rotation.NewFileCheckpoint(filepath.Join(dir, "cp.json"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := rotation.Reencrypt(ctx, kr, m, rotation.WithBatchSize(5), rotation.WithWorkers(1), rotation.WithCheckpoint(cp))
	var ve *rotation.ValueError
	if !errors.Is(err, keyring.ErrDecrypt) || !errors.As(err, &ve) || ve.ID != "mem/"+key(7) {
		t.Fatalf("Reencrypt error = %v, want a ValueError for mem/%s wrapping keyring.ErrDecrypt", err, key(7))
	}
	noSecrets(t, err.Error())
	if st.Failed != 1 || st.Batches != 1 {
		t.Errorf("stats = %+v, want 1 failed after 1 batch", st)
	}
	// The checkpoint stays before the failing batch.
	if p, ok, err := cp.Load(ctx); err != nil || !ok || p.Cursor != key(4) {
		t.Errorf("checkpoint = %+v, %v, %v; want cursor %s", p, ok, err, key(4))
	}
	if id, _ := cipher.PeekKeyID(string(m.get(key(7)))); id == kr.Primary() {
		t.Error("the failing value was rewritten")
	}

	t.Run("continue", func(t *testing.T) {
		st, err := rotation.Reencrypt(ctx, kr, m, rotation.WithBatchSize(5), rotation.WithContinueOnError(), rotation.WithCheckpoint(cp))
		if !errors.Is(err, rotation.ErrIncomplete) || !errors.Is(err, keyring.ErrDecrypt) {
			t.Fatalf("Reencrypt error = %v, want ErrIncomplete wrapping ErrDecrypt", err)
		}
		noSecrets(t, err.Error())
		if st.Failed != 1 || len(st.Failures) != 1 || st.Failures[0].ID != "mem/"+key(7) || !st.Resumed {
			t.Errorf("stats = %+v, want 1 failure of mem/%s, resumed", st, key(7))
		}
		if st.Scanned != 15 {
			t.Errorf("resumed run scanned %d values, want the 15 after the checkpoint", st.Scanned)
		}
		if _, err := os.Stat(cp.Path()); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("checkpoint not cleared at the end: %v", err)
		}
	})
}

func TestReencryptCancelAndResume(t *testing.T) {
	kr := newKeyring(t)
	m := newMemTarget()
	fill(t, kr, m, 0, 40)
	ctx := context.Background()
	if _, err := kr.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	cp, err := rotation.NewFileCheckpoint(filepath.Join(t.TempDir(), "cp.json"))
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := rotation.Reencrypt(cctx, kr, m, rotation.WithBatchSize(6), rotation.WithCheckpoint(cp),
		rotation.WithProgress(func(s rotation.Stats) {
			if s.Batches == 2 {
				cancel()
			}
		}))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Reencrypt error = %v, want context.Canceled", err)
	}
	if st.Batches != 2 || st.Rewritten != 12 {
		t.Errorf("stats = %+v, want 2 batches, 12 rewritten", st)
	}
	p, ok, err := cp.Load(ctx)
	if err != nil || !ok || p.Cursor != key(11) {
		t.Fatalf("checkpoint = %+v, %v, %v; want cursor %s", p, ok, err, key(11))
	}
	fi, err := os.Stat(cp.Path())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("checkpoint file mode = %v, %v; want 0600", fi, err)
	}

	m.mu.Lock()
	m.scans, m.swaps = nil, 0
	m.mu.Unlock()
	st, err = rotation.Reencrypt(ctx, kr, m, rotation.WithBatchSize(6), rotation.WithCheckpoint(cp))
	if err != nil {
		t.Fatal(err)
	}
	if !st.Resumed || st.Scanned != 28 || st.Rewritten != 28 || m.scans[0] != key(11) || m.swaps != 28 {
		t.Errorf("resumed run = %+v, first scan from %q, %d swaps; want 28 values from %s", st, m.scans[0], m.swaps, key(11))
	}
	checkAll(t, kr, m, 40)
}

// stuckTarget returns values without advancing its cursor.
type stuckTarget struct{ *memTarget }

func (s stuckTarget) Scan(ctx context.Context, cursor string, limit int) ([]rotation.Value, string, error) {
	v, _, err := s.memTarget.Scan(ctx, "", limit)
	return v, "", err
}

func TestReencryptTargetContract(t *testing.T) {
	kr := newKeyring(t)
	m := newMemTarget()
	fill(t, kr, m, 0, 3)
	if _, err := rotation.Reencrypt(context.Background(), kr, stuckTarget{m}); !errors.Is(err, rotation.ErrTarget) {
		t.Errorf("Reencrypt over a stuck cursor = %v, want ErrTarget", err)
	}
	if _, err := rotation.Reencrypt(context.Background(), kr, nil); err == nil {
		t.Error("Reencrypt(nil target) succeeded")
	}
}

func TestOptions(t *testing.T) {
	kr := newKeyring(t)
	m := newMemTarget()
	for name, opts := range map[string][]rotation.Option{
		"workers 0":      {rotation.WithWorkers(0)},
		"batch 0":        {rotation.WithBatchSize(0)},
		"twice":          {rotation.WithWorkers(2), rotation.WithWorkers(3)},
		"nil checkpoint": {rotation.WithCheckpoint(nil)},
		"nil progress":   {rotation.WithProgress(nil)},
		"nil option":     {nil},
	} {
		if _, err := rotation.Reencrypt(context.Background(), kr, m, opts...); err == nil {
			t.Errorf("Reencrypt with %s succeeded", name)
		}
	}
}

func TestRotateKey(t *testing.T) {
	ctx := context.Background()
	oldKey, err := rotation.GenerateKey()
	if err != nil || len(oldKey) != 32 {
		t.Fatalf("GenerateKey = %d bytes, %v", len(oldKey), err)
	}
	newKey, _ := rotation.GenerateKey()
	m := newMemTarget()
	for i := range 30 {
		opts := []cipher.Option{cipher.WithAAD(aad(key(i)))}
		if i%3 == 0 {
			opts = append(opts, cipher.WithAlgorithm(cipher.XChaCha20Poly1305))
		}
		tok, err := cipher.EncryptData(plaintext(i), oldKey, opts...)
		if err != nil {
			t.Fatal(err)
		}
		m.put(key(i), []byte(tok), rotation.FormatText)
	}
	// Row 29 is already under the new key, as after a stopped run.
	tok, _ := cipher.EncryptData(plaintext(29), newKey, cipher.WithAAD(aad(key(29))))
	m.put(key(29), []byte(tok), rotation.FormatText)

	if err := rotation.RotateKey(ctx, oldKey, newKey, m, rotation.WithBatchSize(8)); err != nil {
		t.Fatal(err)
	}
	if m.swaps != 29 {
		t.Errorf("RotateKey wrote %d values, want 29", m.swaps)
	}
	for i := range 30 {
		tok := string(m.get(key(i)))
		if pt, err := cipher.DecryptData(tok, newKey, cipher.WithAAD(aad(key(i)))); err != nil || pt != plaintext(i) {
			t.Errorf("row %d under the new key = %q, %v", i, pt, err)
		}
		if _, err := cipher.DecryptData(tok, oldKey, cipher.WithAAD(aad(key(i)))); !errors.Is(err, cipher.ErrDecrypt) {
			t.Errorf("row %d still opens under the old key: %v", i, err)
		}
		h, _ := cipher.ParseHeader(tok)
		if wantXC := i%3 == 0 && i != 29; (h.Algorithm == cipher.XChaCha20Poly1305) != wantXC {
			t.Errorf("row %d algorithm %v changed", i, h.Algorithm)
		}
	}

	// A value under neither key fails closed.
	third, _ := rotation.GenerateKey()
	tok, _ = cipher.EncryptData("x", third, cipher.WithAAD(aad(key(3))))
	m.put(key(3), []byte(tok), rotation.FormatText)
	other, _ := rotation.GenerateKey()
	err = rotation.RotateKey(ctx, newKey, other, m)
	var ve *rotation.ValueError
	if !errors.Is(err, cipher.ErrDecrypt) || !errors.As(err, &ve) || ve.ID != "mem/"+key(3) {
		t.Errorf("RotateKey over a foreign value = %v, want a ValueError wrapping cipher.ErrDecrypt", err)
	}
}

func TestRotateKeyRefusesBadKeys(t *testing.T) {
	k, _ := rotation.GenerateKey()
	m := newMemTarget()
	for _, tc := range []struct {
		name     string
		old, new []byte
		want     error
	}{
		{"short old", k[:16], k, cipher.KeySizeError(16)},
		{"long new", k, append(bytes.Clone(k), 0), cipher.KeySizeError(33)},
		{"empty", nil, k, cipher.KeySizeError(0)},
		{"same", k, bytes.Clone(k), rotation.ErrSameKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := rotation.RotateKey(context.Background(), tc.old, tc.new, m)
			if !errors.Is(err, tc.want) {
				t.Errorf("RotateKey = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestFileCheckpoint(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cp, err := rotation.NewFileCheckpoint(filepath.Join(dir, "cp.json"))
	require.NoError(t, err)
	_, ok, err := cp.Load(ctx)
	require.NoError(t, err, "Load of a missing file")
	require.False(t, ok, "Load of a missing file found progress")
	want := rotation.Progress{Run: "keyring:x:7", Cursor: `{"pk":"a\"b"}`, MAC: "d1:00ff"}
	require.NoError(t, cp.Save(ctx, want))
	got, ok, err := cp.Load(ctx)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, want, got, "Load after Save")
	assert.Error(t, cp.Save(ctx, rotation.Progress{Run: "r", Cursor: "c"}), "Save of progress without a MAC")
	require.NoError(t, cp.Clear(ctx))
	require.NoError(t, cp.Clear(ctx), "second Clear")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries, "files left behind")
	_, err = rotation.NewFileCheckpoint(filepath.Join(dir, "missing", "cp.json"))
	assert.ErrorIs(t, err, rotation.ErrCheckpoint, "NewFileCheckpoint in a missing directory")

	for _, tc := range []struct {
		name, data string
		want       error
	}{
		{"empty", "", rotation.ErrCheckpoint},
		{"not JSON", "hello", rotation.ErrCheckpoint},
		{"wrong format", `{"format":"other","run":"r","cursor":"c","mac":"m"}`, rotation.ErrCheckpoint},
		{"no cursor", `{"format":"keyward.rotation.checkpoint/v2","run":"r","mac":"m"}`, rotation.ErrCheckpoint},
		{"no MAC", `{"format":"keyward.rotation.checkpoint/v2","run":"r","cursor":"c"}`, rotation.ErrCheckpointAuth},
		{"v1 (no MAC)", `{"format":"keyward.rotation.checkpoint/v1","run":"r","cursor":"c"}`, rotation.ErrCheckpointAuth},
		{"unknown field", `{"format":"keyward.rotation.checkpoint/v2","run":"r","cursor":"c","mac":"m","x":1}`, rotation.ErrCheckpoint},
		{"trailing", `{"format":"keyward.rotation.checkpoint/v2","run":"r","cursor":"c","mac":"m"} {}`, rotation.ErrCheckpoint},
		{"truncated", `{"format":"keyward.rotation.checkpoint/v2","run":"r","cur`, rotation.ErrCheckpoint},
		{"wrong type", `{"format":"keyward.rotation.checkpoint/v2","run":5,"cursor":"c","mac":"m"}`, rotation.ErrCheckpoint},
		{"huge", `{"format":"` + strings.Repeat("a", 70000) + `"}`, rotation.ErrCheckpoint},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(cp.Path(), []byte(tc.data), 0o600))
			_, _, err := cp.Load(ctx)
			assert.ErrorIs(t, err, tc.want, "Load of a checkpoint file holding %.40q", tc.data)
		})
	}
}

func FuzzParseProgress(f *testing.F) {
	f.Add([]byte(`{"format":"keyward.rotation.checkpoint/v2","run":"keyring:a:1","cursor":"{\"pk\":5}","mac":"d7:00ff","saved":"2026-01-02T03:04:05Z"}`))
	f.Add([]byte(`{"format":"keyward.rotation.checkpoint/v1","run":"keyring:a:1","cursor":"c"}`))
	f.Add([]byte(`{"format":"keyward.rotation.checkpoint/v2"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := rotation.ParseProgress(data)
		if err != nil {
			require.ErrorIs(t, err, rotation.ErrCheckpoint, "ParseProgress(%q) error", data)
			return
		}
		require.NotEmpty(t, p.Run, "ParseProgress(%q) accepted an empty run", data)
		require.NotEmpty(t, p.Cursor, "ParseProgress(%q) accepted an empty cursor", data)
		require.NotEmpty(t, p.MAC, "ParseProgress(%q) accepted an empty MAC", data)
	})
}

func TestReencryptCancelMidBatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kr := newKeyring(t)
	m := newMemTarget()
	fill(t, kr, m, 0, 30)
	if _, err := kr.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	cp, err := rotation.NewFileCheckpoint(filepath.Join(t.TempDir(), "cp.json"))
	if err != nil {
		t.Fatal(err)
	}
	// Cancel while the job writes row 13, in the third batch of 5 (that
	// write still lands).
	m.beforeSwap = func(v rotation.Value) {
		if v.Row.(string) == key(13) {
			cancel()
		}
	}
	st, err := rotation.Reencrypt(ctx, kr, m, rotation.WithBatchSize(5), rotation.WithWorkers(1), rotation.WithCheckpoint(cp))
	if !errors.Is(err, context.Canceled) || st.Batches != 2 || st.Rewritten != 14 {
		t.Fatalf("Reencrypt = %+v, %v; want canceled after 2 batches and 14 values", st, err)
	}
	if p, ok, err := cp.Load(context.Background()); err != nil || !ok || p.Cursor != key(9) {
		t.Fatalf("checkpoint = %+v, %v, %v; want cursor %s", p, ok, err, key(9))
	}
	m.beforeSwap = nil
	st, err = rotation.Reencrypt(context.Background(), kr, m, rotation.WithBatchSize(5), rotation.WithCheckpoint(cp))
	if err != nil || !st.Resumed || st.Current != 4 || st.Rewritten != 16 {
		t.Fatalf("resumed Reencrypt = %+v, %v; want 4 current (rows 10-13), 16 rewritten", st, err)
	}
	checkAll(t, kr, m, 30)
}

func TestReencryptSeesRotationByAnotherProcess(t *testing.T) {
	ctx := context.Background()
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	src, err := filekey.New(k)
	if err != nil {
		t.Fatal(err)
	}
	store := keyring.NewMemoryStore()
	kr, err := keyring.New(ctx, "shared", src, store)
	if err != nil {
		t.Fatal(err)
	}
	defer kr.Close()
	m := newMemTarget()
	fill(t, kr, m, 0, 3)
	// Another process's keyring on the same store rotates.
	other, err := keyring.New(ctx, "shared", src, store)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	id, err := other.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := rotation.Reencrypt(ctx, kr, m)
	if err != nil || st.Rewritten != 3 || kr.Primary() != id {
		t.Errorf("Reencrypt = %+v, %v, primary %d; want 3 rewritten under %d", st, err, kr.Primary(), id)
	}
	checkAll(t, kr, m, 3)
}

func TestPolicy(t *testing.T) {
	kr := newKeyring(t)
	now := time.Now()
	var created time.Time
	for _, k := range kr.Keys() {
		if k.ID == kr.Primary() {
			created = k.Created
		}
	}
	for _, tc := range []struct {
		name   string
		p      rotation.Policy
		at     time.Time
		enc    int
		due    bool
		reason rotation.Reason
	}{
		{"zero", rotation.Policy{}, now.Add(1000 * time.Hour), 10, false, rotation.ReasonNone},
		{"young", rotation.Policy{MaxAge: time.Hour}, created.Add(time.Minute), 0, false, rotation.ReasonNone},
		{"old", rotation.Policy{MaxAge: time.Hour}, created.Add(2 * time.Hour), 0, true, rotation.ReasonAge},
		{"few", rotation.Policy{MaxEncryptions: 5}, created, 4, false, rotation.ReasonNone},
		{"many", rotation.Policy{MaxEncryptions: 5}, created, 5, true, rotation.ReasonEncryptions},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kr := newKeyring(t)
			for range tc.enc {
				if _, err := kr.EncryptString(context.Background(), "x"); err != nil {
					t.Fatal(err)
				}
			}
			at := tc.at
			if tc.p.MaxAge > 0 {
				at = keyCreated(kr).Add(tc.at.Sub(created))
			}
			due, why, err := tc.p.Due(kr, at)
			if err != nil || due != tc.due || why != tc.reason {
				t.Errorf("Due = %v, %q, %v; want %v, %q", due, why, err, tc.due, tc.reason)
			}
		})
	}
	if _, _, err := (rotation.Policy{MaxAge: -1}).Due(kr, now); err == nil {
		t.Error("negative MaxAge accepted")
	}
}

// TestPolicyNonceBound: the fleet's count (kept in the store) decides, and
// AES-256-GCM keys rotate at DefaultMaxEncryptions whatever the policy.
func TestPolicyNonceBound(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		alg   cipher.Algorithm
		p     rotation.Policy
		count uint64
		due   bool
	}{
		{"gcm below the bound", cipher.AES256GCM, rotation.Policy{}, rotation.DefaultMaxEncryptions - 1, false},
		{"gcm at the bound", cipher.AES256GCM, rotation.Policy{}, rotation.DefaultMaxEncryptions, true},
		{"gcm at a lower limit", cipher.AES256GCM, rotation.Policy{MaxEncryptions: 1000}, 1000, true},
		{"xchacha has no bound", cipher.XChaCha20Poly1305, rotation.Policy{}, rotation.GCMEncryptionLimit, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := keyring.NewMemoryStore()
			src, err := filekey.New(make([]byte, 32))
			require.NoError(t, err)
			kr, err := keyring.New(ctx, "bound", src, store, keyring.WithAlgorithm(tc.alg))
			require.NoError(t, err)
			defer kr.Close()
			// Other processes encrypted count values under the primary.
			_, err = store.AddEncryptions(ctx, "bound", map[uint32]uint64{kr.Primary(): tc.count})
			require.NoError(t, err)
			require.NoError(t, kr.SyncEncryptions(ctx))
			due, why, err := tc.p.Due(kr, time.Now())
			require.NoError(t, err)
			assert.Equal(t, tc.due, due, "Due with a fleet count of %d", tc.count)
			if tc.due {
				assert.Equal(t, rotation.ReasonEncryptions, why)
			}
		})
	}
	kr := newKeyring(t)
	_, _, err := rotation.Policy{MaxEncryptions: rotation.GCMEncryptionLimit + 1}.Due(kr, time.Now())
	assert.Error(t, err, "MaxEncryptions above the GCM limit")
}

func keyCreated(kr *keyring.Keyring) time.Time {
	for _, k := range kr.Keys() {
		if k.ID == kr.Primary() {
			return k.Created
		}
	}
	return time.Time{}
}

// memBatchTarget is memTarget with SwapAll: all or nothing, under one lock.
type memBatchTarget struct {
	*memTarget
	calls  int
	failAt int // SwapAll call (1-based) that fails; 0 = none
}

func (m *memBatchTarget) SwapAll(ctx context.Context, swaps []rotation.Swap) ([]bool, error) {
	if m.beforeSwap != nil {
		for _, s := range swaps {
			m.beforeSwap(s.Value)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if m.calls == m.failAt {
		return nil, errors.New("disk full")
	}
	written := make([]bool, len(swaps))
	for i, s := range swaps {
		k := s.Value.Row.(string)
		if bytes.Equal(m.vals[k], s.Value.Stored) {
			m.vals[k] = bytes.Clone(s.Token)
			written[i] = true
			m.swaps++
		}
	}
	return written, nil
}

func TestReencryptBatchTarget(t *testing.T) {
	ctx := context.Background()
	kr := newKeyring(t)
	m := &memBatchTarget{memTarget: newMemTarget(), failAt: 3}
	fill(t, kr, m.memTarget, 0, 30)
	if _, err := kr.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	fill(t, kr, m.memTarget, 30, 2)
	cp, err := rotation.NewFileCheckpoint(filepath.Join(t.TempDir(), "cp.json"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := rotation.Reencrypt(ctx, kr, m, rotation.WithBatchSize(8), rotation.WithCheckpoint(cp))
	if !errors.Is(err, rotation.ErrTarget) || st.Batches != 2 || st.Rewritten != 16 {
		t.Fatalf("Reencrypt with a failing SwapAll = %+v, %v; want ErrTarget after 2 batches", st, err)
	}
	if p, ok, _ := cp.Load(ctx); !ok || p.Cursor != key(15) {
		t.Errorf("checkpoint = %+v, want cursor %s", p, key(15))
	}
	// Resume; row 20 changes under the job (compare-and-swap miss).
	m.beforeSwap = func(v rotation.Value) {
		if v.Row.(string) == key(20) {
			tok, _ := kr.EncryptText(ctx, plaintext(20), aad(key(20)))
			m.put(key(20), []byte(tok), rotation.FormatText)
		}
	}
	st, err = rotation.Reencrypt(ctx, kr, m, rotation.WithBatchSize(8), rotation.WithCheckpoint(cp))
	if err != nil || !st.Resumed || st.Rewritten != 13 || st.Skipped != 1 || st.Current != 2 {
		t.Fatalf("resumed Reencrypt = %+v, %v; want 13 rewritten, 1 skipped, 2 current", st, err)
	}
	if m.swaps != 29 || m.calls != 5 {
		t.Errorf("%d values written in %d SwapAll calls, want 29 in 5", m.swaps, m.calls)
	}
	checkAll(t, kr, m.memTarget, 32)
}
