// Command keyward is keyward's command-line tool: make keys, encrypt and
// decrypt values, inspect tokens, run the key service, and rotate keys for
// a fleet.
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
//	keyward keys list|inventory [--json] --store S [--db D] [--keyring NAME]
//	keyward keys rotate | enable ID | disable ID | destroy ID [--force] KEY-SOURCE --store S [--db D] [--keyring NAME]
//	keyward keys rewrap KEY-SOURCE --store S [--keyring NAME] --to NEW-KEY-SOURCE
//	keyward reencrypt KEY-SOURCE --store S [--db D] [--table T]... [--workers N] [--batch N] [--dry-run] [--rate ROWS/S]
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
// # Rotating keys for a fleet
//
// keys and reencrypt work on a keyring store (--store: a keys.json file, or
// a PostgreSQL DSN or SQLite file holding gormcrypt's tables) and the column
// registry the application's gormcrypt.AutoMigrate (or Register with
// WithModels) writes into its database (the same database, or --db). KEY-SOURCE
// is -k PATH or a KMS or key-service key, as for encrypt. The runbook:
//
//	keyward keys rotate -k crypto.key --store "$DSN"             # new primary; old values still decrypt
//	keyward reencrypt -k crypto.key --store "$DSN" --dry-run     # how many values are under old keys
//	keyward reencrypt -k crypto.key --store "$DSN" --workers 4   # on as many machines as you like
//	keyward keys inventory --store "$DSN"                        # nothing left under the old key?
//	keyward keys disable OLD -k crypto.key --store "$DSN"        # 2 minutes (the settle time) after the rotation
//	keyward keys destroy OLD -k crypto.key --store "$DSN"        # 2 minutes after disabling; refused while values use it
//
// keys list shows each key's ID, purpose, state, algorithm, creation and
// disabling times, the encryptions the fleet made under it and the values
// it protects. keys list, keys inventory and reencrypt --dry-run only read:
// they never create or change a store or a table, and a missing store is an
// error. reencrypt shows a progress bar with rate and ETA on a terminal and
// a line every 5 seconds otherwise; Ctrl-C stops it after the current
// batch and a rerun resumes. Several reencrypt processes on PostgreSQL
// share the work; on SQLite a second one is told which process runs the
// job. keys destroy is refused while the inventory finds values under the
// key; --force destroys anyway and says how many values it made unreadable.
// keys rewrap moves every data key to the key source after --to (a KEK
// migration); the data is not touched.
//
// Install it with `go install github.com/keyward/keyward/examples/keyward@latest`.
// Exit status: 0 on success, 1 on an error (one line on stderr that never
// holds key material or plaintext), 2 on a usage error.
package main
