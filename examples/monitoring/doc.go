// Command monitoring shows keyward's usage monitoring end to end: a keyring
// instrumented with the OpenTelemetry SDK, the live anomaly analyzer
// attached as a span processor, simulated ordinary traffic from a few users,
// and then an exfiltration by one of them, which raises an alert at the
// threshold, escalates it as it grows, and ends in the final finding that
// the offline analysis of the exported spans reports too.
//
//	go run ./examples/monitoring                       # spans to monitoring-spans.jsonl (stdouttrace)
//	go run ./examples/monitoring -exporter otlp -otlp-endpoint localhost:4317 -otlp-insecure
//	go run ./examples/monitoring -exporter none
//
// The span file can be analyzed again offline: keyward analyze
// monitoring-spans.jsonl. With -exporter otlp the spans go to an
// OpenTelemetry Collector; a Collector whose file exporter writes OTLP/JSON
// (see the telemetry package documentation) gives a file keyward analyze
// reads as well.
package main
