package telemetry

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

const exampleLine = `{"time":"2026-11-01T09:00:00Z","action":"decrypt","user_id":"u1042","role":"analyst","data_id":"patients/42/ssn","key_id":"3","success":true,"source":"10.1.2.3"}`

var exampleEvent = Event{
	Time: time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC), Action: ActionDecrypt, UserID: "u1042", Role: "analyst",
	DataID: "patients/42/ssn", KeyID: "3", Success: true, Source: "10.1.2.3",
}

func TestEventJSONExactForm(t *testing.T) {
	if got := string(exampleEvent.AppendJSON(nil)); got != exampleLine {
		t.Errorf("AppendJSON = %s, want %s", got, exampleLine)
	}
	b, err := json.Marshal(exampleEvent)
	if err != nil || string(b) != exampleLine {
		t.Errorf("json.Marshal = %s, %v, want %s", b, err, exampleLine)
	}
	var e Event
	if err := json.Unmarshal([]byte(exampleLine), &e); err != nil {
		t.Fatal(err)
	}
	if !e.Time.Equal(exampleEvent.Time) || e.Time.Location() != time.UTC {
		t.Errorf("time = %v", e.Time)
	}
	e.Time = exampleEvent.Time
	if e != exampleEvent {
		t.Errorf("Unmarshal = %+v, want %+v", e, exampleEvent)
	}
}

func TestEventRoundTrip(t *testing.T) {
	local := time.FixedZone("x", 3600)
	tests := []struct {
		name string
		e    Event
		want string
	}{
		{"minimal", Event{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Action: ActionEncrypt, UserID: "u", DataID: "d"},
			`{"time":"2026-01-02T03:04:05Z","action":"encrypt","user_id":"u","data_id":"d","success":false}`},
		{"fraction and zone", Event{Time: time.Date(2026, 1, 2, 3, 4, 5, 120000000, local), Action: ActionRotate, UserID: "", DataID: "", Success: true},
			`{"time":"2026-01-02T02:04:05.12Z","action":"rotate","user_id":"","data_id":"","success":true}`},
		{"denied access", Event{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Action: ActionAccess, UserID: "u", DataID: "k/pii", Attempted: ActionDecrypt},
			`{"time":"2026-01-02T03:04:05Z","action":"access","user_id":"u","data_id":"k/pii","success":false,"attempted":"decrypt"}`},
		{"batch", Event{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Action: ActionDecrypt, UserID: "u", DataID: "users/*/ssn", Success: true, Count: 3000},
			`{"time":"2026-01-02T03:04:05Z","action":"decrypt","user_id":"u","data_id":"users/*/ssn","success":true,"count":3000}`},
		{"escapes", Event{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Action: ActionDestroy, UserID: "a\"b\\c\n\x01\u2028", DataID: "é/\xff"},
			`{"time":"2026-01-02T03:04:05Z","action":"destroy","user_id":"a\"b\\c\n\u0001\u2028","data_id":"é/\ufffd","success":false}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(tt.e.AppendJSON(nil))
			if got != tt.want {
				t.Fatalf("AppendJSON = %s, want %s", got, tt.want)
			}
			if !json.Valid([]byte(got)) {
				t.Fatalf("AppendJSON = %s, not valid JSON", got)
			}
			var back Event
			if err := back.UnmarshalJSON([]byte(got)); err != nil {
				t.Fatalf("UnmarshalJSON(%s) = %v", got, err)
			}
			// Decoding is a fixpoint: encoding the decoded event and
			// decoding again gives the same event.
			var again Event
			if err := again.UnmarshalJSON(back.AppendJSON(nil)); err != nil || !again.Time.Equal(back.Time) {
				t.Fatalf("second decode = %v", err)
			}
			again.Time = back.Time
			if again != back {
				t.Errorf("round trip = %+v, want %+v", again, back)
			}
			if tt.e.UserID == back.UserID && tt.e.DataID == back.DataID && !back.Time.Equal(tt.e.Time) {
				t.Errorf("time = %v, want %v", back.Time, tt.e.Time)
			}
		})
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
		{"unknown action", `{"time":"2026-11-01T09:00:00Z","action":"steal","user_id":"u","data_id":"d","success":true}`, ErrUnknownAction},
		{"unknown attempted", `{"time":"2026-11-01T09:00:00Z","action":"access","user_id":"u","data_id":"d","success":false,"attempted":"x"}`, ErrUnknownAction},
		{"zero count", `{"time":"2026-11-01T09:00:00Z","action":"decrypt","user_id":"u","data_id":"d","success":true,"count":0}`, ErrMalformedEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e Event
			err := e.UnmarshalJSON([]byte(tt.in))
			if !errors.Is(err, tt.want) {
				t.Errorf("UnmarshalJSON(%s) = %v, want %v", tt.in, err, tt.want)
			}
		})
	}
}

func TestEventUnknownFieldsIgnored(t *testing.T) {
	in := `{"extra":{"a":[1,2]},"time":"2026-11-01T09:00:00Z","action":"decrypt","user_id":"u1042","role":"analyst","data_id":"patients/42/ssn","key_id":"3","success":true,"source":"10.1.2.3","trace_id":"abc"}`
	var e Event
	if err := e.UnmarshalJSON([]byte(in)); err != nil {
		t.Fatalf("UnmarshalJSON = %v", err)
	}
	if got := string(e.AppendJSON(nil)); got != exampleLine {
		t.Errorf("re-encoded = %s, want %s", got, exampleLine)
	}
}

func TestEventValidate(t *testing.T) {
	ok := exampleEvent
	if err := ok.Validate(); err != nil {
		t.Errorf("Validate(example) = %v", err)
	}
	for name, e := range map[string]Event{
		"zero time":         {Action: ActionDecrypt},
		"bad action":        {Time: time.Now(), Action: "x"},
		"bad attempted":     {Time: time.Now(), Action: ActionAccess, Attempted: "x"},
		"negative count":    {Time: time.Now(), Action: ActionAccess, Count: -1},
		"empty action name": {Time: time.Now()},
	} {
		if err := e.Validate(); err == nil {
			t.Errorf("Validate(%s) = nil, want error", name)
		}
	}
}

func TestActionSpanName(t *testing.T) {
	for _, a := range []Action{ActionEncrypt, ActionDecrypt, ActionAccess, ActionRotate, ActionRewrap, ActionDestroy} {
		name := a.SpanName()
		if name != "keyward."+string(a) {
			t.Errorf("%s.SpanName() = %s", a, name)
		}
		if back, ok := actionFromSpanName(name); !ok || back != a {
			t.Errorf("actionFromSpanName(%s) = %s, %v", name, back, ok)
		}
	}
	if _, ok := actionFromSpanName("keyward.steal"); ok {
		t.Error("actionFromSpanName(keyward.steal) = ok")
	}
}
