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
	base := benchbase.New(make([]byte, 32))
	for _, s := range benchbase.Sizes {
		pt := make([]byte, s.N)
		b.Run("stdlib/"+s.Name, func(b *testing.B) {
			b.SetBytes(int64(s.N))
			b.ReportAllocs()
			for b.Loop() {
				base.Seal(pt)
			}
		})
		b.Run("keyring/"+s.Name, func(b *testing.B) {
			b.SetBytes(int64(s.N))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := kr.Encrypt(ctx, pt, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecrypt(b *testing.B) {
	kr := open(b, "bench", newSource(b), keyring.NewMemoryStore())
	base := benchbase.New(make([]byte, 32))
	for _, s := range benchbase.Sizes {
		pt := make([]byte, s.N)
		msg := base.Seal(pt)
		tok, _ := kr.Encrypt(ctx, pt, nil)
		b.Run("stdlib/"+s.Name, func(b *testing.B) {
			b.SetBytes(int64(s.N))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := base.Open(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("keyring/"+s.Name, func(b *testing.B) {
			b.SetBytes(int64(s.N))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := kr.Decrypt(ctx, tok, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTextRoundTrip compares EncryptString+DecryptString of a 32-byte
// string with the baseline's binary seal+open of 32 bytes.
func BenchmarkTextRoundTrip(b *testing.B) {
	kr := open(b, "bench", newSource(b), keyring.NewMemoryStore())
	base := benchbase.New(make([]byte, 32))
	s := "0123456789abcdef0123456789abcdef"
	pt := []byte(s)
	b.Run("stdlib-binary", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := base.Open(base.Seal(pt)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("keyring-text", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			tok, err := kr.EncryptString(ctx, s)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := kr.DecryptString(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}
