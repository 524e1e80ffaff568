package telemetry

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/telemetry")

var testdataDir = filepath.Join("..", "testdata", "telemetry")

// exportSpans runs a small workload through an Instrumentation whose tracer
// provider exports with the real stdouttrace exporter, and returns what the
// exporter wrote.
func exportSpans(t *testing.T, pretty bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	opts := []stdouttrace.Option{stdouttrace.WithWriter(&buf)}
	if pretty {
		opts = append(opts, stdouttrace.WithPrettyPrint())
	}
	exp, err := stdouttrace.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	in, err := New("github.com/keyward/keyward/keyring", WithTracerProvider(tp), WithSinks())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	at := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)

	// One decrypt with its own event (as keyring does it).
	c, span := in.Start(ctx, ActionDecrypt, AttrKeyring.String("pii"), KeyID(3), in.UserID("u1042"))
	in.Record(c, Event{Time: at, Action: ActionDecrypt, UserID: "u1042", Role: "analyst", DataID: "patients/42/ssn", KeyID: "3", Success: true, Source: "10.1.2.3"})
	in.End(span, OutcomeOK, 1, nil)

	// A GORM-like batch: one span, counts, no per-field events.
	_, span = in.Start(ctx, ActionDecrypt, AttrKeyring.String("pii"), in.UserID("u7"), in.DataID("patients/*/ssn"))
	in.End(span, OutcomeOK, 3000, nil)

	// A denied access.
	_, span = in.Start(ctx, ActionAccess, in.UserID("u9"), in.DataID("keyring/pii"), AttrAttempted.String("decrypt"))
	in.End(span, OutcomeDenied, 1, nil)

	// A failed decrypt.
	_, span = in.Start(ctx, ActionDecrypt, in.UserID("u9"), in.DataID("patients/1/ssn"), KeyID(7))
	in.End(span, OutcomeError, 1, errors.New("keyring: decrypt failed"))

	// An application span carrying the spec's log events, and one that is
	// not about keyward at all.
	c, span = tp.Tracer("app").Start(ctx, "GET /patients/42")
	in.LogDecryptionEvent(c, "patients/42/dob", "u1042")
	in.LogEncryptionEvent(c, "patients/42/note", "u1042")
	span.SetAttributes(attribute.String("http.route", "/patients/{id}"))
	span.End()
	_, span = tp.Tracer("app").Start(ctx, "SELECT patients")
	span.End()

	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// checkWorkloadEvents checks the events of exportSpans' workload.
func checkWorkloadEvents(t *testing.T, events []Event) {
	t.Helper()
	if len(events) != 6 {
		for _, e := range events {
			t.Logf("%s", e.AppendJSON(nil))
		}
		t.Fatalf("got %d events, want 6", len(events))
	}
	e := events[0]
	e.Time = exampleEvent.Time
	if e != exampleEvent {
		t.Errorf("event 0 = %s, want %s", e.AppendJSON(nil), exampleLine)
	}
	if e := events[1]; e.Action != ActionDecrypt || e.UserID != "u7" || e.Count != 3000 || !e.Success || e.DataID != "patients/*/ssn" {
		t.Errorf("batch event = %s", e.AppendJSON(nil))
	}
	if e := events[2]; e.Action != ActionAccess || e.Success || e.Attempted != ActionDecrypt || e.UserID != "u9" {
		t.Errorf("denied event = %s", e.AppendJSON(nil))
	}
	if e := events[3]; e.Action != ActionDecrypt || e.Success || e.KeyID != "7" {
		t.Errorf("failed event = %s", e.AppendJSON(nil))
	}
	if e := events[4]; e.Action != ActionDecrypt || !e.Success || e.DataID != "patients/42/dob" || e.UserID != "u1042" {
		t.Errorf("logged decryption = %s", e.AppendJSON(nil))
	}
	if e := events[5]; e.Action != ActionEncrypt || e.DataID != "patients/42/note" {
		t.Errorf("logged encryption = %s", e.AppendJSON(nil))
	}
	for _, e := range events {
		if e.Time.IsZero() {
			t.Errorf("event without time: %s", e.AppendJSON(nil))
		}
	}
}

func TestDecodeSpanExportRealExporter(t *testing.T) {
	for _, pretty := range []bool{false, true} {
		t.Run(map[bool]string{false: "compact", true: "pretty"}[pretty], func(t *testing.T) {
			out := exportSpans(t, pretty)
			events, bad, err := ReadSpanExport(context.Background(), bytes.NewReader(out))
			if err != nil || len(bad) != 0 {
				t.Fatalf("ReadSpanExport: %v %v", bad, err)
			}
			checkWorkloadEvents(t, events)
			// DecodeAny recognizes the export.
			var n int
			err = DecodeAny(context.Background(), bytes.NewReader(out), func(Event) error { n++; return nil }, func(le *LineError) { t.Error(le) })
			if err != nil || n != 6 {
				t.Errorf("DecodeAny = %d events, %v", n, err)
			}
		})
	}
}

// TestDecodeSpanExportGolden converts a stored export of the stdouttrace
// exporter (regenerate with go test -run Golden -update).
func TestDecodeSpanExportGolden(t *testing.T) {
	path := filepath.Join(testdataDir, "stdouttrace.json")
	if *update {
		if err := os.WriteFile(path, exportSpans(t, true), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f := mustOpen(t, path)
	events, bad, err := ReadSpanExport(context.Background(), f)
	if err != nil || len(bad) != 0 {
		t.Fatalf("ReadSpanExport: %v %v", bad, err)
	}
	checkWorkloadEvents(t, events)
}

func TestDecodeSpanExportMalformed(t *testing.T) {
	good := string(exportSpans(t, false))
	lines := strings.Split(strings.TrimSpace(good), "\n")
	in := strings.Join([]string{
		lines[0],
		`{"Name": 7}`,                          // line 2: wrong type
		`garbage here`,                         // line 3: text outside objects
		`{"StartTime":"2026-11-01T09:00:00Z"}`, // line 4: no name
		`{"Name":"keyward.decrypt","StartTime":1}`, // line 5: bad time
		lines[1] + lines[2],                        // two objects on one line
		`{"Name":"keyward.decrypt","StartTime":"2026-11-01T09:00:00Z","Attributes":[{"Key":"user.id","Value":{"Type":"STRING","Value":"u\"}{"}}]}`,
		`{"Name":"x", "Events":[`, // line 8: never closed
	}, "\n")
	events, bad, err := ReadSpanExport(context.Background(), strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 4 || events[3].UserID != `u"}{` {
		t.Errorf("got %d events, want 4 (last by u\"}{): %v", len(events), events)
	}
	var lineNos []int
	for _, le := range bad {
		lineNos = append(lineNos, le.Line)
		if !errors.Is(le, ErrMalformedSpan) {
			t.Errorf("line error %v does not wrap ErrMalformedSpan", le)
		}
	}
	if want := []int{2, 3, 4, 5, 8}; !equalInts(lineNos, want) {
		t.Errorf("bad lines = %v, want %v", lineNos, want)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestAppendSpanEvents(t *testing.T) {
	at := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	spanAttrs := []attribute.KeyValue{AttrUserID.String("u1"), AttrUserRoles.StringSlice([]string{"clerk", "x"}), AttrSource.String("10.0.0.1"), AttrKeyID.Int64(5)}
	tests := []struct {
		name string
		sd   SpanData
		want []string
	}{
		{"not keyward", SpanData{Name: "GET /", Start: at, Attributes: spanAttrs}, nil},
		{"operation span", SpanData{Name: SpanRewrap, Start: at, Attributes: append(spanAttrs, AttrDataID.String("d"))},
			[]string{`{"time":"2026-11-01T09:00:00Z","action":"rewrap","user_id":"u1","role":"clerk","data_id":"d","key_id":"5","success":true,"source":"10.0.0.1"}`}},
		{"failed status", SpanData{Name: SpanDestroy, Start: at, Failed: true},
			[]string{`{"time":"2026-11-01T09:00:00Z","action":"destroy","user_id":"","data_id":"","success":false}`}},
		{"outcome wins over status", SpanData{Name: SpanRotate, Start: at, Failed: true, Attributes: []attribute.KeyValue{AttrOutcome.String("ok")}},
			[]string{`{"time":"2026-11-01T09:00:00Z","action":"rotate","user_id":"","data_id":"","success":true}`}},
		{"events override span", SpanData{Name: SpanDecrypt, Start: at, Attributes: spanAttrs, Events: []SpanEvent{
			{Name: "exception", Time: at},
			{Name: SpanDecrypt, Time: at.Add(time.Second), Attributes: []attribute.KeyValue{AttrDataID.String("a"), AttrUserID.String("u2"), AttrKeyID.String("9")}},
			{Name: SpanAccess, Time: at.Add(2 * time.Second), Attributes: []attribute.KeyValue{AttrDataID.String("b"), AttrOutcome.String("denied"), AttrAttempted.String("bogus"), AttrUserRoles.String("admin")}},
		}}, []string{
			`{"time":"2026-11-01T09:00:01Z","action":"decrypt","user_id":"u2","role":"clerk","data_id":"a","key_id":"9","success":true,"source":"10.0.0.1"}`,
			`{"time":"2026-11-01T09:00:02Z","action":"access","user_id":"u1","role":"admin","data_id":"b","key_id":"5","success":false,"source":"10.0.0.1"}`,
		}},
		{"dropped events", SpanData{Name: "GET /export", Start: at, DroppedEvents: 22, Events: []SpanEvent{
			{Name: SpanDecrypt, Time: at, Attributes: []attribute.KeyValue{AttrDataID.String("a"), AttrUserID.String("m")}},
		}}, []string{
			`{"time":"2026-11-01T09:00:00Z","action":"decrypt","user_id":"m","data_id":"a","success":true}`,
			`{"time":"2026-11-01T09:00:00Z","action":"decrypt","user_id":"m","data_id":"","success":true,"count":22}`,
		}},
		{"dropped events, none of ours", SpanData{Name: "GET /", Start: at, DroppedEvents: 22}, nil},
		{"events on a foreign span", SpanData{Name: "job", Start: at, Events: []SpanEvent{{Name: SpanEncrypt, Time: at, Attributes: []attribute.KeyValue{AttrCount.Int(2), AttrUserID.Int(5)}}}},
			[]string{`{"time":"2026-11-01T09:00:00Z","action":"encrypt","user_id":"5","data_id":"","success":true,"count":2}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendSpanEvents(nil, &tt.sd)
			if len(got) != len(tt.want) {
				t.Fatalf("AppendSpanEvents = %d events, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if s := string(got[i].AppendJSON(nil)); s != tt.want[i] {
					t.Errorf("event %d = %s, want %s", i, s, tt.want[i])
				}
			}
		})
	}
}
