// Command gcpkms runs a keyring whose data keys are wrapped by a Cloud KMS
// CryptoKey: it encrypts and decrypts a few values, then a thousand more,
// and counts the Cloud KMS calls that took (one wrap when the keyring is
// made, one unwrap when another process opens it, none per value).
//
//	go run ./examples/gcpkms -key projects/P/locations/L/keyRings/R/cryptoKeys/K [-store keyward-keys.json]
//
// It uses the Application Default Credentials. Against an emulator, give
// its address with -endpoint and add -plaintext (see README.md).
package main
