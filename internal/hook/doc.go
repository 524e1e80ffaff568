// Package hook carries what keyward's public packages share with keyward's
// own code and not with users: state of a telemetry.Instrumentation that its
// exported methods do not show (for internal/instrument), and the keyring's
// clock option (for tests, through internal/kmstest).
//
// It imports nothing of keyward's, so that the public packages can import it
// while the packages that read it import them. Each variable is set once, by
// the package it names, when that package is initialized; nothing else
// writes them.
package hook
