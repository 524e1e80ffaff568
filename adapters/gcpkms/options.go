package gcpkms

import (
	"errors"
	"fmt"
	"time"

	"github.com/googleapis/gax-go/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Defaults of a Source.
const (
	// DefaultAttempts is how many times a call is tried when Cloud KMS
	// answers UNAVAILABLE, RESOURCE_EXHAUSTED (throttling) or
	// DEADLINE_EXCEEDED.
	DefaultAttempts = 5

	// DefaultIntegrityAttempts is how many times a call is tried when a
	// checksum does not match (Google advises a limited number of retries).
	DefaultIntegrityAttempts = 3
)

// defaultBackoff is the pause between attempts: 100 ms at first, doubling
// up to 5 s, with jitter (each pause is random up to the current bound). A
// function, not a variable, so that no caller can change the default.
func defaultBackoff() gax.Backoff {
	return gax.Backoff{Initial: 100 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2}
}

// Option configures New.
type Option interface {
	apply(*config) error
}

// optionFunc adapts a function to Option.
type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

type config struct {
	retryer   func() gax.Retryer
	integrity int
	callOpts  []gax.CallOption
	set       map[string]bool
}

func defaults() config {
	return config{retryer: retryerOf(DefaultAttempts, defaultBackoff()), integrity: DefaultIntegrityAttempts, set: map[string]bool{}}
}

func (c *config) once(name string) error {
	if c.set[name] {
		return fmt.Errorf("gcpkms: option %s given twice", name)
	}
	c.set[name] = true
	return nil
}

// WithRetry sets how calls answered with UNAVAILABLE, RESOURCE_EXHAUSTED
// or DEADLINE_EXCEEDED are retried: up to attempts tries in all, pausing as
// b says between them (default DefaultAttempts, pausing 100 ms at first,
// doubling up to 5 s, with jitter). Retries stop when the call's context
// ends. The Source passes this retryer with
// every call, in place of the client's own (which does not retry
// RESOURCE_EXHAUSTED); WithCallOptions can replace it again.
func WithRetry(attempts int, b gax.Backoff) Option {
	return optionFunc(func(c *config) error {
		if attempts < 1 {
			return errors.New("gcpkms: retry attempts must be at least 1")
		}
		if b.Initial <= 0 || b.Max < b.Initial || b.Multiplier < 1 {
			return errors.New("gcpkms: retry backoff needs 0 < Initial <= Max and Multiplier >= 1")
		}
		c.retryer = retryerOf(attempts, b)
		return c.once("WithRetry")
	})
}

// WithIntegrityAttempts sets how many times a call is tried when a
// checksum does not match (default DefaultIntegrityAttempts). A mismatch is
// never returned as data.
func WithIntegrityAttempts(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 1 {
			return errors.New("gcpkms: integrity attempts must be at least 1")
		}
		c.integrity = n
		return c.once("WithIntegrityAttempts")
	})
}

// WithCallOptions adds gax call options to every Encrypt and Decrypt call,
// after the Source's retryer, so they take precedence over it.
func WithCallOptions(opts ...gax.CallOption) Option {
	return optionFunc(func(c *config) error {
		c.callOpts = append(c.callOpts, opts...)
		return c.once("WithCallOptions")
	})
}

// retryer retries the transient codes a bounded number of times.
type retryer struct {
	left int
	bo   gax.Backoff
}

func retryerOf(attempts int, b gax.Backoff) func() gax.Retryer {
	return func() gax.Retryer { return &retryer{left: attempts - 1, bo: b} }
}

func (r *retryer) Retry(err error) (time.Duration, bool) {
	if r.left <= 0 {
		return 0, false
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.ResourceExhausted, codes.DeadlineExceeded:
		r.left--
		return r.bo.Pause(), true
	}
	return 0, false
}
