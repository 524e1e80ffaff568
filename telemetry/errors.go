package telemetry

import (
	"errors"
	"strconv"
)

// Sentinel errors. Errors returned by this package wrap one of them, so
// callers test with [errors.Is].
var (
	// ErrMalformedEvent reports an event that is not valid JSON of the event
	// form, lacks a required field, or has a field of the wrong type.
	ErrMalformedEvent = errors.New("telemetry: malformed event")
	// ErrUnknownAction reports an action that is not one of the [Action] values.
	ErrUnknownAction = errors.New("telemetry: unknown action")
	// ErrMalformedSpan reports a span export object that cannot be decoded.
	ErrMalformedSpan = errors.New("telemetry: malformed span export")
	// ErrLineTooLong reports an input line longer than [MaxLineBytes].
	ErrLineTooLong = errors.New("telemetry: line too long")
	// ErrKeySize reports a pseudonymization key that is not 32 bytes.
	ErrKeySize = errors.New("telemetry: pseudonymization key must be 32 bytes")
	// ErrClosed reports a write to a closed sink.
	ErrClosed = errors.New("telemetry: sink closed")
	// ErrInvalidOption reports an option that is invalid or contradicts
	// another one.
	ErrInvalidOption = errors.New("telemetry: invalid option")
)

// LineError is a problem with one line (or, for span exports, with the object
// starting on that line) of an input that is otherwise read on: the bad line
// is skipped and reading continues.
type LineError struct {
	// Line is the 1-based line number.
	Line int
	// Err is the cause; it wraps one of the sentinel errors.
	Err error
}

// Error returns "telemetry: line N: cause".
func (e *LineError) Error() string {
	return "telemetry: line " + strconv.Itoa(e.Line) + ": " + trimPrefix(e.Err.Error())
}

// Unwrap returns the cause.
func (e *LineError) Unwrap() error { return e.Err }

func trimPrefix(s string) string {
	const p = "telemetry: "
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}
