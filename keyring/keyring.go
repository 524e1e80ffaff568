package keyring

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/cipher"
	"github.com/keyward/keyward/internal/dekaad"
	"github.com/keyward/keyward/internal/instrument"
	"github.com/keyward/keyward/telemetry"
)

// Keyring is the versioned data keys of one name, wrapped by a KeySource and
// kept in a Store. Encrypt uses the primary (active) data key; Decrypt picks
// the key by the key ID in the token, never by trying keys. Unwrapped keys
// are cached in memory (see WithCacheTTL and WithStaleWindow).
//
// A Keyring is safe for concurrent use. Close it to zero its cached keys.
type Keyring struct {
	name     string
	resource string // access.KeyringResource(name)
	src      KeySource
	store    Store
	cfg      config

	tel       *instrument.Instrumentation
	refreshAt time.Duration // age at which a cached key is refreshed in the background
	backoff   time.Duration // wait after a transient unwrap failure before the next try

	snap      atomic.Pointer[snapshot]
	closed    atomic.Bool
	bgCtx     context.Context
	bgStop    context.CancelFunc
	bg        sync.WaitGroup
	reloadDue atomic.Bool  // set by a timer each reload interval
	stale     atomic.Bool  // set by a timer when the store was not read for the settle time
	counts    *fleetCounts // exchange of encryption counts with a CountStore, or nil

	wmu        sync.Mutex // serializes this keyring's store writes
	mu         sync.Mutex // guards entries, lastMiss, stopReload and snapshot installation
	entries    map[uint32]*entry
	lastMiss   time.Time   // last reload caused by an unknown key ID
	stopReload func() bool // the pending reload timer
	stopStale  func() bool // the pending staleness timer
}

// snapshot is an immutable view of the keyset with its cache entries.
type snapshot struct {
	ks                         Keyset
	byID                       map[uint32]*slot
	primaryData, primaryDerive *slot    // the active key of each purpose
	ids                        []uint32 // key IDs, newest first, for a lookup cheaper than the map
	slots                      []*slot  // slots[i] has ids[i]
}

// lookup finds a key by ID: a scan of the few IDs a keyset usually has,
// newest (most used) first, and the map beyond that.
func (s *snapshot) lookup(id uint32) (*slot, bool) {
	if len(s.ids) <= 16 {
		for i, x := range s.ids {
			if x == id {
				return s.slots[i], true
			}
		}
		return nil, false
	}
	sl, ok := s.byID[id]
	return sl, ok
}

type slot struct {
	key    Key
	e      *entry
	usable bool // key.State is active or enabled
	data   bool // key.Purpose is PurposeData
}

// New opens the keyring name in store, wrapped by src. If the store has no
// keyring of that name, New creates one with a first data key (unless
// WithoutCreate); two processes creating it at once end up with one. New
// unwraps the primary data key before returning, so a wrong or unreachable
// key source is reported here, within ctx's deadline.
func New(ctx context.Context, name string, src KeySource, store Store, opts ...Option) (*Keyring, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("keyring: invalid keyring name %q (1-64 letters, digits, '_', '.', '-')", name)
	}
	if src == nil || store == nil {
		return nil, errors.New("keyring: New needs a key source and a store")
	}
	cfg := defaults()
	for _, o := range opts {
		if err := o.apply(&cfg); err != nil {
			return nil, err
		}
	}
	if err := cfg.settleTime(); err != nil {
		return nil, err
	}
	for _, p := range cfg.previous {
		if p.ID() == src.ID() {
			return nil, fmt.Errorf("keyring: previous key source %s is the current one", p.ID())
		}
	}
	k := &Keyring{
		name: name, resource: access.KeyringResource(name), src: src, store: store, cfg: cfg,
		refreshAt: cfg.ttl * 4 / 5,
		backoff:   min(cfg.ttl/10, 5*time.Second),
		entries:   map[uint32]*entry{},
	}
	tel, err := instrument.New(scope, cfg.tel...)
	if err != nil {
		return nil, fmt.Errorf("keyring: telemetry: %w", err)
	}
	k.tel = tel
	k.bgCtx, k.bgStop = context.WithCancel(context.Background())

	ks, err := store.Load(ctx, name)
	switch {
	case errors.Is(err, ErrKeyringNotFound) && cfg.create:
		ks, err = k.create(ctx)
	case err != nil:
		err = fmt.Errorf("keyring: load %q: %w", name, err)
	}
	if err != nil {
		k.Close()
		return nil, err
	}
	k.install(ks)
	if _, _, err := k.aead(ctx, k.snap.Load().primaryData); err != nil {
		k.Close()
		return nil, err
	}
	k.startCounts()
	return k, nil
}

// create stores a new keyset with one data key, or loads the one another
// process created first.
func (k *Keyring) create(ctx context.Context) (Keyset, error) {
	ks := Keyset{Name: k.name, KEK: k.src.ID()}
	key, l, err := k.newKey(ctx, ks, PurposeData)
	if err != nil {
		return Keyset{}, err
	}
	ks.Keys = append(ks.Keys, key)
	err = k.store.Save(ctx, ks)
	if errors.Is(err, ErrConflict) {
		clear(l.raw)
		return k.store.Load(ctx, k.name)
	}
	if err != nil {
		return Keyset{}, fmt.Errorf("keyring: create %q: %w", k.name, err)
	}
	k.seed(key.ID, l)
	ks.Version++
	return ks, nil
}

// Name returns the keyring's name.
func (k *Keyring) Name() string { return k.name }

// KeySource returns the keyring's current key source.
func (k *Keyring) KeySource() KeySource { return k.src }

// Primary returns the key ID of the primary data key.
func (k *Keyring) Primary() uint32 { return k.snap.Load().primaryData.key.ID }

// Keys returns every key version with its metadata; Wrapped is left out.
func (k *Keyring) Keys() []Key {
	keys := slices.Clone(k.snap.Load().ks.Keys)
	for i := range keys {
		keys[i].Wrapped = nil
	}
	return keys
}

// Encryptions returns how many values were encrypted under the key: over a
// CountStore, the fleet's total as of the last exchange of counts (every
// count interval) plus this process's encryptions since; over another
// store, this process's encryptions since the keyring was opened. Random
// 96-bit GCM nonces keep collisions negligible only far below 2^32
// messages per key; rotate well before (rotation.Policy).
func (k *Keyring) Encryptions(keyID uint32) uint64 {
	s, ok := k.snap.Load().byID[keyID]
	var n uint64
	if ok {
		n = s.e.encryptions.Load()
	}
	if k.counts != nil {
		return k.fleetEncryptions(keyID, n)
	}
	return n
}

// Encrypt seals plaintext under the primary data key and returns a binary
// token bound to aad.
func (k *Keyring) Encrypt(ctx context.Context, plaintext, aad []byte) ([]byte, error) {
	if c, b := k.fastPrimary(ctx); c != nil {
		tok := c.Seal(nil, plaintext, aad)
		k.fastDone(ctx, b, telemetry.ActionEncrypt, c.KeyID())
		return tok, nil
	}
	return k.encrypt(ctx, plaintext, aad)
}

func (k *Keyring) encrypt(ctx context.Context, plaintext, aad []byte) (tok []byte, err error) {
	ctx, o := k.begin(ctx, telemetry.ActionEncrypt)
	c, err := k.primary(ctx, &o)
	if err == nil {
		tok = c.Seal(nil, plaintext, aad)
	}
	k.end(ctx, o, keyIDOf(c), err)
	return tok, err
}

// Decrypt opens a binary token made by Encrypt with the same aad.
func (k *Keyring) Decrypt(ctx context.Context, token, aad []byte) ([]byte, error) {
	if id, ok := cipher.PeekKeyID(token); ok {
		if c, b := k.fastFor(ctx, id); c != nil {
			if pt, err := c.Open(nil, token, aad); err == nil {
				k.fastDone(ctx, b, telemetry.ActionDecrypt, id)
				return pt, nil
			}
		}
	}
	return k.decrypt(ctx, token, aad)
}

func (k *Keyring) decrypt(ctx context.Context, token, aad []byte) (pt []byte, err error) {
	ctx, o := k.begin(ctx, telemetry.ActionDecrypt)
	t, err := cipher.Parse(token)
	if err == nil {
		var c *cipher.AEAD
		if c, err = k.forToken(ctx, t.Header, &o); err == nil {
			if pt, err = c.OpenToken(nil, t, aad); err != nil {
				err = decryptError(t.KeyID, err)
			}
		}
	}
	k.end(ctx, o, t.KeyID, err)
	return pt, err
}

// EncryptText seals plaintext under the primary data key and returns a text
// token ("kw1." + base64url) bound to aad.
func (k *Keyring) EncryptText(ctx context.Context, plaintext string, aad []byte) (string, error) {
	if c, b := k.fastPrimary(ctx); c != nil {
		tok := cipher.SealText(c, plaintext, aad)
		k.fastDone(ctx, b, telemetry.ActionEncrypt, c.KeyID())
		return tok, nil
	}
	return k.encryptText(ctx, plaintext, aad)
}

func (k *Keyring) encryptText(ctx context.Context, plaintext string, aad []byte) (tok string, err error) {
	ctx, o := k.begin(ctx, telemetry.ActionEncrypt)
	c, err := k.primary(ctx, &o)
	if err == nil {
		tok = cipher.SealText(c, plaintext, aad)
	}
	k.end(ctx, o, keyIDOf(c), err)
	return tok, err
}

// DecryptText opens a text token made by EncryptText with the same aad.
func (k *Keyring) DecryptText(ctx context.Context, token string, aad []byte) (string, error) {
	// The fast path decodes the token once and picks the key by the key ID
	// in the decoded header; any refusal or failure takes the full path,
	// which reports it.
	var (
		b  *instrument.Batch
		id uint32
	)
	pt, err := cipher.OpenTextWith(token, aad, func(keyID uint32) *cipher.AEAD {
		var c *cipher.AEAD
		c, b = k.fastFor(ctx, keyID)
		id = keyID
		return c
	})
	if err == nil {
		k.fastDone(ctx, b, telemetry.ActionDecrypt, id)
		return pt, nil
	}
	return k.decryptText(ctx, token, aad)
}

func (k *Keyring) decryptText(ctx context.Context, token string, aad []byte) (pt string, err error) {
	ctx, o := k.begin(ctx, telemetry.ActionDecrypt)
	h, err := cipher.ParseHeader(token)
	if err == nil {
		var c *cipher.AEAD
		if c, err = k.forToken(ctx, h, &o); err == nil {
			if pt, err = cipher.OpenText(c, token, aad); err != nil {
				err = decryptError(h.KeyID, err)
			}
		}
	}
	k.end(ctx, o, h.KeyID, err)
	return pt, err
}

func keyIDOf(c *cipher.AEAD) uint32 {
	if c == nil {
		return 0
	}
	return c.KeyID()
}

// EncryptString is the specification's encrypt_sensitive_data: it returns
// the text token of data with no associated data.
func (k *Keyring) EncryptString(ctx context.Context, data string) (string, error) {
	return k.EncryptText(ctx, data, nil)
}

// DecryptString is the specification's decrypt_sensitive_data: it opens a
// text token made by EncryptString.
func (k *Keyring) DecryptString(ctx context.Context, token string) (string, error) {
	return k.DecryptText(ctx, token, nil)
}

func decryptError(id uint32, err error) error {
	if errors.Is(err, cipher.ErrDecrypt) {
		return &authError{id: id}
	}
	return err
}

// authError is ErrDecrypt with the key ID; it also matches
// cipher.ErrDecrypt.
type authError struct{ id uint32 }

func (e *authError) Error() string {
	return ErrDecrypt.Error() + " (key ID " + strconv.FormatUint(uint64(e.id), 10) + ")"
}

func (e *authError) Is(target error) bool { return target == ErrDecrypt || target == cipher.ErrDecrypt }

// authorize asks the Authorizer, if any.
func (k *Keyring) authorize(ctx context.Context, action string) error {
	if k.closed.Load() {
		return ErrClosed
	}
	if k.cfg.authz == nil {
		return nil
	}
	return k.cfg.authz.Authorize(ctx, action, k.resource)
}

// primary returns the AEAD of the primary data key and counts the
// encryption.
func (k *Keyring) primary(ctx context.Context, o *op) (*cipher.AEAD, error) {
	if err := k.authorize(ctx, access.ActionEncrypt); err != nil {
		return nil, err
	}
	if k.stale.Load() {
		// The store has not been read for the settle time: another process
		// may have retired this primary. Read it now, or refuse.
		if err := k.Reload(ctx); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrKeysetStale, err)
		}
	}
	s := k.current()
	p := s.primaryData
	l, hit, err := k.aead(ctx, p)
	o.hit = hit
	if err != nil {
		return nil, err
	}
	k.counted(p.e.encryptions.Add(1))
	return l.aead, nil
}

// forToken returns the AEAD for a token's key ID, after authorization.
func (k *Keyring) forToken(ctx context.Context, h cipher.Header, o *op) (*cipher.AEAD, error) {
	if err := k.authorize(ctx, access.ActionDecrypt); err != nil {
		return nil, err
	}
	sl, err := k.slot(ctx, h.KeyID, PurposeData)
	if err != nil {
		return nil, err
	}
	if sl.key.Algorithm != h.Algorithm {
		return nil, &authError{id: h.KeyID}
	}
	l, hit, err := k.aead(ctx, sl)
	o.hit = hit
	if err != nil {
		return nil, err
	}
	return l.aead, nil
}

// slot finds a usable key by ID, reloading the store once for an unknown
// ID, and checks its state and purpose.
func (k *Keyring) slot(ctx context.Context, id uint32, p Purpose) (*slot, error) {
	if id == 0 {
		return nil, fmt.Errorf("%w: key ID 0 marks a raw-key token (cipher.DecryptData), not a keyring token", ErrKeyNotFound)
	}
	sl, ok := k.current().lookup(id)
	if !ok {
		if err := k.reloadForMiss(ctx); err != nil {
			return nil, err
		}
		if sl, ok = k.snap.Load().lookup(id); !ok {
			return nil, fmt.Errorf("%w: key ID %d is not in keyring %q", ErrKeyNotFound, id, k.name)
		}
	}
	if sl.usable && sl.data == (p == PurposeData) {
		return sl, nil // the common case, without string comparisons
	}
	if sl.key.Purpose != p {
		return nil, fmt.Errorf("%w: key ID %d of keyring %q is a %s key", ErrKeyNotFound, id, k.name, sl.key.Purpose)
	}
	switch sl.key.State {
	case StateDisabled:
		return nil, fmt.Errorf("%w: key ID %d of keyring %q", ErrKeyDisabled, id, k.name)
	case StateDestroyed:
		return nil, fmt.Errorf("%w: key ID %d of keyring %q", ErrKeyDestroyed, id, k.name)
	}
	return sl, nil
}

// current returns the snapshot, starting a background reload when the
// reload interval has passed since the last one.
func (k *Keyring) current() *snapshot {
	if k.reloadDue.Load() && k.reloadDue.CompareAndSwap(true, false) {
		k.goBackground(func(ctx context.Context) {
			if k.Reload(ctx) != nil {
				k.armReload() // try again next interval
			}
		})
	}
	return k.snap.Load()
}

// armReload sets the reload timer. k.mu must not be held.
func (k *Keyring) armReload() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.armReloadLocked()
}

func (k *Keyring) armReloadLocked() {
	if k.stopReload != nil {
		k.stopReload()
	}
	if k.closed.Load() {
		return
	}
	k.stopReload = k.cfg.clock.AfterFunc(k.cfg.reload, func() { k.reloadDue.Store(true) })
}

// reloadForMiss reloads the store for an unknown key ID, at most once per
// reload interval/60 so that forged key IDs cannot flood the store.
func (k *Keyring) reloadForMiss(ctx context.Context) error {
	k.mu.Lock()
	now := k.cfg.clock.Now()
	if now.Sub(k.lastMiss) < k.cfg.reload/60 {
		k.mu.Unlock()
		return nil
	}
	k.lastMiss = now
	k.mu.Unlock()
	return k.Reload(ctx)
}

// Reload re-reads the keyset from the store, to see changes other processes
// made. The keyring also does this by itself (WithReloadInterval).
func (k *Keyring) Reload(ctx context.Context) error {
	if k.closed.Load() {
		return ErrClosed
	}
	ks, err := k.store.Load(ctx, k.name)
	if err != nil {
		return fmt.Errorf("keyring: reload %q: %w", k.name, err)
	}
	k.install(ks)
	return nil
}

// install makes ks the current snapshot if it is not older than the current
// one, reusing cache entries and erasing those of destroyed keys.
func (k *Keyring) install(ks Keyset) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if old := k.snap.Load(); old != nil && old.ks.Version > ks.Version {
		return
	}
	s := &snapshot{ks: ks, byID: make(map[uint32]*slot, len(ks.Keys))}
	var unusable []*entry
	for _, key := range ks.Keys {
		e := k.entries[key.ID]
		if e == nil {
			e = &entry{id: key.ID}
			k.entries[key.ID] = e
		}
		if key.State == StateDestroyed || key.State == StateDisabled {
			unusable = append(unusable, e)
		}
		sl := &slot{key: key, e: e, data: key.Purpose == PurposeData,
			usable: key.State == StateActive || key.State == StateEnabled}
		s.byID[key.ID] = sl
		s.ids = append([]uint32{key.ID}, s.ids...)
		s.slots = append([]*slot{sl}, s.slots...)
		if key.State == StateActive {
			if key.Purpose == PurposeDerive {
				s.primaryDerive = sl
			} else {
				s.primaryData = sl
			}
		}
	}
	k.snap.Store(s)
	// Erase after publishing: an unwrap that ends meanwhile checks the
	// published snapshot after caching, so one of the two erases it.
	for _, e := range unusable {
		e.erase() // disabled or destroyed: drop the key whatever the cache holds
	}
	k.armReloadLocked()
	k.armStaleLocked()
}

// armStaleLocked restarts the settle-time timer after a read of the store.
// k.mu must be held.
func (k *Keyring) armStaleLocked() {
	if k.stopStale != nil {
		k.stopStale()
	}
	k.stale.Store(false)
	if k.closed.Load() {
		return
	}
	k.stopStale = k.cfg.clock.AfterFunc(k.cfg.settle, func() { k.stale.Store(true) })
}

// Close zeroes and drops every cached key and stops background work. Later
// calls fail with ErrClosed. Close does not close the key source or store.
func (k *Keyring) Close() error {
	if !k.closed.Load() {
		k.closeCounts()
	}
	k.mu.Lock()
	already := k.closed.Swap(true)
	k.mu.Unlock()
	if already {
		return nil
	}
	k.bgStop()
	k.bg.Wait()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.stopReload != nil {
		k.stopReload()
	}
	if k.stopStale != nil {
		k.stopStale()
	}
	for _, e := range k.entries {
		e.erase()
	}
	return nil
}

// goBackground runs f in a goroutine that Close waits for, with a context
// bounded by the KMS timeout and Close. It reports false, running nothing,
// once the keyring is closed.
func (k *Keyring) goBackground(f func(ctx context.Context)) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed.Load() {
		return false
	}
	k.bg.Add(1)
	go func() {
		defer k.bg.Done()
		ctx, cancel := context.WithTimeout(k.bgCtx, k.cfg.kmsTimeout)
		defer cancel()
		f(ctx)
	}()
	return true
}

// newKey makes a key of purpose p with an ID unique in ks and wraps it. It
// returns the key's unwrapped form too, for seeding the cache once the key is
// stored (drop it with erase otherwise).
func (k *Keyring) newKey(ctx context.Context, ks Keyset, p Purpose) (Key, *loaded, error) {
	raw := make([]byte, cipher.KeySize)
	defer clear(raw)
	_, _ = rand.Read(raw)
	var id uint32
	for id == 0 {
		var b [4]byte
		_, _ = rand.Read(b[:])
		if id = binary.BigEndian.Uint32(b[:]); id != 0 {
			if _, taken := ks.Lookup(id); taken {
				id = 0
			}
		}
	}
	alg := k.cfg.alg
	if p == PurposeDerive {
		alg = cipher.AES256GCM // derivation does not use it; recorded for validity
	}
	wrapped, err := k.src.Wrap(ctx, raw, dekAAD(k.name, id, p, alg))
	if err != nil {
		return Key{}, nil, fmt.Errorf("keyring: wrap a new key for keyring %q with %s: %w", k.name, k.src.ID(), err)
	}
	now := k.cfg.clock.Now().UTC()
	key := Key{ID: id, Purpose: p, Algorithm: alg, State: StateActive, KEK: k.src.ID(), Wrapped: wrapped, Created: now, Updated: now}
	l, err := newLoaded(key, raw)
	if err != nil {
		return Key{}, nil, err
	}
	return key, l, nil
}

// seed puts a freshly made key into the cache.
func (k *Keyring) seed(id uint32, l *loaded) {
	k.mu.Lock()
	defer k.mu.Unlock()
	e := k.entries[id]
	if e == nil {
		e = &entry{id: id}
		k.entries[id] = e
	}
	k.cache(e, l)
}

// dekAAD binds a wrapped key to its keyring, ID, purpose and algorithm, so
// that a wrapped key moved to another place in a store does not unwrap. Its
// format belongs to internal/dekaad; a KeySource treats it as opaque bytes.
func dekAAD(name string, id uint32, p Purpose, alg cipher.Algorithm) []byte {
	return dekaad.Append(nil, dekaad.Binding{Keyring: name, KeyID: id, Purpose: string(p), Algorithm: alg.String()})
}

// sourceFor returns the key source that wrapped key, by ID.
func (k *Keyring) sourceFor(key Key) (KeySource, error) {
	if key.KEK == k.src.ID() {
		return k.src, nil
	}
	for _, p := range k.cfg.previous {
		if key.KEK == p.ID() {
			return p, nil
		}
	}
	return nil, fmt.Errorf("%w: key ID %d of keyring %q is wrapped by %s; this keyring has %s", ErrWrongKEK, key.ID, k.name, key.KEK, k.src.ID())
}

// String describes the keyring without key material.
func (k *Keyring) String() string {
	return "keyring.Keyring{" + k.name + ", primary key ID " + strconv.FormatUint(uint64(k.Primary()), 10) + ", KEK " + k.src.ID() + "}"
}

// GoString is String.
func (k *Keyring) GoString() string { return k.String() }

// Format prints String under every verb.
func (k *Keyring) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }
