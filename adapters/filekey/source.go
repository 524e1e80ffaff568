package filekey

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyward/keyward/cipher"
	"github.com/keyward/keyward/keyring"
)

// Source is a keyring.KeySource whose key-encryption key is a file key. It
// wraps data keys with AES-256-GCM under the file key, binding them to the
// keyring's associated data. A wrapped key is a keyward binary token whose
// key ID is 32 bits of the file key's fingerprint, so a key wrapped under
// another file key is reported as such (keyring.ErrUnwrap) without trying.
type Source struct {
	aead *cipher.AEAD
	id   string
}

var _ keyring.KeySource = (*Source)(nil)

// New returns a Source over a 32-byte key. The Source keeps no copy of the
// raw key; the caller may zero key after New returns.
func New(key []byte) (*Source, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("filekey: %w", cipher.KeySizeError(len(key)))
	}
	fp := fingerprint(key)
	c, err := cipher.NewAEAD(cipher.AES256GCM, key, keyID(fp))
	if err != nil {
		return nil, fmt.Errorf("filekey: %w", err)
	}
	return &Source{aead: c, id: idString(fp)}, nil
}

// Open loads the key file at path (see Load) and returns a Source over it.
func Open(path string) (*Source, error) {
	key, err := Load(path)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	return New(key)
}

// ID returns "filekey:" and 16 hex digits of the key's fingerprint (an HMAC
// under the key, which reveals nothing about it).
func (s *Source) ID() string { return s.id }

// String describes the source without key material.
func (s *Source) String() string { return s.id }

// GoString is String.
func (s *Source) GoString() string { return s.id }

// Format prints String under every verb.
func (s *Source) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.id)) }

// Wrap implements keyring.KeySource.
func (s *Source) Wrap(ctx context.Context, dek, aad []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(dek) == 0 {
		return nil, errors.New("filekey: wrap: empty data key")
	}
	return s.aead.Seal(nil, dek, wrapAAD(aad)), nil
}

// Unwrap implements keyring.KeySource.
func (s *Source) Unwrap(ctx context.Context, wrapped, aad []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dek, err := s.aead.Open(nil, wrapped, wrapAAD(aad))
	switch {
	case errors.Is(err, cipher.ErrKeyIDMismatch):
		return nil, fmt.Errorf("filekey: %w: wrapped by another file key", keyring.ErrUnwrap)
	case err != nil:
		return nil, fmt.Errorf("filekey: %w: %w", keyring.ErrUnwrap, err)
	}
	return dek, nil
}

func wrapAAD(aad []byte) []byte {
	return cipher.AppendAAD(nil, "keyward.filekey.wrap/v1", string(aad))
}
