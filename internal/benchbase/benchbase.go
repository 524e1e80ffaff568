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
func (g *GCM) Seal(pt []byte) []byte { return g.SealAAD(pt, nil) }

// SealAAD is Seal with associated data, passed to the AEAD as it is.
func (g *GCM) SealAAD(pt, aad []byte) []byte {
	ns := g.aead.NonceSize()
	out := make([]byte, ns, ns+len(pt)+g.aead.Overhead())
	_, _ = rand.Read(out)
	return g.aead.Seal(out, out[:ns], pt, aad)
}

// Open returns the plaintext of a message made by Seal in one new slice.
func (g *GCM) Open(msg []byte) ([]byte, error) { return g.OpenAAD(msg, nil) }

// OpenAAD is Open for a message made by SealAAD with the same aad.
func (g *GCM) OpenAAD(msg, aad []byte) ([]byte, error) {
	ns := g.aead.NonceSize()
	return g.aead.Open(make([]byte, 0, len(msg)-ns-g.aead.Overhead()), msg[:ns], msg[ns:], aad)
}

// AAD is the associated data of the *AAD comparisons: 49 bytes, about what
// a database field binds (table, column and a UUID primary key).
var AAD = []byte("\x05users\x05email\x24" + "0190f5c2-7d4e-7b3a-9c1d-2f6e8a4b5c6d")

// CompareSeal measures, for every size, seal next to the baseline's Seal
// with Interleave (one sub-benchmark per size, reporting base-ns/op,
// ours-ns/op and ratio).
func CompareSeal(b *testing.B, base *GCM, seal func(pt []byte) error) {
	compareSeal(b, base, nil, func(pt, _ []byte) error { return seal(pt) })
}

// CompareSealAAD is CompareSeal with AAD as associated data on both sides:
// seal gets it and must bind the message to it, as the baseline does.
func CompareSealAAD(b *testing.B, base *GCM, seal func(pt, aad []byte) error) {
	compareSeal(b, base, AAD, seal)
}

func compareSeal(b *testing.B, base *GCM, aad []byte, seal func(pt, aad []byte) error) {
	for _, s := range Sizes {
		pt := make([]byte, s.N)
		b.Run(s.Name, func(b *testing.B) {
			b.SetBytes(int64(s.N))
			Interleave(b, func() error { base.SealAAD(pt, aad); return nil }, func() error { return seal(pt, aad) })
		})
	}
}

// CompareOpen is CompareSeal for opening: prepare seals a message of each
// size with the code under test and returns the function that opens it.
func CompareOpen(b *testing.B, base *GCM, prepare func(pt []byte) (open func() error)) {
	compareOpen(b, base, nil, func(pt, _ []byte) func() error { return prepare(pt) })
}

// CompareOpenAAD is CompareOpen with AAD as associated data on both sides:
// prepare seals a message bound to aad and returns the function that opens
// it with aad.
func CompareOpenAAD(b *testing.B, base *GCM, prepare func(pt, aad []byte) (open func() error)) {
	compareOpen(b, base, AAD, prepare)
}

func compareOpen(b *testing.B, base *GCM, aad []byte, prepare func(pt, aad []byte) func() error) {
	for _, s := range Sizes {
		pt := make([]byte, s.N)
		msg := base.SealAAD(pt, aad)
		open := prepare(pt, aad)
		b.Run(s.Name, func(b *testing.B) {
			b.SetBytes(int64(s.N))
			Interleave(b, func() error { _, err := base.OpenAAD(msg, aad); return err }, open)
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
