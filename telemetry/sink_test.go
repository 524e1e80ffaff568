package telemetry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestFileSinkRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	lineLen := len(exampleLine) + 1
	s, err := NewFileSink(path, WithMaxBytes(int64(3*lineLen)), WithMaxBackups(2))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		if err := s.WriteEvent(ctx, exampleEvent); err != nil {
			t.Fatalf("WriteEvent #%d = %v", i, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// 10 lines, 3 per file: current has 1, .1 and .2 have 3 each, the
	// oldest 3 were dropped.
	for name, lines := range map[string]int{"events.jsonl": 1, "events.jsonl.1": 3, "events.jsonl.2": 3} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := bytes.Count(b, []byte("\n")); got != lines || len(b) != lines*lineLen {
			t.Errorf("%s has %d lines (%d bytes), want %d whole lines", name, got, len(b), lines)
		}
		st, _ := os.Stat(filepath.Join(dir, name))
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode = %v, want 0600", name, st.Mode().Perm())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "events.jsonl.3")); !os.IsNotExist(err) {
		t.Errorf("events.jsonl.3 exists (err %v), want only 2 backups", err)
	}
	if err := s.WriteEvent(ctx, exampleEvent); !errors.Is(err, ErrClosed) {
		t.Errorf("WriteEvent after Close = %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestFileSinkAppendsAndNoBackups(t *testing.T) {
	path := filepath.Join(t.TempDir(), "e.jsonl")
	if err := os.WriteFile(path, []byte(exampleLine+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := NewFileSink(path, WithMaxBytes(int64(2*(len(exampleLine)+1))), WithMaxBackups(0))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := s.WriteEvent(context.Background(), exampleEvent); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	events, bad, err := ReadEvents(context.Background(), mustOpen(t, path))
	if err != nil || len(bad) != 0 || len(events) != 2 {
		t.Errorf("file holds %d events (%v, %v), want 2", len(events), bad, err)
	}
	if m, _ := filepath.Glob(path + ".*"); len(m) != 0 {
		t.Errorf("backups %v, want none", m)
	}
}

func TestFileSinkConcurrent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.jsonl")
	s, err := NewFileSink(path, WithMaxBytes(8<<10), WithMaxBackups(100))
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				e := exampleEvent
				e.UserID = fmt.Sprintf("w%d", w)
				e.DataID = fmt.Sprintf("d%d", i)
				if err := s.WriteEvent(context.Background(), e); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	s.Close()
	files, _ := filepath.Glob(filepath.Join(dir, "c.jsonl*"))
	total := 0
	for _, f := range files {
		events, bad, err := ReadEvents(context.Background(), mustOpen(t, f))
		if err != nil || len(bad) != 0 {
			t.Fatalf("%s: %v %v", f, bad, err)
		}
		total += len(events)
	}
	if total != writers*each || len(files) < 2 {
		t.Errorf("%d events in %d files, want %d in several", total, len(files), writers*each)
	}
}

func TestFileSinkOptions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x")
	for _, opts := range [][]FileOption{{WithMaxBytes(0)}, {WithMaxBytes(-1)}, {WithMaxBackups(-1)},
		{WithMaxBytes(10), WithMaxBytes(20)}, {WithMaxBackups(1), WithMaxBackups(1)}} {
		if _, err := NewFileSink(path, opts...); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("NewFileSink(bad options) = %v, want ErrInvalidOption", err)
		}
	}
	if _, err := NewFileSink(filepath.Join(t.TempDir(), "no", "such", "dir", "f")); err == nil {
		t.Error("NewFileSink(missing dir) = nil error")
	}
	s, _ := NewFileSink(path)
	defer s.Close()
	if err := s.WriteEvent(context.Background(), Event{Time: time.Now(), Action: "x"}); !errors.Is(err, ErrUnknownAction) {
		t.Errorf("WriteEvent(bad action) = %v, want ErrUnknownAction", err)
	}
	if err := s.Sync(); err != nil {
		t.Errorf("Sync = %v", err)
	}
}

func TestWriterSink(t *testing.T) {
	var buf bytes.Buffer
	s := NewWriterSink(&buf)
	if err := s.WriteEvent(context.Background(), exampleEvent); err != nil {
		t.Fatal(err)
	}
	if buf.String() != exampleLine+"\n" {
		t.Errorf("WriterSink wrote %q", buf.String())
	}
	if err := s.WriteEvent(context.Background(), Event{}); err == nil {
		t.Error("WriteEvent(zero) = nil, want error")
	}
}

func mustOpen(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
