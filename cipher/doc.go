// Package cipher holds keyward's AEAD primitives and its token format. It
// does no I/O, takes no context and stores no keys: callers (the keyring)
// own keys and pass them in.
//
// # Token format
//
// A token is the self-describing result of one encryption:
//
//	offset 0   version    1 byte   0x01
//	offset 1   algorithm  1 byte   0x01 = AES-256-GCM (default), 0x02 = XChaCha20-Poly1305
//	offset 2   key ID     4 bytes  uint32, big-endian (0 = a raw key given by the caller)
//	offset 6   nonce      12 bytes (AES-256-GCM) or 24 bytes (XChaCha20-Poly1305)
//	then       ciphertext || 16-byte tag
//
// The AEAD's additional data is the 6 header bytes followed by the caller's
// associated data, so neither the header nor the context a value belongs to
// can be changed without failing authentication. The text form, for string
// columns, command lines and logs, is "kw1." followed by the binary form in
// unpadded base64url; decoding is strict, so a token has one text form.
//
// Nonces are 96 or 192 random bits from crypto/rand, a fresh one for every
// token. They are cut from 4 KiB blocks of crypto/rand output held in a
// sync.Pool, so one crypto/rand call serves hundreds of seals: a block serves
// one goroutine at a time, each range of it is handed out once and zeroed in
// the block at once, and a block that runs out is refilled. With AES-256-GCM
// a key must seal far fewer than 2^32 messages; the keyring counts
// encryptions per key so that rotation can keep it so.
//
// # Use
//
// EncryptData and DecryptData (the specification's encrypt_data and
// decrypt_data) take a raw 32-byte key and make text tokens with key ID 0.
// For repeated use, build an AEAD once per key with NewAEAD and call Seal and
// Open (binary) or SealText and OpenText (text): they allocate once per call.
//
//	tok, err := cipher.EncryptData("123-45-6789", key)
//	...
//	ssn, err := cipher.DecryptData(tok, key)
//
// # Errors
//
// Every malformed token wraps ErrMalformedToken; every authentication
// failure is ErrDecrypt (a wrong key, wrong associated data and a modified
// token are indistinguishable by design); a token of another key ID wraps
// ErrKeyIDMismatch; a key of the wrong length is a KeySizeError. Errors never
// contain key material, plaintext or ciphertext.
//
// # Concurrency
//
// An AEAD is immutable and safe for concurrent use. Functions keep no state.
package cipher
