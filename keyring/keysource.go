package keyring

import "context"

// KeySource holds a key-encryption key (KEK) and wraps and unwraps data keys
// with it. The KEK itself never leaves the source: for a file key it stays in
// the process, for a cloud KMS it stays in the KMS.
//
// Implementations must be safe for concurrent use, honour ctx, and classify
// their errors by wrapping ErrUnwrap (the wrapped key or its associated data
// does not authenticate), ErrKEKUnavailable (transient: timeout, throttling,
// network), ErrKEKNotFound, ErrKEKDisabled or ErrKEKAccessDenied, keeping the
// vendor's error reachable with errors.As. internal/keysourcetest is the
// conformance suite every implementation passes.
type KeySource interface {
	// ID names the KEK, e.g. "filekey:9f86d081884c7d65" or
	// "awskms:arn:aws:kms:...". It is stored with every wrapped data key; it
	// must be stable and must not reveal key material.
	ID() string

	// Wrap encrypts dek, binding it to aad (associated data, may be empty).
	Wrap(ctx context.Context, dek, aad []byte) ([]byte, error)

	// Unwrap decrypts a wrapped data key made by Wrap with the same aad.
	Unwrap(ctx context.Context, wrapped, aad []byte) ([]byte, error)
}

// Closer is the optional capability of a KeySource that holds resources. A
// keyring does not close its key source; the caller who made it does.
type Closer interface {
	Close() error
}
