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
// [AttrDataID], ...) and metric names are exported constants; a span's name
// is its action's [Action.SpanName] ("keyward.decrypt"). Spans, metrics and
// events never carry plaintext, key material or ciphertext; user and data IDs can be replaced by keyed pseudonyms
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
// # OpenTelemetry names
//
// Each instrumented package traces under its own import path as the scope
// name, e.g. github.com/keyward/keyward/keyring, with the module's version
// as the instrumentation version; keyward.operations is one instrument
// under the telemetry package's scope (ScopeName) for every package, which
// it names in keyward.component. keyward's packages take their providers
// through one option, WithTelemetry(telemetry.WithTracerProvider(tp),
// telemetry.WithMeterProvider(mp)), and otherwise use the global providers.
// The schema URL is the semantic conventions 1.40.0.
//
// Span names are keyward. followed by the action: keyward.encrypt,
// keyward.decrypt, keyward.access, keyward.rotate, keyward.rewrap,
// keyward.destroy. A batch (a GORM statement of 1000 rows x 3 fields) is one
// span with keyward.count, not a span per field. The same names are used for
// the span events that LogEncryptionEvent / LogDecryptionEvent add to the
// current span.
//
//	attribute            type      meaning
//	keyward.operation    string    the action
//	keyward.keyring      string    keyring name
//	keyward.key_id       int       data key ID (readers also accept its decimal string)
//	keyward.outcome      string    ok, denied or error
//	keyward.data_id      string    the protected value, e.g. patients/42/ssn
//	keyward.cache_hit    bool      data key served from the cache
//	keyward.component    string    the keyward package that recorded a metric value
//	keyward.kms.latency  float     seconds spent in KMS calls
//	keyward.count        int       values a span or event stands for (batches)
//	keyward.attempted    string    for access: the action decided on
//	user.id              string    the principal (semantic convention)
//	user.roles           string[]  the principal's role (semantic convention)
//	error.type           string    class of a failure, never its message (semantic convention)
//	client.address       string    request source (semantic convention)
//
//	metric                 instrument  unit      attributes
//	keyward.operations     counter     {value}   component, operation, keyring, key ID, outcome
//	keyward.kms.duration   histogram   s         outcome
//	keyward.cache.lookups  counter     {lookup}  keyring, cache_hit
//
// User and data IDs are span and event attributes, never metric attributes
// (their cardinality is unbounded). With telemetry.WithPseudonymizer, user and
// data IDs are replaced by keyed pseudonyms (HMAC-SHA256 under a 32-byte key,
// ps: + 32 hex digits, separate domains for users and data) in span
// attributes (made with Instrumentation.UserID / DataID), span events and
// events before they leave the process.
//
// What the keyring records: every Encrypt/Decrypt adds to keyward.operations
// and keyward.cache.lookups, and starts a keyward.encrypt / keyward.decrypt
// span only under a recording parent span (an untraced call costs no span);
// inside a GORM statement it only adds to the statement's count, so a
// statement is one span with a count. Every key-source unwrap is a keyward.kms.unwrap client span
// (continuing the caller's trace) with keyward.kms.latency and keyward.kek,
// recorded in keyward.kms.duration and keyward.cache.lookups (a miss). Failed
// operations, and with event sinks configured every operation, become events
// with the principal's user ID; Rotate, Rewrap, Disable, Enable and
// Destroy are spans and events. keyring.WithTelemetry(opts...) configures it.
// Access decisions reach telemetry through access/otelaccess: add
// otelaccess.NewSink() to the Auditor (and otelaccess.TraceID as its trace-ID
// function) and every decision becomes a keyward.access span event, an
// access count and an access event for the analyzer. A test plants a canary
// plaintext and scans every exported span, metric and event for it.
//
// examples/monitoring puts it together: an instrumented keyring, the live
// analyzer as a span processor, ordinary traffic and then an exfiltration burst
// that raises a bulk_read alert (go run ./examples/monitoring; `-exporter
// stdout|otlp|none`; the stdout span file can be re-analyzed with
// keyward analyze monitoring-spans.jsonl).
//
// # Usage events (JSON Lines)
//
// One event per line, UTF-8, newline-separated:
//
//	{"time":"2026-11-01T09:00:00Z","action":"decrypt","user_id":"u1042","role":"analyst","data_id":"patients/42/ssn","key_id":"3","success":true,"source":"10.1.2.3"}
//
//	field      required  meaning
//	time       yes       RFC 3339 (written in UTC, fractional seconds as needed)
//	action     yes       encrypt, decrypt, access, rotate, rewrap, destroy
//	user_id    yes       the principal (possibly pseudonymized)
//	data_id    yes       the protected value or the object of the action
//	success    yes       false for a denied access or a failed operation
//	role       no        the principal's role
//	key_id     no        data key ID, decimal string
//	source     no        request source address
//	resource   no        the table/column (or keyring) the data ID belongs to; derived from table/pk/column when absent
//	client     no        the service or client application the request came through
//	attempted  no        for access: the action decided on ("attempted":"decrypt")
//	count      no        values the event stands for when one statement handled many; omitted means 1
//
// An authorization decision is an access event (success false = denied); a
// failed operation (a token that does not authenticate, an unknown or destroyed
// key) is that operation's event with success false. Readers ignore unknown
// fields; a malformed line (bad JSON, missing required field, wrong type,
// unknown action, a line over 1 MiB) is reported with its line number and
// skipped, and the rest of the file is read.
//
// Go API: telemetry.Event, telemetry.ReadEvents / DecodeEvents (stream with
// a callback), telemetry.WriteEvents; Instrumentation.Record (span event and
// sinks) and Instrumentation.Emit (sinks only, for the values of a batch whose
// span carries the count); sinks telemetry.FileSink (JSON Lines,
// file mode 0600, size-based rotation to PATH.1 ... PATH.N, safe for
// concurrent use), telemetry.WriterSink, telemetry.SinkFunc.
//
// telemetry.LogEncryptionEvent(ctx, dataID, userID) and
// telemetry.LogDecryptionEvent(ctx, dataID, userID) add a span event to the
// span in ctx and hand the event to the sinks of the default
// Instrumentation, which a program sets once in main:
//
//	sink, err := telemetry.NewFileSink("keyward-events.jsonl", telemetry.WithMaxBytes(64<<20))
//	...
//	in, err := telemetry.New(telemetry.ScopeName, telemetry.WithSinks(sink))
//	...
//	telemetry.SetDefault(in)
//
// Every keyward library instrumentation made without its own sinks follows the
// default's sinks and pseudonymizer. This default is the package's one global
// (like log/slog's default logger and OpenTelemetry's global providers): the
// spec's two functions have no parameter to carry a sink. Sinks are not carried
// in the context because they are process configuration, not request data.
//
// OpenTelemetry JSON span exports (the stdouttrace exporter's output, compact or
// indented) convert to events with telemetry.ReadSpanExport /
// DecodeSpanExport; telemetry.DecodeAny reads either format. A span event
// named keyward.<action> is one event (missing attributes taken from its
// span); a span named keyward.<action> without such span events is one event
// standing for its keyward.count; spans with dropped span events (the SDK
// keeps 128 per span) add one event counting the dropped ones.
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
