package telemetry

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzDecodeEvents: no input makes the reader fail or panic; every event it
// accepts encodes to a line it accepts again as the same event.
func FuzzDecodeEvents(f *testing.F) {
	f.Add([]byte(exampleLine + "\n"))
	f.Add([]byte(exampleLine + "\nnot json\n{}\n"))
	f.Add([]byte(`{"time":"2026-11-01T09:00:00.5+02:00","action":"access","user_id":"\u0000","data_id":"","success":false,"attempted":"rewrap","count":9}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		events, _, err := ReadEvents(context.Background(), bytes.NewReader(in))
		require.NoError(t, err, "ReadEvents(%q)", in)
		for _, e := range events {
			require.NoError(t, e.Validate(), "accepted an invalid event from %q", in)
			line, err := e.MarshalJSON()
			require.NoError(t, err, "MarshalJSON(%+v)", e)
			var back Event
			require.NoError(t, back.UnmarshalJSON(line), "re-reading %s", line)
			require.True(t, back.Time.Equal(e.Time), "time changed: %v -> %v", e.Time, back.Time)
		}
	})
}

// FuzzDecodeSpanExport: no input makes the span-export reader fail or
// panic, and whatever it returns is a valid event.
func FuzzDecodeSpanExport(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join(testdataDir, "stdouttrace.json")); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"Name":"keyward.decrypt","StartTime":"2026-11-01T09:00:00Z","Attributes":[{"Key":"keyward.count","Value":{"Type":"INT64","Value":3}}]}`))
	f.Add([]byte("{\"Name\":\"x\",\"Events\":[{\"Name\":\"keyward.access\",\"Time\":\"2026-11-01T09:00:00Z\"}]}\n}{]["))
	f.Fuzz(func(t *testing.T, in []byte) {
		events, _, err := ReadSpanExport(context.Background(), bytes.NewReader(in))
		if err != nil {
			t.Fatalf("ReadSpanExport error = %v", err)
		}
		for _, e := range events {
			if err := e.Validate(); err != nil {
				t.Fatalf("produced an invalid event: %v", err)
			}
		}
	})
}

// FuzzDecodeAny: no input makes the format-detecting reader (events, span
// exports, OTLP/JSON lines) fail or panic, and whatever it returns is a
// valid event.
func FuzzDecodeAny(f *testing.F) {
	f.Add([]byte(exampleLine + "\n"))
	f.Add([]byte(`{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"a"}}]},"scopeSpans":[{"spans":[{"name":"keyward.decrypt","startTimeUnixNano":"1793523600000000000","attributes":[{"key":"keyward.count","value":{"intValue":"7"}}],"status":{"code":2}}]}]}]}` + "\n"))
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"x","events":[{"name":"keyward.access","timeUnixNano":"-1"}]}]}]}]}`))
	f.Add([]byte(`{"Name":"keyward.decrypt","SpanContext":{},"StartTime":"2026-11-01T09:00:00Z"}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		err := DecodeAny(context.Background(), bytes.NewReader(in), func(e Event) error {
			require.NoError(t, e.Validate(), "produced an invalid event from %q", in)
			return nil
		}, nil)
		require.NoError(t, err, "DecodeAny(%q)", in)
	})
}
