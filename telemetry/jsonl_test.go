package telemetry

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestDecodeEventsSkipsBadLines(t *testing.T) {
	in := strings.Join([]string{
		exampleLine,
		`{"time":"2026-11-01T09:00:01Z","action":"encrypt","user_id":"u1","data_id":"d1","success":true}`,
		``,
		`not json`,
		`   `,
		`{"time":"2026-11-01T09:00:02Z","action":"nope","user_id":"u1","data_id":"d1","success":true}`,
		`{"time":"2026-11-01T09:00:03Z","action":"access","user_id":"u2","data_id":"k/pii","success":false,"attempted":"decrypt"}` + "\r",
		`{"time":"2026-11-01T09:00:04Z","action":"decrypt","user_id":"u2","data_id":"d2","success":true}`, // no final newline
	}, "\n")
	events, bad, err := ReadEvents(context.Background(), strings.NewReader(in))
	if err != nil {
		t.Fatalf("ReadEvents error = %v", err)
	}
	if len(events) != 4 {
		t.Fatalf("ReadEvents = %d events, want 4", len(events))
	}
	if events[2].Attempted != ActionDecrypt || events[3].DataID != "d2" {
		t.Errorf("events = %+v", events)
	}
	if len(bad) != 2 || bad[0].Line != 4 || bad[1].Line != 6 {
		t.Fatalf("line errors = %v, want lines 4 and 6", bad)
	}
	if !errors.Is(bad[0], ErrMalformedEvent) || !errors.Is(bad[1], ErrUnknownAction) {
		t.Errorf("line errors = %v, %v", bad[0], bad[1])
	}
	if got := bad[0].Error(); got != "telemetry: line 4: malformed event: invalid JSON at offset 2" {
		t.Errorf("LineError.Error() = %q", got)
	}
}

func TestDecodeEventsLongLine(t *testing.T) {
	long := `{"time":"2026-11-01T09:00:00Z","action":"decrypt","user_id":"` + strings.Repeat("x", MaxLineBytes) + `","data_id":"d","success":true}`
	in := exampleLine + "\n" + long + "\n" + exampleLine + "\n"
	events, bad, err := ReadEvents(context.Background(), strings.NewReader(in))
	if err != nil || len(events) != 2 || len(bad) != 1 || bad[0].Line != 2 || !errors.Is(bad[0], ErrLineTooLong) {
		t.Fatalf("ReadEvents = %d events, %v, %v; want 2 events and line 2 too long", len(events), bad, err)
	}
	// A line just under the limit is accepted, even through a reader that
	// returns one byte at a time.
	okLine := `{"time":"2026-11-01T09:00:00Z","action":"decrypt","user_id":"` + strings.Repeat("y", 100_000) + `","data_id":"d","success":true}`
	events, bad, err = ReadEvents(context.Background(), iotest.OneByteReader(strings.NewReader(okLine+"\n"+exampleLine)))
	if err != nil || len(events) != 2 || len(bad) != 0 {
		t.Fatalf("ReadEvents = %d events, %v, %v; want 2 events", len(events), bad, err)
	}
}

func TestDecodeEventsErrors(t *testing.T) {
	boom := errors.New("boom")
	in := exampleLine + "\n" + exampleLine + "\n"
	n := 0
	err := DecodeEvents(context.Background(), strings.NewReader(in), func(Event) error { n++; return boom }, nil)
	if !errors.Is(err, boom) || n != 1 {
		t.Errorf("DecodeEvents with failing fn = %v after %d, want boom after 1", err, n)
	}
	events, _, err := ReadEvents(context.Background(), io.MultiReader(strings.NewReader(in), iotest.ErrReader(boom)))
	if !errors.Is(err, boom) || len(events) != 2 {
		t.Errorf("ReadEvents with failing reader = %d events, %v; want 2 and boom", len(events), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err = ReadEvents(ctx, strings.NewReader(strings.Repeat(exampleLine+"\n", 3000)))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("ReadEvents with cancelled context = %v, want context.Canceled", err)
	}
}

func TestWriteEvents(t *testing.T) {
	var buf bytes.Buffer
	events := make([]Event, 500)
	for i := range events {
		events[i] = exampleEvent
	}
	if err := WriteEvents(&buf, events); err != nil {
		t.Fatal(err)
	}
	if want := strings.Repeat(exampleLine+"\n", 500); buf.String() != want {
		t.Errorf("WriteEvents wrote %d bytes, want %d", buf.Len(), len(want))
	}
	if err := WriteEvents(&buf, []Event{{}}); !errors.Is(err, ErrMalformedEvent) {
		t.Errorf("WriteEvents(zero event) = %v, want ErrMalformedEvent", err)
	}
}

func TestDecodeAnyEvents(t *testing.T) {
	// An event whose data ID mentions the exporter's field names is still
	// read as an event.
	in := `{"time":"2026-11-01T09:00:00Z","action":"decrypt","user_id":"u","data_id":"{\"Name\":1,\"SpanContext\":2}","success":true}` + "\n" + exampleLine
	var got []Event
	err := DecodeAny(context.Background(), strings.NewReader(in), func(e Event) error { got = append(got, e); return nil }, func(le *LineError) { t.Error(le) })
	if err != nil || len(got) != 2 || got[1].UserID != "u1042" {
		t.Errorf("DecodeAny = %v, %v", got, err)
	}
	if err := DecodeAny(context.Background(), strings.NewReader(""), func(Event) error { return nil }, nil); err != nil {
		t.Errorf("DecodeAny(empty) = %v", err)
	}
}
