package anomaly

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSeenSetErrors measures the seen-ID sketch's two errors against the
// bounds its documentation states: no ID of the current generation is ever
// reported as never read, and never-read IDs are taken as seen at most at
// the stated rate, for light and heavy readers alike.
func TestSeenSetErrors(t *testing.T) {
	for _, n := range []int{300, 5000, seenMaxCap, 3 * seenMaxCap} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var s seenSet
			for i := range n {
				s.testAndAdd(hashString(fmt.Sprintf("patients/%d/ssn", i)))
			}
			// The most recent IDs (at least the last generation's) are
			// always recognized.
			recent := min(n, s.cur.n)
			for i := n - recent; i < n; i++ {
				require.True(t, s.cur.has(hashString(fmt.Sprintf("patients/%d/ssn", i))), "ID %d of %d not recognized", i, n)
			}
			const probes = 200_000
			fp := 0
			for i := range probes {
				if s.cur.has(hashString(fmt.Sprintf("other/%d/x", i))) || s.prev.words != nil && s.prev.has(hashString(fmt.Sprintf("other/%d/x", i))) {
					fp++
				}
			}
			rate := float64(fp) / probes
			t.Logf("%d IDs: false-positive rate %.4f%%, %d bytes", n, 100*rate, s.bytes())
			assert.LessOrEqual(t, rate, 0.0012, "false-positive rate after %d IDs (documented: at most 0.12%%)", n)
			assert.LessOrEqual(t, s.bytes(), 2*seenMaxCap*bloomBitsPerElem/8, "bytes after %d IDs", n)
		})
	}
}

func TestResourceHash(t *testing.T) {
	for _, tt := range []struct{ a, b string }{
		{"patients/42/ssn", "patients/ssn"},
		{"patients/7/ssn", "patients/42/ssn"},
		{"a/b/c/d", "a/d"},
	} {
		assert.Equal(t, resourceHash("", tt.b), resourceHash("", tt.a), "resource of %q vs %q", tt.a, tt.b)
	}
	assert.NotEqual(t, resourceHash("", "patients/42/ssn"), resourceHash("", "patients/42/dob"), "different columns")
	assert.Equal(t, resourceHash("invoices/iban", "inv-7"), resourceHash("", "invoices/iban"), "an explicit resource")
}

func TestSmallSet(t *testing.T) {
	var s smallSet
	for i := range uint64(10) {
		s.add(i, 4)
	}
	assert.Len(t, s.h, 4, "entries kept")
	for i := range uint64(6) {
		assert.False(t, s.has(i), "%d should have been forgotten", i)
	}
	for i := uint64(6); i < 10; i++ {
		assert.True(t, s.has(i), "%d should be kept", i)
	}
}
