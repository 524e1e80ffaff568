package anomaly

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/keyward/keyward/telemetry"
)

// crowdID is the user of coordinated_access findings, which name many.
const crowdID = "*"

// Bounds of the per-identity state of the behaviour detectors.
const (
	maxResources  = 256 // distinct resources remembered per identity
	maxNets       = 32  // networks remembered per identity
	maxClients    = 16  // client names remembered per identity
	maxCandidates = 16  // first reads of resources per identity and day
	maxPeerNames  = 8   // reader names kept per resource and role
	maxDaily      = 31  // days of drift kept as evidence
	driftDays     = 21  // days of never-read counts the drift baseline keeps
	driftStep     = 4   // the most one day adds to the drift's CUSUM
	popMinNew     = 10  // least never-read IDs in a population window that deviate
)

// behaviour is the per-identity state of the behaviour detectors.
type behaviour struct {
	role       string
	group      *peerGroup
	activeDays int // days with activity
	onDays     int // of them weekdays that are not holidays
	offDays    int // of them weekend days and holidays

	// what the identity read: data IDs (approximately) and resources
	readIDs   seenSet
	res       smallSet
	lastRes   uint64
	lastResOK bool
	cands     []candidate

	// today, and the drift of never-read data IDs per day
	active          bool
	dayNew          int
	dayFirst        int64
	dayLast         int64
	driftN          int // days learned since first seen or the last role change
	driftHist       [driftDays]int32
	driftMean       float64 // median of driftHist
	driftSD         float64 // its robust spread
	cusum           float64
	driftRun        int
	driftStart      int64
	driftDaily      []int
	popNew          window
	popMarked       int64
	lastSrc         string
	lastSrcKey      uint64
	lastClient      string
	lastClientKey   uint64
	nets, clients   smallSet
	recentNets      [4]string
	recentNext      int
	newNet, newClnt uint64 // under an open new_source incident
}

// candidate is the first read of a resource, decided at the day's close
// (when the peer group's reads of that day are known too).
type candidate struct {
	t    int64
	res  uint64
	name string
	src  string
}

func (b *behaviour) init(c *resolved) {
	b.popNew = newWindow(c.popWin, 12)
	b.popMarked = math.MinInt64
}

// peerGroup is the identities of one role and the resources they read.
type peerGroup struct {
	name    string
	members int
	readers map[uint64]*readers
}

type readers struct {
	n     int
	names []string
}

func (a *Analyzer) changeRole(u *user, role string) {
	first := u.role == ""
	a.leaveGroup(u)
	g := a.roles[role]
	if g == nil {
		g = &peerGroup{name: role, readers: make(map[uint64]*readers)}
		a.roles[role] = g
	}
	g.members++
	u.role, u.group = role, g
	if !first {
		// A new job reads new data: the drift baseline starts again.
		u.driftN, u.driftMean, u.driftSD, u.cusum, u.driftRun = 0, 0, 0, 0, 0
	}
}

func (a *Analyzer) leaveGroup(u *user) {
	if u.group != nil {
		u.group.members--
		u.group = nil
	}
}

// countDay closes an active day of the identity for the day-of-week
// profile.
func (a *Analyzer) countDay(u *user) {
	u.activeDays++
	if a.offDay(u.day) {
		u.offDays++
	} else {
		u.onDays++
	}
}

// offDay reports whether local day d is a Saturday, a Sunday or a holiday.
func (a *Analyzer) offDay(d int64) bool {
	wd := mod(d+4, 7) // day 0, 1970-01-01, was a Thursday
	return wd == 0 || wd == 6 || a.cfg.holidays[d]
}

// reads follows what a successful decrypt read: never-read data IDs (for
// the drift and the population) and never-read resources (first access).
func (a *Analyzer) reads(u *user, r *rec, t int64, w int) {
	c := a.cfg
	if r.dataID == "" && r.resource == "" {
		return
	}
	if r.dataID != "" && !u.readIDs.testAndAdd(hashString(r.dataID)) {
		u.dayNew += w
		a.deviates(u, t, u.popNew.add(t, w))
	}
	rh := resourceHash(r.resource, r.dataID)
	if u.lastResOK && rh == u.lastRes {
		return
	}
	u.lastRes, u.lastResOK = rh, true
	if u.res.has(rh) {
		return
	}
	u.res.add(rh, maxResources)
	if g := u.group; g != nil {
		rd := g.readers[rh]
		if rd == nil {
			rd = &readers{}
			g.readers[rh] = rd
		}
		rd.n++
		if len(rd.names) < maxPeerNames {
			rd.names = append(rd.names, u.id)
		}
	}
	if u.activeDays >= c.firstMinDays && len(u.cands) < maxCandidates {
		e := telemetry.Event{DataID: r.dataID, Resource: r.resource}
		u.cands = append(u.cands, candidate{t: t, res: rh, name: e.ResourceName(), src: r.source})
	}
}

// decideFirst reports a first read of a resource unless the identity's
// peer group reads it: at least peer_min_readers other identities of the
// role (or, in a smaller role, all the others but at least one).
func (a *Analyzer) decideFirst(u *user, cd candidate) {
	var peers []string
	n := 0
	need := a.cfg.peerMin
	if g := u.group; g != nil {
		if rd := g.readers[cd.res]; rd != nil {
			for _, id := range rd.names {
				if id != u.id {
					peers = append(peers, id)
				}
			}
			n = rd.n - 1 // the identity itself is one of them
		}
		need = min(need, max(1, g.members-1))
	}
	if n >= need {
		return
	}
	a.curRes, a.curData, a.curSrc = cd.name, "", cd.src
	inc := a.trigger(u, kFirstAccess, cd.t, cd.t, 1, 1, 0, 0, 0, cd.name, true)
	if inc.ev == nil {
		inc.ev = &Evidence{Role: u.role}
	}
	if len(inc.ev.Resources) < 8 {
		inc.ev.Resources = append(inc.ev.Resources, cd.name)
		inc.ev.PeerReaders = appendUnique(inc.ev.PeerReaders, peers...)
		inc.ev.PeerCount += n
	}
	inc.peak = float64(len(inc.ev.Resources))
	a.settle(u, kFirstAccess)
}

func appendUnique(dst []string, names ...string) []string {
	for _, n := range names {
		if !slices.Contains(dst, n) {
			dst = append(dst, n)
		}
	}
	return dst
}

// closeDay ends the day for the detectors that compare an identity with
// its peer group: first reads of resources are decided, and each active
// identity's count of never-read data IDs joins its drift statistics.
func (a *Analyzer) closeDay() {
	c := a.cfg
	for _, u := range a.today {
		for _, cd := range u.cands {
			a.decideFirst(u, cd)
		}
		clear(u.cands)
		u.cands = u.cands[:0]
	}
	// The peer group's median rise of the day: when the whole group reads
	// more new data (a month-end), each member's expectation rises by the
	// same factor.
	if a.zs == nil {
		a.zs = make(map[*peerGroup][]float64)
	}
	for g, r := range a.zs {
		a.zs[g] = r[:0]
	}
	for _, u := range a.today {
		if u.group != nil && u.driftN >= c.driftHist {
			a.zs[u.group] = append(a.zs[u.group], (float64(u.dayNew)+1)/(u.driftMean+1))
		}
	}
	for _, u := range a.today {
		rise := 1.0
		if r := a.zs[u.group]; u.group != nil && len(r) >= 3 {
			slices.Sort(r)
			rise = max(median(r), 1)
		}
		a.drift(u, rise)
		u.active, u.dayNew, u.dayFirst, u.dayLast = false, 0, 0, 0
	}
	clear(a.today)
	a.today = a.today[:0]
	a.pop.prune(a.lastTime, c.popWin)
}

// driftZ is how many standard deviations the day's count of never-read
// data IDs is above the identity's baseline raised by the peer group's
// rise. The spread is the baseline's robust one, at least 1.5 times the
// Poisson spread (real counts vary more) and at least 3.
func (u *user) driftZ(rise float64) float64 {
	exp := u.driftMean * rise
	sd := max(u.driftSD*rise, 1.5*math.Sqrt(exp), 3)
	return (float64(u.dayNew) - exp) / sd
}

// learn adds a day to the baseline, the last driftDays days: their median,
// and as spread 1.4826 x their MAD.
func (a *Analyzer) learn(u *user, x int) {
	u.driftHist[u.driftN%driftDays] = int32(min(x, math.MaxInt32))
	u.driftN++
	s := a.scratch[:0]
	for _, v := range u.driftHist[:min(u.driftN, driftDays)] {
		s = append(s, float64(v))
	}
	slices.Sort(s)
	med := median(s)
	for i := range s {
		s[i] = math.Abs(s[i] - med)
	}
	slices.Sort(s)
	u.driftMean, u.driftSD = med, 1.4826*median(s)
	a.scratch = s
}

// drift runs the CUSUM of the identity's daily never-read data IDs. A day
// adds at most driftStep to the sum, so that one wild day cannot make a
// drift of the days around it.
func (a *Analyzer) drift(u *user, rise float64) {
	c := a.cfg
	if u.driftN < c.driftHist {
		a.learn(u, u.dayNew)
		return
	}
	z := u.driftZ(rise)
	if z > c.driftK {
		if u.driftRun == 0 {
			u.driftStart = u.dayFirst
			u.driftDaily = u.driftDaily[:0]
		}
		u.driftRun++
		if len(u.driftDaily) < maxDaily {
			u.driftDaily = append(u.driftDaily, u.dayNew)
		}
		u.cusum = min(u.cusum+min(z-c.driftK, driftStep), 3*c.driftH)
	} else {
		u.cusum = max(0, u.cusum+z-c.driftK)
		u.driftRun = 0
	}
	if u.driftRun == 0 || u.driftRun > 14 {
		// Not drifting, or drifting for so long that it is the new normal.
		a.learn(u, u.dayNew)
	}
	if u.cusum < c.driftH || u.driftRun < c.driftMinDays {
		return
	}
	sum := 0
	for _, n := range u.driftDaily {
		sum += n
	}
	a.curRes, a.curData, a.curSrc = "", "", ""
	inc := a.trigger(u, kDrift, u.dayLast, u.driftStart, sum, u.dayNew, u.cusum/c.driftH, 0, c.driftH, "", true)
	inc.events = sum // the never-read data IDs of the drift days
	inc.ev = &Evidence{
		Role: u.role, Baseline: u.driftMean, Observed: float64(sum) / float64(len(u.driftDaily)),
		Days: u.driftRun, Daily: append([]int(nil), u.driftDaily...),
	}
	a.settle(u, kDrift)
}

// deviates marks an identity whose never-read data IDs within the
// population window are clearly above its own rate (n in the window,
// against its daily baseline spread over an 8-hour day).
func (a *Analyzer) deviates(u *user, t int64, n int) {
	c := a.cfg
	if u.driftN < c.driftHist || t-u.popMarked < c.popWin {
		return
	}
	exp := u.driftMean * float64(c.popWin) / float64(8*time.Hour)
	if float64(n) < max(popMinNew, 3*exp+4*math.Sqrt(exp)) {
		return
	}
	u.popMarked = t
	entries := a.pop.add(&a.pop.dev, u, t, c.popWin)
	roles := map[string]bool{}
	for _, e := range entries {
		roles[e.u.role] = true
	}
	if len(entries) >= c.popMin && len(roles) >= c.popRoles {
		a.crowdTrigger(t, entries, "", "")
	}
}

// population holds the identities that deviated recently, and the
// networks seen so far.
type population struct {
	dev  []popEntry
	nets map[uint64]*network
}

type popEntry struct {
	u *user
	t int64
}

// network is what the population knows of one network: how many identities
// have used it, and which of them used it for the first time within the
// population window.
type network struct {
	users  int
	recent []popEntry
}

// maxNetworks bounds the networks the analyzer remembers for the whole
// population; past it, a network not seen yet is new to everyone.
const maxNetworks = 1 << 16

// add records u at t in list, dropping entries older than the window and
// the identity's earlier entry.
func (p *population) add(list *[]popEntry, u *user, t, win int64) []popEntry {
	*list = append(recentOnly(*list, u, t, win), popEntry{u: u, t: t})
	return *list
}

// recentOnly keeps the entries of l not older than win at now, except
// those of drop.
func recentOnly(l []popEntry, drop *user, now, win int64) []popEntry {
	keep := l[:0]
	for _, e := range l {
		if e.u != drop && now-e.t <= win {
			keep = append(keep, e)
		}
	}
	clear(l[len(keep):])
	return keep
}

func (p *population) prune(now, win int64) {
	p.dev = recentOnly(p.dev, nil, now, win)
	for _, n := range p.nets {
		n.recent = recentOnly(n.recent, nil, now, win)
	}
}

// crowdTrigger raises (or extends) the coordinated_access incident with the
// identities of entries; network and src name a shared new network.
func (a *Analyzer) crowdTrigger(t int64, entries []popEntry, network, src string) {
	c := a.cfg
	start := t
	for _, e := range entries {
		start = min(start, e.t)
	}
	if c.ctx != nil {
		hidden := true
		for _, e := range entries {
			d, _ := a.localDay(e.t)
			if !c.ctx.hides(kCoordinated, e.u.id, d, d, "", src) {
				hidden = false
				break
			}
		}
		if hidden {
			return
		}
	}
	a.curRes, a.curData, a.curSrc = "", "", ""
	inc := a.trigger(a.crowd, kCoordinated, t, start, 0, 0, 0, 0, 0, "", true)
	if inc.ev == nil {
		inc.ev = &Evidence{}
	}
	for _, e := range entries {
		if !slices.Contains(inc.ev.Identities, e.u.id) {
			inc.ev.Identities = append(inc.ev.Identities, e.u.id)
			if !slices.Contains(inc.ev.Roles, e.u.role) {
				inc.ev.Roles = append(inc.ev.Roles, e.u.role)
			}
		}
	}
	if network != "" && inc.ev.Network == "" {
		inc.ev.Network, inc.ev.Source = network, src
	}
	inc.events = len(inc.ev.Identities)
	inc.peak = float64(inc.events) / float64(min(c.popMin, c.sharedMin))
	a.settle(a.crowd, kCoordinated)
}

// sources follows the networks and clients an identity uses.
func (a *Analyzer) sources(u *user, r *rec, t int64, w int) {
	c := a.cfg
	if r.source != "" && r.source != u.lastSrc {
		u.lastSrc = r.source
		u.lastSrcKey = a.networkKey(r.source)
		if k := u.lastSrcKey; k != 0 && !u.nets.has(k) {
			label := a.networkLabel(r.source)
			known := u.knownNets()
			u.nets.add(k, maxNets)
			u.recentNets[u.recentNext] = label
			u.recentNext = (u.recentNext + 1) % len(u.recentNets)
			// A network that enough other identities used before the
			// window (a VPN pool, an office) is established: new to this
			// identity, but not news.
			n := a.network(k)
			n.recent = recentOnly(n.recent, nil, t, c.popWin)
			established := n.users-len(n.recent) >= c.srcKnown
			n.users++
			if u.activeDays >= c.srcMinDays && !established {
				u.newNet = k
				inc := a.newSourceIncident(u, r, t)
				inc.ev.Source, inc.ev.Network, inc.ev.KnownNetworks = r.source, label, known
				n.recent = a.pop.add(&n.recent, u, t, c.popWin)
				if len(n.recent) >= c.sharedMin {
					a.crowdTrigger(t, n.recent, label, r.source)
				}
			}
		}
	}
	if r.client != "" && r.client != u.lastClient {
		u.lastClient = r.client
		u.lastClientKey = hashString(r.client) | 1
		if k := u.lastClientKey; !u.clients.has(k) {
			u.clients.add(k, maxClients)
			if u.activeDays >= c.srcMinDays {
				u.newClnt = k
				inc := a.newSourceIncident(u, r, t)
				inc.ev.Client = r.client
			}
		}
	}
	if u.newNet != 0 && u.lastSrcKey == u.newNet && r.source != "" || u.newClnt != 0 && u.lastClientKey == u.newClnt && r.client != "" {
		a.trigger(u, kNewSource, t, t, w, w, 0, 0, 0, "", true)
		inc := &u.inc[kNewSource]
		inc.peak = float64(inc.events)
		a.settle(u, kNewSource)
	}
}

// newSourceIncident opens (or returns) the identity's new_source incident,
// without counting an event: the caller's event is counted next.
func (a *Analyzer) newSourceIncident(u *user, r *rec, t int64) *incident {
	inc := a.trigger(u, kNewSource, t, t, 0, 0, 0, 0, 0, "", true)
	if inc.ev == nil {
		inc.ev = &Evidence{Role: u.role}
	}
	return inc
}

func (u *user) knownNets() []string {
	var out []string
	for i := range u.recentNets {
		if n := u.recentNets[(u.recentNext-1-i+2*len(u.recentNets))%len(u.recentNets)]; n != "" {
			out = append(out, n)
		}
	}
	return out
}

// network returns the population's record of network k.
func (a *Analyzer) network(k uint64) *network {
	if a.pop.nets == nil {
		a.pop.nets = make(map[uint64]*network)
	}
	n := a.pop.nets[k]
	if n == nil {
		n = &network{}
		if len(a.pop.nets) < maxNetworks {
			a.pop.nets[k] = n
		}
	}
	return n
}

// networkKey returns the key of the network of source (0 for a known
// network): an IP address masked to the configured prefix, or a host name
// as it is.
func (a *Analyzer) networkKey(source string) uint64 {
	addr, err := netip.ParseAddr(source)
	if err != nil {
		return hashString(strings.ToLower(source)) | 1
	}
	addr = addr.Unmap()
	if containsAddr(a.cfg.known, addr) {
		return 0
	}
	bits := a.cfg.v4Bits
	if addr.Is6() {
		bits = a.cfg.v6Bits
	}
	p, _ := addr.Prefix(bits)
	b := p.Addr().As16()
	h := uint64(14695981039346656037)
	for _, x := range b {
		h ^= uint64(x)
		h *= 1099511628211
	}
	return mix(h^uint64(bits)) | 1
}

func (a *Analyzer) networkLabel(source string) string {
	addr, err := netip.ParseAddr(source)
	if err != nil {
		return clean(source)
	}
	addr = addr.Unmap()
	bits := a.cfg.v4Bits
	if addr.Is6() {
		bits = a.cfg.v6Bits
	}
	p, _ := addr.Prefix(bits)
	return p.String()
}

// weekend flags a weekday identity's activity on a weekend day or holiday.
func (a *Analyzer) weekend(u *user, success bool, t int64, w int, day int64) {
	c := a.cfg
	if u.offDays > 0 || u.onDays < c.wkMinDays || !a.offDay(day) {
		return
	}
	inc := a.trigger(u, kWeekend, t, t, w, w, 0, 0, 0, "", success)
	if inc.ev == nil {
		label := time.Unix(day*86400, 0).UTC().Format("Monday 2006-01-02")
		if c.holidays[day] {
			label = "holiday " + label
		}
		inc.ev = &Evidence{Role: u.role, Day: label, WeekdaysActive: u.onDays}
	}
	inc.peak = float64(inc.events)
	a.settle(u, kWeekend)
}

// dormant reports the first activity after a long idle gap.
func (a *Analyzer) dormant(u *user, r *rec, t, since int64) {
	if u.activeDays == 0 {
		return
	}
	idle := int((t - since) / int64(24*time.Hour))
	a.idleSince = since
	inc := a.trigger(u, kDormant, t, t, 1, 1, float64(t-since)/float64(a.cfg.dormant), 0, 0, "", r.success)
	if inc.ev == nil {
		ls := time.Unix(0, since).UTC()
		inc.ev = &Evidence{Role: u.role, Days: idle, LastSeen: &ls, Source: r.source}
	}
	a.settle(u, kDormant)
}

// closed is called when an incident of u closes.
func (a *Analyzer) closed(u *user, k int) {
	if k == kNewSource {
		u.newNet, u.newClnt = 0, 0
	}
}

// hidden reports whether the context hides an incident of kind k opening
// for u at t (with the resource and source of the event behind it).
func (a *Analyzer) hidden(u *user, k int, t int64) bool {
	ctx := a.cfg.ctx
	if ctx == nil || u == a.crowd {
		return false // the crowd's identities were checked one by one
	}
	d, _ := a.localDay(t)
	since := d
	if k == kDormant {
		since, _ = a.localDay(a.idleSince)
	}
	res := a.curRes
	if res == "" && a.curData != "" {
		e := telemetry.Event{DataID: a.curData}
		res = e.ResourceName()
	}
	return ctx.hides(k, u.id, d, since, res, a.curSrc)
}

func cloneEvidence(ev *Evidence) *Evidence {
	if ev == nil {
		return nil
	}
	c := *ev
	c.Daily = slices.Clone(ev.Daily)
	c.Resources = slices.Clone(ev.Resources)
	c.PeerReaders = slices.Clone(ev.PeerReaders)
	c.KnownNetworks = slices.Clone(ev.KnownNetworks)
	c.Identities = slices.Clone(ev.Identities)
	c.Roles = slices.Clone(ev.Roles)
	slices.Sort(c.Identities)
	slices.Sort(c.Roles)
	return &c
}

// behaviourFinding fills the finding of a behaviour kind.
func (a *Analyzer) behaviourFinding(u *user, k int, inc *incident, f *Finding) {
	c := a.cfg
	ev := cloneEvidence(inc.ev)
	if ev == nil {
		ev = &Evidence{}
	}
	f.Evidence = ev
	role := ev.Role
	if role == "" {
		role = "(none)"
	}
	switch k {
	case kFirstAccess:
		f.Score = float64(len(ev.Resources))
		who := "no one else in the role reads it"
		if len(ev.PeerReaders) > 0 {
			who = "read before only by " + strings.Join(ev.PeerReaders, ", ")
		}
		f.Detail = fmt.Sprintf("first read of %s, never read by this identity before; role %s: %s",
			quoteList(ev.Resources), role, who)
	case kDrift:
		f.Detail = fmt.Sprintf("%.0f never-read data IDs a day for %d day(s) in a row, against a baseline of %.0f a day (CUSUM %.1f, threshold %.0f); daily: %v",
			ev.Observed, ev.Days, ev.Baseline, inc.peak*c.driftH, c.driftH, ev.Daily)
		ev.Threshold = c.driftH
	case kDormant:
		f.Detail = fmt.Sprintf("first activity after %d idle day(s); last seen %s", ev.Days, ev.LastSeen.Format(time.RFC3339))
	case kCoordinated:
		f.Score = inc.peak
		what := fmt.Sprintf("read clearly more never-read data IDs than usual within %s", dur(c.popWin))
		if ev.Network != "" {
			what = fmt.Sprintf("used network %s, new to each of them, within %s", ev.Network, dur(c.popWin))
		}
		f.Detail = fmt.Sprintf("%d identities of %d role(s) %s: %s", len(ev.Identities), len(ev.Roles), what, strings.Join(ev.Identities, ", "))
	case kNewSource:
		f.Score = float64(inc.events)
		var parts []string
		if ev.Network != "" {
			known := "none"
			if len(ev.KnownNetworks) > 0 {
				known = strings.Join(ev.KnownNetworks, ", ")
			}
			parts = append(parts, fmt.Sprintf("network %s (source %s) never used by this identity (it used: %s)", ev.Network, clean(ev.Source), known))
		}
		if ev.Client != "" {
			parts = append(parts, fmt.Sprintf("client %q never used by this identity", clean(ev.Client)))
		}
		f.Detail = fmt.Sprintf("%d event(s) from %s", inc.events, strings.Join(parts, "; "))
	case kWeekend:
		f.Score = float64(inc.events)
		f.Detail = fmt.Sprintf("%d event(s) on %s by an identity active on %d weekdays and never on a weekend day or holiday",
			inc.events, ev.Day, ev.WeekdaysActive)
	}
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", clean(s))
	}
	return strings.Join(q, ", ")
}
