package cipher

import (
	"testing"

	"github.com/keyward/keyward/internal/benchbase"
)

// BenchmarkSeal and BenchmarkOpen put the AEAD next to the plain
// standard-library baseline in the same run.
func BenchmarkSeal(b *testing.B) {
	key := testKey(1)
	base := benchbase.New(key)
	c := mustAEAD(b, AES256GCM, key, 1)
	for _, s := range benchbase.Sizes {
		pt := make([]byte, s.N)
		b.Run("stdlib/"+s.Name, func(b *testing.B) {
			b.SetBytes(int64(s.N))
			b.ReportAllocs()
			for b.Loop() {
				base.Seal(pt)
			}
		})
		b.Run("cipher/"+s.Name, func(b *testing.B) {
			b.SetBytes(int64(s.N))
			b.ReportAllocs()
			for b.Loop() {
				c.Seal(nil, pt, nil)
			}
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	key := testKey(1)
	base := benchbase.New(key)
	c := mustAEAD(b, AES256GCM, key, 1)
	for _, s := range benchbase.Sizes {
		pt := make([]byte, s.N)
		msg, tok := base.Seal(pt), c.Seal(nil, pt, nil)
		b.Run("stdlib/"+s.Name, func(b *testing.B) {
			b.SetBytes(int64(s.N))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := base.Open(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("cipher/"+s.Name, func(b *testing.B) {
			b.SetBytes(int64(s.N))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Open(nil, tok, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTextRoundTrip compares a text-token round trip of a 32-byte
// string with the baseline binary round trip.
func BenchmarkTextRoundTrip(b *testing.B) {
	key := testKey(1)
	base := benchbase.New(key)
	c := mustAEAD(b, AES256GCM, key, 1)
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
	b.Run("cipher-text", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := OpenText(c, SealText(c, s, nil), nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
