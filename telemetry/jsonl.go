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

// DecodeEvents reads the JSON Lines event form from r and calls fn with
// each event in input order. Blank lines are skipped. A malformed line is
// reported to bad (which may be nil) with its line number and skipped; it
// never stops the rest of the input. DecodeEvents returns the first error of
// r, of fn, or of ctx (checked every 1024 lines), and nil at the end of input.
func DecodeEvents(ctx context.Context, r io.Reader, fn func(Event) error, bad func(*LineError)) error {
	lr := newLineReader(r, MaxLineBytes)
	for {
		line, tooLong, err := lr.next()
		if err == io.EOF {
			return nil
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
			report(bad, lr.line, ErrLineTooLong)
			continue
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var e Event
		if err := e.UnmarshalJSON(line); err != nil {
			report(bad, lr.line, err)
			continue
		}
		if err := fn(e); err != nil {
			return err
		}
	}
}

// ReadEvents reads all events of the JSON Lines form from r. It returns the
// valid events, one [LineError] per skipped line, and an error only if r (or
// ctx) failed; the events read before that are still returned.
func ReadEvents(ctx context.Context, r io.Reader) ([]Event, []*LineError, error) {
	var events []Event
	var bad []*LineError
	err := DecodeEvents(ctx, r, func(e Event) error {
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
		buf = events[i].AppendJSON(buf)
		buf = append(buf, '\n')
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

// DecodeAny reads either input form the analyzer accepts: the JSON Lines
// event form, or an OpenTelemetry JSON span export (the stdouttrace
// exporter's output, compact or indented). It looks at the first object to
// tell them apart, then behaves as [DecodeEvents] or [DecodeSpanExport].
func DecodeAny(ctx context.Context, r io.Reader, fn func(Event) error, bad func(*LineError)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	if looksLikeSpanExport(br) {
		return DecodeSpanExport(ctx, br, fn, bad)
	}
	return DecodeEvents(ctx, br, fn, bad)
}

// looksLikeSpanExport peeks at the start of the input: the exporter writes
// each span object with "Name" first and "SpanContext" next, while an event
// line starts with "time".
func looksLikeSpanExport(br *bufio.Reader) bool {
	head, _ := br.Peek(4096)
	head = bytes.TrimLeft(head, " \t\r\n")
	if len(head) == 0 || head[0] != '{' {
		return false
	}
	head = bytes.TrimLeft(head[1:], " \t\r\n")
	return bytes.HasPrefix(head, []byte(`"Name"`)) && bytes.Contains(head, []byte(`"SpanContext"`))
}

func report(bad func(*LineError), line int, err error) {
	if bad != nil {
		bad(&LineError{Line: line, Err: err})
	}
}
