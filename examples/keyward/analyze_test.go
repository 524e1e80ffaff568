package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// eventsFile writes a day of ordinary traffic, a canary read, a retired key
// use, a bulk read and one malformed line.
func eventsFile(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	start := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	line := func(at time.Time, user, data, key string) {
		fmt.Fprintf(&b, `{"time":%q,"action":"decrypt","user_id":%q,"role":"analyst","data_id":%q,"key_id":%q,"success":true}`+"\n",
			at.Format(time.RFC3339), user, data, key)
	}
	for i := range 40 {
		line(start.Add(time.Duration(i)*10*time.Minute), "u1", fmt.Sprintf("patients/%d/ssn", i%7), "3")
	}
	b.WriteString("{not json\n")
	line(start.Add(2*time.Hour), "u1", "patients/999/ssn", "3") // the canary
	line(start.Add(3*time.Hour), "u3", "patients/5/ssn", "7")   // a retired key
	for i := range 400 {                                        // a bulk read
		line(start.Add(4*time.Hour+time.Duration(i)*time.Second), "u2077", fmt.Sprintf("patients/%d/ssn", 1000+i), "3")
	}
	p := filepath.Join(dir, "events.jsonl")
	require.NoError(t, os.WriteFile(p, []byte(b.String()), 0o600))
	return p
}

func TestAnalyze(t *testing.T) {
	dir := t.TempDir()
	events := eventsFile(t, dir)
	cfg := filepath.Join(dir, "analyzer.json")
	require.NoError(t, os.WriteFile(cfg, []byte(`{"canary_data_ids":["patients/999/ssn"],"retired_key_ids":["7"]}`), 0o600))

	r := keyward(t, dir, "", "analyze", "--json", "--config", cfg, events)
	require.Equal(t, 0, r.code, "analyze --json: %+v", r)
	assert.Contains(t, r.stderr, "events.jsonl:41: skipped", "the malformed line reported with its number")
	kinds := map[string]map[string]any{}
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var f map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &f), "line %q", l)
		for _, k := range []string{"id", "kind", "user_id", "start", "end", "severity", "score", "events", "detail"} {
			assert.Contains(t, f, k, "finding %s", l)
		}
		kinds[f["kind"].(string)] = f
	}
	for kind, user := range map[string]string{"canary_access": "u1", "retired_key_use": "u3", "bulk_read": "u2077"} {
		if assert.Contains(t, kinds, kind, "findings: %v", kinds) {
			assert.Equal(t, user, kinds[kind]["user_id"], "user of the %s finding", kind)
		}
	}
	assert.Equal(t, "high", kinds["canary_access"]["severity"], "canary severity")

	// The same from stdin, as a table.
	data, err := os.ReadFile(events)
	require.NoError(t, err)
	r = keyward(t, dir, string(data), "analyze", "--config", cfg, "-")
	require.Equal(t, 0, r.code, "analyze -: %+v", r)
	assert.Contains(t, r.stdout, "SEVERITY")
	assert.Contains(t, r.stdout, "canary_access")
	// Without the config there is no canary and no retired key; exit 0 all the same.
	r = keyward(t, dir, "", "analyze", events)
	require.Equal(t, 0, r.code, "analyze without config: %+v", r)
	assert.NotContains(t, r.stdout, "canary_access")
	assert.Contains(t, r.stdout, "bulk_read")
	clean := filepath.Join(dir, "clean.jsonl")
	require.NoError(t, os.WriteFile(clean, []byte(`{"time":"2026-11-02T10:00:00Z","action":"decrypt","user_id":"u1","data_id":"a","success":true}`+"\n"), 0o600))
	r = keyward(t, dir, "", "analyze", clean)
	assert.Equal(t, 0, r.code, "analyze clean: %+v", r)
	assert.Equal(t, "no findings\n", r.stdout, "analyze clean")
	// Errors: exit 1; usage: exit 2.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.json"), []byte(`{"canary_data_ids":["x"],"nope":1}`), 0o600))
	for _, args := range [][]string{{"analyze", "missing.jsonl"}, {"analyze", "--config", "bad.json", events}} {
		r := keyward(t, dir, "", args...)
		assert.Equal(t, 1, r.code, "keyward %v: %+v", args, r)
		assert.Equal(t, 1, strings.Count(r.stderr, "\n"), "keyward %v: one line on stderr, got %q", args, r.stderr)
	}
	assert.Equal(t, 2, keyward(t, dir, "", "analyze").code, "analyze without files")
}

// TestAnalyzeOTLP reads the OpenTelemetry Collector's file exporter output
// (one OTLP/JSON ExportTraceServiceRequest per line): a request span whose
// span events are 150 reads of distinct records by one user.
func TestAnalyzeOTLP(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC).UnixNano()
	var events []string
	for i := range 150 {
		events = append(events, fmt.Sprintf(`{"timeUnixNano":"%d","name":"keyward.decrypt","attributes":[{"key":"user.id","value":{"stringValue":"u2077"}},{"key":"keyward.data_id","value":{"stringValue":"patients/%d/ssn"}}]}`,
			start+int64(i)*int64(time.Second), 1000+i))
	}
	line := `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"clinic-api"}}]},"scopeSpans":[{"scope":{"name":"example.com/clinic"},"spans":[` +
		fmt.Sprintf(`{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"GET /export","kind":2,"startTimeUnixNano":"%d","endTimeUnixNano":"%d","events":[%s],"status":{}}`,
			start, start+int64(200*time.Second), strings.Join(events, ",")) +
		`]}]}]}`
	path := filepath.Join(dir, "collector-spans.jsonl")
	require.NoError(t, os.WriteFile(path, []byte(line+"\n"), 0o600))

	r := keyward(t, dir, "", "analyze", "--json", path)
	require.Equal(t, 0, r.code, "keyward analyze %s: %+v", path, r)
	assert.Empty(t, r.stderr, "warnings")
	var f map[string]any
	require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &f), "output %q", r.stdout)
	assert.Equal(t, "bulk_read", f["kind"], "finding kind")
	assert.Equal(t, "u2077", f["user_id"], "finding user")
	assert.EqualValues(t, 150, f["events"], "finding events")
}
