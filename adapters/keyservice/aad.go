package keyservice

import (
	"encoding/binary"
	"strconv"

	"github.com/keyward/keyward/keyring"
)

// dekBinding reads the keyring name and data key ID from associated data
// that is a keyring's data-key binding: keyring.DEKLabel, the keyring name,
// the key ID in decimal, the purpose and the algorithm, each length-prefixed
// as cipher.AppendAAD writes them. It reports false for anything else.
func dekBinding(aad []byte) (name string, keyID uint32, ok bool) {
	var parts [5]string
	b := aad
	for i := range parts {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return "", 0, false
		}
		parts[i] = string(b[k : k+int(n)])
		b = b[k+int(n):]
	}
	if len(b) != 0 || parts[0] != keyring.DEKLabel || parts[1] == "" {
		return "", 0, false
	}
	id, err := strconv.ParseUint(parts[2], 10, 32)
	if err != nil || id == 0 {
		return "", 0, false
	}
	return parts[1], uint32(id), true
}
