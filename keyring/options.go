package keyring

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keyward/keyward/cipher"
	"github.com/keyward/keyward/internal/hook"
	"github.com/keyward/keyward/telemetry"
)

// Defaults of the data-key cache.
const (
	DefaultCacheTTL       = 5 * time.Minute
	DefaultStaleWindow    = 15 * time.Minute
	DefaultKMSTimeout     = 10 * time.Second
	DefaultReloadInterval = time.Minute
	// DefaultSettleTime is how long a key state change is given to reach
	// every process sharing a store (see WithSettleTime): twice the default
	// reload interval, so that one failed reload is tolerated.
	DefaultSettleTime = 2 * DefaultReloadInterval
)

// Authorizer decides whether the principal in ctx may perform action on
// resource; a refusal is an error (access.ErrAccessDenied from an
// *access.Guard or *access.Policy). A keyring with an Authorizer asks it before every
// operation and never unwraps a data key for a refused caller.
type Authorizer interface {
	Authorize(ctx context.Context, action, resource string) error
}

// UsageChecker tells whether stored data still uses a key, so Destroy can
// refuse to erase a key that data still needs.
type UsageChecker interface {
	KeyInUse(ctx context.Context, keyring string, keyID uint32) (bool, error)
}

// Option configures New.
type Option interface {
	apply(*config) error
}

// optionFunc adapts a function to Option.
type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

type config struct {
	ttl, stale, kmsTimeout, reload time.Duration
	settle                         time.Duration // 0 until WithSettleTime or New sets it
	alg                            cipher.Algorithm
	create                         bool
	authz                          Authorizer
	previous                       []KeySource
	usage                          UsageChecker
	countInterval                  time.Duration
	clock                          hook.Clock
	tel                            []telemetry.Option
	set                            map[string]bool
}

func defaults() config {
	return config{
		ttl: DefaultCacheTTL, stale: DefaultStaleWindow, kmsTimeout: DefaultKMSTimeout,
		reload: DefaultReloadInterval, alg: cipher.AES256GCM, create: true, clock: realClock{},
		set: map[string]bool{},
	}
}

func (c *config) once(name string) error {
	if c.set[name] {
		return fmt.Errorf("keyring: option %s given twice", name)
	}
	c.set[name] = true
	return nil
}

// WithCacheTTL sets how long an unwrapped data key is used before the key
// source is asked again (default 5 minutes). The key is refreshed in the
// background when 80% of the TTL has passed, so callers rarely wait. The key
// source is called once per data key version per TTL, never per record.
func WithCacheTTL(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d <= 0 {
			return errors.New("keyring: cache TTL must be positive")
		}
		c.ttl = d
		return c.once("WithCacheTTL")
	})
}

// WithStaleWindow sets how long past its TTL a cached data key may still be
// used while the key source is unavailable (timeouts, throttling, network;
// not while it refuses): default 15 minutes, 0 to never. A definitive answer
// (KEK disabled, deleted, access denied, wrapped key refused) evicts the key
// at once.
func WithStaleWindow(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d < 0 {
			return errors.New("keyring: stale window must not be negative")
		}
		c.stale = d
		return c.once("WithStaleWindow")
	})
}

// WithKMSTimeout bounds each unwrap the keyring makes on behalf of several
// callers, which run detached from any one caller's context (default 10
// seconds). Each caller still stops waiting when its own context is done.
func WithKMSTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d <= 0 {
			return errors.New("keyring: KMS timeout must be positive")
		}
		c.kmsTimeout = d
		return c.once("WithKMSTimeout")
	})
}

// WithReloadInterval sets how often the keyring re-reads its store to see
// key changes made by other processes (default 1 minute). A token with an
// unknown key ID also triggers a reload, at most once per interval/60.
func WithReloadInterval(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d <= 0 {
			return errors.New("keyring: reload interval must be positive")
		}
		c.reload = d
		return c.once("WithReloadInterval")
	})
}

// WithSettleTime sets how long a key state change takes to reach every
// process that shares the keyring's store: at least the longest reload
// interval among them (default DefaultSettleTime, or twice this keyring's
// reload interval when that is longer). It must not be shorter than this
// keyring's own reload interval.
//
// The keyring uses it three ways. A key that stopped being the primary less
// than the settle time ago cannot be disabled, since a process that has not
// reloaded yet may still encrypt under it. A key disabled less than the
// settle time ago cannot be destroyed (unless Force). And this keyring
// refuses to encrypt when it has not read its store for the settle time
// (the reload failed), rather than go on with a primary that others may
// have retired: it tries a reload first and fails with ErrKeysetStale only
// if that fails too.
func WithSettleTime(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d <= 0 {
			return errors.New("keyring: settle time must be positive")
		}
		c.settle = d
		return c.once("WithSettleTime")
	})
}

// settleTime fills in the default settle time and checks it against the
// reload interval.
func (c *config) settleTime() error {
	if c.settle == 0 {
		c.settle = max(DefaultSettleTime, 2*c.reload)
		return nil
	}
	if c.settle < c.reload {
		return fmt.Errorf("keyring: settle time %v is shorter than the reload interval %v: other processes would act on a key state this one has not seen", c.settle, c.reload)
	}
	return nil
}

// WithAlgorithm sets the algorithm of data keys the keyring creates
// (default AES-256-GCM). Existing keys keep theirs.
func WithAlgorithm(a cipher.Algorithm) Option {
	return optionFunc(func(c *config) error {
		if !a.Valid() {
			return fmt.Errorf("keyring: unsupported algorithm %v", a)
		}
		c.alg = a
		return c.once("WithAlgorithm")
	})
}

// WithoutCreate makes New fail with ErrKeyringNotFound instead of creating
// a keyring that does not exist yet.
func WithoutCreate() Option {
	return optionFunc(func(c *config) error {
		c.create = false
		return c.once("WithoutCreate")
	})
}

// WithAuthorizer makes the keyring ask a before every operation, with the
// access package's actions (access.ActionEncrypt, ActionDecrypt,
// ActionDerive, ActionRotate, ActionRewrap, ActionManage, and ActionForce
// for a forced destroy) and the resource access.KeyringResource(name)
// ("keyring:NAME"). Refused calls fail closed and never unwrap a data key.
// An *access.Guard is an Authorizer that also audits every decision.
func WithAuthorizer(a Authorizer) Option {
	return optionFunc(func(c *config) error {
		if a == nil {
			return errors.New("keyring: nil authorizer")
		}
		c.authz = a
		return c.once("WithAuthorizer")
	})
}

// WithPreviousKeySources lets the keyring unwrap data keys still wrapped by
// earlier key-encryption keys, during a KEK migration; Rewrap moves them to
// the current key source. Sources are picked by ID, never by trying them.
func WithPreviousKeySources(srcs ...KeySource) Option {
	return optionFunc(func(c *config) error {
		for _, s := range srcs {
			if s == nil {
				return errors.New("keyring: nil previous key source")
			}
		}
		c.previous = append(c.previous, srcs...)
		return c.once("WithPreviousKeySources")
	})
}

// WithUsageChecker makes Destroy ask u whether data still uses a key and
// refuse with ErrKeyInUse if so (unless Force). A database inventory of
// the encrypted columns, or rotation targets, answer it.
func WithUsageChecker(u UsageChecker) Option {
	return optionFunc(func(c *config) error {
		if u == nil {
			return errors.New("keyring: nil usage checker")
		}
		c.usage = u
		return c.once("WithUsageChecker")
	})
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

// withClock replaces the system clock, for tests of the cache's time
// behaviour. Tests reach it through internal/kmstest (hook.KeyringWithClock).
func withClock(c hook.Clock) Option {
	return optionFunc(func(cfg *config) error {
		if c == nil {
			return errors.New("keyring: nil clock")
		}
		cfg.clock = c
		return cfg.once("WithClock")
	})
}

func init() {
	hook.KeyringWithClock = func(c hook.Clock) any { return withClock(c) }
}

func durationOf(ns int64) time.Duration { return time.Duration(ns) }
