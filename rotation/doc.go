// Package rotation re-encrypts stored data after a key rotation, and
// generates and rotates raw keys.
//
// After (*keyring.Keyring).Rotate, new values are encrypted under the new
// primary data key while old values still name their old key. Reencrypt
// brings the old ones over, through a Target: a store of encrypted values
// scanned in batches from a cursor and rewritten value by value with a
// compare-and-swap on the old token (adapters/gormcrypt.NewTarget is one
// for GORM models):
//
//	id, err := kr.Rotate(ctx)
//	target, err := gormcrypt.NewTarget(db, &Patient{})
//	cp, err := rotation.NewFileCheckpoint("rotation.checkpoint")
//	stats, err := rotation.Reencrypt(ctx, kr, target,
//		rotation.WithCheckpoint(cp), rotation.WithWorkers(4))
//
// A Target that also has SwapAll (BatchTarget) gets each batch's writes in
// one call, typically one transaction: one commit per batch.
//
// The token's key ID tells which values are current, without decrypting;
// the others are decrypted with their own associated data by the key their
// token names (never by trying keys) and encrypted under the primary with
// the same associated data.
//
// # Guarantees
//
//   - A value is at every moment its old token or its new token, and both
//     decrypt: the application runs on during the job, and killing the job
//     at any point loses or corrupts nothing.
//   - With WithCheckpoint the job resumes after the last finished batch.
//     FileCheckpoint keeps the progress in a JSON file (atomic replace,
//     fsync, 0600); it holds a cursor, never values or keys.
//   - Checkpoints are authenticated: each carries a MAC of the run, the
//     target's name (NamedTarget) and the cursor under a key derived from
//     the keyring (DeriveKey; the job then needs the derive permission) or
//     from RotateKey's new key. A checkpoint that was edited, built by
//     hand, or written for another keyring or target stops the job with
//     ErrCheckpointAuth; an authentic one of a run towards an earlier
//     primary with ErrCheckpointStale. Neither is resumed (which would skip
//     the rows before its cursor) nor silently discarded; remove it to start
//     over.
//   - The end state is checked, not assumed: with a KeyCounter target, a
//     job that has gone through every value but leaves values under other
//     keys than the primary (written meanwhile by a process that had not
//     reloaded its keyring, or missed by the scan) ends with ErrIncomplete
//     and Stats.Remaining, even when it scanned nothing.
//   - A concurrent application write is never overwritten: the
//     compare-and-swap misses and the value counts in Stats.Skipped (it
//     was written under the primary anyway).
//   - Fail closed: a value that does not decrypt stops the job with a
//     *ValueError naming the value (never its content), unless
//     WithContinueOnError, which counts it and ends with ErrIncomplete.
//   - A cancelled context stops the job promptly; the checkpoint keeps the
//     last finished batch.
//
// # Raw keys
//
// GenerateKey and RotateKey are the spec's generate_new_key() and
// rotate_key(old_key, new_key) for data encrypted with raw keys
// (cipher.EncryptData): RotateKey re-encrypts a Target from one raw key to
// another with the same runner.
//
// # Policy
//
// Policy.Due tells when a keyring's primary data key should be rotated:
// by age (the key's Created time) or by the encryptions this process made
// under it.
//
// # Telemetry
//
// A run is one span, SpanReencrypt, with its counts; the keyring's
// operations are counted in keyward.operations once per batch.
//
// # Errors
//
// ErrCheckpoint (and its kinds ErrCheckpointAuth and ErrCheckpointStale),
// ErrIncomplete, ErrSameKey, ErrTarget and *ValueError,
// which wraps the keyring's or cipher's error (keyring.ErrDecrypt,
// keyring.ErrKeyNotFound, cipher.ErrDecrypt, ...). Wrong-length keys are a
// cipher.KeySizeError. Test with errors.Is and errors.As.
//
// # Concurrency
//
// Reencrypt and RotateKey use WithWorkers goroutines per batch; a Target
// must be safe for concurrent Swap calls. Two jobs over the same target at
// once are safe (compare-and-swap) but do the work twice.
package rotation
