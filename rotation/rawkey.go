package rotation

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/keyward/keyward/cipher"
)

// RotateKey is the spec's rotate_key(old_key, new_key) for raw keys: it
// re-encrypts every value of target from oldKey to newKey, with the same
// runner, guarantees and options as Reencrypt. The values are tokens with
// key ID 0, as cipher.EncryptData makes them; each keeps its algorithm and
// associated data. Both keys must be 32 bytes (cipher.KeySizeError
// otherwise) and differ (ErrSameKey).
//
// Raw-key tokens carry no key identity (their key ID is 0), so a value
// that does not open under oldKey is opened under newKey: if it does, it
// counts as already current (a value rewritten by a stopped run, or
// written by the application with the new key); if not, it fails. No other
// key is ever tried. The checkpoint records a keyed fingerprint of newKey
// (HMAC-SHA256 of a fixed label, truncated), which reveals nothing of it.
func RotateKey(ctx context.Context, oldKey, newKey []byte, target Target, opts ...Option) error {
	rc, err := newRawRecoder(oldKey, newKey)
	if err != nil {
		return err
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return err
	}
	defer clear(rc.macKey)
	_, err = execute(ctx, target, rc, cfg)
	return err
}

// rawRecoder re-encrypts key ID 0 tokens from one raw key to another, one
// AEAD per algorithm and key.
type rawRecoder struct {
	old, new map[cipher.Algorithm]*cipher.AEAD
	id       string
	macKey   []byte // the checkpoint MAC key, derived from the new key
}

func newRawRecoder(oldKey, newKey []byte) (*rawRecoder, error) {
	if len(oldKey) != cipher.KeySize {
		return nil, fmt.Errorf("rotation: old key: %w", cipher.KeySizeError(len(oldKey)))
	}
	if len(newKey) != cipher.KeySize {
		return nil, fmt.Errorf("rotation: new key: %w", cipher.KeySizeError(len(newKey)))
	}
	if subtle.ConstantTimeCompare(oldKey, newKey) == 1 {
		return nil, ErrSameKey
	}
	r := &rawRecoder{old: map[cipher.Algorithm]*cipher.AEAD{}, new: map[cipher.Algorithm]*cipher.AEAD{}}
	for _, alg := range []cipher.Algorithm{cipher.AES256GCM, cipher.XChaCha20Poly1305} {
		o, err := cipher.NewAEAD(alg, oldKey, 0)
		if err != nil {
			return nil, err
		}
		n, err := cipher.NewAEAD(alg, newKey, 0)
		if err != nil {
			return nil, err
		}
		r.old[alg], r.new[alg] = o, n
	}
	m := hmac.New(sha256.New, newKey)
	m.Write([]byte("keyward rotation checkpoint v1"))
	r.id = "rawkey:" + hex.EncodeToString(m.Sum(nil)[:8])
	r.macKey = newRawSigner(newKey).key
	return r, nil
}

func (r *rawRecoder) run() string { return r.id }

func (r *rawRecoder) signer(context.Context) (signer, error) {
	return &rawSigner{key: append([]byte(nil), r.macKey...)}, nil
}

func (r *rawRecoder) destination() (uint32, bool) { return 0, false }

func (r *rawRecoder) recode(_ context.Context, v Value) ([]byte, bool, bool, error) {
	switch v.Format {
	case FormatText:
		s := string(v.Stored)
		h, err := cipher.ParseHeader(s)
		if err != nil {
			return nil, false, false, err
		}
		if h.KeyID != 0 {
			return nil, false, false, fmt.Errorf("%w: token of key ID %d is not a raw-key token", cipher.ErrKeyIDMismatch, h.KeyID)
		}
		pt, err := cipher.OpenText(r.old[h.Algorithm], s, v.AAD)
		if errors.Is(err, cipher.ErrDecrypt) {
			if _, nerr := cipher.OpenText(r.new[h.Algorithm], s, v.AAD); nerr == nil {
				return nil, true, false, nil
			}
		}
		if err != nil {
			return nil, false, false, err
		}
		return []byte(cipher.SealText(r.new[h.Algorithm], pt, v.AAD)), false, false, nil
	case FormatBinary:
		h, err := cipher.ParseHeader(v.Stored)
		if err != nil {
			return nil, false, false, err
		}
		if h.KeyID != 0 {
			return nil, false, false, fmt.Errorf("%w: token of key ID %d is not a raw-key token", cipher.ErrKeyIDMismatch, h.KeyID)
		}
		pt, err := r.old[h.Algorithm].Open(nil, v.Stored, v.AAD)
		if errors.Is(err, cipher.ErrDecrypt) {
			if p2, nerr := r.new[h.Algorithm].Open(nil, v.Stored, v.AAD); nerr == nil {
				clear(p2)
				return nil, true, false, nil
			}
		}
		if err != nil {
			return nil, false, false, err
		}
		tok := r.new[h.Algorithm].Seal(nil, pt, v.AAD)
		clear(pt)
		return tok, false, false, nil
	case FormatPlaintext:
		return []byte(cipher.SealText(r.new[cipher.AES256GCM], string(v.Stored), v.AAD)), false, true, nil
	}
	return nil, false, false, fmt.Errorf("rotation: unknown value format %d", v.Format)
}
