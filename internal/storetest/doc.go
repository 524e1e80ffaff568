// Package storetest is the conformance suite every keyring.Store passes:
// not-found, create, compare-and-swap, concurrent writers, validation,
// isolation of names and copies, cancellation.
package storetest
