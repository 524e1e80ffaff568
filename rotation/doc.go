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
// # A fleet
//
// Many instances of an application share one database and one key store.
// Three pieces let them rotate without a program of the operator's own:
//
//   - Policy.Due says when the primary is due: by age, or by encryptions
//     counted over the whole fleet (keyring.CountStore). An AES-256-GCM
//     key is always due at DefaultMaxEncryptions, far below the 2^32
//     random-nonce bound.
//   - A Scheduler, run by every instance, checks the policy; exactly one
//     instance rotates per due period (keyring.Keyring.RotateFrom is a
//     compare-and-swap on the store), and with WithJobs all of them then
//     share the re-encryption. It never disables or destroys a key.
//   - ReencryptJob runs a shared Job: its parts are leased to workers of
//     any number of processes, no part is worked on by two at once, and
//     the part of a process that dies (even by SIGKILL) is taken over from
//     its last finished batch once its lease ends.
//     adapters/gormcrypt.NewJob is a Job over a table; on PostgreSQL the
//     parts are ranges of the primary key, on SQLite the job is one part
//     held by one process.
//
// # Runbook
//
// The steps of a rotation, as an operator runs them with the keyward
// command (examples/keyward) or a program with this package:
//
//  1. Rotate: keyward keys rotate (kr.Rotate), or let the Scheduler do
//     it. New values are encrypted under the new primary at once; old ones
//     still decrypt.
//  2. Re-encrypt: keyward reencrypt (ReencryptJob over gormcrypt's
//     RegistryTargets and NewJob). Start it on as many machines as you
//     like; Ctrl-C (WithStop) stops after the current batch and a rerun
//     resumes. keyward reencrypt --dry-run only counts.
//  3. Check the inventory: keyward keys inventory (gormcrypt.Inventory)
//     must show no value under the old key. Values written meanwhile by an
//     instance that had not yet seen the rotation show up here; run step 2
//     again.
//  4. Disable the old key: keyward keys disable ID (kr.Disable), at
//     least the keyring's settle time (keyring.DefaultSettleTime) after the
//     rotation, and watch the logs for keyring.ErrKeyDisabled for a while.
//     Enable it again if anything still needs it.
//  5. Destroy it, at least the settle time after disabling it: keyward
//     keys destroy ID (kr.Destroy with gormcrypt's Usage as the
//     keyring.UsageChecker) is refused while the inventory finds values
//     under it; --force (keyring.Force) destroys anyway and records how
//     many values became unreadable for good.
//
// # Telemetry
//
// A run is one span, SpanReencrypt, with its counts, and each batch a
// child span, SpanBatch; the keyring's operations are counted in
// keyward.operations once per batch. ReencryptJob records MetricValues,
// MetricLeft and MetricLag after every batch; every Scheduler check is a
// SpanCheck span with its decision.
//
// # Errors
//
// ErrCheckpoint (and its kinds ErrCheckpointAuth and ErrCheckpointStale),
// ErrIncomplete, ErrSameKey, ErrTarget, ErrStopped, ErrJobDone, ErrJobBusy,
// ErrLeaseLost, *LeasedError and *ValueError,
// which wraps the keyring's or cipher's error (keyring.ErrDecrypt,
// keyring.ErrKeyNotFound, cipher.ErrDecrypt, ...). Wrong-length keys are a
// cipher.KeySizeError. Test with errors.Is and errors.As.
//
// # Concurrency
//
// Reencrypt and RotateKey use WithWorkers goroutines per batch; a Target
// must be safe for concurrent Swap calls. Two Reencrypt runs over the same
// target at once are safe (compare-and-swap) but do the work twice;
// ReencryptJob over a shared Job splits it instead.
package rotation
