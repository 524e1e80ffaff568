package awskms_test

import (
	"bytes"
	"encoding/base64"
	"maps"
	"testing"

	"github.com/keyward/keyward/adapters/awskms"
	"github.com/keyward/keyward/cipher"
)

// dekLabel is the first part of a keyring's data-key associated data
// (internal/dekaad), written out so that a change of the format fails here.
const dekLabel = "keyward.dek/v1"

// FuzzEncryptionContext checks that EncryptionContext never fails on any
// associated data, is deterministic, carries the associated data exactly,
// and derives readable keys only from data they re-encode to.
func FuzzEncryptionContext(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("free form"))
	f.Add(cipher.AppendAAD(nil, dekLabel, "pii", "305419896", "data", "AES-256-GCM"))
	f.Add(cipher.AppendAAD(nil, dekLabel, "pii", "", "data", "AES-256-GCM"))
	f.Add(cipher.AppendAAD(nil, dekLabel, "p\x00i", "1", "data", "AES-256-GCM"))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, aad []byte) {
		ec := awskms.EncryptionContext(aad)
		if !maps.Equal(ec, awskms.EncryptionContext(bytes.Clone(aad))) {
			t.Fatal("EncryptionContext is not deterministic")
		}
		if ec[awskms.ContextPurpose] != awskms.PurposeDEK {
			t.Fatalf("purpose = %q", ec[awskms.ContextPurpose])
		}
		enc, ok := ec[awskms.ContextAAD]
		if ok != (len(aad) > 0) {
			t.Fatalf("%s present = %v for %d bytes of associated data", awskms.ContextAAD, ok, len(aad))
		}
		if got, err := base64.RawURLEncoding.DecodeString(enc); err != nil || !bytes.Equal(got, aad) {
			t.Fatalf("%s does not decode to the associated data: %v", awskms.ContextAAD, err)
		}
		name, ok := ec[awskms.ContextKeyring]
		if !ok {
			if len(ec) > 2 {
				t.Fatalf("readable keys without %s: %v", awskms.ContextKeyring, ec)
			}
			return
		}
		re := cipher.AppendAAD(nil, dekLabel, name, ec[awskms.ContextKeyID], ec[awskms.ContextKeyPurpose], ec[awskms.ContextAlgorithm])
		if len(ec) != 6 || !bytes.Equal(re, aad) {
			t.Fatalf("readable keys %v do not re-encode to the associated data", ec)
		}
	})
}
