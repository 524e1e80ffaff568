package telemetry

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// Action is what an [Event] did.
type Action string

// The actions of the event form.
const (
	ActionEncrypt Action = "encrypt"
	ActionDecrypt Action = "decrypt"
	// ActionAccess is an authorization decision; Success false means denied,
	// and Event.Attempted may name the action it was about.
	ActionAccess  Action = "access"
	ActionRotate  Action = "rotate"
	ActionRewrap  Action = "rewrap"
	ActionDestroy Action = "destroy"
)

// Valid reports whether a is one of the defined actions.
func (a Action) Valid() bool {
	switch a {
	case ActionEncrypt, ActionDecrypt, ActionAccess, ActionRotate, ActionRewrap, ActionDestroy:
		return true
	}
	return false
}

// SpanName returns the span and span-event name of the action,
// "keyward." + a.
func (a Action) SpanName() string {
	switch a {
	case ActionEncrypt:
		return SpanEncrypt
	case ActionDecrypt:
		return SpanDecrypt
	case ActionAccess:
		return SpanAccess
	case ActionRotate:
		return SpanRotate
	case ActionRewrap:
		return SpanRewrap
	case ActionDestroy:
		return SpanDestroy
	}
	return "keyward." + string(a)
}

// actionFromSpanName is the inverse of SpanName for the defined actions.
func actionFromSpanName(name string) (Action, bool) {
	switch name {
	case SpanEncrypt:
		return ActionEncrypt, true
	case SpanDecrypt:
		return ActionDecrypt, true
	case SpanAccess:
		return ActionAccess, true
	case SpanRotate:
		return ActionRotate, true
	case SpanRewrap:
		return ActionRewrap, true
	case SpanDestroy:
		return ActionDestroy, true
	}
	return "", false
}

// Event is one use of keys or protected data: the unit the anomaly analyzer
// works on and the record of the JSON Lines event form, one object per line:
//
//	{"time":"2026-11-01T09:00:00Z","action":"decrypt","user_id":"u1042","role":"analyst","data_id":"patients/42/ssn","key_id":"3","success":true,"source":"10.1.2.3"}
//
// time, action, user_id, data_id and success are always written and required
// on reading; role, key_id, source, attempted and count are optional and
// omitted when empty. An event never holds plaintext, key material or
// ciphertext.
type Event struct {
	// Time is when it happened; written in UTC, RFC 3339 with as many
	// fractional digits as needed.
	Time time.Time
	// Action is what was done.
	Action Action
	// UserID is the principal (possibly pseudonymized, see [Pseudonymizer]).
	UserID string
	// Role is the principal's role, if known.
	Role string
	// DataID names the protected value, e.g. "patients/42/ssn".
	DataID string
	// KeyID is the data key ID in decimal, if known.
	KeyID string
	// Success is false for a denied access or a failed operation (a token
	// that does not authenticate, an unknown or destroyed key).
	Success bool
	// Source is the network source of the request, if known.
	Source string
	// Attempted is, for an access event, the action the decision was about.
	Attempted Action
	// Count is the number of values the event stands for when one statement
	// handled many (JSON "count", omitted when 0 or 1; 0 means 1). The
	// analyzer weighs the event by it, and for bulk reads takes the values
	// as distinct.
	Count int
}

// N returns the number of values the event stands for: Count, at least 1.
func (e *Event) N() int {
	if e.Count > 1 {
		return e.Count
	}
	return 1
}

// Validate reports whether e can be written: a non-zero time, a valid action
// and, if set, a valid attempted action and a non-negative count.
func (e *Event) Validate() error {
	if e.Time.IsZero() {
		return fmt.Errorf("%w: time missing", ErrMalformedEvent)
	}
	if !timeInRange(e.Time) {
		return fmt.Errorf("%w: time out of range", ErrMalformedEvent)
	}
	if !e.Action.Valid() {
		return fmt.Errorf("%w: %q", ErrUnknownAction, e.Action)
	}
	if e.Attempted != "" && !e.Attempted.Valid() {
		return fmt.Errorf("%w: attempted %q", ErrUnknownAction, e.Attempted)
	}
	if e.Count < 0 {
		return fmt.Errorf("%w: negative count", ErrMalformedEvent)
	}
	return nil
}

// AppendJSON appends the JSON form of e (without a newline) to dst. It does
// not allocate when dst has room.
func (e *Event) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"time":"`...)
	dst = e.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","action":`...)
	dst = appendString(dst, string(e.Action))
	dst = append(dst, `,"user_id":`...)
	dst = appendString(dst, e.UserID)
	if e.Role != "" {
		dst = append(dst, `,"role":`...)
		dst = appendString(dst, e.Role)
	}
	dst = append(dst, `,"data_id":`...)
	dst = appendString(dst, e.DataID)
	if e.KeyID != "" {
		dst = append(dst, `,"key_id":`...)
		dst = appendString(dst, e.KeyID)
	}
	dst = append(dst, `,"success":`...)
	dst = strconv.AppendBool(dst, e.Success)
	if e.Source != "" {
		dst = append(dst, `,"source":`...)
		dst = appendString(dst, e.Source)
	}
	if e.Attempted != "" {
		dst = append(dst, `,"attempted":`...)
		dst = appendString(dst, string(e.Attempted))
	}
	if e.Count > 1 {
		dst = append(dst, `,"count":`...)
		dst = strconv.AppendInt(dst, int64(e.Count), 10)
	}
	return append(dst, '}')
}

// MarshalJSON returns the JSON form of e.
func (e Event) MarshalJSON() ([]byte, error) {
	return e.AppendJSON(make([]byte, 0, 192)), nil
}

// wireEvent is the decoding form: pointers tell a missing field from an
// empty one.
type wireEvent struct {
	Time      *string `json:"time"`
	Action    *string `json:"action"`
	UserID    *string `json:"user_id"`
	Role      string  `json:"role"`
	DataID    *string `json:"data_id"`
	KeyID     string  `json:"key_id"`
	Success   *bool   `json:"success"`
	Source    string  `json:"source"`
	Attempted string  `json:"attempted"`
	Count     *int    `json:"count"`
}

// UnmarshalJSON decodes the JSON form, ignoring unknown fields. A missing
// required field, a wrong type, a time that is not RFC 3339 or an unknown
// action is an error wrapping [ErrMalformedEvent] or [ErrUnknownAction].
func (e *Event) UnmarshalJSON(b []byte) error {
	var w wireEvent
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformedEvent, jsonErrText(err))
	}
	switch {
	case w.Time == nil:
		return fmt.Errorf("%w: time missing", ErrMalformedEvent)
	case w.Action == nil:
		return fmt.Errorf("%w: action missing", ErrMalformedEvent)
	case w.UserID == nil:
		return fmt.Errorf("%w: user_id missing", ErrMalformedEvent)
	case w.DataID == nil:
		return fmt.Errorf("%w: data_id missing", ErrMalformedEvent)
	case w.Success == nil:
		return fmt.Errorf("%w: success missing", ErrMalformedEvent)
	}
	t, err := time.Parse(time.RFC3339Nano, *w.Time)
	if err != nil {
		return fmt.Errorf("%w: time is not RFC 3339", ErrMalformedEvent)
	}
	if !timeInRange(t) {
		return fmt.Errorf("%w: time out of range", ErrMalformedEvent)
	}
	out := Event{
		Time:      t,
		Action:    Action(*w.Action),
		UserID:    *w.UserID,
		Role:      w.Role,
		DataID:    *w.DataID,
		KeyID:     w.KeyID,
		Success:   *w.Success,
		Source:    w.Source,
		Attempted: Action(w.Attempted),
	}
	if !out.Action.Valid() {
		return fmt.Errorf("%w: %q", ErrUnknownAction, clip(*w.Action))
	}
	if out.Attempted != "" && !out.Attempted.Valid() {
		return fmt.Errorf("%w: attempted %q", ErrUnknownAction, clip(w.Attempted))
	}
	if w.Count != nil {
		if *w.Count < 1 {
			return fmt.Errorf("%w: count must be at least 1", ErrMalformedEvent)
		}
		out.Count = *w.Count
	}
	*e = out
	return nil
}

// timeInRange reports whether t, in UTC, has a four-digit year, so that its
// RFC 3339 form can be read back.
func timeInRange(t time.Time) bool {
	y := t.UTC().Year()
	return y >= 0 && y <= 9999
}

// jsonErrText describes a decoding error without echoing input values.
func jsonErrText(err error) string {
	switch err := err.(type) {
	case *json.UnmarshalTypeError:
		return "field " + err.Field + " has the wrong type"
	case *json.SyntaxError:
		return "invalid JSON at offset " + strconv.FormatInt(err.Offset, 10)
	}
	return "invalid JSON"
}

// clip shortens an echoed input value so error messages stay one short line.
func clip(s string) string {
	const max = 32
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "..."
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
