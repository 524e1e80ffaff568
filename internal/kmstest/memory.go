package kmstest

import (
	"context"
	"crypto/rand"
	"testing"

	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/keyring"
)

// MemoryKeyring returns a keyring named "test" in a memory store, wrapped by
// a random file key, closed when the test ends: the keyring of tests that
// are about something else.
func MemoryKeyring(t testing.TB) *keyring.Keyring { return MemoryKeyringNamed(t, "test") }

// MemoryKeyringNamed is MemoryKeyring with another keyring name.
func MemoryKeyringNamed(t testing.TB, name string) *keyring.Keyring {
	t.Helper()
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	src, err := filekey.New(k)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.New(context.Background(), name, src, keyring.NewMemoryStore())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kr.Close() })
	return kr
}
