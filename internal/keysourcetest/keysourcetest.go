package keysourcetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"testing"

	"github.com/keyward/keyward/keyring"
)

// NewSources returns two key sources over two different key-encryption
// keys. It is called once per subtest; use t.Cleanup to release them.
type NewSources func(t *testing.T) (a, b keyring.KeySource)

func randomKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// Run runs the suite.
func Run(t *testing.T, newSources NewSources) {
	ctx := context.Background()
	aad := []byte("keyring default, key 1")

	t.Run("RoundTrip", func(t *testing.T) {
		a, _ := newSources(t)
		if a.ID() == "" {
			t.Fatal("ID() is empty")
		}
		dek := randomKey(t)
		for _, ad := range [][]byte{aad, nil} {
			w, err := a.Wrap(ctx, dek, ad)
			if err != nil {
				t.Fatalf("Wrap: %v", err)
			}
			if bytes.Contains(w, dek) {
				t.Fatal("wrapped key contains the plaintext key")
			}
			got, err := a.Unwrap(ctx, w, ad)
			if err != nil || !bytes.Equal(got, dek) {
				t.Fatalf("Unwrap(Wrap(dek)) = %x, %v", got, err)
			}
			w2, err := a.Wrap(ctx, dek, ad)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(w, w2) {
				t.Error("wrapping the same key twice gave the same bytes: wrapping must be randomized")
			}
		}
	})

	t.Run("SeparateKEKs", func(t *testing.T) {
		a, b := newSources(t)
		if a.ID() == b.ID() {
			t.Fatalf("two KEKs share the ID %q", a.ID())
		}
		dek := randomKey(t)
		w, err := a.Wrap(ctx, dek, aad)
		if err != nil {
			t.Fatal(err)
		}
		got, err := b.Unwrap(ctx, w, aad)
		if err == nil || got != nil {
			t.Fatalf("another KEK unwrapped the key: %x, %v", got, err)
		}
		if !errors.Is(err, keyring.ErrUnwrap) && !errors.Is(err, keyring.ErrWrongKEK) {
			t.Errorf("Unwrap with another KEK = %v, want ErrUnwrap or ErrWrongKEK", err)
		}
	})

	t.Run("WrongAAD", func(t *testing.T) {
		a, _ := newSources(t)
		w, err := a.Wrap(ctx, randomKey(t), aad)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range [][]byte{nil, []byte("keyring default, key 2"), append(bytes.Clone(aad), 0)} {
			if got, err := a.Unwrap(ctx, w, bad); !errors.Is(err, keyring.ErrUnwrap) || got != nil {
				t.Errorf("Unwrap(aad %q) = %x, %v, want ErrUnwrap", bad, got, err)
			}
		}
	})

	t.Run("Tampering", func(t *testing.T) {
		a, _ := newSources(t)
		dek := randomKey(t)
		w, err := a.Wrap(ctx, dek, aad)
		if err != nil {
			t.Fatal(err)
		}
		for i := range len(w) * 8 {
			mod := bytes.Clone(w)
			mod[i/8] ^= 1 << (i % 8)
			if got, err := a.Unwrap(ctx, mod, aad); err == nil {
				t.Fatalf("bit %d flipped: Unwrap = %x, nil", i, got)
			}
		}
		for n := range len(w) {
			if got, err := a.Unwrap(ctx, w[:n], aad); err == nil {
				t.Fatalf("truncated to %d bytes: Unwrap = %x, nil", n, got)
			}
		}
		if _, err := a.Unwrap(ctx, append(bytes.Clone(w), 0), aad); err == nil {
			t.Fatal("extended by a byte: Unwrap succeeded")
		}
	})

	t.Run("EmptyInput", func(t *testing.T) {
		a, _ := newSources(t)
		if w, err := a.Wrap(ctx, nil, aad); err == nil {
			t.Errorf("Wrap(empty key) = %x, nil", w)
		}
		for _, w := range [][]byte{nil, {}} {
			if got, err := a.Unwrap(ctx, w, aad); err == nil {
				t.Errorf("Unwrap(empty) = %x, nil", got)
			}
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		a, _ := newSources(t)
		w, err := a.Wrap(ctx, randomKey(t), aad)
		if err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := a.Wrap(cctx, randomKey(t), aad); !errors.Is(err, context.Canceled) {
			t.Errorf("Wrap(cancelled) = %v, want context.Canceled", err)
		}
		if _, err := a.Unwrap(cctx, w, aad); !errors.Is(err, context.Canceled) {
			t.Errorf("Unwrap(cancelled) = %v, want context.Canceled", err)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		a, _ := newSources(t)
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for range 16 {
			wg.Go(func() {
				for range 10 {
					dek := make([]byte, 32)
					_, _ = rand.Read(dek)
					w, err := a.Wrap(ctx, dek, aad)
					if err != nil {
						errs <- err
						return
					}
					got, err := a.Unwrap(ctx, w, aad)
					if err != nil || !bytes.Equal(got, dek) {
						errs <- errors.Join(errors.New("concurrent round trip failed"), err)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})

	t.Run("InKeyring", func(t *testing.T) {
		a, b := newSources(t)
		store := keyring.NewMemoryStore()
		kr, err := keyring.New(ctx, "conformance", a, store)
		if err != nil {
			t.Fatal(err)
		}
		defer kr.Close()
		tok, err := kr.EncryptString(ctx, "sensitive")
		if err != nil {
			t.Fatal(err)
		}
		// A second process over the same store and KEK reads it.
		kr2, err := keyring.New(ctx, "conformance", a, store)
		if err != nil {
			t.Fatal(err)
		}
		defer kr2.Close()
		if got, err := kr2.DecryptString(ctx, tok); err != nil || got != "sensitive" {
			t.Fatalf("DecryptString in a second keyring = %q, %v", got, err)
		}
		// Another KEK cannot open the keyring.
		if kr3, err := keyring.New(ctx, "conformance", b, store); err == nil {
			kr3.Close()
			t.Fatal("a keyring over another KEK opened")
		} else if !errors.Is(err, keyring.ErrWrongKEK) && !errors.Is(err, keyring.ErrUnwrap) {
			t.Errorf("keyring over another KEK: %v, want ErrWrongKEK", err)
		}
	})
}
