package kmstest

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/internal/benchbase"
	"github.com/keyward/keyward/keyring"
)

// BenchKeyring measures a warm keyring over src (a KMS key source) against
// one over a file key, interleaved in one run (benchbase.Interleave): with
// the data key cached the KMS is out of the hot path, so the ratio should be
// 1. It reports Encrypt and Decrypt of 64 bytes.
func BenchKeyring(b *testing.B, src keyring.KeySource) {
	ctx := context.Background()
	key := make([]byte, filekey.KeySize)
	_, _ = rand.Read(key)
	fk, err := filekey.New(key)
	if err != nil {
		b.Fatal(err)
	}
	pt := make([]byte, 64)
	open := func(src keyring.KeySource) (*keyring.Keyring, []byte) {
		kr, err := keyring.New(ctx, "bench", src, keyring.NewMemoryStore(), keyring.WithCacheTTL(time.Hour))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { kr.Close() })
		tok, err := kr.Encrypt(ctx, pt, nil)
		if err != nil {
			b.Fatal(err)
		}
		return kr, tok
	}
	base, baseTok := open(fk)
	kms, kmsTok := open(src)
	b.Run("Encrypt/64B", func(b *testing.B) {
		benchbase.Interleave(b,
			func() error { _, err := base.Encrypt(ctx, pt, nil); return err },
			func() error { _, err := kms.Encrypt(ctx, pt, nil); return err })
	})
	b.Run("Decrypt/64B", func(b *testing.B) {
		benchbase.Interleave(b,
			func() error { _, err := base.Decrypt(ctx, baseTok, nil); return err },
			func() error { _, err := kms.Decrypt(ctx, kmsTok, nil); return err })
	})
}
