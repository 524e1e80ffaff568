package instrument

import (
	"context"
	"sync"

	"github.com/keyward/keyward/telemetry"
)

// Batch collects the operations of one statement that handles many values
// (a GORM Find of 1000 rows x 3 encrypted fields), so that they become one
// span with a count and one metric record per (action, key, outcome), not a
// span and a metric call per value.
//
// The statement's owner (the GORM layer) puts a Batch in the context with
// [WithBatch]; libraries below it (the keyring) see it with [BatchFrom] and
// [Batch.Add] to it instead of starting spans; the owner then calls
// [Instrumentation.RecordBatch] once. A Batch is safe for concurrent use.
type Batch struct {
	mu     sync.Mutex
	counts map[batchKey]*int64
	total  int64
	// The key of the last Add and its counter: a statement's values mostly
	// share one action, key and outcome, so Add skips the map lookup.
	last  batchKey
	lastN *int64
}

type batchKey struct {
	action  telemetry.Action
	keyring string
	keyID   uint32
	outcome telemetry.Outcome
}

type batchCtxKey struct{}

// WithBatch returns a context carrying b.
func WithBatch(ctx context.Context, b *Batch) context.Context {
	return context.WithValue(ctx, batchCtxKey{}, b)
}

// BatchFrom returns the Batch in ctx, or nil.
func BatchFrom(ctx context.Context) *Batch {
	b, _ := ctx.Value(batchCtxKey{}).(*Batch)
	return b
}

// Add counts n values of one action under one key with one outcome.
func (b *Batch) Add(action telemetry.Action, keyring string, keyID uint32, outcome telemetry.Outcome, n int64) {
	k := batchKey{action, keyring, keyID, outcome}
	b.mu.Lock()
	if b.lastN == nil || b.last != k {
		if b.counts == nil {
			b.counts = make(map[batchKey]*int64, 4)
		}
		c := b.counts[k]
		if c == nil {
			c = new(int64)
			b.counts[k] = c
		}
		b.last, b.lastN = k, c
	}
	*b.lastN += n
	b.total += n
	b.mu.Unlock()
}

// Total returns how many values were added.
func (b *Batch) Total() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total
}

// Count returns how many values of action had outcome.
func (b *Batch) Count(action telemetry.Action, outcome telemetry.Outcome) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	var n int64
	for k, c := range b.counts {
		if k.action == action && k.outcome == outcome {
			n += *c
		}
	}
	return n
}

// RecordBatch records the counts of b in telemetry.MetricOperations, one Add per
// (action, keyring, key ID, outcome).
func (in *Instrumentation) RecordBatch(ctx context.Context, b *Batch) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, n := range b.counts {
		in.RecordOp(ctx, k.action, k.keyring, k.keyID, k.outcome, *n)
	}
}
