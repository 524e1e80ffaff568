package keyservice_test

import (
	"context"
	"crypto/tls"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/keyward/keyward/adapters/keyservice"
	"github.com/keyward/keyward/keyring"
)

// callCounter is a server interceptor that counts calls and signals each
// one on a channel when asked to.
type callCounter struct {
	n      atomic.Int64
	notify atomic.Pointer[chan struct{}]
}

func (c *callCounter) intercept(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	c.n.Add(1)
	if ch := c.notify.Load(); ch != nil {
		select {
		case *ch <- struct{}{}:
		default:
		}
	}
	return resp, err
}

// TestTwoInstances: a Source over two instances of one service spreads its
// calls over both, and stopping one (gracefully, or at once, cutting the
// calls in flight) does not fail a single call of clients under load.
func TestTwoInstances(t *testing.T) {
	for _, tc := range []struct {
		name     string
		graceful bool
	}{{"Graceful", true}, {"Abrupt", false}} {
		t.Run(tc.name, func(t *testing.T) {
			ca := newCA(t, "cluster CA")
			kek := fileSource(t)
			var ca1, ca2 callCounter
			a := startService(t, serviceConfig{ca: ca, src: kek, opts: []keyservice.ServerOption{keyservice.WithGRPCServerOptions(grpc.ChainUnaryInterceptor(ca1.intercept)), keyservice.WithRateLimit(1e6, 1e6)}})
			b := startService(t, serviceConfig{ca: ca, src: kek, opts: []keyservice.ServerOption{keyservice.WithGRPCServerOptions(grpc.ChainUnaryInterceptor(ca2.intercept)), keyservice.WithRateLimit(1e6, 1e6)}})
			src := newSource(t, []string{a.addr, b.addr}, keyservice.WithTLS(a.clientTLS(t, billing)), keyservice.WithServerName("keys.test"))

			aad := dekAAD("orders", 1)
			dek := randomKey(t)
			w, err := src.Wrap(ctx, dek, aad)
			require.NoError(t, err)

			// Clients under load: every call goes to the service.
			stop := make(chan struct{})
			var failures atomic.Int64
			var firstErr atomic.Pointer[error]
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						got, err := src.Unwrap(ctx, w, aad)
						if err == nil && string(got) != string(dek) {
							err = errors.New("wrong key")
						}
						if err != nil {
							failures.Add(1)
							firstErr.CompareAndSwap(nil, &err)
						}
					}
				})
			}
			// Both instances serve: wait until each has answered calls.
			waitCalls(t, &ca1, 20)
			waitCalls(t, &ca2, 20)

			if tc.graceful {
				a.stop(t)
			} else {
				done, cancel := context.WithCancel(ctx)
				cancel()
				assert.ErrorIs(t, a.srv.Shutdown(done), context.Canceled, "Shutdown with an ended context stops at once")
				<-a.done
				a.srv = nil
				a.audit = nil
			}
			// The other instance takes over: wait for 200 more of its calls.
			waitCalls(t, &ca2, 200)
			close(stop)
			wg.Wait()
			if p := firstErr.Load(); p != nil {
				t.Errorf("first failure: %v", *p)
			}
			assert.Zero(t, failures.Load(), "failed calls while one instance stopped")
		})
	}
}

// waitCalls waits until c has counted n more calls, or fails the test
// after 30 s.
func waitCalls(t *testing.T, c *callCounter, n int) {
	t.Helper()
	ch := make(chan struct{}, 1)
	c.notify.Store(&ch)
	defer c.notify.Store(nil)
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for range n {
		select {
		case <-ch:
		case <-timeout.C:
			t.Fatalf("the instance answered fewer than %d calls in 30 s", n)
		}
	}
}

// blockingSource is a key source whose Unwrap waits for release, telling
// entered when a call arrives.
type blockingSource struct {
	keyring.KeySource
	entered chan struct{}
	release chan struct{}
}

func (b *blockingSource) Unwrap(ctx context.Context, wrapped, aad []byte) ([]byte, error) {
	b.entered <- struct{}{}
	<-b.release
	return b.KeySource.Unwrap(ctx, wrapped, aad)
}

// TestGracefulShutdown: calls in flight when Shutdown starts finish and
// succeed; the service stops taking new calls; Shutdown returns when the
// last call is done.
func TestGracefulShutdown(t *testing.T) {
	bs := &blockingSource{KeySource: fileSource(t), entered: make(chan struct{}, 1), release: make(chan struct{})}
	log, shuttingDown := logSignal("keyservice: shutting down: refusing new calls, finishing the calls in flight")
	svc := startService(t, serviceConfig{src: bs, log: log})
	src := svc.client(t, billing)
	aad := dekAAD("orders", 2)
	dek := randomKey(t)
	w, err := src.Wrap(ctx, dek, aad)
	require.NoError(t, err)
	healthConn, err := grpc.NewClient("passthrough:///"+svc.addr, grpc.WithTransportCredentials(credentials.NewTLS(func() *tls.Config {
		c := svc.clientTLS(t, billing)
		c.ServerName = svc.name
		return c
	}())))
	require.NoError(t, err)
	defer healthConn.Close()
	health := healthpb.NewHealthClient(healthConn)
	hr, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: keyservice.ServiceName})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, hr.GetStatus(), "health before Shutdown")

	type res struct {
		key []byte
		err error
	}
	inFlight := make(chan res, 1)
	go func() {
		k, err := src.Unwrap(ctx, w, aad)
		inFlight <- res{k, err}
	}()
	<-bs.entered

	shutdown := make(chan error, 1)
	go func() { shutdown <- svc.srv.Shutdown(ctx) }()
	<-shuttingDown
	// The service no longer takes calls: its health says NOT_SERVING, or the
	// connection already refuses new streams.
	hr, err = health.Check(ctx, &healthpb.HealthCheckRequest{Service: keyservice.ServiceName})
	assert.True(t, err != nil || hr.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING, "health during Shutdown = %v, %v", hr, err)
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned %v with a call in flight", err)
	default:
	}

	close(bs.release)
	r := <-inFlight
	require.NoError(t, r.err, "the call in flight")
	assert.Equal(t, dek, r.key, "the call in flight gets its key")
	assert.NoError(t, <-shutdown, "Shutdown after the calls finished")
	assert.NoError(t, <-svc.done, "Serve after Shutdown")
	svc.srv = nil

	late := svc.client(t, billing, keyservice.WithRetry(1, time.Millisecond, time.Millisecond))
	_, err = late.Unwrap(ctx, w, aad)
	assert.ErrorIs(t, err, keyring.ErrKEKUnavailable, "a call after Shutdown")
}
