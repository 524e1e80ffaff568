package rotation

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/keyward/keyward/cipher"
	"github.com/keyward/keyward/keyring"
)

// checkpointLabel is the DeriveKey label of the key that authenticates a
// keyring run's checkpoints.
const checkpointLabel = "keyward.rotation.checkpoint/v2"

// signer computes and checks checkpoint MACs. A MAC covers the run, the
// target's name and the cursor, length-prefixed (cipher.AppendAAD).
type signer interface {
	sign(p Progress, target string) string
	verify(ctx context.Context, p Progress, target string) error
	close()
}

func checkpointMessage(p Progress, target string) []byte {
	return cipher.AppendAAD(nil, checkpointLabel, p.Run, target, p.Cursor)
}

func mac(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// keyringSigner MACs under a key derived from the keyring. A MAC names the
// derive root it was made under ("d<key ID>:<hex>"), so a checkpoint
// survives a RotateDerive.
type keyringSigner struct {
	kr  *keyring.Keyring
	id  uint32
	key []byte
}

func newKeyringSigner(ctx context.Context, kr *keyring.Keyring) (*keyringSigner, error) {
	dk, err := kr.DeriveKey(ctx, checkpointLabel)
	if err != nil {
		return nil, fmt.Errorf("rotation: checkpoint key: %w", err)
	}
	return &keyringSigner{kr: kr, id: dk.KeyID(), key: dk.Bytes()}, nil
}

func (s *keyringSigner) sign(p Progress, target string) string {
	return "d" + strconv.FormatUint(uint64(s.id), 10) + ":" + hex.EncodeToString(mac(s.key, checkpointMessage(p, target)))
}

func (s *keyringSigner) verify(ctx context.Context, p Progress, target string) error {
	idText, sum, ok := strings.Cut(p.MAC, ":")
	id, err := strconv.ParseUint(strings.TrimPrefix(idText, "d"), 10, 32)
	got, herr := hex.DecodeString(sum)
	if !ok || !strings.HasPrefix(idText, "d") || err != nil || herr != nil {
		return fmt.Errorf("%w: malformed MAC", ErrCheckpointAuth)
	}
	key := s.key
	if uint32(id) != s.id {
		dk, err := s.kr.DeriveKeyVersion(ctx, uint32(id), checkpointLabel)
		if err != nil {
			return fmt.Errorf("%w: its MAC key is not one of keyring %q (%w)", ErrCheckpointAuth, s.kr.Name(), err)
		}
		key = dk.Bytes()
		defer clear(key)
	}
	if !hmac.Equal(got, mac(key, checkpointMessage(p, target))) {
		return fmt.Errorf("%w: its MAC does not verify under keyring %q: it was modified, or written for another keyring or target", ErrCheckpointAuth, s.kr.Name())
	}
	return nil
}

func (s *keyringSigner) close() { clear(s.key) }

// rawSigner MACs under a key derived from RotateKey's new key ("r:<hex>").
type rawSigner struct{ key []byte }

func newRawSigner(newKey []byte) *rawSigner {
	return &rawSigner{key: mac(newKey, []byte("keyward rotation checkpoint MAC key v2"))}
}

func (s *rawSigner) sign(p Progress, target string) string {
	return "r:" + hex.EncodeToString(mac(s.key, checkpointMessage(p, target)))
}

func (s *rawSigner) verify(_ context.Context, p Progress, target string) error {
	sum, ok := strings.CutPrefix(p.MAC, "r:")
	got, err := hex.DecodeString(sum)
	if !ok || err != nil {
		return fmt.Errorf("%w: malformed MAC", ErrCheckpointAuth)
	}
	if !hmac.Equal(got, mac(s.key, checkpointMessage(p, target))) {
		return fmt.Errorf("%w: its MAC does not verify under the new key: it was modified, or written for another key or target", ErrCheckpointAuth)
	}
	return nil
}

func (s *rawSigner) close() { clear(s.key) }
