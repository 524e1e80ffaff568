package rotation

import "go.opentelemetry.io/otel/attribute"

// ScopeName is the instrumentation scope (tracer and meter name) of this
// package.
const ScopeName = "github.com/keyward/keyward/rotation"

// SpanReencrypt is the span of one Reencrypt or RotateKey run. It carries
// the keyring name and primary key ID (for Reencrypt), the counts below,
// keyward.count (values rewritten) and keyward.outcome. The keyring's
// encryptions and decryptions of a batch are recorded in keyward.operations
// once per batch, not as a span per value.
const SpanReencrypt = "keyward.reencrypt"

// Attribute keys of SpanReencrypt: the Stats of the run.
const (
	AttrScanned   attribute.Key = "keyward.rotation.scanned"
	AttrRewritten attribute.Key = "keyward.rotation.rewritten"
	AttrCurrent   attribute.Key = "keyward.rotation.current"
	AttrSkipped   attribute.Key = "keyward.rotation.skipped"
	AttrFailed    attribute.Key = "keyward.rotation.failed"
	AttrResumed   attribute.Key = "keyward.rotation.resumed"
)

// SpanBatch is the span of one batch of a run, a child of SpanReencrypt:
// the values it read (AttrValues) and what became of them.
const SpanBatch = "keyward.reencrypt.batch"

// SpanCheck is the span of one Scheduler check: whether the primary data
// key was due (AttrDue, AttrReason) and whether this instance rotated it
// (AttrRotated, keyward.key_id of the new primary).
const SpanCheck = "keyward.rotation.check"

// More attribute keys of this package's spans.
const (
	AttrValues  attribute.Key = "keyward.rotation.values"
	AttrDue     attribute.Key = "keyward.rotation.due"
	AttrReason  attribute.Key = "keyward.rotation.reason"
	AttrRotated attribute.Key = "keyward.rotation.rotated"
)

// Metrics of ReencryptJob, recorded after every batch:
//
//   - MetricValues counts the values a batch went through, with
//     keyward.outcome "rewritten", "current", "skipped" or "failed" and
//     keyward.keyring;
//   - MetricLeft is the job's estimate of the rows left, when the Job
//     can tell (it has a Left method, as gormcrypt's does);
//   - MetricLag is how long ago the primary data key the job re-encrypts
//     to was made: how far behind the rotation the stored data is while
//     the job runs.
const (
	MetricValues = "keyward.rotation.values"
	MetricLeft   = "keyward.rotation.rows_left"
	MetricLag    = "keyward.rotation.lag"
)

// Outcomes of MetricValues.
const (
	OutcomeRewritten = "rewritten"
	OutcomeCurrent   = "current"
	OutcomeSkipped   = "skipped"
	OutcomeFailed    = "failed"
)
