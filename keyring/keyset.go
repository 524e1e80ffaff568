package keyring

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/keyward/keyward/cipher"
)

// State is the life-cycle state of a key version.
type State string

// Key states.
const (
	// StateActive marks the primary key of its purpose: it encrypts (and
	// decrypts). Each purpose has exactly one active key.
	StateActive State = "active"
	// StateEnabled keys decrypt but no longer encrypt.
	StateEnabled State = "enabled"
	// StateDisabled keys refuse every use; the change is reversible.
	StateDisabled State = "disabled"
	// StateDestroyed keys have their material erased; irreversible.
	StateDestroyed State = "destroyed"
)

func (s State) valid() bool {
	switch s {
	case StateActive, StateEnabled, StateDisabled, StateDestroyed:
		return true
	}
	return false
}

// Purpose says what a key version is for.
type Purpose string

// Key purposes.
const (
	// PurposeData keys encrypt and decrypt data (DEKs).
	PurposeData Purpose = "data"
	// PurposeDerive keys are roots from which DeriveKey derives purpose-bound
	// keys (blind indexes, audit MACs). They rotate separately from data
	// keys, because a derived key must stay stable while data keys rotate.
	PurposeDerive Purpose = "derive"
)

func (p Purpose) valid() bool { return p == PurposeData || p == PurposeDerive }

// Key is one version in a keyset: its metadata and its wrapped material.
// Wrapped is the data key encrypted by the KEK named in KEK; it is never the
// plaintext key.
type Key struct {
	ID        uint32           `json:"id"`
	Purpose   Purpose          `json:"purpose"`
	Algorithm cipher.Algorithm `json:"-"`
	State     State            `json:"state"`
	KEK       string           `json:"kek"`
	Wrapped   []byte           `json:"wrapped,omitempty"`
	Created   time.Time        `json:"created"`
	Updated   time.Time        `json:"updated"`
	// Retired is when the key stopped being the primary (a rotation made
	// another key active); zero while it is the primary, and for keys
	// retired before the field existed (Updated stands in then). A key
	// may be disabled only once the settle time has passed since.
	Retired time.Time `json:"retired,omitzero"`
	// Disabled is when the key was last disabled; zero unless it is
	// disabled (Updated stands in for keys disabled before the field
	// existed). A key may be destroyed only once the settle time has
	// passed since.
	Disabled time.Time `json:"disabled,omitzero"`
}

// String describes the key without its wrapped material (only its length).
func (k Key) String() string {
	return "keyring.Key{ID " + strconv.FormatUint(uint64(k.ID), 10) + ", " + string(k.Purpose) + ", " + k.Algorithm.String() +
		", " + string(k.State) + ", KEK " + k.KEK + ", wrapped " + strconv.Itoa(len(k.Wrapped)) + " bytes}"
}

// GoString is String.
func (k Key) GoString() string { return k.String() }

// Format prints String under every verb, so that no verb prints the
// wrapped key.
func (k Key) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// retiredAt returns when k stopped being the primary.
func (k Key) retiredAt() time.Time {
	if k.Retired.IsZero() {
		return k.Updated
	}
	return k.Retired
}

// disabledAt returns when k was disabled.
func (k Key) disabledAt() time.Time {
	if k.Disabled.IsZero() {
		return k.Updated
	}
	return k.Disabled
}

// MarshalJSON stores the algorithm by name.
func (k Key) MarshalJSON() ([]byte, error) {
	type plain Key
	return marshalJSON(struct {
		plain
		Algorithm string `json:"algorithm"`
	}{plain(k), k.Algorithm.String()})
}

// UnmarshalJSON reads a key stored by MarshalJSON.
func (k *Key) UnmarshalJSON(b []byte) error {
	type plain Key
	var v struct {
		plain
		Algorithm string `json:"algorithm"`
	}
	if err := unmarshalJSON(b, &v); err != nil {
		return err
	}
	a, err := cipher.ParseAlgorithm(v.Algorithm)
	if err != nil {
		return fmt.Errorf("keyring: key %d: %w", v.ID, err)
	}
	*k = Key(v.plain)
	k.Algorithm = a
	return nil
}

// Keyset is the stored form of a keyring: every key version of one name.
// Version is the compare-and-swap counter a Store checks on Save.
type Keyset struct {
	Name    string `json:"name"`
	Version uint64 `json:"version"`
	Keys    []Key  `json:"keys"`
	// KEK is the ID of the key-encryption key the keyset requires: the one
	// that wrapped its first key, or the one Rewrap moved every key to. A
	// keyring whose key source is another KEK refuses to change the keyset
	// (ErrStaleKEK), so that no key is wrapped by a KEK the rest of the
	// fleet has left. Empty in keysets stored before the field existed: no
	// requirement until the next Rewrap.
	KEK string `json:"kek,omitempty"`
}

// Clone returns a deep copy of ks.
func (ks Keyset) Clone() Keyset {
	c := ks
	c.Keys = slices.Clone(ks.Keys)
	for i := range c.Keys {
		c.Keys[i].Wrapped = slices.Clone(c.Keys[i].Wrapped)
	}
	return c
}

// Primary returns the active key of purpose p.
func (ks Keyset) Primary(p Purpose) (Key, bool) {
	for _, k := range ks.Keys {
		if k.Purpose == p && k.State == StateActive {
			return k, true
		}
	}
	return Key{}, false
}

// Lookup returns the key with the given ID.
func (ks Keyset) Lookup(id uint32) (Key, bool) {
	for _, k := range ks.Keys {
		if k.ID == id {
			return k, true
		}
	}
	return Key{}, false
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// ValidName reports whether name can name a keyring: 1 to 64 letters,
// digits, '_', '.' or '-', starting with a letter or digit.
func ValidName(name string) bool { return nameRE.MatchString(name) }

// Validate checks the invariants every stored keyset keeps: a valid name,
// unique non-zero key IDs, known states, purposes and algorithms, at most one
// active key per purpose, and wrapped material for every key not destroyed.
func (ks Keyset) Validate() error {
	if !ValidName(ks.Name) {
		return fmt.Errorf("keyring: invalid keyring name %q", ks.Name)
	}
	seen := map[uint32]bool{}
	active := map[Purpose]bool{}
	for _, k := range ks.Keys {
		switch {
		case k.ID == 0:
			return fmt.Errorf("keyring: keyset %q: key ID 0 is reserved for raw keys", ks.Name)
		case seen[k.ID]:
			return fmt.Errorf("keyring: keyset %q: duplicate key ID %d", ks.Name, k.ID)
		case !k.State.valid():
			return fmt.Errorf("keyring: keyset %q: key %d has unknown state %q", ks.Name, k.ID, k.State)
		case !k.Purpose.valid():
			return fmt.Errorf("keyring: keyset %q: key %d has unknown purpose %q", ks.Name, k.ID, k.Purpose)
		case !k.Algorithm.Valid():
			return fmt.Errorf("keyring: keyset %q: key %d has unknown algorithm", ks.Name, k.ID)
		case k.State != StateDestroyed && len(k.Wrapped) == 0:
			return fmt.Errorf("keyring: keyset %q: key %d has no wrapped material", ks.Name, k.ID)
		case k.State == StateDestroyed && len(k.Wrapped) != 0:
			return fmt.Errorf("keyring: keyset %q: destroyed key %d still has material", ks.Name, k.ID)
		}
		seen[k.ID] = true
		if k.State == StateActive {
			if active[k.Purpose] {
				return fmt.Errorf("keyring: keyset %q: more than one active %s key", ks.Name, k.Purpose)
			}
			active[k.Purpose] = true
		}
	}
	return nil
}
