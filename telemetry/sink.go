package telemetry

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
)

// Sink receives usage events. Implementations must be safe for concurrent
// use and should be quick: [LogDecryptionEvent] and [Instrumentation.Record]
// call them synchronously on the caller's goroutine.
type Sink interface {
	WriteEvent(ctx context.Context, e Event) error
}

// SinkFunc adapts a function to [Sink].
type SinkFunc func(ctx context.Context, e Event) error

var _ Sink = SinkFunc(nil)

// WriteEvent calls f.
func (f SinkFunc) WriteEvent(ctx context.Context, e Event) error { return f(ctx, e) }

// WriterSink writes events in the JSON Lines form to an io.Writer, one
// Write call per event. It is safe for concurrent use.
type WriterSink struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

var _ Sink = (*WriterSink)(nil)

// NewWriterSink returns a sink writing to w.
func NewWriterSink(w io.Writer) *WriterSink {
	return &WriterSink{w: w, buf: make([]byte, 0, 256)}
}

// WriteEvent writes e as one line. An invalid event (see [Event.Validate])
// is an error and nothing is written.
func (s *WriterSink) WriteEvent(ctx context.Context, e Event) error {
	if err := e.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.buf, err = e.appendLine(s.buf[:0]); err != nil {
		return err
	}
	_, err = s.w.Write(s.buf)
	return err
}

// Defaults of [FileSink].
const (
	DefaultMaxBytes   = 64 << 20
	DefaultMaxBackups = 5
)

// FileOption configures a [FileSink].
type FileOption interface {
	apply(*fileConfig) error
}

// fileOptionFunc adapts a function to FileOption.
type fileOptionFunc func(*fileConfig) error

func (f fileOptionFunc) apply(c *fileConfig) error { return f(c) }

type fileConfig struct {
	maxBytes   int64
	maxBackups int
	set        [2]bool // option given: max bytes, max backups
}

// WithMaxBytes sets the size at which the file is rotated (default
// [DefaultMaxBytes]); it must be positive.
func WithMaxBytes(n int64) FileOption {
	return fileOptionFunc(func(c *fileConfig) error {
		if n <= 0 {
			return fmt.Errorf("%w: max bytes must be positive", ErrInvalidOption)
		}
		if c.set[0] {
			return fmt.Errorf("%w: WithMaxBytes given twice", ErrInvalidOption)
		}
		c.maxBytes, c.set[0] = n, true
		return nil
	})
}

// WithMaxBackups sets how many rotated files are kept (default
// [DefaultMaxBackups]); 0 keeps none, so a full file is simply started anew.
func WithMaxBackups(n int) FileOption {
	return fileOptionFunc(func(c *fileConfig) error {
		if n < 0 {
			return fmt.Errorf("%w: max backups must not be negative", ErrInvalidOption)
		}
		if c.set[1] {
			return fmt.Errorf("%w: WithMaxBackups given twice", ErrInvalidOption)
		}
		c.maxBackups, c.set[1] = n, true
		return nil
	})
}

// FileSink appends events in the JSON Lines form to a file (mode 0600),
// rotating it by size: when a line would take the file past the maximum,
// the file is renamed to PATH.1 (PATH.1 to PATH.2, and so on, dropping the
// oldest beyond the backup count) and a new file is started. A line is never
// split across files. It is safe for concurrent use; each event is one write
// system call, so a crash loses at most the event being written.
type FileSink struct {
	mu     sync.Mutex
	path   string
	cfg    fileConfig
	f      *os.File
	size   int64
	buf    []byte
	closed bool
}

var _ Sink = (*FileSink)(nil)

// NewFileSink opens (creating if needed) the file at path for appending.
func NewFileSink(path string, opts ...FileOption) (*FileSink, error) {
	cfg := fileConfig{maxBytes: DefaultMaxBytes, maxBackups: DefaultMaxBackups}
	for _, o := range opts {
		if err := o.apply(&cfg); err != nil {
			return nil, err
		}
	}
	s := &FileSink{path: path, cfg: cfg, buf: make([]byte, 0, 256)}
	if err := s.open(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *FileSink) open() error {
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("telemetry: open event file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("telemetry: open event file: %w", err)
	}
	s.f, s.size = f, st.Size()
	return nil
}

// WriteEvent appends e as one line, rotating first if needed. An invalid
// event (see [Event.Validate]) is an error and nothing is written; after
// Close the error is [ErrClosed].
func (s *FileSink) WriteEvent(ctx context.Context, e Event) error {
	if err := e.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.f == nil { // a failed rotation left no file open
		if err := s.open(); err != nil {
			return err
		}
	}
	var err error
	if s.buf, err = e.appendLine(s.buf[:0]); err != nil {
		return err
	}
	if s.size > 0 && s.size+int64(len(s.buf)) > s.cfg.maxBytes {
		if err := s.rotate(); err != nil {
			return err
		}
	}
	n, err := s.f.Write(s.buf)
	s.size += int64(n)
	if err != nil {
		return fmt.Errorf("telemetry: write event: %w", err)
	}
	return nil
}

func (s *FileSink) rotate() error {
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("telemetry: rotate event file: %w", err)
	}
	s.f = nil
	if s.cfg.maxBackups == 0 {
		if err := os.Remove(s.path); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("telemetry: rotate event file: %w", err)
		}
	} else {
		for i := s.cfg.maxBackups - 1; i >= 1; i-- {
			err := os.Rename(s.backup(i), s.backup(i+1))
			if err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("telemetry: rotate event file: %w", err)
			}
		}
		if err := os.Rename(s.path, s.backup(1)); err != nil {
			return fmt.Errorf("telemetry: rotate event file: %w", err)
		}
	}
	return s.open()
}

func (s *FileSink) backup(i int) string { return s.path + "." + strconv.Itoa(i) }

// Sync commits the file to stable storage.
func (s *FileSink) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	return s.f.Sync()
}

// Close closes the file. Later writes fail with [ErrClosed]; a second Close
// returns nil.
func (s *FileSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.f == nil {
		return nil
	}
	return s.f.Close()
}
