package telemetry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
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
		return spanEncrypt
	case ActionDecrypt:
		return spanDecrypt
	case ActionAccess:
		return spanAccess
	case ActionRotate:
		return spanRotate
	case ActionRewrap:
		return spanRewrap
	case ActionDestroy:
		return spanDestroy
	}
	return "keyward." + string(a)
}

// actionFromSpanName is the inverse of SpanName for the defined actions.
func actionFromSpanName(name string) (Action, bool) {
	switch name {
	case spanEncrypt:
		return ActionEncrypt, true
	case spanDecrypt:
		return ActionDecrypt, true
	case spanAccess:
		return ActionAccess, true
	case spanRotate:
		return ActionRotate, true
	case spanRewrap:
		return ActionRewrap, true
	case spanDestroy:
		return ActionDestroy, true
	}
	return "", false
}

// Event is one use of keys or protected data: the unit the anomaly analyzer
// works on and the record of the JSON Lines event form, one object per line:
//
//	{"time":"2026-11-01T09:00:00Z","action":"decrypt","user_id":"u1042","role":"analyst","data_id":"patients/42/ssn","key_id":"3","success":true,"source":"10.1.2.3"}
//
// The fields of the JSON form:
//
//	field      required  meaning
//	time       yes       RFC 3339, written in UTC with as many fractional digits as needed
//	action     yes       encrypt, decrypt, access, rotate, rewrap or destroy
//	user_id    yes       the principal (possibly pseudonymized)
//	data_id    yes       the protected value or the object of the action
//	success    yes       false for a denied access or a failed operation
//	role       no        the principal's role: the peer group the analyzer compares it with
//	resource   no        the table/column (or keyring) the data ID belongs to; see [Event.ResourceName]
//	key_id     no        data key ID, decimal string
//	source     no        network source of the request (an IP address, or host name)
//	client     no        the service or client application the request came through
//	attempted  no        for access: the action decided on
//	count      no        values the event stands for when one statement handled many (omitted means 1)
//
// Optional fields are omitted when empty; readers ignore unknown fields. An
// event never holds plaintext, key material or ciphertext.
type Event struct {
	// Time is when it happened.
	Time time.Time
	// Action is what was done.
	Action Action
	// UserID is the principal (possibly pseudonymized, see [Pseudonymizer]).
	UserID string
	// Role is the principal's role, if known. The anomaly analyzer takes
	// the identities of one role as a peer group.
	Role string
	// DataID names the protected value, e.g. "patients/42/ssn" (the GORM
	// form is "table/primary key/column").
	DataID string
	// Resource is the resource the data ID belongs to, e.g.
	// "patients/ssn": the table and column of a GORM field, or the keyring
	// of a keyring-level operation. Empty means "derive it from DataID"
	// (see [Event.ResourceName]); a caller whose data IDs have another
	// shape sets it.
	Resource string
	// KeyID is the data key ID in decimal, if known.
	KeyID string
	// Success is false for a denied access or a failed operation (a token
	// that does not authenticate, an unknown or destroyed key).
	Success bool
	// Source is the network source of the request, if known: an IP
	// address (the analyzer groups addresses into networks) or a host name.
	Source string
	// Client is the service or client application name the request came
	// through, if known (for spans: [AttrClient], else the resource's
	// service.name).
	Client string
	// Attempted is, for an access event, the action the decision was about.
	Attempted Action
	// Count is the number of values the event stands for when one statement
	// handled many (JSON "count", omitted when 0 or 1; 0 means 1). The
	// analyzer weighs the event by it, and for bulk reads takes the values
	// as distinct.
	Count int
}

// ResourceName returns the resource the event's data ID belongs to:
// Resource if set, else the first and last "/"-separated parts of DataID,
// so "table/pk/column" gives "table/column" and "table/column" stays as it
// is; a data ID without "/" is its own resource.
func (e *Event) ResourceName() string {
	if e.Resource != "" {
		return e.Resource
	}
	return resourceOf(e.DataID)
}

func resourceOf(id string) string {
	i := strings.IndexByte(id, '/')
	if i < 0 {
		return id
	}
	j := strings.LastIndexByte(id, '/')
	if i == j {
		return id
	}
	return id[:i] + id[j:]
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

// eventJSON is the JSON form, field by field in the order written.
type eventJSON struct {
	Time      string `json:"time"`
	Action    Action `json:"action"`
	UserID    string `json:"user_id"`
	Role      string `json:"role,omitempty"`
	DataID    string `json:"data_id"`
	Resource  string `json:"resource,omitempty"`
	KeyID     string `json:"key_id,omitempty"`
	Success   bool   `json:"success"`
	Source    string `json:"source,omitempty"`
	Client    string `json:"client,omitempty"`
	Attempted Action `json:"attempted,omitempty"`
	Count     int    `json:"count,omitempty"`
}

func (e *Event) wire() eventJSON {
	w := eventJSON{
		Time: e.Time.UTC().Format(time.RFC3339Nano), Action: Action(validUTF8(string(e.Action))),
		UserID: validUTF8(e.UserID), Role: validUTF8(e.Role), DataID: validUTF8(e.DataID),
		Resource: validUTF8(e.Resource), KeyID: validUTF8(e.KeyID), Success: e.Success,
		Source: validUTF8(e.Source), Client: validUTF8(e.Client), Attempted: Action(validUTF8(string(e.Attempted))),
	}
	if e.Count > 1 {
		w.Count = e.Count
	}
	return w
}

// validUTF8 returns s with each run of bytes that is not UTF-8 replaced by
// U+FFFD, so that the JSON form of an event does not depend on how a Go
// release of encoding/json writes invalid UTF-8 (an escape or the rune).
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// appendLine appends the JSON form of e and a newline to dst. Strings are
// written as encoding/json writes them (invalid UTF-8 first made valid by
// validUTF8), except that <, > and & are kept
// as they are (the form is not meant for HTML).
func (e *Event) appendLine(dst []byte) ([]byte, error) {
	buf := bytes.NewBuffer(dst)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(e.wire())
	return buf.Bytes(), err
}

// MarshalJSON returns the JSON form of e (one line of the JSON Lines form,
// without the newline).
func (e Event) MarshalJSON() ([]byte, error) {
	b, err := e.appendLine(nil)
	if err != nil {
		return nil, err
	}
	return b[:len(b)-1], nil
}

// wireEvent is the decoding form: pointers tell a missing field from an
// empty one.
type wireEvent struct {
	Time      *string `json:"time"`
	Action    *string `json:"action"`
	UserID    *string `json:"user_id"`
	Role      string  `json:"role"`
	DataID    *string `json:"data_id"`
	Resource  string  `json:"resource"`
	KeyID     string  `json:"key_id"`
	Success   *bool   `json:"success"`
	Source    string  `json:"source"`
	Client    string  `json:"client"`
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
		Resource:  w.Resource,
		Source:    w.Source,
		Client:    w.Client,
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
