// Package layers holds the test that keeps keyward's architecture: the
// import layers (the README's Architecture section), the vendor SDKs
// confined to their adapters, internal test support kept out of library
// code (library code may import only the runtime packages such as
// internal/fsutil), no cgo, and a doc.go in every package. It has no
// non-test code.
package layers
