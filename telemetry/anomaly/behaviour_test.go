package anomaly

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/telemetry"
)

// day0 is a Monday 00:00: day d of the tests below is day0 + d days.
var day0 = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

// work is n reads a weekday (10:00 on, one every 5 minutes) by user in role
// from src, on days [from, to); data names the record read.
type work struct {
	user, role, src, client string
	from, to, n             int
	data                    func(d, i int) string
	weekends                bool
}

func (w work) events() []telemetry.Event {
	var out []telemetry.Event
	for d := w.from; d < w.to; d++ {
		day := day0.AddDate(0, 0, d)
		if wd := day.Weekday(); !w.weekends && (wd == time.Saturday || wd == time.Sunday) {
			continue
		}
		for i := range w.n {
			data := fmt.Sprintf("patients/%d/dob", i%20)
			if w.data != nil {
				data = w.data(d, i)
			}
			out = append(out, telemetry.Event{Time: day.Add(10*time.Hour + time.Duration(i)*5*time.Minute), Action: telemetry.ActionDecrypt,
				UserID: w.user, Role: w.role, DataID: data, KeyID: "3", Success: true, Source: w.src, Client: w.client})
		}
	}
	return out
}

// at is one read by user at day d, 11:00 plus m minutes.
func at(user, role, src string, d, m int, data string) telemetry.Event {
	return telemetry.Event{Time: day0.AddDate(0, 0, d).Add(11*time.Hour + time.Duration(m)*time.Minute), Action: telemetry.ActionDecrypt,
		UserID: user, Role: role, DataID: data, KeyID: "3", Success: true, Source: src}
}

func join(parts ...[]telemetry.Event) []telemetry.Event {
	var out []telemetry.Event
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func findingsOf(fs []Finding, k Kind) []Finding {
	var out []Finding
	for _, f := range fs {
		if f.Kind == k {
			out = append(out, f)
		}
	}
	return out
}

// TestBehaviourKinds: each behaviour detector fires on its pattern, with its
// evidence, and stays quiet on the known-good variant next to it.
func TestBehaviourKinds(t *testing.T) {
	clerk := func(user string) work {
		return work{user: user, role: "clerk", src: "10.1.2.3", from: 0, to: 12, n: 20}
	}
	three := func(f func(string) work) []telemetry.Event {
		return join(f("u").events(), f("v").events(), f("w").events())
	}
	newIDs := func(per int) func(d, i int) string {
		return func(d, i int) string {
			if i < per {
				return fmt.Sprintf("patients/%d/dob", 1000*d+i) // never read before
			}
			return fmt.Sprintf("patients/%d/dob", i%20)
		}
	}
	tests := []struct {
		name   string
		cfg    Config
		events []telemetry.Event
		kind   Kind
		want   []string // users of the findings of kind
		check  func(t *testing.T, f Finding)
	}{
		{"first access to a resource no peer reads", Config{}, join(three(clerk),
			[]telemetry.Event{at("u", "clerk", "10.1.2.3", 14, 0, "salaries/7/amount")}), KindFirstAccess, []string{"u"},
			func(t *testing.T, f Finding) {
				assert.Equal(t, []string{"salaries/amount"}, f.Evidence.Resources, "resources")
				assert.Equal(t, "clerk", f.Evidence.Role, "role")
				assert.Empty(t, f.Evidence.PeerReaders, "peer readers")
			}},
		{"first access to a resource the role reads", Config{}, join(three(clerk),
			[]telemetry.Event{at("v", "clerk", "10.1.2.3", 3, 0, "patients/1/address"), at("w", "clerk", "10.1.2.3", 3, 0, "patients/2/address"),
				at("u", "clerk", "10.1.2.3", 14, 0, "patients/3/address")}), KindFirstAccess, nil, nil},
		{"first access names the one peer that reads it", Config{}, join(three(clerk),
			[]telemetry.Event{at("v", "clerk", "10.1.2.3", 3, 0, "hr/1/review"), at("u", "clerk", "10.1.2.3", 14, 0, "hr/2/review")}), KindFirstAccess, []string{"u"},
			func(t *testing.T, f Finding) {
				assert.Equal(t, []string{"v"}, f.Evidence.PeerReaders, "peer readers")
			}},
		{"peers reading it the same day", Config{}, join(three(clerk),
			[]telemetry.Event{at("u", "clerk", "10.1.2.3", 14, 0, "ledger/1/close"), at("v", "clerk", "10.1.2.3", 14, 5, "ledger/2/close"),
				at("w", "clerk", "10.1.2.3", 14, 9, "ledger/3/close")}), KindFirstAccess, nil, nil},
		{"a newcomer learns first", Config{}, join(three(clerk),
			[]telemetry.Event{at("x", "clerk", "10.1.2.3", 14, 0, "salaries/7/amount")}), KindFirstAccess, nil, nil},
		{"a role change moves the identity to the new peer group", Config{}, join(three(clerk),
			work{user: "b1", role: "billing", src: "10.1.2.4", to: 12, n: 5, data: func(d, i int) string { return fmt.Sprintf("invoices/%d/iban", i) }}.events(),
			work{user: "b2", role: "billing", src: "10.1.2.4", to: 12, n: 5, data: func(d, i int) string { return fmt.Sprintf("invoices/%d/iban", i) }}.events(),
			[]telemetry.Event{at("u", "billing", "10.1.2.3", 14, 0, "invoices/77/iban")}), KindFirstAccess, nil, nil},

		{"dormant account", Config{}, join(clerk("u").events(), []telemetry.Event{at("u", "clerk", "10.1.2.3", 40, 0, "patients/1/dob")}),
			KindDormantAccount, []string{"u"}, func(t *testing.T, f Finding) {
				assert.Equal(t, 28, f.Evidence.Days, "whole idle days (last seen on day 11 at 11:35, back on day 40 at 11:00)")
				require.NotNil(t, f.Evidence.LastSeen)
				assert.Equal(t, 11, int(f.Evidence.LastSeen.Sub(day0).Hours()/24), "last seen day")
			}},
		{"back after two weeks", Config{}, join(clerk("u").events(), []telemetry.Event{at("u", "clerk", "10.1.2.3", 26, 0, "patients/1/dob")}),
			KindDormantAccount, nil, nil},
		{"back from a known leave", Config{Context: &Context{Leave: []Period{{Identities: []string{"u"}, From: "2026-11-16", To: "2026-12-09"}}}},
			join(clerk("u").events(), []telemetry.Event{at("u", "clerk", "10.1.2.3", 40, 0, "patients/1/dob")}), KindDormantAccount, nil, nil},

		{"new network", Config{}, join(clerk("u").events(), work{user: "u", role: "clerk", src: "198.18.4.7", from: 14, to: 15, n: 4}.events()),
			KindNewSource, []string{"u"}, func(t *testing.T, f Finding) {
				assert.Equal(t, "198.18.4.0/24", f.Evidence.Network, "network")
				assert.Equal(t, "198.18.4.7", f.Evidence.Source, "source")
				assert.Equal(t, []string{"10.1.2.0/24"}, f.Evidence.KnownNetworks, "known networks")
				assert.Equal(t, 4, f.Events, "events from the new network")
			}},
		{"new address in a known network", Config{}, join(clerk("u").events(), work{user: "u", role: "clerk", src: "10.1.2.200", from: 14, to: 15, n: 4}.events()),
			KindNewSource, nil, nil},
		{"new network on a configured VPN range", Config{KnownNetworks: []string{"198.18.0.0/16"}},
			join(clerk("u").events(), work{user: "u", role: "clerk", src: "198.18.4.7", from: 14, to: 15, n: 4}.events()), KindNewSource, nil, nil},
		{"a network others have used for long", Config{},
			join(three(clerk), work{user: "p", role: "x", src: "10.8.0.5", to: 3, n: 2}.events(), work{user: "q", role: "x", src: "10.8.0.6", to: 3, n: 2}.events(),
				work{user: "r", role: "x", src: "10.8.0.7", to: 3, n: 2}.events(), work{user: "u", role: "clerk", src: "10.8.0.9", from: 14, to: 15, n: 4}.events()),
			KindNewSource, nil, nil},
		{"new client", Config{}, join(work{user: "u", role: "clerk", src: "10.1.2.3", client: "web", to: 12, n: 20}.events(),
			work{user: "u", role: "clerk", src: "10.1.2.3", client: "curl", from: 14, to: 15, n: 3}.events()), KindNewSource, []string{"u"},
			func(t *testing.T, f Finding) { assert.Equal(t, "curl", f.Evidence.Client, "client") }},
		{"a trip in the travel context", Config{Context: &Context{Travel: []Period{{Identities: []string{"u"}, From: "2026-11-14", To: "2026-11-14"}}}},
			join(clerk("u").events(), work{user: "u", role: "clerk", src: "198.18.4.7", from: 12, to: 13, n: 4, weekends: true}.events()), KindNewSource, nil, nil},

		{"weekend work", Config{}, join(work{user: "u", role: "clerk", src: "10.1.2.3", to: 40, n: 5}.events(),
			[]telemetry.Event{at("u", "clerk", "10.1.2.3", 40, 0, "patients/1/dob"), at("u", "clerk", "10.1.2.3", 40, 5, "patients/1/dob"), at("u", "clerk", "10.1.2.3", 40, 9, "patients/1/dob")}),
			KindWeekendActivity, []string{"u"}, func(t *testing.T, f Finding) {
				assert.Equal(t, "Saturday 2026-12-12", f.Evidence.Day, "day")
				assert.Equal(t, 30, f.Evidence.WeekdaysActive, "weekdays active")
			}},
		{"weekend work without five weeks of history", Config{}, join(work{user: "u", role: "clerk", src: "10.1.2.3", to: 26, n: 5}.events(),
			work{user: "u", role: "clerk", src: "10.1.2.3", from: 26, to: 27, n: 3, weekends: true}.events()), KindWeekendActivity, nil, nil},
		{"holiday work", Config{Holidays: []string{"2026-12-10"}}, join(work{user: "u", role: "clerk", src: "10.1.2.3", to: 38, n: 5}.events(),
			work{user: "u", role: "clerk", src: "10.1.2.3", from: 38, to: 39, n: 3}.events()), KindWeekendActivity, []string{"u"},
			func(t *testing.T, f Finding) { assert.Equal(t, "holiday Thursday 2026-12-10", f.Evidence.Day, "day") }},
		{"a weekend worker's weekend", Config{}, join(work{user: "u", role: "clerk", src: "10.1.2.3", to: 40, n: 5}.events(),
			[]telemetry.Event{at("u", "clerk", "10.1.2.3", 5, 0, "patients/1/dob")},
			work{user: "u", role: "clerk", src: "10.1.2.3", from: 40, to: 41, n: 3, weekends: true}.events()), KindWeekendActivity, nil, nil},
		{"on call", Config{Context: &Context{OnCall: []Period{{Identities: []string{"u"}, From: "2026-12-12", To: "2026-12-13"}}}},
			join(work{user: "u", role: "clerk", src: "10.1.2.3", to: 40, n: 5}.events(), work{user: "u", role: "clerk", src: "10.1.2.3", from: 40, to: 41, n: 3, weekends: true}.events()),
			KindWeekendActivity, nil, nil},

		{"drift of never-read IDs", Config{}, join(
			work{user: "u", role: "clerk", src: "10.1.2.3", to: 21, n: 40, data: newIDs(5)}.events(),
			work{user: "u", role: "clerk", src: "10.1.2.3", from: 21, to: 28, n: 80, data: newIDs(45)}.events()),
			KindNewDataDrift, []string{"u"}, func(t *testing.T, f Finding) {
				assert.Equal(t, 5.0, f.Evidence.Baseline, "baseline")
				assert.Equal(t, 45.0, f.Evidence.Observed, "observed")
				assert.GreaterOrEqual(t, f.Evidence.Days, 3, "days of drift")
				assert.Equal(t, 45, f.Evidence.Daily[0], "first day's never-read IDs")
			}},
		{"the whole role rises together", Config{}, join(
			work{user: "u", role: "clerk", src: "10.1.2.3", to: 21, n: 40, data: newIDs(5)}.events(),
			work{user: "v", role: "clerk", src: "10.1.2.3", to: 21, n: 40, data: newIDs(5)}.events(),
			work{user: "w", role: "clerk", src: "10.1.2.3", to: 21, n: 40, data: newIDs(5)}.events(),
			work{user: "u", role: "clerk", src: "10.1.2.3", from: 21, to: 28, n: 80, data: newIDs(45)}.events(),
			work{user: "v", role: "clerk", src: "10.1.2.3", from: 21, to: 28, n: 80, data: newIDs(45)}.events(),
			work{user: "w", role: "clerk", src: "10.1.2.3", from: 21, to: 28, n: 80, data: newIDs(45)}.events()),
			KindNewDataDrift, nil, nil},

		{"identities sharing a network none of them used", Config{}, join(three(clerk),
			work{user: "u", role: "clerk", src: "10.77.1.5", from: 14, to: 15, n: 3}.events(),
			work{user: "v", role: "clerk", src: "10.77.1.5", from: 14, to: 15, n: 3}.events(),
			work{user: "w", role: "clerk", src: "10.77.1.5", from: 14, to: 15, n: 3}.events()),
			KindCoordinatedAccess, []string{crowdID}, func(t *testing.T, f Finding) {
				assert.Equal(t, []string{"u", "v", "w"}, f.Evidence.Identities, "identities")
				assert.Equal(t, "10.77.1.0/24", f.Evidence.Network, "network")
				assert.Equal(t, SeverityHigh, f.Severity)
			}},
		{"a suppression rule", Config{Context: &Context{Suppress: []Rule{{Kinds: []Kind{KindNewSource}, Identities: []string{"u*"}, Sources: []string{"198.18.0.0/15"}}}}},
			join(clerk("u").events(), work{user: "u", role: "clerk", src: "198.18.4.7", from: 14, to: 15, n: 4}.events()), KindNewSource, nil, nil},
		{"a suppression rule for another source", Config{Context: &Context{Suppress: []Rule{{Kinds: []Kind{KindNewSource}, Sources: []string{"10.0.0.0/8"}}}}},
			join(clerk("u").events(), work{user: "u", role: "clerk", src: "198.18.4.7", from: 14, to: 15, n: 4}.events()), KindNewSource, []string{"u"}, nil},

		{"a low-rate identity's spike", Config{}, join(work{user: "u", role: "clerk", src: "10.1.2.3", to: 10, n: 6}.events(),
			func() []telemetry.Event {
				var e []telemetry.Event
				for i := range 50 { // 50 reads in 50 minutes: 8x the usual hour, below the old floor of 60
					e = append(e, at("u", "clerk", "10.1.2.3", 10, i, fmt.Sprintf("patients/%d/dob", i%5)))
				}
				return e
			}()), KindVolumeSpike, []string{"u"}, func(t *testing.T, f Finding) {
			assert.Less(t, f.Evidence.Threshold, 60.0, "rate-aware threshold")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events := slices.Clone(tt.events)
			slices.SortStableFunc(events, func(a, b telemetry.Event) int { return a.Time.Compare(b.Time) })
			all := Detect(events, tt.cfg)
			got := findingsOf(all, tt.kind)
			var users []string
			for _, f := range got {
				users = append(users, f.UserID)
			}
			require.Equal(t, tt.want, users, "users of %s findings; all findings: %v", tt.kind, kinds(all))
			for _, f := range got {
				require.NotNil(t, f.Evidence, "evidence of %v", f)
				if tt.check != nil {
					tt.check(t, f)
				}
			}
		})
	}
}
