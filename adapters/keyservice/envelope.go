package keyservice

import (
	"errors"
	"hash/crc32"

	"github.com/keyward/keyward/cipher"
)

// The wrapped form the service returns (an envelope around what its key
// source made):
//
//	offset 0  version        1 byte, envelopeVersion
//	offset 1  KEK ID length  1 byte, 1 to 255
//	offset 2  KEK ID         the key source's ID (keyring.KeySource.ID)
//	then      the key source's wrapped key
//
// The KEK ID picks the key source that unwraps it, never by trying; it is
// also bound into the associated data of the inner wrap, with the keyring
// name and the caller's associated data (innerAAD).
const envelopeVersion = 1

// maxKEKID is the longest key source ID an envelope can name.
const maxKEKID = 255

var errEnvelope = errors.New("not a wrapped key of the key service")

// sealEnvelope returns the envelope of inner, made by the key source kekID.
func sealEnvelope(kekID string, inner []byte) []byte {
	out := make([]byte, 0, 2+len(kekID)+len(inner))
	out = append(out, envelopeVersion, byte(len(kekID)))
	out = append(out, kekID...)
	return append(out, inner...)
}

// openEnvelope splits an envelope into the KEK ID and the inner wrapped
// key. Every length is checked before slicing.
func openEnvelope(b []byte) (kekID string, inner []byte, err error) {
	if len(b) < 2 || b[0] != envelopeVersion {
		return "", nil, errEnvelope
	}
	n := int(b[1])
	if n == 0 || len(b) < 2+n+1 {
		return "", nil, errEnvelope
	}
	return string(b[2 : 2+n]), b[2+n:], nil
}

// innerAAD is the associated data the key source binds an inner wrapped key
// to: the envelope's KEK ID, the keyring the caller named (so a wrapped key
// of one keyring cannot be unwrapped as another's, which the policy may
// allow) and the caller's associated data, length-prefixed.
func innerAAD(kekID, keyring string, aad []byte) []byte {
	return cipher.AppendAAD(nil, "keyward.keyservice.wrap/v1", kekID, keyring, string(aad))
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checksum is the CRC32C (Castagnoli) of b, as every payload carries it.
func checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
