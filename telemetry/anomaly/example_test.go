package anomaly_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

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
	// {"id":"access_denied_burst/u2077/2026-11-02T10:00:00Z","kind":"access_denied_burst","user_id":"u2077","start":"2026-11-02T10:00:00Z","end":"2026-11-02T10:02:45Z","severity":"low","score":1.2,"events":12,"detail":"12 denied access attempts within 10m (threshold 10)","evidence":{"observed":12,"threshold":10}}
	// {"id":"canary_access/u1042/2026-11-02T11:00:00Z","kind":"canary_access","user_id":"u1042","start":"2026-11-02T11:00:00Z","end":"2026-11-02T11:00:00Z","severity":"high","score":1,"events":1,"detail":"1 event(s) on canary data ID \"patients/0/ssn\""}
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

// The live analyzer as an OpenTelemetry span processor: an exfiltration
// through one request raises one alert.
func ExampleNewProcessor() {
	cfg := anomaly.Config{WorkHours: "0-24"} // every hour is a working hour here
	p, err := anomaly.NewProcessor(cfg, anomaly.WithAlert(func(f anomaly.Finding) {
		fmt.Println("ALERT", f.Severity, f.Kind, f.UserID, f.Events)
	}))
	if err != nil {
		panic(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p)) // plus the exporter's processor
	defer tp.Shutdown(context.Background())
	in, err := telemetry.New("example.com/app", telemetry.WithTracerProvider(tp), telemetry.WithSinks())
	if err != nil {
		panic(err)
	}

	ctx, span := tp.Tracer("example.com/app").Start(context.Background(), "GET /export")
	for i := range 120 {
		in.LogDecryptionEvent(ctx, fmt.Sprintf("patients/%d/ssn", i), "u2077")
	}
	span.End()
	// Output:
	// ALERT low bulk_read u2077 100
}
