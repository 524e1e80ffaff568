package keyring

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/telemetry"
)

// maxAttempts bounds the compare-and-swap retries of a keyset change.
const maxAttempts = 8

// update authorizes action, then reads the stored keyset, lets change
// modify it and saves it with compare-and-swap (see updateAuthorized).
func (k *Keyring) update(ctx context.Context, action string, change func(ks *Keyset) (bool, error)) error {
	if err := k.authorize(ctx, action); err != nil {
		return err
	}
	return k.updateAuthorized(ctx, false, change)
}

// updateAuthorized reads the stored keyset, lets change modify it and saves
// it with compare-and-swap, retrying on conflicts with a fresh read. change
// reports whether there is anything to save. On success the new keyset is
// installed. A keyset that requires another KEK than the keyring's is not
// changed (ErrStaleKEK); with rewrap, a keyset that requires one of the
// previous key sources is (the move to the current one).
func (k *Keyring) updateAuthorized(ctx context.Context, rewrap bool, change func(ks *Keyset) (bool, error)) error {
	k.wmu.Lock()
	defer k.wmu.Unlock()
	for range maxAttempts {
		ks, err := k.store.Load(ctx, k.name)
		if err != nil {
			return fmt.Errorf("keyring: load %q: %w", k.name, err)
		}
		if err := k.checkKEK(ks, rewrap); err != nil {
			k.install(ks)
			return err
		}
		changed, err := change(&ks)
		if err != nil || !changed {
			k.install(ks)
			return err
		}
		err = k.store.Save(ctx, ks)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("keyring: save %q: %w", k.name, err)
		}
		ks.Version++
		k.install(ks)
		return nil
	}
	return fmt.Errorf("keyring: keyring %q: %w %d times in a row", k.name, ErrConflict, maxAttempts)
}

// checkKEK refuses a change to ks by a keyring whose key source is not the
// KEK ks requires (or, for a rewrap, one of its previous sources).
func (k *Keyring) checkKEK(ks Keyset, rewrap bool) error {
	if ks.KEK == "" || ks.KEK == k.src.ID() {
		return nil
	}
	if rewrap && slices.ContainsFunc(k.cfg.previous, func(p KeySource) bool { return p.ID() == ks.KEK }) {
		return nil
	}
	return fmt.Errorf("%w: keyring %q requires %s (moved there by Rewrap); this keyring's key source is %s: run it with that key source", ErrStaleKEK, k.name, ks.KEK, k.src.ID())
}

// Rotate makes a new data key the primary; the previous primary stays
// enabled for decryption. It returns the new primary's key ID. When another
// process rotates at the same moment, both end up with the one new primary
// that won the compare-and-swap, rather than rotating twice.
func (k *Keyring) Rotate(ctx context.Context) (id uint32, err error) {
	ctx, span := k.manageSpan(ctx, telemetry.ActionRotate)
	defer func() { k.endManage(ctx, span, telemetry.ActionRotate, id, err) }()
	id, _, err = k.rotate(ctx, PurposeData, access.ActionRotate, nil)
	return id, err
}

// RotateFrom is Rotate on a condition: it rotates only while the primary
// data key is still from. When another process rotated since (the primary
// is another key), it changes nothing and returns the current primary with
// rotated false. Instances that all judged the primary from due at the
// same moment call it, and exactly one of them rotates (rotation.Scheduler).
func (k *Keyring) RotateFrom(ctx context.Context, from uint32) (id uint32, rotated bool, err error) {
	ctx, span := k.manageSpan(ctx, telemetry.ActionRotate)
	defer func() { k.endManage(ctx, span, telemetry.ActionRotate, id, err) }()
	return k.rotate(ctx, PurposeData, access.ActionRotate, &from)
}

// RotateDerive makes a new derive root the primary for DeriveKey. Keys
// derived from the old root stay derivable with DeriveKeyVersion; data
// indexed with them (blind indexes) must be re-indexed.
func (k *Keyring) RotateDerive(ctx context.Context) (id uint32, err error) {
	ctx, span := k.manageSpan(ctx, telemetry.ActionRotate)
	defer func() { k.endManage(ctx, span, telemetry.ActionRotate, id, err) }()
	id, _, err = k.rotate(ctx, PurposeDerive, access.ActionRotate, nil)
	return id, err
}

// rotate makes a new primary of purpose p, authorized as action, unless
// the primary is not expect (when not nil); it reports whether it did.
func (k *Keyring) rotate(ctx context.Context, p Purpose, action string, expect *uint32) (uint32, bool, error) {
	seen := expect // the primary found on the first read, or the one expected
	adopted := false
	var made *loaded
	var newID uint32
	err := k.update(ctx, action, func(ks *Keyset) (bool, error) {
		cur, _ := ks.Primary(p)
		if seen == nil {
			seen = &cur.ID
		} else if cur.ID != *seen {
			newID, adopted = cur.ID, true // another process rotated meanwhile: adopt its key
			return false, nil
		}
		key, l, err := k.newKey(ctx, *ks, p)
		if err != nil {
			return false, err
		}
		if made != nil {
			clear(made.raw)
		}
		made, newID = l, key.ID
		now := key.Created
		for i := range ks.Keys {
			if ks.Keys[i].Purpose == p && ks.Keys[i].State == StateActive {
				ks.Keys[i].State, ks.Keys[i].Updated, ks.Keys[i].Retired = StateEnabled, now, now
			}
		}
		ks.Keys = append(ks.Keys, key)
		return true, nil
	})
	if err != nil {
		return 0, false, err
	}
	if made == nil || adopted {
		if made != nil {
			clear(made.raw)
		}
		return newID, false, nil
	}
	if sl, ok := k.snap.Load().byID[newID]; ok && sl.e.cur.Load() == nil {
		k.seed(newID, made)
	} else {
		clear(made.raw)
	}
	return newID, true, nil
}

// Disable makes a key refuse every use until Enable. The primary key cannot
// be disabled (rotate first), nor a key that stopped being the primary less
// than the settle time ago (ErrTooSoon): another process that has not
// reloaded the store yet may still encrypt under it. Every process drops a
// disabled key from its cache when it next reloads the store.
func (k *Keyring) Disable(ctx context.Context, keyID uint32) error {
	return k.setState(ctx, keyID, StateDisabled, "disable", false)
}

// Enable makes a disabled key usable for decryption again.
func (k *Keyring) Enable(ctx context.Context, keyID uint32) error {
	return k.setState(ctx, keyID, StateEnabled, "enable", false)
}

// DestroyOption changes the checks Destroy makes. Force is the one there
// is.
type DestroyOption interface{ destroyOption() }

type forceOption struct{}

func (forceOption) destroyOption() {}

// ValueCounter is the optional capability of a UsageChecker that counts
// the stored values a key protects (gormcrypt.Usage is one). A forced
// Destroy then records how many values it makes unreadable for good: in its
// span (AttrLostValues) and in its usage event (Count).
type ValueCounter interface {
	KeyValues(ctx context.Context, keyring string, keyID uint32) (int64, error)
}

// Force makes Destroy skip its safety checks: the settle time since the
// key was disabled and the usage check. It is for a key that must go now
// (compromised, or data under it already given up). The keyring asks its
// Authorizer for access.ActionForce in addition to access.ActionManage, so an
// access.Guard audits the override as a decision of its own, and the
// destroy span carries AttrForced. The key must still be disabled first.
func Force() DestroyOption { return forceOption{} }

// Destroy erases a key's material for good: data still encrypted under it
// can never be read again. Only a disabled key can be destroyed (disable it
// first and watch for ErrKeyDisabled in your logs), only once it has been
// disabled for the settle time (WithSettleTime; ErrTooSoon before), so that
// every process sharing the store has seen it disabled, and, with a
// UsageChecker (WithUsageChecker), only one that no data uses
// (ErrKeyInUse). Force skips the last two checks.
func (k *Keyring) Destroy(ctx context.Context, keyID uint32, opts ...DestroyOption) error {
	force := false
	for _, o := range opts {
		if _, ok := o.(forceOption); ok {
			force = true
		} else if o == nil {
			return errors.New("keyring: nil destroy option")
		}
	}
	return k.setState(ctx, keyID, StateDestroyed, telemetry.ActionDestroy, force)
}

// setState changes a key's state; action names its span and event (only
// the event actions of the telemetry package become events).
func (k *Keyring) setState(ctx context.Context, id uint32, to State, action telemetry.Action, force bool) (err error) {
	ctx, span := k.manageSpan(ctx, action)
	if force && span.IsRecording() {
		span.SetAttributes(AttrForced.Bool(true))
	}
	lost := 0 // values a forced destroy makes unreadable, when counted
	defer func() { k.endManageCount(ctx, span, action, id, lost, err) }()
	if err := k.authorize(ctx, access.ActionManage); err != nil {
		return err
	}
	if force {
		if err := k.authorize(ctx, access.ActionForce); err != nil {
			return err
		}
		if vc, ok := k.cfg.usage.(ValueCounter); ok && to == StateDestroyed {
			n, err := vc.KeyValues(ctx, k.name, id)
			if err != nil {
				return fmt.Errorf("keyring: count values of key ID %d: %w", id, err)
			}
			lost = int(min(n, int64(math.MaxInt32)))
			if span.IsRecording() {
				span.SetAttributes(AttrLostValues.Int64(n))
			}
		}
	}
	return k.updateAuthorized(ctx, false, func(ks *Keyset) (bool, error) {
		i := slices.IndexFunc(ks.Keys, func(key Key) bool { return key.ID == id })
		if i < 0 {
			return false, fmt.Errorf("%w: key ID %d is not in keyring %q", ErrKeyNotFound, id, k.name)
		}
		key := &ks.Keys[i]
		if key.State == to {
			return false, nil
		}
		allowed := false
		switch to {
		case StateDisabled:
			allowed = key.State == StateEnabled
		case StateEnabled:
			allowed = key.State == StateDisabled
		case StateDestroyed:
			allowed = key.State == StateDisabled
		}
		if !allowed {
			return false, fmt.Errorf("%w: key ID %d is %s and cannot become %s", ErrInvalidState, id, key.State, to)
		}
		now := k.cfg.clock.Now().UTC()
		switch to {
		case StateDisabled:
			if err := k.settled(now, key.retiredAt(), "was the primary", id, "disabled",
				"processes that have not reloaded the store may still encrypt under it"); err != nil {
				return false, err
			}
			key.Disabled = now
		case StateEnabled:
			key.Disabled = time.Time{}
		case StateDestroyed:
			if !force {
				if err := k.settled(now, key.disabledAt(), "was disabled", id, "destroyed",
					"processes that have not reloaded the store may still use it"); err != nil {
					return false, err
				}
				if err := k.checkUnused(ctx, id); err != nil {
					return false, err
				}
			}
			clear(key.Wrapped)
			key.Wrapped = nil
		}
		key.State, key.Updated = to, now
		return true, nil
	})
}

// settled refuses a change before the settle time has passed since since.
func (k *Keyring) settled(now, since time.Time, what string, id uint32, change, why string) error {
	ready := since.Add(k.cfg.settle)
	if now.Before(ready) {
		return fmt.Errorf("%w: key ID %d of keyring %q %s at %s; it can be %s from %s (settle time %v): %s",
			ErrTooSoon, id, k.name, what, since.Format(time.RFC3339), change, ready.Format(time.RFC3339), k.cfg.settle, why)
	}
	return nil
}

// checkUnused asks the UsageChecker, if any, whether data uses key id.
func (k *Keyring) checkUnused(ctx context.Context, id uint32) error {
	if k.cfg.usage == nil {
		return nil
	}
	inUse, err := k.cfg.usage.KeyInUse(ctx, k.name, id)
	if err != nil {
		return fmt.Errorf("keyring: check use of key ID %d: %w", id, err)
	}
	if inUse {
		return fmt.Errorf("%w: key ID %d of keyring %q", ErrKeyInUse, id, k.name)
	}
	return nil
}

// Rewrap re-wraps every key not wrapped by the current key source, after a
// KEK change: the keyring unwraps each with its previous key source
// (WithPreviousKeySources, picked by ID) and wraps it with the current one.
// Data is not touched: its keys stay the same. It returns how many keys it
// re-wrapped. It records the current key source as the KEK the keyset
// requires (Keyset.KEK): from then on a keyring with another key source
// refuses to change the keyset (ErrStaleKEK). See the package doc for the
// order of steps of a fleet's KEK migration.
func (k *Keyring) Rewrap(ctx context.Context) (n int, err error) {
	ctx, span := k.manageSpan(ctx, telemetry.ActionRewrap)
	defer func() {
		if span.IsRecording() {
			span.SetAttributes(telemetry.AttrCount.Int(n))
		}
		k.endManage(ctx, span, telemetry.ActionRewrap, 0, err)
	}()
	if err := k.authorize(ctx, access.ActionRewrap); err != nil {
		return 0, err
	}
	err = k.updateAuthorized(ctx, true, func(ks *Keyset) (bool, error) {
		n = 0
		for i := range ks.Keys {
			key := &ks.Keys[i]
			if key.State == StateDestroyed || key.KEK == k.src.ID() {
				continue
			}
			src, err := k.sourceFor(*key)
			if err != nil {
				return false, err
			}
			aad := dekAAD(k.name, key.ID, key.Purpose, key.Algorithm)
			raw, err := src.Unwrap(ctx, key.Wrapped, aad)
			if err != nil {
				return false, fmt.Errorf("keyring: rewrap key ID %d: unwrap with %s: %w", key.ID, src.ID(), err)
			}
			wrapped, err := k.src.Wrap(ctx, raw, aad)
			clear(raw)
			if err != nil {
				return false, fmt.Errorf("keyring: rewrap key ID %d: wrap with %s: %w", key.ID, k.src.ID(), err)
			}
			key.Wrapped, key.KEK, key.Updated = wrapped, k.src.ID(), k.cfg.clock.Now().UTC()
			n++
		}
		moved := ks.KEK != k.src.ID()
		ks.KEK = k.src.ID()
		return n > 0 || moved, nil
	})
	return n, err
}
