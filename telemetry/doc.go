// Package telemetry holds keyward's OpenTelemetry instrumentation names and
// helpers, the usage [Event] model with its one JSON Lines form, event sinks,
// and the spec's LogEncryptionEvent and LogDecryptionEvent.
//
// # Instrumentation
//
// A library (keyward's own, or an application's) creates one
// [Instrumentation] under its own import path and uses it for every
// operation:
//
//	in, err := telemetry.New("example.com/mylib",
//		telemetry.WithTracerProvider(tp), telemetry.WithMeterProvider(mp))
//	...
//	ctx, span := in.Start(ctx, telemetry.ActionDecrypt, telemetry.KeyID(id))
//	// one span per operation or per batch, never per field; per value:
//	in.Emit(ctx, telemetry.Event{Action: telemetry.ActionDecrypt, UserID: u, DataID: d, Success: true})
//	in.End(span, telemetry.OutcomeOK, n, nil)
//
// Without [WithTracerProvider] and [WithMeterProvider] the global providers
// are used. Every scope carries this module's version as its
// instrumentation version. keyward's own packages also record the metrics
// named here ([MetricOperations], one instrument under [ScopeName] with the
// recording package as [AttrComponent]; [MetricKMSDuration];
// [MetricCacheLookups]); the code that records them is internal. Every
// keyward package is configured with its WithTelemetry option, which takes
// the [Option] values of this package. Attribute keys ([AttrUserID],
// [AttrDataID], ...), metric names and span names ([SpanDecrypt], ...) are
// exported constants. Spans, metrics and events never carry plaintext, key material
// or ciphertext; user and data IDs can be replaced by keyed pseudonyms
// ([Pseudonymizer], [WithPseudonymizer]).
//
// # Events and sinks
//
// An [Event] is one use of keys or data; its doc lists the fields of its
// one JSON Lines form ([Event.MarshalJSON], [DecodeEvents], [WriteEvents]).
// The anomaly analyzer compares an identity with its role (the peer group),
// the resource its data IDs belong to ([Event.ResourceName]: "table/column"
// for the GORM data ID "table/pk/column"), and the source network and
// client it comes from; a producer that knows them fills Role, Resource,
// Source and Client (span attributes [AttrUserRoles], [AttrResource],
// [AttrSource], [AttrClient]).
//
// [DecodeSpanExport] turns the stdouttrace exporter's JSON spans into
// events; [DecodeAny] reads any of the three forms: JSON Lines events,
// stdouttrace exports, and OTLP/JSON as the OpenTelemetry Collector's file
// exporter writes it. Readers skip a malformed line (or object), report it
// as a [*LineError] with its line number, and go on.
//
// # Many instances: the OpenTelemetry Collector
//
// Each application instance sees only its own traffic. To analyze a fleet,
// let every instance export OTLP to a Collector whose file exporter writes
// OTLP/JSON, one request per line:
//
//	receivers:
//	  otlp:
//	    protocols:
//	      grpc:
//	        endpoint: 0.0.0.0:4317
//	exporters:
//	  file:
//	    path: /var/lib/otelcol/keyward-spans.jsonl
//	service:
//	  pipelines:
//	    traces:
//	      receivers: [otlp]
//	      exporters: [file]
//
// and analyze what it wrote:
//
//	keyward analyze /var/lib/otelcol/keyward-spans.jsonl
//
// Each span's resource service.name becomes the Client of its events (the
// SDK's "unknown_service" default excepted). Keep the file exporter's
// default JSON encoding (not proto) and no compression; with its rotation
// on, give keyward analyze every file, oldest first.
//
// A [Sink] receives events: [FileSink] (JSON Lines, size-based rotation),
// [WriterSink], [SinkFunc], and the anomaly analyzer
// (github.com/keyward/keyward/telemetry/anomaly).
//
// # The one global
//
// The spec's LogEncryptionEvent(ctx, dataID, userID) has no parameter for
// sinks, so this package keeps one global, the default Instrumentation
// ([SetDefault], [Default]), in the way log/slog keeps its default logger
// and OpenTelemetry its global providers. A program sets it once in main;
// every Instrumentation made without [WithSinks] or [WithPseudonymizer]
// follows its sinks and pseudonymizer, so events from all keyward libraries
// reach the same places with the same pseudonymization. Sinks are not
// carried in the context: they are process configuration, not request
// data, a forgotten context value would drop events silently, and a context
// lookup per event costs a walk up the context chain. Code that needs its
// own sinks (a test, a tenant) creates its own Instrumentation.
//
// # Concurrency
//
// Instrumentation, Pseudonymizer and the sinks are safe for concurrent use.
// Sinks run synchronously on the caller's goroutine.
//
// # Errors
//
// Errors wrap [ErrMalformedEvent], [ErrUnknownAction], [ErrMalformedSpan],
// [ErrLineTooLong], [ErrKeySize], [ErrClosed] or [ErrInvalidOption]; test
// them with errors.Is. Messages never echo secrets.
package telemetry
