package awskms_test

import (
	"context"
	"testing"

	"github.com/keyward/keyward/adapters/awskms"
	"github.com/keyward/keyward/internal/awskmstest"
	"github.com/keyward/keyward/internal/keysourcetest"
	"github.com/keyward/keyward/keyring"
)

var ctx = context.Background()

// newSource returns a Source over a new key of srv.
func newSource(t testing.TB, srv *awskmstest.Server) *awskms.Source {
	t.Helper()
	s, err := awskms.New(ctx, srv.Client(), srv.CreateKey(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	keysourcetest.Run(t, func(t *testing.T) (a, b keyring.KeySource) {
		srv := awskmstest.New(t)
		return newSource(t, srv), newSource(t, srv)
	})
}
