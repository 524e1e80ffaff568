package telemetry

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const exampleLine = `{"time":"2026-11-01T09:00:00Z","action":"decrypt","user_id":"u1042","role":"analyst","data_id":"patients/42/ssn","key_id":"3","success":true,"source":"10.1.2.3"}`

var exampleEvent = Event{
	Time: time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC), Action: ActionDecrypt, UserID: "u1042", Role: "analyst",
	DataID: "patients/42/ssn", KeyID: "3", Success: true, Source: "10.1.2.3",
}

// jsonLine returns the JSON form of e (for failure messages and checks).
func jsonLine(e Event) string {
	b, err := e.MarshalJSON()
	if err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	return string(b)
}

func TestEventJSONExactForm(t *testing.T) {
	assert.Equal(t, exampleLine, jsonLine(exampleEvent), "MarshalJSON(exampleEvent)")
	b, err := json.Marshal(exampleEvent)
	require.NoError(t, err)
	assert.Equal(t, exampleLine, string(b), "json.Marshal(exampleEvent)")
	var e Event
	require.NoError(t, json.Unmarshal([]byte(exampleLine), &e))
	assert.True(t, e.Time.Equal(exampleEvent.Time), "time = %v, want %v", e.Time, exampleEvent.Time)
	assert.Equal(t, time.UTC, e.Time.Location(), "decoded time zone")
	e.Time = exampleEvent.Time
	assert.Equal(t, exampleEvent, e, "Unmarshal(%s)", exampleLine)
}

func TestEventRoundTrip(t *testing.T) {
	local := time.FixedZone("x", 3600)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		e    Event
		want string
	}{
		{"minimal", Event{Time: at, Action: ActionEncrypt, UserID: "u", DataID: "d"},
			`{"time":"2026-01-02T03:04:05Z","action":"encrypt","user_id":"u","data_id":"d","success":false}`},
		{"fraction and zone", Event{Time: time.Date(2026, 1, 2, 3, 4, 5, 120000000, local), Action: ActionRotate, UserID: "", DataID: "", Success: true},
			`{"time":"2026-01-02T02:04:05.12Z","action":"rotate","user_id":"","data_id":"","success":true}`},
		{"denied access", Event{Time: at, Action: ActionAccess, UserID: "u", DataID: "k/pii", Attempted: ActionDecrypt},
			`{"time":"2026-01-02T03:04:05Z","action":"access","user_id":"u","data_id":"k/pii","success":false,"attempted":"decrypt"}`},
		{"batch", Event{Time: at, Action: ActionDecrypt, UserID: "u", DataID: "users/*/ssn", Success: true, Count: 3000},
			`{"time":"2026-01-02T03:04:05Z","action":"decrypt","user_id":"u","data_id":"users/*/ssn","success":true,"count":3000}`},
		{"escapes", Event{Time: at, Action: ActionDestroy, UserID: "a\"b\\c\n\x01\u2028", DataID: "é/\xff"},
			`{"time":"2026-01-02T03:04:05Z","action":"destroy","user_id":"a\"b\\c\n\u0001\u2028","data_id":"é/�","success":false}`},
		{"not HTML-escaped", Event{Time: at, Action: ActionDecrypt, UserID: "<u&v>", DataID: "d"},
			`{"time":"2026-01-02T03:04:05Z","action":"decrypt","user_id":"<u&v>","data_id":"d","success":false}`},
		{"resource and client", Event{Time: at, Action: ActionDecrypt, UserID: "svc-billing", DataID: "inv-2026-000042",
			Resource: "invoices/iban", Success: true, Source: "10.2.0.7", Client: "billing-api"},
			`{"time":"2026-01-02T03:04:05Z","action":"decrypt","user_id":"svc-billing","data_id":"inv-2026-000042","resource":"invoices/iban","success":true,"source":"10.2.0.7","client":"billing-api"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := jsonLine(tt.e)
			require.Equal(t, tt.want, got, "MarshalJSON(%+v)", tt.e)
			require.True(t, json.Valid([]byte(got)), "MarshalJSON = %s is not valid JSON", got)
			var back Event
			require.NoError(t, back.UnmarshalJSON([]byte(got)), "UnmarshalJSON(%s)", got)
			// Decoding is a fixpoint: encoding the decoded event and
			// decoding again gives the same event.
			var again Event
			require.NoError(t, again.UnmarshalJSON([]byte(jsonLine(back))), "second decode of %s", got)
			assert.True(t, again.Time.Equal(back.Time), "time after round trip of %s", got)
			again.Time = back.Time
			assert.Equal(t, back, again, "round trip of %s", got)
			if tt.e.UserID == back.UserID && tt.e.DataID == back.DataID {
				assert.True(t, back.Time.Equal(tt.e.Time), "time = %v, want %v", back.Time, tt.e.Time)
			}
		})
	}
}

func TestEventResourceName(t *testing.T) {
	for _, tt := range []struct{ dataID, resource, want string }{
		{"patients/42/ssn", "", "patients/ssn"},
		{"patients/7d0e-11/ssn", "", "patients/ssn"},
		{"patients/ssn", "", "patients/ssn"}, // gormcrypt before an auto-increment key is known
		{"keyring/pii", "", "keyring/pii"},
		{"a/b/c/d", "", "a/d"},
		{"honeytoken", "", "honeytoken"},
		{"", "", ""},
		{"inv-2026-000042", "invoices/iban", "invoices/iban"},
	} {
		e := Event{DataID: tt.dataID, Resource: tt.resource}
		assert.Equal(t, tt.want, e.ResourceName(), "Event{DataID: %q, Resource: %q}.ResourceName()", tt.dataID, tt.resource)
	}
}

func TestEventUnmarshalErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     error
	}{
		{"not json", `{"time":`, ErrMalformedEvent},
		{"array", `[1]`, ErrMalformedEvent},
		{"missing time", `{"action":"decrypt","user_id":"u","data_id":"d","success":true}`, ErrMalformedEvent},
		{"missing action", `{"time":"2026-11-01T09:00:00Z","user_id":"u","data_id":"d","success":true}`, ErrMalformedEvent},
		{"missing user", `{"time":"2026-11-01T09:00:00Z","action":"decrypt","data_id":"d","success":true}`, ErrMalformedEvent},
		{"missing data", `{"time":"2026-11-01T09:00:00Z","action":"decrypt","user_id":"u","success":true}`, ErrMalformedEvent},
		{"missing success", `{"time":"2026-11-01T09:00:00Z","action":"decrypt","user_id":"u","data_id":"d"}`, ErrMalformedEvent},
		{"bad time", `{"time":"yesterday","action":"decrypt","user_id":"u","data_id":"d","success":true}`, ErrMalformedEvent},
		{"time without zone", `{"time":"2026-11-01T09:00:00","action":"decrypt","user_id":"u","data_id":"d","success":true}`, ErrMalformedEvent},
		{"success as string", `{"time":"2026-11-01T09:00:00Z","action":"decrypt","user_id":"u","data_id":"d","success":"yes"}`, ErrMalformedEvent},
		{"user as number", `{"time":"2026-11-01T09:00:00Z","action":"decrypt","user_id":7,"data_id":"d","success":true}`, ErrMalformedEvent},
		{"key as number", `{"time":"2026-11-01T09:00:00Z","action":"decrypt","user_id":"u","data_id":"d","success":true,"key_id":3}`, ErrMalformedEvent},
		{"client as number", `{"time":"2026-11-01T09:00:00Z","action":"decrypt","user_id":"u","data_id":"d","success":true,"client":3}`, ErrMalformedEvent},
		{"unknown action", `{"time":"2026-11-01T09:00:00Z","action":"steal","user_id":"u","data_id":"d","success":true}`, ErrUnknownAction},
		{"unknown attempted", `{"time":"2026-11-01T09:00:00Z","action":"access","user_id":"u","data_id":"d","success":false,"attempted":"x"}`, ErrUnknownAction},
		{"zero count", `{"time":"2026-11-01T09:00:00Z","action":"decrypt","user_id":"u","data_id":"d","success":true,"count":0}`, ErrMalformedEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e Event
			assert.ErrorIs(t, e.UnmarshalJSON([]byte(tt.in)), tt.want, "UnmarshalJSON(%s)", tt.in)
		})
	}
}

func TestEventUnknownFieldsIgnored(t *testing.T) {
	in := `{"extra":{"a":[1,2]},"time":"2026-11-01T09:00:00Z","action":"decrypt","user_id":"u1042","role":"analyst","data_id":"patients/42/ssn","key_id":"3","success":true,"source":"10.1.2.3","trace_id":"abc"}`
	var e Event
	require.NoError(t, e.UnmarshalJSON([]byte(in)), "UnmarshalJSON(%s)", in)
	assert.Equal(t, exampleLine, jsonLine(e), "re-encoded %s", in)
}

func TestEventValidate(t *testing.T) {
	ok := exampleEvent
	assert.NoError(t, ok.Validate(), "Validate(exampleEvent)")
	for name, e := range map[string]Event{
		"zero time":         {Action: ActionDecrypt},
		"bad action":        {Time: time.Now(), Action: "x"},
		"bad attempted":     {Time: time.Now(), Action: ActionAccess, Attempted: "x"},
		"negative count":    {Time: time.Now(), Action: ActionAccess, Count: -1},
		"empty action name": {Time: time.Now()},
	} {
		assert.Error(t, e.Validate(), "Validate(%s event %+v)", name, e)
	}
}

func TestActionSpanName(t *testing.T) {
	for _, a := range []Action{ActionEncrypt, ActionDecrypt, ActionAccess, ActionRotate, ActionRewrap, ActionDestroy} {
		name := a.SpanName()
		assert.Equal(t, "keyward."+string(a), name, "%s.SpanName()", a)
		back, ok := actionFromSpanName(name)
		assert.True(t, ok && back == a, "actionFromSpanName(%s) = %s, %v; want %s", name, back, ok, a)
	}
	_, ok := actionFromSpanName("keyward.steal")
	assert.False(t, ok, "actionFromSpanName(keyward.steal)")
}
