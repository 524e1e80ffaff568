package anomaly

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/keyward/keyward/telemetry"
)

// The scenario generator: people and service identities with daily and
// weekly rhythms, roles that read their own tables and columns, sources and
// clients, and realistic noise (joiners, role changes, a group month-end,
// returns from leave, on-call weekends, a trip across time zones, VPN use,
// busy days, stray denials and failures) over weeks, plus injected incidents
// of every pattern with their ground truth. It is deterministic for a seed.

type genConfig struct {
	seed      uint64
	users     int // people
	services  int // service identities
	heavy     int // people reading hundreds of values an hour
	days      int
	perKind   int  // injected incidents of each pattern (0 = clean traffic)
	firstDay  int  // incidents are injected on or after this day
	noise     bool // joiners, role changes, month-end, leave, on-call, travel
	noiseFrom int  // the irregular noise (not month-end, on-call) starts on or after this day
	canaryIDs []string
	retiredID string
	holidays  []string
}

// The patterns injected, with the finding kind each must raise and the
// kinds it may legitimately raise as well.
type pattern struct {
	name string
	kind Kind
	also []Kind
}

var patterns = []pattern{
	{"volume_spike", KindVolumeSpike, nil},
	{"bulk_read", KindBulkRead, []Kind{KindVolumeSpike}},
	{"access_denied_burst", KindAccessDeniedBurst, nil},
	{"decrypt_failure_burst", KindDecryptFailureBurst, nil},
	{"off_hours", KindOffHours, nil},
	{"canary_access", KindCanaryAccess, []Kind{KindFirstAccess}},
	{"retired_key_use", KindRetiredKeyUse, nil},
	{"low_and_slow", KindNewDataDrift, nil},
	{"scope_drift", KindFirstAccess, []Kind{KindNewDataDrift}},
	{"dormant_account", KindDormantAccount, nil},
	{"coordinated", KindCoordinatedAccess, []Kind{KindNewSource, KindVolumeSpike}},
	{"unusual_source", KindNewSource, nil},
	{"weekend_work", KindWeekendActivity, nil},
}

// injected is one incident with its ground truth.
type injected struct {
	pattern    string
	kind       Kind
	also       []Kind
	users      []string
	start, end time.Time
}

type scenario struct {
	events    []telemetry.Event
	incidents []injected
	cfg       Config
	// activeDays counts (identity, day) pairs with activity, per day.
	activeDays []int
	firstDay   int // incidents start on or after this day
}

var scenarioEpoch = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC) // a Monday

// The roles and the resources (table/column) each reads.
var roleResources = map[string][]string{
	"physician": {"patients/diagnosis", "patients/dob", "prescriptions/drug", "lab/result"},
	"clerk":     {"patients/dob", "patients/address", "appointments/note"},
	"billing":   {"invoices/iban", "invoices/amount", "patients/address"},
	"analyst":   {"lab/result", "patients/diagnosis", "studies/cohort"},
}

var roleNames = []string{"physician", "clerk", "billing", "analyst"}

// offRole are resources no role reads: where scope drift goes.
var offRole = []string{"salaries/amount", "payroll/bank", "hr/review", "keys/backup"}

type simUser struct {
	id, role, client string
	service          bool
	src, vpn         string  // primary source, second network ("" if none)
	start, length    float64 // shift start hour and length in hours
	rate             float64 // successful reads per working hour
	pool             []string
	pool0            []string // the records as first made, for injected reads
	weekendWorker    bool
	weekendDone      bool // worked an injected weekend day
	onCall           int  // on-call rotation slot + 1 (0: not on call)
	from, to         int  // active days [from, to)
	away             map[int]bool
	newRole          string // role from day roleDay on
	roleDay          int
	travel           map[int]bool // days abroad (shifted hours, hotel network)
}

type generator struct {
	gc       genConfig
	rng      *rand.Rand
	users    []*simUser
	sc       scenario
	fresh    int // record numbers of records created during the scenario
	holidays map[int]bool
	used     map[[2]int]bool  // user index, day: an incident is there
	byUser   map[string][]int // indexes of each identity's ordinary events
}

func (g *generator) freshID(resource string) string {
	g.fresh++
	table, column, _ := cut(resource)
	return fmt.Sprintf("%s/%d/%s", table, 5_000_000+g.fresh, column)
}

func cut(resource string) (table, column string, ok bool) {
	for i := 0; i < len(resource); i++ {
		if resource[i] == '/' {
			return resource[:i], resource[i+1:], true
		}
	}
	return resource, "", false
}

func (g *generator) pool(role string, n int) []string {
	res := roleResources[role]
	base := g.rng.IntN(400_000)
	pool := make([]string, n)
	for j := range pool {
		table, column, _ := cut(res[g.rng.IntN(len(res))])
		pool[j] = fmt.Sprintf("%s/%d/%s", table, base+j*7%500_000, column)
	}
	return pool
}

func generate(gc genConfig) scenario {
	g := &generator{gc: gc, rng: rand.New(rand.NewPCG(gc.seed, gc.seed^0x9e3779b97f4a7c15)), used: map[[2]int]bool{}, holidays: map[int]bool{}}
	for _, h := range gc.holidays {
		d, err := time.Parse(time.DateOnly, h)
		if err != nil {
			panic(err)
		}
		g.holidays[int(d.Sub(scenarioEpoch).Hours()/24)] = true
	}
	g.sc = scenario{
		cfg:        Config{CanaryDataIDs: gc.canaryIDs, RetiredKeyIDs: []string{gc.retiredID}, Holidays: gc.holidays},
		activeDays: make([]int, gc.days),
		firstDay:   gc.firstDay,
	}
	rng := g.rng
	for i := range gc.users {
		u := &simUser{
			id:     fmt.Sprintf("u%04d", 1000+i),
			role:   roleNames[i%len(roleNames)],
			client: "clinic-web",
			src:    fmt.Sprintf("10.1.%d.%d", 10+i%7, 20+i),
			start:  7.5 + rng.Float64()*2.5,
			length: 7.5 + rng.Float64()*1.5,
			rate:   math.Exp(math.Log(6) + rng.Float64()*math.Log(50.0/6)),
			to:     gc.days,
			away:   map[int]bool{},
			travel: map[int]bool{},
		}
		if rng.IntN(10) < 3 {
			u.vpn = fmt.Sprintf("10.8.%d.%d", rng.IntN(4), 10+rng.IntN(200))
		}
		u.weekendWorker = rng.IntN(5) == 0 // works about a third of the weekend days
		n := 150 + rng.IntN(600)
		if i < gc.heavy {
			u.rate, n = 150+rng.Float64()*100, 20000
		}
		u.pool = g.pool(u.role, n)
		u.pool0 = slices.Clone(u.pool)
		g.users = append(g.users, u)
	}
	for i := range gc.services {
		name := []string{"billing-batch", "lab-sync", "reporting", "portal-api", "archiver"}[i%5]
		role := []string{"billing", "analyst", "analyst", "clerk", "physician"}[i%5]
		u := &simUser{
			id: "svc-" + name, role: "service-" + name, client: name, service: true,
			src: fmt.Sprintf("10.20.0.%d", 10+i), rate: 20 + rng.Float64()*40, to: gc.days,
			away: map[int]bool{}, travel: map[int]bool{},
		}
		u.pool = g.pool(role, 3000)
		u.pool0 = slices.Clone(u.pool)
		g.users = append(g.users, u)
	}
	if gc.noise {
		g.noise()
	}
	hours := 0.0
	for _, u := range g.users {
		hours += u.rate * max(u.length, 24*b2f(u.service))
	}
	g.sc.events = make([]telemetry.Event, 0, int(hours*float64(gc.days)*0.9))
	for _, u := range g.users {
		g.traffic(u)
	}
	g.inject()
	g.sc.events = sortByTime(g.sc.events)
	return g.sc
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// sortByTime returns events in time order, equal times in input order.
func sortByTime(events []telemetry.Event) []telemetry.Event {
	type key struct {
		t int64
		i int
	}
	keys := make([]key, len(events))
	for i := range events {
		keys[i] = key{events[i].Time.UnixNano(), i}
	}
	slices.SortFunc(keys, func(a, b key) int {
		if a.t != b.t {
			return cmp.Compare(a.t, b.t)
		}
		return cmp.Compare(a.i, b.i)
	})
	out := make([]telemetry.Event, len(events))
	for j, k := range keys {
		out[j] = events[k.i]
	}
	return out
}

// people returns the indexes of ordinary people (not heavy, not special).
func (g *generator) person(ok func(*simUser) bool) int {
	for tries := 0; ; tries++ {
		if tries == 100_000 {
			panic("scenario too small: no ordinary person left")
		}
		i := g.gc.heavy + g.rng.IntN(g.gc.users-g.gc.heavy)
		if u := g.users[i]; !u.weekendWorker && u.onCall == 0 && u.from == 0 && u.to == g.gc.days && len(u.away) == 0 && u.newRole == "" && len(u.travel) == 0 && (ok == nil || ok(u)) {
			return i
		}
	}
}

// noise adds the known-good irregularities.
func (g *generator) noise() {
	gc, rng := g.gc, g.rng
	lo := max(gc.noiseFrom, 7)
	// Joiners.
	for range 3 {
		g.users[g.person(nil)].from = lo + rng.IntN(gc.days-lo-7)
	}
	// Role changes.
	for range 2 {
		u := g.users[g.person(nil)]
		u.newRole, u.roleDay = roleNames[(slices.Index(roleNames, u.role)+1)%len(roleNames)], max(lo, 14)+rng.IntN(gc.days-max(lo, 14)-3)
	}
	// Returns from leave: 7 to 14 days away.
	for range 3 {
		u := g.users[g.person(nil)]
		from := max(lo-10, 3) + rng.IntN(gc.days-max(lo-10, 3)-14)
		for d := from; d < from+7+rng.IntN(8); d++ {
			u.away[d] = true
		}
	}
	// On-call weekends: up to four clerks take turns.
	slot := 1
	for _, i := range rng.Perm(gc.users - gc.heavy) {
		if u := g.users[gc.heavy+i]; slot <= 4 && u.role == "clerk" && u.from == 0 && len(u.away) == 0 && u.newRole == "" && len(u.travel) == 0 {
			u.onCall = slot
			slot++
		}
	}
	// A trip across time zones: four to five days, six hours ahead, from a
	// hotel network.
	u := g.users[g.person(nil)]
	from := max(lo, 10) + rng.IntN(gc.days-max(lo, 10)-6)
	for d := from; d < from+4+rng.IntN(2); d++ {
		u.travel[d] = true
	}
}

func (g *generator) offDay(d int) bool {
	wd := scenarioEpoch.AddDate(0, 0, d).Weekday()
	return wd == time.Saturday || wd == time.Sunday || g.holidays[d]
}

// monthEnd reports whether day d is one of the last two weekdays of its month.
func (g *generator) monthEnd(d int) bool {
	if g.offDay(d) {
		return false
	}
	left := 0
	for e := d + 1; scenarioEpoch.AddDate(0, 0, e).Month() == scenarioEpoch.AddDate(0, 0, d).Month(); e++ {
		if !g.offDay(e) {
			left++
		}
	}
	return left < 2
}

func (g *generator) ev(u *simUser, t time.Time, a telemetry.Action, data, key string, ok bool) telemetry.Event {
	return telemetry.Event{Time: t, Action: a, UserID: u.id, Role: u.role, DataID: data, KeyID: key, Success: ok, Source: u.src, Client: u.client}
}

func (g *generator) key() string {
	if g.rng.IntN(10) < 3 {
		return "2"
	}
	return "3"
}

// traffic generates an identity's ordinary days.
func (g *generator) traffic(u *simUser) {
	rng := g.rng
	hotel := fmt.Sprintf("192.0.2.%d", 10+rng.IntN(200))
	for d := u.from; d < u.to; d++ {
		if u.away[d] {
			continue
		}
		if u.newRole != "" && d == u.roleDay {
			u.role = u.newRole
			u.pool = g.pool(u.role, len(u.pool))
		}
		day := scenarioEpoch.AddDate(0, 0, d)
		src := u.src
		if u.vpn != "" && rng.IntN(5) == 0 {
			src = u.vpn
		}
		start, length := u.start+(rng.Float64()-0.5), u.length+(rng.Float64()-0.5)*1.5
		mult := math.Exp(rng.NormFloat64() * 0.2)
		if rng.IntN(20) == 0 {
			mult *= 1.6 // a busy day
		}
		switch {
		case u.service:
			start, length = 0, 24
			if g.offDay(d) {
				mult *= 0.5
			}
		case g.offDay(d):
			weekend := day.Weekday() == time.Saturday || day.Weekday() == time.Sunday
			onDuty := u.onCall > 0 && weekend && (d/7)%4 == u.onCall-1
			if !onDuty && !(u.weekendWorker && weekend && rng.IntN(3) == 0) {
				continue
			}
			length /= 2 // within the usual hours
		}
		if u.travel[d] {
			start += 6
			src = hotel
		}
		active := false
		from := day.Add(time.Duration(start * float64(time.Hour)))
		end := from.Add(time.Duration(length * float64(time.Hour)))
		rate := u.rate * mult
		fresh := 0.03
		if u.role == "billing" && g.monthEnd(d) {
			rate *= 2 // the month-end close: new invoices and the ledger
			fresh = 0.4
		}
		for t := from; ; {
			lr := rate
			if h := t.Hour(); h == 12 && !u.service {
				lr *= 0.5 // lunch
			}
			t = t.Add(time.Duration(rng.ExpFloat64() / lr * float64(time.Hour)))
			if !t.Before(end) {
				break
			}
			active = true
			data := u.pool[rng.IntN(len(u.pool))]
			if rng.Float64() < fresh {
				res := roleResources[u.role]
				if u.service {
					res = []string{resourceOf(data)}
				}
				r := res[rng.IntN(len(res))]
				if fresh > 0.1 && rng.IntN(4) == 0 {
					r = "ledger/close"
				}
				data = g.freshID(r)
				u.pool[rng.IntN(len(u.pool))] = data // new records are read again
			}
			e := g.ev(u, t, telemetry.ActionDecrypt, data, g.key(), true)
			if rng.IntN(100) < 12 {
				e.Action, e.KeyID = telemetry.ActionEncrypt, "3"
			}
			e.Source = src
			g.sc.events = append(g.sc.events, e)
		}
		if !active {
			continue
		}
		g.sc.activeDays[d]++
		// Noise: an occasional denied attempt or failed decrypt.
		if rng.IntN(4) == 0 {
			for range 1 + rng.IntN(2) {
				t := from.Add(time.Duration(rng.Float64() * length * float64(time.Hour)))
				e := g.ev(u, t, telemetry.ActionAccess, "payroll/"+u.id+"/salary", "", false)
				e.Attempted, e.Source = telemetry.ActionDecrypt, src
				g.sc.events = append(g.sc.events, e)
			}
		}
		if rng.IntN(8) == 0 {
			for range 1 + rng.IntN(3) {
				t := from.Add(time.Duration(rng.Float64() * length * float64(time.Hour)))
				e := g.ev(u, t, telemetry.ActionDecrypt, u.pool[rng.IntN(len(u.pool))], g.key(), false)
				e.Source = src
				g.sc.events = append(g.sc.events, e)
			}
		}
	}
}

func resourceOf(dataID string) string {
	e := telemetry.Event{DataID: dataID}
	return e.ResourceName()
}

// pick returns an ordinary person (not heavy unless heavyOK) and a working
// day on or after firstDay with no other incident of that person next to
// it.
func (g *generator) pick(heavyOK bool, minDay int) (*simUser, time.Time, int) {
	return g.pickIn(heavyOK, minDay, g.gc.days-1)
}

// pickIn is pick with the day before maxDay.
func (g *generator) pickIn(heavyOK bool, minDay, maxDay int) (*simUser, time.Time, int) {
	gc, rng := g.gc, g.rng
	for {
		lo := 0
		if !heavyOK {
			lo = gc.heavy
		}
		ui := lo + rng.IntN(gc.users-lo)
		d := max(gc.firstDay, minDay) + rng.IntN(maxDay-max(gc.firstDay, minDay))
		u := g.users[ui]
		if g.offDay(d) || g.used[[2]int{ui, d}] || g.used[[2]int{ui, d - 1}] || g.used[[2]int{ui, d + 1}] ||
			d < u.from+7 || d >= u.to || u.away[d] || u.travel[d] || u.travel[d-1] || u.newRole != "" {
			continue
		}
		g.used[[2]int{ui, d}] = true
		return u, scenarioEpoch.AddDate(0, 0, d), ui
	}
}

// inShift returns a time inside the user's usual shift, leaving room for
// an incident of length dur.
func (g *generator) inShift(u *simUser, day time.Time, dur time.Duration) time.Time {
	room := u.length - 1 - dur.Hours()
	return day.Add(time.Duration((u.start + 0.5 + g.rng.Float64()*max(room, 0.1)) * float64(time.Hour)))
}

func (g *generator) spread(from time.Time, dur time.Duration, n int) []time.Time {
	ts := make([]time.Time, n)
	for i := range ts {
		ts[i] = from.Add(time.Duration(g.rng.Float64() * float64(dur)))
	}
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	return ts
}

func (g *generator) add(name string, start, end time.Time, users ...*simUser) {
	i := slices.IndexFunc(patterns, func(p pattern) bool { return p.name == name })
	in := injected{pattern: name, kind: patterns[i].kind, also: patterns[i].also, start: start, end: end}
	for _, u := range users {
		in.users = append(in.users, u.id)
	}
	g.sc.incidents = append(g.sc.incidents, in)
}

// events calls fn with each ordinary event of u within [from, to).
func (g *generator) events(u *simUser, from, to time.Time, fn func(*telemetry.Event)) {
	if g.byUser == nil {
		g.byUser = map[string][]int{}
		for i := range g.sc.events {
			id := g.sc.events[i].UserID
			g.byUser[id] = append(g.byUser[id], i)
		}
	}
	for _, i := range g.byUser[u.id] {
		if e := &g.sc.events[i]; !e.Time.Before(from) && e.Time.Before(to) {
			fn(e)
		}
	}
}

// inject adds the incidents, each just above the default thresholds (or,
// for the behaviour patterns, as the attacks they stand for look).
func (g *generator) inject() {
	gc, rng := g.gc, g.rng
	span := func(lo, hi float64) float64 { return lo + rng.Float64()*(hi-lo) }
	for range gc.perKind {
		g.dormant() // first: it removes weeks of the identity's traffic
	}
	for range gc.perKind {
		// volume_spike: a script re-reading a few records at 8-10 times
		// the user's hourly rate (about 4.5-6 times its usual daily peak).
		u, day, _ := g.pick(false, 7)
		dur := time.Duration(span(60, 90) * float64(time.Minute))
		ts := g.spread(g.inShift(u, day, dur), dur, int(u.rate*span(8, 10)*dur.Hours()))
		few := u.pool0[:min(30, len(u.pool0))]
		for _, t := range ts {
			g.sc.events = append(g.sc.events, g.ev(u, t, telemetry.ActionDecrypt, few[rng.IntN(len(few))], g.key(), true))
		}
		g.add("volume_spike", ts[0], ts[len(ts)-1], u)

		// bulk_read: 1.1-1.8 times the user's bulk threshold of distinct
		// never-read records of the user's own tables within minutes.
		u, day, _ = g.pick(false, 0)
		dur = time.Duration(span(3, 8) * float64(time.Minute))
		ts = g.spread(g.inShift(u, day, dur), dur, int(max(100, 5*u.rate*1.7/6)*span(1.1, 1.8)))
		for _, t := range ts {
			res := roleResources[u.role]
			g.sc.events = append(g.sc.events, g.ev(u, t, telemetry.ActionDecrypt, g.freshID(res[rng.IntN(len(res))]), g.key(), true))
		}
		g.add("bulk_read", ts[0], ts[len(ts)-1], u)

		// access_denied_burst: 11-20 denials within minutes.
		u, day, _ = g.pick(true, 0)
		dur = time.Duration(span(2, 6) * float64(time.Minute))
		ts = g.spread(g.inShift(u, day, dur), dur, 11+rng.IntN(10))
		for _, t := range ts {
			e := g.ev(u, t, telemetry.ActionAccess, fmt.Sprintf("salaries/%d/amount", rng.IntN(500)), "", false)
			e.Attempted = telemetry.ActionDecrypt
			g.sc.events = append(g.sc.events, e)
		}
		g.add("access_denied_burst", ts[0], ts[len(ts)-1], u)

		// decrypt_failure_burst: 11-20 tampered tokens within minutes.
		u, day, _ = g.pick(true, 0)
		dur = time.Duration(span(3, 8) * float64(time.Minute))
		ts = g.spread(g.inShift(u, day, dur), dur, 11+rng.IntN(10))
		for _, t := range ts {
			g.sc.events = append(g.sc.events, g.ev(u, t, telemetry.ActionDecrypt, u.pool0[rng.IntN(len(u.pool0))], g.key(), false))
		}
		g.add("decrypt_failure_burst", ts[0], ts[len(ts)-1], u)

		// off_hours: 3-8 events at night, at least 3.5h from the shift.
		u, day, _ = g.pick(true, 7)
		dur = time.Duration(span(20, 60) * float64(time.Minute))
		at := u.start + u.length + 3.5 + rng.Float64()*(24-u.length-7)
		ts = g.spread(day.Add(time.Duration(at*float64(time.Hour))), dur, 3+rng.IntN(6))
		for _, t := range ts {
			g.sc.events = append(g.sc.events, g.ev(u, t, telemetry.ActionDecrypt, u.pool0[rng.IntN(len(u.pool0))], g.key(), true))
		}
		g.add("off_hours", ts[0], ts[len(ts)-1], u)

		// canary_access: touching a poison record.
		u, day, _ = g.pick(true, 0)
		ts = g.spread(g.inShift(u, day, 10*time.Minute), 10*time.Minute, 1+rng.IntN(3))
		for _, t := range ts {
			g.sc.events = append(g.sc.events, g.ev(u, t, telemetry.ActionDecrypt, gc.canaryIDs[rng.IntN(len(gc.canaryIDs))], g.key(), true))
		}
		g.add("canary_access", ts[0], ts[len(ts)-1], u)

		// retired_key_use: tokens under a disabled key.
		u, day, _ = g.pick(true, 0)
		ts = g.spread(g.inShift(u, day, 20*time.Minute), 20*time.Minute, 1+rng.IntN(8))
		ok := rng.IntN(2) == 0
		for _, t := range ts {
			g.sc.events = append(g.sc.events, g.ev(u, t, telemetry.ActionDecrypt, u.pool0[rng.IntN(len(u.pool0))], gc.retiredID, ok))
		}
		g.add("retired_key_use", ts[0], ts[len(ts)-1], u)

		g.lowAndSlow()
		g.scopeDrift()
		g.coordinated()
		g.unusualSource()
		g.weekendWork()
	}
}

// lowAndSlow: for 7-10 working days the day's volume is 1.5-2.5 times the
// usual, the extra all in never-read records of the user's own tables,
// spread over the working day.
func (g *generator) lowAndSlow() {
	rng := g.rng
	u, day, ui := g.pickIn(true, 14, g.gc.days-16)
	for day.Before(scenarioEpoch.AddDate(0, 0, u.from+21)) { // a baseline to drift from
		g.used[[2]int{ui, int(day.Sub(scenarioEpoch).Hours() / 24)}] = false
		u, day, ui = g.pickIn(true, 14, g.gc.days-16)
	}
	factor := 0.5 + rng.Float64()
	n := 7 + rng.IntN(4)
	var first, last time.Time
	for d := 0; n > 0 && day.AddDate(0, 0, d).Before(scenarioEpoch.AddDate(0, 0, g.gc.days)); d++ {
		dd := day.AddDate(0, 0, d)
		di := int(dd.Sub(scenarioEpoch).Hours() / 24)
		if g.offDay(di) || u.away[di] {
			continue
		}
		g.used[[2]int{ui, di}] = true
		from := dd.Add(time.Duration(u.start * float64(time.Hour)))
		ts := g.spread(from, time.Duration(u.length*float64(time.Hour)), int(u.rate*u.length*factor))
		for _, t := range ts {
			res := roleResources[u.role]
			g.sc.events = append(g.sc.events, g.ev(u, t, telemetry.ActionDecrypt, g.freshID(res[rng.IntN(len(res))]), g.key(), true))
		}
		if len(ts) > 0 {
			if first.IsZero() {
				first = ts[0]
			}
			last = ts[len(ts)-1]
		}
		n--
	}
	g.add("low_and_slow", first, last, u)
}

// scopeDrift: an identity (a person or a service) starts reading a table
// and column that no one in its role reads, for 3-5 days, as a quarter of
// its usual reads.
func (g *generator) scopeDrift() {
	rng := g.rng
	var u *simUser
	var day time.Time
	var ui int
	if g.gc.services > 0 && rng.IntN(4) == 0 {
		ui = g.gc.users + rng.IntN(g.gc.services)
		u = g.users[ui]
		day = scenarioEpoch.AddDate(0, 0, max(g.gc.firstDay, 10)+rng.IntN(g.gc.days-max(g.gc.firstDay, 10)-5))
	} else {
		u, day, ui = g.pick(true, 10)
	}
	target := offRole[rng.IntN(len(offRole))]
	table, column, _ := cut(target)
	base := rng.IntN(100000)
	end := day.AddDate(0, 0, 3+rng.IntN(3))
	first, last := end, day
	g.events(u, day, end, func(e *telemetry.Event) {
		if e.Action == telemetry.ActionDecrypt && e.Success && rng.IntN(4) == 0 {
			e.DataID = fmt.Sprintf("%s/%d/%s", table, base+rng.IntN(300), column)
			first, last = minTime(first, e.Time), maxTime(last, e.Time)
		}
	})
	for d := day; d.Before(end); d = d.AddDate(0, 0, 1) {
		g.used[[2]int{ui, int(d.Sub(scenarioEpoch).Hours() / 24)}] = true
	}
	if first.After(last) {
		return // no reads in those days
	}
	g.add("scope_drift", first, last, u)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// dormant: an account active in its first one or two weeks, idle for three
// to five weeks, becomes active again.
func (g *generator) dormant() {
	rng := g.rng
	ui := g.person(nil)
	u := g.users[ui]
	activeUntil := 7 + rng.IntN(7)
	back := activeUntil + 21 + rng.IntN(15)
	for back < g.gc.days && g.offDay(back) {
		back++
	}
	if back >= g.gc.days {
		return
	}
	var first time.Time
	g.byUser = nil // the indexes move
	g.sc.events = slices.DeleteFunc(g.sc.events, func(e telemetry.Event) bool {
		d := int(e.Time.Sub(scenarioEpoch).Hours() / 24)
		return e.UserID == u.id && d >= activeUntil && d < back
	})
	for d := activeUntil; d < back; d++ {
		u.away[d] = true
		g.used[[2]int{ui, d}] = true
	}
	g.used[[2]int{ui, back}] = true
	g.events(u, scenarioEpoch.AddDate(0, 0, back), scenarioEpoch.AddDate(0, 0, back+1), func(e *telemetry.Event) {
		if first.IsZero() || e.Time.Before(first) {
			first = e.Time
		}
	})
	if first.IsZero() {
		return
	}
	g.add("dormant_account", first, first.Add(time.Minute), u)
}

// coordinated: 8-15 identities of several roles, each reading 1.5-3 times
// its own rate, the extra in never-read records, within the same two
// hours, all through one application source none of them used before.
func (g *generator) coordinated() {
	rng := g.rng
	var day time.Time
	for {
		day = scenarioEpoch.AddDate(0, 0, max(g.gc.firstDay, 10)+rng.IntN(g.gc.days-max(g.gc.firstDay, 10)-1))
		if !g.offDay(int(day.Sub(scenarioEpoch).Hours() / 24)) {
			break
		}
	}
	di := int(day.Sub(scenarioEpoch).Hours() / 24)
	from := day.Add(time.Duration((11 + rng.Float64()*3) * float64(time.Hour)))
	to := from.Add(2 * time.Hour)
	app := fmt.Sprintf("10.77.%d.%d", rng.IntN(250), 10+rng.IntN(200))
	n := 8 + rng.IntN(8)
	var crew []*simUser
	for tries := 0; len(crew) < n && tries < 10*n; tries++ {
		ui := g.gc.heavy + rng.IntN(g.gc.users-g.gc.heavy)
		u := g.users[ui]
		if g.used[[2]int{ui, di}] || slices.Contains(crew, u) || di < u.from+14 || u.away[di] || u.travel[di] || u.newRole != "" ||
			u.start+u.length < 11 || u.start > 12 {
			continue
		}
		g.used[[2]int{ui, di}] = true
		crew = append(crew, u)
	}
	if len(crew) < 5 {
		return
	}
	for _, u := range crew {
		g.events(u, from, to, func(e *telemetry.Event) { e.Source = app })
		ts := g.spread(from, 2*time.Hour, int(u.rate*2*(0.5+rng.Float64()*1.5)))
		for _, t := range ts {
			res := roleResources[u.role]
			e := g.ev(u, t, telemetry.ActionDecrypt, g.freshID(res[rng.IntN(len(res))]), g.key(), true)
			e.Source = app
			g.sc.events = append(g.sc.events, e)
		}
	}
	g.add("coordinated", from, to, crew...)
}

// unusualSource: for one to three hours of a normal day an identity works
// from a network it has never used, at its usual hours and volume.
func (g *generator) unusualSource() {
	rng := g.rng
	u, day, _ := g.pick(true, 10)
	dur := time.Duration(span(g, 1, 3) * float64(time.Hour))
	from := g.inShift(u, day, dur)
	src := fmt.Sprintf("198.18.%d.%d", rng.IntN(250), 10+rng.IntN(200))
	var first, last time.Time
	g.events(u, from, from.Add(dur), func(e *telemetry.Event) {
		e.Source = src
		if first.IsZero() {
			first = e.Time
		}
		last = e.Time
	})
	if first.IsZero() {
		return
	}
	g.add("unusual_source", first, last, u)
}

func span(g *generator, lo, hi float64) float64 { return lo + g.rng.Float64()*(hi-lo) }

// weekendWork: a strictly weekday person works on a Saturday or a public
// holiday, at the usual hours and volume.
func (g *generator) weekendWork() {
	rng := g.rng
	var offDays []int
	for d := max(g.gc.firstDay, 37); d < g.gc.days; d++ { // 25 weekdays of history first
		if scenarioEpoch.AddDate(0, 0, d).Weekday() == time.Saturday || g.holidays[d] {
			offDays = append(offDays, d)
		}
	}
	if len(offDays) == 0 {
		return
	}
	for {
		ui := g.person(func(u *simUser) bool { return !u.weekendDone })
		d := offDays[rng.IntN(len(offDays))]
		if g.used[[2]int{ui, d}] {
			continue
		}
		g.used[[2]int{ui, d}] = true
		u := g.users[ui]
		u.weekendDone = true
		day := scenarioEpoch.AddDate(0, 0, d)
		dur := time.Duration(span(g, 2, 4) * float64(time.Hour))
		ts := g.spread(g.inShift(u, day, dur), dur, max(3, int(u.rate*dur.Hours())))
		for _, t := range ts {
			g.sc.events = append(g.sc.events, g.ev(u, t, telemetry.ActionDecrypt, u.pool0[rng.IntN(len(u.pool0))], g.key(), true))
		}
		g.add("weekend_work", ts[0], ts[len(ts)-1], u)
		return
	}
}

// quality matches findings to the ground truth. A finding is a true
// positive when an injected incident of one of its identities overlaps it
// (with a little slack) and its kind is the incident's or one the incident
// may also raise; an incident is recalled when a finding of its own kind
// matches it (for a coordinated incident: names at least half of its
// identities).
type quality struct {
	learning         int // findings in the first days, before incidents start
	tp, fp           map[Kind]int
	hit, total       map[string]int
	falsePositives   []Finding
	missed           []injected
	findings, events int
	userDays         int
}

func newQuality() quality {
	return quality{tp: map[Kind]int{}, fp: map[Kind]int{}, hit: map[string]int{}, total: map[string]int{}}
}

func findingUsers(f Finding) []string {
	if f.Evidence != nil && len(f.Evidence.Identities) > 0 {
		return f.Evidence.Identities
	}
	return []string{f.UserID}
}

func measure(sc scenario, findings []Finding) quality {
	q := newQuality()
	q.findings, q.events = len(findings), len(sc.events)
	for _, n := range sc.activeDays {
		q.userDays += n
	}
	const slack = 10 * time.Minute
	overlaps := func(f Finding, in injected) bool {
		if f.End.Before(in.start.Add(-slack)) || f.Start.After(in.end.Add(slack)) {
			return false
		}
		shared := 0
		for _, u := range findingUsers(f) {
			if slices.Contains(in.users, u) {
				shared++
			}
		}
		if len(in.users) > 1 && f.Kind == KindCoordinatedAccess {
			return 2*shared >= len(in.users)
		}
		return shared > 0
	}
	learnUntil := scenarioEpoch.AddDate(0, 0, sc.firstDay)
	for _, f := range findings {
		if f.Start.Before(learnUntil) {
			q.learning++
			continue
		}
		ok := slices.ContainsFunc(sc.incidents, func(in injected) bool {
			return overlaps(f, in) && (f.Kind == in.kind || slices.Contains(in.also, f.Kind))
		})
		if ok {
			q.tp[f.Kind]++
		} else {
			q.fp[f.Kind]++
			q.falsePositives = append(q.falsePositives, f)
		}
	}
	for _, in := range sc.incidents {
		q.total[in.pattern]++
		if slices.ContainsFunc(findings, func(f Finding) bool { return f.Kind == in.kind && overlaps(f, in) }) {
			q.hit[in.pattern]++
		} else {
			q.missed = append(q.missed, in)
		}
	}
	return q
}

func (q *quality) merge(o quality) {
	for k, v := range o.tp {
		q.tp[k] += v
	}
	for k, v := range o.fp {
		q.fp[k] += v
	}
	for k, v := range o.hit {
		q.hit[k] += v
	}
	for k, v := range o.total {
		q.total[k] += v
	}
	q.falsePositives = append(q.falsePositives, o.falsePositives...)
	q.missed = append(q.missed, o.missed...)
	q.findings += o.findings
	q.learning += o.learning
	q.events += o.events
	q.userDays += o.userDays
}

func (q quality) precision(k Kind) float64 {
	if q.tp[k]+q.fp[k] == 0 {
		return 1
	}
	return float64(q.tp[k]) / float64(q.tp[k]+q.fp[k])
}

func (q quality) overallPrecision() float64 {
	tp, all := 0, 0
	for _, k := range Kinds() {
		tp += q.tp[k]
		all += q.tp[k] + q.fp[k]
	}
	if all == 0 {
		return 1
	}
	return float64(tp) / float64(all)
}

func (q quality) recall(pattern string) float64 {
	if q.total[pattern] == 0 {
		return 1
	}
	return float64(q.hit[pattern]) / float64(q.total[pattern])
}
