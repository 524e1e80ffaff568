package keysourcetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/keyring"
)

// NewSources returns two key sources over two different key-encryption
// keys. It is called once per subtest; use t.Cleanup to release them.
type NewSources func(t *testing.T) (a, b keyring.KeySource)

// aad is the associated data the suite wraps under.
var aad = []byte("keyring default, key 1")

func randomKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, 32)
	_, err := rand.Read(k)
	require.NoError(t, err)
	return k
}

// Run runs the suite: one named subtest per property.
func Run(t *testing.T, newSources NewSources) {
	for _, tc := range []struct {
		name string
		test func(*testing.T, NewSources)
	}{
		{"RoundTrip", testRoundTrip},
		{"SeparateKEKs", testSeparateKEKs},
		{"WrongAAD", testWrongAAD},
		{"Tampering", testTampering},
		{"EmptyInput", testEmptyInput},
		{"CancelledContext", testCancelledContext},
		{"Concurrent", testConcurrent},
		{"InKeyring", testInKeyring},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.test(t, newSources) })
	}
}

// assertUnwrapRefused checks that a failed Unwrap reports a key-source
// refusal (ErrUnwrap, or ErrWrongKEK for a KEK the source can tell apart).
func assertUnwrapRefused(t *testing.T, got []byte, err error, what string) {
	t.Helper()
	assert.Nil(t, got, "%s returned key bytes", what)
	assert.True(t, refused(err), "%s = %v, want ErrUnwrap or ErrWrongKEK", what, err)
}

// refused reports whether err is a key source's refusal to unwrap.
func refused(err error) bool {
	return errors.Is(err, keyring.ErrUnwrap) || errors.Is(err, keyring.ErrWrongKEK)
}

// testRoundTrip: Unwrap(Wrap(dek)) = dek with and without associated data,
// the wrapped form does not contain the key, and wrapping is randomized.
func testRoundTrip(t *testing.T, newSources NewSources) {
	ctx := context.Background()
	a, _ := newSources(t)
	require.NotEmpty(t, a.ID(), "ID()")
	dek := randomKey(t)
	for _, ad := range [][]byte{aad, nil} {
		w, err := a.Wrap(ctx, dek, ad)
		require.NoError(t, err, "Wrap(dek, aad %q)", ad)
		assert.False(t, bytes.Contains(w, dek), "Wrap(dek, aad %q) contains the plaintext key", ad)
		got, err := a.Unwrap(ctx, w, ad)
		require.NoError(t, err, "Unwrap(Wrap(dek), aad %q)", ad)
		assert.Equal(t, dek, got, "Unwrap(Wrap(dek), aad %q), want dek", ad)
		w2, err := a.Wrap(ctx, dek, ad)
		require.NoError(t, err, "second Wrap(dek, aad %q)", ad)
		assert.NotEqual(t, w, w2, "wrapping the same key twice (aad %q) gave the same bytes: wrapping must be randomized", ad)
	}
}

// testSeparateKEKs: sources over two KEKs have different IDs and one cannot
// unwrap what the other wrapped.
func testSeparateKEKs(t *testing.T, newSources NewSources) {
	ctx := context.Background()
	a, b := newSources(t)
	require.NotEqual(t, a.ID(), b.ID(), "two KEKs share an ID")
	w, err := a.Wrap(ctx, randomKey(t), aad)
	require.NoError(t, err, "Wrap")
	got, err := b.Unwrap(ctx, w, aad)
	assertUnwrapRefused(t, got, err, "Unwrap with another KEK")
}

// testWrongAAD: Unwrap under other associated data fails with ErrUnwrap.
func testWrongAAD(t *testing.T, newSources NewSources) {
	ctx := context.Background()
	a, _ := newSources(t)
	w, err := a.Wrap(ctx, randomKey(t), aad)
	require.NoError(t, err, "Wrap")
	for _, bad := range [][]byte{nil, []byte("keyring default, key 2"), append(bytes.Clone(aad), 0)} {
		got, err := a.Unwrap(ctx, w, bad)
		assert.ErrorIs(t, err, keyring.ErrUnwrap, "Unwrap(aad %q) of a key wrapped under aad %q", bad, aad)
		assert.Nil(t, got, "Unwrap(aad %q) returned key bytes", bad)
	}
}

// testTampering: every flipped bit, every truncation and an extension of the
// wrapped key make Unwrap fail.
func testTampering(t *testing.T, newSources NewSources) {
	ctx := context.Background()
	a, _ := newSources(t)
	w, err := a.Wrap(ctx, randomKey(t), aad)
	require.NoError(t, err, "Wrap")
	for i := range len(w) * 8 {
		mod := bytes.Clone(w)
		mod[i/8] ^= 1 << (i % 8)
		got, err := a.Unwrap(ctx, mod, aad)
		require.Error(t, err, "Unwrap with bit %d flipped = %x, want an error", i, got)
	}
	for n := range len(w) {
		got, err := a.Unwrap(ctx, w[:n], aad)
		require.Error(t, err, "Unwrap of the wrapped key truncated to %d bytes = %x, want an error", n, got)
	}
	_, err = a.Unwrap(ctx, append(bytes.Clone(w), 0), aad)
	assert.Error(t, err, "Unwrap of the wrapped key extended by a byte, want an error")
}

// testEmptyInput: an empty key does not wrap and empty input does not unwrap.
func testEmptyInput(t *testing.T, newSources NewSources) {
	ctx := context.Background()
	a, _ := newSources(t)
	w, err := a.Wrap(ctx, nil, aad)
	assert.Error(t, err, "Wrap(empty key) = %x, want an error", w)
	for _, in := range [][]byte{nil, {}} {
		got, err := a.Unwrap(ctx, in, aad)
		assert.Error(t, err, "Unwrap(%#v) = %x, want an error", in, got)
	}
}

// testCancelledContext: Wrap and Unwrap honour a cancelled context.
func testCancelledContext(t *testing.T, newSources NewSources) {
	ctx := context.Background()
	a, _ := newSources(t)
	w, err := a.Wrap(ctx, randomKey(t), aad)
	require.NoError(t, err, "Wrap")
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = a.Wrap(cctx, randomKey(t), aad)
	assert.ErrorIs(t, err, context.Canceled, "Wrap(cancelled context)")
	_, err = a.Unwrap(cctx, w, aad)
	assert.ErrorIs(t, err, context.Canceled, "Unwrap(cancelled context)")
}

// testConcurrent: 16 goroutines round-trip keys through one source at once.
func testConcurrent(t *testing.T, newSources NewSources) {
	ctx := context.Background()
	a, _ := newSources(t)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 10 {
				dek := make([]byte, 32)
				_, _ = rand.Read(dek)
				w, err := a.Wrap(ctx, dek, aad)
				if !assert.NoError(t, err, "goroutine %d, Wrap %d", g, i) {
					return
				}
				got, err := a.Unwrap(ctx, w, aad)
				if !assert.NoError(t, err, "goroutine %d, Unwrap %d", g, i) || !assert.Equal(t, dek, got, "goroutine %d, round trip %d", g, i) {
					return
				}
			}
		})
	}
	wg.Wait()
}

// testInKeyring: a Keyring over the source encrypts, a second Keyring over
// the same store and KEK decrypts, and a Keyring over another KEK does not
// open.
func testInKeyring(t *testing.T, newSources NewSources) {
	ctx := context.Background()
	a, b := newSources(t)
	store := keyring.NewMemoryStore()
	kr, err := keyring.New(ctx, "conformance", a, store)
	require.NoError(t, err, "keyring.New")
	defer kr.Close()
	tok, err := kr.EncryptString(ctx, "sensitive")
	require.NoError(t, err, "EncryptString")
	// A second process over the same store and KEK reads it.
	kr2, err := keyring.New(ctx, "conformance", a, store)
	require.NoError(t, err, "keyring.New (second process)")
	defer kr2.Close()
	got, err := kr2.DecryptString(ctx, tok)
	require.NoError(t, err, "DecryptString in a second keyring")
	assert.Equal(t, "sensitive", got, "DecryptString in a second keyring")
	// Another KEK cannot open the keyring.
	kr3, err := keyring.New(ctx, "conformance", b, store)
	if err == nil {
		kr3.Close()
	}
	require.Error(t, err, "a keyring over another KEK opened")
	assert.True(t, refused(err), "keyring.New over another KEK = %v, want ErrWrongKEK or ErrUnwrap", err)
}
