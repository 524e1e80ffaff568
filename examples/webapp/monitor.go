package main

import (
	"context"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/telemetry"
	"github.com/keyward/keyward/telemetry/anomaly"
)

// chartHistory is how far back the activity chart reaches.
const chartHistory = time.Hour

// chartBuckets is about how many columns the chart has.
const chartBuckets = 60

// monitor keeps what the monitoring page shows: per-user activity per
// second (successful encryptions and decryptions, denied accesses) and the
// anomaly analyzer's findings. It sees the same events as the analyzer: as
// a span processor (access decisions, keyring operations) and as a
// telemetry sink (the GORM layer's values).
type monitor struct {
	mu       sync.Mutex
	activity map[userSecond]*[3]int
	oldest   int64 // unix second of the oldest kept activity
	findings []shownFinding
	users    []User
}

// Activity series, in the order of the counts.
const (
	seriesEncrypt = iota
	seriesDecrypt
	seriesDenied
)

type userSecond struct {
	user string
	sec  int64
}

// shownFinding is a finding and whether its incident is still open.
type shownFinding struct {
	anomaly.Finding
	Open bool `json:"open"`
}

var (
	_ sdktrace.SpanProcessor = (*monitor)(nil)
	_ telemetry.Sink         = (*monitor)(nil)
)

func newMonitor(users []User) *monitor {
	return &monitor{activity: map[userSecond]*[3]int{}, users: users}
}

// WriteEvent implements telemetry.Sink.
func (m *monitor) WriteEvent(_ context.Context, e telemetry.Event) error {
	m.observe(e)
	return nil
}

// OnStart implements sdktrace.SpanProcessor.
func (m *monitor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd implements sdktrace.SpanProcessor: the span's usage events, as the
// analyzer's processor reads them.
func (m *monitor) OnEnd(s sdktrace.ReadOnlySpan) {
	sd := telemetry.SpanData{Name: s.Name(), Start: s.StartTime(), Attributes: s.Attributes(),
		Failed: s.Status().Code == codes.Error, DroppedEvents: s.DroppedEvents()}
	for _, ev := range s.Events() {
		sd.Events = append(sd.Events, telemetry.SpanEvent{Name: ev.Name, Time: ev.Time, Attributes: ev.Attributes})
	}
	for _, e := range telemetry.AppendSpanEvents(nil, &sd) {
		m.observe(e)
	}
}

// Shutdown implements sdktrace.SpanProcessor.
func (m *monitor) Shutdown(context.Context) error { return nil }

// ForceFlush implements sdktrace.SpanProcessor.
func (m *monitor) ForceFlush(context.Context) error { return nil }

// observe counts one event into its user's second.
func (m *monitor) observe(e telemetry.Event) {
	series := -1
	switch {
	case e.Action == telemetry.ActionEncrypt && e.Success:
		series = seriesEncrypt
	case e.Action == telemetry.ActionDecrypt && e.Success:
		series = seriesDecrypt
	case e.Action == telemetry.ActionAccess && !e.Success:
		series = seriesDenied
	}
	if series < 0 || e.UserID == "" {
		return
	}
	sec := e.Time.Unix()
	m.mu.Lock()
	defer m.mu.Unlock()
	k := userSecond{e.UserID, sec}
	c := m.activity[k]
	if c == nil {
		c = new([3]int)
		m.activity[k] = c
	}
	c[series] += e.N()
	if m.oldest == 0 || sec < m.oldest {
		m.oldest = sec
	}
	if cut := time.Now().Add(-chartHistory).Unix(); m.oldest < cut-60 {
		for k := range m.activity {
			if k.sec < cut {
				delete(m.activity, k)
			}
		}
		m.oldest = cut
	}
}

// alert is the analyzer's alert function: an incident that just became a
// finding.
func (m *monitor) alert(f anomaly.Finding) { m.upsert(f, true) }

// report is the analyzer's report function: the final finding of a closed
// incident.
func (m *monitor) report(f anomaly.Finding) { m.upsert(f, false) }

func (m *monitor) upsert(f anomaly.Finding, open bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, g := range m.findings {
		if g.Kind == f.Kind && g.UserID == f.UserID && g.Start.Equal(f.Start) {
			m.findings[i] = shownFinding{f, open}
			return
		}
	}
	m.findings = append(m.findings, shownFinding{f, open})
}

// chart is the activity chart's data: for each user, the counts per bucket
// of every series, oldest bucket first.
type chart struct {
	Start  time.Time      `json:"start"`
	End    time.Time      `json:"end"`
	Bucket int64          `json:"bucket_seconds"`
	Users  []userSeries   `json:"users"`
	Series []string       `json:"series"`
	Marks  []shownFinding `json:"findings"`
}

type userSeries struct {
	User   string  `json:"user"`
	Name   string  `json:"name"`
	Counts [][]int `json:"counts"` // [series][bucket]
}

// bucketSizes are the chart's bucket widths in seconds.
var bucketSizes = []int64{1, 2, 5, 10, 15, 30, 60, 120, 300}

// snapshot returns the chart from the oldest kept activity to now, and the
// findings, newest first.
func (m *monitor) snapshot(now time.Time) chart {
	m.mu.Lock()
	defer m.mu.Unlock()
	end := now.Unix()
	start := max(m.oldest, now.Add(-chartHistory).Unix())
	if m.oldest == 0 || end-start < 60 {
		start = end - 60
	}
	bucket := bucketSizes[len(bucketSizes)-1]
	for _, b := range bucketSizes {
		if (end-start)/b <= chartBuckets {
			bucket = b
			break
		}
	}
	start -= start % bucket
	n := int((end-start)/bucket) + 1
	byUser := map[string]*userSeries{}
	for k, c := range m.activity {
		if k.sec < start {
			continue
		}
		us := byUser[k.user]
		if us == nil {
			us = &userSeries{User: k.user, Name: m.displayName(k.user), Counts: make([][]int, 3)}
			for s := range us.Counts {
				us.Counts[s] = make([]int, n)
			}
			byUser[k.user] = us
		}
		i := min(int((k.sec-start)/bucket), n-1)
		for s := range c {
			us.Counts[s][i] += c[s]
		}
	}
	out := chart{Start: time.Unix(start, 0).UTC(), End: time.Unix(end, 0).UTC(), Bucket: bucket,
		Series: []string{"encrypt", "decrypt", "denied"}, Users: []userSeries{}}
	for _, us := range byUser {
		out.Users = append(out.Users, *us)
	}
	sort.Slice(out.Users, func(i, j int) bool { return out.Users[i].User < out.Users[j].User })
	out.Marks = append([]shownFinding{}, m.findings...)
	slices.Reverse(out.Marks)
	return out
}

func (m *monitor) displayName(id string) string {
	for _, u := range m.users {
		if u.ID == id {
			return u.Name
		}
	}
	return id
}

// getMonitoring shows the activity chart and the findings
// (GET /api/monitoring).
func (a *app) getMonitoring(_ http.ResponseWriter, r *http.Request) (any, error) {
	if err := a.guard.Authorize(r.Context(), access.ActionManage, a.keyringResource()); err != nil {
		return nil, err
	}
	return a.monitor.snapshot(time.Now()), nil
}
