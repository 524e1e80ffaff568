package rotation

import "context"

// Format says what a Value's stored bytes are.
type Format uint8

// Formats of stored values.
const (
	// FormatText is a text token ("kw1." + base64url), as string columns
	// and the GORM layer store them. It is the zero value.
	FormatText Format = iota
	// FormatBinary is a binary token.
	FormatBinary
	// FormatPlaintext is a legacy value that was never encrypted (the
	// migration mode of gormcrypt.WithLegacyPlaintext). The run encrypts
	// it into a text token and counts it in Stats.Legacy. A Target reports
	// this format only when its owner asked it to.
	FormatPlaintext
)

// Value is one stored value of a Target.
type Value struct {
	// ID names the value in errors and stats, e.g. "patients/42/ssn". It
	// must not contain the value or anything secret.
	ID string
	// Stored is the value as read: the token (or legacy plaintext). Swap
	// compares against it.
	Stored []byte
	// AAD is the associated data the value is bound to; the new token is
	// bound to the same.
	AAD []byte
	// Format says what Stored holds.
	Format Format
	// Row is the target's own reference to the row (its key, the column),
	// handed back to Swap untouched.
	Row any
}

// Target is a store of encrypted values that a run scans in batches from a
// cursor and rewrites value by value.
//
// Implementations are safe for concurrent use: a run calls Swap from
// several goroutines.
type Target interface {
	// Scan reads the values of up to limit records (rows) stored after
	// cursor ("" = from the start), in an order that does not change while
	// values are rewritten, and returns them with the cursor of the last
	// record read. It returns no values at the end. A record may hold
	// several values (one per encrypted column).
	Scan(ctx context.Context, cursor string, limit int) (values []Value, next string, err error)

	// Swap replaces the stored value of v with token (a text token, or a
	// binary token for FormatBinary) only if it still holds v.Stored:
	// compare-and-swap. It reports false, without error, when the value
	// changed or disappeared since Scan (a concurrent application write,
	// which is never overwritten).
	Swap(ctx context.Context, v Value, token []byte) (bool, error)
}

// Swap is a new token for a scanned value.
type Swap struct {
	Value Value
	Token []byte
}

// BatchTarget is a Target that writes the new tokens of a batch at once,
// with the same compare-and-swap per value, typically in one transaction
// (one commit per batch instead of one per value). A run uses SwapAll when
// the Target has it: the batch's values are re-encrypted by the workers,
// then written in one call.
type BatchTarget interface {
	Target
	// SwapAll writes each swap as Swap would and reports, in order,
	// whether each was written. On error it writes none of them.
	SwapAll(ctx context.Context, swaps []Swap) (written []bool, err error)
}

// NamedTarget is the optional capability of a Target that names what it
// covers (for a GORM target, the table and its encrypted columns). A run
// binds its checkpoints to the name, so that a checkpoint of one target
// given to another is refused instead of skipping its rows. The name must
// be stable across processes and runs and hold nothing secret.
type NamedTarget interface {
	Target
	TargetName() string
}

// KeyCounter is the optional capability of a Target that counts its stored
// values by the key that made them, from the token header, without
// decrypting or reading them all (for a GORM target, one GROUP BY per
// column). Reencrypt uses it to check its end state: a run that leaves
// values under other keys than the primary (written meanwhile by a process
// that had not seen the rotation, or missed by the scan) ends with
// ErrIncomplete instead of nil. It can also answer a keyring's
// UsageChecker.
type KeyCounter interface {
	Target
	// CountByKey returns how many stored values each key ID made. Values
	// that are not tokens (legacy plaintext) count under key ID 0.
	CountByKey(ctx context.Context) (map[uint32]int64, error)
}

// Progress is what a Checkpoint keeps: where a run stands.
type Progress struct {
	// Run identifies what the run re-encrypts to (the keyring and its
	// primary key ID, or a fingerprint of RotateKey's new key). A run
	// refuses the checkpoint of another run (ErrCheckpointStale). It is not
	// secret.
	Run string
	// Cursor is the Target cursor after the last finished batch: every
	// record up to it has been handled.
	Cursor string
	// MAC authenticates Run, Cursor and the target's name under a key
	// only the run's keyring (DeriveKey) or RotateKey's new key gives, so a
	// checkpoint built from public values, edited, or written for another
	// keyring or target is refused (ErrCheckpointAuth). The run sets it; a
	// Checkpoint stores it as it is.
	MAC string
}

// Checkpoint saves the progress of a run so that a stopped run (cancelled,
// killed, crashed) resumes where it stopped. FileCheckpoint is one.
type Checkpoint interface {
	// Load returns the saved progress; ok is false when there is none.
	Load(ctx context.Context) (p Progress, ok bool, err error)
	// Save replaces the saved progress, atomically: after a crash, Load
	// returns either the previous or the new progress.
	Save(ctx context.Context, p Progress) error
	// Clear removes the saved progress, when a run has finished.
	Clear(ctx context.Context) error
}

// Stats counts what a run did. A resumed run counts only what it did
// itself, not what the stopped run before it did.
type Stats struct {
	Scanned   int64 // values read
	Rewritten int64 // values written under the new key (Legacy included)
	Legacy    int64 // plaintext values encrypted (FormatPlaintext)
	Current   int64 // values already under the new key, left as they were
	Skipped   int64 // compare-and-swap misses: the value changed meanwhile
	Failed    int64 // values that could not be re-encrypted
	Batches   int64 // batches finished and checkpointed
	Resumed   bool  // the run continued from a checkpoint
	// Remaining counts the values a KeyCounter target still holds under
	// other keys than the primary once the run has gone through every
	// value (then the run ends with ErrIncomplete).
	Remaining int64

	// Failures lists the first MaxFailures failed values.
	Failures []*ValueError
}

// MaxFailures is how many failed values Stats.Failures keeps.
const MaxFailures = 100
