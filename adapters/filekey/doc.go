// Package filekey is the key source over a local key file, crypto.key: 32
// random bytes in Base64, readable by the owner only.
//
// Load is the specification's load_crypto_key. Generate makes a new key file
// (mode 0600, never overwriting). Source is a keyring.KeySource whose
// key-encryption key is the file key: it wraps data keys with AES-256-GCM and
// binds them to the keyring's associated data.
//
//	if err := filekey.Generate("crypto.key"); err != nil { ... } // once
//	src, err := filekey.Open("crypto.key")
//	kr, err := keyring.New(ctx, "default", src, store)
//
// Load is strict: one Base64 key (standard or URL alphabet, padded or not)
// with optional surrounding whitespace, exactly 32 bytes (never cropped or
// padded), in a file that group and others can neither read nor write (the
// error says to run chmod 600). Symbolic links are followed, since
// Kubernetes and Docker mount secrets through them; the check applies to the
// file reached, through the descriptor that is read.
//
// # Errors
//
// ErrInvalidKey (content), ErrPermissions (mode bits), the os errors of
// reading the file, and from Source the keyring classes (keyring.ErrUnwrap
// for a wrapped key that does not authenticate or comes from another file
// key). No error quotes the file's content.
//
// # Concurrency
//
// A Source is immutable and safe for concurrent use.
package filekey
