package cipher

import "encoding/binary"

// AppendAAD appends an unambiguous encoding of parts to dst: each part as
// its length (uvarint) followed by its bytes. Use it whenever associated data
// is built from several values (table, column, primary key, ...): a plain
// join with a separator would let ("a.b", "c") and ("a", "b.c") collide.
func AppendAAD(dst []byte, parts ...string) []byte {
	for _, p := range parts {
		dst = binary.AppendUvarint(dst, uint64(len(p)))
		dst = append(dst, p...)
	}
	return dst
}
