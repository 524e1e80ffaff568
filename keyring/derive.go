package keyring

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"strconv"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/cipher"
)

// DerivedKey is a 32-byte key derived from a keyring's derive root for one
// label. It prints as "keyring.DerivedKey{key ID N, redacted}" under every
// format verb.
type DerivedKey struct {
	keyID uint32
	key   *[cipher.KeySize]byte // behind a pointer: a value printed by reflection shows an address, not the key
}

// KeyID returns the ID of the derive root the key comes from; store it with
// whatever the key protects (e.g. a blind index) to know its version.
func (d DerivedKey) KeyID() uint32 { return d.keyID }

// Bytes returns a copy of the key.
func (d DerivedKey) Bytes() []byte {
	if d.key == nil {
		return nil
	}
	return append([]byte(nil), d.key[:]...)
}

// String describes the key without its material.
func (d DerivedKey) String() string {
	return "keyring.DerivedKey{key ID " + strconv.FormatUint(uint64(d.keyID), 10) + ", redacted}"
}

// GoString is String.
func (d DerivedKey) GoString() string { return d.String() }

// Format prints String under every verb.
func (d DerivedKey) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(d.String())) }

// DeriveKey derives a 32-byte key for label (e.g. "blind-index" + table +
// column, or "audit") from the primary derive root, creating the root on
// first use. Derived keys are HKDF-SHA256 of the root, with the keyring name
// and label as info (length-prefixed): different labels or keyrings never
// share a key, and data keys are never used for anything but data. The
// derived key stays the same while data keys rotate; it changes only with
// RotateDerive.
func (k *Keyring) DeriveKey(ctx context.Context, label string) (DerivedKey, error) {
	if err := k.authorize(ctx, access.ActionDerive); err != nil {
		return DerivedKey{}, err
	}
	sl := k.current().primaryDerive
	if sl == nil {
		// The first derivation creates the root; it is part of deriving.
		if _, _, err := k.rotate(ctx, PurposeDerive, access.ActionDerive, nil); err != nil {
			return DerivedKey{}, err
		}
		if sl = k.snap.Load().primaryDerive; sl == nil {
			return DerivedKey{}, fmt.Errorf("keyring: keyring %q has no derive key", k.name)
		}
	}
	return k.derive(ctx, sl, label)
}

// DeriveKeyVersion derives the key for label from the derive root keyID, to
// check values made before a RotateDerive.
func (k *Keyring) DeriveKeyVersion(ctx context.Context, keyID uint32, label string) (DerivedKey, error) {
	if err := k.authorize(ctx, access.ActionDerive); err != nil {
		return DerivedKey{}, err
	}
	sl, err := k.slot(ctx, keyID, PurposeDerive)
	if err != nil {
		return DerivedKey{}, err
	}
	return k.derive(ctx, sl, label)
}

func (k *Keyring) derive(ctx context.Context, sl *slot, label string) (DerivedKey, error) {
	l, _, err := k.aead(ctx, sl)
	if err != nil {
		return DerivedKey{}, err
	}
	info := cipher.AppendAAD(nil, "keyward.derive/v1", k.name, label)
	key, err := hkdf.Key(sha256.New, l.raw, nil, string(info), cipher.KeySize)
	if err != nil {
		return DerivedKey{}, fmt.Errorf("keyring: derive: %w", err)
	}
	dk := DerivedKey{keyID: sl.key.ID, key: (*[cipher.KeySize]byte)(key)}
	return dk, nil
}
