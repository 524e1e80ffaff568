// Package kmstest checks how a Keyring behaves over a remote KMS, counting
// requests at the KMS emulator: the KMS is called per data key version per
// cache TTL, never per record; concurrent misses share one call; cached
// keys carry the keyring through a KMS outage for the stale window and no
// longer; a KMS that hangs once the cached keys expire stalls no call (they
// are served at once, refreshed in the background, and fail at once past
// the stale window); a KMS that is down or hangs at start gives a clear
// error within the caller's deadline, and the key source itself returns by
// the caller's deadline or cancellation while the KMS hangs; throttled calls
// are retried. Faults and Hold are the fault table both KMS emulators use.
//
// Unwraps lets a test wait for a keyring's background refreshes to finish,
// on their spans, instead of sleeping.
//
// An adapter's test calls Run with a function that starts an emulator and
// returns a Remote over it:
//
//	func TestKeyringOverKMS(t *testing.T) {
//		kmstest.Run(t, func(t *testing.T) kmstest.Remote { ... })
//	}
package kmstest
