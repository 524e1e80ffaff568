// Package anomaly is keyward's bundled anomaly analyzer: it reads usage
// events ([telemetry.Event]) and reports incidents ([Finding]) of seven
// kinds: volume_spike, bulk_read, access_denied_burst, decrypt_failure_burst,
// off_hours, canary_access and retired_key_use (see [Kind]).
//
// Offline, [Detect] analyzes a slice of events (as read from JSON Lines
// files or OpenTelemetry span exports with the telemetry package's
// readers):
//
//	cfg, err := anomaly.LoadConfig(f) // or anomaly.Config{} for the defaults
//	findings := anomaly.Detect(events, cfg)
//	anomaly.WriteTable(os.Stdout, findings)
//
// Live, a [Processor] is an OpenTelemetry SDK span processor that converts
// ended spans to the same events and feeds the same detectors, calling an
// alert function once per incident; its [Analyzer] can also be given to a
// telemetry.Instrumentation as an event sink, which sees every event
// rather than the spans' (the SDK keeps at most 128 events per span).
//
// # How it decides
//
// Everything is per user and incremental ([Analyzer]): the analyzer keeps
// sliding windows, a baseline of recent days and an hour-of-day profile per
// user, so memory is bounded by users x window, not by events. Baselines are
// robust: the volume baseline is the median (with the MAD as spread) of the
// user's daily peaks, the busiest volume window of each active day.
// Newcomers get conservative defaults: no volume_spike before a few days of
// history, the fallback working hours for off_hours, a bulk-read threshold
// scaled from a default rate. Triggers of one kind by one user closer than
// the incident gap make one incident and one finding. Every threshold is a
// [Config] field with a documented default; the zero Config means the
// defaults.
//
// # Concurrency
//
// Analyzer and Processor are safe for concurrent use. Alert and report
// functions are called on the goroutine that observed the event, without
// the analyzer's lock held.
//
// # Errors
//
// Configuration problems wrap [ErrInvalidConfig], option problems
// [ErrInvalidOption]; test with errors.Is.
package anomaly
