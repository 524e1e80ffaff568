package awskms

import (
	"encoding/base64"
	"encoding/binary"
	"slices"
	"unicode/utf8"

	"github.com/keyward/keyward/keyring"
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
	if p, ok := splitAAD(aad); ok && len(p) == 5 && p[0] == keyring.DEKLabel && !slices.Contains(p, "") {
		ec[ContextKeyring] = p[1]
		ec[ContextKeyID] = p[2]
		ec[ContextKeyPurpose] = p[3]
		ec[ContextAlgorithm] = p[4]
	}
	return ec
}

// maxPart bounds each readable part, so that a long part cannot inflate the
// context past what KMS accepts; the full value is in ContextAAD anyway.
const maxPart = 256

// splitAAD splits associated data made by cipher.AppendAAD into its parts.
// It reports false for anything else, and for parts that are not short,
// printable UTF-8.
func splitAAD(b []byte) ([]string, bool) {
	var parts []string
	for len(b) > 0 && len(parts) < 8 {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > maxPart || n > uint64(len(b)-k) {
			return nil, false
		}
		p := b[k : k+int(n)]
		if !printable(p) {
			return nil, false
		}
		parts = append(parts, string(p))
		b = b[k+int(n):]
	}
	return parts, len(b) == 0
}

func printable(p []byte) bool {
	if !utf8.Valid(p) {
		return false
	}
	for _, r := range string(p) {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
