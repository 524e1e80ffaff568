package keyring_test

import (
	"errors"
	"testing"

	"github.com/keyward/keyward/keyring"
)

// FuzzDecryptText feeds arbitrary text to a keyring: it must fail with a
// documented error and never panic or return data for a forged token.
func FuzzDecryptText(f *testing.F) {
	kr := open(f, "fuzz", newSource(f), keyring.NewMemoryStore(), keyring.WithReloadInterval(1<<40))
	for _, s := range []string{"", "x", "secret"} {
		tok, _ := kr.EncryptString(ctx, s)
		f.Add(tok)
	}
	f.Add("kw1.AQEAAAAA")
	f.Fuzz(func(t *testing.T, s string) {
		pt, err := kr.DecryptString(ctx, s)
		if err == nil {
			// Only real tokens of this keyring decrypt; re-encrypting the
			// plaintext must round-trip.
			tok, err := kr.EncryptString(ctx, pt)
			if err != nil {
				t.Fatal(err)
			}
			if again, err := kr.DecryptString(ctx, tok); err != nil || again != pt {
				t.Fatalf("round trip of a decrypted value failed: %v", err)
			}
			return
		}
		if pt != "" {
			t.Fatalf("DecryptString returned data with an error: %v", err)
		}
		if !errors.Is(err, keyring.ErrMalformedToken) && !errors.Is(err, keyring.ErrKeyNotFound) && !errors.Is(err, keyring.ErrDecrypt) {
			t.Fatalf("DecryptString = %v, not a documented error", err)
		}
	})
}
