// Command rotation shows a key rotation with re-encryption of stored data
// on embedded SQLite: it creates a key file, a keyring and encrypted rows,
// rotates the keyring's primary data key, and re-encrypts every row with
// rotation.Reencrypt over a gormcrypt target, resumably (a checkpoint file).
// It then writes what it did to a hash-chained audit log (access.AuditLog,
// keyed from the keyring) and prints the `keyward audit verify` command
// that checks it.
//
//	go run ./examples/rotation            # in a new temporary directory, removed at the end
//	go run ./examples/rotation -dir demo  # keep crypto.key, keys.json, rotation.db and audit/ in demo (made if missing)
//	keyward audit verify -k demo/crypto.key --store demo/keys.json --checkpoint '...' demo/audit/audit-00000001.jsonl
//
// Run again with the same -dir, it reuses crypto.key and starts over with
// the rest (it says which files it removed), so runs do not pile up rows
// and key versions; after an interrupted re-encryption (rotation.checkpoint
// is left) it resumes that re-encryption instead.
package main
