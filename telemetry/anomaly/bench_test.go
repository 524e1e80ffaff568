package anomaly

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/keyward/keyward/internal/benchbase"
	"github.com/keyward/keyward/internal/instrument"
	"github.com/keyward/keyward/telemetry"
)

var (
	millionOnce sync.Once
	million     scenario
)

// millionEvents returns 1,000,000 events of 95 people and 5 service
// identities over eight weeks, with the noise and incidents of every
// pattern.
func millionEvents(b *testing.B) scenario {
	millionOnce.Do(func() {
		gc := qualityScenario
		gc.seed, gc.users, gc.heavy, gc.perKind = 1, 95, 4, 10
		million = generate(gc)
		if len(million.events) < 1_000_000 {
			panic("scenario too small for the benchmark")
		}
		million.events = million.events[:1_000_000]
	})
	return million
}

// BenchmarkDetect1M analyzes one million time-ordered events (the usual
// case: a JSON Lines file is written in time order).
func BenchmarkDetect1M(b *testing.B) {
	sc := millionEvents(b)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for b.Loop() {
		if fs := Detect(sc.events, sc.cfg); len(fs) == 0 {
			b.Fatal("no findings")
		}
	}
	reportCPU(b, cpu)
}

// reportCPU adds the process CPU time per operation: with -cpu 1 it is the
// cost on one core, whatever else the machine is running.
func reportCPU(b *testing.B, since time.Duration) {
	if c := cpuTime(); c > 0 {
		b.ReportMetric(float64((c-since).Milliseconds())/float64(b.N), "cpu-ms/op")
	}
}

// BenchmarkDetect1MShuffled is the same with the events in random order,
// so Detect sorts them first.
func BenchmarkDetect1MShuffled(b *testing.B) {
	sc := millionEvents(b)
	shuffled := append([]telemetry.Event(nil), sc.events...)
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for b.Loop() {
		if fs := Detect(shuffled, sc.cfg); len(fs) == 0 {
			b.Fatal("no findings")
		}
	}
	reportCPU(b, cpu)
}

// discard is a span exporter that drops everything.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// BenchmarkStatement measures keyward's telemetry for one GORM-like
// statement of 1000 rows x 3 encrypted fields: one span carrying the count,
// one metric update and, per value, one Emit. "off" is the same code with no
// SDK and no sinks. The other two record every span through a batch
// processor into a discarding exporter and attach the analyzer in one of
// its two ways (never both for the same traffic, which would count it
// twice): "sink" as the event sink, seeing every value with its data ID;
// "processor" as span processor, seeing the statement's span with its
// count. The decryption work itself is not included: this is the added
// cost per statement.
func BenchmarkStatement(b *testing.B) {
	ids := make([]string, 3000)
	for i := range ids {
		ids[i] = fmt.Sprintf("users/%d/%s", i/3, []string{"ssn", "dob", "diagnosis"}[i%3])
	}
	run := func(b *testing.B, in *instrument.Instrumentation) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			c, span := in.Start(ctx, telemetry.ActionDecrypt, telemetry.AttrKeyring.String("pii"), in.UserID("u1042"), in.DataID("users/*"))
			now := time.Now()
			for _, id := range ids {
				in.Emit(c, telemetry.Event{Time: now, Action: telemetry.ActionDecrypt, UserID: "u1042", DataID: id, KeyID: "3", Success: true})
			}
			in.End(span, telemetry.OutcomeOK, len(ids), nil)
			in.RecordOp(c, telemetry.ActionDecrypt, "pii", 3, telemetry.OutcomeOK, int64(len(ids)))
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(ids)), "ns/value")
	}
	// High thresholds: the benchmark's user reads the same rows over and
	// over, and alerts are not what is measured.
	quiet := Config{BulkReadMinDistinct: 1 << 30, VolumeMinEvents: 1 << 30, WorkHours: "0-24"}
	withSDK := func(b *testing.B, sinks []telemetry.Sink, procs ...sdktrace.SpanProcessor) *instrument.Instrumentation {
		opts := []sdktrace.TracerProviderOption{sdktrace.WithBatcher(discard{})}
		for _, p := range procs {
			opts = append(opts, sdktrace.WithSpanProcessor(p))
		}
		tp := sdktrace.NewTracerProvider(opts...)
		b.Cleanup(func() { tp.Shutdown(context.Background()) })
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		in, err := instrument.New("bench", telemetry.WithTracerProvider(tp), telemetry.WithMeterProvider(mp), telemetry.WithSinks(sinks...))
		require.NoError(b, err)
		return in
	}
	b.Run("off", func(b *testing.B) {
		in, err := instrument.New("bench", telemetry.WithTracerProvider(tracenoop.NewTracerProvider()),
			telemetry.WithMeterProvider(metricnoop.NewMeterProvider()), telemetry.WithSinks())
		require.NoError(b, err)
		run(b, in)
	})
	b.Run("sink", func(b *testing.B) {
		a, err := NewAnalyzer(quiet)
		require.NoError(b, err)
		run(b, withSDK(b, []telemetry.Sink{a}))
	})
	b.Run("processor", func(b *testing.B) {
		p, err := NewProcessor(quiet)
		require.NoError(b, err)
		run(b, withSDK(b, nil, p))
	})
	// The processor's share, interleaved with the same statement under the
	// SDK alone so that both see the same machine: the ratio is what
	// attaching the analyzer adds to a traced statement.
	b.Run("processor-vs-sdk", func(b *testing.B) {
		p, err := NewProcessor(quiet)
		require.NoError(b, err)
		base, ours := withSDK(b, nil), withSDK(b, nil, p)
		statement := func(in *instrument.Instrumentation) func() error {
			ctx := context.Background()
			return func() error {
				c, span := in.Start(ctx, telemetry.ActionDecrypt, telemetry.AttrKeyring.String("pii"), in.UserID("u1042"), in.DataID("users/*"))
				now := time.Now()
				for _, id := range ids {
					in.Emit(c, telemetry.Event{Time: now, Action: telemetry.ActionDecrypt, UserID: "u1042", DataID: id, KeyID: "3", Success: true})
				}
				in.End(span, telemetry.OutcomeOK, len(ids), nil)
				in.RecordOp(c, telemetry.ActionDecrypt, "pii", 3, telemetry.OutcomeOK, int64(len(ids)))
				return nil
			}
		}
		benchbase.Interleave(b, statement(base), statement(ours))
	})
}

// BenchmarkProcessorSpan measures what the live processor adds to a traced
// request: a span with three keyward span events (user, role, data ID,
// source, client, as Instrumentation.Record writes them) recorded by the
// SDK through a batch processor into a discarding exporter, without (base)
// and with (ours) the anomaly processor, interleaved in one run. The
// identities (200 of them, in 5 roles) read never-read data IDs, so every
// behaviour detector does its work.
func BenchmarkProcessorSpan(b *testing.B) {
	p, err := NewProcessor(Config{WorkHours: "0-24"})
	require.NoError(b, err)
	mk := func(procs ...sdktrace.SpanProcessor) (*instrument.Instrumentation, trace.Tracer) {
		opts := []sdktrace.TracerProviderOption{sdktrace.WithBatcher(discard{})}
		for _, p := range procs {
			opts = append(opts, sdktrace.WithSpanProcessor(p))
		}
		tp := sdktrace.NewTracerProvider(opts...)
		b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		in, err := instrument.New("bench", telemetry.WithTracerProvider(tp), telemetry.WithSinks())
		require.NoError(b, err)
		return in, tp.Tracer("bench")
	}
	baseIn, baseTr := mk()
	oursIn, oursTr := mk(p)
	users := make([]string, 200)
	for i := range users {
		users[i] = fmt.Sprintf("u%04d", i)
	}
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	request := func(in *instrument.Instrumentation, tr trace.Tracer) func() error {
		n := 0
		return func() error {
			n++
			u := n % len(users)
			ctx, span := tr.Start(context.Background(), "GET /patients")
			for j := range 3 {
				in.Record(ctx, telemetry.Event{Time: at.Add(time.Duration(n) * 50 * time.Millisecond), Action: telemetry.ActionDecrypt,
					UserID: users[u], Role: roleNames[u%len(roleNames)], DataID: fmt.Sprintf("patients/%d/dob", 3*n+j),
					KeyID: "3", Success: true, Source: "10.1.2.3", Client: "clinic-web"})
			}
			span.End()
			return nil
		}
	}
	benchbase.Interleave(b, request(baseIn, baseTr), request(oursIn, oursTr))
}
