// Command keyward is keyward's command-line tool: make keys, encrypt and
// decrypt values, inspect tokens.
//
//	keyward keygen [-o PATH] [-f]
//	keyward encrypt -k PATH [--aad TEXT] [--store PATH [--keyring NAME]] [PLAINTEXT]
//	keyward decrypt -k PATH [--aad TEXT] [--store PATH [--keyring NAME]] [TOKEN]
//	keyward encrypt|decrypt (--aws-kms KEY [--aws-region R] | --gcp-kms NAME) --store PATH [--keyring NAME] [--aad TEXT] [--kms-endpoint E [--kms-plaintext]] [INPUT]
//	keyward inspect [TOKEN]
//	keyward analyze [--json] [--config FILE] FILE...
//	keyward audit verify -k PATH --store PATH [--keyring NAME] [--checkpoint JSON] FILE...
//
// With --aws-kms or --gcp-kms the keyring's data keys are wrapped by a cloud
// KMS key (the SDK's default credentials) instead of a key file; the KMS is
// called once per run to wrap or unwrap the data key, bounded by a minute.
// --kms-endpoint (and, for Cloud KMS, --kms-plaintext) point it at an
// emulator such as `go run ./internal/kmsemulator`.
//
// Install it with `go install github.com/keyward/keyward/examples/keyward@latest`.
// Exit status: 0 on success, 1 on an error (one line on stderr that never
// holds key material or plaintext), 2 on a usage error.
package main
