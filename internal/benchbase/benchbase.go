package benchbase

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"testing"
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

// CompareSeal runs, for every size, the baseline's Seal and then seal under
// the name "stdlib/SIZE" and "NAME/SIZE", so they land in one run.
func CompareSeal(b *testing.B, name string, base *GCM, seal func(pt []byte) error) {
	for _, s := range Sizes {
		pt := make([]byte, s.N)
		run(b, "stdlib/"+s.Name, s.N, func() error { base.Seal(pt); return nil })
		run(b, name+"/"+s.Name, s.N, func() error { return seal(pt) })
	}
}

// CompareOpen is CompareSeal for opening: prepare seals a message of each
// size with the code under test and returns the function that opens it.
func CompareOpen(b *testing.B, name string, base *GCM, prepare func(pt []byte) (open func() error)) {
	for _, s := range Sizes {
		pt := make([]byte, s.N)
		msg := base.Seal(pt)
		open := prepare(pt)
		run(b, "stdlib/"+s.Name, s.N, func() error { _, err := base.Open(msg); return err })
		run(b, name+"/"+s.Name, s.N, open)
	}
}

func run(b *testing.B, name string, n int, f func() error) {
	b.Run(name, func(b *testing.B) {
		if n > 0 {
			b.SetBytes(int64(n))
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := f(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TextValue is the 32-byte string of the text round-trip benchmarks.
const TextValue = "0123456789abcdef0123456789abcdef"

// CompareTextRoundTrip runs the baseline's binary seal+open of TextValue as
// "stdlib-binary" and roundTrip (encrypt and decrypt TextValue as text) as
// "NAME-text", in one run.
func CompareTextRoundTrip(b *testing.B, name string, base *GCM, roundTrip func(s string) error) {
	pt := []byte(TextValue)
	run(b, "stdlib-binary", 0, func() error { _, err := base.Open(base.Seal(pt)); return err })
	run(b, name+"-text", 0, func() error { return roundTrip(TextValue) })
}
