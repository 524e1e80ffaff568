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
	// KindFirstAccess: an identity read a resource (table/column) it had
	// never read and that its peer group (its role) does not read either:
	// scope drift.
	KindFirstAccess Kind = "first_access"
	// KindNewDataDrift: day after day, an identity reads more never-read
	// data IDs than its own history says, while its peer group does not:
	// low-and-slow exfiltration.
	KindNewDataDrift Kind = "new_data_drift"
	// KindDormantAccount: the first activity of an identity after a long
	// idle gap.
	KindDormantAccount Kind = "dormant_account"
	// KindCoordinatedAccess: several identities of several roles deviating
	// together within a short window, or sharing one network none of them
	// used before; one finding names them all (its UserID is "*").
	KindCoordinatedAccess Kind = "coordinated_access"
	// KindNewSource: an identity's events come from a network or a client
	// it has never used.
	KindNewSource Kind = "new_source"
	// KindWeekendActivity: an identity that works on weekdays only is
	// active on a weekend day or a holiday.
	KindWeekendActivity Kind = "weekend_activity"
)

// kindList is every kind, indexed by the analyzer's kind numbers.
var kindList = [numKinds]Kind{KindVolumeSpike, KindBulkRead, KindAccessDeniedBurst, KindDecryptFailureBurst, KindOffHours, KindCanaryAccess, KindRetiredKeyUse,
	KindFirstAccess, KindNewDataDrift, KindDormantAccount, KindCoordinatedAccess, KindNewSource, KindWeekendActivity}

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
//	{"id":"bulk_read/u2077/2026-11-03T22:10:04Z","kind":"bulk_read","user_id":"u2077","start":"2026-11-03T22:10:04Z","end":"2026-11-03T22:14:40Z","severity":"high","score":3.4,"events":340,"detail":"...","evidence":{"observed":340,"threshold":100}}
//
// Score is comparable within a kind: for the window kinds (volume_spike,
// bulk_read, access_denied_burst, decrypt_failure_burst) the peak observed
// value divided by its threshold (1 = just at the threshold); for off_hours
// the largest distance in hours from the user's normal hours; for
// canary_access and retired_key_use the number of events; for the behaviour
// kinds see each kind in the package documentation.
type Finding struct {
	// ID names the incident: kind, user and start. A live alert and its
	// escalations carry the ID of the finding they end in.
	ID       string    `json:"id"`
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
	// Evidence holds the facts behind the finding, for an analyst to act
	// on; which fields are set depends on the kind.
	Evidence *Evidence `json:"evidence,omitempty"`
}

// Evidence is what a finding rests on. Fields that do not apply to a kind
// are empty and left out of the JSON form.
type Evidence struct {
	// Observed and Threshold: the peak value the finding measured and the
	// threshold it crossed (window kinds), or the day count that made the
	// drift (new_data_drift, never-read data IDs per day on average).
	Observed  float64 `json:"observed,omitempty"`
	Threshold float64 `json:"threshold,omitempty"`
	// Baseline is the identity's usual value: the daily peak for
	// volume_spike, never-read data IDs per day for new_data_drift.
	Baseline float64 `json:"baseline,omitempty"`
	// Days: days of drift (new_data_drift) or days idle (dormant_account).
	Days int `json:"days,omitempty"`
	// Daily is the count of never-read data IDs on each day of the drift.
	Daily []int `json:"daily,omitempty"`
	// Role is the identity's peer group.
	Role string `json:"role,omitempty"`
	// Resources are the resources the identity read for the first time
	// (first_access), or that the drift read most.
	Resources []string `json:"resources,omitempty"`
	// PeerReaders are the identities of the role that read those resources
	// before (at most 8, possibly none), PeerCount how many there are.
	PeerReaders []string `json:"peer_readers,omitempty"`
	PeerCount   int      `json:"peer_count,omitempty"`
	// LastSeen is the identity's last activity before the finding.
	LastSeen *time.Time `json:"last_seen,omitempty"`
	// Source and Network: the address and the network that were new
	// (new_source) or shared (coordinated_access); Client the client name.
	Source  string `json:"source,omitempty"`
	Network string `json:"network,omitempty"`
	Client  string `json:"client,omitempty"`
	// KnownNetworks are networks the identity used before (the most recent
	// few).
	KnownNetworks []string `json:"known_networks,omitempty"`
	// Identities and Roles of a coordinated_access finding.
	Identities []string `json:"identities,omitempty"`
	Roles      []string `json:"roles,omitempty"`
	// Day names the weekend day or holiday of a weekend_activity finding;
	// WeekdaysActive and WeekendsActive count the identity's active days.
	Day            string `json:"day,omitempty"`
	WeekdaysActive int    `json:"weekdays_active,omitempty"`
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
	if f.Evidence != nil {
		ev := *f.Evidence
		ev.Observed, ev.Threshold, ev.Baseline = round2(ev.Observed), round2(ev.Threshold), round2(ev.Baseline)
		p.Evidence = &ev
	}
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
