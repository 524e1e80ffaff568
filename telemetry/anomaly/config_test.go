package anomaly

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadConfig(t *testing.T) {
	in := `{"canary_data_ids":["patients/0/ssn"],"retired_key_ids":["1","7"],"bulk_read_window":"5m","denied_min":4,"time_zone":"Europe/Berlin","work_hours":"22-06",
		"known_networks":["10.8.0.0/16"],"holidays":["2026-12-25"],"dormant_days":30,
		"context":{"leave":[{"identities":["u1042"],"from":"2026-11-02","to":"2026-11-27"}],"suppress":[{"kinds":["new_source"],"identities":["svc-*"],"reason":"batch hosts"}]}}`
	c, err := LoadConfig(strings.NewReader(in))
	require.NoError(t, err)
	assert.Equal(t, []string{"patients/0/ssn"}, c.CanaryDataIDs)
	assert.Equal(t, []string{"1", "7"}, c.RetiredKeyIDs)
	assert.Equal(t, 5*time.Minute, time.Duration(c.BulkReadWindow))
	assert.Equal(t, 4, c.DeniedMin)
	assert.Equal(t, "Europe/Berlin", c.TimeZone)
	assert.Equal(t, []string{"10.8.0.0/16"}, c.KnownNetworks)
	assert.Equal(t, 30, c.DormantDays)
	require.NotNil(t, c.Context)
	assert.Equal(t, []Period{{Identities: []string{"u1042"}, From: "2026-11-02", To: "2026-11-27"}}, c.Context.Leave)
	assert.Equal(t, []Kind{KindNewSource}, c.Context.Suppress[0].Kinds)
	d := c.WithDefaults()
	assert.Equal(t, 10, d.FailureMin)
	assert.Equal(t, 4, d.DeniedMin)
	assert.Equal(t, time.Hour, time.Duration(d.VolumeWindow))
	assert.Equal(t, 2*time.Hour, time.Duration(d.PopulationWindow))
	for _, in := range []string{`{}`, ` {} `, "{}\n"} {
		c, err := LoadConfig(strings.NewReader(in))
		require.NoError(t, err, "LoadConfig(%q)", in)
		assert.Equal(t, Config{}, c, "LoadConfig(%q)", in)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	tests := map[string]string{
		"unknown field":          `{"canary_ids":["x"]}`,
		"wrong type":             `{"canary_data_ids":"x"}`,
		"number key IDs":         `{"retired_key_ids":[1]}`,
		"duration number":        `{"volume_window":60}`,
		"bad duration":           `{"volume_window":"an hour"}`,
		"negative":               `{"denied_min":-1}`,
		"negative duration":      `{"incident_gap":"-1h"}`,
		"tiny window":            `{"bulk_read_window":"1ms"}`,
		"tiny population window": `{"population_window":"1s"}`,
		"share above one":        `{"off_hours_min_share":1.5}`,
		"bad zone":               `{"time_zone":"Mars/Olympus"}`,
		"bad hours":              `{"work_hours":"9 to 5"}`,
		"equal hours":            `{"work_hours":"08-08"}`,
		"hour 25":                `{"work_hours":"08-25"}`,
		"slack":                  `{"off_hours_slack":12}`,
		"prefix 33":              `{"source_prefix_v4":33}`,
		"bad network":            `{"known_networks":["10.8.0.0"]}`,
		"bad holiday":            `{"holidays":["25/12/2026"]}`,
		"forget before dormant":  `{"dormant_days":30,"forget_days":20}`,
		"negative drift":         `{"drift_threshold":-1}`,
		"context leave no ids":   `{"context":{"leave":[{"from":"2026-11-02","to":"2026-11-03"}]}}`,
		"context bad date":       `{"context":{"on_call":[{"identities":["u"],"from":"soon","to":"2026-11-03"}]}}`,
		"context reversed":       `{"context":{"travel":[{"identities":["u"],"from":"2026-11-04","to":"2026-11-03"}]}}`,
		"context bad pattern":    `{"context":{"leave":[{"identities":["["],"from":"2026-11-02","to":"2026-11-03"}]}}`,
		"context unknown kind":   `{"context":{"suppress":[{"kinds":["everything"]}]}}`,
		"context bad source":     `{"context":{"suppress":[{"sources":["vpn"]}]}}`,
		"context unknown field":  `{"context":{"holidays":[]}}`,
		"trailing data":          `{} {}`,
		"not an object":          `[]`,
		"empty":                  ``,
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := LoadConfig(strings.NewReader(in))
			assert.ErrorIs(t, err, ErrInvalidConfig, "LoadConfig(%s)", in)
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	assert.Equal(t, DefaultConfig(), Config{}.WithDefaults(), "zero Config with defaults")
	assert.NoError(t, Config{}.Validate(), "zero Config")
	// DefaultConfig round-trips through its JSON form, and every field of
	// the JSON form is one LoadConfig accepts.
	b, err := json.Marshal(DefaultConfig())
	require.NoError(t, err)
	c, err := LoadConfig(strings.NewReader(string(b)))
	require.NoError(t, err, "LoadConfig(%s)", b)
	assert.Equal(t, DefaultConfig(), c, "round trip of %s", b)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	// The four lists and the context are empty, so omitted.
	assert.Len(t, m, reflect.TypeFor[Config]().NumField()-5, "fields of the default JSON form")
}

func TestParseHours(t *testing.T) {
	for _, tt := range []struct {
		in         string
		start, end int
		ok         bool
	}{
		{"07-20", 7, 20, true}, {"0-24", 0, 24, true}, {"22-06", 22, 6, true}, {" 9 - 17 ", 9, 17, true},
		{"24-08", 0, 0, false}, {"08-0", 0, 0, false}, {"8", 0, 0, false}, {"a-b", 0, 0, false},
	} {
		s, e, ok := parseHours(tt.in)
		assert.Equal(t, tt.ok, ok, "parseHours(%q) ok", tt.in)
		if ok {
			assert.Equal(t, []int{tt.start, tt.end}, []int{s, e}, "parseHours(%q)", tt.in)
		}
	}
}
