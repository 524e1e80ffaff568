package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/adapters/keyservice"
	"github.com/keyward/keyward/internal/kmstest"
	"github.com/keyward/keyward/keyring"
)

// loadStats counts the outcomes of the load goroutines per phase, and
// signals each success on a channel when asked.
type loadStats struct {
	phase   atomic.Int32
	ok, bad [6]atomic.Int64
	mu      sync.Mutex
	lastErr [6]error
	notify  atomic.Pointer[chan struct{}]
}

func (s *loadStats) success() {
	p := s.phase.Load()
	s.ok[p].Add(1)
	if ch := s.notify.Load(); ch != nil && p != phaseDown {
		select {
		case *ch <- struct{}{}:
		default:
		}
	}
}

func (s *loadStats) failure(err error) {
	p := s.phase.Load()
	s.bad[p].Add(1)
	s.mu.Lock()
	s.lastErr[p] = err
	s.mu.Unlock()
	if ch := s.notify.Load(); ch != nil && p == phaseDown {
		select {
		case *ch <- struct{}{}:
		default:
		}
	}
}

// waitEvents waits for n signals (successes, or in phaseDown failures) of
// the current phase, or fails after 30 s.
func (s *loadStats) waitEvents(t *testing.T, n int) {
	t.Helper()
	ch := make(chan struct{}, 1)
	s.notify.Store(&ch)
	defer s.notify.Store(nil)
	timeout := time.After(30 * time.Second)
	for range n {
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("phase %d: fewer than %d outcomes in 30 s (ok %d, failed %d, last error %v)", s.phase.Load(), n, s.ok[s.phase.Load()].Load(), s.bad[s.phase.Load()].Load(), s.lastErr[s.phase.Load()])
		}
	}
}

// Phases of TestServeOutage.
const (
	phaseWarm      = iota // the service is up
	phaseKilled           // the service process is killed; keys are fresh in the cache
	phaseStale            // past the cache TTL, within the stale window
	phaseDown             // past the stale window
	phaseRestarted        // the service is back
)

// TestServeOutage kills the `keyward serve` process (SIGKILL) while
// clients are under load: the clients' keyring keeps serving its cached
// data keys through the TTL and the stale window, then reports the outage
// clearly, and recovers when the service is back, with every value written
// during the run still readable.
func TestServeOutage(t *testing.T) {
	dir := t.TempDir()
	setUpService(t, dir)
	p := startServe(t, dir, serveArgs("127.0.0.1:0")...)
	addr := p.addr

	const ttl, stale = time.Minute, 5 * time.Minute
	ctx := context.Background()
	newSource := func() *keyservice.Source {
		src, err := keyservice.New([]string{addr},
			keyservice.WithTLSFiles(filepath.Join(dir, "certs/client-billing.pem"), filepath.Join(dir, "certs/client-billing-key.pem"), filepath.Join(dir, "certs/ca.pem")),
			keyservice.WithServerName("localhost"), keyservice.WithRetry(3, time.Millisecond, 20*time.Millisecond))
		require.NoError(t, err)
		t.Cleanup(func() { src.Close() })
		return src
	}
	clk := kmstest.NewClock()
	store := keyring.NewMemoryStore()
	kr, err := keyring.New(ctx, "orders", newSource(), store, kmstest.WithClock(clk), keyring.WithCacheTTL(ttl), keyring.WithStaleWindow(stale))
	require.NoError(t, err)
	defer kr.Close()

	// Eight clients encrypt and read back values, remembering every token.
	var stats loadStats
	var tmu sync.Mutex
	written := map[string]string{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				value := fmt.Sprintf("card %d-%d", g, i)
				tok, err := kr.EncryptString(ctx, value)
				if err == nil {
					var got string
					if got, err = kr.DecryptString(ctx, tok); err == nil && got != value {
						err = errors.New("read back another value")
					}
				}
				if err != nil {
					stats.failure(err)
					continue
				}
				tmu.Lock()
				written[tok] = value
				tmu.Unlock()
				stats.success()
			}
		})
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()

	stats.waitEvents(t, 200)

	stats.phase.Store(phaseKilled)
	assert.Equal(t, -1, p.stop(t, syscall.SIGKILL), "the service process was killed")
	stats.waitEvents(t, 200)

	stats.phase.Store(phaseStale)
	clk.Advance(ttl + time.Second)
	stats.waitEvents(t, 200)
	for ph := phaseWarm; ph <= phaseStale; ph++ {
		assert.Zero(t, stats.bad[ph].Load(), "phase %d: failed calls (last: %v)", ph, stats.lastErr[ph])
	}

	stats.phase.Store(phaseDown)
	clk.Advance(stale)
	stats.waitEvents(t, 1)
	stats.mu.Lock()
	down := stats.lastErr[phaseDown]
	stats.mu.Unlock()
	assert.ErrorIs(t, down, keyring.ErrKEKUnavailable, "past the stale window")
	assert.ErrorContains(t, down, "keyservice: unwrap at localhost", "the error names the key service")

	stats.phase.Store(phaseRestarted)
	startServe(t, dir, serveArgs(addr)...)
	stats.waitEvents(t, 200)

	close(stop)
	wg.Wait()
	stop = make(chan struct{})

	// Nothing lost: a new keyring (another process, cold cache) reads every
	// value written during the run.
	kr2, err := keyring.New(ctx, "orders", newSource(), store)
	require.NoError(t, err)
	defer kr2.Close()
	tmu.Lock()
	defer tmu.Unlock()
	for tok, value := range written {
		got, err := kr2.DecryptString(ctx, tok)
		require.NoError(t, err, "value %q written during the run", value)
		require.Equal(t, value, got)
	}
	t.Logf("%d values written; ok/failed per phase: warm %d/%d, killed %d/%d, stale %d/%d, down %d/%d, restarted %d/%d",
		len(written), stats.ok[0].Load(), stats.bad[0].Load(), stats.ok[1].Load(), stats.bad[1].Load(), stats.ok[2].Load(), stats.bad[2].Load(),
		stats.ok[3].Load(), stats.bad[3].Load(), stats.ok[4].Load(), stats.bad[4].Load())
}
