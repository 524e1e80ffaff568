package gcpkms_test

import (
	"crypto/rand"
	"slices"
	"testing"
	"time"

	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/adapters/gcpkms"
	"github.com/keyward/keyward/internal/gcpkmstest"
	"github.com/keyward/keyward/keyring"
)

// BenchmarkKeyring puts a warm keyring over Cloud KMS (the in-process server) next to one
// over a file key in the same run: with the data key cached, the KMS is out
// of the hot path and both should cost the same.
func BenchmarkKeyring(b *testing.B) {
	srv := gcpkmstest.New(b)
	key := make([]byte, filekey.KeySize)
	_, _ = rand.Read(key)
	fk, err := filekey.New(key)
	if err != nil {
		b.Fatal(err)
	}
	pt := make([]byte, 64)
	type subject struct {
		name string
		kr   *keyring.Keyring
		tok  []byte
	}
	var subjects []subject
	for _, src := range []struct {
		name string
		src  keyring.KeySource
	}{{"filekey", fk}, {"gcpkms", gcpSource(b, srv)}} {
		kr, err := keyring.New(ctx, "bench", src.src, keyring.NewMemoryStore(), keyring.WithCacheTTL(time.Hour))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { kr.Close() })
		tok, err := kr.Encrypt(ctx, pt, nil)
		if err != nil {
			b.Fatal(err)
		}
		subjects = append(subjects, subject{src.name, kr, tok})
	}
	// Warm both up, so that the first measured run pays no start-up costs.
	for range 50_000 {
		for _, s := range subjects {
			if _, err := s.kr.Encrypt(ctx, pt, nil); err != nil {
				b.Fatal(err)
			}
			if _, err := s.kr.Decrypt(ctx, s.tok, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, s := range subjects {
		b.Run("Encrypt/64B/"+s.name, func(b *testing.B) {
			b.SetBytes(int64(len(pt)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.kr.Encrypt(ctx, pt, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// ABBA order, so that a drift in the machine's speed during the run
	// does not favour either subject.
	slices.Reverse(subjects)
	for _, s := range subjects {
		b.Run("Decrypt/64B/"+s.name, func(b *testing.B) {
			b.SetBytes(int64(len(pt)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.kr.Decrypt(ctx, s.tok, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func gcpSource(b *testing.B, srv *gcpkmstest.Server) *gcpkms.Source {
	s, err := gcpkms.New(srv.Client(b), srv.CreateKey(b, keyRing, "bench"))
	if err != nil {
		b.Fatal(err)
	}
	return s
}
