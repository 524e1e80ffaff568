package rotation

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/keyward/keyward/internal/instrument"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/telemetry"
)

// DefaultCheckInterval is how often a Scheduler checks its policy.
const DefaultCheckInterval = time.Minute

// Scheduler rotates a keyring's primary data key when a Policy says it is
// due. Every instance of an application may run one over the keyring they
// share: each check reloads the store and exchanges encryption counts, so
// all instances judge the same key, and the rotation is conditional on the
// primary still being the key they judged (keyring.Keyring.RotateFrom, a
// compare-and-swap on the store), so exactly one instance rotates per due
// period and the others adopt its key.
//
// With WithJobs, every instance then takes part in re-encrypting the data
// to the new primary (ReencryptJob over shared jobs): the work is split
// among them, and what a stopped instance leaves is taken over by the
// others. A scheduler never disables or destroys keys: that is an
// operator's decision, after the inventory shows the old key unused.
//
// A Scheduler is safe for concurrent use, though one Run per Scheduler is
// the intended use.
type Scheduler struct {
	kr       *keyring.Keyring
	policy   Policy
	cfg      schedulerConfig
	in       *instrument.Instrumentation
	mu       sync.Mutex // one check at a time
	doneWith uint32     // the primary the jobs last finished for
}

// SchedulerOption configures NewScheduler.
type SchedulerOption interface {
	apply(*schedulerConfig) error
}

// schedulerOptionFunc adapts a function to SchedulerOption.
type schedulerOptionFunc func(*schedulerConfig) error

func (f schedulerOptionFunc) apply(c *schedulerConfig) error { return f(c) }

type schedulerConfig struct {
	interval time.Duration
	jobs     []Job
	jobOpts  []Option
	report   func(Decision, error)
	tel      []telemetry.Option
	set      map[string]bool
}

func (c *schedulerConfig) once(name string) error {
	if c.set[name] {
		return fmt.Errorf("rotation: option %s given twice", name)
	}
	c.set[name] = true
	return nil
}

// WithInterval sets how often Run checks (default DefaultCheckInterval).
func WithInterval(d time.Duration) SchedulerOption {
	return schedulerOptionFunc(func(c *schedulerConfig) error {
		if d <= 0 {
			return errors.New("rotation: check interval must be positive")
		}
		c.interval = d
		return c.once("WithInterval")
	})
}

// WithJobs makes every check re-encrypt the data of jobs to the current
// primary until they are done (ReencryptJob with opts), so that after a
// rotation, whichever instance made it, the instances share the work. A
// job that another process holds alone (ErrJobBusy) is left to it and
// checked again next time.
func WithJobs(jobs []Job, opts ...Option) SchedulerOption {
	return schedulerOptionFunc(func(c *schedulerConfig) error {
		if len(jobs) == 0 {
			return errors.New("rotation: WithJobs needs jobs")
		}
		for _, j := range jobs {
			if j == nil {
				return errors.New("rotation: nil job")
			}
		}
		c.jobs, c.jobOpts = jobs, opts
		return c.once("WithJobs")
	})
}

// WithReport calls f after every check that Run makes, with its decision
// and error (Run goes on after an error).
func WithReport(f func(Decision, error)) SchedulerOption {
	return schedulerOptionFunc(func(c *schedulerConfig) error {
		if f == nil {
			return errors.New("rotation: nil report function")
		}
		c.report = f
		return c.once("WithReport")
	})
}

// WithSchedulerTelemetry configures the scheduler's instrumentation; by
// default the global providers are used.
func WithSchedulerTelemetry(opts ...telemetry.Option) SchedulerOption {
	return schedulerOptionFunc(func(c *schedulerConfig) error {
		c.tel = append(c.tel, opts...)
		return c.once("WithSchedulerTelemetry")
	})
}

// Decision is what one check found and did.
type Decision struct {
	At      time.Time
	Primary uint32 // the primary data key that was judged
	Due     bool
	Reason  Reason
	// Rotated reports that this instance rotated; NewPrimary is the
	// primary after the check (another instance's key when it rotated
	// first).
	Rotated    bool
	NewPrimary uint32
	// Reencrypted is what this instance re-encrypted in the jobs.
	Reencrypted Stats
}

// NewScheduler returns a Scheduler of kr under policy.
func NewScheduler(kr *keyring.Keyring, policy Policy, opts ...SchedulerOption) (*Scheduler, error) {
	if kr == nil {
		return nil, errors.New("rotation: nil keyring")
	}
	if policy.MaxAge < 0 {
		return nil, errors.New("rotation: negative MaxAge")
	}
	cfg := schedulerConfig{interval: DefaultCheckInterval, set: map[string]bool{}}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("rotation: nil option")
		}
		if err := o.apply(&cfg); err != nil {
			return nil, err
		}
	}
	in, err := instrument.New(ScopeName, cfg.tel...)
	if err != nil {
		return nil, fmt.Errorf("rotation: telemetry: %w", err)
	}
	return &Scheduler{kr: kr, policy: policy, cfg: cfg, in: in}, nil
}

// Check makes one check: it reloads the keyring, exchanges encryption
// counts, rotates when the policy says the primary is due (unless another
// instance rotated it first) and, with WithJobs, re-encrypts. Each check is
// a SpanCheck span.
func (s *Scheduler) Check(ctx context.Context) (d Decision, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, span := s.in.Tracer().Start(ctx, SpanCheck)
	defer func() {
		if span.IsRecording() {
			span.SetAttributes(AttrDue.Bool(d.Due), AttrReason.String(string(d.Reason)), AttrRotated.Bool(d.Rotated),
				telemetry.AttrKeyring.String(s.kr.Name()), telemetry.KeyID(d.NewPrimary))
		}
		outcome := telemetry.OutcomeOK
		if err != nil {
			outcome = telemetry.OutcomeError
		}
		s.in.End(span, outcome, 0, err)
	}()
	d.At = time.Now()
	if err := s.kr.Reload(ctx); err != nil {
		return d, fmt.Errorf("rotation: check: %w", err)
	}
	if err := s.kr.SyncEncryptions(ctx); err != nil {
		return d, fmt.Errorf("rotation: check: %w", err)
	}
	d.Primary = s.kr.Primary()
	d.NewPrimary = d.Primary
	if d.Due, d.Reason, err = s.policy.Due(s.kr, d.At); err != nil {
		return d, err
	}
	if d.Due {
		if d.NewPrimary, d.Rotated, err = s.kr.RotateFrom(ctx, d.Primary); err != nil {
			return d, fmt.Errorf("rotation: rotate: %w", err)
		}
	}
	if len(s.cfg.jobs) > 0 && s.doneWith != d.NewPrimary {
		done := true
		for _, job := range s.cfg.jobs {
			st, err := ReencryptJob(ctx, s.kr, job, s.cfg.jobOpts...)
			addStats(&d.Reencrypted, st)
			switch {
			case errors.Is(err, ErrJobBusy):
				done = false // another process holds it
			case err != nil:
				return d, err
			}
		}
		if done {
			s.doneWith = d.NewPrimary
		}
	}
	return d, nil
}

// Run checks every interval until ctx ends, then returns ctx's error. A
// failed check is reported (WithReport) and on its span, and the next one
// is made at the next interval.
func (s *Scheduler) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.interval)
	defer t.Stop()
	for {
		d, err := s.Check(ctx)
		if s.cfg.report != nil && ctx.Err() == nil {
			s.cfg.report(d, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
