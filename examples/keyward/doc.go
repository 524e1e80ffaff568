// Command keyward is keyward's command-line tool: make keys, encrypt and
// decrypt values, inspect tokens.
//
//	keyward keygen [-o PATH] [-f]
//	keyward encrypt -k PATH [--aad TEXT] [--store PATH [--keyring NAME]] [PLAINTEXT]
//	keyward decrypt -k PATH [--aad TEXT] [--store PATH [--keyring NAME]] [TOKEN]
//	keyward inspect [TOKEN]
//	keyward audit verify -k PATH --store PATH [--keyring NAME] [--checkpoint JSON] FILE...
//
// Install it with `go install github.com/keyward/keyward/examples/keyward@latest`.
// Exit status: 0 on success, 1 on an error (one line on stderr that never
// holds key material or plaintext), 2 on a usage error.
package main
