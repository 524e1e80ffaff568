package dekaad

import (
	"encoding/binary"
	"strconv"

	"github.com/keyward/keyward/cipher"
)

// label is the first part; it names the format and its version.
const label = "keyward.dek/v1"

// Binding is what the associated data of a data-key wrap binds the wrapped
// key to.
type Binding struct {
	Keyring   string // the keyring's name
	KeyID     uint32 // the data key's ID
	Purpose   string // the key's purpose (keyring.Purpose)
	Algorithm string // the key's algorithm name (cipher.Algorithm.String)
}

// Append appends the associated data of b to dst.
func Append(dst []byte, b Binding) []byte {
	return cipher.AppendAAD(dst, label, b.Keyring, strconv.FormatUint(uint64(b.KeyID), 10), b.Purpose, b.Algorithm)
}

// Parse reads associated data written by Append. It reports false for
// anything else: another label, a part missing, empty or left over, a length
// not in its shortest form, or a key ID that is not a canonical decimal
// 32-bit number, so that Append(Parse(aad)) is aad.
func Parse(aad []byte) (Binding, bool) {
	var parts [5]string
	b := aad
	for i := range parts {
		n, k := binary.Uvarint(b)
		if k <= 0 || k != len(binary.AppendUvarint(nil, n)) || n == 0 || n > uint64(len(b)-k) {
			return Binding{}, false
		}
		parts[i] = string(b[k : k+int(n)])
		b = b[k+int(n):]
	}
	if len(b) != 0 || parts[0] != label {
		return Binding{}, false
	}
	id, err := strconv.ParseUint(parts[2], 10, 32)
	if err != nil || strconv.FormatUint(id, 10) != parts[2] {
		return Binding{}, false
	}
	return Binding{Keyring: parts[1], KeyID: uint32(id), Purpose: parts[3], Algorithm: parts[4]}, true
}
