package keyring

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/keyward/keyward/telemetry"
)

// maxAttempts bounds the compare-and-swap retries of a keyset change.
const maxAttempts = 8

// update reads the stored keyset, lets change modify it and saves it with
// compare-and-swap, retrying on conflicts with a fresh read. change reports
// whether there is anything to save. On success the new keyset is installed.
func (k *Keyring) update(ctx context.Context, action string, change func(ks *Keyset) (bool, error)) error {
	if err := k.authorize(ctx, action); err != nil {
		return err
	}
	k.wmu.Lock()
	defer k.wmu.Unlock()
	for range maxAttempts {
		ks, err := k.store.Load(ctx, k.name)
		if err != nil {
			return fmt.Errorf("keyring: load %q: %w", k.name, err)
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

// Rotate makes a new data key the primary; the previous primary stays
// enabled for decryption. It returns the new primary's key ID. When another
// process rotates at the same moment, both end up with the one new primary
// that won the compare-and-swap, rather than rotating twice.
func (k *Keyring) Rotate(ctx context.Context) (id uint32, err error) {
	ctx, span := k.manageSpan(ctx, telemetry.ActionRotate)
	defer func() { k.endManage(ctx, span, telemetry.ActionRotate, id, err) }()
	id, _, err = k.rotate(ctx, PurposeData, ActionRotate, nil)
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
	return k.rotate(ctx, PurposeData, ActionRotate, &from)
}

// RotateDerive makes a new derive root the primary for DeriveKey. Keys
// derived from the old root stay derivable with DeriveKeyVersion; data
// indexed with them (blind indexes) must be re-indexed.
func (k *Keyring) RotateDerive(ctx context.Context) (id uint32, err error) {
	ctx, span := k.manageSpan(ctx, telemetry.ActionRotate)
	defer func() { k.endManage(ctx, span, telemetry.ActionRotate, id, err) }()
	id, _, err = k.rotate(ctx, PurposeDerive, ActionRotate, nil)
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
				ks.Keys[i].State, ks.Keys[i].Updated = StateEnabled, now
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
// be disabled; rotate first.
func (k *Keyring) Disable(ctx context.Context, keyID uint32) error {
	return k.setState(ctx, keyID, StateDisabled, "disable")
}

// Enable makes a disabled key usable for decryption again.
func (k *Keyring) Enable(ctx context.Context, keyID uint32) error {
	return k.setState(ctx, keyID, StateEnabled, "enable")
}

// Destroy erases a key's material for good: data still encrypted under it
// can never be read again. Only a disabled key can be destroyed (disable it
// first and watch for ErrKeyDisabled in your logs), and with a UsageChecker
// (WithUsageChecker) only one that no data uses.
func (k *Keyring) Destroy(ctx context.Context, keyID uint32) error {
	return k.setState(ctx, keyID, StateDestroyed, telemetry.ActionDestroy)
}

// setState changes a key's state; action names its span and event (only
// the event actions of the telemetry package become events).
func (k *Keyring) setState(ctx context.Context, id uint32, to State, action telemetry.Action) (err error) {
	ctx, span := k.manageSpan(ctx, action)
	defer func() { k.endManage(ctx, span, action, id, err) }()
	if to == StateDestroyed && k.cfg.usage != nil {
		if err := k.authorize(ctx, ActionManage); err != nil {
			return err
		}
		inUse, err := k.cfg.usage.KeyInUse(ctx, k.name, id)
		if err != nil {
			return fmt.Errorf("keyring: check use of key ID %d: %w", id, err)
		}
		if inUse {
			return fmt.Errorf("%w: key ID %d of keyring %q", ErrKeyInUse, id, k.name)
		}
	}
	return k.update(ctx, ActionManage, func(ks *Keyset) (bool, error) {
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
		key.State, key.Updated = to, k.cfg.clock.Now().UTC()
		if to == StateDestroyed {
			clear(key.Wrapped)
			key.Wrapped = nil
		}
		return true, nil
	})
}

// Rewrap re-wraps every key not wrapped by the current key source, after a
// KEK change: the keyring unwraps each with its previous key source
// (WithPreviousKeySources, picked by ID) and wraps it with the current one.
// Data is not touched: its keys stay the same. It returns how many keys it
// re-wrapped.
func (k *Keyring) Rewrap(ctx context.Context) (n int, err error) {
	ctx, span := k.manageSpan(ctx, telemetry.ActionRewrap)
	defer func() {
		if span.IsRecording() {
			span.SetAttributes(telemetry.AttrCount.Int(n))
		}
		k.endManage(ctx, span, telemetry.ActionRewrap, 0, err)
	}()
	err = k.update(ctx, ActionRewrap, func(ks *Keyset) (bool, error) {
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
		return n > 0, nil
	})
	return n, err
}
