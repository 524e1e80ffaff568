package telemetry_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/keyward/keyward/telemetry"
)

// The JSON Lines form of one event.
func ExampleEvent_MarshalJSON() {
	e := telemetry.Event{
		Time:    time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC),
		Action:  telemetry.ActionDecrypt,
		UserID:  "u1042",
		Role:    "analyst",
		DataID:  "patients/42/ssn",
		KeyID:   "3",
		Success: true,
		Source:  "10.1.2.3",
	}
	b, err := e.MarshalJSON()
	if err != nil {
		panic(err)
	}
	fmt.Println(string(b))
	// Output:
	// {"time":"2026-11-01T09:00:00Z","action":"decrypt","user_id":"u1042","role":"analyst","data_id":"patients/42/ssn","key_id":"3","success":true,"source":"10.1.2.3"}
}

// Reading events: a malformed line is reported with its number and
// skipped; the rest is read.
func ExampleReadEvents() {
	in := strings.NewReader(`{"time":"2026-11-01T09:00:00Z","action":"decrypt","user_id":"u1","data_id":"a","success":true}
{"time":"2026-11-01T09:00:01Z","action":"decrypt","user_id":"u1"
{"time":"2026-11-01T09:00:02Z","action":"access","user_id":"u2","data_id":"k/pii","success":false,"attempted":"decrypt","note":"ignored"}
`)
	events, bad, err := telemetry.ReadEvents(context.Background(), in)
	if err != nil {
		panic(err)
	}
	for _, e := range events {
		fmt.Println(e.Action, e.UserID, e.DataID, e.Success, e.Attempted == telemetry.ActionDecrypt)
	}
	for _, le := range bad {
		fmt.Println(le)
	}
	// Output:
	// decrypt u1 a true false
	// access u2 k/pii false true
	// telemetry: line 2: malformed event: invalid JSON at offset 64
}

// The spec's logging functions go through the default Instrumentation,
// which a program configures once in main.
func ExampleLogDecryptionEvent() {
	sink := telemetry.SinkFunc(func(_ context.Context, e telemetry.Event) error {
		fmt.Println(e.Action, e.UserID, e.DataID, e.Success)
		return nil
	})
	in, err := telemetry.New(telemetry.ScopeName, telemetry.WithSinks(sink))
	if err != nil {
		panic(err)
	}
	telemetry.SetDefault(in)
	defer telemetry.SetDefault(nil)

	ctx := context.Background() // normally the request's context, with its span
	telemetry.LogEncryptionEvent(ctx, "patients/42/ssn", "u1042")
	telemetry.LogDecryptionEvent(ctx, "patients/42/ssn", "u1042")
	// Output:
	// encrypt u1042 patients/42/ssn true
	// decrypt u1042 patients/42/ssn true
}

// Pseudonymizing IDs before they leave the process.
func ExampleNewPseudonymizer() {
	key := make([]byte, 32) // use 32 random bytes kept as secret as a data key
	p, err := telemetry.NewPseudonymizer(key)
	if err != nil {
		panic(err)
	}
	u := p.UserID("u1042")
	fmt.Println(len(u), u[:3], u == p.UserID("u1042"), u == p.DataID("u1042"))
	// Output:
	// 35 ps: true false
}

// A library's instrumentation: one span per batch with its count, one
// event per value for the sinks.
func ExampleInstrumentation() {
	sink := telemetry.NewWriterSink(os.Stdout)
	in, err := telemetry.New("example.com/mylib", telemetry.WithSinks(sink))
	if err != nil {
		panic(err)
	}
	ctx, span := in.Start(context.Background(), telemetry.ActionDecrypt, telemetry.AttrKeyring.String("pii"), telemetry.KeyID(3))
	at := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	for _, id := range []string{"users/1/ssn", "users/2/ssn"} {
		in.Record(ctx, telemetry.Event{Time: at, Action: telemetry.ActionDecrypt, UserID: "u7", DataID: id, KeyID: "3", Success: true})
	}
	in.End(span, telemetry.OutcomeOK, 2, nil)
	// Output:
	// {"time":"2026-11-01T09:00:00Z","action":"decrypt","user_id":"u7","data_id":"users/1/ssn","key_id":"3","success":true}
	// {"time":"2026-11-01T09:00:00Z","action":"decrypt","user_id":"u7","data_id":"users/2/ssn","key_id":"3","success":true}
}
