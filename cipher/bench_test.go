package cipher

import (
	"testing"

	"github.com/keyward/keyward/internal/benchbase"
)

// BenchmarkSeal and BenchmarkOpen put the AEAD next to the plain
// standard-library baseline in the same run.
func BenchmarkSeal(b *testing.B) {
	c := mustAEAD(b, AES256GCM, testKey(1), 1)
	benchbase.CompareSeal(b, benchbase.New(testKey(1)), func(pt []byte) error {
		c.Seal(nil, pt, nil)
		return nil
	})
}

func BenchmarkOpen(b *testing.B) {
	c := mustAEAD(b, AES256GCM, testKey(1), 1)
	benchbase.CompareOpen(b, benchbase.New(testKey(1)), func(pt []byte) func() error {
		tok := c.Seal(nil, pt, nil)
		return func() error { _, err := c.Open(nil, tok, nil); return err }
	})
}

// BenchmarkTextRoundTrip compares a text-token round trip of a 32-byte
// string with the baseline binary round trip.
func BenchmarkTextRoundTrip(b *testing.B) {
	c := mustAEAD(b, AES256GCM, testKey(1), 1)
	benchbase.CompareTextRoundTrip(b, benchbase.New(testKey(1)), func(s string) error {
		_, err := OpenText(c, SealText(c, s, nil), nil)
		return err
	})
}

// BenchmarkSealAAD and BenchmarkOpenAAD are BenchmarkSeal and BenchmarkOpen
// with 49 bytes of associated data on both sides (benchbase.AAD), which is
// how the database adapters always call the AEAD.
func BenchmarkSealAAD(b *testing.B) {
	c := mustAEAD(b, AES256GCM, testKey(1), 1)
	benchbase.CompareSealAAD(b, benchbase.New(testKey(1)), func(pt, aad []byte) error {
		c.Seal(nil, pt, aad)
		return nil
	})
}

func BenchmarkOpenAAD(b *testing.B) {
	c := mustAEAD(b, AES256GCM, testKey(1), 1)
	benchbase.CompareOpenAAD(b, benchbase.New(testKey(1)), func(pt, aad []byte) func() error {
		tok := c.Seal(nil, pt, aad)
		return func() error { _, err := c.Open(nil, tok, aad); return err }
	})
}
