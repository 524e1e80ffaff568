// Command monitoring shows keyward's usage monitoring end to end: a keyring
// instrumented with the OpenTelemetry SDK, the live anomaly analyzer
// attached as a span processor, simulated ordinary traffic from a few users,
// and then an exfiltration burst by one of them, which raises an alert.
//
//	go run ./examples/monitoring                       # spans to monitoring-spans.jsonl (stdouttrace)
//	go run ./examples/monitoring -exporter otlp -otlp-endpoint localhost:4317 -otlp-insecure
//	go run ./examples/monitoring -exporter none
//
// The span file can be analyzed again offline: keyward analyze
// monitoring-spans.jsonl.
package main
