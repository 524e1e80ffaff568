package anomaly

import (
	"context"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"

	"github.com/keyward/keyward/telemetry"
)

// Processor is an OpenTelemetry SDK span processor that runs the analyzer
// live: every ended span is converted to usage events exactly as an
// exported span would be ([telemetry.AppendSpanEvents]) and fed to the same
// [Analyzer] that [Detect] uses, so that on the same spans (in time order)
// its final findings are those of Detect over the exported spans. Register
// it next to the exporting processor:
//
//	p, err := anomaly.NewProcessor(cfg,
//		anomaly.WithAlert(func(f anomaly.Finding) { log.Print("ALERT ", f) }),
//		anomaly.WithReport(func(f anomaly.Finding) { log.Print("FINAL ", f) }))
//	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithSpanProcessor(p))
//
// The alert function hears of an incident when it crosses its threshold and
// again whenever its severity rises as it grows (same [Finding.ID]); the
// report function receives the final finding when the incident closes
// (after the incident gap, or at Shutdown).
//
// Spans reach it from every instance when it runs behind the OpenTelemetry
// Collector (as a processor in an analysis service fed by OTLP); inside one
// application it sees that application's spans. A batch span carries a count
// but not the batch's data IDs; an Analyzer used as the application's event
// sink (telemetry.WithSinks) sees each value instead. Use one or the other
// for the same traffic: both would count it twice.
//
// A span ends after the spans it contains, so spans do not end in the
// order of their events. So that the analyzer sees events in time order, as
// [Detect] does, the processor holds each event until it is [ReorderDelay]
// older than the newest event seen or than the clock, then observes it in
// time order (ForceFlush and Shutdown observe everything held). Alerts come
// that much later than the event that raised them.
//
// OnEnd runs on the goroutine that ended the span; spans that are neither
// named like a keyward action nor carry span events cost a name check and
// an event-count check. The alert and report functions are called on that
// goroutine too (or on the processor's own goroutine, which releases held
// events once a second): keep them quick or hand the finding off.
type Processor struct {
	a       *Analyzer
	stopped atomic.Bool
	pool    sync.Pool // *scratch

	mu     sync.Mutex // guards held, seq and newest; taken before the analyzer's
	held   []heldEvent
	seq    uint64
	newest int64
	stop   chan struct{}
	done   chan struct{}
	now    func() time.Time
}

// ReorderDelay is how long (in event time, or on the clock) the
// [Processor] holds an event before it observes it, so that the events of
// spans that end out of order are observed in time order. The processor
// runs a goroutine for it from NewProcessor until Shutdown (which the
// TracerProvider's Shutdown calls).
const ReorderDelay = 5 * time.Second

// heldEvent is an event waiting in the processor's time-ordered heap.
type heldEvent struct {
	t   int64
	seq uint64 // arrival order, for events of equal time
	e   telemetry.Event
}

func (h *heldEvent) before(o *heldEvent) bool {
	return h.t < o.t || h.t == o.t && h.seq < o.seq
}

type scratch struct {
	sd      telemetry.SpanData
	events  []telemetry.Event
	res     *resource.Resource // the resource service was read from
	service string
}

var _ sdktrace.SpanProcessor = (*Processor)(nil)

// NewProcessor returns a Processor analyzing with cfg; opts are those of
// [NewAnalyzer] ([WithAlert] for live alerts and escalations, [WithReport]
// for the final findings, which are otherwise dropped). It fails with
// [ErrInvalidConfig] for an invalid cfg and [ErrInvalidOption] for an
// invalid option.
func NewProcessor(cfg Config, opts ...AnalyzerOption) (*Processor, error) {
	a, err := NewAnalyzer(cfg, opts...)
	if err != nil {
		return nil, err
	}
	if a.report == nil {
		// Closed findings are not kept in live use: they would pile up.
		a.report = func(Finding) {}
	}
	p := &Processor{a: a, stop: make(chan struct{}), done: make(chan struct{}), now: time.Now}
	p.pool.New = func() any { return new(scratch) }
	go p.tick()
	return p, nil
}

// tick releases held events once a second, so that a quiet spell does not
// hold back the alerts of the last events before it.
func (p *Processor) tick() {
	defer close(p.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.release(p.now().Add(-ReorderDelay).UnixNano())
		}
	}
}

// hold queues events in the time-ordered heap.
func (p *Processor) hold(events []telemetry.Event) {
	p.mu.Lock()
	for i := range events {
		t := events[i].Time.UnixNano()
		p.newest = max(p.newest, t)
		p.held = append(p.held, heldEvent{t: t, seq: p.seq, e: events[i]})
		p.seq++
		p.up(len(p.held) - 1)
	}
	p.mu.Unlock()
}

// release observes, in time order, the held events not newer than limit
// (and, whatever limit, those ReorderDelay older than the newest), then
// delivers the callbacks outside the locks.
func (p *Processor) release(limit int64) {
	p.mu.Lock()
	limit = max(limit, p.newest-int64(ReorderDelay))
	a := p.a
	a.mu.Lock()
	for len(p.held) > 0 && p.held[0].t <= limit {
		e := p.held[0].e
		last := len(p.held) - 1
		p.held[0] = p.held[last]
		p.held[last] = heldEvent{}
		p.held = p.held[:last]
		p.down(0)
		a.observe(&e)
	}
	alerts, reports := a.takeCallbacks()
	a.mu.Unlock()
	p.mu.Unlock()
	a.deliver(alerts, reports)
}

// up and down keep p.held a heap ordered by (time, arrival).
func (p *Processor) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !p.held[i].before(&p.held[parent]) {
			return
		}
		p.held[i], p.held[parent] = p.held[parent], p.held[i]
		i = parent
	}
}

func (p *Processor) down(i int) {
	n := len(p.held)
	for {
		l, m := 2*i+1, i
		if l < n && p.held[l].before(&p.held[m]) {
			m = l
		}
		if r := l + 1; r < n && p.held[r].before(&p.held[m]) {
			m = r
		}
		if m == i {
			return
		}
		p.held[i], p.held[m] = p.held[m], p.held[i]
		i = m
	}
}

// Analyzer returns the processor's analyzer, for instance to also use it
// as an event sink (telemetry.WithSinks) or to Flush it (after the
// processor's ForceFlush, which hands it the events still held).
func (p *Processor) Analyzer() *Analyzer { return p.a }

// OnStart does nothing.
func (p *Processor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd converts the span to events and observes them.
func (p *Processor) OnEnd(s sdktrace.ReadOnlySpan) {
	if p.stopped.Load() {
		return
	}
	name := s.Name()
	isOp := strings.HasPrefix(name, "keyward.")
	evs := s.Events()
	if !isOp && len(evs) == 0 {
		return
	}
	sc := p.pool.Get().(*scratch)
	sc.sd.Events = sc.sd.Events[:0]
	for _, ev := range evs {
		if strings.HasPrefix(ev.Name, "keyward.") {
			sc.sd.Events = append(sc.sd.Events, telemetry.SpanEvent{Name: ev.Name, Time: ev.Time, Attributes: ev.Attributes})
		}
	}
	if isOp || len(sc.sd.Events) > 0 {
		sc.sd.Name = name
		sc.sd.Start = s.StartTime()
		sc.sd.Attributes = s.Attributes()
		sc.sd.Failed = s.Status().Code == codes.Error
		sc.sd.DroppedEvents = s.DroppedEvents()
		if r := s.Resource(); r != sc.res {
			sc.res, sc.service = r, ""
			if v, ok := r.Set().Value(semconv.ServiceNameKey); ok {
				sc.service = v.AsString()
			}
		}
		sc.sd.Service = sc.service
		sc.events = telemetry.AppendSpanEvents(sc.events[:0], &sc.sd)
		p.hold(sc.events)
		p.release(math.MinInt64)
	}
	clear(sc.sd.Events)
	clear(sc.events)
	sc.sd = telemetry.SpanData{Events: sc.sd.Events[:0]}
	p.pool.Put(sc)
}

// Shutdown stops observing, ends the day for the day-close detectors and
// closes every open incident, handing the final findings to the
// [WithReport] function if one was given. It does not block; it returns
// ctx's error if ctx is already done.
func (p *Processor) Shutdown(ctx context.Context) error {
	if p.stopped.Swap(true) {
		return nil
	}
	close(p.stop)
	<-p.done
	p.release(math.MaxInt64)
	p.a.Flush()
	return ctx.Err()
}

// ForceFlush observes every held event now. It does not close open
// incidents: that would split them.
func (p *Processor) ForceFlush(context.Context) error {
	p.release(math.MaxInt64)
	return nil
}
