// Package redaction has no code of its own: its test holds keyward to one
// rule by construction. Every exported type that holds key material (audit
// keys, data keys, derived keys, pseudonymization keys, wrapped keys, and
// whatever holds those: keyrings, stores, caches, key sources, the GORM
// plugin) must print without it under every fmt verb.
//
// The test finds those types itself, from the source of every package of
// the module: an exported type whose fields reach a byte slice or array, a
// hash.Hash or a crypto/cipher AEAD or Block, through the module's own
// types (pointers, maps, slices and generics included). Each such type
// must be listed, either with a constructor that builds a value holding a
// random canary key, or among the types whose bytes are not key material,
// with the reason (the key service's generated wire messages have a list of
// their own, with theirs). A new type holding key material therefore fails
// the test until someone decides how it prints.
//
// For each listed holder the test checks that the canary is really in the
// value (a reflection walk through pointers and unexported fields), then
// formats the value, and the value inside a struct and a slice, with %v,
// %+v, %#v, %s, %x and %q, and fails if any form of the canary (raw, hex,
// decimal or Go-syntax bytes, quoted, base64, or as the 32-bit words of a
// key schedule) appears.
package redaction
