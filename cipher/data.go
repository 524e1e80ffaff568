package cipher

import "unsafe"

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

// SealText seals the string plaintext and returns the text token. It makes
// a single allocation: the binary token is sealed into the tail of the buffer
// whose head receives the text form.
func SealText(c *AEAD, plaintext string, aad []byte) string {
	pt := unsafe.Slice(unsafe.StringData(plaintext), len(plaintext))
	n := c.SealedLen(len(pt))
	tl := TextLen(n)
	buf := make([]byte, tl+n+adLen(len(aad)))
	bin := buf[tl : tl+n]
	var ad []byte
	if len(aad) > 0 {
		ad = buf[tl+n:]
	}
	c.sealInto(bin, ad, nil, pt, aad)
	text := AppendText(buf[:0:tl], bin)
	return unsafe.String(unsafe.SliceData(text), len(text))
}

// OpenText authenticates and decrypts a text token under c and returns the
// plaintext as a string. It makes a single allocation: the token is decoded
// into the tail of the buffer whose head receives the plaintext.
func OpenText(c *AEAD, token string, aad []byte) (string, error) {
	if !IsText(token) {
		_, err := appendDecodeText(nil, token)
		return "", err
	}
	bl := b64DecodedLen(len(token) - len(TextPrefix))
	if bl < c.SealedLen(0) {
		// Let the parser name what is wrong.
		bin, err := DecodeText(token)
		if err == nil {
			_, err = c.check(bin)
		}
		if err == nil {
			err = ErrDecrypt
		}
		return "", err
	}
	pl := bl - c.SealedLen(0)
	buf := make([]byte, pl+bl+adLen(len(aad)))
	bin, err := appendDecodeText(buf[pl:pl:pl+bl], token)
	if err != nil {
		return "", err
	}
	t, err := c.check(bin)
	if err != nil {
		return "", err
	}
	if len(t.Ciphertext)-TagSize != pl {
		return "", ErrDecrypt // cannot happen: the length follows from the algorithm
	}
	var ad []byte
	if len(aad) > 0 {
		ad = buf[pl+bl:]
	}
	if err := c.openInto(buf[:pl], ad, t, aad); err != nil {
		return "", err
	}
	return unsafe.String(unsafe.SliceData(buf), pl), nil
}
