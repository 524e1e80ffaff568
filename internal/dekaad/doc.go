// Package dekaad owns the format of the associated data a keyring gives its
// KeySource when it wraps or unwraps a data key: the label
// "keyward.dek/v1", then the keyring name, the key ID in decimal, the
// purpose and the algorithm name, each length-prefixed as cipher.AppendAAD
// writes them. The keyring writes it with [Append]; the adapters that show
// it in a readable form (an AWS encryption context, the key service's
// per-keyring view) read it with [Parse], and nothing else parses it.
package dekaad
