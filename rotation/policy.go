package rotation

import (
	"errors"
	"fmt"
	"time"

	"github.com/keyward/keyward/cipher"
	"github.com/keyward/keyward/keyring"
)

// Policy says when a keyring's primary data key is due for rotation: by
// age, by use, or both. The zero Policy rotates an AES-256-GCM key only at
// DefaultMaxEncryptions.
//
// A Scheduler calls Due periodically and, when it says so, rotates: with
// several instances, exactly one of them rotates per due period.
type Policy struct {
	// MaxAge rotates a primary created longer ago than this (0: no limit).
	MaxAge time.Duration
	// MaxEncryptions rotates a primary that has encrypted at least this
	// many values (0: DefaultMaxEncryptions for AES-256-GCM keys, no
	// limit for XChaCha20-Poly1305 keys). The count is the fleet's over a
	// keyring.CountStore (every process adds its count to the store), and
	// this process's otherwise (keyring.Keyring.Encryptions): then divide
	// by the number of instances. Above GCMEncryptionLimit it is an error
	// for AES-256-GCM keys.
	MaxEncryptions uint64
}

// Bounds of encryptions per AES-256-GCM data key. Each encryption draws a
// random 96-bit nonce; the chance that two of n encryptions under one key
// draw the same nonce (which breaks GCM's authenticity for that key) is
// about n²/2^97. NIST SP 800-38D caps random-nonce GCM at 2^32 encryptions
// per key (a chance of about 2^-33). DefaultMaxEncryptions rotates at 2^30
// (a chance below 2^-37), a quarter of the cap: room for the encryptions
// the fleet makes between two exchanges of counts
// (keyring.DefaultCountInterval) and until the scheduler's next check.
// XChaCha20-Poly1305 draws 192-bit nonces and has no such bound.
const (
	GCMEncryptionLimit    uint64 = 1 << 32
	DefaultMaxEncryptions uint64 = 1 << 30
)

// Reason says why a key is due.
type Reason string

// Reasons of Policy.Due.
const (
	ReasonNone        Reason = ""            // not due
	ReasonAge         Reason = "age"         // older than MaxAge
	ReasonEncryptions Reason = "encryptions" // used for MaxEncryptions values
)

// Due reports whether kr's primary data key is due for rotation at now,
// and why.
func (p Policy) Due(kr *keyring.Keyring, now time.Time) (bool, Reason, error) {
	if kr == nil {
		return false, ReasonNone, errors.New("rotation: nil keyring")
	}
	if p.MaxAge < 0 {
		return false, ReasonNone, errors.New("rotation: negative MaxAge")
	}
	id := kr.Primary()
	if p.MaxAge > 0 {
		var created time.Time
		found := false
		for _, k := range kr.Keys() {
			if k.ID == id {
				created, found = k.Created, true
				break
			}
		}
		if !found {
			return false, ReasonNone, fmt.Errorf("rotation: primary key %d is not in the keyring's metadata", id)
		}
		if !created.IsZero() && now.Sub(created) >= p.MaxAge {
			return true, ReasonAge, nil
		}
	}
	limit := p.MaxEncryptions
	if alg, ok := primaryAlgorithm(kr); ok && alg == cipher.AES256GCM {
		if limit > GCMEncryptionLimit {
			return false, ReasonNone, fmt.Errorf("rotation: MaxEncryptions %d is above the limit of AES-256-GCM keys with random nonces (%d)", limit, GCMEncryptionLimit)
		}
		if limit == 0 {
			limit = DefaultMaxEncryptions
		}
	}
	if limit > 0 && kr.Encryptions(id) >= limit {
		return true, ReasonEncryptions, nil
	}
	return false, ReasonNone, nil
}

// primaryAlgorithm returns the algorithm of kr's primary data key.
func primaryAlgorithm(kr *keyring.Keyring) (cipher.Algorithm, bool) {
	id := kr.Primary()
	for _, k := range kr.Keys() {
		if k.ID == id {
			return k.Algorithm, true
		}
	}
	return 0, false
}
