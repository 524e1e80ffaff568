// Command kmsemulator serves on loopback the two KMS emulators keyward's
// tests use, so that the examples and the keyward CLI can be tried without a
// cloud account: github.com/nsmithuk/local-kms (the AWS KMS protocol over
// HTTP) and internal/gcpkmstest (Cloud KMS over plaintext gRPC). It makes
// one key in each, prints how to reach them, and serves until interrupted.
// Keys live in memory and a temporary directory, and are gone when it stops.
//
//	go run ./internal/kmsemulator [-aws 127.0.0.1:4599] [-gcp 127.0.0.1:4600]
//
// It is for trying things out, never for data that matters: anyone on the
// machine can use its keys.
package main
