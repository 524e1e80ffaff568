package kmstest

import (
	"net"
	"sync"
	"testing"
)

// Forever, as a fault's Times, makes it apply until it is cleared.
const Forever = -1

// Faults is the fault table of a KMS emulator: faults of the emulator's own
// type F, each for one operation (or every one) and a number of calls, and a
// count of the calls of each operation. Both emulators (awskmstest,
// gcpkmstest) keep theirs here. The zero value is ready to use.
type Faults[F any] struct {
	mu     sync.Mutex
	faults []*fault[F]
	calls  map[string]int64
}

type fault[F any] struct {
	op    string
	times int
	f     F
}

// Inject adds f for calls of op ("" for every operation), applying to times
// calls (0 means once, Forever until Clear). Faults apply in the order they
// were added.
func (t *Faults[F]) Inject(op string, times int, f F) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if times == 0 {
		times = 1
	}
	t.faults = append(t.faults, &fault[F]{op: op, times: times, f: f})
}

// Clear removes every fault.
func (t *Faults[F]) Clear() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.faults = nil
}

// Calls returns how many calls of op were taken, faults included.
func (t *Faults[F]) Calls(op string) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.calls[op]
}

// Take counts a call of op and returns the first fault that applies to it,
// using up one of its times.
func (t *Faults[F]) Take(op string) (f F, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.calls == nil {
		t.calls = map[string]int64{}
	}
	t.calls[op]++
	for i, e := range t.faults {
		if e.op != "" && e.op != op {
			continue
		}
		if e.times != Forever {
			if e.times--; e.times == 0 {
				t.faults = append(t.faults[:i:i], t.faults[i+1:]...)
			}
		}
		return e.f, true
	}
	return f, false
}

// Hold is the waiting part of a fault: it signals started (without
// blocking; nil for none), then waits until block is closed (nil for no
// wait) or done is. It reports whether the call should go on, false when
// done ended the wait.
func Hold(started chan<- struct{}, block, done <-chan struct{}) bool {
	if started != nil {
		select {
		case started <- struct{}{}:
		default:
		}
	}
	if block == nil {
		return true
	}
	select {
	case <-block:
		return true
	case <-done:
		return false
	}
}

// HangBy returns a Remote.Hang for an emulator: inject adds a fault that
// applies to every call, signals started and waits on block; clear removes
// the emulator's faults. The release it returns may be called more than
// once.
func HangBy(inject func(started chan<- struct{}, block <-chan struct{}), clear func()) func() (<-chan struct{}, func()) {
	return func() (<-chan struct{}, func()) {
		started, block := make(chan struct{}, 1), make(chan struct{})
		inject(started, block)
		var once sync.Once
		return started, func() {
			once.Do(func() {
				clear()
				close(block)
			})
		}
	}
}

// RefusedAddr returns a loopback host:port on which nothing listens, for a
// key source whose KMS cannot be reached.
func RefusedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}
