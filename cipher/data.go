package cipher

import (
	"strings"
	"sync"
	"unsafe"
)

// Option adjusts EncryptData and DecryptData.
type Option func(*options)

type options struct {
	alg Algorithm
	aad []byte
}

// WithAAD binds the token to associated data: DecryptData must be given the
// same data. The data is authenticated, not encrypted, and not stored in the
// token.
func WithAAD(aad []byte) Option { return func(o *options) { o.aad = aad } }

// WithAlgorithm selects the algorithm EncryptData uses (default AES256GCM).
// DecryptData reads the algorithm from the token and ignores this option.
func WithAlgorithm(a Algorithm) Option { return func(o *options) { o.alg = a } }

func collect(opts []Option) options {
	o := options{alg: AES256GCM}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// EncryptData encrypts data under a raw 32-byte key and returns a text token
// with key ID 0 ("kw1." + base64url). It is the spec's encrypt_data. It
// builds the cipher on every call; for repeated use build an AEAD once, or use
// a keyring, which also versions and wraps keys.
func EncryptData(data string, key []byte, opts ...Option) (string, error) {
	o := collect(opts)
	c, err := NewAEAD(o.alg, key, 0)
	if err != nil {
		return "", err
	}
	return SealText(c, data, o.aad), nil
}

// DecryptData authenticates and decrypts a text token made by EncryptData
// under the same key. It is the spec's decrypt_data. The token's algorithm
// comes from its header; its key ID must be 0.
func DecryptData(token string, key []byte, opts ...Option) (string, error) {
	o := collect(opts)
	if len(key) != KeySize {
		return "", KeySizeError(len(key))
	}
	b, err := DecodeText(token)
	if err != nil {
		return "", err
	}
	h, err := ParseHeader(b)
	if err != nil {
		return "", err
	}
	c, err := NewAEAD(h.Algorithm, key, 0)
	if err != nil {
		return "", err
	}
	pt, err := c.Open(nil, b, o.aad)
	if err != nil {
		return "", err
	}
	return unsafe.String(unsafe.SliceData(pt), len(pt)), nil
}

// SealText seals the string plaintext and returns the text token. It
// allocates only the returned string (not zeroed first): the binary token is
// sealed into pooled scratch space and encoded from there.
func SealText(c *AEAD, plaintext string, aad []byte) string {
	pt := unsafe.Slice(unsafe.StringData(plaintext), len(plaintext))
	n := c.SealedLen(len(pt))
	sp := getScratch(n + adLen(len(aad)))
	defer putScratch(sp)
	bin := (*sp)[:n]
	var ad []byte
	if len(aad) > 0 {
		ad = (*sp)[n:]
	}
	c.sealInto(bin, ad, nil, pt, aad)
	var sb strings.Builder
	sb.Grow(TextLen(n))
	sb.WriteString(TextPrefix)
	var tmp [256]byte // 192 input bytes encode to 256 characters
	for off := 0; off < len(bin); off += 192 {
		m := min(192, len(bin)-off)
		enc := tmp[:b64EncodedLen(m)]
		b64Encode(enc, bin[off:off+m])
		sb.Write(enc)
	}
	return sb.String()
}

// OpenText authenticates and decrypts a text token under c and returns the
// plaintext as a string. It allocates only the returned string: the token is
// decoded and decrypted in place in pooled scratch space, which is cleared
// before it is reused.
func OpenText(c *AEAD, token string, aad []byte) (string, error) {
	if !IsText(token) {
		_, err := appendDecodeText(nil, token)
		return "", err
	}
	bl := b64DecodedLen(len(token) - len(TextPrefix))
	if bl < 0 {
		return "", malformed("bad base64url")
	}
	sp := getScratch(bl + adLen(len(aad)))
	defer putScratch(sp)
	bin := (*sp)[:bl]
	if !b64DecodeTo(bin, token[len(TextPrefix):]) {
		return "", malformed("bad base64url")
	}
	t, err := c.check(bin)
	if err != nil {
		return "", err
	}
	var ad []byte
	if len(aad) > 0 {
		ad = (*sp)[bl:]
	}
	// In place: the plaintext overwrites the ciphertext's start.
	pt, err := c.aead.Open(t.Ciphertext[:0], t.Nonce, t.Ciphertext, c.additional(ad, aad))
	if err != nil {
		return "", ErrDecrypt
	}
	return string(pt), nil
}

// The text paths seal and open in pooled scratch buffers. A buffer may hold
// plaintext after OpenText, so it is cleared before it goes back.
var scratchPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// maxPooled bounds the buffers kept in the pool.
const maxPooled = 64 << 10

func getScratch(n int) *[]byte {
	p := scratchPool.Get().(*[]byte)
	if cap(*p) < n {
		*p = make([]byte, n)
	}
	*p = (*p)[:n]
	return p
}

func putScratch(p *[]byte) {
	clear(*p)
	if cap(*p) <= maxPooled {
		scratchPool.Put(p)
	}
}
