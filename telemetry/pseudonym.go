package telemetry

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"sync"
)

// Pseudonymizer replaces user IDs and data IDs by keyed pseudonyms
// (HMAC-SHA256 under a 32-byte key) before they leave the process, so spans,
// metrics and events can be analyzed (the same ID always maps to the same
// pseudonym) without naming anyone. Whoever holds the key can recompute the
// pseudonym of a known ID; keep it as secret as a data key, and rotate it
// knowing that pseudonyms change with it.
//
// User IDs and data IDs are pseudonymized under different domains, so a
// user named like a record does not get the record's pseudonym. A pseudonym
// is "ps:" followed by 32 lowercase hex digits (128 bits). The empty string
// stays empty.
//
// A nil *Pseudonymizer leaves IDs unchanged. It is safe for concurrent use.
// Its String, GoString and Format never show the key.
type Pseudonymizer struct {
	key  *[32]byte // behind a pointer: a value printed by reflection shows an address, not the key
	pool sync.Pool
}

// NewPseudonymizer returns a Pseudonymizer keyed with a copy of key, which
// must be 32 bytes (use crypto/rand); any other length is [ErrKeySize].
func NewPseudonymizer(key []byte) (*Pseudonymizer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("%w: got %d", ErrKeySize, len(key))
	}
	p := &Pseudonymizer{key: new([32]byte)}
	copy(p.key[:], key)
	p.pool.New = func() any { return hmac.New(sha256.New, p.key[:]) }
	return p, nil
}

// Domain separation labels; each ends in a zero byte so no label is a prefix
// of another label plus ID.
const (
	domainUser = "keyward user\x00"
	domainData = "keyward data\x00"
)

// UserID returns the pseudonym of a user ID.
func (p *Pseudonymizer) UserID(id string) string { return p.pseudonym(domainUser, id) }

// DataID returns the pseudonym of a data ID. To name canary data IDs in the
// analyzer's configuration when events are pseudonymized, list their
// DataID pseudonyms.
func (p *Pseudonymizer) DataID(id string) string { return p.pseudonym(domainData, id) }

// Event returns e with its user ID and data ID pseudonymized. The resource
// (a table/column or keyring name, never a row) is set from the data ID
// first and stays readable, so that the analyzer can still tell which
// table and column an identity reads.
func (p *Pseudonymizer) Event(e Event) Event {
	if p == nil {
		return e
	}
	if e.Resource == "" && e.DataID != "" {
		e.Resource = resourceOf(e.DataID)
	}
	e.UserID = p.UserID(e.UserID)
	e.DataID = p.DataID(e.DataID)
	return e
}

func (p *Pseudonymizer) pseudonym(domain, id string) string {
	if p == nil || id == "" {
		return id
	}
	h := p.pool.Get().(hash.Hash)
	h.Reset()
	var in [96]byte
	if len(domain)+len(id) <= len(in) {
		b := append(append(in[:0], domain...), id...)
		h.Write(b)
	} else {
		h.Write([]byte(domain))
		h.Write([]byte(id))
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	p.pool.Put(h)
	var out [3 + 32]byte
	copy(out[:], "ps:")
	hex.Encode(out[3:], sum[:16])
	return string(out[:])
}

// String returns a fixed text; the key is never shown.
func (p *Pseudonymizer) String() string { return "telemetry.Pseudonymizer{key:REDACTED}" }

// GoString is String.
func (p *Pseudonymizer) GoString() string { return p.String() }

// Format writes String for every verb.
func (p *Pseudonymizer) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(p.String())) }
