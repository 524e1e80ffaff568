package rotation

import (
	"errors"
	"fmt"
	"time"

	"github.com/keyward/keyward/keyring"
)

// Policy says when a keyring's primary data key is due for rotation: by
// age, by use, or both. The zero Policy is never due.
//
// A scheduler calls Due periodically and, when it says so, runs
// kr.Rotate and then Reencrypt. With several instances, let one of them do
// it (for example under a PostgreSQL advisory lock); Rotate itself is
// compare-and-swap on the store, so two rotations at once do not corrupt
// the keyring, but they make two new keys.
type Policy struct {
	// MaxAge rotates a primary created longer ago than this (0: no limit).
	MaxAge time.Duration
	// MaxEncryptions rotates a primary that this process has used for at
	// least this many encryptions since the keyring was opened (0: no
	// limit). The count is per process (keyring.Keyring.Encryptions): set
	// it well below the safe total (AES-GCM with random nonces: far below
	// 2^32) divided by the number of instances.
	MaxEncryptions uint64
}

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
	if p.MaxEncryptions > 0 && kr.Encryptions(id) >= p.MaxEncryptions {
		return true, ReasonEncryptions, nil
	}
	return false, ReasonNone, nil
}
