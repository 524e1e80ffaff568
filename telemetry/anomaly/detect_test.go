package anomaly

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

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
			got := kinds(Detect(tt.events(), tt.cfg))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Detect = %v, want %v", got, tt.want)
			}
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
	close := append(burst(0), burst(30*time.Minute)...)
	if got := kinds(Detect(close, Config{})); !reflect.DeepEqual(got, []string{"access_denied_burst/u/24"}) {
		t.Errorf("two bursts 30m apart = %v, want one finding", got)
	}
	apart := append(burst(0), burst(2*time.Hour)...)
	if got := kinds(Detect(apart, Config{})); len(got) != 2 {
		t.Errorf("two bursts 2h apart = %v, want two findings", got)
	}
	if got := kinds(Detect(apart, Config{IncidentGap: Duration(3 * time.Hour)})); len(got) != 1 {
		t.Errorf("two bursts 2h apart with a 3h gap = %v, want one finding", got)
	}
}

// Detect does not need sorted input, and does not change it.
func TestDetectUnsorted(t *testing.T) {
	sc := generate(genConfig{seed: 3, users: 8, days: 12, perKind: 2, firstDay: 5,
		canaryIDs: []string{"honey"}, retiredID: "1"})
	want := Detect(sc.events, sc.cfg)
	if len(want) < 14 {
		t.Fatalf("only %d findings", len(want))
	}
	shuffled := append([]telemetry.Event(nil), sc.events...)
	rand.New(rand.NewPCG(1, 1)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	keep := append([]telemetry.Event(nil), shuffled...)
	got := Detect(shuffled, sc.cfg)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Detect(shuffled) differs: %d vs %d findings", len(got), len(want))
	}
	if !reflect.DeepEqual(shuffled, keep) {
		t.Error("Detect reordered its input")
	}
}

func TestDetectPanicsOnInvalidConfig(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Detect with an invalid config did not panic")
		}
	}()
	Detect(nil, Config{DeniedMin: -1})
}

func TestAnalyzerAlertAndReport(t *testing.T) {
	var mu sync.Mutex
	var alerts, reports []Finding
	a, err := NewAnalyzer(Config{}, WithAlert(func(f Finding) { mu.Lock(); alerts = append(alerts, f); mu.Unlock() }),
		WithReport(func(f Finding) { reports = append(reports, f) }))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		a.Observe(ev("u", time.Duration(i)*10*time.Second, telemetry.ActionDecrypt, "x", false))
	}
	if len(alerts) != 1 || alerts[0].Events != 10 || alerts[0].Kind != KindDecryptFailureBurst {
		t.Fatalf("alerts = %v, want one at the 10th failure", alerts)
	}
	if len(reports) != 0 {
		t.Fatalf("reported %v before the incident closed", reports)
	}
	// A later event beyond the gap closes the incident.
	a.Observe(ev("u", 3*time.Hour, telemetry.ActionDecrypt, "x", true))
	if len(reports) != 1 || reports[0].Events != 30 || !reports[0].End.Equal(t0.Add(290*time.Second)) {
		t.Fatalf("reports = %v, want the closed incident with 30 events", reports)
	}
	if fs := a.Flush(); fs != nil {
		t.Errorf("Flush with a report function = %v, want nil", fs)
	}
}

func TestAnalyzerConcurrent(t *testing.T) {
	a, err := NewAnalyzer(Config{CanaryDataIDs: []string{"honey"}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				data := "r"
				if i == 100 {
					data = "honey"
				}
				a.WriteEvent(t.Context(), ev(fmt.Sprintf("u%d", g), time.Duration(i)*time.Second, telemetry.ActionDecrypt, data, true))
			}
		}()
	}
	wg.Wait()
	if got := a.Flush(); len(got) != 4 {
		t.Errorf("Flush = %v, want four canary findings", kinds(got))
	}
}

// TestObserveAllocations: a known user's event does not allocate.
func TestObserveAllocations(t *testing.T) {
	a, _ := NewAnalyzer(Config{CanaryDataIDs: []string{"honey"}, RetiredKeyIDs: []string{"1"}})
	e := ev("u", 0, telemetry.ActionDecrypt, "r/1", true)
	e.KeyID = "3"
	a.Observe(e)
	allocs := testing.AllocsPerRun(1000, func() {
		e.Time = e.Time.Add(time.Second)
		a.Observe(e)
	})
	if allocs != 0 {
		t.Errorf("Observe allocates %.1f times, want 0", allocs)
	}
}

// TestMemoryBounded: the state kept per user does not grow with the
// number of events once the windows are full.
func TestMemoryBounded(t *testing.T) {
	a, _ := NewAnalyzer(Config{})
	for i := range 200_000 {
		a.Observe(ev("u", time.Duration(i)*time.Second, telemetry.ActionDecrypt, fmt.Sprintf("r/%d", i), true))
	}
	u := a.users["u"]
	if n := len(u.bulkQ) - u.bulkHead; n > 601 || len(u.seen) > 601 || cap(u.bulkQ) > 4096 {
		t.Errorf("bulk state holds %d entries (cap %d), %d seen; want about one window (600)", n, cap(u.bulkQ), len(u.seen))
	}
	// After a burst of 100,000 distinct reads in a minute, a quiet hour
	// gives the memory back.
	burst := 200_000 * time.Second
	for i := range 100_000 {
		a.Observe(ev("u", burst+time.Duration(i)*600*time.Microsecond, telemetry.ActionDecrypt, fmt.Sprintf("b/%d", i), true))
	}
	for i := range 7200 {
		a.Observe(ev("u", burst+time.Hour+time.Duration(i)*time.Second, telemetry.ActionDecrypt, "r/1", true))
	}
	if cap(u.bulkQ) > 4096 || len(u.seen) > 10 {
		t.Errorf("after the burst: queue cap %d, %d seen", cap(u.bulkQ), len(u.seen))
	}
}

func TestFindingForms(t *testing.T) {
	f := Finding{Kind: KindBulkRead, UserID: "u2077", Start: time.Date(2026, 11, 3, 22, 10, 4, 0, time.FixedZone("x", 3600)),
		End: time.Date(2026, 11, 3, 21, 14, 40, 0, time.UTC), Severity: SeverityHigh, Score: 3.41666, Events: 340,
		Detail: "340 distinct data IDs decrypted within 10m (threshold 100)"}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"kind":"bulk_read","user_id":"u2077","start":"2026-11-03T21:10:04Z","end":"2026-11-03T21:14:40Z","severity":"high","score":3.42,"events":340,"detail":"340 distinct data IDs decrypted within 10m (threshold 100)"}`
	if string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
	var buf bytes.Buffer
	if err := WriteJSON(&buf, []Finding{f, f}); err != nil || buf.String() != want+"\n"+want+"\n" {
		t.Errorf("WriteJSON = %q, %v", buf.String(), err)
	}
	buf.Reset()
	g := f
	g.UserID = "evil\n\x1b[31m"
	if err := WriteTable(&buf, []Finding{f, g}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "SEVERITY") || !strings.Contains(lines[1], "bulk_read") || strings.ContainsAny(buf.String(), "\x1b") {
		t.Errorf("WriteTable =\n%s", buf.String())
	}
	buf.Reset()
	WriteTable(&buf, nil)
	if buf.String() != "no findings\n" {
		t.Errorf("WriteTable(nil) = %q", buf.String())
	}
	if s := g.String(); strings.ContainsAny(s, "\n\x1b") {
		t.Errorf("String() = %q keeps control characters", s)
	}
}

// The explanation of each kind reads as one line and carries its numbers.
func TestFindingDetails(t *testing.T) {
	sc := generate(genConfig{seed: 5, users: 10, days: 14, perKind: 1, firstDay: 6, canaryIDs: []string{"honey"}, retiredID: "1"})
	seen := map[Kind]bool{}
	for _, f := range Detect(sc.events, sc.cfg) {
		seen[f.Kind] = true
		if f.Detail == "" || strings.Contains(f.Detail, "\n") || f.Score <= 0 || f.Events <= 0 || f.End.Before(f.Start) {
			t.Errorf("finding %v", f)
		}
		if f.Kind == KindCanaryAccess && f.Severity != SeverityHigh {
			t.Errorf("canary finding not high: %v", f)
		}
	}
	for _, k := range Kinds() {
		if !seen[k] {
			t.Errorf("no %s finding in the scenario", k)
		}
	}
}

func TestDur(t *testing.T) {
	for in, want := range map[time.Duration]string{10 * time.Minute: "10m", time.Hour: "1h", 90 * time.Minute: "1h30m", 45 * time.Second: "45s", 2*time.Hour + 5*time.Second: "2h0m5s"} {
		if got := dur(int64(in)); got != want {
			t.Errorf("dur(%v) = %s, want %s", in, got, want)
		}
	}
}

// TestIdleUsersForgotten: users who stopped long ago do not stay in memory.
func TestIdleUsersForgotten(t *testing.T) {
	a, _ := NewAnalyzer(Config{BaselineDays: 2})
	for i := range 1000 {
		a.Observe(ev(fmt.Sprintf("old%d", i), 0, telemetry.ActionDecrypt, "r", true))
	}
	for i := range sweepEvery {
		a.Observe(ev("current", 72*time.Hour+time.Duration(i)*time.Second, telemetry.ActionDecrypt, "r", true))
	}
	if n := len(a.users); n != 1 {
		t.Errorf("%d users kept, want 1", n)
	}
}

// TestDetectUnsortedManyUsers: on unsorted input, users analyzed late are
// not lost to the sweep of idle users, and users who went idle long ago
// still get their findings.
func TestDetectUnsortedManyUsers(t *testing.T) {
	var events []telemetry.Event
	cfg := Config{CanaryDataIDs: []string{"honey"}, BaselineDays: 1}
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
	if len(sorted) != 300 || !reflect.DeepEqual(sorted, shuffled) {
		t.Errorf("sorted input: %d findings, shuffled: %d; want 300 each, equal", len(sorted), len(shuffled))
	}
}
