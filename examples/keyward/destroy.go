package main

import (
	"context"
	"time"

	"github.com/keyward/keyward/adapters/gormcrypt"
	"github.com/keyward/keyward/keyring"
)

// disabledAt returns when a disabled key was disabled.
func disabledAt(k keyring.Key) time.Time {
	if k.State != keyring.StateDisabled {
		return time.Time{}
	}
	return k.Disabled
}

// destroyOptions are the keyring options of a destroy: the registry's
// usage check.
func destroyOptions(usage *gormcrypt.Usage, _ bool) []keyring.Option {
	if usage == nil {
		return nil
	}
	return []keyring.Option{keyring.WithUsageChecker(usage)}
}

// destroy destroys key id and returns how many stored values it made
// unreadable (counted only when forced; the keyring records the count in
// the destroy's span and event too).
func destroy(ctx context.Context, kr *keyring.Keyring, id uint32, usage *gormcrypt.Usage, force bool) (int64, error) {
	if !force {
		return 0, kr.Destroy(ctx, id)
	}
	var n int64
	if usage != nil {
		var err error
		if n, err = usage.KeyValues(ctx, kr.Name(), id); err != nil {
			return 0, err
		}
	}
	return n, kr.Destroy(ctx, id, keyring.Force())
}
