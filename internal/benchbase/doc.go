// Package benchbase is the plain standard-library AES-256-GCM that keyward's
// benchmarks compare against: a fresh random nonce per message and the output
// in one new slice, with no header, key IDs or associated data.
package benchbase
