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

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var testdataDir = "testdata"

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
	require.NoError(t, err)
	return runWorkloadWith(t, exp, nil, func() []byte { return buf.Bytes() })
}

// runWorkloadWith runs the workload through a tracer provider (with opts) exporting
// synchronously to exp, shuts it down and returns what output returns.
func runWorkloadWith(t *testing.T, exp sdktrace.SpanExporter, opts []sdktrace.TracerProviderOption, output func() []byte) []byte {
	t.Helper()
	tp := sdktrace.NewTracerProvider(append(opts, sdktrace.WithSyncer(exp))...)
	in, err := New("github.com/keyward/keyward/keyring", WithTracerProvider(tp), WithSinks())
	require.NoError(t, err)
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

	require.NoError(t, tp.Shutdown(ctx))
	return output()
}

// checkWorkloadEvents checks the events of exportSpans' workload.
func checkWorkloadEvents(t *testing.T, events []Event) {
	t.Helper()
	var got []string
	for _, e := range events {
		got = append(got, jsonLine(e))
	}
	require.Len(t, events, 6, "events of the workload: %v", got)
	e := events[0]
	e.Time = exampleEvent.Time
	assert.Equal(t, exampleLine, jsonLine(e), "event 0")
	e = events[1]
	assert.True(t, e.Action == ActionDecrypt && e.UserID == "u7" && e.Count == 3000 && e.Success && e.DataID == "patients/*/ssn", "batch event = %s", got[1])
	e = events[2]
	assert.True(t, e.Action == ActionAccess && !e.Success && e.Attempted == ActionDecrypt && e.UserID == "u9", "denied event = %s", got[2])
	e = events[3]
	assert.True(t, e.Action == ActionDecrypt && !e.Success && e.KeyID == "7", "failed event = %s", got[3])
	e = events[4]
	assert.True(t, e.Action == ActionDecrypt && e.Success && e.DataID == "patients/42/dob" && e.UserID == "u1042", "logged decryption = %s", got[4])
	e = events[5]
	assert.True(t, e.Action == ActionEncrypt && e.DataID == "patients/42/note", "logged encryption = %s", got[5])
	for i, e := range events {
		assert.False(t, e.Time.IsZero(), "event %d has no time: %s", i, got[i])
	}
}

func TestDecodeSpanExportRealExporter(t *testing.T) {
	for _, pretty := range []bool{false, true} {
		t.Run(map[bool]string{false: "compact", true: "pretty"}[pretty], func(t *testing.T) {
			out := exportSpans(t, pretty)
			events, bad, err := ReadSpanExport(context.Background(), bytes.NewReader(out))
			require.NoError(t, err)
			require.Empty(t, bad, "line errors reading the exporter's output")
			checkWorkloadEvents(t, events)
			// DecodeAny recognizes the export.
			var n int
			err = DecodeAny(context.Background(), bytes.NewReader(out), func(Event) error { n++; return nil }, func(le *LineError) { t.Error(le) })
			require.NoError(t, err)
			assert.Equal(t, 6, n, "DecodeAny events")
		})
	}
}

// TestDecodeSpanExportGolden converts a stored export of the stdouttrace
// exporter (regenerate with go test -run Golden -update).
func TestDecodeSpanExportGolden(t *testing.T) {
	path := filepath.Join(testdataDir, "stdouttrace.json")
	if *update {
		require.NoError(t, os.WriteFile(path, exportSpans(t, true), 0o644))
	}
	events, bad, err := ReadSpanExport(context.Background(), mustOpen(t, path))
	require.NoError(t, err)
	require.Empty(t, bad, "line errors reading %s", path)
	checkWorkloadEvents(t, events)
}

func TestDecodeSpanExportMalformed(t *testing.T) {
	good := string(exportSpans(t, false))
	lines := strings.Split(strings.TrimSpace(good), "\n")
	tests := []struct {
		name     string
		in       []string
		events   int
		badLines []int
		lastUser string
	}{
		{"mixed", []string{
			lines[0],
			`{"Name": 7}`,                          // line 2: wrong type
			`garbage here`,                         // line 3: text outside objects
			`{"StartTime":"2026-11-01T09:00:00Z"}`, // line 4: no name
			`{"Name":"keyward.decrypt","StartTime":1}`, // line 5: bad time
			lines[1] + lines[2],                        // two objects on one line
			`{"Name":"keyward.decrypt","StartTime":"2026-11-01T09:00:00Z","Attributes":[{"Key":"user.id","Value":{"Type":"STRING","Value":"u\"}{"}}]}`,
			`{"Name":"x", "Events":[`, // line 8: never closed
		}, 4, []int{2, 3, 4, 5, 8}, `u"}{`},
		{"syntax error inside an indented object", []string{
			`{`,
			`	"Name": "keyward.decrypt",`,
			`	"StartTime": "2026-11-01T09:00:00Z",`,
			`	"Attributes": [ oops ]`,
			`}`,
			`{"Name":"keyward.decrypt","StartTime":"2026-11-01T09:00:00Z","Attributes":[{"Key":"user.id","Value":{"Type":"STRING","Value":"after"}}]}`,
		}, 1, []int{1}, "after"},
		{"garbage at the end", []string{lines[0], `]]]`}, 1, []int{2}, "u1042"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := strings.Join(tt.in, "\n")
			events, bad, err := ReadSpanExport(context.Background(), strings.NewReader(in))
			require.NoError(t, err)
			require.Len(t, events, tt.events, "events of %q", in)
			assert.Equal(t, tt.lastUser, events[len(events)-1].UserID, "user of the last event")
			var lineNos []int
			for _, le := range bad {
				lineNos = append(lineNos, le.Line)
				assert.ErrorIs(t, le, ErrMalformedSpan, "line error %v", le)
			}
			assert.Equal(t, tt.badLines, lineNos, "lines reported as bad")
		})
	}
}

// TestDecodeSpanExportTooLarge: an object over MaxObjectBytes is reported
// and skipped, and the next object is read.
func TestDecodeSpanExportTooLarge(t *testing.T) {
	big := `{"Name":"keyward.decrypt","StartTime":"2026-11-01T09:00:00Z","Attributes":[{"Key":"x","Value":{"Type":"STRING","Value":"` +
		strings.Repeat("y", MaxObjectBytes) + `"}}]}`
	next := `{"Name":"keyward.decrypt","StartTime":"2026-11-01T09:00:00Z","Attributes":[{"Key":"user.id","Value":{"Type":"STRING","Value":"next"}}]}`
	events, bad, err := ReadSpanExport(context.Background(), strings.NewReader(big+"\n"+next+"\n"))
	require.NoError(t, err)
	require.Len(t, bad, 1, "line errors")
	assert.Equal(t, 1, bad[0].Line, "line of the large object")
	assert.ErrorIs(t, bad[0], ErrMalformedSpan)
	require.Len(t, events, 1, "events after the large object")
	assert.Equal(t, "next", events[0].UserID)
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
		{"operation span", SpanData{Name: spanRewrap, Start: at, Attributes: append(spanAttrs, AttrDataID.String("d"))},
			[]string{`{"time":"2026-11-01T09:00:00Z","action":"rewrap","user_id":"u1","role":"clerk","data_id":"d","key_id":"5","success":true,"source":"10.0.0.1"}`}},
		{"failed status", SpanData{Name: spanDestroy, Start: at, Failed: true},
			[]string{`{"time":"2026-11-01T09:00:00Z","action":"destroy","user_id":"","data_id":"","success":false}`}},
		{"outcome wins over status", SpanData{Name: spanRotate, Start: at, Failed: true, Attributes: []attribute.KeyValue{AttrOutcome.String("ok")}},
			[]string{`{"time":"2026-11-01T09:00:00Z","action":"rotate","user_id":"","data_id":"","success":true}`}},
		{"events override span", SpanData{Name: spanDecrypt, Start: at, Attributes: spanAttrs, Events: []SpanEvent{
			{Name: "exception", Time: at},
			{Name: spanDecrypt, Time: at.Add(time.Second), Attributes: []attribute.KeyValue{AttrDataID.String("a"), AttrUserID.String("u2"), AttrKeyID.String("9")}},
			{Name: spanAccess, Time: at.Add(2 * time.Second), Attributes: []attribute.KeyValue{AttrDataID.String("b"), AttrOutcome.String("denied"), AttrAttempted.String("bogus"), AttrUserRoles.String("admin")}},
		}}, []string{
			`{"time":"2026-11-01T09:00:01Z","action":"decrypt","user_id":"u2","role":"clerk","data_id":"a","key_id":"9","success":true,"source":"10.0.0.1"}`,
			`{"time":"2026-11-01T09:00:02Z","action":"access","user_id":"u1","role":"admin","data_id":"b","key_id":"5","success":false,"source":"10.0.0.1"}`,
		}},
		{"dropped events", SpanData{Name: "GET /export", Start: at, DroppedEvents: 22, Events: []SpanEvent{
			{Name: spanDecrypt, Time: at, Attributes: []attribute.KeyValue{AttrDataID.String("a"), AttrUserID.String("m")}},
		}}, []string{
			`{"time":"2026-11-01T09:00:00Z","action":"decrypt","user_id":"m","data_id":"a","success":true}`,
			`{"time":"2026-11-01T09:00:00Z","action":"decrypt","user_id":"m","data_id":"","success":true,"count":22}`,
		}},
		{"dropped events, none of ours", SpanData{Name: "GET /", Start: at, DroppedEvents: 22}, nil},
		{"events on a foreign span", SpanData{Name: "job", Start: at, Events: []SpanEvent{{Name: spanEncrypt, Time: at, Attributes: []attribute.KeyValue{AttrCount.Int(2), AttrUserID.Int(5)}}}},
			[]string{`{"time":"2026-11-01T09:00:00Z","action":"encrypt","user_id":"5","data_id":"","success":true,"count":2}`}},
		{"service name as client, resource and client attributes", SpanData{Name: spanDecrypt, Start: at, Service: "billing-api",
			Attributes: []attribute.KeyValue{AttrUserID.String("svc"), AttrDataID.String("inv-7")}, Events: []SpanEvent{
				{Name: spanDecrypt, Time: at, Attributes: []attribute.KeyValue{AttrDataID.String("inv-8"), AttrResource.String("invoices/iban")}},
				{Name: spanDecrypt, Time: at, Attributes: []attribute.KeyValue{AttrDataID.String("inv-9"), AttrClient.String("batch-export")}},
			}}, []string{
			`{"time":"2026-11-01T09:00:00Z","action":"decrypt","user_id":"svc","data_id":"inv-8","resource":"invoices/iban","success":true,"client":"billing-api"}`,
			`{"time":"2026-11-01T09:00:00Z","action":"decrypt","user_id":"svc","data_id":"inv-9","success":true,"client":"batch-export"}`,
		}},
		{"the SDK's default service name is no client", SpanData{Name: spanDecrypt, Start: at, Service: "unknown_service:app"},
			[]string{`{"time":"2026-11-01T09:00:00Z","action":"decrypt","user_id":"","data_id":"","success":true}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, e := range AppendSpanEvents(nil, &tt.sd) {
				got = append(got, jsonLine(e))
			}
			assert.Equal(t, tt.want, got, "AppendSpanEvents(%+v)", tt.sd)
		})
	}
}
