package awskms

import (
	"encoding/base64"
	"strconv"
	"unicode/utf8"

	"github.com/keyward/keyward/internal/dekaad"
)

// Encryption context keys. Every wrap and unwrap sends the associated data
// the keyring gives (see keyring.KeySource) as the KMS EncryptionContext,
// which AWS KMS authenticates with the ciphertext and CloudTrail records in
// clear. IAM policies can test the keys with the condition keys
// kms:EncryptionContext:<key>, e.g. kms:EncryptionContext:keyward:keyring.
const (
	// ContextPurpose is always sent, with the value PurposeDEK: it marks
	// the call as keyward wrapping a data key, and keeps ciphertexts made
	// under the same KMS key by other software from unwrapping as data keys.
	ContextPurpose = "keyward:purpose"

	// ContextAAD carries the associated data, unpadded base64url; it is
	// left out when the associated data is empty. It is what binds a wrapped
	// key to its place; the readable keys below are derived from it.
	ContextAAD = "keyward:aad"

	// ContextKeyring, ContextKeyID, ContextKeyPurpose and ContextAlgorithm
	// name, in clear, the keyring, the data key's 32-bit ID (decimal), its
	// purpose ("data" or "derive") and its algorithm. They are sent when
	// the associated data is a keyring's data-key binding, which is always
	// the case for wraps a keyring.Keyring makes.
	ContextKeyring    = "keyward:keyring"
	ContextKeyID      = "keyward:key-id"
	ContextKeyPurpose = "keyward:key-purpose"
	ContextAlgorithm  = "keyward:algorithm"
)

// PurposeDEK is the value of ContextPurpose: a data key, context version 1.
const PurposeDEK = "dek/v1"

// EncryptionContext returns the KMS EncryptionContext a Source sends for
// aad. It is a deterministic function of aad, so that the same context can
// be rebuilt to decrypt by other means (for example the AWS CLI).
func EncryptionContext(aad []byte) map[string]string {
	ec := make(map[string]string, 6)
	ec[ContextPurpose] = PurposeDEK
	if len(aad) == 0 {
		return ec
	}
	ec[ContextAAD] = base64.RawURLEncoding.EncodeToString(aad)
	if b, ok := dekaad.Parse(aad); ok && readable(b.Keyring) && readable(b.Purpose) && readable(b.Algorithm) {
		ec[ContextKeyring] = b.Keyring
		ec[ContextKeyID] = strconv.FormatUint(uint64(b.KeyID), 10)
		ec[ContextKeyPurpose] = b.Purpose
		ec[ContextAlgorithm] = b.Algorithm
	}
	return ec
}

// maxPart bounds each readable part, so that a long part cannot inflate the
// context past what KMS accepts; the full value is in ContextAAD anyway.
const maxPart = 256

// readable reports whether a part of the binding is short, printable
// UTF-8, fit to show in clear in the context.
func readable(p string) bool { return len(p) <= maxPart && printable(p) }

func printable(p string) bool {
	if !utf8.ValidString(p) {
		return false
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
