package keyservice

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/adapters/keyservice/internal/keyservicepb"
	"github.com/keyward/keyward/internal/instrument"
	"github.com/keyward/keyward/keyring"
)

// ServiceName is the full name of the gRPC service, also the name its
// health status is reported under by the standard health service.
const ServiceName = "keyward.v1.KeyService"

// scope is the server's instrumentation scope: its import path.
const scope = "github.com/keyward/keyward/adapters/keyservice"

// Server is the key service: it wraps, unwraps and rewraps data keys with
// the key source it guards, for callers the policy allows, and audits every
// call. Make it with NewServer, run it with Serve and stop it with
// Shutdown. A Server is safe for concurrent use.
type Server struct {
	src     keyring.KeySource
	sources map[string]keyring.KeySource // by ID: the current and the previous ones
	policy  atomic.Pointer[access.Policy]
	auditor *access.Auditor
	in      *instrument.Instrumentation
	limits  *limiter
	cfg     serverConfig
	log     *slog.Logger
	grpc    *grpc.Server
	health  *health.Server
}

// NewServer returns a Server over src, the key source whose key-encryption
// key the service guards, that lets callers do what policy grants (see the
// package documentation for the actions). It needs WithServerTLS (or
// WithServerTLSFiles) for mutual TLS, or WithServerInsecureLoopback.
func NewServer(src keyring.KeySource, policy *access.Policy, opts ...ServerOption) (*Server, error) {
	if src == nil {
		return nil, errors.New("keyservice: NewServer: nil key source")
	}
	if policy == nil {
		return nil, errors.New("keyservice: NewServer: nil policy (the service denies by default: give it a policy that grants callers what they need)")
	}
	cfg := serverConfig{rate: DefaultRate, burst: DefaultBurst, callTimeout: DefaultCallTimeout, log: slog.Default(), set: map[string]bool{}}
	for _, o := range opts {
		if err := o.apply(&cfg); err != nil {
			return nil, err
		}
	}
	switch {
	case cfg.tls != nil && cfg.insecure:
		return nil, errors.New("keyservice: WithServerTLS and WithServerInsecureLoopback contradict each other")
	case cfg.tls == nil && !cfg.insecure:
		return nil, errors.New("keyservice: NewServer needs WithServerTLS (mutual TLS) or, for local development, WithServerInsecureLoopback")
	}
	sources := make(map[string]keyring.KeySource, 1+len(cfg.previous))
	for _, s := range append([]keyring.KeySource{src}, cfg.previous...) {
		id := s.ID()
		if id == "" || len(id) > maxKEKID {
			return nil, fmt.Errorf("keyservice: key source ID %q: want 1 to %d bytes", id, maxKEKID)
		}
		if _, dup := sources[id]; dup {
			return nil, fmt.Errorf("keyservice: key source %s given twice", id)
		}
		sources[id] = s
	}
	if cfg.auditor == nil {
		a, err := access.NewAuditor()
		if err != nil {
			return nil, err
		}
		cfg.auditor = a
	}
	in, err := instrument.New(scope, cfg.tel...)
	if err != nil {
		return nil, fmt.Errorf("keyservice: %w", err)
	}
	s := &Server{
		src: src, sources: sources, auditor: cfg.auditor, in: in,
		limits: newLimiter(cfg.rate, cfg.burst), cfg: cfg, log: cfg.log,
		health: health.NewServer(),
	}
	s.policy.Store(policy)

	gopts := append([]grpc.ServerOption(nil), cfg.grpcOpts...)
	if cfg.tls != nil {
		gopts = append(gopts, grpc.Creds(credentials.NewTLS(cfg.tls)))
	}
	gopts = append(gopts,
		grpc.MaxRecvMsgSize(MaxMessageSize),
		grpc.MaxConcurrentStreams(256),
		grpc.ConnectionTimeout(10*time.Second),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: 15 * time.Minute, Time: time.Minute, Timeout: 20 * time.Second}),
	)
	s.grpc = grpc.NewServer(gopts...)
	keyservicepb.RegisterKeyServiceServer(s.grpc, &service{s: s})
	healthpb.RegisterHealthServer(s.grpc, s.health)
	s.health.SetServingStatus(ServiceName, healthpb.HealthCheckResponse_SERVING)
	return s, nil
}

// Serve accepts connections on lis until Shutdown; it returns nil after a
// Shutdown (once the calls in flight are done) and closes lis. Called after
// Shutdown began, it closes lis and returns ErrServerClosed. A server made
// with WithServerInsecureLoopback refuses (and closes) a listener that is
// not on a loopback address.
func (s *Server) Serve(lis net.Listener) error {
	if s.cfg.insecure {
		if !isLoopback(lis.Addr()) {
			lis.Close()
			return fmt.Errorf("keyservice: refusing to serve without TLS on %s: WithServerInsecureLoopback serves on a loopback address (127.0.0.1, ::1) only", lis.Addr())
		}
		s.log.Warn("keyservice: INSECURE: serving plain gRPC without TLS on a loopback address, for local development only; every caller is the principal " + InsecurePrincipal)
	}
	s.log.Info("keyservice: serving", slog.String("address", lis.Addr().String()), slog.String("kek", s.src.ID()))
	if err := s.grpc.Serve(lis); errors.Is(err, grpc.ErrServerStopped) {
		return ErrServerClosed
	} else if err != nil {
		return fmt.Errorf("keyservice: %w", err)
	}
	return nil
}

// Shutdown stops the server gracefully: the health service reports
// NOT_SERVING, no new call is accepted, and the calls in flight finish.
// If ctx ends first, the calls still running are cancelled and Shutdown
// returns ctx's error. The key sources are not closed: the caller who made
// them does that (see the package documentation on the KEK in memory).
func (s *Server) Shutdown(ctx context.Context) error {
	s.health.Shutdown()
	s.log.Info("keyservice: shutting down: refusing new calls, finishing the calls in flight")
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
		s.log.Info("keyservice: stopped")
		return nil
	case <-ctx.Done():
		s.grpc.Stop()
		<-done
		s.log.Warn("keyservice: stopped before the calls in flight finished")
		return ctx.Err()
	}
}

// SetPolicy replaces the policy atomically, for a reload while serving;
// calls already under way use the old one. A nil policy is refused.
func (s *Server) SetPolicy(p *access.Policy) error {
	if p == nil {
		return errors.New("keyservice: SetPolicy: nil policy")
	}
	s.policy.Store(p)
	return nil
}
