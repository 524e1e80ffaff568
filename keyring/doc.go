// Package keyring manages versioned data keys (DEKs) wrapped by a
// key-encryption key (KEK) and encrypts and decrypts data with them.
//
// A KeySource holds the KEK: a local file key (adapters/filekey), an AWS KMS
// key (adapters/awskms) or a Cloud KMS key (adapters/gcpkms). A Keyring is
// the data keys of one name (e.g. "default", "pii"), each identified by a
// random non-zero 32-bit key ID and in one state: active (the primary, which
// encrypts), enabled (decrypts), disabled (refuses, reversibly) or destroyed
// (material erased). Keys live wrapped in a Store: MemoryStore, FileStore
// (one JSON file, atomic writes, 0600) or the database store in
// adapters/gormcrypt. Changes are compare-and-swap, so many processes can
// share one store.
//
//	src, err := filekey.Open("crypto.key")
//	store, err := keyring.NewFileStore("keyward-keys.json")
//	kr, err := keyring.New(ctx, "default", src, store)
//	defer kr.Close()
//	token, err := kr.EncryptString(ctx, "123-45-6789") // "kw1.AQH..."
//	ssn, err := kr.DecryptString(ctx, token)
//
// Encrypt uses the primary key; Decrypt reads the key ID from the token and
// uses that key, never trying keys. A token whose key ID the keyring does not
// know makes it reload its store once (rate-limited) before it fails with
// ErrKeyNotFound. Associated data (aad) binds a token to where it belongs;
// build it from several parts with cipher.AppendAAD.
//
// # Cache
//
// Unwrapped keys are cached, so the key source is called once per key
// version per TTL, not per record: a key is refreshed in the background
// after 80% of WithCacheTTL; concurrent misses share one unwrap. Past its
// TTL a cached key is served at once while one background refresh asks the
// key source (stale-while-revalidate), for up to WithStaleWindow: a key
// source that is down or hangs stalls no call the cache can serve. Past the
// stale window, while the key source is unavailable (the last refresh
// failed with ErrKEKUnavailable or an unclassified error, or has not
// answered), calls fail at once with ErrKEKUnavailable rather than wait for
// it, and a background retry (one at a time) brings the key back once it
// answers. A definitive refusal (ErrKEKDisabled, ErrKEKNotFound,
// ErrKEKAccessDenied, ErrUnwrap) evicts the key at once. Close zeroes what
// can be zeroed.
//
// # Key states across processes
//
// Processes that share a store see each other's changes when they reload
// it (WithReloadInterval, default one minute), so until then a process may
// still encrypt under a primary another one has retired, or use a key
// another one has disabled. The settle time (WithSettleTime, default
// DefaultSettleTime, two reload intervals) bounds that window, and key
// states are guarded so that nothing is lost in it:
//
//   - a key that stopped being the primary less than the settle time ago
//     cannot be disabled (ErrTooSoon): a process that has not reloaded may
//     still write data under it;
//   - a key can be destroyed only once disabled for the settle time
//     (ErrTooSoon before; Key.Disabled records when), so every process has
//     seen it refuse, and only when the UsageChecker (WithUsageChecker),
//     the inventory of stored values, says no value uses it (ErrKeyInUse);
//     Force overrides both checks, authorized as access.ActionForce so that an
//     access.Guard audits the override, and records how many values it
//     made unreadable when the UsageChecker counts them (ValueCounter,
//     as gormcrypt.Usage does);
//   - a process that learns on reload that a key is disabled or destroyed
//     drops its cached copy at once;
//   - a process that could not read its store for the settle time refuses
//     to encrypt (ErrKeysetStale) until a reload succeeds, so "every process
//     has seen the change" holds even when reloads fail.
//
// A key's safe way out: Rotate; wait the settle time, so every process
// encrypts under the new primary; rotation.Reencrypt (it fails if values
// remain under other keys); Disable the old key; watch for ErrKeyDisabled
// for at least the settle time; Destroy.
//
// # A fleet's counts and rotations
//
// Over a CountStore (MemoryStore, FileStore, gormcrypt's Store) every
// process adds its encryption counts to the store every count interval
// (WithCountInterval) and every CountEvery encryptions, never once per
// encryption, so Encryptions reports the fleet's total per key: the
// random-nonce bound of AES-GCM applies to all processes together.
// SyncEncryptions exchanges the counts at once. RotateFrom rotates only
// while the primary is the key judged due, so that among instances that
// judged at once exactly one rotates (rotation.Scheduler uses it).
//
// # Moving to another key-encryption key
//
// A keyset records the KEK it requires (Keyset.KEK): the one that made it,
// or the one Rewrap moved it to. A keyring whose key source is another KEK
// refuses to change the keyset (ErrStaleKEK), so that no process wraps a
// new key with a KEK the others cannot use. A fleet moves from KEK A to KEK
// B in this order:
//
//  1. Make B usable by every process (create it; grant access).
//  2. Roll out every process with B as its key source and A in
//     WithPreviousKeySources. They read everything; until step 3 they
//     refuse to rotate (ErrStaleKEK), while processes not yet rolled out
//     still can, with A.
//  3. Once every process runs with B, call Rewrap once (any process of
//     step 2): it re-wraps every key with B and records B as required.
//     From then on a process still on A alone fails (ErrStaleKEK on
//     changes, ErrWrongKEK on keys it cannot unwrap): it was missed in
//     step 2.
//  4. Roll out every process with B alone (drop A from
//     WithPreviousKeySources).
//  5. Retire A in its KMS.
//
// # Derived keys
//
// DeriveKey derives stable purpose-bound keys (blind indexes, audit MACs)
// from a separate derive root, so they do not change when data keys rotate.
//
// # Access control
//
// With WithAuthorizer the keyring asks before every operation and fails
// closed: a refused caller never causes a data key to be unwrapped.
//
// # Errors
//
// ErrDecrypt, ErrMalformedToken, ErrKeyNotFound, ErrKeyDisabled,
// ErrKeyDestroyed, ErrKeyringNotFound, ErrConflict, ErrInvalidState,
// ErrKeyInUse, ErrTooSoon, ErrStaleKEK, ErrKeysetStale, ErrClosed, and the
// key source classes ErrUnwrap,
// ErrKEKUnavailable, ErrKEKNotFound, ErrKEKDisabled, ErrKEKAccessDenied and
// ErrWrongKEK. Test with errors.Is; vendor errors stay reachable with
// errors.As. No error contains key material, plaintext or ciphertext.
//
// # Concurrency
//
// A Keyring, MemoryStore and FileStore are safe for concurrent use. A
// FileStore shared by processes on one machine serializes writes with a file
// lock.
package keyring
