package anomaly

import (
	"flag"
	"fmt"
	"strings"
	"testing"
)

var qualityScenario = genConfig{
	seed: 42, users: 40, heavy: 2, days: 35, perKind: 15, firstDay: 7,
	canaryIDs: []string{"patients/0/ssn", "patients/1/ssn", "honeytoken/admin"},
	retiredID: "1",
}

var seeds = flag.Int("seeds", 1, "number of scenario seeds TestDetectQuality and TestDetectCleanTraffic run (from the default seed on)")

// TestDetectQuality runs the analyzer over five weeks of 40 users with 15
// injected incidents of each kind, and requires precision and recall of at
// least 0.9 for every kind. With -seeds N it runs N scenarios and judges
// the totals.
func TestDetectQuality(t *testing.T) {
	q := runQuality(t, qualityScenario)
	for _, k := range Kinds() {
		if p := q.precision(k); p < 0.9 {
			t.Errorf("precision(%s) = %.2f, want >= 0.9", k, p)
		}
		if r := q.recall(k); r < 0.9 {
			t.Errorf("recall(%s) = %.2f, want >= 0.9", k, r)
		}
	}
}

// TestDetectQualitySubtle injects incidents around the default thresholds
// (some below them, which no threshold detector finds) to show where the
// defaults stand. Exact kinds (canary, retired key) must still be found
// every time, and no kind may raise false alarms.
func TestDetectQualitySubtle(t *testing.T) {
	gc := qualityScenario
	gc.subtle = true
	q := runQuality(t, gc)
	for _, k := range Kinds() {
		if p := q.precision(k); p < 0.9 {
			t.Errorf("precision(%s) = %.2f, want >= 0.9", k, p)
		}
	}
	for _, k := range []Kind{KindCanaryAccess, KindRetiredKeyUse} {
		if r := q.recall(k); r != 1 {
			t.Errorf("recall(%s) = %.2f, want 1", k, r)
		}
	}
}

// runQuality runs -seeds scenarios of gc and logs the totals as a table.
func runQuality(t *testing.T, base genConfig) quality {
	t.Helper()
	total := quality{tp: map[Kind]int{}, fp: map[Kind]int{}, hit: map[Kind]int{}, total: map[Kind]int{}}
	var events, incidents, findings int
	for i := range *seeds {
		gc := base
		gc.seed += uint64(i)
		sc := generate(gc)
		fs := Detect(sc.events, sc.cfg)
		q := measure(sc, fs)
		events, incidents, findings = events+len(sc.events), incidents+len(sc.incidents), findings+len(fs)
		for _, k := range Kinds() {
			total.tp[k] += q.tp[k]
			total.fp[k] += q.fp[k]
			total.hit[k] += q.hit[k]
			total.total[k] += q.total[k]
		}
		total.falsePositives = append(total.falsePositives, q.falsePositives...)
		total.missed = append(total.missed, q.missed...)
	}
	q := total
	var table strings.Builder
	fmt.Fprintf(&table, "%d scenario(s): %d events, %d incidents, %d findings\n", *seeds, events, incidents, findings)
	fmt.Fprintf(&table, "| kind | incidents | found | findings | true | precision | recall |\n|---|---|---|---|---|---|---|\n")
	for _, k := range Kinds() {
		fmt.Fprintf(&table, "| %s | %d | %d | %d | %d | %.2f | %.2f |\n", k, q.total[k], q.hit[k], q.tp[k]+q.fp[k], q.tp[k], q.precision(k), q.recall(k))
	}
	t.Log("\n" + table.String())
	for _, f := range q.falsePositives {
		t.Logf("false positive: %v", f)
	}
	for _, in := range q.missed {
		t.Logf("missed: %s %s %s..%s", in.kind, in.user, in.start, in.end)
	}
	return q
}

// TestDetectCleanTraffic requires no finding at all over a month of 50
// users' ordinary work.
func TestDetectCleanTraffic(t *testing.T) {
	for i := range *seeds {
		sc := generate(genConfig{seed: 7 + uint64(i), users: 50, heavy: 3, days: 31,
			canaryIDs: qualityScenario.canaryIDs, retiredID: "1"})
		findings := Detect(sc.events, sc.cfg)
		t.Logf("seed %d: %d events, %d findings", 7+i, len(sc.events), len(findings))
		for _, f := range findings {
			t.Errorf("finding on clean traffic: %v", f)
		}
	}
}
