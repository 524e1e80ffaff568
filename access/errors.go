package access

import (
	"errors"
	"fmt"
	"strconv"
)

// Sentinel errors. Every error the package returns wraps one of these (or a
// context error), so callers test with errors.Is.
var (
	// ErrAccessDenied is wrapped by every authorization refusal. The concrete
	// error is a *DeniedError carrying the reason.
	ErrAccessDenied = errors.New("access: access denied")

	// ErrUnauthenticated is passed to the middleware's unauthenticated handler
	// when the application's authenticator rejects a request.
	ErrUnauthenticated = errors.New("access: unauthenticated")

	// ErrInvalidPolicy is wrapped by every policy configuration error. The
	// concrete error is a *PolicyError naming the field and, for files, the
	// line and column.
	ErrInvalidPolicy = errors.New("access: invalid policy")

	// ErrAuditFailed is wrapped when an audit record could not be written.
	// With the default fail-closed Auditor it fails the audited operation.
	ErrAuditFailed = errors.New("access: audit write failed")

	// ErrInvalidKey reports an audit key that is not exactly 32 bytes.
	ErrInvalidKey = errors.New("access: invalid audit key")

	// ErrClosed reports a write to a closed AuditLog.
	ErrClosed = errors.New("access: audit log closed")

	// ErrLocked reports an audit log held by another writer, or a writer
	// whose active file was removed or replaced under it (another writer
	// may append to the replacement): that writer stops.
	ErrLocked = errors.New("access: audit log in use by another writer")

	// ErrTampered reports an audit record that was edited, forged, inserted,
	// removed or moved, or a log that does not start where it should.
	ErrTampered = errors.New("access: audit log tampered")

	// ErrWrongKey reports an audit record written under a different audit key
	// than the one given to Verify.
	ErrWrongKey = errors.New("access: audit record under a different key")

	// ErrTornRecord reports a log whose last line is incomplete, as left by a
	// crash in the middle of an append. The records before it verified.
	ErrTornRecord = errors.New("access: audit log ends in a torn record")

	// ErrTruncated reports a log that ends before the record count of a
	// checkpoint given to Verify: records were removed from the tail.
	ErrTruncated = errors.New("access: audit log truncated")

	// ErrInvalidCheckpoint reports a checkpoint that is malformed or whose MAC
	// does not verify under the audit key.
	ErrInvalidCheckpoint = errors.New("access: invalid audit checkpoint")
)

// DeniedError is the error of a refused authorization. It wraps
// ErrAccessDenied. Its fields name the action, the resource and why; they
// never contain key material or the principal's attributes.
type DeniedError struct {
	Action   string // the action asked for
	Resource string // the resource asked for
	Reason   string // why, e.g. "no matching permission"
}

// Error returns "access: access denied: ACTION on RESOURCE: REASON".
func (e *DeniedError) Error() string {
	return "access: access denied: " + strconv.Quote(e.Action) + " on " + strconv.Quote(e.Resource) + ": " + e.Reason
}

// Unwrap returns ErrAccessDenied.
func (e *DeniedError) Unwrap() error { return ErrAccessDenied }

// PolicyError describes a policy configuration error. It wraps
// ErrInvalidPolicy.
type PolicyError struct {
	Source string // file name given to ParsePolicy or LoadPolicyFile; "" for NewPolicy
	Line   int    // 1-based line in Source; 0 when unknown
	Column int    // 1-based byte column in Source; 0 when unknown
	Field  string // path of the offending field, e.g. "roles[2].inherits[0]"
	Msg    string // what is wrong
}

// Error returns "access: invalid policy: SOURCE:LINE:COLUMN: FIELD: MSG",
// leaving out the parts that are unknown.
func (e *PolicyError) Error() string {
	s := "access: invalid policy: "
	if e.Source != "" {
		s += e.Source + ":"
	}
	if e.Line > 0 {
		s += strconv.Itoa(e.Line) + ":" + strconv.Itoa(e.Column) + ":"
	}
	if e.Source != "" || e.Line > 0 {
		s += " "
	}
	if e.Field != "" {
		s += e.Field + ": "
	}
	return s + e.Msg
}

// Unwrap returns ErrInvalidPolicy.
func (e *PolicyError) Unwrap() error { return ErrInvalidPolicy }

// VerifyError reports the first bad record Verify found. It wraps one of
// ErrTampered, ErrWrongKey, ErrTornRecord or ErrTruncated (Err).
type VerifyError struct {
	File   string // the file as given to Verify
	Line   int    // 1-based line number in File
	Seq    uint64 // the record's sequence number, or the one expected there
	Reason string // why the record is bad
	Err    error  // the sentinel: ErrTampered, ErrWrongKey, ErrTornRecord or ErrTruncated
}

// String returns the one-line form "file:line seq N: why", without the
// package prefix, for command-line output.
func (e *VerifyError) String() string {
	return fmt.Sprintf("%s:%d seq %d: %s", e.File, e.Line, e.Seq, e.Reason)
}

// Error returns String with the package prefix.
func (e *VerifyError) Error() string { return "access: audit verify: " + e.String() }

// Unwrap returns the sentinel error (Err).
func (e *VerifyError) Unwrap() error { return e.Err }
