// Package fsutil holds the file-system steps that keyward's file-backed
// stores and logs share: replacing a file atomically, making a directory
// entry durable, and locking a file against other processes.
//
// It is runtime code (unlike keyward's test-support packages under
// internal/), used by keyring's file store, the access audit log and the
// rotation checkpoint file. It is internal so that it is not part of
// keyward's public API.
//
// Locks are advisory flock(2) locks where the platform has them (Linux, the
// BSDs, macOS). Elsewhere [TryLock] does nothing and [Lock] creates the lock
// file exclusively, so a lock left by a crashed process must be removed by
// hand. Errors are those of the os package, and [ErrLocked] when another
// process holds a lock.
package fsutil
