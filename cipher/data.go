package cipher

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
	h, err := ParseHeader(token)
	if err != nil {
		return "", err
	}
	c, err := NewAEAD(h.Algorithm, key, 0)
	if err != nil {
		return "", err
	}
	return OpenText(c, token, o.aad)
}

// SealText seals the string plaintext and returns the text token. It
// allocates only the returned string: the plaintext is copied into pooled
// scratch at its place in the binary token, sealed there in place, and
// base64url-encoded forward over the same scratch (b64Encode allows that);
// the scratch is cleared before it is reused.
func SealText(c *AEAD, plaintext string, aad []byte) string {
	n := c.SealedLen(len(plaintext))
	tl := TextLen(n)
	p := getScratch(tl + adLen(len(aad))) // the text, then room for the additional data
	buf := (*p)[:tl]
	bin := buf[tl-n:]
	start := HeaderSize + c.alg.NonceSize()
	pt := bin[start : start+len(plaintext)]
	copy(pt, plaintext)
	c.sealInto(bin, nil, pt, aad, (*p)[tl:])
	copy(buf, TextPrefix)
	b64Encode(buf[len(TextPrefix):], bin)
	s := string(buf)
	putScratch(p)
	return s
}

// OpenText authenticates and decrypts a text token under c and returns the
// plaintext as a string. It allocates only the returned string: the token is
// decoded into pooled scratch and decrypted in place there, and the scratch
// is cleared before it is reused, so it never holds plaintext for long and
// the string does not keep a token-sized buffer alive.
func OpenText(c *AEAD, token string, aad []byte) (string, error) {
	return OpenTextWith(token, aad, func(uint32) *AEAD { return c })
}

// OpenTextWith opens a text token under the AEAD that pick returns for the
// token's key ID: for a caller that keeps several keys by ID (as a keyring
// does) and lets each token name its key, never trying keys. It decodes the
// token once and reads the key ID from the decoded header. A malformed token
// is an error before pick is called; when pick returns nil (no key for that
// ID) the error is ErrKeyIDMismatch; the AEAD pick returns checks the whole
// header, as OpenText does.
func OpenTextWith(token string, aad []byte, pick func(keyID uint32) *AEAD) (string, error) {
	if !IsText(token) {
		_, err := appendDecodeText(nil, token)
		return "", err
	}
	bl := b64DecodedLen(len(token) - len(TextPrefix))
	if bl < 0 {
		return "", malformed("bad base64url")
	}
	p := getScratch(bl + adLen(len(aad))) // the token, then room for the additional data
	defer putScratch(p)
	bin := (*p)[:bl:bl]
	if !b64DecodeTo(bin, token[len(TextPrefix):]) {
		return "", malformed("bad base64url")
	}
	id, found := PeekKeyID(bin)
	if !found {
		_, err := Parse(bin) // too short for a header: Parse names the fault
		return "", err
	}
	c := pick(id)
	if c == nil {
		return "", ErrKeyIDMismatch
	}
	nonce, ct, fits := c.split(bin)
	if !fits {
		return "", c.reject(bin)
	}
	b, err := c.openInto(ct[:0], nonce, ct, aad, (*p)[bl:])
	if err != nil {
		return "", err
	}
	return string(b), nil
}
