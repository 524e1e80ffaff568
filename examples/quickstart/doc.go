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
// database instead of quickstart.db; crypto.key stays in DIR.
package main
