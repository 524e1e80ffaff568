package keyring

import (
	"context"
	"errors"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/cipher"
	"github.com/keyward/keyward/internal/instrument"
	"github.com/keyward/keyward/telemetry"
)

// scope is the keyring's instrumentation scope: its import path.
const scope = "github.com/keyward/keyward/keyring"

// AttrKEK names the key-encryption key of a KMS call (its KeySource ID).
const AttrKEK attribute.Key = "keyward.kek"

// AttrForced marks a Destroy that skipped its safety checks (Force).
const AttrForced attribute.Key = "keyward.forced"

// AttrLostValues is how many stored values a forced Destroy made
// unreadable, when the UsageChecker counts them (ValueCounter).
const AttrLostValues attribute.Key = "keyward.lost_values"

// SpanUnwrap is the span of one key-source call that unwraps a data key.
const SpanUnwrap = "keyward.kms.unwrap"

// WithTelemetry passes telemetry options (tracer and meter providers, event
// sinks, a pseudonymizer, an error classifier) to the keyring's
// instrumentation; it may be given more than once, and an option given
// twice in all fails New. Without it the keyring follows
// telemetry.Default() and the global providers.
func WithTelemetry(opts ...telemetry.Option) Option {
	return optionFunc(func(c *config) error {
		c.tel = append(c.tel, opts...)
		return nil
	})
}

// What the keyring records (the telemetry package documentation has the names):
//
//   - Encrypt and Decrypt (binary, text, string) add one value to the
//     keyward.operations counter with operation, keyring, key ID and outcome,
//     and count cache hits in keyward.cache.lookups. They start a span
//     (keyward.encrypt, keyward.decrypt) only under a recording parent span,
//     so an untraced call costs no span. Inside a statement that carries a
//     batch (the GORM layer) they only add to the batch: one span per statement.
//   - Every key-source unwrap is a keyward.kms.unwrap span with the KMS
//     latency, recorded in keyward.kms.duration and counted in
//     keyward.cache.lookups as a miss (callers that share an unwrap count
//     one miss).
//   - Failed decryptions, and with event sinks configured every operation,
//     become usage events (user from the access principal, key ID).
//   - Rotate, Rewrap, Disable, Enable and Destroy are spans and events.
//
// Spans and events never carry plaintext, key material, ciphertext or
// associated data.

// The fast path: an Encrypt or Decrypt whose key is cached and fresh, with
// no authorizer, records one metric value (or one count in the statement's
// batch) and nothing else. Outside a batch a recording span sends it to the
// full path, which starts a child span; inside a batch the full path would
// not start one either. Anything else (a miss, a failure, an authorization)
// takes the full path, which repeats the checks; a failed fast open falls
// back to it too, so failures are recorded there once.

// fastPrimary returns the primary data key's AEAD, and the batch in ctx if
// any, when the fast path applies, counting the encryption.
func (k *Keyring) fastPrimary(ctx context.Context) (*cipher.AEAD, *instrument.Batch) {
	b, ok := k.fastOK(ctx)
	if !ok || k.stale.Load() {
		return nil, nil
	}
	sl := k.snap.Load().primaryData
	if sl == nil {
		return nil, nil
	}
	l := sl.e.cur.Load()
	if l == nil || l.stage.Load() != stageFresh {
		return nil, nil
	}
	k.counted(sl.e.encryptions.Add(1))
	return l.aead, b
}

// fastFor returns the AEAD of the key a token names, and the batch in ctx if
// any, when the fast path applies. The token's algorithm is not checked
// here: opening compares the token's whole header with the key's.
func (k *Keyring) fastFor(ctx context.Context, keyID uint32) (*cipher.AEAD, *instrument.Batch) {
	b, ok := k.fastOK(ctx)
	if !ok {
		return nil, nil
	}
	sl, found := k.snap.Load().lookup(keyID)
	if !found || !sl.usable || !sl.data {
		return nil, nil
	}
	l := sl.e.cur.Load()
	if l == nil || l.stage.Load() != stageFresh {
		return nil, nil
	}
	return l.aead, b
}

// fastOK reports whether the fast path applies, with the statement batch in
// ctx (nil outside one).
func (k *Keyring) fastOK(ctx context.Context) (*instrument.Batch, bool) {
	if k.cfg.authz != nil || k.closed.Load() || k.reloadDue.Load() {
		return nil, false
	}
	if b := instrument.BatchFrom(ctx); b != nil {
		return b, true
	}
	return nil, !trace.SpanFromContext(ctx).IsRecording()
}

// fastDone records a successful fast-path operation: in the batch if there
// is one (as end does), else as a metric value and, for sinks, an event.
func (k *Keyring) fastDone(ctx context.Context, b *instrument.Batch, action telemetry.Action, keyID uint32) {
	if b != nil {
		b.Add(action, k.name, keyID, telemetry.OutcomeOK, 1)
		return
	}
	if k.tel.MetricsEnabled(ctx) {
		k.tel.RecordOpCache(ctx, action, k.name, keyID, telemetry.OutcomeOK, true)
	}
	if k.tel.HasSinks() {
		k.event(ctx, action, keyID, true)
	}
}

// op is one instrumented operation under way.
type op struct {
	action telemetry.Action
	span   trace.Span // nil when no span was started
	batch  *instrument.Batch
	hit    bool // the data key came from the cache
}

// begin starts the telemetry of one encrypt or decrypt.
func (k *Keyring) begin(ctx context.Context, action telemetry.Action) (context.Context, op) {
	o := op{action: action, hit: true}
	if o.batch = instrument.BatchFrom(ctx); o.batch != nil {
		return ctx, o
	}
	if trace.SpanFromContext(ctx).IsRecording() {
		ctx, o.span = k.tel.Start(ctx, action, telemetry.AttrKeyring.String(k.name))
	}
	return ctx, o
}

// end records the outcome of o under key keyID (0 = none known).
func (k *Keyring) end(ctx context.Context, o op, keyID uint32, err error) {
	outcome := outcomeOf(err)
	if o.batch != nil {
		o.batch.Add(o.action, k.name, keyID, outcome, 1)
		return
	}
	// Misses are counted per unwrap (unwrapSpan).
	k.tel.RecordOpCache(ctx, o.action, k.name, keyID, outcome, err == nil && o.hit)
	if o.span != nil {
		attrs := []attribute.KeyValue{telemetry.AttrCacheHit.Bool(o.hit)}
		if keyID != 0 {
			attrs = append(attrs, telemetry.KeyID(keyID))
		}
		if p, ok := access.PrincipalFrom(ctx); ok {
			attrs = append(attrs, k.tel.UserID(p.UserID))
		}
		o.span.SetAttributes(attrs...)
		k.tel.End(o.span, outcome, 1, err)
	}
	// Failures feed the analyzer (decrypt failure bursts, retired keys);
	// successes only when someone reads events. Refusals are the access
	// layer's events.
	if outcome == telemetry.OutcomeError || (outcome == telemetry.OutcomeOK && k.tel.HasSinks()) {
		k.event(ctx, o.action, keyID, err == nil)
	}
}

// event records a usage event of the principal in ctx.
func (k *Keyring) event(ctx context.Context, action telemetry.Action, keyID uint32, success bool) {
	k.eventCount(ctx, action, keyID, success, 0)
}

// eventCount is event with a count of values (0: none given).
func (k *Keyring) eventCount(ctx context.Context, action telemetry.Action, keyID uint32, success bool, count int) {
	e := telemetry.Event{Action: action, Success: success, Count: count}
	if p, ok := access.PrincipalFrom(ctx); ok {
		e.UserID = p.UserID
		if len(p.Roles) > 0 {
			e.Role = p.Roles[0]
		}
	}
	if keyID != 0 {
		e.KeyID = strconv.FormatUint(uint64(keyID), 10)
	}
	k.tel.Record(ctx, e)
}

func outcomeOf(err error) telemetry.Outcome {
	switch {
	case err == nil:
		return telemetry.OutcomeOK
	case errors.Is(err, access.ErrAccessDenied):
		return telemetry.OutcomeDenied
	}
	return telemetry.OutcomeError
}

// manageSpan starts the span of a key-management operation.
func (k *Keyring) manageSpan(ctx context.Context, action telemetry.Action) (context.Context, trace.Span) {
	return k.tel.Start(ctx, action, telemetry.AttrKeyring.String(k.name))
}

// endManage ends a key-management span and records its event.
func (k *Keyring) endManage(ctx context.Context, span trace.Span, action telemetry.Action, keyID uint32, err error) {
	k.endManageCount(ctx, span, action, keyID, 0, err)
}

// endManageCount is endManage with the count of values the operation
// concerned (a forced destroy's lost values), for its event.
func (k *Keyring) endManageCount(ctx context.Context, span trace.Span, action telemetry.Action, keyID uint32, count int, err error) {
	if keyID != 0 && span.IsRecording() {
		span.SetAttributes(telemetry.KeyID(keyID))
	}
	k.tel.End(span, outcomeOf(err), 1, err)
	if action.Valid() && !errors.Is(err, access.ErrAccessDenied) {
		k.eventCount(ctx, action, keyID, err == nil, count)
	}
}

// unwrapSpan instruments one key-source unwrap. It returns the function
// that ends the span, for the caller to run once the result is in effect
// (cached, or the failure recorded): a span processor that sees the span
// end can rely on the keyring having acted on it.
func (k *Keyring) unwrapSpan(ctx context.Context, key Key, src KeySource, unwrap func(context.Context) ([]byte, error)) ([]byte, func(), error) {
	ctx, span := k.tel.Tracer().Start(ctx, SpanUnwrap, trace.WithSpanKind(trace.SpanKindClient))
	start := time.Now()
	raw, err := unwrap(ctx)
	d := time.Since(start)
	outcome := outcomeOf(err)
	k.tel.RecordKMS(ctx, d, outcome)
	k.tel.RecordCache(ctx, k.name, false)
	if span.IsRecording() {
		span.SetAttributes(telemetry.AttrKeyring.String(k.name), telemetry.KeyID(key.ID),
			AttrKEK.String(src.ID()), instrument.KMSLatency(d))
	}
	return raw, func() { k.tel.End(span, outcome, 1, err) }, err
}
