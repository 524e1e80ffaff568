// Command keyward is keyward's command-line tool: make keys, encrypt and
// decrypt values, inspect tokens, verify audit logs, run the key service,
// and rotate keys for a fleet.
//
//	go install github.com/keyward/keyward/examples/keyward@latest   # or, in a clone: go install ./examples/keyward
//	keyward keygen                                                   # crypto.key
//	keyward encrypt --create -k crypto.key --store keys.json --aad patients/1/ssn 123-45-6789
//	keyward decrypt -k crypto.key --store keys.json --aad patients/1/ssn kw1.…
//
// # Commands
//
// Only the commands marked below write anything. A read-only command never
// makes a key, a store or a keyring: a missing --store file is an error
// ("keyring store typo.json does not exist"), and so is a keyring name not
// in the store. encrypt makes a new store or keyring only with --create.
//
//	command              what it does                                                    creates
//	keygen               write a new random 32-byte key file (Base64, mode 0600)         the key file (-o, default crypto.key); never replaces one without -f
//	encrypt              encrypt a value (argument or stdin) to a text token             with --create only: the --store file and the keyring in it
//	decrypt              decrypt a token and write the plaintext                         nothing
//	inspect              print a token's header as JSON, without any key                 nothing
//	analyze              find anomalies in usage events or span exports                  nothing
//	audit verify         verify hash-chained audit files (exit 1 names the bad record)   nothing
//	keys list            the keys of a keyring, their use and values                     nothing
//	keys inventory       stored values per key ID per table.column                       nothing
//	keys rotate          add a new primary data key                                      a key version in the existing keyring
//	keys enable|disable  change a key's state                                            a state change
//	keys destroy         erase a disabled key (refused while values use it)              a state change
//	keys rewrap          re-wrap every data key under the key source after --to          rewrapped keys in the existing keyring
//	reencrypt            re-encrypt registered columns under the primary keys            rewritten values and a job row (not with --dry-run)
//	serve                run the key service                                             with --audit DIR: DIR, its audit keyring and log; --events FILE
//	certs                make a test CA, server and client certificates                  the certificate files in -o DIR
//
// keyward --version prints the module version and VCS revision the binary
// was built from; keyward COMMAND -h lists that command's flags.
//
//	keyward keygen [-o PATH] [-f]
//	keyward encrypt -k PATH [--aad TEXT] [--store PATH [--create] [--keyring NAME]] [PLAINTEXT]
//	keyward decrypt -k PATH [--aad TEXT] [--store PATH [--keyring NAME]] [TOKEN]
//	keyward encrypt|decrypt (--aws-kms KEY [--aws-region R] | --gcp-kms NAME) --store PATH [--create] [--keyring NAME] [--aad TEXT] [--kms-endpoint E [--kms-plaintext]] [INPUT]
//	keyward encrypt|decrypt --key-service ADDR[,ADDR] (--tls-cert C --tls-key K --server-ca CA [--server-name N] | --insecure-loopback) --store PATH [--create] [--keyring NAME] [--aad TEXT] [INPUT]
//	keyward serve [--listen ADDR] (-k PATH [--previous-key PATH]... | --aws-kms KEY | --gcp-kms NAME) (--tls-cert C --tls-key K --client-ca CA | --insecure-loopback) --policy FILE [--audit DIR] [--events FILE] [--rate N --burst N] [--shutdown-timeout D]
//	keyward certs [-o DIR] [--server NAME[,NAME]] [--client ID]... [--days N]
//	keyward inspect [TOKEN]
//	keyward analyze [--json] [--config FILE] FILE...
//	keyward audit verify (-k PATH | --aws-kms KEY | --gcp-kms NAME) --store PATH [--keyring NAME] [--checkpoint JSON] FILE...
//	keyward keys list [--json] --store S [--db D] [--keyring NAME]
//	keyward keys inventory [--json] --store S [--db D]
//	keyward keys rotate | enable ID | disable ID | destroy ID [--force] KEY-SOURCE --store S [--db D] [--keyring NAME]
//	keyward keys rewrap KEY-SOURCE --store S [--keyring NAME] --to NEW-KEY-SOURCE
//	keyward reencrypt KEY-SOURCE --store S [--db D] [--table T]... [--workers N] [--batch N] [--dry-run] [--rate ROWS/S]
//
// The rotation example (go run ./examples/rotation -dir demo) writes an
// audit log and prints the keyward audit verify command that checks it.
//
// # Errors
//
// Every authentication failure, with a key file or a keyring, reads the
// same: "the token does not authenticate: the wrong key file or key
// source, the wrong --aad, or an edited or truncated token". A store whose
// keyring was made with another key-encryption key (a lost or replaced key
// file) is named as such, with the ways out: restore the key file, or start
// over by deleting the store (or dropping a database's keyring tables). A
// missing AWS region or missing credentials is a "configuration error",
// not an unavailable key source.
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
// Exit status: 0 on success (and for -h and --version), 1 on an error (one
// line on stderr that never holds key material or plaintext), 2 on a usage
// error (the error and the command's usage line).
package main
