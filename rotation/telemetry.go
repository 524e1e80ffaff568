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
