package telemetry

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
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
	// Service is the service.name of the span's resource: the Client of
	// events that carry no [AttrClient]. The SDK's default
	// "unknown_service:..." names are ignored.
	Service string
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
		e := Event{Time: ev.Time, Action: a, Success: true, Client: s.service()}
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
	e := Event{Time: s.Start, Action: a, Success: !s.Failed, Client: s.service()}
	fillEvent(&e, s.Attributes)
	return append(dst, e)
}

func (s *SpanData) service() string {
	if strings.HasPrefix(s.Service, "unknown_service") {
		return ""
	}
	return s.Service
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
		case AttrResource:
			e.Resource = kv.Value.String()
		case AttrClient:
			e.Client = kv.Value.String()
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

// MaxObjectBytes is the largest span object [DecodeSpanExport] accepts,
// and the longest OTLP/JSON line [DecodeAny] accepts; a larger one is
// reported and skipped.
const MaxObjectBytes = 16 << 20

// DecodeSpanExport reads OpenTelemetry JSON span exports as written by the
// stdouttrace exporter (one object per line, or indented objects one after
// another), converts each span with [AppendSpanEvents] and calls fn with
// every event. An object that cannot be decoded is reported to bad (which
// may be nil) with the line it starts on and skipped; after text that is not
// JSON, reading resumes at the next line that starts with "{". Errors are
// those of r, fn and ctx.
func DecodeSpanExport(ctx context.Context, r io.Reader, fn func(Event) error, bad func(*LineError)) error {
	var sd SpanData
	return decodeUnits(ctx, newObjects(r), func(obj []byte, dst []Event) ([]Event, error) {
		if err := decodeSpan(obj, &sd); err != nil {
			return dst, err
		}
		return AppendSpanEvents(dst, &sd), nil
	}, fn, bad)
}

// ReadSpanExport reads a whole span export; see [DecodeSpanExport]. It
// returns the events, one [LineError] per skipped object, and an error only
// if r or ctx failed.
func ReadSpanExport(ctx context.Context, r io.Reader) ([]Event, []*LineError, error) {
	return collectEvents(ctx, r, DecodeSpanExport)
}

// objects is the unitReader of concatenated JSON values: a json.Decoder
// reads them, a counting reader under it records where lines start, and
// after a syntax error a new decoder resumes at the next line starting with
// "{".
type objects struct {
	base *bufio.Reader
	cnt  *lineCounter
	dec  *json.Decoder
	done bool
}

// lineCounter reads pending, then r, remembering the offsets of newlines
// the decoder has not yet consumed; it fails a read that would make one
// value longer than MaxObjectBytes.
type lineCounter struct {
	pending []byte
	r       io.Reader
	off     int64   // bytes read so far
	nl      []int64 // offsets of newlines not yet pruned
	lines   int     // newlines pruned
	valueAt int64   // where the current value started (for the size limit)
}

var errTooLarge = fmt.Errorf("%w: object larger than %d bytes", ErrMalformedSpan, MaxObjectBytes)

func (c *lineCounter) Read(p []byte) (n int, err error) {
	// The decoder reads only while its current value is incomplete, so
	// everything since valueAt belongs to that value (and the space before
	// it): reading at most MaxObjectBytes+1 of it is enough to tell.
	room := c.valueAt + MaxObjectBytes + 1 - c.off
	if room <= 0 {
		return 0, errTooLarge
	}
	if int64(len(p)) > room {
		p = p[:room]
	}
	if len(c.pending) > 0 {
		n = copy(p, c.pending)
		c.pending = c.pending[n:]
	} else {
		n, err = c.r.Read(p)
	}
	for i, b := range p[:n] {
		if b == '\n' {
			c.nl = append(c.nl, c.off+int64(i))
		}
	}
	c.off += int64(n)
	return n, err
}

// lineAt returns the 1-based line of offset off (not before the last prune).
func (c *lineCounter) lineAt(off int64) int {
	n := 0
	for n < len(c.nl) && c.nl[n] < off {
		n++
	}
	return c.lines + n + 1
}

// prune forgets the newlines before off, the end of a value.
func (c *lineCounter) prune(off int64) {
	n := 0
	for n < len(c.nl) && c.nl[n] < off {
		n++
	}
	c.lines += n
	c.nl = append(c.nl[:0], c.nl[n:]...)
	c.valueAt = off
}

func newObjects(r io.Reader) *objects {
	o := &objects{base: bufio.NewReaderSize(r, 64<<10)}
	o.cnt = &lineCounter{r: o.base}
	o.dec = json.NewDecoder(o.cnt)
	return o
}

func (o *objects) next() ([]byte, int, error) {
	if o.done {
		return nil, 0, io.EOF
	}
	var raw json.RawMessage
	before := o.dec.InputOffset()
	err := o.dec.Decode(&raw)
	if err == nil {
		end := o.dec.InputOffset()
		line := o.cnt.lineAt(end - int64(len(raw)))
		o.cnt.prune(end)
		return raw, line, nil
	}
	if err == io.EOF {
		o.done = true
		return nil, 0, io.EOF
	}
	// The decoder stopped at the value that failed: find where it starts,
	// report it there, and resume after it.
	held, _ := io.ReadAll(o.dec.Buffered())
	trimmed := bytes.TrimLeft(held, " \t\r\n")
	line := o.cnt.lineAt(before + int64(len(held)-len(trimmed)))
	var cause error
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		cause = fmt.Errorf("%w: %s", ErrMalformedSpan, jsonErrText(syn))
	case errors.Is(err, io.ErrUnexpectedEOF):
		cause = fmt.Errorf("%w: object not terminated", ErrMalformedSpan)
	case errors.Is(err, errTooLarge):
		cause = errTooLarge
	default:
		return nil, line, err // the reader's own error
	}
	if err := o.resync(append(trimmed, o.cnt.pending...), line); err != nil {
		return nil, line, err
	}
	return nil, line, &skipError{cause}
}

// resync restarts decoding after a bad value: data is what was read but not
// consumed from the bad value's start on, line the line it starts on. The
// rest of that line and every following line that does not start with "{"
// are skipped.
func (o *objects) resync(data []byte, line int) error {
	for {
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			data = data[i+1:]
		} else {
			data = nil
			if err := skipLine(o.base); err == io.EOF {
				o.done = true
				return nil
			} else if err != nil {
				return err
			}
		}
		line++
		if len(data) > 0 {
			if data[0] == '{' {
				break
			}
		} else if b, err := o.base.Peek(1); err != nil || b[0] == '{' {
			break
		}
	}
	o.cnt = &lineCounter{pending: data, r: o.base, lines: line - 1}
	o.dec = json.NewDecoder(o.cnt)
	return nil
}

// skipLine consumes br up to and including the next newline; io.EOF means
// there was none.
func skipLine(br *bufio.Reader) error {
	for {
		_, err := br.ReadSlice('\n')
		if err != bufio.ErrBufferFull {
			return err
		}
	}
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
	Resource      []kvJSON
}

// serviceName is the resource attribute naming the service (semantic
// conventions).
const serviceName attribute.Key = "service.name"

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
	for _, kv := range decodeAttrs(sj.Resource) {
		if kv.Key == serviceName {
			sd.Service = kv.Value.AsString()
		}
	}
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

// readAttr reports whether the readers keep attribute k: the ones that
// map to event fields, and the resource's service name.
func readAttr(k attribute.Key) bool {
	switch k {
	case AttrUserID, AttrUserRoles, AttrDataID, AttrKeyID, AttrOutcome, AttrSource, AttrAttempted, AttrCount, AttrResource, AttrClient, serviceName:
		return true
	}
	return false
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
		if !readAttr(attribute.Key(kv.Key)) {
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
