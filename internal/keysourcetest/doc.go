// Package keysourcetest is the conformance suite every keyring.KeySource
// passes: round trips, separation of key-encryption keys and associated
// data, tampering, empty input, cancellation, concurrency, error
// classification, and use inside a Keyring.
//
// An adapter's test calls Run with a function that makes two sources over
// two different key-encryption keys (against the adapter's emulator):
//
//	func TestConformance(t *testing.T) {
//		keysourcetest.Run(t, func(t *testing.T) (a, b keyring.KeySource) { ... })
//	}
package keysourcetest
