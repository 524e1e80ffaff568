package anomaly

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
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

	// VolumeMinFloor: for an identity with a baseline, volume_spike's least
	// count is VolumeMinEvents scaled by the identity's baseline over
	// DefaultBaseline, but not below this floor, so a low-rate identity is
	// protected too. Default 20.
	VolumeMinFloor int `json:"volume_min_floor,omitempty"`
	// BulkReadMinFloor is the same floor for bulk_read's least number of
	// distinct data IDs. Default 40.
	BulkReadMinFloor int `json:"bulk_read_min_floor,omitempty"`

	// FirstAccessMinDays is how many active days of history an identity
	// needs before reading a resource (table/column) it never read is a
	// first_access finding; before that everything is new. Default 5.
	FirstAccessMinDays int `json:"first_access_min_days,omitempty"`
	// PeerMinReaders: a resource that at least this many other identities
	// of the same role have read is not new for that role, so reading it is
	// no first_access finding. Identities without a role have no peers.
	// Default 2.
	PeerMinReaders int `json:"peer_min_readers,omitempty"`

	// DriftHistoryDays is how many active days (since the identity was
	// first seen or changed role) build the baseline of new data IDs per
	// day before new_data_drift applies. Default 10.
	DriftHistoryDays int `json:"drift_history_days,omitempty"`
	// DriftSlack is the CUSUM allowance k, in standard deviations: a day
	// adds (z - k) to the drift sum when its count of never-read data IDs is
	// z standard deviations above the identity's baseline. Default 1.
	DriftSlack float64 `json:"drift_slack,omitempty"`
	// DriftThreshold is the CUSUM decision level h: the drift sum at which
	// new_data_drift fires. Default 8.
	DriftThreshold float64 `json:"drift_threshold,omitempty"`
	// DriftMinDays is the least number of days in a row above the slack
	// that make a drift (one wild day is no drift). Default 3.
	DriftMinDays int `json:"drift_min_days,omitempty"`

	// DormantDays: the first activity after an idle gap of at least this
	// many days is a dormant_account finding. Default 21.
	DormantDays int `json:"dormant_days,omitempty"`
	// ForgetDays: an identity idle for longer than this is forgotten (its
	// next activity is a newcomer's). Idle identities are kept until then,
	// so that dormant_account sees them. Default 400.
	ForgetDays int `json:"forget_days,omitempty"`

	// SourcePrefixV4 and SourcePrefixV6 are the prefix lengths that group
	// source addresses into networks for new_source: two addresses in one
	// /24 (IPv4) or /48 (IPv6) are one network. Defaults 24 and 48.
	SourcePrefixV4 int `json:"source_prefix_v4,omitempty"`
	SourcePrefixV6 int `json:"source_prefix_v6,omitempty"`
	// KnownNetworks are CIDR prefixes (VPN ranges, proxies) whose sources
	// are never new to anyone.
	KnownNetworks []string `json:"known_networks,omitempty"`
	// SourceMinDays is how many active days of history an identity needs
	// before a network or client it never used is a new_source finding.
	// Default 5.
	SourceMinDays int `json:"source_min_days,omitempty"`
	// SourceMinEvents is the least number of events from the new network or
	// client in one incident that is reported. Default 3.
	SourceMinEvents int `json:"source_min_events,omitempty"`
	// SourceKnownUsers: a network that at least this many other identities
	// used before (earlier than the population window) is established (a
	// VPN pool, an office): no identity's first use of it is a finding.
	// Default 3.
	SourceKnownUsers int `json:"source_known_users,omitempty"`

	// Holidays are dates ("2026-12-25") that count as weekend days, in
	// TimeZone.
	Holidays []string `json:"holidays,omitempty"`
	// WeekendMinDays: an identity active on at least this many weekdays and
	// never on a weekend day or holiday is a weekday identity; its activity
	// on a weekend day or holiday is a weekend_activity finding. The default,
	// five working weeks, lets a four-week on-call rotation show. Default 25.
	WeekendMinDays int `json:"weekend_min_days,omitempty"`
	// WeekendMinEvents is the least number of events in one
	// weekend_activity incident that is reported. Default 3.
	WeekendMinEvents int `json:"weekend_min_events,omitempty"`

	// PopulationWindow is the window of coordinated_access: identities that
	// deviate together within it make one incident. Default 2h.
	PopulationWindow Duration `json:"population_window,omitempty"`
	// PopulationMinIdentities is the least number of identities, of at
	// least PopulationMinRoles roles, each reading clearly more never-read
	// data IDs than usual within the window, that is a coordinated_access
	// finding. Defaults 5 and 2.
	PopulationMinIdentities int `json:"population_min_identities,omitempty"`
	PopulationMinRoles      int `json:"population_min_roles,omitempty"`
	// SharedSourceMinIdentities is the least number of identities that,
	// within the window, all use one network none of them used before: a
	// coordinated_access finding as well. Default 3.
	SharedSourceMinIdentities int `json:"shared_source_min_identities,omitempty"`

	// Context is optional knowledge that removes known-good noise: leave
	// periods, on-call rosters, travel and suppression rules (see
	// [Context]).
	Context *Context `json:"context,omitempty"`
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

		VolumeMinFloor:            20,
		BulkReadMinFloor:          40,
		FirstAccessMinDays:        5,
		PeerMinReaders:            2,
		DriftHistoryDays:          10,
		DriftSlack:                1,
		DriftThreshold:            8,
		DriftMinDays:              3,
		DormantDays:               21,
		ForgetDays:                400,
		SourcePrefixV4:            24,
		SourcePrefixV6:            48,
		SourceMinDays:             5,
		SourceMinEvents:           3,
		SourceKnownUsers:          3,
		WeekendMinDays:            25,
		WeekendMinEvents:          3,
		PopulationWindow:          Duration(2 * time.Hour),
		PopulationMinIdentities:   5,
		PopulationMinRoles:        2,
		SharedSourceMinIdentities: 3,
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
	setI(&c.VolumeMinFloor, d.VolumeMinFloor)
	setI(&c.BulkReadMinFloor, d.BulkReadMinFloor)
	setI(&c.FirstAccessMinDays, d.FirstAccessMinDays)
	setI(&c.PeerMinReaders, d.PeerMinReaders)
	setI(&c.DriftHistoryDays, d.DriftHistoryDays)
	setF(&c.DriftSlack, d.DriftSlack)
	setF(&c.DriftThreshold, d.DriftThreshold)
	setI(&c.DriftMinDays, d.DriftMinDays)
	setI(&c.DormantDays, d.DormantDays)
	setI(&c.ForgetDays, d.ForgetDays)
	setI(&c.SourcePrefixV4, d.SourcePrefixV4)
	setI(&c.SourcePrefixV6, d.SourcePrefixV6)
	setI(&c.SourceMinDays, d.SourceMinDays)
	setI(&c.SourceMinEvents, d.SourceMinEvents)
	setI(&c.SourceKnownUsers, d.SourceKnownUsers)
	setI(&c.WeekendMinDays, d.WeekendMinDays)
	setI(&c.WeekendMinEvents, d.WeekendMinEvents)
	setD(&c.PopulationWindow, d.PopulationWindow)
	setI(&c.PopulationMinIdentities, d.PopulationMinIdentities)
	setI(&c.PopulationMinRoles, d.PopulationMinRoles)
	setI(&c.SharedSourceMinIdentities, d.SharedSourceMinIdentities)
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

	volFloor, bulkFloor     int
	firstMinDays, peerMin   int
	driftHist, driftMinDays int
	driftK, driftH          float64
	dormant, forget         int64 // nanoseconds
	v4Bits, v6Bits          int
	known                   []netip.Prefix
	srcMinDays, srcMin      int
	srcKnown                int
	holidays                map[int64]bool // local day numbers
	wkMinDays, wkMin        int
	popWin                  int64
	popMin, popRoles        int
	sharedMin               int
	ctx                     *ctxRules
}

func (c Config) resolve() (*resolved, error) {
	bad := func(field, why string) error {
		return fmt.Errorf("%w: %s %s", ErrInvalidConfig, field, why)
	}
	if c.IncidentGap < 0 || c.VolumeWindow < 0 || c.BulkReadWindow < 0 || c.DeniedWindow < 0 || c.FailureWindow < 0 || c.PopulationWindow < 0 {
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
		{"volume_min_floor", float64(c.VolumeMinFloor)}, {"bulk_read_min_floor", float64(c.BulkReadMinFloor)},
		{"first_access_min_days", float64(c.FirstAccessMinDays)}, {"peer_min_readers", float64(c.PeerMinReaders)},
		{"drift_history_days", float64(c.DriftHistoryDays)}, {"drift_slack", c.DriftSlack},
		{"drift_threshold", c.DriftThreshold}, {"drift_min_days", float64(c.DriftMinDays)},
		{"dormant_days", float64(c.DormantDays)}, {"forget_days", float64(c.ForgetDays)},
		{"source_prefix_v4", float64(c.SourcePrefixV4)}, {"source_prefix_v6", float64(c.SourcePrefixV6)},
		{"source_min_days", float64(c.SourceMinDays)}, {"source_min_events", float64(c.SourceMinEvents)},
		{"source_known_users", float64(c.SourceKnownUsers)},
		{"weekend_min_days", float64(c.WeekendMinDays)}, {"weekend_min_events", float64(c.WeekendMinEvents)},
		{"population_min_identities", float64(c.PopulationMinIdentities)}, {"population_min_roles", float64(c.PopulationMinRoles)},
		{"shared_source_min_identities", float64(c.SharedSourceMinIdentities)},
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
	if c.SourcePrefixV4 > 32 || c.SourcePrefixV6 > 128 {
		return nil, bad("source_prefix_v4/v6", "must be at most 32 and 128")
	}
	if c.DormantDays > 3660 || c.ForgetDays > 36600 {
		return nil, bad("dormant_days/forget_days", "must be at most 3660 and 36600")
	}
	if c.ForgetDays <= c.DormantDays {
		return nil, bad("forget_days", "must be more than dormant_days")
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

	const day = int64(24 * time.Hour)
	r.volFloor, r.bulkFloor = c.VolumeMinFloor, c.BulkReadMinFloor
	r.firstMinDays, r.peerMin = c.FirstAccessMinDays, c.PeerMinReaders
	r.driftHist, r.driftMinDays, r.driftK, r.driftH = c.DriftHistoryDays, c.DriftMinDays, c.DriftSlack, c.DriftThreshold
	r.dormant, r.forget = int64(c.DormantDays)*day, int64(c.ForgetDays)*day
	r.v4Bits, r.v6Bits = c.SourcePrefixV4, c.SourcePrefixV6
	for _, s := range c.KnownNetworks {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return nil, bad("known_networks", fmt.Sprintf("entry %q is not a CIDR prefix", clip(s)))
		}
		r.known = append(r.known, p.Masked())
	}
	r.srcMinDays, r.srcMin, r.srcKnown = c.SourceMinDays, c.SourceMinEvents, c.SourceKnownUsers
	for _, s := range c.Holidays {
		d, err := time.ParseInLocation(time.DateOnly, strings.TrimSpace(s), time.UTC)
		if err != nil {
			return nil, bad("holidays", fmt.Sprintf("entry %q is not a date YYYY-MM-DD", clip(s)))
		}
		if r.holidays == nil {
			r.holidays = make(map[int64]bool)
		}
		r.holidays[floorDiv(d.Unix(), 86400)] = true
	}
	r.wkMinDays, r.wkMin = c.WeekendMinDays, c.WeekendMinEvents
	r.popWin = int64(c.PopulationWindow)
	if r.popWin < int64(time.Minute) {
		return nil, bad("population_window", "must be at least 1m")
	}
	r.popMin, r.popRoles, r.sharedMin = c.PopulationMinIdentities, c.PopulationMinRoles, c.SharedSourceMinIdentities
	if r.ctx, err = c.Context.resolve(); err != nil {
		return nil, err
	}
	return r, nil
}

// clip shortens an echoed input value so error messages stay one short
// line.
func clip(s string) string {
	s = clean(s)
	if r := []rune(s); len(r) > 40 {
		return string(r[:40]) + "..."
	}
	return s
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
