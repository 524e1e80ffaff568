package gormcrypt

import (
	"context"
	"reflect"
	"strconv"
	"time"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/cipher"
	"github.com/keyward/keyward/internal/instrument"
	"github.com/keyward/keyward/telemetry"
	"go.opentelemetry.io/otel/trace"
	"gorm.io/gorm"
)

// ScopeName is the instrumentation scope (tracer and meter name) of
// gormcrypt.
const ScopeName = "github.com/keyward/keyward/adapters/gormcrypt"

// SpanStatement is the prefix of the span of one GORM statement that
// encrypted or decrypted values: "keyward.gorm.create", ".query", ".update"
// or ".delete".
const SpanStatement = "keyward.gorm."

// WithTelemetry passes telemetry options (tracer and meter providers, event
// sinks, a pseudonymizer) to gormcrypt's instrumentation; it may be given
// more than once, and an option given twice in all fails Register. Without
// it gormcrypt follows telemetry.Default() and the global providers.
func WithTelemetry(opts ...telemetry.Option) Option {
	return optionFunc(func(c *config) error {
		c.tel = append(c.tel, opts...)
		return nil
	})
}

// What gormcrypt records. Each statement carries a instrument.Batch, so the
// keyring counts its encryptions and decryptions there instead of starting a
// span and recording a metric per value. When the statement ends and it
// handled values:
//
//   - the counts go to keyward.operations (one record per action, key and
//     outcome);
//   - under a recording parent span, one span SpanStatement+kind covers the
//     statement, with the keyring, the number of values and the outcome;
//   - with event sinks configured (the analyzer, a JSON Lines file), every
//     value becomes a usage event naming it as "table/primary key/column"
//     (the analyzer counts distinct data IDs for bulk reads), the key ID,
//     and the principal of the statement's context, with one timestamp per
//     statement; failed values become one event per action with Count set,
//     naming the table, also recorded as a span event.
//
// None of it carries plaintext, ciphertext or key material.

// startTelemetry puts a batch into the statement's context. Row and Raw
// statements get none: their values are decrypted after the statement's
// callbacks (Scan, ScanRows), so the keyring records them one by one.
func (st *state) startTelemetry(ctx context.Context) context.Context {
	if st.kind == "row" || st.kind == "raw" {
		return ctx
	}
	st.batch = &instrument.Batch{}
	if trace.SpanFromContext(ctx).IsRecording() {
		st.start = time.Now()
	}
	return instrument.WithBatch(ctx, st.batch)
}

// endTelemetry records the statement's batch.
func (st *state) endTelemetry(db *gorm.DB) {
	b := st.batch
	if b == nil {
		return
	}
	st.batch = nil
	total := b.Total()
	if total == 0 {
		return
	}
	tel := st.c.tel
	ctx := db.Statement.Context
	tel.RecordBatch(ctx, b)
	failed := b.Count(telemetry.ActionEncrypt, telemetry.OutcomeError) + b.Count(telemetry.ActionDecrypt, telemetry.OutcomeError)
	if !st.start.IsZero() {
		_, span := tel.Tracer().Start(ctx, SpanStatement+st.kind, trace.WithTimestamp(st.start),
			trace.WithAttributes(telemetry.AttrKeyring.String(st.c.kr.Name())))
		outcome := telemetry.OutcomeOK
		var err error
		if failed > 0 {
			outcome, err = telemetry.OutcomeError, db.Error
		}
		if p, ok := access.PrincipalFrom(ctx); ok && span.IsRecording() {
			span.SetAttributes(tel.UserID(p.UserID))
		}
		tel.End(span, outcome, int(total), err)
	}
	if failed == 0 && !tel.HasSinks() {
		return
	}
	var user, role string
	if p, ok := access.PrincipalFrom(ctx); ok {
		user = p.UserID
		if len(p.Roles) > 0 {
			role = p.Roles[0]
		}
	}
	table := db.Statement.Table
	if db.Statement.Schema != nil {
		table = db.Statement.Schema.Table
	}
	now := time.Now()
	for _, a := range []telemetry.Action{telemetry.ActionEncrypt, telemetry.ActionDecrypt} {
		// Successful values were events of their own (valueEvent).
		if n := b.Count(a, telemetry.OutcomeError); n > 0 {
			tel.Record(ctx, telemetry.Event{
				Time: now, Action: a, UserID: user, Role: role, DataID: table, Count: int(n),
			})
		}
	}
}

// valueEvent hands the usage event of one value to the event sinks, if
// there are any. The statement's principal and timestamp are taken once.
func (st *state) valueEvent(ctx context.Context, action telemetry.Action, fi *fieldInfo, dst reflect.Value, tok string) {
	tel := st.c.tel
	if tel == nil || !tel.HasSinks() {
		return
	}
	st.mu.Lock()
	if st.evTime.IsZero() {
		st.evTime = time.Now()
		if p, ok := access.PrincipalFrom(ctx); ok {
			st.evUser = p.UserID
			if len(p.Roles) > 0 {
				st.evRole = p.Roles[0]
			}
		}
	}
	e := telemetry.Event{Time: st.evTime, Action: action, UserID: st.evUser, Role: st.evRole,
		DataID: fi.dataID(ctx, dst, &st.pks), Success: true}
	if id, ok := cipher.PeekKeyID(tok); ok {
		if id != st.evKeyID || st.evKeyText == "" {
			st.evKeyID, st.evKeyText = id, strconv.FormatUint(uint64(id), 10)
		}
		e.KeyID = st.evKeyText
	}
	st.mu.Unlock()
	tel.Emit(ctx, e)
}
