package gcpkms_test

import (
	"testing"

	"github.com/keyward/keyward/adapters/gcpkms"
	"github.com/keyward/keyward/internal/gcpkmstest"
	"github.com/keyward/keyward/internal/kmstest"
)

// BenchmarkKeyring puts a warm keyring over Cloud KMS (the in-process
// server) next to one over a file key; "ratio" is Cloud KMS over file key.
func BenchmarkKeyring(b *testing.B) {
	srv := gcpkmstest.New(b)
	src, err := gcpkms.New(srv.Client(b), srv.CreateKey(b, keyRing, "bench"))
	if err != nil {
		b.Fatal(err)
	}
	kmstest.BenchKeyring(b, src)
}
