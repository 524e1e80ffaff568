package telemetry

import (
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
)

// ScopeName is the instrumentation scope (tracer and meter name) of this
// package. Other keyward packages name their own scope after their own import
// path and pass it to [New].
const ScopeName = "github.com/keyward/keyward/telemetry"

// SchemaURL is the OpenTelemetry semantic-conventions schema that the
// attribute keys below follow where a convention exists.
const SchemaURL = semconv.SchemaURL

// Attribute keys that keyward puts on spans, span events and metrics. Where
// the OpenTelemetry semantic conventions define a key (user ID, roles, error
// type, client address) that key is used; everything else is keyward.*.
//
// None of them ever carries plaintext, key material or ciphertext.
const (
	// AttrOperation is the keyward operation, one of the [Action] values.
	AttrOperation attribute.Key = "keyward.operation"
	// AttrKeyring is the name of the keyring used.
	AttrKeyring attribute.Key = "keyward.keyring"
	// AttrKeyID is the 32-bit ID of the data key used (an int64 attribute;
	// readers also accept its decimal string form).
	AttrKeyID attribute.Key = "keyward.key_id"
	// AttrOutcome is the [Outcome] of an operation: ok, denied or error.
	AttrOutcome attribute.Key = "keyward.outcome"
	// AttrDataID names the protected value, for GORM "table/pk/column".
	AttrDataID attribute.Key = "keyward.data_id"
	// AttrCacheHit tells whether the unwrapped data key came from the cache.
	AttrCacheHit attribute.Key = "keyward.cache_hit"
	// AttrKMSLatency is the time spent in KMS calls, in seconds (float64).
	AttrKMSLatency attribute.Key = "keyward.kms.latency"
	// AttrCount is the number of values one span or event stands for, when
	// one statement handled many (a GORM Find of 1000 rows x 3 fields is one
	// span with count 3000).
	AttrCount attribute.Key = "keyward.count"
	// AttrAttempted is the action an access decision was about.
	AttrAttempted attribute.Key = "keyward.attempted"
	// AttrResource is the resource a data ID belongs to (a table/column or
	// a keyring), when it is not the data ID's first and last part; see
	// [Event.Resource].
	AttrResource attribute.Key = "keyward.resource"
	// AttrComponent is the keyward package that recorded a metric value
	// (its import path), on [MetricOperations]: every package counts its
	// operations in that one instrument, under this package's scope.
	AttrComponent attribute.Key = "keyward.component"
	// AttrClient is the service or client application a request came
	// through; without it, readers take the span resource's service.name.
	AttrClient attribute.Key = "keyward.client"

	// AttrUserID is the semantic-convention user ID key.
	AttrUserID = semconv.UserIDKey
	// AttrUserRoles is the semantic-convention roles key (a string slice);
	// keyward writes the principal's role as its one element.
	AttrUserRoles = semconv.UserRolesKey
	// AttrErrorType is the semantic-convention error type key, set on
	// failed operations to a low-cardinality class, never a message.
	AttrErrorType = semconv.ErrorTypeKey
	// AttrSource is the semantic-convention client address key, the
	// network source of a request.
	AttrSource = semconv.ClientAddressKey
)

// Metric instrument names.
const (
	// MetricOperations counts values processed, by component, operation,
	// keyring, key ID and outcome (unit "{value}"). It is one instrument
	// under the scope [ScopeName], whichever package records. User and data
	// IDs are never metric attributes: their cardinality is unbounded; they
	// go on spans and events.
	MetricOperations = "keyward.operations"
	// MetricKMSDuration is the duration of KMS calls in seconds, by outcome.
	MetricKMSDuration = "keyward.kms.duration"
	// MetricCacheLookups counts data-key lookups by keyring and
	// [AttrCacheHit]: true when served from the cache, false when the key
	// had to be unwrapped.
	MetricCacheLookups = "keyward.cache.lookups"
)

// Span and span-event names ([Action.SpanName]): "keyward." followed by the
// action. The same name is used for the span of an operation and for the
// span event that [LogDecryptionEvent] adds to the current span.
const (
	spanEncrypt = "keyward.encrypt"
	spanDecrypt = "keyward.decrypt"
	spanAccess  = "keyward.access"
	spanRotate  = "keyward.rotate"
	spanRewrap  = "keyward.rewrap"
	spanDestroy = "keyward.destroy"
)

// Outcome is the result class of an operation, the value of [AttrOutcome].
type Outcome string

// Outcomes.
const (
	// OutcomeOK is a successful operation.
	OutcomeOK Outcome = "ok"
	// OutcomeDenied is an operation refused by the access policy.
	OutcomeDenied Outcome = "denied"
	// OutcomeError is a failed operation: a token that does not
	// authenticate, an unknown or destroyed key, a KMS failure.
	OutcomeError Outcome = "error"
)
