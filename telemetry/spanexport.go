package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
)

// SpanData is the part of an ended span that maps to events. The live
// analyzer fills it from an SDK span; [DecodeSpanExport] from a JSON export.
type SpanData struct {
	// Name is the span name.
	Name string
	// Start is the span start time.
	Start time.Time
	// Attributes are the span attributes.
	Attributes []attribute.KeyValue
	// Events are the span events.
	Events []SpanEvent
	// Failed is true when the span status is Error.
	Failed bool
	// DroppedEvents is the number of span events the SDK dropped over its
	// limit (128 by default).
	DroppedEvents int
}

// SpanEvent is one span event.
type SpanEvent struct {
	// Name is the event name, e.g. "keyward.decrypt".
	Name string
	// Time is when the event was recorded.
	Time time.Time
	// Attributes are the event attributes.
	Attributes []attribute.KeyValue
}

// AppendSpanEvents appends to dst the usage events one span stands for and
// returns the extended slice:
//
//   - each span event named like a keyward action ("keyward.decrypt", as
//     written by [LogDecryptionEvent] and [Instrumentation.Record]) is one
//     event, at the span event's time; attributes missing on the span event
//     (user, role, keyring, key ID, source) are taken from the span;
//   - a span named like a keyward action that has no such span events is
//     one event at the span's start time, standing for [AttrCount] values;
//   - anything else yields nothing.
//
// Span events beyond the SDK's limit per span are dropped before export and
// only counted; so that a long request cannot hide reads that way, a span
// with dropped events and at least one keyward span event yields one more
// event like its last keyward event, with no data ID and a Count of the
// dropped events.
//
// Success is read from [AttrOutcome] ("ok" is success) and, without it, is
// true for span events and the opposite of Failed for spans.
func AppendSpanEvents(dst []Event, s *SpanData) []Event {
	n := len(dst)
	for i := range s.Events {
		ev := &s.Events[i]
		a, ok := actionFromSpanName(ev.Name)
		if !ok {
			continue
		}
		e := Event{Time: ev.Time, Action: a, Success: true}
		fillEvent(&e, s.Attributes)
		fillEvent(&e, ev.Attributes)
		dst = append(dst, e)
	}
	if len(dst) > n {
		if s.DroppedEvents > 0 {
			e := dst[len(dst)-1]
			e.DataID, e.Count = "", s.DroppedEvents
			dst = append(dst, e)
		}
		return dst
	}
	a, ok := actionFromSpanName(s.Name)
	if !ok {
		return dst
	}
	e := Event{Time: s.Start, Action: a, Success: !s.Failed}
	fillEvent(&e, s.Attributes)
	return append(dst, e)
}

// fillEvent sets the fields of e that attrs carry; later calls override
// earlier ones.
func fillEvent(e *Event, attrs []attribute.KeyValue) {
	for _, kv := range attrs {
		switch kv.Key {
		case AttrUserID:
			e.UserID = kv.Value.String()
		case AttrUserRoles:
			switch kv.Value.Type() {
			case attribute.STRINGSLICE:
				if r := kv.Value.AsStringSlice(); len(r) > 0 {
					e.Role = r[0]
				}
			case attribute.STRING:
				e.Role = kv.Value.AsString()
			}
		case AttrDataID:
			e.DataID = kv.Value.String()
		case AttrKeyID:
			switch kv.Value.Type() {
			case attribute.INT64:
				if id := kv.Value.AsInt64(); id > 0 {
					e.KeyID = strconv.FormatInt(id, 10)
				}
			case attribute.STRING:
				e.KeyID = kv.Value.AsString()
			}
		case AttrOutcome:
			e.Success = kv.Value.AsString() == string(OutcomeOK)
		case AttrSource:
			e.Source = kv.Value.String()
		case AttrAttempted:
			if a := Action(kv.Value.AsString()); a.Valid() {
				e.Attempted = a
			}
		case AttrCount:
			if c := kv.Value.AsInt64(); c > 1 && c <= 1<<31 {
				e.Count = int(c)
			}
		}
	}
}

// MaxObjectBytes is the largest span object [DecodeSpanExport] accepts; a
// larger one is reported and skipped.
const MaxObjectBytes = 16 << 20

// DecodeSpanExport reads OpenTelemetry JSON span exports as written by the
// stdouttrace exporter (one object per line, or indented objects one after
// another), converts each span with [AppendSpanEvents] and calls fn with
// every event. An object that cannot be decoded is reported to bad (which
// may be nil) with the line it starts on and skipped. Errors are those of r,
// fn and ctx.
func DecodeSpanExport(ctx context.Context, r io.Reader, fn func(Event) error, bad func(*LineError)) error {
	lr := newLineReader(r, MaxLineBytes)
	var (
		obj       []byte
		depth     int
		inString  bool
		escaped   bool
		startLine int
		skipping  bool // current object too large; scan but do not keep
		garbage   int  // line with stray bytes already reported
		events    []Event
		sd        SpanData
	)
	flush := func() error {
		defer func() { obj = obj[:0] }()
		if skipping {
			skipping = false
			report(bad, startLine, fmt.Errorf("%w: object larger than %d bytes", ErrMalformedSpan, MaxObjectBytes))
			return nil
		}
		if err := decodeSpan(obj, &sd); err != nil {
			report(bad, startLine, err)
			return nil
		}
		events = AppendSpanEvents(events[:0], &sd)
		for _, e := range events {
			if err := fn(e); err != nil {
				return err
			}
		}
		return nil
	}
	for {
		line, tooLong, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if lr.line%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if tooLong {
			// A compact export puts one span per line; drop it whole.
			report(bad, lr.line, ErrLineTooLong)
			obj, depth, inString, escaped, skipping = obj[:0], 0, false, false, false
			continue
		}
		segStart := 0
		for i := 0; i < len(line); i++ {
			c := line[i]
			if depth == 0 {
				switch c {
				case ' ', '\t', '\r':
					continue
				case '{':
					depth, startLine, segStart = 1, lr.line, i
					inString, escaped = false, false
					continue
				}
				if garbage != lr.line {
					garbage = lr.line
					report(bad, lr.line, fmt.Errorf("%w: unexpected text outside an object", ErrMalformedSpan))
				}
				continue
			}
			switch {
			case escaped:
				escaped = false
			case inString:
				if c == '\\' {
					escaped = true
				} else if c == '"' {
					inString = false
				}
			case c == '"':
				inString = true
			case c == '{' || c == '[':
				depth++
			case c == '}' || c == ']':
				depth--
				if depth == 0 {
					obj = keep(obj, line[segStart:i+1], &skipping)
					if err := flush(); err != nil {
						return err
					}
				}
			}
		}
		if depth > 0 {
			obj = keep(obj, line[segStart:], &skipping)
			obj = keep(obj, []byte{'\n'}, &skipping)
		}
	}
	if depth > 0 {
		report(bad, startLine, fmt.Errorf("%w: object not terminated", ErrMalformedSpan))
	}
	return nil
}

func keep(obj, b []byte, skipping *bool) []byte {
	if *skipping {
		return obj
	}
	if len(obj)+len(b) > MaxObjectBytes {
		*skipping = true
		return obj[:0]
	}
	return append(obj, b...)
}

// ReadSpanExport reads a whole span export; see [DecodeSpanExport]. It
// returns the events, one [LineError] per skipped object, and an error only
// if r or ctx failed.
func ReadSpanExport(ctx context.Context, r io.Reader) ([]Event, []*LineError, error) {
	var events []Event
	var bad []*LineError
	err := DecodeSpanExport(ctx, r, func(e Event) error {
		events = append(events, e)
		return nil
	}, func(le *LineError) { bad = append(bad, le) })
	return events, bad, err
}

// The JSON shape of a span in a stdouttrace export (fields not needed here
// are ignored).
type spanJSON struct {
	Name       *string
	StartTime  string
	Attributes []kvJSON
	Events     []struct {
		Name       string
		Time       string
		Attributes []kvJSON
	}
	Status struct {
		Code string
	}
	DroppedEvents int
}

type kvJSON struct {
	Key   string
	Value struct {
		Type  string
		Value json.RawMessage
	}
}

func decodeSpan(b []byte, sd *SpanData) error {
	var sj spanJSON
	if err := json.Unmarshal(b, &sj); err != nil {
		return fmt.Errorf("%w: %s", ErrMalformedSpan, jsonErrText(err))
	}
	if sj.Name == nil {
		return fmt.Errorf("%w: span name missing", ErrMalformedSpan)
	}
	*sd = SpanData{Name: *sj.Name, Failed: sj.Status.Code == "Error", DroppedEvents: max(sj.DroppedEvents, 0)}
	if _, isAction := actionFromSpanName(sd.Name); isAction || len(sj.Events) > 0 {
		t, err := parseTime(sj.StartTime)
		if err != nil {
			return err
		}
		sd.Start = t
	}
	sd.Attributes = decodeAttrs(sj.Attributes)
	for _, ev := range sj.Events {
		if _, ok := actionFromSpanName(ev.Name); !ok {
			continue
		}
		t, err := parseTime(ev.Time)
		if err != nil {
			return err
		}
		sd.Events = append(sd.Events, SpanEvent{Name: ev.Name, Time: t, Attributes: decodeAttrs(ev.Attributes)})
	}
	return nil
}

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || !timeInRange(t) || t.IsZero() {
		return time.Time{}, fmt.Errorf("%w: time is not RFC 3339", ErrMalformedSpan)
	}
	return t, nil
}

// decodeAttrs converts the attributes keyward reads; values of other types
// or that do not decode are dropped.
func decodeAttrs(in []kvJSON) []attribute.KeyValue {
	var out []attribute.KeyValue
	for _, kv := range in {
		switch attribute.Key(kv.Key) {
		case AttrUserID, AttrUserRoles, AttrDataID, AttrKeyID, AttrOutcome, AttrSource, AttrAttempted, AttrCount:
		default:
			continue
		}
		raw := bytes.TrimSpace(kv.Value.Value)
		switch kv.Value.Type {
		case "STRING":
			var s string
			if json.Unmarshal(raw, &s) == nil {
				out = append(out, attribute.String(kv.Key, s))
			}
		case "INT64":
			var n int64
			if json.Unmarshal(raw, &n) == nil {
				out = append(out, attribute.Int64(kv.Key, n))
			}
		case "STRINGSLICE":
			var ss []string
			if json.Unmarshal(raw, &ss) == nil {
				out = append(out, attribute.StringSlice(kv.Key, ss))
			}
		}
	}
	return out
}
