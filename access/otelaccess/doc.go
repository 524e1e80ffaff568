// Package otelaccess connects access control to OpenTelemetry and the
// anomaly analyzer. The access package itself imports nothing of keyward's
// (it is a leaf of the package layers, see the README's Architecture
// section); this package sits above it and the telemetry package.
//
// NewSink returns an access.Sink to add to an Auditor next to the audit log:
// every decision becomes a "keyward.access" span event on the operation's
// span (when it is recording), a keyward.operations count with operation
// "access" and outcome "ok" or "denied", and an access usage event
// (success false = denied, attempted = the action) for the event sinks and
// the analyzer. TraceID reads the OpenTelemetry trace ID for
// access.WithTraceIDFunc, so audit records name their trace.
//
//	sink, err := otelaccess.NewSink()
//	auditor, err := access.NewAuditor(access.WithSink(auditLog), access.WithSink(sink),
//		access.WithTraceIDFunc(otelaccess.TraceID))
//
// Records carry user IDs, roles, actions and resources; never key material
// or plaintext. User IDs are pseudonymized when the telemetry is configured
// to. A Sink is safe for concurrent use and never fails the audited
// operation: telemetry is best effort, the audit log is the record.
package otelaccess
