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
	numKinds
)

// AnalyzerOption configures an [Analyzer].
type AnalyzerOption func(*Analyzer) error

// WithAlert sets a function called once per incident, as soon as it
// qualifies as a finding (the counts are those at that moment; End and
// Events may still grow). It is called without the analyzer's lock held,
// on the goroutine that observed the event.
func WithAlert(fn func(Finding)) AnalyzerOption {
	return func(a *Analyzer) error {
		if fn == nil || a.alert != nil {
			return fmt.Errorf("%w: WithAlert nil or given twice", ErrInvalidOption)
		}
		a.alert = fn
		return nil
	}
}

// WithReport sets a function called once per incident when it is closed
// (no trigger for the incident gap, or [Analyzer.Flush]) with the final
// finding, without the analyzer's lock held. Without it, closed findings
// are kept until Flush returns them.
func WithReport(fn func(Finding)) AnalyzerOption {
	return func(a *Analyzer) error {
		if fn == nil || a.report != nil {
			return fmt.Errorf("%w: WithReport nil or given twice", ErrInvalidOption)
		}
		a.report = fn
		return nil
	}
}

// Analyzer is the incremental detector behind [Detect] and [Processor]: it
// observes events one at a time, in time order per user (an event older than
// the user's latest is taken as happening at the latest), and keeps per user
// only what its windows and baselines need, so its memory is bounded by users
// x window, not by the number of events; a user idle for longer than the
// baseline history is forgotten. It is safe for concurrent use.
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
}

var _ telemetry.Sink = (*Analyzer)(nil)

// NewAnalyzer returns an Analyzer for cfg, or an error wrapping
// [ErrInvalidConfig] or [ErrInvalidOption].
func NewAnalyzer(cfg Config, opts ...AnalyzerOption) (*Analyzer, error) {
	r, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	a := &Analyzer{cfg: r, users: make(map[string]*user)}
	for _, o := range opts {
		if err := o(a); err != nil {
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
	for _, u := range a.users {
		for k := range u.inc {
			a.close(u, k)
		}
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
}

type bulkEntry struct {
	t  int64
	id string
	w  int
}

type incident struct {
	open     bool
	alerted  bool
	start    int64
	end      int64
	events   int
	peak     float64
	observed float64 // at peak
	thr      float64 // at peak
	success  bool
	label    string // first canary data ID, retired key ID, or off-hours hour
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
	return u
}

func (a *Analyzer) observe(e *telemetry.Event) {
	u := a.lastUser
	if u == nil || u.id != e.UserID {
		u = a.user(e.UserID)
		a.lastUser = u
	}
	a.process(u, rec{t: e.Time.UnixNano(), dataID: e.DataID, keyID: e.KeyID, w: int32(min(e.N(), math.MaxInt32)),
		action: actionCode(e.Action), success: e.Success})
}

func (a *Analyzer) user(id string) *user {
	u := a.users[id]
	if u == nil {
		u = a.newUser(id)
		a.users[u.id] = u
	}
	return u
}

// rec is what the detectors need of an event, compactly.
type rec struct {
	t       int64
	dataID  string
	keyID   string
	w       int32
	action  uint8
	success bool
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
	u.last = t
	if a.seen++; a.seen >= sweepEvery {
		a.sweep(u, t)
	}
	for k := range u.inc {
		if u.inc[k].open && t-u.inc[k].end > c.gap {
			a.close(u, k)
		}
	}
	w := int(r.w)
	day, hour := a.localDay(t)
	if day != u.day {
		a.newDay(u, day)
	}

	if c.canary.has(r.dataID) {
		a.trigger(u, kCanary, t, t, w, w, 0, 0, 0, r.dataID, r.success)
	}
	if r.keyID != "" && r.action != aOther && c.retired.has(r.keyID) {
		a.trigger(u, kRetired, t, t, w, w, 0, 0, 0, r.keyID, r.success)
	}

	switch {
	case r.action == aDecrypt && r.success:
		a.volume(u, t, w)
		a.bulk(u, t, w, r.dataID)
	case r.action == aDecrypt:
		if n := u.failed.add(t, w); n >= c.fMin {
			a.trigger(u, kFailure, t, u.failed.start(), n, w, float64(n)/float64(c.fMin), float64(n), float64(c.fMin), "", false)
		}
	case r.action == aAccess && !r.success:
		if n := u.denied.add(t, w); n >= c.denMin {
			a.trigger(u, kDenied, t, u.denied.start(), n, w, float64(n)/float64(c.denMin), float64(n), float64(c.denMin), "", false)
		}
	}
	a.offHours(u, r.success, t, w, hour)
}

// sweepEvery is how many events pass between sweeps of idle users.
const sweepEvery = 1 << 16

// sweep forgets users idle for longer than the baseline history (their
// state would no longer count), so that memory follows the users active
// recently rather than every user ever seen. keep is the user being
// processed, now the time of its event. (Taking the current event's time,
// not the latest ever seen, keeps one event dated far in the future from
// making everyone idle for good.)
func (a *Analyzer) sweep(keep *user, now int64) {
	a.seen = 0
	idle := now - int64(a.cfg.baseDays)*24*int64(time.Hour)
	for id, u := range a.users {
		if u == keep || u.last >= idle {
			continue
		}
		for k := range u.inc {
			a.close(u, k)
		}
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
		a.trigger(u, kVolume, t, u.vol.start(), n, w, score, float64(n), u.volThr, "", true)
		if u.inc[kVolume].peak == score {
			u.inc[kVolume].label = strconv.FormatFloat(u.base, 'f', 0, 64)
		}
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
	u.volThr = max(float64(c.volMin), c.volFactor*med, med+c.volMADs*sd)
	perWindow := med * float64(c.bulkWin) / float64(c.volWin)
	u.bulkThr = max(float64(c.bulkMin), c.bulkFactor*perWindow)
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
		a.trigger(u, kBulk, t, u.bulkQ[u.bulkHead].t, distinct, w, float64(distinct)/u.bulkThr, float64(distinct), u.bulkThr, "", true)
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
		a.trigger(u, kOffHours, t, t, w, w, float64(dist), 0, 0, hourLabel[hour], success)
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
func (a *Analyzer) trigger(u *user, k int, t, start int64, openEvents, w int, score, observed, thr float64, label string, success bool) {
	inc := &u.inc[k]
	if !inc.open {
		*inc = incident{open: true, start: start, end: t, events: openEvents, label: label}
	} else {
		if start > inc.end {
			// The window holds only events after the last trigger: the
			// threshold was crossed anew, and all of them belong in.
			inc.events += openEvents
		} else {
			inc.events += w
		}
		inc.end = t
	}
	inc.success = inc.success || success
	if score > inc.peak {
		inc.peak, inc.observed, inc.thr = score, observed, thr
	}
	if !inc.alerted && inc.events >= a.minEvents(k) {
		inc.alerted = true
		if a.alert != nil {
			a.pending = append(a.pending, a.finding(u, k, inc))
		}
	}
}

func (a *Analyzer) minEvents(k int) int {
	if k == kOffHours {
		return a.cfg.offMin
	}
	return 1
}

// close ends an open incident, reporting it if it qualified.
func (a *Analyzer) close(u *user, k int) {
	inc := &u.inc[k]
	if !inc.open {
		return
	}
	if inc.events >= a.minEvents(k) {
		a.done = append(a.done, a.finding(u, k, inc))
	}
	*inc = incident{}
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
	switch k {
	case kCanary:
		f.Score = float64(inc.events)
		f.Severity = SeverityHigh
		f.Detail = fmt.Sprintf("%d event(s) on canary data ID %q", inc.events, inc.label)
	case kRetired:
		f.Score = float64(inc.events)
		f.Severity = SeverityMedium
		what := "failed attempts only"
		if inc.success {
			f.Severity = SeverityHigh
			what = "some succeeded"
		}
		f.Detail = fmt.Sprintf("%d use(s) of retired key ID %q (%s)", inc.events, inc.label, what)
	case kOffHours:
		f.Severity = grade(inc.peak, 2, 4)
		f.Detail = fmt.Sprintf("%d event(s) outside the user's working hours, from %s:00 %s, up to %.0fh from normal hours",
			inc.events, inc.label, c.loc.String(), inc.peak)
	case kVolume:
		f.Severity = grade(inc.peak, 1.5, 3)
		f.Detail = fmt.Sprintf("%.0f decrypts within %s, the user's usual daily peak is %s (threshold %.0f)",
			inc.observed, dur(c.volWin), inc.label, inc.thr)
	case kBulk:
		f.Severity = grade(inc.peak, 1.5, 3)
		f.Detail = fmt.Sprintf("%.0f distinct data IDs decrypted within %s (threshold %.0f)",
			inc.observed, dur(c.bulkWin), inc.thr)
	case kDenied:
		f.Severity = grade(inc.peak, 1.5, 3)
		f.Detail = fmt.Sprintf("%.0f denied access attempts within %s (threshold %.0f)",
			inc.observed, dur(c.denWin), inc.thr)
	case kFailure:
		f.Severity = grade(inc.peak, 1.5, 3)
		f.Detail = fmt.Sprintf("%.0f failed decrypts within %s (threshold %.0f): tampered tokens or wrong keys",
			inc.observed, dur(c.fWin), inc.thr)
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
// orders them by time first, without changing the slice). cfg must be
// valid (see [Config.Validate] and [LoadConfig]); an invalid cfg is a
// programmer error and panics, since the spec's signature has no error
// result. Use [NewAnalyzer] to get the error instead.
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
		observeByUser[int32](a, events)
	} else {
		observeByUser[int](a, events)
	}
	return a.Flush()
}

// observeByUser observes unsorted events. Every detector's state is per
// user, so users can be analyzed one after the other: one sequential pass
// copies what the detectors need of each event into a compact record in
// its user's bucket (a counting sort by user), each bucket is sorted by
// time (the index keeps equal times in input order), and the buckets are
// processed one user at a time, with that user's state hot in the cache.
// I is the smallest integer type that indexes events.
func observeByUser[I int32 | int](a *Analyzer, events []telemetry.Event) {
	type keyed struct {
		rec
		i I
	}
	ids := make(map[string]I)
	var users []string
	userOf := make([]I, len(events))
	var counts []I
	last, lastIdx := "", I(-1)
	for i := range events {
		id := events[i].UserID
		u := lastIdx
		if u < 0 || id != last {
			var ok bool
			if u, ok = ids[id]; !ok {
				u = I(len(users))
				ids[id] = u
				users = append(users, id)
				counts = append(counts, 0)
			}
			last, lastIdx = id, u
		}
		userOf[i] = u
		counts[u]++
	}
	starts := make([]I, len(users)+1)
	for u, n := range counts {
		starts[u+1] = starts[u] + n
	}
	next := append([]I(nil), starts[:len(users)]...)
	recs := make([]keyed, len(events))
	for i := range events {
		e := &events[i]
		u := userOf[i]
		recs[next[u]] = keyed{rec{t: e.Time.UnixNano(), dataID: e.DataID, keyID: e.KeyID, w: int32(min(e.N(), math.MaxInt32)),
			action: actionCode(e.Action), success: e.Success}, I(i)}
		next[u]++
	}
	userOf = nil
	for u, id := range users {
		// Created only now: a sweep of idle users while earlier users are
		// processed must not see (and drop) users not started yet.
		usr := a.user(id)
		bucket := recs[starts[u]:starts[u+1]]
		slices.SortFunc(bucket, func(x, y keyed) int {
			if c := cmp.Compare(x.t, y.t); c != 0 {
				return c
			}
			return cmp.Compare(x.i, y.i)
		})
		for j := range bucket {
			a.process(usr, bucket[j].rec)
		}
	}
}
