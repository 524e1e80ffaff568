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
// the block at once, and a block that runs out is refilled. Unused random
// bytes therefore wait in process memory until they are used or the pool
// drops them at a garbage collection: a process whose memory is copied
// while it runs (a virtual machine snapshot restored twice) could repeat
// them, as with any random bytes read ahead in user space. With AES-256-GCM
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
// The benchmarks run keyward next to plain standard-library AES-256-GCM (a
// fresh random nonce per message and the output in one new slice) in the
// same run, interleaved in chunks of 64 calls (internal/benchbase), so that
// a busy CPU slows both alike, and report base-ns/op, ours-ns/op and ratio
// (ours / base):
//
//	go test -run '^$' -bench 'Seal|Open|Encrypt|Decrypt|TextRoundTrip' -count 5 ./cipher ./keyring
//
// With 49 bytes of associated data (what gormcrypt passes), median of 5
// runs [min-max] on an otherwise idle 2-core x86-64 virtual machine, Go
// 1.27.3 (go test -run '^$' -bench AAD -count 5 ./cipher ./keyring):
//
//	                 64 B              1 KiB             64 KiB
//	cipher Seal      1.15 [1.14-1.15]  1.07 [1.07-1.08]  1.01 [1.01-1.03]
//	cipher Open      1.25 [1.25-1.30]  1.10 [1.09-1.12]  1.02 [0.99-1.05]
//	keyring Encrypt  1.35 [1.34-1.35]  1.16 [1.14-1.17]  1.02 [1.00-1.02]
//	keyring Decrypt  1.53 [1.49-1.57]  1.20 [1.19-1.21]  1.04 [1.00-1.06]
//
// Open keeps the header || associated data in the output's allocation
// rather than in pooled scratch: on the same machine pooling measured
// 1.39-1.41 for Open and 1.69-1.73 for the keyring's Decrypt at 64 B,
// against 1.25-1.28 and 1.49-1.57 (a sync.Pool round trip costs more than
// the larger allocation). At 64 B the keyring's remaining cost over the
// cipher is finding the key by ID, counting the encryption, and three
// context lookups (a recording span, a GORM statement's count, metrics).
//
// Without associated data, same machine (go test -run '^$' -bench
// '^Benchmark(Seal|Open|Encrypt|Decrypt)$' -count 5 ./cipher ./keyring): at
// 64 bytes cipher Seal 1.04, Open 1.16, keyring Encrypt 1.22, Decrypt 1.47;
// at 64 KiB 1.00-1.02.
// A token carries a 6-byte header that the AEAD authenticates; the keyring
// then finds the key by ID in a lock-free snapshot, counts the encryption
// (the per-key count that tells when to rotate), and checks the context for
// a recording span or a GORM statement (about 15-20 ns together). Seal and
// text tokens allocate once: the header and associated data are assembled
// in pooled scratch, the binary token is sealed into the tail of the text
// buffer and base64url-encoded forward over itself, and a text token is
// opened in pooled scratch so that only the plaintext is allocated. The
// base64url codec (go test -run '^$' -bench Base64 ./cipher) encodes a
// 66-byte token in 28-30 ns and decodes it in 27-29 ns, against 41-42 ns
// and 47-49 ns for encoding/base64 in the same run.
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
