package keyservice_test

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/keyward/keyward/adapters/keyservice"
	"github.com/keyward/keyward/adapters/keyservice/internal/keyservicepb"
	"github.com/keyward/keyward/internal/kmstest"
	"github.com/keyward/keyward/keyring"
)

// controls is a server interceptor that counts the service's calls and can
// make it fail, throttle or hang, as kmstest.Remote asks.
type controls struct {
	wraps, unwraps atomic.Int64
	down           atomic.Bool
	throttle       atomic.Int64

	mu      sync.Mutex
	hang    chan struct{} // closed to release hanging calls; nil when not hanging
	started chan struct{}
	once    *sync.Once
}

func (c *controls) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	switch info.FullMethod {
	case keyservicepb.KeyService_Wrap_FullMethodName, keyservicepb.KeyService_BatchWrap_FullMethodName:
		c.wraps.Add(1)
	case keyservicepb.KeyService_Unwrap_FullMethodName, keyservicepb.KeyService_BatchUnwrap_FullMethodName:
		c.unwraps.Add(1)
	}
	c.mu.Lock()
	hang, started, once := c.hang, c.started, c.once
	c.mu.Unlock()
	if hang != nil {
		once.Do(func() { close(started) })
		select {
		case <-hang:
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	if c.down.Load() {
		return nil, status.Error(codes.Unavailable, "down for the test")
	}
	if c.throttle.Add(-1) >= 0 {
		return nil, status.Error(codes.ResourceExhausted, "throttled for the test")
	}
	return handler(ctx, req)
}

func (c *controls) startHang() (<-chan struct{}, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	hang, started := make(chan struct{}), make(chan struct{})
	c.hang, c.started, c.once = hang, started, &sync.Once{}
	var release sync.Once
	return started, func() {
		release.Do(func() {
			c.mu.Lock()
			c.hang = nil
			c.mu.Unlock()
			close(hang)
		})
	}
}

// fastRetry keeps the retries of tests about outages short: 3 attempts,
// 1 to 5 ms apart.
var fastRetry = keyservice.WithRetry(3, time.Millisecond, 5*time.Millisecond)

// TestRemote runs the keyring's KMS behaviour suite over the key service:
// calls per data key per TTL, one call for concurrent misses, the stale
// window during an outage, a hanging or unreachable service, throttling.
func TestRemote(t *testing.T) {
	kmstest.Run(t, func(t *testing.T) kmstest.Remote {
		c := &controls{}
		svc := startService(t, serviceConfig{opts: []keyservice.ServerOption{
			keyservice.WithGRPCServerOptions(grpc.ChainUnaryInterceptor(c.intercept)),
			keyservice.WithRateLimit(1e6, 1e6),
		}})
		return kmstest.Remote{
			Source:   svc.client(t, billing, fastRetry),
			Wraps:    c.wraps.Load,
			Unwraps:  c.unwraps.Load,
			Down:     func() { c.down.Store(true) },
			Up:       func() { c.down.Store(false) },
			Hang:     c.startHang,
			Throttle: func(n int) { c.throttle.Store(int64(n)) },
			Unreachable: func(t *testing.T) keyring.KeySource {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				require.NoError(t, err)
				addr := ln.Addr().String()
				require.NoError(t, ln.Close())
				return newSource(t, []string{addr}, keyservice.WithTLS(svc.clientTLS(t, billing)), keyservice.WithServerName(svc.name), fastRetry)
			},
		}
	})
}
