package rotation

import (
	"errors"
	"fmt"

	"github.com/keyward/keyward/telemetry"
)

// Defaults of a run.
const (
	DefaultWorkers   = 4
	DefaultBatchSize = 500
)

// Option configures Reencrypt and RotateKey.
type Option interface {
	apply(*config) error
}

// optionFunc adapts a function to Option.
type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

type config struct {
	workers  int
	batch    int
	cp       Checkpoint
	cont     bool
	progress func(Stats)
	stop     <-chan struct{}
	tel      []telemetry.Option
	set      map[string]bool
}

func (c *config) once(name string) error {
	if c.set[name] {
		return fmt.Errorf("rotation: option %s given twice", name)
	}
	c.set[name] = true
	return nil
}

func newConfig(opts []Option) (config, error) {
	c := config{workers: DefaultWorkers, batch: DefaultBatchSize, set: map[string]bool{}}
	for _, o := range opts {
		if o == nil {
			return config{}, errors.New("rotation: nil option")
		}
		if err := o.apply(&c); err != nil {
			return config{}, err
		}
	}
	return c, nil
}

// WithWorkers sets how many values are re-encrypted and written at once
// (default DefaultWorkers).
func WithWorkers(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 1 || n > 1024 {
			return errors.New("rotation: workers must be from 1 to 1024")
		}
		c.workers = n
		return c.once("WithWorkers")
	})
}

// WithBatchSize sets how many records one Scan reads (default
// DefaultBatchSize). The checkpoint is saved after every batch.
func WithBatchSize(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 1 || n > 1_000_000 {
			return errors.New("rotation: batch size must be from 1 to 1000000")
		}
		c.batch = n
		return c.once("WithBatchSize")
	})
}

// WithCheckpoint makes the run resumable: it starts from the progress cp
// holds (when it belongs to the same run), saves the cursor after every
// finished batch, and clears cp when the run has gone through every value.
// One checkpoint belongs to one Target.
func WithCheckpoint(cp Checkpoint) Option {
	return optionFunc(func(c *config) error {
		if cp == nil {
			return errors.New("rotation: nil checkpoint")
		}
		c.cp = cp
		return c.once("WithCheckpoint")
	})
}

// WithContinueOnError makes a value that cannot be re-encrypted (it does
// not decrypt, its key is disabled, ...) count in Stats.Failed instead of
// stopping the run; the run then ends with ErrIncomplete. Without it the
// run fails closed on the first such value, with a *ValueError, and its
// checkpoint stays before the batch that held it. Errors of the Target
// itself (scan, write) always stop the run.
func WithContinueOnError() Option {
	return optionFunc(func(c *config) error {
		c.cont = true
		return c.once("WithContinueOnError")
	})
}

// WithProgress calls f with the stats so far after every finished (and
// checkpointed) batch, from the run's goroutine (ReencryptJob: from one
// worker at a time, with the stats of the whole process).
func WithProgress(f func(Stats)) Option {
	return optionFunc(func(c *config) error {
		if f == nil {
			return errors.New("rotation: nil progress function")
		}
		c.progress = f
		return c.once("WithProgress")
	})
}

// WithTelemetry configures the run's instrumentation (tracer and meter
// providers, event sinks); by default the global providers are used. It
// may be given more than once; an option given twice in all is an error.
func WithTelemetry(opts ...telemetry.Option) Option {
	return optionFunc(func(c *config) error {
		c.tel = append(c.tel, opts...)
		return nil
	})
}

// WithStop makes the run stop after the batch it is working on once stop
// is closed (an operator's Ctrl-C), with ErrStopped; the checkpoint (or
// the job's progress) keeps the finished batches, and a new run resumes
// there. A cancelled context, in contrast, stops at once and leaves the
// current batch to be done again.
func WithStop(stop <-chan struct{}) Option {
	return optionFunc(func(c *config) error {
		if stop == nil {
			return errors.New("rotation: nil stop channel")
		}
		c.stop = stop
		return c.once("WithStop")
	})
}
