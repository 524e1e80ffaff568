// Package keyring manages versioned data keys (DEKs) wrapped by a
// key-encryption key (KEK) and encrypts and decrypts data with them.
//
// A KeySource holds the KEK: a local file key (adapters/filekey), an AWS KMS
// key (adapters/awskms) or a Cloud KMS key (adapters/gcpkms). A Keyring is
// the data keys of one name (e.g. "default", "pii"), each identified by a
// random non-zero 32-bit key ID and in one state: active (the primary, which
// encrypts), enabled (decrypts), disabled (refuses, reversibly) or destroyed
// (material erased). Keys live wrapped in a Store: MemoryStore, FileStore
// (one JSON file, atomic writes, 0600) or the database store in
// adapters/gormcrypt. Changes are compare-and-swap, so many processes can
// share one store.
//
//	src, err := filekey.Open("crypto.key")
//	store, err := keyring.NewFileStore("keyward-keys.json")
//	kr, err := keyring.New(ctx, "default", src, store)
//	defer kr.Close()
//	token, err := kr.EncryptString(ctx, "123-45-6789") // "kw1.AQH..."
//	ssn, err := kr.DecryptString(ctx, token)
//
// Encrypt uses the primary key; Decrypt reads the key ID from the token and
// uses that key, never trying keys. A token whose key ID the keyring does not
// know makes it reload its store once (rate-limited) before it fails with
// ErrKeyNotFound. Associated data (aad) binds a token to where it belongs;
// build it from several parts with cipher.AppendAAD.
//
// # Cache
//
// Unwrapped keys are cached, so the key source is called once per key
// version per TTL, not per record: a key is refreshed in the background
// after 80% of WithCacheTTL; concurrent misses share one unwrap; when the key
// source is unavailable (ErrKEKUnavailable and unclassified errors) a cached
// key is used for up to WithStaleWindow past its TTL, while a definitive
// refusal (ErrKEKDisabled, ErrKEKNotFound, ErrKEKAccessDenied, ErrUnwrap)
// evicts it at once. Close zeroes what can be zeroed.
//
// # Derived keys
//
// DeriveKey derives stable purpose-bound keys (blind indexes, audit MACs)
// from a separate derive root, so they do not change when data keys rotate.
//
// # Access control
//
// With WithAuthorizer the keyring asks before every operation and fails
// closed: a refused caller never causes a data key to be unwrapped.
//
// # Errors
//
// ErrDecrypt, ErrMalformedToken, ErrKeyNotFound, ErrKeyDisabled,
// ErrKeyDestroyed, ErrKeyringNotFound, ErrConflict, ErrInvalidState,
// ErrKeyInUse, ErrClosed, and the key source classes ErrUnwrap,
// ErrKEKUnavailable, ErrKEKNotFound, ErrKEKDisabled, ErrKEKAccessDenied and
// ErrWrongKEK. Test with errors.Is; vendor errors stay reachable with
// errors.As. No error contains key material, plaintext or ciphertext.
//
// # Concurrency
//
// A Keyring, MemoryStore and FileStore are safe for concurrent use. A
// FileStore shared by processes on one machine serializes writes with a file
// lock.
package keyring
