package cipher

import (
	"unsafe"
)

// Option adjusts EncryptData and DecryptData.
type Option interface {
	apply(*options)
}

// optionFunc adapts a function to Option.
type optionFunc func(*options)

func (f optionFunc) apply(c *options) { f(c) }

type options struct {
	alg Algorithm
	aad []byte
}

// WithAAD binds the token to associated data: DecryptData must be given the
// same data. The data is authenticated, not encrypted, and not stored in the
// token.
func WithAAD(aad []byte) Option { return optionFunc(func(o *options) { o.aad = aad }) }

// WithAlgorithm selects the algorithm EncryptData uses (default AES256GCM).
// DecryptData reads the algorithm from the token and ignores this option.
func WithAlgorithm(a Algorithm) Option { return optionFunc(func(o *options) { o.alg = a }) }

func collect(opts []Option) options {
	o := options{alg: AES256GCM}
	for _, f := range opts {
		f.apply(&o)
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
// allocates once: the binary token is sealed into the tail of the text's
// buffer and base64url-encoded forward over itself (b64Encode allows that),
// and the string is that buffer.
func SealText(c *AEAD, plaintext string, aad []byte) string {
	pt := unsafe.Slice(unsafe.StringData(plaintext), len(plaintext))
	n := c.SealedLen(len(pt))
	tl := TextLen(n)
	buf := make([]byte, tl+adLen(len(aad)))
	var ad []byte
	if len(aad) > 0 {
		ad = buf[tl:]
	}
	bin := buf[tl-n : tl]
	c.sealInto(bin, ad, nil, pt, aad)
	copy(buf, TextPrefix)
	b64Encode(buf[len(TextPrefix):tl], bin)
	return unsafe.String(unsafe.SliceData(buf), tl)
}

// OpenText authenticates and decrypts a text token under c and returns the
// plaintext as a string. It allocates once: the token is decoded into a new
// buffer and decrypted in place there, and the string is the plaintext's
// part of that buffer (header, nonce and tag bytes around it are not
// secret). On failure the buffer holds no plaintext.
func OpenText(c *AEAD, token string, aad []byte) (string, error) {
	if !IsText(token) {
		_, err := appendDecodeText(nil, token)
		return "", err
	}
	bl := b64DecodedLen(len(token) - len(TextPrefix))
	if bl < 0 {
		return "", malformed("bad base64url")
	}
	buf := make([]byte, bl+adLen(len(aad)))
	bin := buf[:bl:bl]
	if !b64DecodeTo(bin, token[len(TextPrefix):]) {
		return "", malformed("bad base64url")
	}
	nonce, ct, ok := c.split(bin)
	if !ok {
		return "", c.reject(bin)
	}
	var ad []byte
	if len(aad) > 0 {
		ad = buf[bl:]
	}
	// In place: the plaintext overwrites the ciphertext's start.
	pt, err := c.aead.Open(ct[:0], nonce, ct, c.additional(ad, aad))
	if err != nil {
		return "", ErrDecrypt
	}
	return unsafe.String(unsafe.SliceData(pt), len(pt)), nil
}
