package rotation

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/keyward/keyward/internal/instrument"
	"github.com/keyward/keyward/telemetry"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// recoder re-encrypts one value: Reencrypt's keyring, RotateKey's raw keys.
type recoder interface {
	// run identifies the destination key, for Progress.Run.
	run() string
	// recode returns the value's new token, or current when the value is
	// already under the destination key.
	recode(ctx context.Context, v Value) (token []byte, current bool, legacy bool, err error)
	// signer returns what authenticates the run's checkpoints.
	signer(ctx context.Context) (signer, error)
	// destination returns the key ID values end up under, when tokens
	// tell it (false for raw keys, whose tokens all have key ID 0).
	destination() (uint32, bool)
}

// counters are a batch's stats, shared by its workers.
type counters struct {
	scanned, rewritten, legacy, current, skipped, failed atomic.Int64

	mu       sync.Mutex
	failures []*ValueError
}

func (c *counters) addTo(st *Stats) {
	st.Scanned += c.scanned.Load()
	st.Rewritten += c.rewritten.Load()
	st.Legacy += c.legacy.Load()
	st.Current += c.current.Load()
	st.Skipped += c.skipped.Load()
	st.Failed += c.failed.Load()
	c.mu.Lock()
	for _, f := range c.failures {
		if len(st.Failures) < MaxFailures {
			st.Failures = append(st.Failures, f)
		}
	}
	c.mu.Unlock()
}

// execute runs rc over every value of target.
func execute(ctx context.Context, target Target, rc recoder, cfg config, attrs ...attribute.KeyValue) (st Stats, err error) {
	if target == nil {
		return st, errors.New("rotation: nil target")
	}
	in, err := instrument.New(ScopeName, cfg.tel...)
	if err != nil {
		return st, fmt.Errorf("rotation: telemetry: %w", err)
	}
	ctx, span := in.Tracer().Start(ctx, SpanReencrypt, trace.WithAttributes(attrs...))
	defer func() {
		if span.IsRecording() {
			span.SetAttributes(
				AttrScanned.Int64(st.Scanned), AttrRewritten.Int64(st.Rewritten),
				AttrCurrent.Int64(st.Current), AttrSkipped.Int64(st.Skipped),
				AttrFailed.Int64(st.Failed), AttrResumed.Bool(st.Resumed),
			)
		}
		outcome := telemetry.OutcomeOK
		if err != nil {
			outcome = telemetry.OutcomeError
		}
		in.End(span, outcome, int(st.Rewritten), err)
	}()

	run := rc.run()
	name := ""
	if nt, ok := target.(NamedTarget); ok {
		name = nt.TargetName()
	}
	cursor := ""
	var sig signer
	if cfg.cp != nil {
		if sig, err = rc.signer(ctx); err != nil {
			return st, err
		}
		defer sig.close()
		p, ok, err := cfg.cp.Load(ctx)
		if err != nil {
			return st, fmt.Errorf("rotation: load checkpoint: %w", err)
		}
		if ok {
			// A checkpoint that does not authenticate, or belongs to
			// another run, stops the run: resuming from it would skip the
			// rows before its cursor, and starting over silently would hide
			// what happened to it.
			if err := sig.verify(ctx, p, name); err != nil {
				return st, fmt.Errorf("rotation: load checkpoint: %w", err)
			}
			if p.Run != run {
				return st, fmt.Errorf("rotation: load checkpoint: %w: run %q, and this run is %q (the primary key changed since it was saved); remove it to start over",
					ErrCheckpointStale, p.Run, run)
			}
			cursor, st.Resumed = p.Cursor, true
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return st, stopped(err)
		}
		if cfg.stop != nil {
			select {
			case <-cfg.stop:
				return st, ErrStopped
			default:
			}
		}
		vals, next, err := target.Scan(ctx, cursor, cfg.batch)
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return st, stopped(cerr)
			}
			return st, fmt.Errorf("%w: scan: %w", ErrTarget, err)
		}
		if len(vals) == 0 {
			break
		}
		if next == "" || next == cursor {
			return st, fmt.Errorf("%w: scan returned values but its cursor did not advance", ErrTarget)
		}
		b := new(instrument.Batch)
		var c counters
		bctx, bspan := in.Tracer().Start(ctx, SpanBatch, trace.WithAttributes(AttrValues.Int(len(vals))))
		err = runBatch(instrument.WithBatch(bctx, b), target, rc, cfg, vals, &c)
		in.RecordBatch(ctx, b)
		if bspan.IsRecording() {
			bspan.SetAttributes(AttrRewritten.Int64(c.rewritten.Load()), AttrCurrent.Int64(c.current.Load()),
				AttrSkipped.Int64(c.skipped.Load()), AttrFailed.Int64(c.failed.Load()))
		}
		outcome := telemetry.OutcomeOK
		if err != nil {
			outcome = telemetry.OutcomeError
		}
		in.End(bspan, outcome, int(c.rewritten.Load()), err)
		c.addTo(&st)
		if err != nil {
			return st, err
		}
		cursor = next
		if cfg.cp != nil {
			// The batch is done: keep that even if ctx ended meanwhile.
			p := Progress{Run: run, Cursor: cursor}
			p.MAC = sig.sign(p, name)
			if err := cfg.cp.Save(context.WithoutCancel(ctx), p); err != nil {
				return st, fmt.Errorf("rotation: save checkpoint: %w", err)
			}
		}
		st.Batches++
		if cfg.progress != nil {
			cp := st
			cp.Failures = append([]*ValueError(nil), st.Failures...)
			cfg.progress(cp)
		}
	}
	if cfg.cp != nil {
		if err := cfg.cp.Clear(context.WithoutCancel(ctx)); err != nil {
			return st, fmt.Errorf("rotation: clear checkpoint: %w", err)
		}
	}
	if st.Failed > 0 {
		return st, fmt.Errorf("%w: %d of %d values failed, the first: %w", ErrIncomplete, st.Failed, st.Scanned, st.Failures[0])
	}
	return st, checkEnd(ctx, target, rc, &st)
}

// checkEnd checks, with a KeyCounter target, that no value is left under
// another key than the destination once the run has gone through every
// value: the end state is checked, not assumed.
func checkEnd(ctx context.Context, target Target, rc recoder, st *Stats) error {
	kc, ok := target.(KeyCounter)
	if !ok {
		return nil
	}
	return checkCounts(ctx, kc, rc, st)
}

// byKey counts stored values by key: a KeyCounter, or a Job that can.
type byKey interface {
	CountByKey(ctx context.Context) (map[uint32]int64, error)
}

// checkCounts is checkEnd over what kc counts.
func checkCounts(ctx context.Context, kc byKey, rc recoder, st *Stats) error {
	dest, ok := rc.destination()
	if !ok {
		return nil
	}
	counts, err := kc.CountByKey(ctx)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return stopped(cerr)
		}
		return fmt.Errorf("%w: count values by key: %w", ErrTarget, err)
	}
	for id, n := range counts {
		if id != dest {
			st.Remaining += n
		}
	}
	if st.Remaining > 0 {
		return fmt.Errorf("%w: after scanning %d values, %d values are still not under the primary key %d (written meanwhile by a process that had not seen the rotation, or not reached by the scan); run Reencrypt again",
			ErrIncomplete, st.Scanned, st.Remaining, dest)
	}
	return nil
}

// stopped is the error of a run stopped by its context.
func stopped(err error) error {
	return fmt.Errorf("rotation: stopped, progress kept at the last checkpoint: %w", err)
}

// runBatch re-encrypts vals with cfg.workers goroutines, and writes them
// value by value, or at the end in one SwapAll for a BatchTarget. It
// returns the first error that stops the run; c counts the rest.
func runBatch(ctx context.Context, target Target, rc recoder, cfg config, vals []Value, c *counters) error {
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bt, batched := target.(BatchTarget)
	var pending []*pendingSwap
	if batched {
		pending = make([]*pendingSwap, len(vals))
	}
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		once  sync.Once
		fatal error
	)
	stop := func(err error) {
		once.Do(func() { fatal = err; cancel() })
	}
	workers := min(cfg.workers, len(vals))
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(vals) || ctx.Err() != nil {
					return
				}
				var slot **pendingSwap
				if batched {
					slot = &pending[i]
				}
				if err := one(ctx, target, rc, cfg, vals[i], c, slot); err != nil {
					stop(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := parent.Err(); err != nil {
		return stopped(err)
	}
	if fatal != nil || !batched {
		return fatal
	}
	var swaps []Swap
	var legacy []bool
	for _, p := range pending {
		if p != nil {
			swaps = append(swaps, p.Swap)
			legacy = append(legacy, p.legacy)
		}
	}
	if len(swaps) == 0 {
		return nil
	}
	written, err := bt.SwapAll(parent, swaps)
	if err != nil {
		if cerr := parent.Err(); cerr != nil {
			return stopped(cerr)
		}
		return fmt.Errorf("%w: write a batch of %d values: %w", ErrTarget, len(swaps), err)
	}
	if len(written) != len(swaps) {
		return fmt.Errorf("%w: SwapAll answered for %d of %d values", ErrTarget, len(written), len(swaps))
	}
	for i, ok := range written {
		switch {
		case !ok:
			c.skipped.Add(1)
		case legacy[i]:
			c.rewritten.Add(1)
			c.legacy.Add(1)
		default:
			c.rewritten.Add(1)
		}
	}
	return nil
}

// pendingSwap is a re-encrypted value waiting for SwapAll.
type pendingSwap struct {
	Swap
	legacy bool
}

// one handles one value; an error stops the run. With slot non-nil the
// write is left to SwapAll: one puts it in *slot.
func one(ctx context.Context, target Target, rc recoder, cfg config, v Value, c *counters, slot **pendingSwap) error {
	c.scanned.Add(1)
	tok, current, legacy, err := rc.recode(ctx, v)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		ve := &ValueError{ID: v.ID, Err: err}
		c.failed.Add(1)
		c.mu.Lock()
		if len(c.failures) < MaxFailures {
			c.failures = append(c.failures, ve)
		}
		c.mu.Unlock()
		if !cfg.cont {
			return ve
		}
		return nil
	}
	if current {
		c.current.Add(1)
		return nil
	}
	if slot != nil {
		*slot = &pendingSwap{Swap: Swap{Value: v, Token: tok}, legacy: legacy}
		return nil
	}
	ok, err := target.Swap(ctx, v, tok)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: write %q: %w", ErrTarget, v.ID, err)
	}
	if !ok {
		c.skipped.Add(1)
		return nil
	}
	c.rewritten.Add(1)
	if legacy {
		c.legacy.Add(1)
	}
	return nil
}
