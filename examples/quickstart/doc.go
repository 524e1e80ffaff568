// Command quickstart shows keyward's main job in a fresh checkout: it makes a
// key-encryption key in crypto.key (mode 0600) if there is none, opens the
// keyring stored beside it, encrypts a few sensitive values, prints the
// tokens and the values read back, and shows that a tampered token is
// refused.
//
//	go run ./examples/quickstart [-dir DIR]
package main
