package rotation

import (
	"crypto/rand"
	"fmt"

	"github.com/keyward/keyward/cipher"
)

// GenerateKey returns a new random 32-byte key (for AES-256-GCM or
// XChaCha20-Poly1305) from crypto/rand. It is the spec's
// generate_new_key(). Keep it as secret as the data it protects; keyrings
// make their data keys themselves and need no call to it.
func GenerateKey() ([]byte, error) {
	k := make([]byte, cipher.KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("rotation: generate key: %w", err)
	}
	return k, nil
}
