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
// # Test vector
//
// Test vector (checked by cipher.TestVector; another implementation can
// check itself against it):
//
//	key              000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
//	algorithm        AES-256-GCM (0x01)
//	key ID           0x2a5f3c01
//	nonce            a0a1a2a3a4a5a6a7a8a9aaab
//	plaintext        123-45-6789 (ASCII)
//	associated data  patients/42/ssn (ASCII; the AEAD sees 01012a5f3c01 + these bytes)
//	binary token     01012a5f3c01a0a1a2a3a4a5a6a7a8a9aaabd72a4f0071fe2f89555dbe4d3721917fc7a4573ffe60e19573ad28
//	text token       kw1.AQEqXzwBoKGio6Slpqeoqaqr1ypPAHH-L4lVXb5NNyGRf8ekVz_-YOGVc60o
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
// # Performance
//
// The crypto benchmarks interleave the two in chunks of 64 calls
// (internal/benchbase.Interleave), so that a busy or throttled CPU slows both
// alike, and report base-ns/op, ours-ns/op and ratio (ours / base). The
// baseline is plain standard-library AES-256-GCM: a fresh random nonce per
// message and the output in one new slice.
//
//	go test -run '^$' -bench 'Seal|Open|Encrypt|Decrypt|TextRoundTrip' -benchtime 200000x -count 5 ./cipher ./keyring
//
// Median ratio of 5 runs, [min-max], with the medians of the baseline and of
// keyward in ns/op (2-core x86-64 VM shared with other work, Go 1.26):
//
//	                 64 B                             1 KiB             64 KiB
//	cipher Seal      1.10 [1.09-1.14] (166 / 180 ns)  1.04 [1.01-1.05]  1.00 [1.00-1.00]
//	cipher Open      1.02 [1.01-1.11] (103 / 107 ns)  1.01 [0.99-1.03]  1.02 [1.01-1.03]
//	keyring Encrypt  1.16 [1.12-1.18] (184 / 212 ns)  1.07 [1.05-1.12]  1.01 [1.00-1.02]
//	keyring Decrypt  1.16 [1.14-1.23] (104 / 123 ns)  1.08 [1.01-1.10]  1.02 [1.01-1.02]
//
// Text-token round trip of a 32-byte string (EncryptString + DecryptString)
// against the baseline's binary seal + open of the same 32 bytes: cipher
// (SealText + OpenText) 1.41 [1.39-1.45] (224 / 319 ns), keyring
// 1.62 [1.57-1.68] (224 / 368 ns).
//
// What the remaining cost is, at 64 bytes where fixed costs show: the token
// carries a 6-byte header that the AEAD authenticates and that pushes the
// output into the next allocation size class (about 14 ns on Seal); the keyring
// then finds the key by ID in a lock-free snapshot, counts the encryption
// (the per-key count that tells you when to rotate), and checks the context
// for a recording span or a GORM statement batch and whether metrics are on
// (about 15-20 ns together). Text tokens cost one allocation each way: the binary token is sealed into the tail
// of the text buffer and base64url-encoded forward over itself, and opened in
// place in the decoded buffer. The base64url codec (go test -run '^$' -bench
// Base64 ./cipher) encodes a 66-byte token in 28-30 ns and decodes it in
// 27-29 ns, against 41-42 ns and 47-49 ns for encoding/base64 in the same
// run.
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
