package rotation

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward/internal/instrument"
	"github.com/keyward/keyward/keyring"
)

// Job is a re-encryption that several workers share, in one process or in
// many: its records are cut into parts, and each part is leased to one
// worker at a time. adapters/gormcrypt's Job is one, over a table, with its
// leases in the same database.
type Job interface {
	// Claim leases the next part of run's work (run is Progress.Run) to
	// the caller. It fails with ErrJobDone when every part of run is done,
	// with a *LeasedError when the parts left are leased to other workers
	// (claim again after its Until), and with an error wrapping ErrJobBusy
	// when the job admits one worker at a time and another holds it.
	Claim(ctx context.Context, run string) (Part, error)
}

// Part is a leased part of a Job: a Target over its records, and the
// Checkpoint of its progress. Save renews the lease and fails with
// ErrLeaseLost once another worker took the part over (the lease had
// expired); Clear marks the part done.
type Part interface {
	Target
	Checkpoint
	// Release gives the lease back without finishing the part; its
	// progress is kept for the next worker, which may start at once.
	Release(ctx context.Context) error
}

// LeasedError reports that the parts of a job that are left are leased to
// other live workers.
type LeasedError struct {
	Owner string    // a holder of a lease (host and process), for messages
	Until time.Time // when the first lease ends unless renewed
}

// Error implements error.
func (e *LeasedError) Error() string {
	return fmt.Sprintf("rotation: the job's remaining parts are leased to %s until %s", e.Owner, e.Until.UTC().Format(time.RFC3339))
}

// Errors of shared jobs.
var (
	// ErrJobDone reports a job whose every part is done.
	ErrJobDone = errors.New("rotation: the job is done")
	// ErrJobBusy reports a job that admits one worker at a time, held by
	// another process; the error names it.
	ErrJobBusy = errors.New("rotation: the job is running in another process")
	// ErrLeaseLost reports a part whose lease another worker took over.
	ErrLeaseLost = errors.New("rotation: the part's lease was taken over by another worker")
	// ErrStopped reports a run stopped by WithStop after a batch; its
	// checkpoint (or its parts' progress) is kept, and a new run resumes.
	ErrStopped = errors.New("rotation: stopped after a batch; run again to resume")
)

// maxLeaseWait bounds how long a worker waits before claiming again when
// every part left is leased to others.
const maxLeaseWait = 250 * time.Millisecond

// ReencryptJob is Reencrypt over a shared Job: WithWorkers workers of this
// process claim parts of the job one at a time and re-encrypt each as
// Reencrypt does (a part's batches use the same number of goroutines), with
// the part's progress as its checkpoint. Other processes may run the same
// job at the same time: no part is worked on by two workers at once. When
// the parts left are leased to workers of other processes, the last worker
// of this process waits for their leases to end (a killed process's lease
// ends when it is not renewed) and takes their parts over. ReencryptJob
// returns when every part is done, or with the first error (a value that
// does not decrypt fails closed as in Reencrypt). When the Job counts its
// values by key (a CountByKey method, as gormcrypt's Job has), the end state
// is checked as Reencrypt checks it: values left under other keys end the
// run with ErrIncomplete (Stats.Remaining), and the job, if it can
// (a Restart method), is started over for the next run.
//
// WithCheckpoint does not apply: the job keeps the progress. WithStop stops
// every worker after its current batch, with ErrStopped. The returned Stats
// count what this process did.
func ReencryptJob(ctx context.Context, kr *keyring.Keyring, job Job, opts ...Option) (Stats, error) {
	if kr == nil {
		return Stats{}, errors.New("rotation: nil keyring")
	}
	if job == nil {
		return Stats{}, errors.New("rotation: nil job")
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return Stats{}, err
	}
	if cfg.cp != nil {
		return Stats{}, errors.New("rotation: WithCheckpoint does not apply to a job: its parts keep the progress")
	}
	if err := kr.Reload(ctx); err != nil {
		return Stats{}, fmt.Errorf("rotation: %w", err)
	}
	rc := keyringRecoder{kr}
	in, err := instrument.New(ScopeName, cfg.tel...)
	if err != nil {
		return Stats{}, fmt.Errorf("rotation: telemetry: %w", err)
	}
	m := newJobMetrics(in, kr, job)
	if err := m.err; err != nil {
		return Stats{}, err
	}
	r := &jobRun{job: job, rc: rc, cfg: cfg, metrics: m}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.cancel = cancel
	var wg sync.WaitGroup
	for range cfg.workers {
		wg.Go(func() { r.worker(ctx) })
	}
	wg.Wait()
	if r.err == nil && r.st.Failed > 0 {
		return r.st, fmt.Errorf("%w: %d of %d values failed, the first: %w", ErrIncomplete, r.st.Failed, r.st.Scanned, r.st.Failures[0])
	}
	if r.err != nil {
		return r.st, r.err
	}
	// The end state is checked, not assumed: a job that counts its values
	// by key must hold none under another key than the primary. If it
	// does (written by a process that had not seen the rotation), the job
	// is started over for the next run.
	if kc, ok := job.(byKey); ok {
		if err := checkCounts(ctx, kc, rc, &r.st); err != nil {
			if rs, ok := job.(restarter); ok && errors.Is(err, ErrIncomplete) {
				if rerr := rs.Restart(context.WithoutCancel(ctx), rc.run()); rerr != nil {
					return r.st, fmt.Errorf("%w (restart the job: %w)", err, rerr)
				}
			}
			return r.st, err
		}
	}
	return r.st, nil
}

// restarter is a Job that can be marked to be done again.
type restarter interface {
	Restart(ctx context.Context, run string) error
}

// jobRun is one process's share of a job.
type jobRun struct {
	job     Job
	rc      recoder
	cfg     config
	metrics *jobMetrics
	cancel  context.CancelFunc
	active  atomic.Int32 // workers working on a part

	mu         sync.Mutex
	st         Stats
	err        error
	incomplete error      // the first ErrIncomplete of a part (WithContinueOnError)
	progressMu sync.Mutex // one progress call at a time
}

// fail records the first error and stops the other workers.
func (r *jobRun) fail(err error) {
	r.mu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.mu.Unlock()
	r.cancel()
}

// stopped reports whether WithStop asked to stop.
func (r *jobRun) stopRequested() bool {
	if r.cfg.stop == nil {
		return false
	}
	select {
	case <-r.cfg.stop:
		return true
	default:
		return false
	}
}

func (r *jobRun) worker(ctx context.Context) {
	run := r.rc.run()
	for {
		if ctx.Err() != nil {
			return
		}
		if r.stopRequested() {
			r.fail(ErrStopped)
			return
		}
		part, err := r.job.Claim(ctx, run)
		var leased *LeasedError
		switch {
		case err == nil:
		case errors.Is(err, ErrJobDone):
			return
		case errors.As(err, &leased):
			if r.active.Load() > 0 {
				return // the workers still at work here claim after their part
			}
			wait := min(max(time.Until(leased.Until), 50*time.Millisecond), maxLeaseWait)
			timer := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-r.stopChan():
				timer.Stop()
				r.fail(ErrStopped)
				return
			case <-timer.C:
			}
			continue
		default:
			if ctx.Err() == nil {
				r.fail(fmt.Errorf("rotation: claim a part of the job: %w", err))
			}
			return
		}
		r.active.Add(1)
		err = r.runPart(ctx, part)
		r.active.Add(-1)
		switch {
		case err == nil:
		case errors.Is(err, ErrLeaseLost):
			// Another worker took the part over: claim another.
		case errors.Is(err, ErrIncomplete):
			// The part is done but for values counted as failed
			// (WithContinueOnError): go on with the others.
			r.mu.Lock()
			if r.incomplete == nil {
				r.incomplete = err
			}
			r.mu.Unlock()
		default:
			_ = part.Release(context.WithoutCancel(ctx))
			if ctx.Err() == nil || errors.Is(err, ErrStopped) {
				r.fail(err)
			}
			return
		}
	}
}

func (r *jobRun) stopChan() <-chan struct{} {
	if r.cfg.stop == nil {
		return nil
	}
	return r.cfg.stop
}

// runPart re-encrypts one part, its progress as the checkpoint.
func (r *jobRun) runPart(ctx context.Context, part Part) error {
	cfg := r.cfg
	cfg.cp = part
	var last Stats
	cfg.progress = func(s Stats) {
		r.mu.Lock()
		addStats(&r.st, diffStats(s, last))
		total := r.st
		total.Failures = append([]*ValueError(nil), r.st.Failures...)
		r.mu.Unlock()
		r.metrics.batch(ctx, diffStats(s, last))
		last = s
		if r.cfg.progress != nil {
			r.progress(total)
		}
	}
	st, err := execute(ctx, part, r.rc, cfg, r.metrics.attrs...)
	// What the last batches did after the last progress call (a batch
	// that failed) still counts.
	r.mu.Lock()
	addStats(&r.st, diffStats(st, last))
	if st.Resumed {
		r.st.Resumed = true
	}
	r.mu.Unlock()
	return err
}

// progress calls the caller's progress function, one call at a time.
func (r *jobRun) progress(s Stats) {
	r.progressMu.Lock()
	defer r.progressMu.Unlock()
	r.cfg.progress(s)
}

// diffStats returns the counts of a minus those of b.
func diffStats(a, b Stats) Stats {
	d := Stats{
		Scanned: a.Scanned - b.Scanned, Rewritten: a.Rewritten - b.Rewritten, Legacy: a.Legacy - b.Legacy,
		Current: a.Current - b.Current, Skipped: a.Skipped - b.Skipped, Failed: a.Failed - b.Failed,
		Batches: a.Batches - b.Batches,
	}
	if len(a.Failures) > len(b.Failures) {
		d.Failures = a.Failures[len(b.Failures):]
	}
	return d
}

// addStats adds the counts of d to st.
func addStats(st *Stats, d Stats) {
	st.Scanned += d.Scanned
	st.Rewritten += d.Rewritten
	st.Legacy += d.Legacy
	st.Current += d.Current
	st.Skipped += d.Skipped
	st.Failed += d.Failed
	st.Batches += d.Batches
	for _, f := range d.Failures {
		if len(st.Failures) < MaxFailures {
			st.Failures = append(st.Failures, f)
		}
	}
}
