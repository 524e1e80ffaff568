package kmstest

import (
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	c := NewClock()
	start := c.Now()
	var fired []string
	c.AfterFunc(2*time.Second, func() {
		fired = append(fired, "2s")
		c.AfterFunc(time.Second, func() { fired = append(fired, "3s (set by 2s)") })
	})
	c.AfterFunc(time.Second, func() {
		if got := c.Now().Sub(start); got != time.Second {
			t.Errorf("Now() in the 1s timer = start+%v", got)
		}
		fired = append(fired, "1s")
	})
	stop := c.AfterFunc(1500*time.Millisecond, func() { fired = append(fired, "stopped") })
	if !stop() || stop() {
		t.Error("stop() = false on a pending timer, or true twice")
	}
	c.AfterFunc(10*time.Second, func() { fired = append(fired, "10s") })

	c.Advance(5 * time.Second)
	want := []string{"1s", "2s", "3s (set by 2s)"}
	if len(fired) != len(want) {
		t.Fatalf("fired %q, want %q", fired, want)
	}
	for i := range want {
		if fired[i] != want[i] {
			t.Fatalf("fired %q, want %q", fired, want)
		}
	}
	if got := c.Now().Sub(start); got != 5*time.Second {
		t.Errorf("Now() after Advance(5s) = start+%v", got)
	}
	c.Advance(5 * time.Second)
	if len(fired) != 4 || fired[3] != "10s" {
		t.Errorf("fired %q after 10s", fired)
	}
}
