// Command quickstart shows keyward's main job in a fresh checkout: a GORM
// model whose sensitive fields are encrypted, one of them searchable
// through a blind index, in the embedded SQLite database quickstart.db.
//
// It makes a key-encryption key in crypto.key (mode 0600) if there is none,
// keeps the keyring (wrapped data keys) in the database beside the data,
// stores two patients, finds one by e-mail through the blind index, reads it
// back, prints the raw stored row (tokens, no plaintext), and shows that a
// tampered token, and a token moved to another row, are refused.
//
//	go run ./examples/quickstart [-dir DIR] [-dsn postgres://...]
//
// With -dsn, or KEYWARD_PG_DSN in the environment, it uses that PostgreSQL
// database instead of quickstart.db; crypto.key stays in DIR. DIR is made
// if missing.
//
// A second run reuses crypto.key and the database and finds the two
// patients it stored before. The keyring in the database can only be
// opened with the crypto.key it was made with: if that file is lost, the
// run stops and says so ("crypto.key is missing and the keyring in
// quickstart.db was made with it") instead of making a new key, and names
// the ways out: restore the key file, or start over by deleting
// quickstart.db (with PostgreSQL, by dropping its tables keyward_keysets,
// keyward_keys, keyward_key_counts and patients).
package main
