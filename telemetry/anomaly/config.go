package anomaly

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string such as "10m" or "1h30m".
type Duration time.Duration

// MarshalJSON writes the duration as a string, without zero units ("10m").
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(dur(int64(d)))
}

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%w: duration must be a string such as \"10m\"", ErrInvalidConfig)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%w: bad duration %q", ErrInvalidConfig, s)
	}
	*d = Duration(v)
	return nil
}

// Config holds the analyzer's thresholds. A zero field means its default
// (listed with each field, and returned by [DefaultConfig]), so the zero
// Config is the default configuration. Negative values are invalid.
//
// Its JSON form uses the names in the field tags; every field is optional
// and unknown fields are an error (see [LoadConfig]).
type Config struct {
	// CanaryDataIDs are poison data IDs no one should ever touch: any event
	// on one is a canary_access finding, always high severity. When events
	// are pseudonymized, list the pseudonyms.
	CanaryDataIDs []string `json:"canary_data_ids,omitempty"`
	// RetiredKeyIDs are key IDs that are disabled or destroyed: an encrypt,
	// decrypt or access event naming one is a retired_key_use finding.
	// Rotate, rewrap and destroy events (key administration) are not.
	RetiredKeyIDs []string `json:"retired_key_ids,omitempty"`

	// IncidentGap: triggers of one kind by one user closer than this belong
	// to one incident and make one finding. Default 1h.
	IncidentGap Duration `json:"incident_gap,omitempty"`

	// VolumeWindow is the sliding window of volume_spike. Default 1h.
	VolumeWindow Duration `json:"volume_window,omitempty"`
	// VolumeMinEvents is the least number of successful decrypts in the
	// window that can be a spike, whatever the baseline. Default 60.
	VolumeMinEvents int `json:"volume_min_events,omitempty"`
	// VolumeFactor: a spike is at least this many times the user's baseline,
	// the median of the user's daily peaks (the most successful decrypts
	// within one volume window on each active day). Default 4.
	VolumeFactor float64 `json:"volume_factor,omitempty"`
	// VolumeMADs: a spike is at least the baseline plus this many robust
	// standard deviations of the daily peaks (1.4826 x MAD). Default 6.
	VolumeMADs float64 `json:"volume_mads,omitempty"`
	// BaselineDays is how many of a user's most recent active days make the
	// baseline. Default 28.
	BaselineDays int `json:"baseline_days,omitempty"`
	// BaselineMinDays is how many active days of history a user needs before
	// volume_spike applies: a spike is relative to the user's own baseline,
	// and a newcomer has none yet (bulk_read's absolute floor still applies).
	// Default 3.
	BaselineMinDays int `json:"baseline_min_days,omitempty"`
	// DefaultBaseline is the least baseline (decrypts per volume window)
	// assumed while a user has fewer than BaselineMinDays of history; it
	// scales the bulk_read threshold of newcomers. Default 60.
	DefaultBaseline float64 `json:"default_baseline,omitempty"`

	// BulkReadWindow is the sliding window of bulk_read. Default 10m.
	BulkReadWindow Duration `json:"bulk_read_window,omitempty"`
	// BulkReadMinDistinct is the least number of distinct data IDs decrypted
	// in the window that is a bulk read. Default 100.
	BulkReadMinDistinct int `json:"bulk_read_min_distinct,omitempty"`
	// BulkReadFactor raises that threshold for heavy users: at least this
	// many times the user's baseline scaled to the bulk-read window (the
	// volume baseline x BulkReadWindow / VolumeWindow). Default 5.
	BulkReadFactor float64 `json:"bulk_read_factor,omitempty"`

	// DeniedWindow is the sliding window of access_denied_burst. Default 10m.
	DeniedWindow Duration `json:"denied_window,omitempty"`
	// DeniedMin is the least number of denied access events in the window
	// that is a burst. Default 10.
	DeniedMin int `json:"denied_min,omitempty"`

	// FailureWindow is the sliding window of decrypt_failure_burst. Default 10m.
	FailureWindow Duration `json:"failure_window,omitempty"`
	// FailureMin is the least number of failed decrypts in the window that
	// is a burst. Default 10.
	FailureMin int `json:"failure_min,omitempty"`

	// TimeZone is the IANA zone in which hours of the day are counted for
	// off_hours. Default "UTC".
	TimeZone string `json:"time_zone,omitempty"`
	// WorkHours is the fallback working time "HH-HH" (start inclusive, end
	// exclusive, may wrap midnight as "22-06") used for users with little
	// history. Default "07-20".
	WorkHours string `json:"work_hours,omitempty"`
	// OffHoursMinDays is how many active days of history a user needs before
	// the learned hours replace the fallback; before that, an hour is normal
	// if the fallback or the history so far says so. Default 5.
	OffHoursMinDays int `json:"off_hours_min_days,omitempty"`
	// OffHoursMinShare: an hour of the day is one a user normally works if
	// the user was active in it on at least this share of active days, and
	// on at least two days. Default 0.1.
	OffHoursMinShare float64 `json:"off_hours_min_share,omitempty"`
	// OffHoursSlack is how many hours around the learned (or fallback)
	// hours still count as normal: staying an hour or two late is not an
	// incident. Default 2.
	OffHoursSlack int `json:"off_hours_slack,omitempty"`
	// OffHoursMinEvents is the least number of off-hours events in one
	// incident that is reported. Default 3.
	OffHoursMinEvents int `json:"off_hours_min_events,omitempty"`
}

// DefaultConfig returns the configuration a zero Config stands for, with
// every default filled in.
func DefaultConfig() Config {
	return Config{
		IncidentGap:         Duration(time.Hour),
		VolumeWindow:        Duration(time.Hour),
		VolumeMinEvents:     60,
		VolumeFactor:        4,
		VolumeMADs:          6,
		BaselineDays:        28,
		BaselineMinDays:     3,
		DefaultBaseline:     60,
		BulkReadWindow:      Duration(10 * time.Minute),
		BulkReadMinDistinct: 100,
		BulkReadFactor:      5,
		DeniedWindow:        Duration(10 * time.Minute),
		DeniedMin:           10,
		FailureWindow:       Duration(10 * time.Minute),
		FailureMin:          10,
		TimeZone:            "UTC",
		WorkHours:           "07-20",
		OffHoursMinDays:     5,
		OffHoursMinShare:    0.1,
		OffHoursSlack:       2,
		OffHoursMinEvents:   3,
	}
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	d := DefaultConfig()
	setD := func(v *Duration, def Duration) {
		if *v == 0 {
			*v = def
		}
	}
	setI := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setF := func(v *float64, def float64) {
		if *v == 0 {
			*v = def
		}
	}
	setD(&c.IncidentGap, d.IncidentGap)
	setD(&c.VolumeWindow, d.VolumeWindow)
	setI(&c.VolumeMinEvents, d.VolumeMinEvents)
	setF(&c.VolumeFactor, d.VolumeFactor)
	setF(&c.VolumeMADs, d.VolumeMADs)
	setI(&c.BaselineDays, d.BaselineDays)
	setI(&c.BaselineMinDays, d.BaselineMinDays)
	setF(&c.DefaultBaseline, d.DefaultBaseline)
	setD(&c.BulkReadWindow, d.BulkReadWindow)
	setI(&c.BulkReadMinDistinct, d.BulkReadMinDistinct)
	setF(&c.BulkReadFactor, d.BulkReadFactor)
	setD(&c.DeniedWindow, d.DeniedWindow)
	setI(&c.DeniedMin, d.DeniedMin)
	setD(&c.FailureWindow, d.FailureWindow)
	setI(&c.FailureMin, d.FailureMin)
	if c.TimeZone == "" {
		c.TimeZone = d.TimeZone
	}
	if c.WorkHours == "" {
		c.WorkHours = d.WorkHours
	}
	setI(&c.OffHoursMinDays, d.OffHoursMinDays)
	setF(&c.OffHoursMinShare, d.OffHoursMinShare)
	setI(&c.OffHoursSlack, d.OffHoursSlack)
	setI(&c.OffHoursMinEvents, d.OffHoursMinEvents)
	return c
}

// Validate reports the first invalid field, as an error wrapping
// [ErrInvalidConfig].
func (c Config) Validate() error {
	_, err := c.resolve()
	return err
}

// LoadConfig reads a JSON configuration. Every field is optional; an
// unknown field, a value of the wrong type, trailing data or an invalid
// value is an error wrapping [ErrInvalidConfig]. The result is as read, not
// defaulted (see [Config.WithDefaults]).
func LoadConfig(r io.Reader) (Config, error) {
	data, err := io.ReadAll(io.LimitReader(r, 1<<24))
	if err != nil {
		return Config{}, fmt.Errorf("anomaly: read config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, ErrInvalidConfig) {
			return Config{}, err
		}
		return Config{}, fmt.Errorf("%w: %s", ErrInvalidConfig, configErrText(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return Config{}, fmt.Errorf("%w: data after the config object", ErrInvalidConfig)
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func configErrText(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "field " + te.Field + " has the wrong type"
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return "invalid JSON at offset " + strconv.FormatInt(se.Offset, 10)
	}
	if s := err.Error(); strings.HasPrefix(s, "json: unknown field ") {
		return "unknown field " + strings.TrimPrefix(s, "json: unknown field ")
	}
	return "invalid JSON"
}

// resolved is a validated, defaulted Config in the form the analyzer uses.
type resolved struct {
	gap                           int64
	volWin, bulkWin, denWin, fWin int64
	volMin                        int
	volFactor, volMADs            float64
	baseDays, baseMin             int
	defRate                       float64
	bulkMin                       int
	bulkFactor                    float64
	denMin, fMin                  int
	loc                           *time.Location
	utc                           bool
	workStart, workEnd            int
	minDays                       int
	minShare                      float64
	offMin, slack                 int
	canary, retired               *stringSet
}

func (c Config) resolve() (*resolved, error) {
	bad := func(field, why string) error {
		return fmt.Errorf("%w: %s %s", ErrInvalidConfig, field, why)
	}
	if c.IncidentGap < 0 || c.VolumeWindow < 0 || c.BulkReadWindow < 0 || c.DeniedWindow < 0 || c.FailureWindow < 0 {
		return nil, bad("durations", "must not be negative")
	}
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"volume_min_events", float64(c.VolumeMinEvents)}, {"volume_factor", c.VolumeFactor},
		{"volume_mads", c.VolumeMADs}, {"baseline_days", float64(c.BaselineDays)},
		{"baseline_min_days", float64(c.BaselineMinDays)}, {"default_baseline", c.DefaultBaseline},
		{"bulk_read_min_distinct", float64(c.BulkReadMinDistinct)}, {"bulk_read_factor", c.BulkReadFactor},
		{"denied_min", float64(c.DeniedMin)}, {"failure_min", float64(c.FailureMin)},
		{"off_hours_min_days", float64(c.OffHoursMinDays)}, {"off_hours_min_share", c.OffHoursMinShare},
		{"off_hours_slack", float64(c.OffHoursSlack)}, {"off_hours_min_events", float64(c.OffHoursMinEvents)},
	} {
		if f.v < 0 || math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return nil, bad(f.name, "must be a non-negative number")
		}
	}
	c = c.WithDefaults()
	if c.OffHoursMinShare > 1 {
		return nil, bad("off_hours_min_share", "must be at most 1")
	}
	if c.BaselineDays > 3660 {
		return nil, bad("baseline_days", "must be at most 3660")
	}
	if c.OffHoursSlack > 11 {
		return nil, bad("off_hours_slack", "must be at most 11")
	}
	r := &resolved{
		gap: int64(c.IncidentGap), volWin: int64(c.VolumeWindow), bulkWin: int64(c.BulkReadWindow),
		denWin: int64(c.DeniedWindow), fWin: int64(c.FailureWindow),
		volMin: c.VolumeMinEvents, volFactor: c.VolumeFactor, volMADs: c.VolumeMADs,
		baseDays: c.BaselineDays, baseMin: c.BaselineMinDays, defRate: c.DefaultBaseline,
		bulkMin: c.BulkReadMinDistinct, bulkFactor: c.BulkReadFactor,
		denMin: c.DeniedMin, fMin: c.FailureMin,
		minDays: c.OffHoursMinDays, minShare: c.OffHoursMinShare, offMin: c.OffHoursMinEvents, slack: c.OffHoursSlack,
	}
	for _, w := range []int64{r.volWin, r.bulkWin, r.denWin, r.fWin} {
		if w < int64(time.Second) {
			return nil, bad("windows", "must be at least 1s")
		}
	}
	loc, err := time.LoadLocation(c.TimeZone)
	if err != nil {
		return nil, bad("time_zone", "is not a known IANA zone")
	}
	r.loc, r.utc = loc, loc == time.UTC
	var ok bool
	if r.workStart, r.workEnd, ok = parseHours(c.WorkHours); !ok {
		return nil, bad("work_hours", `must be "HH-HH", start 0-23, end 1-24, not equal`)
	}
	r.canary = toSet(c.CanaryDataIDs)
	r.retired = toSet(c.RetiredKeyIDs)
	return r, nil
}

func parseHours(s string) (start, end int, ok bool) {
	a, b, found := strings.Cut(s, "-")
	if !found {
		return 0, 0, false
	}
	start, err1 := strconv.Atoi(strings.TrimSpace(a))
	end, err2 := strconv.Atoi(strings.TrimSpace(b))
	if err1 != nil || err2 != nil || start < 0 || start > 23 || end < 1 || end > 24 || start == end {
		return 0, 0, false
	}
	return start, end, true
}

// stringSet is a set of strings; small sets (the usual few canaries and
// retired keys) are searched linearly, which beats hashing every event's ID.
type stringSet struct {
	small []string
	large map[string]struct{}
}

func toSet(ids []string) *stringSet {
	if len(ids) == 0 {
		return nil
	}
	s := &stringSet{}
	if len(ids) <= 8 {
		s.small = append([]string(nil), ids...)
		return s
	}
	s.large = make(map[string]struct{}, len(ids))
	for _, id := range ids {
		s.large[id] = struct{}{}
	}
	return s
}

func (s *stringSet) has(id string) bool {
	if s == nil {
		return false
	}
	if s.large != nil {
		_, ok := s.large[id]
		return ok
	}
	for _, x := range s.small {
		if x == id {
			return true
		}
	}
	return false
}
