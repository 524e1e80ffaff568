package anomaly

import (
	"flag"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The labelled scenario set: eight weeks of 45 people and 5 service
// identities with the noise, and every pattern injected.
var qualityScenario = genConfig{
	seed: 42, users: 45, services: 5, heavy: 2, days: 56, perKind: 6, firstDay: 7, noise: true,
	canaryIDs: []string{"patients/0/ssn", "patients/1/ssn", "honeytoken/admin"},
	retiredID: "1",
	holidays:  []string{"2026-11-26", "2026-12-24", "2026-12-25"},
}

// The clean month: four weeks to learn, then a month of ordinary work with
// the noise (joiners, role changes, the billing month-end, returns from
// leave, on-call weekends, a trip), and nothing injected.
var cleanScenario = genConfig{
	seed: 7, users: 45, services: 5, heavy: 2, days: 60, noise: true, noiseFrom: 28,
	canaryIDs: qualityScenario.canaryIDs, retiredID: "1", holidays: qualityScenario.holidays,
}

const cleanFrom = 28 // the clean month's first day

var seeds = flag.Int("seeds", 1, "number of scenario seeds TestDetectQuality and TestDetectCleanMonth run (from the default seed on)")

// TestDetectQuality runs the analyzer with the default configuration over
// the labelled set and requires recall of at least 0.8 for every pattern
// and a precision of at least 0.9. With -seeds N it runs N scenarios and
// judges the totals (the figures in the package documentation are from
// -seeds 10).
func TestDetectQuality(t *testing.T) {
	total := newQuality()
	for i := range *seeds {
		gc := qualityScenario
		gc.seed += uint64(i)
		sc := generate(gc)
		total.merge(measure(sc, Detect(sc.events, sc.cfg)))
	}
	q := total
	var table strings.Builder
	fmt.Fprintf(&table, "%d scenario(s): %d events, %d findings (%d of them in the first week, while the analyzer learns: not scored)\n",
		*seeds, q.events, q.findings, q.learning)
	fmt.Fprintf(&table, "| pattern | finding kind | incidents | found | recall |\n|---|---|---|---|---|\n")
	for _, p := range patterns {
		fmt.Fprintf(&table, "| %s | %s | %d | %d | %.2f |\n", p.name, p.kind, q.total[p.name], q.hit[p.name], q.recall(p.name))
	}
	fmt.Fprintf(&table, "\n| finding kind | findings | true | precision |\n|---|---|---|---|\n")
	for _, k := range Kinds() {
		fmt.Fprintf(&table, "| %s | %d | %d | %.2f |\n", k, q.tp[k]+q.fp[k], q.tp[k], q.precision(k))
	}
	fmt.Fprintf(&table, "| all | %d | | %.3f |\n", q.findings-q.learning, q.overallPrecision())
	t.Log("\n" + table.String())
	for _, f := range q.falsePositives {
		t.Logf("false positive: %v", f)
	}
	for _, in := range q.missed {
		t.Logf("missed: %s %v %s..%s", in.pattern, in.users, in.start, in.end)
	}
	for _, p := range patterns {
		require.Positive(t, q.total[p.name], "no %s incident injected", p.name)
		assert.GreaterOrEqual(t, q.recall(p.name), 0.8, "recall(%s): %d of %d found", p.name, q.hit[p.name], q.total[p.name])
	}
	assert.GreaterOrEqual(t, q.overallPrecision(), 0.9, "precision over %d findings", q.findings)
}

// TestDetectCleanMonth requires at most 5 findings per 1000 active
// user-days over a clean month with the noise, default configuration.
func TestDetectCleanMonth(t *testing.T) {
	var fps, userDays int
	for i := range *seeds {
		gc := cleanScenario
		gc.seed += uint64(i)
		sc := generate(gc)
		for _, n := range sc.activeDays[cleanFrom:] {
			userDays += n
		}
		for _, f := range Detect(sc.events, sc.cfg) {
			if f.Start.Before(scenarioEpoch.AddDate(0, 0, cleanFrom)) {
				continue
			}
			fps++
			t.Logf("seed %d: finding on clean traffic: %v", gc.seed, f)
		}
	}
	rate := 1000 * float64(fps) / float64(userDays)
	t.Logf("%d findings over %d active user-days: %.2f per 1000", fps, userDays, rate)
	assert.LessOrEqual(t, rate, 5.0, "false positives per 1000 active user-days (%d over %d)", fps, userDays)
}
