package keyservice

import "github.com/keyward/keyward/internal/dekaad"

// dekBinding reads the keyring name and data key ID from associated data
// that is a keyring's data-key binding (internal/dekaad). It reports false
// for anything else, and for a key ID of 0.
func dekBinding(aad []byte) (name string, keyID uint32, ok bool) {
	b, ok := dekaad.Parse(aad)
	if !ok || b.KeyID == 0 {
		return "", 0, false
	}
	return b.Keyring, b.KeyID, true
}
