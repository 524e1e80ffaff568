// Package instrument is the recording code that keyward's own packages share
// and users do not call: the operation, KMS and cache metrics, and the batch
// that turns one GORM statement into one span with a count. It wraps a
// telemetry.Instrumentation, whose spans and events it keeps.
//
// A library creates one [Instrumentation] with [New] from the
// telemetry.Option values its user gave, and calls the Record methods per
// operation; they return at once for a disabled instrument and reuse cached
// attribute sets otherwise. A [Batch] in the context ([WithBatch]) collects
// the operations of one statement for one [Instrumentation.RecordBatch].
//
// Everything here is safe for concurrent use.
package instrument
