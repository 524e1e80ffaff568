package anomaly

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/telemetry"
)

var t0 = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC) // a Monday, 10:00

func ev(user string, at time.Duration, a telemetry.Action, data string, ok bool) telemetry.Event {
	return telemetry.Event{Time: t0.Add(at), Action: a, UserID: user, DataID: data, Success: ok}
}

// history gives a user days of ordinary work (10:00-16:00, 20 reads an
// hour) before t0.
func history(user string, days int) []telemetry.Event {
	var out []telemetry.Event
	for d := days; d >= 1; d-- {
		for m := 0; m < 6*60; m += 3 {
			out = append(out, ev(user, time.Duration(-d)*24*time.Hour+time.Duration(m)*time.Minute, telemetry.ActionDecrypt, fmt.Sprintf("r/%d", m%40), true))
		}
	}
	return out
}

func kinds(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, fmt.Sprintf("%s/%s/%d", f.Kind, f.UserID, f.Events))
	}
	return out
}

func TestDetectKinds(t *testing.T) {
	canaryCfg := Config{CanaryDataIDs: []string{"honey/1"}, RetiredKeyIDs: []string{"1"}}
	tests := []struct {
		name   string
		cfg    Config
		events func() []telemetry.Event
		want   []string
	}{
		{"nothing", Config{}, func() []telemetry.Event { return history("u", 3) }, nil},
		{"canary, once per incident", canaryCfg, func() []telemetry.Event {
			return []telemetry.Event{
				ev("u", 0, telemetry.ActionDecrypt, "honey/1", true),
				ev("u", time.Minute, telemetry.ActionAccess, "honey/1", false),
				ev("u", 3*time.Hour, telemetry.ActionDecrypt, "honey/1", true),
				ev("v", 0, telemetry.ActionDecrypt, "honey/2", true),
			}
		}, []string{"canary_access/u/2", "canary_access/u/1"}},
		{"retired key, not for administration", canaryCfg, func() []telemetry.Event {
			e := []telemetry.Event{
				ev("u", 0, telemetry.ActionDecrypt, "a", true),
				ev("admin", 0, telemetry.ActionDestroy, "keyring/pii", true),
				ev("admin", 0, telemetry.ActionRewrap, "a", true),
				ev("v", 0, telemetry.ActionDecrypt, "a", false),
			}
			for i := range e {
				e[i].KeyID = "1"
			}
			return e
		}, []string{"retired_key_use/u/1", "retired_key_use/v/1"}},
		{"denied burst", Config{}, func() []telemetry.Event {
			var e []telemetry.Event
			for i := range 12 {
				e = append(e, ev("u", time.Duration(i)*20*time.Second, telemetry.ActionAccess, "k/pii", false))
			}
			for i := range 9 { // another user, below the threshold
				e = append(e, ev("v", time.Duration(i)*20*time.Second, telemetry.ActionAccess, "k/pii", false))
			}
			return e
		}, []string{"access_denied_burst/u/12"}},
		{"slow denials are no burst", Config{}, func() []telemetry.Event {
			var e []telemetry.Event
			for i := range 30 {
				e = append(e, ev("u", time.Duration(i)*2*time.Minute, telemetry.ActionAccess, "k/pii", false))
			}
			return e
		}, nil},
		{"decrypt failures", Config{}, func() []telemetry.Event {
			var e []telemetry.Event
			for i := range 15 {
				e = append(e, ev("u", time.Duration(i)*10*time.Second, telemetry.ActionDecrypt, "x", false))
			}
			return e
		}, []string{"decrypt_failure_burst/u/15"}},
		{"bulk read", Config{}, func() []telemetry.Event {
			e := history("u", 3)
			for i := range 150 {
				e = append(e, ev("u", time.Duration(i)*2*time.Second, telemetry.ActionDecrypt, fmt.Sprintf("p/%d", i), true))
			}
			return e
		}, []string{"volume_spike/u/150", "bulk_read/u/150"}},
		{"re-reading is no bulk read", Config{}, func() []telemetry.Event {
			var e []telemetry.Event
			for i := range 150 {
				e = append(e, ev("u", time.Duration(i)*2*time.Second, telemetry.ActionDecrypt, fmt.Sprintf("p/%d", i%50), true))
			}
			return e
		}, nil},
		{"a batch event counts its values", Config{}, func() []telemetry.Event {
			e := ev("u", 0, telemetry.ActionDecrypt, "users/*/ssn", true)
			e.Count = 3000
			return []telemetry.Event{e}
		}, []string{"bulk_read/u/3000"}},
		{"volume spike after a baseline", Config{}, func() []telemetry.Event {
			e := history("u", 5)
			for i := range 200 { // 200 reads of 5 records in 40 minutes
				e = append(e, ev("u", time.Duration(i)*12*time.Second, telemetry.ActionDecrypt, fmt.Sprintf("r/%d", i%5), true))
			}
			return e
		}, []string{"volume_spike/u/200"}},
		{"no volume spike without history", Config{}, func() []telemetry.Event {
			var e []telemetry.Event
			for i := range 200 {
				e = append(e, ev("u", time.Duration(i)*12*time.Second, telemetry.ActionDecrypt, fmt.Sprintf("r/%d", i%5), true))
			}
			return e
		}, nil},
		{"off hours, learned", Config{}, func() []telemetry.Event {
			e := history("u", 6)
			for i := range 4 { // 03:00 the next night
				e = append(e, ev("u", 17*time.Hour+time.Duration(i)*5*time.Minute, telemetry.ActionDecrypt, "r/1", true))
			}
			return e
		}, []string{"off_hours/u/4"}},
		{"off hours needs a few events", Config{}, func() []telemetry.Event {
			e := history("u", 6)
			e = append(e, ev("u", 17*time.Hour, telemetry.ActionDecrypt, "r/1", true), ev("u", 17*time.Hour+time.Minute, telemetry.ActionDecrypt, "r/1", true))
			return e
		}, nil},
		{"off hours fallback for a newcomer", Config{}, func() []telemetry.Event {
			var e []telemetry.Event
			for i := range 3 { // 23:00
				e = append(e, ev("new", 13*time.Hour+time.Duration(i)*time.Minute, telemetry.ActionDecrypt, "r/1", true))
			}
			for i := range 3 { // 18:00 is within the fallback 07-20
				e = append(e, ev("new2", 8*time.Hour+time.Duration(i)*time.Minute, telemetry.ActionDecrypt, "r/1", true))
			}
			return e
		}, []string{"off_hours/new/3"}},
		{"time zone", Config{TimeZone: "America/New_York"}, func() []telemetry.Event {
			var e []telemetry.Event
			for i := range 3 { // 08:00 UTC is 03:00 in New York
				e = append(e, ev("u", -2*time.Hour+time.Duration(i)*time.Minute, telemetry.ActionDecrypt, "r/1", true))
			}
			return e
		}, []string{"off_hours/u/3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, kinds(Detect(tt.events(), tt.cfg)), "Detect(%s)", tt.name)
		})
	}
}

func TestDetectIncidentGap(t *testing.T) {
	burst := func(at time.Duration) []telemetry.Event {
		var e []telemetry.Event
		for i := range 12 {
			e = append(e, ev("u", at+time.Duration(i)*10*time.Second, telemetry.ActionAccess, "k", false))
		}
		return e
	}
	near := append(burst(0), burst(30*time.Minute)...)
	apart := append(burst(0), burst(2*time.Hour)...)
	assert.Equal(t, []string{"access_denied_burst/u/24"}, kinds(Detect(near, Config{})), "two bursts 30m apart")
	assert.Len(t, kinds(Detect(apart, Config{})), 2, "two bursts 2h apart")
	assert.Len(t, kinds(Detect(apart, Config{IncidentGap: Duration(3 * time.Hour)})), 1, "two bursts 2h apart with a 3h gap")
}

// smallScenario is a short scenario with every pattern once, for the tests
// that need realistic input rather than figures.
var smallScenario = genConfig{seed: 3, users: 16, services: 2, days: 49, perKind: 1, firstDay: 7, noise: true,
	canaryIDs: []string{"honey/0/x"}, retiredID: "1", holidays: qualityScenario.holidays}

// small is the small scenario, generated once for the tests that only read
// it.
var small = sync.OnceValue(func() scenario { return generate(smallScenario) })

// Detect does not need sorted input, and does not change it.
func TestDetectUnsorted(t *testing.T) {
	sc := small()
	want := Detect(sc.events, sc.cfg)
	require.GreaterOrEqual(t, len(want), 14, "findings of the small scenario")
	shuffled := append([]telemetry.Event(nil), sc.events...)
	rand.New(rand.NewPCG(1, 1)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	keep := append([]telemetry.Event(nil), shuffled...)
	assert.Equal(t, want, Detect(shuffled, sc.cfg), "Detect(shuffled) differs from Detect(sorted)")
	assert.Equal(t, keep, shuffled, "Detect reordered its input")
}

func TestDetectPanicsOnInvalidConfig(t *testing.T) {
	assert.Panics(t, func() { Detect(nil, Config{DeniedMin: -1}) }, "Detect with an invalid config")
}

// TestAnalyzerAlertAndReport: the alert function hears of an incident when
// it qualifies and again each time its severity rises, all with one ID; the
// report function gets the final finding when the incident closes.
func TestAnalyzerAlertAndReport(t *testing.T) {
	var mu sync.Mutex
	var alerts, reports []Finding
	a, err := NewAnalyzer(Config{}, WithAlert(func(f Finding) { mu.Lock(); alerts = append(alerts, f); mu.Unlock() }),
		WithReport(func(f Finding) { reports = append(reports, f) }))
	require.NoError(t, err)
	for i := range 30 {
		a.Observe(ev("u", time.Duration(i)*10*time.Second, telemetry.ActionDecrypt, "x", false))
	}
	require.Len(t, alerts, 3, "alerts: %v", alerts)
	for i, want := range []struct {
		sev    Severity
		events int
	}{{SeverityLow, 10}, {SeverityMedium, 15}, {SeverityHigh, 30}} {
		assert.Equal(t, KindDecryptFailureBurst, alerts[i].Kind, "alert %d", i)
		assert.Equal(t, want.sev, alerts[i].Severity, "severity of alert %d", i)
		assert.Equal(t, want.events, alerts[i].Events, "events of alert %d", i)
		assert.Equal(t, alerts[0].ID, alerts[i].ID, "ID of alert %d", i)
	}
	assert.Empty(t, reports, "reported before the incident closed")
	// A later event beyond the gap closes the incident.
	a.Observe(ev("u", 3*time.Hour, telemetry.ActionDecrypt, "x", true))
	require.Len(t, reports, 1, "reports after the gap")
	assert.Equal(t, 30, reports[0].Events)
	assert.Equal(t, t0.Add(290*time.Second), reports[0].End)
	assert.Equal(t, alerts[0].ID, reports[0].ID, "the report's ID is the alerts'")
	assert.Nil(t, a.Flush(), "Flush with a report function")
}

func TestAnalyzerConcurrent(t *testing.T) {
	a, err := NewAnalyzer(Config{CanaryDataIDs: []string{"honey"}})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				data := "r"
				if i == 100 {
					data = "honey"
				}
				assert.NoError(t, a.WriteEvent(t.Context(), ev(fmt.Sprintf("u%d", g), time.Duration(i)*time.Second, telemetry.ActionDecrypt, data, true)))
			}
		})
	}
	wg.Wait()
	assert.Len(t, a.Flush(), 4, "four canary findings")
}

// TestObserveAllocations: a known user's event does not allocate.
func TestObserveAllocations(t *testing.T) {
	a, err := NewAnalyzer(Config{CanaryDataIDs: []string{"honey"}, RetiredKeyIDs: []string{"1"}})
	require.NoError(t, err)
	e := ev("u", 0, telemetry.ActionDecrypt, "r/1/x", true)
	e.KeyID, e.Role, e.Source, e.Client = "3", "clerk", "10.1.2.3", "web"
	a.Observe(e)
	allocs := testing.AllocsPerRun(1000, func() {
		e.Time = e.Time.Add(time.Second)
		a.Observe(e)
	})
	assert.Zero(t, allocs, "Observe allocations per event")
}

// TestMemoryBounded: the state kept per user does not grow with the
// number of events or of distinct data IDs once the windows are full.
func TestMemoryBounded(t *testing.T) {
	a, err := NewAnalyzer(Config{})
	require.NoError(t, err)
	for i := range 200_000 {
		a.Observe(ev("u", time.Duration(i)*time.Second, telemetry.ActionDecrypt, fmt.Sprintf("r/%d/x", i), true))
	}
	u := a.users["u"]
	assert.LessOrEqual(t, len(u.bulkQ)-u.bulkHead, 601, "bulk queue entries (about one window)")
	assert.LessOrEqual(t, len(u.seen), 601, "bulk window's distinct IDs")
	assert.LessOrEqual(t, cap(u.bulkQ), 4096, "bulk queue capacity")
	assert.LessOrEqual(t, u.readIDs.bytes(), 2*seenMaxCap*bloomBitsPerElem/8, "seen-ID sketch bytes after 200,000 distinct IDs")
	// After a burst of 100,000 distinct reads in a minute, a quiet hour
	// gives the memory back.
	burst := 200_000 * time.Second
	for i := range 100_000 {
		a.Observe(ev("u", burst+time.Duration(i)*600*time.Microsecond, telemetry.ActionDecrypt, fmt.Sprintf("b/%d/x", i), true))
	}
	for i := range 7200 {
		a.Observe(ev("u", burst+time.Hour+time.Duration(i)*time.Second, telemetry.ActionDecrypt, "r/1/x", true))
	}
	assert.LessOrEqual(t, cap(u.bulkQ), 4096, "bulk queue capacity after the burst")
	assert.LessOrEqual(t, len(u.seen), 10, "bulk window's distinct IDs after the burst")
}

func TestFindingForms(t *testing.T) {
	f := Finding{ID: "bulk_read/u2077/2026-11-03T21:10:04Z", Kind: KindBulkRead, UserID: "u2077", Start: time.Date(2026, 11, 3, 22, 10, 4, 0, time.FixedZone("x", 3600)),
		End: time.Date(2026, 11, 3, 21, 14, 40, 0, time.UTC), Severity: SeverityHigh, Score: 3.41666, Events: 340,
		Detail: "340 distinct data IDs decrypted within 10m (threshold 100)", Evidence: &Evidence{Observed: 340, Threshold: 99.996}}
	b, err := json.Marshal(f)
	require.NoError(t, err)
	want := `{"id":"bulk_read/u2077/2026-11-03T21:10:04Z","kind":"bulk_read","user_id":"u2077","start":"2026-11-03T21:10:04Z","end":"2026-11-03T21:14:40Z","severity":"high","score":3.42,"events":340,"detail":"340 distinct data IDs decrypted within 10m (threshold 100)","evidence":{"observed":340,"threshold":100}}`
	assert.Equal(t, want, string(b), "JSON form")
	var buf bytes.Buffer
	require.NoError(t, WriteJSON(&buf, []Finding{f, f}))
	assert.Equal(t, want+"\n"+want+"\n", buf.String(), "WriteJSON")
	buf.Reset()
	g := f
	g.UserID = "evil\n\x1b[31m"
	require.NoError(t, WriteTable(&buf, []Finding{f, g}))
	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	assert.Len(t, lines, 3, "table lines:\n%s", buf.String())
	assert.True(t, strings.HasPrefix(lines[0], "SEVERITY"), "table header %q", lines[0])
	assert.Contains(t, lines[1], "bulk_read")
	assert.NotContains(t, buf.String(), "\x1b", "table keeps an escape")
	buf.Reset()
	require.NoError(t, WriteTable(&buf, nil))
	assert.Equal(t, "no findings\n", buf.String())
	assert.NotContains(t, g.String(), "\n", "String() keeps a newline")
	assert.NotContains(t, g.String(), "\x1b", "String() keeps an escape")
}

// The explanation of each kind reads as one line and carries its numbers
// and evidence.
func TestFindingDetails(t *testing.T) {
	sc := small()
	seen := map[Kind]bool{}
	for _, f := range Detect(sc.events, sc.cfg) {
		seen[f.Kind] = true
		assert.NotEmpty(t, f.Detail, "detail of %v", f)
		assert.NotContains(t, f.Detail, "\n", "detail of %v", f)
		assert.Positive(t, f.Score, "score of %v", f)
		assert.Positive(t, f.Events, "events of %v", f)
		assert.False(t, f.End.Before(f.Start), "end before start: %v", f)
		assert.Contains(t, f.ID, string(f.Kind)+"/"+f.UserID+"/", "ID of %v", f)
		if f.Kind == KindCanaryAccess {
			assert.Equal(t, SeverityHigh, f.Severity, "canary severity: %v", f)
		}
		switch f.Kind {
		case KindFirstAccess:
			require.NotNil(t, f.Evidence, "evidence of %v", f)
			assert.NotEmpty(t, f.Evidence.Resources, "resources of %v", f)
			assert.NotEmpty(t, f.Evidence.Role, "role of %v", f)
		case KindNewDataDrift:
			require.NotNil(t, f.Evidence, "evidence of %v", f)
			assert.GreaterOrEqual(t, f.Evidence.Days, 3, "days of %v", f)
			assert.Len(t, f.Evidence.Daily, f.Evidence.Days, "daily counts of %v", f)
			assert.Greater(t, f.Evidence.Observed, f.Evidence.Baseline, "observed vs baseline of %v", f)
		case KindDormantAccount:
			require.NotNil(t, f.Evidence, "evidence of %v", f)
			assert.GreaterOrEqual(t, f.Evidence.Days, 21, "idle days of %v", f)
			assert.NotNil(t, f.Evidence.LastSeen, "last seen of %v", f)
		case KindCoordinatedAccess:
			require.NotNil(t, f.Evidence, "evidence of %v", f)
			assert.Equal(t, crowdID, f.UserID)
			assert.GreaterOrEqual(t, len(f.Evidence.Identities), 3, "identities of %v", f)
			assert.GreaterOrEqual(t, len(f.Evidence.Roles), 1, "roles of %v", f)
		case KindNewSource:
			require.NotNil(t, f.Evidence, "evidence of %v", f)
			assert.True(t, f.Evidence.Network != "" || f.Evidence.Client != "", "network or client of %v", f)
		case KindWeekendActivity:
			require.NotNil(t, f.Evidence, "evidence of %v", f)
			assert.NotEmpty(t, f.Evidence.Day, "day of %v", f)
		}
	}
	for _, k := range Kinds() {
		assert.True(t, seen[k], "no %s finding in the scenario", k)
	}
}

func TestDur(t *testing.T) {
	for in, want := range map[time.Duration]string{10 * time.Minute: "10m", time.Hour: "1h", 90 * time.Minute: "1h30m", 45 * time.Second: "45s", 2*time.Hour + 5*time.Second: "2h0m5s"} {
		assert.Equal(t, want, dur(int64(in)), "dur(%v)", in)
	}
}

// TestIdleUsersForgotten: identities idle for longer than forget_days do
// not stay in memory; identities idle for less do (dormant_account needs
// them).
func TestIdleUsersForgotten(t *testing.T) {
	a, err := NewAnalyzer(Config{DormantDays: 1, ForgetDays: 2})
	require.NoError(t, err)
	for i := range 1000 {
		a.Observe(ev(fmt.Sprintf("old%d", i), 0, telemetry.ActionDecrypt, "r", true))
		a.Observe(ev(fmt.Sprintf("recent%d", i), 48*time.Hour, telemetry.ActionDecrypt, "r", true))
	}
	for i := range sweepEvery {
		a.Observe(ev("current", 72*time.Hour+time.Duration(i)*time.Second, telemetry.ActionDecrypt, "r", true))
	}
	assert.Len(t, a.users, 1001, "identities kept (1000 idle for a day, the current one)")
	assert.NotContains(t, a.users, "old1", "an identity idle for three days")
}

// TestDetectUnsortedManyUsers: on unsorted input, identities analyzed late
// are not lost to the sweep of idle identities, and identities that went
// idle long ago still get their findings.
func TestDetectUnsortedManyUsers(t *testing.T) {
	var events []telemetry.Event
	cfg := Config{CanaryDataIDs: []string{"honey"}, DormantDays: 1, ForgetDays: 2}
	for i := range 300 {
		user := fmt.Sprintf("u%03d", i)
		for j := range 300 { // 90,000 events, more than a sweep period
			events = append(events, ev(user, time.Duration(i)*72*time.Hour+time.Duration(j)*time.Second, telemetry.ActionEncrypt, "r", true))
		}
		events = append(events, ev(user, time.Duration(i)*72*time.Hour+time.Hour, telemetry.ActionDecrypt, "honey", true))
	}
	sorted := Detect(events, cfg)
	rand.New(rand.NewPCG(2, 2)).Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
	shuffled := Detect(events, cfg)
	assert.Len(t, sorted, 300, "findings of sorted input")
	assert.Equal(t, sorted, shuffled, "findings of shuffled input")
}
