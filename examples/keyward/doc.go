// Command keyward is keyward's command-line tool: make keys, encrypt and
// decrypt values, inspect tokens, run the key service.
//
//	keyward keygen [-o PATH] [-f]
//	keyward encrypt -k PATH [--aad TEXT] [--store PATH [--keyring NAME]] [PLAINTEXT]
//	keyward decrypt -k PATH [--aad TEXT] [--store PATH [--keyring NAME]] [TOKEN]
//	keyward encrypt|decrypt (--aws-kms KEY [--aws-region R] | --gcp-kms NAME) --store PATH [--keyring NAME] [--aad TEXT] [--kms-endpoint E [--kms-plaintext]] [INPUT]
//	keyward encrypt|decrypt --key-service ADDR[,ADDR] (--tls-cert C --tls-key K --server-ca CA [--server-name N] | --insecure-loopback) --store PATH [--keyring NAME] [--aad TEXT] [INPUT]
//	keyward serve [--listen ADDR] (-k PATH [--previous-key PATH]... | --aws-kms KEY | --gcp-kms NAME) (--tls-cert C --tls-key K --client-ca CA | --insecure-loopback) --policy FILE [--audit DIR] [--events FILE] [--rate N --burst N] [--shutdown-timeout D]
//	keyward certs [-o DIR] [--server NAME[,NAME]] [--client ID]... [--days N]
//	keyward inspect [TOKEN]
//	keyward analyze [--json] [--config FILE] FILE...
//	keyward audit verify (-k PATH | --aws-kms KEY | --gcp-kms NAME) --store PATH [--keyring NAME] [--checkpoint JSON] FILE...
//
// With --aws-kms or --gcp-kms the keyring's data keys are wrapped by a cloud
// KMS key (the SDK's default credentials) instead of a key file; the KMS is
// called once per run to wrap or unwrap the data key, bounded by a minute.
// --kms-endpoint (and, for Cloud KMS, --kms-plaintext) point it at an
// emulator such as `go run ./internal/kmsemulator`.
//
// serve runs the key service (github.com/keyward/keyward/adapters/keyservice):
// it holds the KEK and wraps and unwraps data keys, over mutual TLS, for the
// services its --policy allows, auditing every call (--audit DIR makes a
// hash-chained log that `keyward audit verify -k KEY --store
// DIR/audit-keyring.json --keyring audit DIR/audit-*.jsonl` verifies) and
// writing usage events for `keyward analyze` (--events). It prints
// "keyward serve: listening on ADDR ..." on stderr once it accepts calls,
// reloads --policy on SIGHUP, and on SIGINT or SIGTERM lets the calls in
// flight finish (--shutdown-timeout) and exits 0. With --key-service,
// encrypt and decrypt use it as the key source of the keyring in --store,
// so the machine running them never holds the KEK. certs makes a test CA,
// a server certificate (default for localhost and 127.0.0.1) and client
// certificates whose SPIFFE ID or DNS name is the principal the policy
// names; run again with more --client flags, it reuses the CA. The
// key service's package documentation has a five-minute set-up.
//
// Install it with `go install github.com/keyward/keyward/examples/keyward@latest`.
// Exit status: 0 on success, 1 on an error (one line on stderr that never
// holds key material or plaintext), 2 on a usage error.
package main
