package anomaly

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoadConfig(t *testing.T) {
	c, err := LoadConfig(strings.NewReader(`{"canary_data_ids":["patients/0/ssn"],"retired_key_ids":["1","7"],"bulk_read_window":"5m","denied_min":4,"time_zone":"Europe/Berlin","work_hours":"22-06"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.CanaryDataIDs, []string{"patients/0/ssn"}) || !reflect.DeepEqual(c.RetiredKeyIDs, []string{"1", "7"}) ||
		time.Duration(c.BulkReadWindow) != 5*time.Minute || c.DeniedMin != 4 || c.TimeZone != "Europe/Berlin" {
		t.Errorf("LoadConfig = %+v", c)
	}
	d := c.WithDefaults()
	if d.FailureMin != 10 || d.DeniedMin != 4 || time.Duration(d.VolumeWindow) != time.Hour {
		t.Errorf("WithDefaults = %+v", d)
	}
	for _, in := range []string{`{}`, ` {} `, "{}\n"} {
		c, err := LoadConfig(strings.NewReader(in))
		if err != nil || !reflect.DeepEqual(c, Config{}) {
			t.Errorf("LoadConfig(%q) = %+v, %v; want the zero Config", in, c, err)
		}
	}
}

func TestLoadConfigErrors(t *testing.T) {
	tests := map[string]string{
		"unknown field":     `{"canary_ids":["x"]}`,
		"wrong type":        `{"canary_data_ids":"x"}`,
		"number key IDs":    `{"retired_key_ids":[1]}`,
		"duration number":   `{"volume_window":60}`,
		"bad duration":      `{"volume_window":"an hour"}`,
		"negative":          `{"denied_min":-1}`,
		"negative duration": `{"incident_gap":"-1h"}`,
		"tiny window":       `{"bulk_read_window":"1ms"}`,
		"share above one":   `{"off_hours_min_share":1.5}`,
		"bad zone":          `{"time_zone":"Mars/Olympus"}`,
		"bad hours":         `{"work_hours":"9 to 5"}`,
		"equal hours":       `{"work_hours":"08-08"}`,
		"hour 25":           `{"work_hours":"08-25"}`,
		"slack":             `{"off_hours_slack":12}`,
		"trailing data":     `{} {}`,
		"not an object":     `[]`,
		"empty":             ``,
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := LoadConfig(strings.NewReader(in)); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("LoadConfig(%s) = %v, want ErrInvalidConfig", in, err)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	if !reflect.DeepEqual(Config{}.WithDefaults(), DefaultConfig()) {
		t.Error("zero Config with defaults differs from DefaultConfig")
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("zero Config invalid: %v", err)
	}
	// DefaultConfig round-trips through its JSON form, and every field of
	// the JSON form is one LoadConfig accepts.
	b, err := json.Marshal(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(strings.NewReader(string(b)))
	if err != nil || !reflect.DeepEqual(c, DefaultConfig()) {
		t.Errorf("round trip of %s = %+v, %v", b, c, err)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	if n := reflect.TypeFor[Config]().NumField(); len(m) != n-5 { // the four lists and the context are empty, so omitted
		t.Errorf("default JSON has %d fields, Config has %d", len(m), n)
	}
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
		if ok != tt.ok || (ok && (s != tt.start || e != tt.end)) {
			t.Errorf("parseHours(%q) = %d, %d, %v; want %d, %d, %v", tt.in, s, e, ok, tt.start, tt.end, tt.ok)
		}
	}
}
