package keyring

import (
	"errors"

	"github.com/keyward/keyward/cipher"
)

// Errors a caller can test with errors.Is. Messages never contain key
// material, plaintext or ciphertext.
var (
	// ErrDecrypt reports a token that fails authentication: it was modified,
	// or it is given with other associated data than it was made with (for
	// example copied to another column or row).
	ErrDecrypt = errors.New("keyring: decryption failed: the token does not authenticate")

	// ErrMalformedToken reports input that is not a keyward token at all.
	// It is cipher.ErrMalformedToken, so either name matches.
	ErrMalformedToken = cipher.ErrMalformedToken

	// ErrKeyNotFound reports a token whose key ID is in no version of this
	// keyring, even after reloading the store: it was made by another keyring
	// or with a raw key.
	ErrKeyNotFound = errors.New("keyring: key not found")

	// ErrKeyDisabled reports a token whose data key is disabled. Enabling the
	// key makes it readable again.
	ErrKeyDisabled = errors.New("keyring: key is disabled")

	// ErrKeyDestroyed reports a token whose data key was destroyed: the data
	// cannot be recovered.
	ErrKeyDestroyed = errors.New("keyring: key is destroyed")

	// ErrKeyringNotFound is returned by Store.Load for a keyring that does not
	// exist, and by New with WithoutCreate.
	ErrKeyringNotFound = errors.New("keyring: keyring not found")

	// ErrConflict is returned by Store.Save when the stored keyset changed
	// since it was read (compare-and-swap failed). Keyring retries by itself.
	ErrConflict = errors.New("keyring: keyset changed concurrently")

	// ErrInvalidState reports a key state change that is not allowed, such as
	// disabling the primary key or enabling a destroyed key.
	ErrInvalidState = errors.New("keyring: invalid key state change")

	// ErrKeyInUse reports a destroy refused because data still uses the key.
	ErrKeyInUse = errors.New("keyring: key is still in use")

	// ErrTooSoon reports a key state change refused because the previous
	// one may not have reached every process sharing the store yet (see
	// WithSettleTime): disabling a key that was the primary moments ago,
	// or destroying a key disabled moments ago. The error says when the
	// change becomes possible.
	ErrTooSoon = errors.New("keyring: key state changed too recently")

	// ErrStaleKEK reports a change to a keyset refused because the keyset
	// requires another key-encryption key than the keyring's key source
	// (Keyset.KEK, set by Rewrap): the keyring runs with a KEK the rest of
	// the fleet has left. Give it the keyset's KEK as its key source.
	ErrStaleKEK = errors.New("keyring: the keyset requires another key-encryption key")

	// ErrKeysetStale reports an encryption refused because the keyring
	// could not read its store for longer than the settle time, so its
	// primary key may have been retired by another process.
	ErrKeysetStale = errors.New("keyring: keyset not reloaded within the settle time")

	// ErrClosed reports use of a closed keyring.
	ErrClosed = errors.New("keyring: keyring is closed")

	// ErrUnwrap reports a wrapped data key that the key source refused to
	// unwrap: the wrapped key was modified, belongs to another KEK, or was
	// wrapped with other associated data. KeySources wrap it.
	ErrUnwrap = errors.New("keyring: key source could not unwrap the data key")

	// ErrKEKUnavailable reports a key source that could not be reached or
	// answered with a transient error (timeout, throttling, network). While a
	// data key is in the cache the keyring serves it for the stale window.
	// KeySources wrap it.
	ErrKEKUnavailable = errors.New("keyring: key source unavailable")

	// ErrKEKNotFound reports a key-encryption key that does not exist (for
	// example deleted in the KMS). KeySources wrap it.
	ErrKEKNotFound = errors.New("keyring: key-encryption key not found")

	// ErrKEKDisabled reports a key-encryption key that exists but may not be
	// used: disabled, pending deletion or in another invalid state.
	// KeySources wrap it.
	ErrKEKDisabled = errors.New("keyring: key-encryption key is disabled")

	// ErrKEKAccessDenied reports a key source that refused the caller's
	// credentials. KeySources wrap it.
	ErrKEKAccessDenied = errors.New("keyring: access to the key-encryption key denied")

	// ErrWrongKEK reports a data key wrapped by a key-encryption key other
	// than the keyring's key sources.
	ErrWrongKEK = errors.New("keyring: data key is wrapped by another key-encryption key")
)

// transient reports whether a key source error may pass (so a cached key can
// be served for the stale window). Definitive answers (refused, not found,
// disabled, denied) are not transient; an error no KeySource classified is
// treated as transient, bounded by the stale window.
func transient(err error) bool {
	switch {
	case errors.Is(err, ErrUnwrap), errors.Is(err, ErrKEKNotFound), errors.Is(err, ErrKEKDisabled),
		errors.Is(err, ErrKEKAccessDenied), errors.Is(err, ErrWrongKEK):
		return false
	}
	return true
}
