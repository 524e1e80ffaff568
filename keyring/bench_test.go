package keyring_test

import (
	"testing"

	"github.com/keyward/keyward/internal/benchbase"
	"github.com/keyward/keyward/keyring"
)

// BenchmarkEncrypt and BenchmarkDecrypt put a warm keyring next to the plain
// standard-library AES-256-GCM baseline in the same run.
func BenchmarkEncrypt(b *testing.B) {
	kr := open(b, "bench", newSource(b), keyring.NewMemoryStore())
	benchbase.CompareSeal(b, benchbase.New(make([]byte, 32)), func(pt []byte) error {
		_, err := kr.Encrypt(ctx, pt, nil)
		return err
	})
}

func BenchmarkDecrypt(b *testing.B) {
	kr := open(b, "bench", newSource(b), keyring.NewMemoryStore())
	benchbase.CompareOpen(b, benchbase.New(make([]byte, 32)), func(pt []byte) func() error {
		tok, _ := kr.Encrypt(ctx, pt, nil)
		return func() error { _, err := kr.Decrypt(ctx, tok, nil); return err }
	})
}

// BenchmarkTextRoundTrip compares EncryptString+DecryptString of a 32-byte
// string with the baseline's binary seal+open of 32 bytes.
func BenchmarkTextRoundTrip(b *testing.B) {
	kr := open(b, "bench", newSource(b), keyring.NewMemoryStore())
	benchbase.CompareTextRoundTrip(b, benchbase.New(make([]byte, 32)), func(s string) error {
		tok, err := kr.EncryptString(ctx, s)
		if err == nil {
			_, err = kr.DecryptString(ctx, tok)
		}
		return err
	})
}

// BenchmarkEncryptAAD and BenchmarkDecryptAAD are BenchmarkEncrypt and
// BenchmarkDecrypt with 49 bytes of associated data on both sides
// (benchbase.AAD), as the database adapters call the keyring.
func BenchmarkEncryptAAD(b *testing.B) {
	kr := open(b, "bench", newSource(b), keyring.NewMemoryStore())
	benchbase.CompareSealAAD(b, benchbase.New(make([]byte, 32)), func(pt, aad []byte) error {
		_, err := kr.Encrypt(ctx, pt, aad)
		return err
	})
}

func BenchmarkDecryptAAD(b *testing.B) {
	kr := open(b, "bench", newSource(b), keyring.NewMemoryStore())
	benchbase.CompareOpenAAD(b, benchbase.New(make([]byte, 32)), func(pt, aad []byte) func() error {
		tok, _ := kr.Encrypt(ctx, pt, aad)
		return func() error { _, err := kr.Decrypt(ctx, tok, aad); return err }
	})
}
