package anomaly

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/keyward/keyward/telemetry"
)

// The scenario generator: users with daily rhythms and noise over weeks,
// plus injected incidents of every kind with their ground truth. It is
// deterministic for a seed.

type genConfig struct {
	seed      uint64
	users     int
	heavy     int // users reading hundreds of values an hour
	days      int
	perKind   int  // injected incidents of each kind (0 = clean traffic)
	subtle    bool // incidents around the default thresholds rather than well above
	firstDay  int  // incidents are injected on or after this day
	canaryIDs []string
	retiredID string
}

// injected is one incident with its ground truth.
type injected struct {
	kind       Kind
	also       []Kind // kinds it may legitimately raise as well
	user       string
	start, end time.Time
}

type scenario struct {
	events    []telemetry.Event
	incidents []injected
	cfg       Config
}

var scenarioEpoch = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC) // a Monday

type simUser struct {
	id, role, source string
	start, length    float64 // shift start hour and length in hours
	rate             float64 // successful reads per working hour
	pool             []string
}

var fields = []string{"ssn", "dob", "diagnosis"}

func generate(gc genConfig) scenario {
	rng := rand.New(rand.NewPCG(gc.seed, gc.seed^0x9e3779b97f4a7c15))
	users := make([]*simUser, gc.users)
	for i := range users {
		u := &simUser{
			id:     fmt.Sprintf("u%04d", 1000+i),
			role:   []string{"analyst", "clerk", "physician", "billing"}[rng.IntN(4)],
			source: fmt.Sprintf("10.1.%d.%d", i/200, i%200+10),
			start:  7.5 + rng.Float64()*2.5,
			length: 7.5 + rng.Float64()*1.5,
			rate:   math.Exp(math.Log(6) + rng.Float64()*math.Log(50.0/6)),
		}
		poolSize := 150 + rng.IntN(600)
		if i < gc.heavy {
			u.rate = 150 + rng.Float64()*100
			poolSize = 20000
		}
		base := rng.IntN(90000) + 100
		u.pool = make([]string, poolSize)
		for j := range u.pool {
			u.pool[j] = fmt.Sprintf("patients/%d/%s", base+j*7%100000, fields[j%3])
		}
		users[i] = u
	}
	sc := scenario{cfg: Config{CanaryDataIDs: gc.canaryIDs, RetiredKeyIDs: []string{gc.retiredID}}}
	ev := func(u *simUser, t time.Time, a telemetry.Action, data, key string, ok bool) telemetry.Event {
		return telemetry.Event{Time: t, Action: a, UserID: u.id, Role: u.role, DataID: data, KeyID: key, Success: ok, Source: u.source}
	}
	key := func() string {
		if rng.IntN(10) < 3 {
			return "2"
		}
		return "3"
	}
	// Normal traffic.
	for _, u := range users {
		for d := 0; d < gc.days; d++ {
			day := scenarioEpoch.AddDate(0, 0, d)
			wd := day.Weekday()
			start, length := u.start+(rng.Float64()-0.5), u.length+(rng.Float64()-0.5)*1.5
			mult := math.Exp(rng.NormFloat64() * 0.2)
			if rng.IntN(20) == 0 {
				mult *= 1.6 // a busy day
			}
			if wd == time.Saturday || wd == time.Sunday {
				if rng.IntN(10) != 0 {
					continue
				}
				length /= 2 // some weekend work, within the usual hours
			}
			from := day.Add(time.Duration(start * float64(time.Hour)))
			end := from.Add(time.Duration(length * float64(time.Hour)))
			rate := u.rate * mult
			for t := from; ; {
				lr := rate
				if h := t.Hour(); h == 12 {
					lr *= 0.5 // lunch
				}
				t = t.Add(time.Duration(rng.ExpFloat64() / lr * float64(time.Hour)))
				if !t.Before(end) {
					break
				}
				data := u.pool[rng.IntN(len(u.pool))]
				if rng.IntN(100) < 12 {
					sc.events = append(sc.events, ev(u, t, telemetry.ActionEncrypt, data, "3", true))
				} else {
					sc.events = append(sc.events, ev(u, t, telemetry.ActionDecrypt, data, key(), true))
				}
			}
			// Noise: an occasional denied attempt or failed decrypt.
			if rng.IntN(4) == 0 {
				for range 1 + rng.IntN(2) {
					t := from.Add(time.Duration(rng.Float64() * length * float64(time.Hour)))
					e := ev(u, t, telemetry.ActionAccess, "payroll/"+u.id, "", false)
					e.Attempted = telemetry.ActionDecrypt
					sc.events = append(sc.events, e)
				}
			}
			if rng.IntN(8) == 0 {
				for range 1 + rng.IntN(3) {
					t := from.Add(time.Duration(rng.Float64() * length * float64(time.Hour)))
					sc.events = append(sc.events, ev(u, t, telemetry.ActionDecrypt, u.pool[rng.IntN(len(u.pool))], key(), false))
				}
			}
		}
	}
	// Injected incidents, at most one per user and day, on working days.
	used := map[[2]int]bool{}
	pick := func() (*simUser, time.Time, int) {
		for {
			ui, d := rng.IntN(len(users)), gc.firstDay+rng.IntN(gc.days-gc.firstDay-1)
			day := scenarioEpoch.AddDate(0, 0, d)
			if wd := day.Weekday(); wd == time.Saturday || wd == time.Sunday || used[[2]int{ui, d}] || used[[2]int{ui, d - 1}] || used[[2]int{ui, d + 1}] {
				continue
			}
			used[[2]int{ui, d}] = true
			return users[ui], day, ui
		}
	}
	// inShift returns a time inside the user's usual shift, leaving room
	// for an incident of length dur.
	inShift := func(u *simUser, day time.Time, dur time.Duration) time.Time {
		room := u.length - 1 - dur.Hours()
		return day.Add(time.Duration((u.start + 0.5 + rng.Float64()*max(room, 0.1)) * float64(time.Hour)))
	}
	spread := func(from time.Time, dur time.Duration, n int) []time.Time {
		ts := make([]time.Time, n)
		for i := range ts {
			ts[i] = from.Add(time.Duration(rng.Float64() * float64(dur)))
		}
		slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
		return ts
	}
	add := func(kind Kind, u *simUser, ts []time.Time, also ...Kind) {
		sc.incidents = append(sc.incidents, injected{kind: kind, also: also, user: u.id, start: ts[0], end: ts[len(ts)-1]})
	}
	// span picks from [lo, hi), or from [slo, shi) for subtle incidents.
	span := func(lo, hi, slo, shi float64) float64 {
		if gc.subtle {
			lo, hi = slo, shi
		}
		return lo + rng.Float64()*(hi-lo)
	}
	for range gc.perKind {
		// volume_spike: a script re-reading a few records at many times the usual rate.
		u, day, _ := pick()
		dur := time.Duration((45 + rng.Float64()*75) * float64(time.Minute))
		n := int(max(u.rate*span(8, 14, 3, 8), span(120, 220, 60, 160)) * dur.Hours())
		ts := spread(inShift(u, day, dur), dur, n)
		few := u.pool[:min(30, len(u.pool))]
		for _, t := range ts {
			sc.events = append(sc.events, ev(u, t, telemetry.ActionDecrypt, few[rng.IntN(len(few))], key(), true))
		}
		add(KindVolumeSpike, u, ts)

		// bulk_read: hundreds of distinct records within minutes.
		u, day, _ = pick()
		dur = time.Duration((3 + rng.Float64()*5) * float64(time.Minute))
		n = int(span(250, 1200, 60, 300))
		ts = spread(inShift(u, day, dur), dur, n)
		base := rng.IntN(50000) + 200000
		for i, t := range ts {
			sc.events = append(sc.events, ev(u, t, telemetry.ActionDecrypt, fmt.Sprintf("patients/%d/ssn", base+i), key(), true))
		}
		add(KindBulkRead, u, ts, KindVolumeSpike)

		// access_denied_burst: probing a keyring the role may not use.
		u, day, _ = pick()
		dur = time.Duration((2 + rng.Float64()*6) * float64(time.Minute))
		ts = spread(inShift(u, day, dur), dur, int(span(12, 42, 5, 21)))
		for _, t := range ts {
			e := ev(u, t, telemetry.ActionAccess, fmt.Sprintf("salaries/%d", rng.IntN(500)), "", false)
			e.Attempted = telemetry.ActionDecrypt
			sc.events = append(sc.events, e)
		}
		add(KindAccessDeniedBurst, u, ts)

		// decrypt_failure_burst: tampered tokens or the wrong key.
		u, day, _ = pick()
		dur = time.Duration((3 + rng.Float64()*7) * float64(time.Minute))
		ts = spread(inShift(u, day, dur), dur, int(span(12, 52, 5, 26)))
		for _, t := range ts {
			sc.events = append(sc.events, ev(u, t, telemetry.ActionDecrypt, u.pool[rng.IntN(len(u.pool))], key(), false))
		}
		add(KindDecryptFailureBurst, u, ts)

		// off_hours: a session at night, far from the user's shift.
		u, day, _ = pick()
		dur = time.Duration((20 + rng.Float64()*70) * float64(time.Minute))
		// At least 4h (subtle: 2.5h) after the shift, as long before the next.
		gap := span(4, 4, 2.5, 2.5)
		at := u.start + u.length + gap + rng.Float64()*(24-u.length-2*gap)
		ts = spread(day.Add(time.Duration(at*float64(time.Hour))), dur, int(span(5, 21, 2, 9)))
		for _, t := range ts {
			sc.events = append(sc.events, ev(u, t, telemetry.ActionDecrypt, u.pool[rng.IntN(len(u.pool))], key(), true))
		}
		add(KindOffHours, u, ts)

		// canary_access: touching a poison record.
		u, day, _ = pick()
		ts = spread(inShift(u, day, 10*time.Minute), 10*time.Minute, 1+rng.IntN(3))
		for _, t := range ts {
			sc.events = append(sc.events, ev(u, t, telemetry.ActionDecrypt, gc.canaryIDs[rng.IntN(len(gc.canaryIDs))], key(), true))
		}
		add(KindCanaryAccess, u, ts)

		// retired_key_use: tokens under a disabled key.
		u, day, _ = pick()
		ts = spread(inShift(u, day, 20*time.Minute), 20*time.Minute, 1+rng.IntN(8))
		ok := rng.IntN(2) == 0
		for _, t := range ts {
			sc.events = append(sc.events, ev(u, t, telemetry.ActionDecrypt, u.pool[rng.IntN(len(u.pool))], gc.retiredID, ok))
		}
		add(KindRetiredKeyUse, u, ts)
	}
	slices.SortStableFunc(sc.events, func(a, b telemetry.Event) int { return a.Time.Compare(b.Time) })
	return sc
}

// quality matches findings to the ground truth: a finding is a true
// positive when an injected incident of the same user overlaps it (with a
// little slack) and its kind is the incident's or one the incident may also
// raise; an incident is recalled when a finding of its own kind matches it.
type quality struct {
	tp, fp, hit, total map[Kind]int
	falsePositives     []Finding
	missed             []injected
}

func measure(sc scenario, findings []Finding) quality {
	q := quality{tp: map[Kind]int{}, fp: map[Kind]int{}, hit: map[Kind]int{}, total: map[Kind]int{}}
	const slack = 10 * time.Minute
	overlaps := func(f Finding, in injected) bool {
		return f.UserID == in.user && !f.Start.After(in.end.Add(slack)) && !f.End.Before(in.start.Add(-slack))
	}
	for _, f := range findings {
		ok := false
		for _, in := range sc.incidents {
			if overlaps(f, in) && (f.Kind == in.kind || slices.Contains(in.also, f.Kind)) {
				ok = true
				break
			}
		}
		if ok {
			q.tp[f.Kind]++
		} else {
			q.fp[f.Kind]++
			q.falsePositives = append(q.falsePositives, f)
		}
	}
	for _, in := range sc.incidents {
		q.total[in.kind]++
		found := false
		for _, f := range findings {
			if f.Kind == in.kind && overlaps(f, in) {
				found = true
				break
			}
		}
		if found {
			q.hit[in.kind]++
		} else {
			q.missed = append(q.missed, in)
		}
	}
	return q
}

func (q quality) precision(k Kind) float64 {
	if q.tp[k]+q.fp[k] == 0 {
		return 1
	}
	return float64(q.tp[k]) / float64(q.tp[k]+q.fp[k])
}

func (q quality) recall(k Kind) float64 {
	if q.total[k] == 0 {
		return 1
	}
	return float64(q.hit[k]) / float64(q.total[k])
}
