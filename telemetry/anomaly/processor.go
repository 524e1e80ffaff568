package anomaly

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"

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
// OnEnd runs on the goroutine that ended the span; spans that are neither
// named like a keyward action nor carry span events cost a name check and
// an event-count check. The alert and report functions are called on that
// goroutine too: keep them quick or hand the finding off.
type Processor struct {
	a       *Analyzer
	stopped atomic.Bool
	pool    sync.Pool // *scratch
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
	p := &Processor{a: a}
	p.pool.New = func() any { return new(scratch) }
	return p, nil
}

// Analyzer returns the processor's analyzer, for instance to also use it
// as an event sink (telemetry.WithSinks) or to Flush it.
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
		for i := range sc.events {
			p.a.Observe(sc.events[i])
		}
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
	p.a.Flush()
	return ctx.Err()
}

// ForceFlush does nothing: there is nothing buffered, and closing open
// incidents early would split them.
func (p *Processor) ForceFlush(context.Context) error { return nil }
