package telemetry

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
)

// MaxLineBytes is the longest line the readers accept; a longer line is
// reported as a [LineError] wrapping [ErrLineTooLong] and skipped.
const MaxLineBytes = 1 << 20

// lineReader yields the lines of r without their line ending. A line longer
// than max is returned as nil with tooLong set, after the rest of it has been
// consumed.
type lineReader struct {
	br   *bufio.Reader
	buf  []byte
	max  int
	line int
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 64<<10), max: max}
}

// next returns the next line. At the end of input it returns io.EOF; any
// other error is the reader's.
func (lr *lineReader) next() (line []byte, tooLong bool, err error) {
	lr.buf = lr.buf[:0]
	long := false
	for {
		chunk, err := lr.br.ReadSlice('\n')
		if !long {
			if len(lr.buf)+len(chunk) > lr.max+2 { // room for "\r\n"
				long = true
				lr.buf = lr.buf[:0]
			} else if err == bufio.ErrBufferFull || len(lr.buf) > 0 {
				lr.buf = append(lr.buf, chunk...)
				chunk = lr.buf
			}
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == nil:
			lr.line++
			if long {
				return nil, true, nil
			}
			return trimEOL(chunk), false, nil
		case errors.Is(err, io.EOF):
			if len(chunk) == 0 && !long && len(lr.buf) == 0 {
				return nil, false, io.EOF
			}
			lr.line++
			if long {
				return nil, true, nil
			}
			return trimEOL(chunk), false, nil
		default:
			return nil, false, err
		}
	}
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte{'\n'})
	return bytes.TrimSuffix(b, []byte{'\r'})
}

// unitReader yields the units of an input format (a line, or a JSON object
// of a span export) with the line each starts on. An error wrapping
// errSkip is a unit that is reported and skipped; io.EOF ends the input;
// any other error is the reader's and stops.
type unitReader interface {
	next() (unit []byte, line int, err error)
}

// skipError is a unit that cannot be read but does not stop the input.
type skipError struct{ err error }

func (e *skipError) Error() string { return e.err.Error() }

// decodeUnits is the loop every reader shares: it takes units from ur,
// converts each with decode (which appends the unit's events to its second
// argument), reports bad units to bad with their line and calls fn with
// every event. It checks ctx every 1024 units.
func decodeUnits(ctx context.Context, ur unitReader, decode func([]byte, []Event) ([]Event, error), fn func(Event) error, bad func(*LineError)) error {
	var events []Event
	for n := 1; ; n++ {
		unit, line, err := ur.next()
		if err == io.EOF {
			return nil
		}
		var skip *skipError
		if errors.As(err, &skip) {
			report(bad, line, skip.err)
			continue
		}
		if err != nil {
			return err
		}
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		events, err = decode(unit, events[:0])
		if err != nil {
			report(bad, line, err)
		}
		for i := range events {
			if err := fn(events[i]); err != nil {
				return err
			}
		}
		clear(events)
	}
}

// lines is the unitReader of line-based forms; blank lines are skipped.
type lines struct{ lr *lineReader }

func (l lines) next() ([]byte, int, error) {
	for {
		line, tooLong, err := l.lr.next()
		if err != nil {
			return nil, l.lr.line, err
		}
		if tooLong {
			return nil, l.lr.line, &skipError{ErrLineTooLong}
		}
		if line = bytes.TrimSpace(line); len(line) > 0 {
			return line, l.lr.line, nil
		}
	}
}

func decodeEventLine(line []byte, dst []Event) ([]Event, error) {
	var e Event
	if err := e.UnmarshalJSON(line); err != nil {
		return dst, err
	}
	return append(dst, e), nil
}

// DecodeEvents reads the JSON Lines event form from r and calls fn with
// each event in input order. Blank lines are skipped. A malformed line is
// reported to bad (which may be nil) with its line number and skipped; it
// never stops the rest of the input. DecodeEvents returns the first error of
// r, of fn, or of ctx (checked every 1024 lines), and nil at the end of input.
func DecodeEvents(ctx context.Context, r io.Reader, fn func(Event) error, bad func(*LineError)) error {
	return decodeUnits(ctx, lines{newLineReader(r, MaxLineBytes)}, decodeEventLine, fn, bad)
}

// ReadEvents reads all events of the JSON Lines form from r. It returns the
// valid events, one [LineError] per skipped line, and an error only if r (or
// ctx) failed; the events read before that are still returned.
func ReadEvents(ctx context.Context, r io.Reader) ([]Event, []*LineError, error) {
	return collectEvents(ctx, r, DecodeEvents)
}

// collect runs a streaming reader and gathers what it yields.
func collectEvents(ctx context.Context, r io.Reader, decode func(context.Context, io.Reader, func(Event) error, func(*LineError)) error) ([]Event, []*LineError, error) {
	var events []Event
	var bad []*LineError
	err := decode(ctx, r, func(e Event) error {
		events = append(events, e)
		return nil
	}, func(le *LineError) { bad = append(bad, le) })
	return events, bad, err
}

// WriteEvents writes events to w in the JSON Lines form, one per line.
func WriteEvents(w io.Writer, events []Event) error {
	buf := make([]byte, 0, 32<<10)
	for i := range events {
		if err := events[i].Validate(); err != nil {
			return err
		}
		var err error
		if buf, err = events[i].appendLine(buf); err != nil {
			return err
		}
		if len(buf) >= 28<<10 {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	if len(buf) > 0 {
		_, err := w.Write(buf)
		return err
	}
	return nil
}

// DecodeAny reads any input form the analyzer accepts: the JSON Lines
// event form, an OpenTelemetry JSON span export as the stdouttrace exporter
// writes it (compact or indented), or OTLP/JSON as the OpenTelemetry
// Collector's file exporter writes it (one ExportTraceServiceRequest per
// line). It looks at the first object to tell them apart, then behaves as
// [DecodeEvents] or [DecodeSpanExport] (OTLP lines may be as long as
// [MaxObjectBytes]).
func DecodeAny(ctx context.Context, r io.Reader, fn func(Event) error, bad func(*LineError)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	switch sniff(br) {
	case formatStdouttrace:
		return DecodeSpanExport(ctx, br, fn, bad)
	case formatOTLP:
		return decodeOTLP(ctx, br, fn, bad)
	}
	return DecodeEvents(ctx, br, fn, bad)
}

type format int

const (
	formatEvents format = iota
	formatStdouttrace
	formatOTLP
)

// sniff peeks at the start of the input: the stdouttrace exporter writes
// each span object with "Name" first and "SpanContext" next, the
// Collector's file exporter writes objects whose first field is
// "resourceSpans", and an event line starts with "time".
func sniff(br *bufio.Reader) format {
	head, _ := br.Peek(4096)
	head = bytes.TrimLeft(head, " \t\r\n")
	if len(head) == 0 || head[0] != '{' {
		return formatEvents
	}
	head = bytes.TrimLeft(head[1:], " \t\r\n")
	switch {
	case bytes.HasPrefix(head, []byte(`"Name"`)) && bytes.Contains(head, []byte(`"SpanContext"`)):
		return formatStdouttrace
	case bytes.HasPrefix(head, []byte(`"resourceSpans"`)):
		return formatOTLP
	}
	return formatEvents
}

func report(bad func(*LineError), line int, err error) {
	if bad != nil {
		bad(&LineError{Line: line, Err: err})
	}
}
