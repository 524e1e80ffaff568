package keyring_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/cipher"
	"github.com/keyward/keyward/internal/kmstest"
	"github.com/keyward/keyward/keyring"
)

var ctx = context.Background()

func TestEncryptDecrypt(t *testing.T) {
	for _, alg := range []cipher.Algorithm{cipher.AES256GCM, cipher.XChaCha20Poly1305} {
		t.Run(alg.String(), func(t *testing.T) {
			kr := open(t, "default", newSource(t), keyring.NewMemoryStore(), keyring.WithAlgorithm(alg))
			aad := []byte("patients/42/ssn")
			tok, err := kr.Encrypt(ctx, []byte("123-45-6789"), aad)
			if err != nil {
				t.Fatal(err)
			}
			h, err := cipher.ParseHeader(tok)
			if err != nil || h.KeyID != kr.Primary() || h.Algorithm != alg {
				t.Fatalf("header = %+v, %v; want key ID %d, %v", h, err, kr.Primary(), alg)
			}
			if pt, err := kr.Decrypt(ctx, tok, aad); err != nil || string(pt) != "123-45-6789" {
				t.Fatalf("Decrypt = %q, %v", pt, err)
			}
			for _, bad := range [][]byte{nil, []byte("patients/43/ssn")} {
				if _, err := kr.Decrypt(ctx, tok, bad); !errors.Is(err, keyring.ErrDecrypt) || !errors.Is(err, cipher.ErrDecrypt) {
					t.Errorf("Decrypt(aad %q) = %v, want ErrDecrypt", bad, err)
				}
			}
			s, err := kr.EncryptString(ctx, "4111 1111 1111 1111")
			if err != nil || !strings.HasPrefix(s, "kw1.") {
				t.Fatalf("EncryptString = %q, %v", s, err)
			}
			if got, err := kr.DecryptString(ctx, s); err != nil || got != "4111 1111 1111 1111" {
				t.Fatalf("DecryptString = %q, %v", got, err)
			}
			if h, err := cipher.ParseHeader(s); err != nil || h.KeyID != kr.Primary() {
				t.Errorf("ParseHeader(text) = %+v, %v", h, err)
			}
			if h, err := cipher.ParseHeader(tok); err != nil || h.KeyID != kr.Primary() {
				t.Errorf("ParseHeader(binary) = %+v, %v", h, err)
			}
			txt, err := kr.EncryptText(ctx, "x", aad)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := kr.DecryptText(ctx, txt, []byte("other")); !errors.Is(err, keyring.ErrDecrypt) {
				t.Errorf("DecryptText(wrong aad) = %v", err)
			}
		})
	}
}

func TestMalformedAndForeignTokens(t *testing.T) {
	kr := open(t, "default", newSource(t), keyring.NewMemoryStore())
	other := open(t, "other", newSource(t), keyring.NewMemoryStore())
	foreign, _ := other.EncryptString(ctx, "x")
	raw, _ := cipher.EncryptData("x", bytes.Repeat([]byte{1}, 32))
	for _, tc := range []struct {
		name, token string
		want        error
	}{
		{"plaintext", "123-45-6789", keyring.ErrMalformedToken},
		{"empty", "", keyring.ErrMalformedToken},
		{"truncated", foreign[:20], keyring.ErrMalformedToken},
		{"other keyring", foreign, keyring.ErrKeyNotFound},
		{"raw key token", raw, keyring.ErrKeyNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := kr.DecryptString(ctx, tc.token)
			if !errors.Is(err, tc.want) || got != "" {
				t.Errorf("DecryptString = %q, %v, want %v", got, err, tc.want)
			}
		})
	}
}

func TestRotate(t *testing.T) {
	store := keyring.NewMemoryStore()
	kr := open(t, "default", newSource(t), store)
	first := kr.Primary()
	old, _ := kr.EncryptString(ctx, "old")
	id, err := kr.Rotate(ctx)
	if err != nil || id == first || id == 0 || kr.Primary() != id {
		t.Fatalf("Rotate = %d, %v (primary %d, first %d)", id, err, kr.Primary(), first)
	}
	neu, _ := kr.EncryptString(ctx, "new")
	if h, _ := cipher.ParseHeader(neu); h.KeyID != id {
		t.Errorf("new token key ID = %d, want %d", h.KeyID, id)
	}
	for tok, want := range map[string]string{old: "old", neu: "new"} {
		if got, err := kr.DecryptString(ctx, tok); err != nil || got != want {
			t.Errorf("DecryptString = %q, %v, want %q", got, err, want)
		}
	}
	states := map[uint32]keyring.State{}
	for _, k := range kr.Keys() {
		states[k.ID] = k.State
		if k.Wrapped != nil {
			t.Error("Keys() exposes wrapped material")
		}
	}
	if states[first] != keyring.StateEnabled || states[id] != keyring.StateActive || len(states) != 2 {
		t.Errorf("states = %v", states)
	}
}

func TestUnknownKeyReloadsStoreOnce(t *testing.T) {
	src := newSource(t)
	store := &countingStore{Store: keyring.NewMemoryStore()}
	a := open(t, "default", src, store)
	b := open(t, "default", src, store)
	if _, err := a.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	tok, _ := a.EncryptString(ctx, "made after b loaded")
	before := store.loads.Load()
	if got, err := b.DecryptString(ctx, tok); err != nil || got != "made after b loaded" {
		t.Fatalf("DecryptString of a key b has not seen = %q, %v", got, err)
	}
	if n := store.loads.Load() - before; n != 1 {
		t.Errorf("store loads = %d, want 1", n)
	}
	// A forged key ID fails with ErrKeyNotFound; repeated ones do not reload
	// the store every time.
	forged := []byte(mustDecode(t, tok))
	forged[5] ^= 0xff
	before = store.loads.Load()
	for range 100 {
		if _, err := b.Decrypt(ctx, forged, nil); !errors.Is(err, keyring.ErrKeyNotFound) {
			t.Fatalf("Decrypt(forged key ID) = %v, want ErrKeyNotFound", err)
		}
	}
	if n := store.loads.Load() - before; n > 1 {
		t.Errorf("100 forged key IDs caused %d store loads, want at most 1", n)
	}
}

func mustDecode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := cipher.DecodeText(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestKeyStates(t *testing.T) {
	clk := newClock()
	store := keyring.NewMemoryStore()
	kr := open(t, "default", newSource(t), store, kmstest.WithClock(clk))
	first := kr.Primary()
	tok, err := kr.EncryptString(ctx, "v")
	require.NoError(t, err)
	require.ErrorIs(t, kr.Disable(ctx, first), keyring.ErrInvalidState, "Disable(primary)")
	_, err = kr.Rotate(ctx)
	require.NoError(t, err)
	require.ErrorIs(t, kr.Destroy(ctx, first), keyring.ErrInvalidState, "Destroy(enabled key): disable it first")
	require.ErrorIs(t, kr.Disable(ctx, first), keyring.ErrTooSoon, "Disable(key that was the primary moments ago)")
	clk.Advance(keyring.DefaultSettleTime)
	require.NoError(t, kr.Disable(ctx, first), "Disable once the settle time has passed since the rotation")
	_, err = kr.DecryptString(ctx, tok)
	require.ErrorIs(t, err, keyring.ErrKeyDisabled, "DecryptString(token of a disabled key)")
	require.NoError(t, kr.Enable(ctx, first))
	got, err := kr.DecryptString(ctx, tok)
	require.NoError(t, err, "DecryptString(token of a re-enabled key)")
	assert.Equal(t, "v", got)
	require.NoError(t, kr.Disable(ctx, first))
	require.ErrorIs(t, kr.Destroy(ctx, first), keyring.ErrTooSoon, "Destroy(key disabled moments ago)")
	clk.Advance(keyring.DefaultSettleTime)
	require.NoError(t, kr.Destroy(ctx, first), "Destroy once disabled for the settle time")
	_, err = kr.DecryptString(ctx, tok)
	require.ErrorIs(t, err, keyring.ErrKeyDestroyed, "DecryptString(token of a destroyed key)")
	require.ErrorIs(t, kr.Enable(ctx, first), keyring.ErrInvalidState, "Enable(destroyed key)")
	ks, err := store.Load(ctx, "default")
	require.NoError(t, err)
	k, _ := ks.Lookup(first)
	assert.Equal(t, keyring.StateDestroyed, k.State, "stored state")
	assert.Nil(t, k.Wrapped, "a destroyed key keeps no material")
	require.ErrorIs(t, kr.Disable(ctx, 12345), keyring.ErrKeyNotFound, "Disable(unknown key ID)")
	// A second keyring over the store sees the state.
	kr2 := open(t, "default", newSourceLike(t, kr), store)
	_, err = kr2.DecryptString(ctx, tok)
	assert.ErrorIs(t, err, keyring.ErrKeyDestroyed, "second keyring, token of the destroyed key")
}

func newSourceLike(t *testing.T, kr *keyring.Keyring) keyring.KeySource { return kr.KeySource() }

type usage map[uint32]bool

func (u usage) KeyInUse(_ context.Context, _ string, id uint32) (bool, error) { return u[id], nil }

func TestDestroyRefusedWhileInUse(t *testing.T) {
	clk := newClock()
	store := keyring.NewMemoryStore()
	src := newSource(t)
	kr0 := open(t, "default", src, store)
	first := kr0.Primary()
	kr := open(t, "default", src, store, kmstest.WithClock(clk), keyring.WithUsageChecker(usage{first: true}))
	_, err := kr.Rotate(ctx)
	require.NoError(t, err)
	clk.Advance(keyring.DefaultSettleTime)
	require.NoError(t, kr.Disable(ctx, first))
	clk.Advance(keyring.DefaultSettleTime)
	require.ErrorIs(t, kr.Destroy(ctx, first), keyring.ErrKeyInUse, "Destroy(key data still uses)")
	require.NoError(t, kr.Destroy(ctx, first, keyring.Force()), "Destroy(key data still uses, Force)")
}

func TestCacheCallsKeySourceOncePerTTL(t *testing.T) {
	src := newSource(t)
	clk := newClock()
	store := keyring.NewMemoryStore()
	open(t, "default", src, store) // create the keyring
	unwraps, watch := kmstest.NewUnwraps(t)
	kr := open(t, "default", src, store, kmstest.WithClock(clk), keyring.WithCacheTTL(time.Minute), watch)
	require.Equal(t, int64(1), src.unwraps.Load(), "unwraps after New: the primary, warmed")
	for i := range 100_000 {
		tok, err := kr.Encrypt(ctx, []byte("v"), nil)
		require.NoError(t, err)
		_, err = kr.Decrypt(ctx, tok, nil)
		require.NoError(t, err)
		if i%1000 == 0 {
			clk.Advance(time.Millisecond) // time passes, within the TTL
		}
	}
	require.Equal(t, int64(1), src.unwraps.Load(), "unwraps after 100,000 round trips within the TTL")
	assert.Equal(t, uint64(100_000), kr.Encryptions(kr.Primary()), "Encryptions")
	unwraps.Wait(t, 1)
	// Past the TTL the key is served and unwrapped again in the background,
	// once.
	clk.Advance(2 * time.Minute)
	for range 1000 {
		_, err := kr.Encrypt(ctx, []byte("v"), nil)
		require.NoError(t, err)
	}
	unwraps.Wait(t, 1)
	require.Equal(t, int64(2), src.unwraps.Load(), "unwraps after the TTL")
}

func TestRefreshAhead(t *testing.T) {
	src := newSource(t)
	clk := newClock()
	kr := open(t, "default", src, keyring.NewMemoryStore(), kmstest.WithClock(clk), keyring.WithCacheTTL(time.Minute))
	// A fresh keyring seeds its first key without an unwrap.
	if n := src.unwraps.Load(); n != 0 {
		t.Fatalf("unwraps = %d, want 0", n)
	}
	entered := make(chan struct{}, 1)
	src.mu.Lock()
	src.entered = entered
	src.mu.Unlock()
	clk.Advance(50 * time.Second) // past 80% of the TTL
	if _, err := kr.EncryptString(ctx, "v"); err != nil {
		t.Fatal(err) // served at once from the cache
	}
	select {
	case <-entered: // the background refresh started
	case <-time.After(10 * time.Second):
		t.Fatal("no background refresh")
	}
}

func TestConcurrentColdMissesShareOneUnwrap(t *testing.T) {
	src := newSource(t)
	store := keyring.NewMemoryStore()
	w := open(t, "default", src, store)
	tok, _ := w.EncryptString(ctx, "v")
	if _, err := w.Rotate(ctx); err != nil { // tok's key is no longer the primary
		t.Fatal(err)
	}
	kr := open(t, "default", src, store) // warms only the new primary
	base := src.unwraps.Load()
	block := make(chan struct{})
	src.mu.Lock()
	src.block = block
	src.mu.Unlock()

	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, 64)
	for range 64 {
		wg.Go(func() {
			<-start
			got, err := kr.DecryptString(ctx, tok)
			if err == nil && got != "v" {
				err = fmt.Errorf("got %q", got)
			}
			errs <- err
		})
	}
	close(start)
	// Give a cache without single-flight the chance to call the source more
	// than once while the first unwrap is held.
	time.Sleep(100 * time.Millisecond)
	close(block)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := src.unwraps.Load() - base; n != 1 {
		t.Fatalf("64 concurrent cold misses made %d unwraps, want 1", n)
	}
}

func TestStaleWindow(t *testing.T) {
	src := newSource(t)
	clk := newClock()
	store := keyring.NewMemoryStore()
	unwraps, watch := kmstest.NewUnwraps(t)
	kr := open(t, "default", src, store, kmstest.WithClock(clk),
		keyring.WithCacheTTL(time.Minute), keyring.WithStaleWindow(10*time.Minute), watch)
	tok, err := kr.EncryptString(ctx, "v")
	require.NoError(t, err)

	src.setFail(fmt.Errorf("kms: %w: connection refused", keyring.ErrKEKUnavailable))
	clk.Advance(2 * time.Minute) // past the TTL, within the stale window
	for i := range 10 {
		got, err := kr.DecryptString(ctx, tok)
		require.NoError(t, err, "DecryptString %d with the KMS down, within the stale window", i)
		require.Equal(t, "v", got)
	}
	unwraps.Wait(t, 1)
	assert.Equal(t, int64(1), src.unwraps.Load(), "unwrap attempts during the outage: one refresh, then backoff")
	clk.Advance(10 * time.Minute) // past TTL + stale window
	_, err = kr.DecryptString(ctx, tok)
	require.ErrorIs(t, err, keyring.ErrKEKUnavailable, "DecryptString past the stale window")
	unwraps.Wait(t, 1) // the background retry, failed

	// The KMS is back: a call still fails at once, and starts the retry
	// that brings the key back.
	src.setFail(nil)
	_, err = kr.DecryptString(ctx, tok)
	require.ErrorIs(t, err, keyring.ErrKEKUnavailable, "DecryptString that starts the retry")
	unwraps.Wait(t, 1)
	got, err := kr.DecryptString(ctx, tok)
	require.NoError(t, err, "DecryptString after recovery")
	require.Equal(t, "v", got)

	// A definitive refusal is not bridged by the stale window: the
	// background refresh evicts the key.
	src.setFail(fmt.Errorf("kms: %w", keyring.ErrKEKDisabled))
	clk.Advance(2 * time.Minute)
	_, err = kr.DecryptString(ctx, tok)
	require.NoError(t, err, "DecryptString past the TTL is served while the refresh runs")
	unwraps.Wait(t, 1)
	_, err = kr.DecryptString(ctx, tok)
	require.ErrorIs(t, err, keyring.ErrKEKDisabled, "DecryptString once the KEK refused the refresh")
	_, err = kr.DecryptString(ctx, tok)
	require.Error(t, err, "the refused key is still served from the cache")
}

func TestKMSHangHonoursDeadline(t *testing.T) {
	src := newSource(t)
	store := keyring.NewMemoryStore()
	open(t, "default", src, store)
	src.mu.Lock()
	src.block = make(chan struct{}) // never released: the KMS hangs
	src.mu.Unlock()
	dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	kr, err := keyring.New(dctx, "default", src, store, keyring.WithKMSTimeout(time.Hour))
	if err == nil {
		kr.Close()
		t.Fatal("New succeeded with a hanging KMS")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("New = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("New returned after %v, want about the 200ms deadline", d)
	}
}

func TestCreateRace(t *testing.T) {
	store := keyring.NewMemoryStore()
	src := newSource(t)
	var wg sync.WaitGroup
	krs := make([]*keyring.Keyring, 8)
	for i := range krs {
		wg.Go(func() {
			kr, err := keyring.New(ctx, "default", src, store)
			if err != nil {
				t.Error(err)
				return
			}
			krs[i] = kr
		})
	}
	wg.Wait()
	ks, _ := store.Load(ctx, "default")
	if len(ks.Keys) != 1 {
		t.Fatalf("8 concurrent creations stored %d keys, want 1", len(ks.Keys))
	}
	for _, kr := range krs {
		if kr != nil {
			if kr.Primary() != ks.Keys[0].ID {
				t.Errorf("a keyring has primary %d, want %d", kr.Primary(), ks.Keys[0].ID)
			}
			kr.Close()
		}
	}
}

func TestConcurrentRotateMakesOnePrimary(t *testing.T) {
	store := keyring.NewMemoryStore()
	src := newSource(t)
	a := open(t, "default", src, store)
	b := open(t, "default", src, store)
	var wg sync.WaitGroup
	ids := make([]uint32, 2)
	for i, kr := range []*keyring.Keyring{a, b} {
		wg.Go(func() {
			id, err := kr.Rotate(ctx)
			if err != nil {
				t.Error(err)
			}
			ids[i] = id
		})
	}
	wg.Wait()
	ks, _ := store.Load(ctx, "default")
	active := 0
	for _, k := range ks.Keys {
		if k.State == keyring.StateActive {
			active++
		}
	}
	if active != 1 {
		t.Fatalf("%d active keys, want 1", active)
	}
	// Either both adopted one rotation, or the rotations were sequential
	// (the second one started after the first finished).
	if ids[0] != ids[1] && len(ks.Keys) != 3 {
		t.Errorf("rotations returned %v with %d keys stored", ids, len(ks.Keys))
	}
}

func TestRewrapToNewKEK(t *testing.T) {
	store := keyring.NewMemoryStore()
	oldKEK, newKEK := newSource(t), newSource(t)
	kr := open(t, "default", oldKEK, store)
	tok, _ := kr.EncryptString(ctx, "v")
	if _, err := kr.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	tok2, _ := kr.EncryptString(ctx, "w")
	// The new KEK alone cannot open keys wrapped by the old one.
	if _, err := keyring.New(ctx, "default", newKEK, store); !errors.Is(err, keyring.ErrWrongKEK) {
		t.Fatalf("New over an unknown KEK = %v, want ErrWrongKEK", err)
	}
	mig := open(t, "default", newKEK, store, keyring.WithPreviousKeySources(oldKEK))
	n, err := mig.Rewrap(ctx)
	if err != nil || n != 2 {
		t.Fatalf("Rewrap = %d, %v, want 2", n, err)
	}
	for _, k := range mig.Keys() {
		if k.KEK != newKEK.ID() {
			t.Errorf("key %d still wrapped by %s", k.ID, k.KEK)
		}
	}
	after := open(t, "default", newKEK, store)
	for tok, want := range map[string]string{tok: "v", tok2: "w"} {
		if got, err := after.DecryptString(ctx, tok); err != nil || got != want {
			t.Errorf("after rewrap: %q, %v", got, err)
		}
	}
	if n, err := mig.Rewrap(ctx); err != nil || n != 0 {
		t.Errorf("second Rewrap = %d, %v, want 0", n, err)
	}
}

func TestDeriveKey(t *testing.T) {
	store := keyring.NewMemoryStore()
	src := newSource(t)
	kr := open(t, "pii", src, store)
	d1, err := kr.DeriveKey(ctx, "blind/users/email")
	if err != nil {
		t.Fatal(err)
	}
	d1b, _ := kr.DeriveKey(ctx, "blind/users/email")
	d2, _ := kr.DeriveKey(ctx, "blind/users/phone")
	if !bytes.Equal(d1.Bytes(), d1b.Bytes()) || bytes.Equal(d1.Bytes(), d2.Bytes()) || len(d1.Bytes()) != 32 {
		t.Fatal("derived keys are not stable per label and distinct across labels")
	}
	if _, err := kr.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if d, _ := kr.DeriveKey(ctx, "blind/users/email"); !bytes.Equal(d.Bytes(), d1.Bytes()) {
		t.Fatal("a data key rotation changed a derived key")
	}
	// Another process derives the same key.
	other := open(t, "pii", src, store)
	if d, err := other.DeriveKey(ctx, "blind/users/email"); err != nil || !bytes.Equal(d.Bytes(), d1.Bytes()) {
		t.Fatalf("second keyring derived another key: %v", err)
	}
	id, err := kr.RotateDerive(ctx)
	if err != nil || id == d1.KeyID() {
		t.Fatal(err)
	}
	d3, _ := kr.DeriveKey(ctx, "blind/users/email")
	if bytes.Equal(d3.Bytes(), d1.Bytes()) || d3.KeyID() != id {
		t.Fatal("RotateDerive did not change the derived key")
	}
	old, err := kr.DeriveKeyVersion(ctx, d1.KeyID(), "blind/users/email")
	if err != nil || !bytes.Equal(old.Bytes(), d1.Bytes()) {
		t.Fatalf("DeriveKeyVersion(old root) = %v", err)
	}
	// Data keys are not derive roots and vice versa.
	if _, err := kr.DeriveKeyVersion(ctx, kr.Primary(), "x"); !errors.Is(err, keyring.ErrKeyNotFound) {
		t.Errorf("DeriveKeyVersion(data key) = %v, want ErrKeyNotFound", err)
	}
	for _, verb := range []string{"%v", "%#v", "%x", "%s"} {
		if s := fmt.Sprintf(verb, d1); !strings.Contains(s, "redacted") {
			t.Errorf("Sprintf(%q, derived key) = %q", verb, s)
		}
	}
	// Another keyring name derives other keys from its own root.
	if d, _ := open(t, "other", src, store).DeriveKey(ctx, "blind/users/email"); bytes.Equal(d.Bytes(), d1.Bytes()) {
		t.Error("two keyrings derived the same key")
	}
}

func TestAuthorizerFailsClosed(t *testing.T) {
	src := newSource(t)
	store := keyring.NewMemoryStore()
	w := open(t, "default", src, store)
	tok, _ := w.EncryptString(ctx, "v")
	if _, err := w.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	kr := open(t, "default", src, store, keyring.WithAuthorizer(allowOnly{access.ActionEncrypt: true}))
	before := src.unwraps.Load()
	if _, err := kr.DecryptString(ctx, tok); !errors.Is(err, errDenied) {
		t.Fatalf("DecryptString denied = %v", err)
	}
	if src.unwraps.Load() != before {
		t.Fatal("a denied decrypt unwrapped a data key")
	}
	if _, err := kr.EncryptString(ctx, "v"); err != nil {
		t.Fatalf("EncryptString allowed = %v", err)
	}
	for name, f := range map[string]func() error{
		"Rotate":    func() error { _, err := kr.Rotate(ctx); return err },
		"Disable":   func() error { return kr.Disable(ctx, 1) },
		"Rewrap":    func() error { _, err := kr.Rewrap(ctx); return err },
		"DeriveKey": func() error { _, err := kr.DeriveKey(ctx, "x"); return err },
	} {
		if err := f(); !errors.Is(err, errDenied) {
			t.Errorf("%s = %v, want denied", name, err)
		}
	}
}

func TestClose(t *testing.T) {
	kr := open(t, "default", newSource(t), keyring.NewMemoryStore())
	tok, _ := kr.EncryptString(ctx, "v")
	if err := kr.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := kr.EncryptString(ctx, "v"); !errors.Is(err, keyring.ErrClosed) {
		t.Errorf("EncryptString after Close = %v", err)
	}
	if _, err := kr.DecryptString(ctx, tok); !errors.Is(err, keyring.ErrClosed) {
		t.Errorf("DecryptString after Close = %v", err)
	}
	if err := kr.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestOptions(t *testing.T) {
	src, store := newSource(t), keyring.NewMemoryStore()
	for name, opts := range map[string][]keyring.Option{
		"ttl twice":         {keyring.WithCacheTTL(time.Minute), keyring.WithCacheTTL(time.Hour)},
		"zero ttl":          {keyring.WithCacheTTL(0)},
		"negative stale":    {keyring.WithStaleWindow(-1)},
		"bad algorithm":     {keyring.WithAlgorithm(9)},
		"nil authorizer":    {keyring.WithAuthorizer(nil)},
		"previous=current":  {keyring.WithPreviousKeySources(src)},
		"zero kms timeout":  {keyring.WithKMSTimeout(0)},
		"nil clock":         {kmstest.WithClock(nil)},
		"zero reload":       {keyring.WithReloadInterval(0)},
		"nil usage checker": {keyring.WithUsageChecker(nil)},
		"zero settle time":  {keyring.WithSettleTime(0)},
		"settle < reload":   {keyring.WithReloadInterval(time.Minute), keyring.WithSettleTime(30 * time.Second)},
	} {
		kr, err := keyring.New(ctx, "default", src, store, opts...)
		if kr != nil {
			kr.Close()
		}
		assert.Error(t, err, "New with %s", name)
		assert.Nil(t, kr, "New with %s returned a keyring with its error", name)
	}
	for _, name := range []string{"", "a b", "../x", strings.Repeat("a", 65), "-x"} {
		_, err := keyring.New(ctx, name, src, store)
		assert.Error(t, err, "New(name %q)", name)
	}
	_, err := keyring.New(ctx, "missing", src, store, keyring.WithoutCreate())
	assert.ErrorIs(t, err, keyring.ErrKeyringNotFound, "New(WithoutCreate) of a missing keyring")
}

func TestKeyringFormattingRedacts(t *testing.T) {
	kr := open(t, "default", newSource(t), keyring.NewMemoryStore())
	d, _ := kr.DeriveKey(ctx, "x")
	raw := fmt.Sprintf("%x", d.Bytes())
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(verb, kr); strings.Contains(s, raw) || !strings.Contains(s, "default") {
			t.Errorf("Sprintf(%q, keyring) = %q", verb, s)
		}
	}
}

func TestManyKeyVersions(t *testing.T) {
	kr := open(t, "default", newSource(t), keyring.NewMemoryStore())
	var toks []string
	for range 24 { // past the linear-scan size of the key lookup
		tok, err := kr.EncryptString(ctx, fmt.Sprint(len(toks)))
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
		if _, err := kr.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i, tok := range toks {
		if got, err := kr.DecryptString(ctx, tok); err != nil || got != fmt.Sprint(i) {
			t.Fatalf("token %d: %q, %v", i, got, err)
		}
	}
	if len(kr.Keys()) != 25 {
		t.Errorf("%d keys, want 25", len(kr.Keys()))
	}
}
