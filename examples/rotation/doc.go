// Command rotation shows a key rotation with re-encryption of stored data
// on embedded SQLite: it creates a key file, a keyring and encrypted rows,
// rotates the keyring's primary data key, and re-encrypts every row with
// rotation.Reencrypt over a gormcrypt target, resumably (a checkpoint file).
//
//	go run ./examples/rotation           # in a new temporary directory
//	go run ./examples/rotation -dir DIR  # keep crypto.key, keys.json and rotation.db in DIR
package main
