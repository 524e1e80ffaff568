package cipher

import (
	"crypto/aes"
	stdcipher "crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strconv"

	"golang.org/x/crypto/chacha20poly1305"
)

// AEAD seals and opens tokens under one key. Build it once per key and reuse
// it: it holds the expanded key schedule, so the hot path does no key setup.
// An AEAD is immutable and safe for concurrent use.
//
// AEAD keeps no copy of the raw key; the expanded key schedule inside the
// standard library cannot be zeroed, so drop every reference to an AEAD whose
// key is retired.
type AEAD struct {
	hdr  [HeaderSize]byte
	alg  Algorithm
	aead stdcipher.AEAD
}

// NewAEAD returns an AEAD for alg under key, writing keyID into the header of
// every token it seals. The key must be exactly KeySize bytes; any other
// length is a KeySizeError.
func NewAEAD(alg Algorithm, key []byte, keyID uint32) (*AEAD, error) {
	if len(key) != KeySize {
		return nil, KeySizeError(len(key))
	}
	var (
		a   stdcipher.AEAD
		err error
	)
	switch alg {
	case AES256GCM:
		var b stdcipher.Block
		if b, err = aes.NewCipher(key); err == nil {
			a, err = stdcipher.NewGCM(b)
		}
	case XChaCha20Poly1305:
		a, err = chacha20poly1305.NewX(key)
	default:
		return nil, fmt.Errorf("cipher: unsupported algorithm %d", byte(alg))
	}
	if err != nil {
		return nil, fmt.Errorf("cipher: %v", err)
	}
	c := &AEAD{alg: alg, aead: a}
	AppendHeader(c.hdr[:0], Header{Version: Version, Algorithm: alg, KeyID: keyID})
	return c, nil
}

// Algorithm returns the AEAD's algorithm.
func (c *AEAD) Algorithm() Algorithm { return c.alg }

// KeyID returns the key ID written into the tokens c seals.
func (c *AEAD) KeyID() uint32 { return binary.BigEndian.Uint32(c.hdr[2:]) }

// Overhead returns the bytes a token adds to its plaintext.
func (c *AEAD) Overhead() int { return Overhead(c.alg) }

// Seal encrypts and authenticates plaintext with a fresh random nonce and
// appends the binary token to dst. The header bytes are authenticated
// together with aad, the caller's associated data. plaintext must not overlap
// dst.
func (c *AEAD) Seal(dst, plaintext, aad []byte) []byte {
	ret, out, ad := grow(dst, c.SealedLen(len(plaintext)), len(aad))
	c.sealInto(out, ad, nil, plaintext, aad)
	return ret
}

// SealedLen returns the length of the token that seals n bytes.
func (c *AEAD) SealedLen(n int) int { return HeaderSize + c.alg.NonceSize() + n + TagSize }

// sealInto writes the token of plaintext into out, which has exactly
// SealedLen(len(plaintext)) bytes, with ad as scratch space for the additional
// data (HeaderSize+len(aad) bytes, or nil when aad is empty). A nil nonce
// means a fresh random one.
func (c *AEAD) sealInto(out, ad, nonce, plaintext, aad []byte) {
	ns := c.alg.NonceSize()
	copy(out, c.hdr[:])
	n := out[HeaderSize : HeaderSize+ns]
	if nonce == nil {
		_, _ = rand.Read(n) // never fails since Go 1.24
	} else {
		copy(n, nonce)
	}
	c.aead.Seal(out[:HeaderSize+ns], n, plaintext, c.additional(ad, aad))
}

// Open authenticates and decrypts the binary token and appends the plaintext
// to dst. A malformed token wraps ErrMalformedToken, a token of another key
// ID wraps ErrKeyIDMismatch, and every authentication failure (wrong key,
// wrong aad, modified token) is ErrDecrypt.
func (c *AEAD) Open(dst, token, aad []byte) ([]byte, error) {
	nonce, ct, ok := c.split(token)
	if !ok {
		return nil, c.reject(token)
	}
	return c.open(dst, nonce, ct, aad)
}

// OpenToken is Open for a token already split by Parse (it saves parsing
// twice when the caller read the header first to pick the key).
func (c *AEAD) OpenToken(dst []byte, t Token, aad []byte) ([]byte, error) {
	if err := c.belongs(t); err != nil {
		return nil, err
	}
	return c.open(dst, t.Nonce, t.Ciphertext, aad)
}

// belongs checks that a parsed token was made under c's key ID and
// algorithm.
func (c *AEAD) belongs(t Token) error {
	if t.KeyID != c.KeyID() {
		return fmt.Errorf("%w (token key ID %d, key ID %d)", ErrKeyIDMismatch, t.KeyID, c.KeyID())
	}
	if t.Algorithm != c.alg || t.Version != Version || len(t.Nonce) != c.alg.NonceSize() || len(t.Ciphertext) < TagSize {
		return ErrDecrypt
	}
	return nil
}

// split is the fast test that a binary token belongs to c: it starts with
// exactly c's header (version, algorithm, key ID) and is long enough for the
// nonce and the tag. It returns the nonce and ciphertext||tag. When it says
// no, reject says why.
func (c *AEAD) split(token []byte) (nonce, ct []byte, ok bool) {
	ns := c.alg.NonceSize()
	if len(token) < HeaderSize+ns+TagSize || [HeaderSize]byte(token) != c.hdr {
		return nil, nil, false
	}
	return token[HeaderSize : HeaderSize+ns : HeaderSize+ns], token[HeaderSize+ns:], true
}

// reject returns the error of a token split refused. split and the checks
// here agree on which tokens belong to c, so they name the fault; a token
// they would pass is refused all the same.
func (c *AEAD) reject(token []byte) error {
	t, err := Parse(token)
	if err == nil {
		err = c.belongs(t)
	}
	if err == nil {
		err = ErrDecrypt
	}
	return err
}

// open decrypts ct (ciphertext || tag) of a token that belongs to c and
// appends the plaintext to dst.
func (c *AEAD) open(dst, nonce, ct, aad []byte) ([]byte, error) {
	ret, out, ad := grow(dst, len(ct)-TagSize, len(aad))
	if _, err := c.aead.Open(out[:0], nonce, ct, c.additional(ad, aad)); err != nil {
		return nil, ErrDecrypt
	}
	return ret, nil
}

// additional returns header || aad in the scratch space ad, or the header
// alone when there is no caller data.
func (c *AEAD) additional(ad, aad []byte) []byte {
	if len(aad) == 0 {
		return c.hdr[:]
	}
	copy(ad, c.hdr[:])
	copy(ad[HeaderSize:], aad)
	return ad
}

// grow extends dst by n bytes and returns the whole slice and the new part.
// When aadLen > 0 it also returns HeaderSize+aadLen bytes of scratch space for
// the additional data, taken from the same allocation as the output when dst
// must grow; the returned slices never overlap.
func grow(dst []byte, n, aadLen int) (ret, out, ad []byte) {
	total := len(dst) + n
	extra := adLen(aadLen)
	if cap(dst) >= total {
		ret = dst[:total]
		if extra > 0 {
			ad = make([]byte, extra)
		}
	} else {
		buf := make([]byte, total+extra)
		copy(buf, dst)
		ret = buf[:total:total]
		ad = buf[total:]
	}
	return ret, ret[len(dst):], ad
}

// adLen is the scratch space additional data of aadLen bytes needs.
func adLen(aadLen int) int {
	if aadLen == 0 {
		return 0
	}
	return HeaderSize + aadLen
}

// String describes the AEAD without its key.
func (c *AEAD) String() string {
	return "cipher.AEAD{" + c.alg.String() + ", key ID " + strconv.FormatUint(uint64(c.KeyID()), 10) + ", key redacted}"
}

// GoString is String, so %#v never prints key material.
func (c *AEAD) GoString() string { return c.String() }

// Format implements fmt.Formatter so that every verb prints String.
func (c *AEAD) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(c.String())) }
