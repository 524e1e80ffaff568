package benchbase

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
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
