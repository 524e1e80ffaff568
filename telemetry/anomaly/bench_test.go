package anomaly

import (
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/keyward/keyward/telemetry"
)

var (
	millionOnce sync.Once
	million     scenario
)

// millionEvents returns 1,000,000 events of 120 users over two months,
// with incidents of every kind.
func millionEvents(b *testing.B) scenario {
	millionOnce.Do(func() {
		million = generate(genConfig{seed: 1, users: 120, heavy: 4, days: 60, perKind: 30, firstDay: 7,
			canaryIDs: qualityScenario.canaryIDs, retiredID: "1"})
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
	for b.Loop() {
		if fs := Detect(sc.events, sc.cfg); len(fs) == 0 {
			b.Fatal("no findings")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ns/event")
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
	for b.Loop() {
		if fs := Detect(shuffled, sc.cfg); len(fs) == 0 {
			b.Fatal("no findings")
		}
	}
}

// BenchmarkObserve is the cost of one event fed to a warm analyzer (the
// live path: a sink or the span processor).
func BenchmarkObserve(b *testing.B) {
	sc := millionEvents(b)
	a, err := NewAnalyzer(sc.cfg)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range sc.events[:200_000] {
		a.Observe(e)
	}
	rest := sc.events[200_000:]
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		a.Observe(rest[i])
		i++
		if i == len(rest) {
			b.StopTimer()
			a, _ = NewAnalyzer(sc.cfg)
			for _, e := range sc.events[:200_000] {
				a.Observe(e)
			}
			i = 0
			b.StartTimer()
		}
	}
}
