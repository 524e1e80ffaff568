package rotation

import (
	"errors"
	"fmt"
	"strconv"
)

// Errors a caller can test with errors.Is. No error contains plaintext,
// ciphertext or key material.
var (
	// ErrCheckpoint reports a checkpoint that cannot be read or written, or
	// a checkpoint file that is malformed. ErrCheckpointAuth and
	// ErrCheckpointStale match it too.
	ErrCheckpoint = errors.New("rotation: bad checkpoint")

	// ErrCheckpointAuth reports a checkpoint whose MAC does not verify: it
	// was edited, built by hand, or written by a run of another keyring, key
	// or target. The run does not resume from it (which would skip the
	// rows before its cursor) and stops; remove it to start over.
	ErrCheckpointAuth = fmt.Errorf("%w: it does not authenticate", ErrCheckpoint)

	// ErrCheckpointStale reports an authentic checkpoint of an earlier run
	// towards another primary key: the rows before its cursor may hold
	// values under keys the current primary has not replaced. The run
	// stops; remove the checkpoint to start over.
	ErrCheckpointStale = fmt.Errorf("%w: it belongs to another run", ErrCheckpoint)

	// ErrIncomplete reports a run that went through every value but could
	// not re-encrypt some of them (WithContinueOnError); Stats.Failed counts
	// them and Stats.Failures lists the first MaxFailures. It also reports
	// a KeyCounter target that still holds values under other keys at the
	// end (Stats.Remaining).
	ErrIncomplete = errors.New("rotation: some values were not re-encrypted")

	// ErrSameKey reports RotateKey called with equal old and new keys.
	ErrSameKey = errors.New("rotation: old and new keys are equal")

	// ErrTarget reports a Target that failed to scan or write values, or
	// broke its contract (a cursor that does not advance).
	ErrTarget = errors.New("rotation: target failed")
)

// ValueError is the failure of one value: its identity (Value.ID, never
// its content) and the cause, e.g. keyring.ErrDecrypt for a token that does
// not authenticate with its associated data.
type ValueError struct {
	ID  string // Value.ID of the failed value
	Err error
}

// Error implements error.
func (e *ValueError) Error() string {
	return "rotation: value " + strconv.Quote(e.ID) + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *ValueError) Unwrap() error { return e.Err }
