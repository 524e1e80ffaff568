package anomaly

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"text/tabwriter"
	"time"
)

// Kind is what a [Finding] is about.
type Kind string

// The finding kinds.
const (
	// KindVolumeSpike: a user's successful decrypts in the volume window far
	// above that user's own baseline.
	KindVolumeSpike Kind = "volume_spike"
	// KindBulkRead: many distinct data IDs decrypted by one user in a short
	// window.
	KindBulkRead Kind = "bulk_read"
	// KindAccessDeniedBurst: many denied access attempts by one user.
	KindAccessDeniedBurst Kind = "access_denied_burst"
	// KindDecryptFailureBurst: many failed decrypts by one user (tampered
	// tokens, wrong or destroyed keys).
	KindDecryptFailureBurst Kind = "decrypt_failure_burst"
	// KindOffHours: activity outside the hours the user normally works.
	KindOffHours Kind = "off_hours"
	// KindCanaryAccess: any event on a canary data ID; always high severity.
	KindCanaryAccess Kind = "canary_access"
	// KindRetiredKeyUse: use of a key ID listed as retired (disabled or
	// destroyed).
	KindRetiredKeyUse Kind = "retired_key_use"
)

// kindList is every kind, indexed by the analyzer's kind numbers.
var kindList = [numKinds]Kind{KindVolumeSpike, KindBulkRead, KindAccessDeniedBurst, KindDecryptFailureBurst, KindOffHours, KindCanaryAccess, KindRetiredKeyUse}

// Kinds returns every kind, in a fixed order (the order findings of the
// same start and user are sorted in).
func Kinds() []Kind { return append([]Kind(nil), kindList[:]...) }

// Severity grades a finding.
type Severity string

// Severities.
const (
	SeverityLow    Severity = "low"
	SeverityMedium Severity = "medium"
	SeverityHigh   Severity = "high"
)

// Finding is one incident: one kind, one user, one stretch of time, however
// many events it took. Its JSON form is one object:
//
//	{"kind":"bulk_read","user_id":"u2077","start":"2026-11-03T22:10:04Z","end":"2026-11-03T22:14:40Z","severity":"high","score":3.4,"events":340,"detail":"..."}
//
// Score is comparable within a kind: for the window kinds (volume_spike,
// bulk_read, access_denied_burst, decrypt_failure_burst) the peak observed
// value divided by its threshold (1 = just at the threshold); for off_hours
// the largest distance in hours from the user's normal hours; for
// canary_access and retired_key_use the number of events.
type Finding struct {
	Kind     Kind      `json:"kind"`
	UserID   string    `json:"user_id"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Severity Severity  `json:"severity"`
	Score    float64   `json:"score"`
	// Events is the number of events (values, for batch events) in the incident.
	Events int `json:"events"`
	// Detail is a one-line human explanation.
	Detail string `json:"detail"`
}

// String returns a one-line summary.
func (f Finding) String() string {
	return fmt.Sprintf("%s %s user=%s %s..%s score=%s events=%d: %s",
		f.Severity, f.Kind, clean(f.UserID), f.Start.UTC().Format(time.RFC3339), f.End.UTC().Format(time.RFC3339),
		formatScore(f.Score), f.Events, clean(f.Detail))
}

// MarshalJSON writes the JSON form with times in UTC and the score
// rounded to two decimals.
func (f Finding) MarshalJSON() ([]byte, error) {
	type plain Finding
	p := plain(f)
	p.Start, p.End = f.Start.UTC(), f.End.UTC()
	p.Score = round2(f.Score)
	return json.Marshal(p)
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

func formatScore(v float64) string { return strconv.FormatFloat(round2(v), 'f', -1, 64) }

// WriteJSON writes findings to w, one JSON object per line (the CLI's
// --json output).
func WriteJSON(w io.Writer, findings []Finding) error {
	bw := bufio.NewWriter(w)
	for _, f := range findings {
		b, err := f.MarshalJSON()
		if err != nil {
			return err
		}
		bw.Write(b)
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// WriteTable writes findings as an aligned text table with a header (the
// CLI's default output); with no findings it writes "no findings".
func WriteTable(w io.Writer, findings []Finding) error {
	if len(findings) == 0 {
		_, err := io.WriteString(w, "no findings\n")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEVERITY\tKIND\tUSER\tSTART\tEND\tSCORE\tEVENTS\tDETAIL")
	for _, f := range findings {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n",
			f.Severity, f.Kind, clean(f.UserID),
			f.Start.UTC().Format(time.RFC3339), f.End.UTC().Format(time.RFC3339),
			formatScore(f.Score), f.Events, clean(f.Detail))
	}
	return tw.Flush()
}

// clean replaces control characters (tabs, newlines, terminal escapes) so
// an ID from the input cannot break the table or the terminal.
func clean(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] < 0x20 || b[j] == 0x7f {
					b[j] = '?'
				}
			}
			return string(b)
		}
	}
	return s
}
