package filekey_test

import (
	"crypto/rand"
	"testing"

	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/internal/keysourcetest"
	"github.com/keyward/keyward/keyring"
)

func newSource(t *testing.T) *filekey.Source {
	t.Helper()
	key := make([]byte, filekey.KeySize)
	_, _ = rand.Read(key)
	s, err := filekey.New(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	keysourcetest.Run(t, func(t *testing.T) (a, b keyring.KeySource) {
		return newSource(t), newSource(t)
	})
}
