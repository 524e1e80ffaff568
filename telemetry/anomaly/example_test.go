package anomaly_test

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/keyward/keyward/telemetry"
	"github.com/keyward/keyward/telemetry/anomaly"
)

// Detecting a canary access and a burst of denied attempts.
func ExampleDetect() {
	at := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	var events []telemetry.Event
	for i := range 12 {
		events = append(events, telemetry.Event{Time: at.Add(time.Duration(i) * 15 * time.Second), Action: telemetry.ActionAccess,
			UserID: "u2077", DataID: "keyring/payroll", Attempted: telemetry.ActionDecrypt})
	}
	events = append(events, telemetry.Event{Time: at.Add(time.Hour), Action: telemetry.ActionDecrypt,
		UserID: "u1042", DataID: "patients/0/ssn", Success: true})

	cfg := anomaly.Config{CanaryDataIDs: []string{"patients/0/ssn"}}
	findings := anomaly.Detect(events, cfg)
	if err := anomaly.WriteJSON(os.Stdout, findings); err != nil {
		panic(err)
	}
	// Output:
	// {"kind":"access_denied_burst","user_id":"u2077","start":"2026-11-02T10:00:00Z","end":"2026-11-02T10:02:45Z","severity":"low","score":1.2,"events":12,"detail":"12 denied access attempts within 10m (threshold 10)"}
	// {"kind":"canary_access","user_id":"u1042","start":"2026-11-02T11:00:00Z","end":"2026-11-02T11:00:00Z","severity":"high","score":1,"events":1,"detail":"1 event(s) on canary data ID \"patients/0/ssn\""}
}

// Loading the CLI's configuration file: every field is optional, unknown
// fields are an error.
func ExampleLoadConfig() {
	cfg, err := anomaly.LoadConfig(strings.NewReader(`{"canary_data_ids":["patients/0/ssn"],"retired_key_ids":["1"],"denied_min":5}`))
	if err != nil {
		panic(err)
	}
	d := cfg.WithDefaults()
	fmt.Println(d.CanaryDataIDs, d.RetiredKeyIDs, d.DeniedMin, d.FailureMin, time.Duration(d.BulkReadWindow))

	_, err = anomaly.LoadConfig(strings.NewReader(`{"canary_ids":["x"]}`))
	fmt.Println(err)
	// Output:
	// [patients/0/ssn] [1] 5 10 10m0s
	// anomaly: invalid config: unknown field "canary_ids"
}
