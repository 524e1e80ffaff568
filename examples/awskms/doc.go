// Command awskms runs a keyring whose data keys are wrapped by an AWS KMS
// key: it encrypts and decrypts a few values, then a thousand more, and
// counts the KMS calls that took (one wrap when the keyring is made, one
// unwrap when another process opens it, none per value).
//
//	go run ./examples/awskms -key alias/keyward [-region eu-west-1] [-store keyward-keys.json]
//
// It uses the AWS SDK's default credentials and configuration. Against an
// emulator, give its URL with -endpoint (see README.md).
package main
