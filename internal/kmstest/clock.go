package kmstest

import (
	"sync"
	"time"

	"github.com/keyward/keyward/internal/hook"
	"github.com/keyward/keyward/keyring"
)

// Clock is a keyring clock (see WithClock) that moves only when told: Advance moves the time
// and runs, in time order and in the calling goroutine, the timers that come
// due, including timers those timers set.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*timer
}

type timer struct {
	at   time.Time
	f    func()
	done bool // fired or stopped
}

var _ hook.Clock = (*Clock)(nil)

// WithClock is the keyring option that replaces the system clock with c (a
// nil c makes keyring.New fail).
func WithClock(c hook.Clock) keyring.Option {
	return hook.KeyringWithClock(c).(keyring.Option)
}

// NewClock returns a Clock at a fixed date.
func NewClock() *Clock { return &Clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc calls f when the clock has been advanced by d, unless the
// returned function stops it first.
func (c *Clock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		stopped := !t.done
		t.done = true
		return stopped
	}
}

// Advance moves the clock by d, firing the timers that come due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	for {
		var next *timer
		live := c.timers[:0]
		for _, t := range c.timers {
			if t.done {
				continue
			}
			live = append(live, t)
			if !t.at.After(end) && (next == nil || t.at.Before(next.at)) {
				next = t
			}
		}
		c.timers = live
		if next == nil {
			break
		}
		next.done = true
		if next.at.After(c.now) {
			c.now = next.at
		}
		c.mu.Unlock()
		next.f()
		c.mu.Lock()
	}
	c.now = end
	c.mu.Unlock()
}
