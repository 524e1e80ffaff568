package cipher

import (
	"encoding/binary"
	"strconv"
	"strings"
)

// Version is the token format version written in the first byte.
const Version byte = 0x01

// Sizes of the token format.
const (
	HeaderSize = 6  // version, algorithm, 4-byte key ID
	TagSize    = 16 // AEAD authentication tag
	KeySize    = 32 // every supported algorithm takes a 256-bit key
)

// TextPrefix starts the text form of a token.
const TextPrefix = "kw1."

// Algorithm identifies the AEAD of a token (byte 1 of the header).
type Algorithm byte

// The supported algorithms.
const (
	AES256GCM         Algorithm = 0x01 // AES-256-GCM, 12-byte random nonce (the default)
	XChaCha20Poly1305 Algorithm = 0x02 // XChaCha20-Poly1305, 24-byte random nonce
)

// NonceSize returns the nonce length of a, or 0 for an unknown algorithm.
func (a Algorithm) NonceSize() int {
	switch a {
	case AES256GCM:
		return 12
	case XChaCha20Poly1305:
		return 24
	}
	return 0
}

// Valid reports whether a is a supported algorithm.
func (a Algorithm) Valid() bool { return a.NonceSize() != 0 }

// String returns the algorithm's name, such as "AES-256-GCM".
func (a Algorithm) String() string {
	switch a {
	case AES256GCM:
		return "AES-256-GCM"
	case XChaCha20Poly1305:
		return "XChaCha20-Poly1305"
	}
	return "Algorithm(" + strconv.Itoa(int(a)) + ")"
}

// ParseAlgorithm returns the algorithm named s ("AES-256-GCM" or
// "XChaCha20-Poly1305", case-insensitive).
func ParseAlgorithm(s string) (Algorithm, error) {
	switch strings.ToLower(s) {
	case "aes-256-gcm":
		return AES256GCM, nil
	case "xchacha20-poly1305":
		return XChaCha20Poly1305, nil
	}
	return 0, errUnknownAlgorithmName
}

// Header is the authenticated 6-byte prefix of every token.
type Header struct {
	Version   byte
	Algorithm Algorithm
	KeyID     uint32 // 0 = a raw key given by the caller
}

// AppendHeader appends the 6 header bytes of h to dst.
func AppendHeader(dst []byte, h Header) []byte {
	dst = append(dst, h.Version, byte(h.Algorithm))
	return binary.BigEndian.AppendUint32(dst, h.KeyID)
}

// Token is a parsed binary token. Its slices alias the parsed input.
type Token struct {
	Header
	Nonce      []byte
	Ciphertext []byte // ciphertext || tag
}

// Overhead returns how many bytes a token of algorithm a adds to the
// plaintext: header, nonce and tag.
func Overhead(a Algorithm) int { return HeaderSize + a.NonceSize() + TagSize }

// Parse splits a binary token into its parts. It checks the structure
// (version, algorithm, lengths) and never authenticates; every malformed
// input returns an error wrapping ErrMalformedToken.
func Parse(b []byte) (Token, error) {
	h, err := binaryHeader(b)
	if err != nil {
		return Token{}, err
	}
	ns := h.Algorithm.NonceSize()
	rest := b[HeaderSize:]
	return Token{Header: h, Nonce: rest[:ns:ns], Ciphertext: rest[ns:]}, nil
}

// ParseHeader returns the header of a token without decrypting it: the way
// to read a token's key ID or algorithm before doing any other work. As
// everywhere in this package, a string is a text token and a []byte a
// binary one. It checks the structure and never authenticates: a binary
// token as [Parse] does; of a text token the prefix, the header's base64,
// its version and algorithm, and that the token is long enough for its nonce
// and tag (the rest is checked when it is opened). Every malformed input
// returns an error wrapping [ErrMalformedToken].
func ParseHeader[T string | []byte](token T) (Header, error) {
	switch t := any(token).(type) {
	case string:
		return textHeaderOf(t)
	case []byte:
		return binaryHeader(t)
	}
	panic("unreachable")
}

// PeekKeyID returns the key ID field of a token (a string is a text token,
// a []byte a binary one), and false when the token is too short to hold a
// header or, for a text token, has no prefix or no valid header characters.
// It checks nothing else, so it also reads the key ID of a header cut from
// a longer token: it is for picking or counting keys, and opening a token
// checks its whole header. Use [ParseHeader] to check the header.
func PeekKeyID[T string | []byte](token T) (uint32, bool) {
	switch t := any(token).(type) {
	case string:
		var b [HeaderSize]byte
		if len(t) < len(TextPrefix)+textHeaderLen || !IsText(t) || !b64DecodeTo(b[:], t[len(TextPrefix):len(TextPrefix)+textHeaderLen]) {
			return 0, false
		}
		return binary.BigEndian.Uint32(b[2:]), true
	case []byte:
		if len(t) < HeaderSize {
			return 0, false
		}
		return binary.BigEndian.Uint32(t[2:HeaderSize]), true
	}
	panic("unreachable")
}

// textHeaderOf checks the prefix of a text token and reads its header.
func textHeaderOf(s string) (Header, error) {
	if s == "" {
		return Header{}, malformed("empty")
	}
	if !IsText(s) {
		return Header{}, malformed("missing " + TextPrefix + " prefix")
	}
	return textHeader(s[len(TextPrefix):min(len(s), len(TextPrefix)+textHeaderLen)], len(s)-len(TextPrefix))
}

// binaryHeader reads and checks the header of a binary token and that the
// token is long enough for its nonce and tag.
func binaryHeader(b []byte) (Header, error) {
	if len(b) == 0 {
		return Header{}, malformed("empty")
	}
	if len(b) < HeaderSize {
		return Header{}, malformed("shorter than its header")
	}
	h := Header{Version: b[0], Algorithm: Algorithm(b[1]), KeyID: binary.BigEndian.Uint32(b[2:HeaderSize])}
	if h.Version != Version {
		return Header{}, malformed("unknown version " + strconv.Itoa(int(h.Version)))
	}
	ns := h.Algorithm.NonceSize()
	if ns == 0 {
		return Header{}, malformed("unknown algorithm " + strconv.Itoa(int(h.Algorithm)))
	}
	rest := len(b) - HeaderSize
	if rest < ns {
		return Header{}, malformed("truncated nonce")
	}
	if rest-ns < TagSize {
		return Header{}, malformed("truncated tag")
	}
	return h, nil
}

// EncodeText returns the text form of a binary token: "kw1." followed by
// the token in unpadded base64url.
func EncodeText(b []byte) string {
	return string(AppendText(make([]byte, 0, TextLen(len(b))), b))
}

// AppendText appends the text form of the binary token b to dst.
func AppendText(dst, b []byte) []byte {
	dst = append(dst, TextPrefix...)
	n := len(dst)
	dst = append(dst, make([]byte, b64EncodedLen(len(b)))...)
	b64Encode(dst[n:], b)
	return dst
}

// TextLen returns the length of the text form of an n-byte binary token.
func TextLen(n int) int { return len(TextPrefix) + b64EncodedLen(n) }

// DecodeText returns the binary token of a text token. It checks the prefix
// and the base64 but not the token structure; use ParseText for both.
func DecodeText(s string) ([]byte, error) {
	return appendDecodeText(nil, s)
}

func appendDecodeText(dst []byte, s string) ([]byte, error) {
	if s == "" {
		return nil, malformed("empty")
	}
	if !strings.HasPrefix(s, TextPrefix) {
		return nil, malformed("missing " + TextPrefix + " prefix")
	}
	s = s[len(TextPrefix):]
	n := b64DecodedLen(len(s))
	if n < 0 {
		return nil, malformed("bad base64url")
	}
	start := len(dst)
	if cap(dst)-start < n {
		nb := make([]byte, start, start+n)
		copy(nb, dst)
		dst = nb
	}
	if !b64DecodeTo(dst[start:start+n], s) {
		return nil, malformed("bad base64url")
	}
	return dst[:start+n], nil
}

// ParseText decodes a text token and parses it like Parse.
func ParseText(s string) (Token, error) {
	b, err := DecodeText(s)
	if err != nil {
		return Token{}, err
	}
	return Parse(b)
}

// IsText reports whether s looks like a text token (it has the "kw1."
// prefix). It is a cheap test for telling tokens from legacy plaintext, not a
// validation.
func IsText(s string) bool { return strings.HasPrefix(s, TextPrefix) }

// textHeaderLen is the length of the base64url form of the 6 header bytes.
const textHeaderLen = HeaderSize * 4 / 3

// textHeader reads and checks the header of a text token from head, the
// characters after the prefix (at most textHeaderLen of them), and n, the
// number of characters after the prefix.
func textHeader(head string, n int) (Header, error) {
	if len(head) < textHeaderLen {
		return Header{}, malformed("shorter than its header")
	}
	var b [HeaderSize]byte
	if !b64DecodeTo(b[:], head) {
		return Header{}, malformed("bad base64url")
	}
	h := Header{Version: b[0], Algorithm: Algorithm(b[1]), KeyID: binary.BigEndian.Uint32(b[2:])}
	if h.Version != Version {
		return Header{}, malformed("unknown version " + strconv.Itoa(int(h.Version)))
	}
	if !h.Algorithm.Valid() {
		return Header{}, malformed("unknown algorithm " + strconv.Itoa(int(h.Algorithm)))
	}
	if n := b64DecodedLen(n); n < 0 {
		return Header{}, malformed("bad base64url")
	} else if n < HeaderSize+h.Algorithm.NonceSize() {
		return Header{}, malformed("truncated nonce")
	} else if n < Overhead(h.Algorithm) {
		return Header{}, malformed("truncated tag")
	}
	return h, nil
}
