package gcpkms_test

import (
	"testing"

	"github.com/keyward/keyward/adapters/gcpkms"
	"github.com/keyward/keyward/internal/gcpkmstest"
	"github.com/keyward/keyward/internal/keysourcetest"
	"github.com/keyward/keyward/keyring"
)

const keyRing = "projects/test/locations/europe-west1/keyRings/keyward"

func TestConformance(t *testing.T) {
	keysourcetest.Run(t, func(t *testing.T) (a, b keyring.KeySource) {
		srv := gcpkmstest.New(t)
		c := srv.Client(t)
		sa, err := gcpkms.New(c, srv.CreateKey(t, keyRing, "a"))
		if err != nil {
			t.Fatal(err)
		}
		sb, err := gcpkms.New(c, srv.CreateKey(t, keyRing, "b"))
		if err != nil {
			t.Fatal(err)
		}
		return sa, sb
	})
}
