package rotation

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/keyward/keyward/cipher"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/telemetry"
)

// Reencrypt re-encrypts every value of target that is not under kr's
// primary data key (typically after kr.Rotate): each value is decrypted
// with its own associated data by the key its token names and encrypted
// under the primary with the same associated data, then written back with
// a compare-and-swap on the old token. The key ID is read from the token
// without decrypting; values already under the primary are left alone.
// FormatPlaintext values (legacy rows a target reports) are encrypted.
//
// A value is at every moment either its old token or its new one, and both
// decrypt, so the application keeps running during the job, and a job
// stopped at any point (cancelled, killed) loses nothing. With
// WithCheckpoint it resumes after the last finished batch; a batch cut
// short is gone through again, its rewritten values now counting as
// current. A concurrent write to a value wins over the job (the
// compare-and-swap misses and counts in Stats.Skipped).
//
// Reencrypt first reloads kr from its store, so that a rotation made by
// another process counts. A value that does not decrypt stops the run with a *ValueError (fail
// closed), unless WithContinueOnError. A cancelled ctx stops the run
// promptly with an error wrapping ctx.Err(). The returned Stats count what
// this call did, also when it returns an error.
func Reencrypt(ctx context.Context, kr *keyring.Keyring, target Target, opts ...Option) (Stats, error) {
	if kr == nil {
		return Stats{}, errors.New("rotation: nil keyring")
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return Stats{}, err
	}
	// See a rotation made by another process before deciding what is
	// current.
	if err := kr.Reload(ctx); err != nil {
		return Stats{}, fmt.Errorf("rotation: %w", err)
	}
	return execute(ctx, target, keyringRecoder{kr}, cfg,
		telemetry.AttrKeyring.String(kr.Name()), telemetry.KeyID(kr.Primary()))
}

// keyringRecoder re-encrypts under a keyring's primary data key.
type keyringRecoder struct{ kr *keyring.Keyring }

func (k keyringRecoder) run() string {
	return "keyring:" + k.kr.Name() + ":" + strconv.FormatUint(uint64(k.kr.Primary()), 10)
}

func (k keyringRecoder) signer(ctx context.Context) (signer, error) {
	return newKeyringSigner(ctx, k.kr)
}

func (k keyringRecoder) destination() (uint32, bool) { return k.kr.Primary(), true }

func (k keyringRecoder) recode(ctx context.Context, v Value) ([]byte, bool, bool, error) {
	kr := k.kr
	switch v.Format {
	case FormatText:
		s := string(v.Stored)
		id, ok := cipher.PeekKeyID(s)
		if !ok {
			return nil, false, false, fmt.Errorf("%w: not a text token", cipher.ErrMalformedToken)
		}
		if id == kr.Primary() {
			return nil, true, false, nil
		}
		pt, err := kr.DecryptText(ctx, s, v.AAD)
		if err != nil {
			return nil, false, false, err
		}
		tok, err := kr.EncryptText(ctx, pt, v.AAD)
		return []byte(tok), false, false, err
	case FormatBinary:
		id, ok := cipher.PeekKeyID(v.Stored)
		if !ok {
			return nil, false, false, fmt.Errorf("%w: too short for a token", cipher.ErrMalformedToken)
		}
		if id == kr.Primary() {
			return nil, true, false, nil
		}
		pt, err := kr.Decrypt(ctx, v.Stored, v.AAD)
		if err != nil {
			return nil, false, false, err
		}
		tok, err := kr.Encrypt(ctx, pt, v.AAD)
		clear(pt)
		return tok, false, false, err
	case FormatPlaintext:
		tok, err := kr.EncryptText(ctx, string(v.Stored), v.AAD)
		return []byte(tok), false, true, err
	}
	return nil, false, false, fmt.Errorf("rotation: unknown value format %d", v.Format)
}
