package cipher

import (
	"errors"
	"strconv"
)

// ErrMalformedToken reports a token that cannot be parsed: empty, too short,
// an unknown version or algorithm, a truncated nonce or tag, bad base64 or a
// missing "kw1." prefix. The wrapping error says which; it never quotes the
// token itself.
var ErrMalformedToken = errors.New("cipher: malformed token")

// ErrDecrypt is the single error for every authentication failure: a wrong
// key, wrong associated data or a modified token all look the same, as they
// must.
var ErrDecrypt = errors.New("cipher: message authentication failed")

// ErrKeyIDMismatch reports a token made under a key ID other than the one of
// the AEAD asked to open it. Callers pick the key by the token's key ID, so
// this is a caller mistake, not tampering; it is reported before any
// decryption is attempted.
var ErrKeyIDMismatch = errors.New("cipher: token key ID does not match the key")

var errUnknownAlgorithmName = errors.New("cipher: unknown algorithm name (want AES-256-GCM or XChaCha20-Poly1305)")

// KeySizeError reports a key whose length is not KeySize. Keys are never
// cropped or padded.
type KeySizeError int

// Error says which length was given and which is wanted.
func (k KeySizeError) Error() string {
	return "cipher: invalid key size " + strconv.Itoa(int(k)) + " bytes, want " + strconv.Itoa(KeySize)
}

// malformed wraps ErrMalformedToken with a reason.
type malformed string

func (m malformed) Error() string        { return ErrMalformedToken.Error() + ": " + string(m) }
func (m malformed) Unwrap() error        { return ErrMalformedToken }
func (m malformed) Is(target error) bool { return target == ErrMalformedToken }
