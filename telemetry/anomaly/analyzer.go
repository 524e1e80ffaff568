package anomaly

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keyward/keyward/telemetry"
)

// kind numbers, indexes of kindList.
const (
	kVolume = iota
	kBulk
	kDenied
	kFailure
	kOffHours
	kCanary
	kRetired
	kFirstAccess
	kDrift
	kDormant
	kCoordinated
	kNewSource
	kWeekend
	numKinds
)

// AnalyzerOption configures an [Analyzer].
type AnalyzerOption interface {
	apply(*Analyzer) error
}

// analyzerOptionFunc adapts a function to AnalyzerOption.
type analyzerOptionFunc func(*Analyzer) error

func (f analyzerOptionFunc) apply(c *Analyzer) error { return f(c) }

// WithAlert sets a function called as soon as an incident qualifies as a
// finding, and again each time its severity rises while it grows (an
// escalation): the calls for one incident carry the same [Finding.ID], and
// the last one shows the incident as it was then (End and Events may still
// grow; the final finding goes to [WithReport] or [Analyzer.Flush]). It is
// called without the analyzer's lock held, on the goroutine that observed
// the event.
func WithAlert(fn func(Finding)) AnalyzerOption {
	return analyzerOptionFunc(func(a *Analyzer) error {
		if fn == nil || a.alert != nil {
			return fmt.Errorf("%w: WithAlert nil or given twice", ErrInvalidOption)
		}
		a.alert = fn
		return nil
	})
}

// WithReport sets a function called once per incident when it is closed
// (no trigger for the incident gap, or [Analyzer.Flush]) with the final
// finding, without the analyzer's lock held. Without it, closed findings
// are kept until Flush returns them.
func WithReport(fn func(Finding)) AnalyzerOption {
	return analyzerOptionFunc(func(a *Analyzer) error {
		if fn == nil || a.report != nil {
			return fmt.Errorf("%w: WithReport nil or given twice", ErrInvalidOption)
		}
		a.report = fn
		return nil
	})
}

// Analyzer is the incremental detector behind [Detect] and [Processor]: it
// observes events one at a time, in time order (an event older than its
// identity's latest is taken as happening at the latest; the detectors that
// compare identities with each other close a day when the first event of
// the next one arrives), and keeps per identity only what its windows,
// baselines and sketches need (see the package documentation for the
// bound), not the events. An identity idle for longer than forget_days is
// forgotten. It is safe for concurrent use.
type Analyzer struct {
	mu       sync.Mutex
	cfg      *resolved
	users    map[string]*user
	lastUser *user // of the previous event: runs of one user skip the map
	seen     int   // events since the last sweep of idle users
	alert    func(Finding)
	report   func(Finding)
	done     []Finding
	pending  []Finding
	scratch  []float64

	roles map[string]*peerGroup
	day   int64   // the latest local day seen
	today []*user // identities active since the last day close
	pop   population
	crowd *user // the population's pseudo-identity for coordinated_access
	zs    map[*peerGroup][]float64

	lastTime  int64 // the latest event time
	idleSince int64 // of the dormant identity being reported
	// the event behind the trigger being recorded, for the context's rules
	curRes, curData, curSrc string
}

var _ telemetry.Sink = (*Analyzer)(nil)

// NewAnalyzer returns an Analyzer for cfg, or an error wrapping
// [ErrInvalidConfig] or [ErrInvalidOption].
func NewAnalyzer(cfg Config, opts ...AnalyzerOption) (*Analyzer, error) {
	r, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	a := &Analyzer{cfg: r, users: make(map[string]*user), roles: make(map[string]*peerGroup), day: math.MinInt64}
	a.crowd = a.newUser(crowdID)
	for _, o := range opts {
		if err := o.apply(a); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Observe feeds one event to every detector. It does not allocate for a
// known user, apart from bulk-read bookkeeping growing to its window.
func (a *Analyzer) Observe(e telemetry.Event) {
	a.mu.Lock()
	a.observe(&e)
	if len(a.pending) == 0 && (a.report == nil || len(a.done) == 0) {
		a.mu.Unlock()
		return
	}
	alerts, reports := a.takeCallbacks()
	a.mu.Unlock()
	a.deliver(alerts, reports)
}

// takeCallbacks takes, under the lock, what the callbacks are to receive.
func (a *Analyzer) takeCallbacks() (alerts, reports []Finding) {
	alerts, a.pending = a.pending, nil
	if a.report != nil {
		reports, a.done = a.done, nil
	}
	return alerts, reports
}

// deliver calls the callbacks, without the lock.
func (a *Analyzer) deliver(alerts, reports []Finding) {
	for _, f := range alerts {
		a.alert(f)
	}
	for _, f := range reports {
		a.report(f)
	}
}

// WriteEvent makes the Analyzer a [telemetry.Sink]: it calls Observe and
// never fails.
func (a *Analyzer) WriteEvent(_ context.Context, e telemetry.Event) error {
	a.Observe(e)
	return nil
}

// Flush closes every open incident and returns the findings closed since
// the last Flush, ordered by start time, user and kind (nil when a report
// function is set: it has received them).
func (a *Analyzer) Flush() []Finding {
	a.mu.Lock()
	n := len(a.done)
	a.closeDay()
	for _, u := range a.users {
		for k := range u.inc {
			a.close(u, k)
		}
	}
	for k := range a.crowd.inc {
		a.close(a.crowd, k)
	}
	sortFindings(a.done[n:]) // those closed now, in a stable order
	alerts, reports := a.takeCallbacks()
	out := a.done
	a.done = nil
	a.mu.Unlock()
	a.deliver(alerts, reports)
	if a.report != nil {
		return nil
	}
	sortFindings(out)
	return out
}

func sortFindings(fs []Finding) {
	slices.SortFunc(fs, func(x, y Finding) int {
		if c := x.Start.Compare(y.Start); c != 0 {
			return c
		}
		if c := cmp.Compare(x.UserID, y.UserID); c != 0 {
			return c
		}
		return cmp.Compare(kindIndex(x.Kind), kindIndex(y.Kind))
	})
}

func kindIndex(k Kind) int { return slices.Index(kindList[:], k) }

// user is the per-user state.
type user struct {
	id   string
	last int64

	// volume: the sliding window, and as baseline the peak window count
	// of each recent active day
	vol     window
	dayPeak int
	peaks   []uint32 // ring
	peaksN  int
	peaksAt int
	dirty   bool
	base    float64 // median daily peak (or the newcomer default)
	volThr  float64
	bulkThr float64

	// bulk reads: decrypts in the bulk window, and when each data ID was last seen
	bulkQ     []bulkEntry
	bulkHead  int
	seen      map[string]int64
	bulkExtra int

	denied, failed window

	// working hours: prof[h] = active days with activity in hour h (or
	// rather, in local hour h), days = active days, dayMask = hours of the
	// current day so far
	prof    [24]uint16
	days    int
	day     int64
	dayMask uint32

	inc [numKinds]incident

	behaviour
}

type bulkEntry struct {
	t  int64
	id string
	w  int
}

type incident struct {
	open     bool
	alerted  bool
	severity Severity // at the last alert
	start    int64
	end      int64
	events   int
	peak     float64
	observed float64 // at peak
	thr      float64 // at peak
	success  bool
	label    string    // first canary data ID, retired key ID, or off-hours hour
	ev       *Evidence // of the behaviour kinds
	hidden   bool      // by the context: never reported
}

func (a *Analyzer) newUser(id string) *user {
	c := a.cfg
	u := &user{
		id:     id,
		last:   math.MinInt64,
		vol:    newWindow(c.volWin, 60),
		peaks:  make([]uint32, c.baseDays),
		denied: newWindow(c.denWin, 20),
		failed: newWindow(c.fWin, 20),
		day:    math.MinInt64,
		dirty:  true,
	}
	u.behaviour.init(c)
	return u
}

func (a *Analyzer) observe(e *telemetry.Event) {
	u := a.lastUser
	if u == nil || u.id != e.UserID {
		u = a.user(e.UserID)
		a.lastUser = u
	}
	a.process(u, toRec(e))
}

func toRec(e *telemetry.Event) rec {
	return rec{t: e.Time.UnixNano(), dataID: e.DataID, keyID: e.KeyID, w: int32(min(e.N(), math.MaxInt32)),
		action: actionCode(e.Action), success: e.Success, role: e.Role, resource: e.Resource, source: e.Source, client: e.Client}
}

func (a *Analyzer) user(id string) *user {
	u := a.users[id]
	if u == nil {
		u = a.newUser(id)
		a.users[u.id] = u
	}
	return u
}

// rec is what the detectors need of an event.
type rec struct {
	t        int64
	dataID   string
	keyID    string
	role     string
	resource string
	source   string
	client   string
	w        int32
	action   uint8
	success  bool
}

const (
	aOther uint8 = iota
	aEncrypt
	aDecrypt
	aAccess
)

func actionCode(a telemetry.Action) uint8 {
	switch a {
	case telemetry.ActionEncrypt:
		return aEncrypt
	case telemetry.ActionDecrypt:
		return aDecrypt
	case telemetry.ActionAccess:
		return aAccess
	}
	return aOther
}

// process feeds one event of user u to every detector.
func (a *Analyzer) process(u *user, r rec) {
	c := a.cfg
	t := r.t
	if t < u.last {
		t = u.last
	}
	idleSince := u.last
	u.last = t
	a.lastTime = max(a.lastTime, t)
	a.curRes, a.curData, a.curSrc = r.resource, r.dataID, r.source
	if a.seen++; a.seen >= sweepEvery {
		a.sweep(u, t)
	}
	day, hour := a.localDay(t)
	if day > a.day {
		if a.day != math.MinInt64 {
			a.closeDay()
		}
		a.day = day
	}
	for k := range u.inc {
		if u.inc[k].open && t-u.inc[k].end > a.gap(k) {
			a.close(u, k)
		}
	}
	if ci := &a.crowd.inc[kCoordinated]; ci.open && t-ci.end > a.cfg.gap {
		a.close(a.crowd, kCoordinated)
	}
	w := int(r.w)
	if day != u.day {
		a.newDay(u, day)
	}
	if idleSince != math.MinInt64 && t-idleSince >= c.dormant {
		a.dormant(u, &r, t, idleSince)
	}
	if r.role != "" && r.role != u.role {
		a.changeRole(u, r.role)
	}
	if !u.active {
		u.active, u.dayFirst = true, t
		a.today = append(a.today, u)
	}
	u.dayLast = t

	if c.canary.has(r.dataID) {
		a.fire(u, kCanary, t, t, w, w, 0, 0, 0, r.dataID, r.success)
	}
	if r.keyID != "" && r.action != aOther && c.retired.has(r.keyID) {
		a.fire(u, kRetired, t, t, w, w, 0, 0, 0, r.keyID, r.success)
	}
	if r.source != "" || r.client != "" {
		a.sources(u, &r, t, w)
	}

	switch {
	case r.action == aDecrypt && r.success:
		a.volume(u, t, w)
		a.bulk(u, t, w, r.dataID)
		a.reads(u, &r, t, w)
	case r.action == aDecrypt:
		if n := u.failed.add(t, w); n >= c.fMin {
			a.fire(u, kFailure, t, u.failed.start(), n, w, float64(n)/float64(c.fMin), float64(n), float64(c.fMin), "", false)
		}
	case r.action == aAccess && !r.success:
		if n := u.denied.add(t, w); n >= c.denMin {
			a.fire(u, kDenied, t, u.denied.start(), n, w, float64(n)/float64(c.denMin), float64(n), float64(c.denMin), "", false)
		}
	}
	a.offHours(u, r.success, t, w, hour)
	a.weekend(u, r.success, t, w, day)
}

// sweepEvery is how many events pass between sweeps of idle users.
const sweepEvery = 1 << 16

// sweep forgets identities idle for longer than forget_days (their state
// would no longer count), so that memory follows the identities active in
// that time rather than every identity ever seen. Identities idle for less
// are kept with their history, so that dormant_account can see them come
// back. keep is the identity being processed, now the time of its event.
// (Taking the current event's time, not the latest ever seen, keeps one
// event dated far in the future from making everyone idle for good.)
func (a *Analyzer) sweep(keep *user, now int64) {
	a.seen = 0
	idle := now - a.cfg.forget
	for id, u := range a.users {
		if u == keep || u.last >= idle {
			continue
		}
		for k := range u.inc {
			a.close(u, k)
		}
		a.leaveGroup(u)
		delete(a.users, id)
		if a.lastUser == u {
			a.lastUser = nil
		}
	}
}

// localDay returns the day number and hour of t in the configured zone.
func (a *Analyzer) localDay(t int64) (day int64, hour int) {
	c := a.cfg
	if c.utc {
		sec := floorDiv(t, int64(time.Second))
		return floorDiv(sec, 86400), int(mod(sec, 86400) / 3600)
	}
	lt := time.Unix(0, t).In(c.loc)
	_, off := lt.Zone()
	sec := floorDiv(t, int64(time.Second)) + int64(off)
	return floorDiv(sec, 86400), lt.Hour()
}

// newDay closes the user's previous active day: its peak joins the volume
// baseline and its hours the working-hours profile.
func (a *Analyzer) newDay(u *user, day int64) {
	if u.dayPeak > 0 {
		u.peaks[u.peaksAt] = uint32(min(u.dayPeak, math.MaxUint32))
		u.peaksAt = (u.peaksAt + 1) % len(u.peaks)
		u.peaksN = min(u.peaksN+1, len(u.peaks))
		u.dirty = true
	}
	if u.dayMask != 0 {
		a.countDay(u)
		for h := 0; h < 24; h++ {
			if u.dayMask&(1<<h) != 0 {
				u.prof[h]++
			}
		}
		u.days++
		if u.days >= 120 { // forget slowly: halve the history
			for h := range u.prof {
				u.prof[h] /= 2
			}
			u.days /= 2
		}
	}
	u.day, u.dayMask, u.dayPeak = day, 0, 0
}

// volume counts successful decrypts in the sliding volume window and
// compares them with the user's baseline.
func (a *Analyzer) volume(u *user, t int64, w int) {
	if u.dirty {
		a.baseline(u)
	}
	n := u.vol.add(t, w)
	u.dayPeak = max(u.dayPeak, n)
	// A spike is far above the user's own baseline: with too little
	// history there is none yet, and bulk_read's absolute floor guards.
	if u.peaksN >= a.cfg.baseMin && float64(n) >= u.volThr {
		score := float64(n) / u.volThr
		inc := a.trigger(u, kVolume, t, u.vol.start(), n, w, score, float64(n), u.volThr, "", true)
		if inc.peak == score {
			inc.label = strconv.FormatFloat(u.base, 'f', 0, 64)
		}
		a.settle(u, kVolume)
	}
}

// baseline recomputes a user's thresholds from the robust statistics of
// the recent daily peaks: median and MAD.
func (a *Analyzer) baseline(u *user) {
	c := a.cfg
	u.dirty = false
	med, sd := 0.0, 0.0
	if u.peaksN > 0 {
		s := a.scratch[:0]
		for i := 0; i < u.peaksN; i++ {
			s = append(s, float64(u.peaks[i]))
		}
		slices.Sort(s)
		med = median(s)
		for i := range s {
			s[i] = math.Abs(s[i] - med)
		}
		slices.Sort(s)
		sd = 1.4826 * median(s)
		a.scratch = s
	}
	if u.peaksN < c.baseMin {
		med = max(med, c.defRate)
	}
	sd = max(sd, 1, 0.1*med)
	u.base = med
	// Rate-aware minimums: an identity with a baseline has its least
	// counts scaled by its own rate (never above the configured ones, never
	// below the floors), so a low-rate identity's spike is seen too.
	volMin, bulkMin := float64(c.volMin), float64(c.bulkMin)
	if u.peaksN >= c.baseMin {
		scale := med / c.defRate
		volMin = min(volMin, max(float64(c.volFloor), volMin*scale))
		bulkMin = min(bulkMin, max(float64(c.bulkFloor), bulkMin*scale))
	}
	u.volThr = max(volMin, c.volFactor*med, med+c.volMADs*sd)
	perWindow := med * float64(c.bulkWin) / float64(c.volWin)
	u.bulkThr = max(bulkMin, c.bulkFactor*perWindow)
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// bulk tracks distinct data IDs decrypted in the bulk window. An event
// standing for w > 1 values counts as w distinct IDs. A data ID seen again
// within one slot (a twentieth of the window) is not queued again, so the
// queue holds at most about 20 entries per distinct ID, whatever the rate;
// its expiry is late by at most one slot.
func (a *Analyzer) bulk(u *user, t int64, w int, id string) {
	c := a.cfg
	for u.bulkHead < len(u.bulkQ) && t-u.bulkQ[u.bulkHead].t > c.bulkWin {
		old := &u.bulkQ[u.bulkHead]
		if last, ok := u.seen[old.id]; ok && last == old.t {
			delete(u.seen, old.id)
		}
		u.bulkExtra -= old.w - 1
		*old = bulkEntry{}
		u.bulkHead++
	}
	if u.bulkHead > 64 && u.bulkHead*2 > len(u.bulkQ) {
		live := u.bulkQ[u.bulkHead:]
		if cap(u.bulkQ) > 1024 && cap(u.bulkQ) > 8*len(live) {
			// After a burst, give the memory back.
			u.bulkQ = append(make([]bulkEntry, 0, 2*len(live)), live...)
		} else {
			n := copy(u.bulkQ, live)
			clear(u.bulkQ[n:])
			u.bulkQ = u.bulkQ[:n]
		}
		u.bulkHead = 0
	}
	if u.seen == nil {
		u.seen = make(map[string]int64)
	}
	if last, ok := u.seen[id]; !ok || w > 1 || t-last >= c.bulkWin/20 {
		u.bulkQ = append(u.bulkQ, bulkEntry{t: t, id: id, w: w})
		u.seen[id] = t
		u.bulkExtra += w - 1
	}
	distinct := len(u.seen) + u.bulkExtra
	if float64(distinct) >= u.bulkThr {
		a.fire(u, kBulk, t, u.bulkQ[u.bulkHead].t, distinct, w, float64(distinct)/u.bulkThr, float64(distinct), u.bulkThr, "", true)
	}
	if len(u.seen) == 0 {
		u.seen = nil
	}
}

// offHours learns the hours a user works, one day at a time, and flags
// activity outside them.
func (a *Analyzer) offHours(u *user, success bool, t int64, w, hour int) {
	u.dayMask |= 1 << hour
	if dist := a.offDistance(u, hour); dist > 0 {
		a.fire(u, kOffHours, t, t, w, w, float64(dist), 0, 0, hourLabel[hour], success)
	}
}

// learnedHour reports whether the user was active in hour h on at least
// the configured share of active days, and on two days at least (one night
// does not make a habit); fallbackHour whether h is within the fallback
// working hours.
func (a *Analyzer) learnedHour(u *user, h int) bool {
	return u.prof[h] >= 2 && float64(u.prof[h]) >= a.cfg.minShare*float64(u.days)
}

func (a *Analyzer) fallbackHour(h int) bool {
	c := a.cfg
	if c.workStart < c.workEnd {
		return h >= c.workStart && h < c.workEnd
	}
	return h >= c.workStart || h < c.workEnd
}

// coreHour reports whether h is a working hour of the user before slack:
// learned once the user has enough history, before that learned or
// fallback.
func (a *Analyzer) coreHour(u *user, h int) bool {
	if a.learnedHour(u, h) {
		return true
	}
	return u.days < a.cfg.minDays && a.fallbackHour(h)
}

// offDistance is 0 for a normal hour (within the slack of a core hour),
// else the distance in hours to the nearest core hour (12 if none).
func (a *Analyzer) offDistance(u *user, h int) int {
	if a.coreHour(u, h) {
		return 0
	}
	for d := 1; d <= 12; d++ {
		if a.coreHour(u, (h+d)%24) || a.coreHour(u, (h-d+24)%24) {
			if d <= a.cfg.slack {
				return 0
			}
			return d
		}
	}
	return 12
}

// trigger records that the event at t (standing for w values) triggered
// kind k; openEvents and start describe the window: the events in it and
// the time of the oldest.
func (a *Analyzer) trigger(u *user, k int, t, start int64, openEvents, w int, score, observed, thr float64, label string, success bool) *incident {
	inc := &u.inc[k]
	if inc.open && start-inc.end > a.gap(k) {
		a.close(u, k) // the day-close kinds trigger for times past
	}
	if !inc.open {
		*inc = incident{open: true, start: start, end: t, events: openEvents, label: label, hidden: a.hidden(u, k, start)}
	} else {
		if start > inc.end {
			// The window holds only events after the last trigger: the
			// threshold was crossed anew, and all of them belong in.
			inc.events += openEvents
		} else {
			inc.events += w
		}
		inc.end = max(inc.end, t)
	}
	inc.success = inc.success || success
	if score > inc.peak {
		inc.peak, inc.observed, inc.thr = score, observed, thr
	}
	return inc
}

// fire is trigger and settle, for the kinds whose evidence is the window.
func (a *Analyzer) fire(u *user, k int, t, start int64, openEvents, w int, score, observed, thr float64, label string, success bool) {
	a.trigger(u, k, t, start, openEvents, w, score, observed, thr, label, success)
	a.settle(u, k)
}

// settle alerts on an incident that has just qualified, or whose severity
// has risen since its last alert. Every trigger ends with it, after the
// caller has updated the incident's evidence.
func (a *Analyzer) settle(u *user, k int) {
	inc := &u.inc[k]
	if !inc.open || inc.hidden || inc.events < a.minEvents(k) {
		return
	}
	sev := a.severity(k, inc)
	if inc.alerted && rank(sev) <= rank(inc.severity) {
		return
	}
	inc.alerted, inc.severity = true, sev
	if a.alert != nil {
		a.pending = append(a.pending, a.finding(u, k, inc))
	}
}

// severity grades an incident of kind k as it stands.
func (a *Analyzer) severity(k int, inc *incident) Severity {
	switch k {
	case kCanary, kCoordinated:
		return SeverityHigh
	case kRetired:
		if inc.success {
			return SeverityHigh
		}
		return SeverityMedium
	case kOffHours:
		return grade(inc.peak, 2, 4)
	case kVolume, kBulk, kDenied, kFailure:
		return grade(inc.peak, 1.5, 3)
	case kFirstAccess:
		if inc.peak >= 3 {
			return SeverityHigh
		}
		return SeverityMedium
	case kDrift:
		return atLeastMedium(grade(inc.peak, 1.5, 2.5))
	case kDormant:
		return atLeastMedium(grade(inc.peak, 1, 2))
	}
	return SeverityLow // new_source, weekend_activity
}

func atLeastMedium(s Severity) Severity {
	if s == SeverityLow {
		return SeverityMedium
	}
	return s
}

func rank(s Severity) int {
	switch s {
	case SeverityHigh:
		return 3
	case SeverityMedium:
		return 2
	case SeverityLow:
		return 1
	}
	return 0
}

// gap is the incident gap of kind k. The drift sees one trigger a working
// day, so its incidents stay open over a weekend; off-hours and weekend
// activity on consecutive days (a night shift, a Saturday and a Sunday)
// are one incident.
func (a *Analyzer) gap(k int) int64 {
	switch k {
	case kDrift:
		return max(a.cfg.gap, 96*int64(time.Hour))
	case kOffHours, kWeekend:
		return max(a.cfg.gap, 36*int64(time.Hour))
	}
	return a.cfg.gap
}

func (a *Analyzer) minEvents(k int) int {
	switch k {
	case kOffHours:
		return a.cfg.offMin
	case kNewSource:
		return a.cfg.srcMin
	case kWeekend:
		return a.cfg.wkMin
	}
	return 1
}

// close ends an open incident, reporting it if it qualified.
func (a *Analyzer) close(u *user, k int) {
	inc := &u.inc[k]
	if !inc.open {
		return
	}
	if !inc.hidden && inc.events >= a.minEvents(k) {
		a.done = append(a.done, a.finding(u, k, inc))
	}
	*inc = incident{}
	a.closed(u, k)
}

func (a *Analyzer) finding(u *user, k int, inc *incident) Finding {
	c := a.cfg
	f := Finding{
		Kind:   kindList[k],
		UserID: u.id,
		Start:  time.Unix(0, inc.start).UTC(),
		End:    time.Unix(0, inc.end).UTC(),
		Score:  inc.peak,
		Events: inc.events,
	}
	f.ID = string(f.Kind) + "/" + u.id + "/" + f.Start.Format(time.RFC3339Nano)
	f.Severity = a.severity(k, inc)
	switch k {
	case kVolume, kBulk, kDenied, kFailure:
		f.Evidence = &Evidence{Observed: inc.observed, Threshold: round2(inc.thr)}
		if k == kVolume {
			f.Evidence.Baseline, _ = strconv.ParseFloat(inc.label, 64)
		}
	case kOffHours:
		f.Evidence = &Evidence{Observed: inc.peak}
	}
	switch k {
	case kCanary:
		f.Score = float64(inc.events)
		f.Detail = fmt.Sprintf("%d event(s) on canary data ID %q", inc.events, inc.label)
	case kRetired:
		f.Score = float64(inc.events)
		what := "failed attempts only"
		if inc.success {
			what = "some succeeded"
		}
		f.Detail = fmt.Sprintf("%d use(s) of retired key ID %q (%s)", inc.events, inc.label, what)
	case kOffHours:
		f.Detail = fmt.Sprintf("%d event(s) outside the user's working hours, from %s:00 %s, up to %.0fh from normal hours",
			inc.events, inc.label, c.loc.String(), inc.peak)
	case kVolume:
		f.Detail = fmt.Sprintf("%.0f decrypts within %s, the user's usual daily peak is %s (threshold %.0f)",
			inc.observed, dur(c.volWin), inc.label, inc.thr)
	case kBulk:
		f.Detail = fmt.Sprintf("%.0f distinct data IDs decrypted within %s (threshold %.0f)",
			inc.observed, dur(c.bulkWin), inc.thr)
	case kDenied:
		f.Detail = fmt.Sprintf("%.0f denied access attempts within %s (threshold %.0f)",
			inc.observed, dur(c.denWin), inc.thr)
	case kFailure:
		f.Detail = fmt.Sprintf("%.0f failed decrypts within %s (threshold %.0f): tampered tokens or wrong keys",
			inc.observed, dur(c.fWin), inc.thr)
	default:
		a.behaviourFinding(u, k, inc, &f)
	}
	return f
}

func grade(v, medium, high float64) Severity {
	switch {
	case v >= high:
		return SeverityHigh
	case v >= medium:
		return SeverityMedium
	}
	return SeverityLow
}

var hourLabel = func() (l [24]string) {
	for h := range l {
		l[h] = fmt.Sprintf("%02d", h)
	}
	return l
}()

// dur formats a window without zero units: "10m", "1h", "1h30m".
func dur(ns int64) string {
	s := time.Duration(ns).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Detect analyzes events offline and returns one finding per incident,
// ordered by start time, user and kind. events need not be sorted (Detect
// takes them in time order, equal times in input order, without changing
// the slice). cfg must be valid (see [Config.Validate] and [LoadConfig]);
// an invalid cfg is a programmer error and panics, since the spec's
// signature has no error result. Use [NewAnalyzer] to get the error
// instead.
func Detect(events []telemetry.Event, cfg Config) []Finding {
	a, err := NewAnalyzer(cfg)
	if err != nil {
		panic(err)
	}
	sorted := true
	for i := 1; i < len(events); i++ {
		if events[i].Time.Before(events[i-1].Time) {
			sorted = false
			break
		}
	}
	if sorted {
		for i := range events {
			a.observe(&events[i])
		}
	} else if len(events) <= math.MaxInt32 {
		observeSorted[int32](a, events)
	} else {
		observeSorted[int](a, events)
	}
	return a.Flush()
}

// observeSorted observes unsorted events in time order: it sorts a compact
// index (time, position) and observes the events through it. I is the
// smallest integer type that indexes events.
func observeSorted[I int32 | int](a *Analyzer, events []telemetry.Event) {
	type key struct {
		t int64
		i I
	}
	keys := make([]key, len(events))
	for i := range events {
		keys[i] = key{events[i].Time.UnixNano(), I(i)}
	}
	slices.SortFunc(keys, func(x, y key) int {
		if c := cmp.Compare(x.t, y.t); c != 0 {
			return c
		}
		return cmp.Compare(x.i, y.i)
	})
	for _, k := range keys {
		a.observe(&events[k.i])
	}
}
