package awskms_test

import (
	"testing"

	"github.com/keyward/keyward/internal/awskmstest"
	"github.com/keyward/keyward/internal/kmstest"
)

// BenchmarkKeyring puts a warm keyring over AWS KMS (local-kms) next to one
// over a file key; "ratio" is AWS KMS over file key:
//
//	go test -run '^$' -bench Keyring -benchtime 200000x ./adapters/awskms ./adapters/gcpkms
func BenchmarkKeyring(b *testing.B) {
	kmstest.BenchKeyring(b, newSource(b, awskmstest.New(b)))
}
