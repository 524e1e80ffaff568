package benchbase

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"testing"
	"time"
)

// Sizes are the message sizes every Encrypt/Decrypt benchmark reports.
var Sizes = []struct {
	Name string
	N    int
}{{"64B", 64}, {"1KiB", 1 << 10}, {"64KiB", 64 << 10}}

// GCM is AES-256-GCM under a fixed key.
type GCM struct{ aead cipher.AEAD }

// New returns the baseline AEAD under key (32 bytes).
func New(key []byte) *GCM {
	b, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		panic(err)
	}
	return &GCM{aead: a}
}

// Seal returns nonce || ciphertext || tag in one new slice.
func (g *GCM) Seal(pt []byte) []byte {
	ns := g.aead.NonceSize()
	out := make([]byte, ns, ns+len(pt)+g.aead.Overhead())
	_, _ = rand.Read(out)
	return g.aead.Seal(out, out[:ns], pt, nil)
}

// Open returns the plaintext of a message made by Seal in one new slice.
func (g *GCM) Open(msg []byte) ([]byte, error) {
	ns := g.aead.NonceSize()
	return g.aead.Open(make([]byte, 0, len(msg)-ns-g.aead.Overhead()), msg[:ns], msg[ns:], nil)
}

// CompareSeal measures, for every size, seal next to the baseline's Seal
// with Interleave (one sub-benchmark per size, reporting base-ns/op,
// ours-ns/op and ratio).
func CompareSeal(b *testing.B, base *GCM, seal func(pt []byte) error) {
	for _, s := range Sizes {
		pt := make([]byte, s.N)
		b.Run(s.Name, func(b *testing.B) {
			b.SetBytes(int64(s.N))
			Interleave(b, func() error { base.Seal(pt); return nil }, func() error { return seal(pt) })
		})
	}
}

// CompareOpen is CompareSeal for opening: prepare seals a message of each
// size with the code under test and returns the function that opens it.
func CompareOpen(b *testing.B, base *GCM, prepare func(pt []byte) (open func() error)) {
	for _, s := range Sizes {
		pt := make([]byte, s.N)
		msg := base.Seal(pt)
		open := prepare(pt)
		b.Run(s.Name, func(b *testing.B) {
			b.SetBytes(int64(s.N))
			Interleave(b, func() error { _, err := base.Open(msg); return err }, open)
		})
	}
}

// TextValue is the 32-byte string of the text round-trip benchmarks.
const TextValue = "0123456789abcdef0123456789abcdef"

// CompareTextRoundTrip measures roundTrip (encrypt and decrypt TextValue as
// a text token) next to the baseline's binary seal+open of the same 32
// bytes, with Interleave.
func CompareTextRoundTrip(b *testing.B, base *GCM, roundTrip func(s string) error) {
	pt := []byte(TextValue)
	Interleave(b, func() error { _, err := base.Open(base.Seal(pt)); return err }, func() error { return roundTrip(TextValue) })
}

// chunk is how many calls of one side run before the other side's turn in
// Interleave.
const chunk = 64

// Interleave measures base and ours in alternating chunks of calls within one
// benchmark, so that both see the same machine: a shared or throttled CPU
// slows both alike. It reports "base-ns/op", "ours-ns/op" and "ratio"
// (ours/base, the figure the speed targets are about).
func Interleave(b *testing.B, base, ours func() error) {
	b.ReportAllocs()
	var tb, to time.Duration
	n := 0
	for b.Loop() {
		if n%chunk == 0 {
			// One chunk of each side per chunk of b.N, alternating which goes first.
			first, second := base, ours
			tf, ts := &tb, &to
			if (n/chunk)%2 == 1 {
				first, second, tf, ts = ours, base, &to, &tb
			}
			*tf += timeChunk(b, first)
			*ts += timeChunk(b, second)
		}
		n++
	}
	calls := float64((n + chunk - 1) / chunk * chunk)
	b.ReportMetric(float64(tb.Nanoseconds())/calls, "base-ns/op")
	b.ReportMetric(float64(to.Nanoseconds())/calls, "ours-ns/op")
	if tb > 0 {
		b.ReportMetric(float64(to)/float64(tb), "ratio")
	}
}

func timeChunk(b *testing.B, f func() error) time.Duration {
	start := time.Now()
	for range chunk {
		if err := f(); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}
