package keyservice

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"google.golang.org/grpc"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/telemetry"
)

// Limits of a request. A call over them is refused: a message over
// MaxMessageSize by gRPC before it is read (RESOURCE_EXHAUSTED), a field
// over its limit by the service (INVALID_ARGUMENT, audited).
const (
	// MaxMessageSize is the largest request message, in bytes.
	MaxMessageSize = 1 << 20
	// MaxDataKeySize is the largest data key Wrap accepts.
	MaxDataKeySize = 1024
	// MaxWrappedSize is the largest wrapped key Unwrap and Rewrap accept.
	MaxWrappedSize = 8192
	// MaxAADSize is the largest associated data.
	MaxAADSize = 4096
	// MaxKeyringName is the longest keyring name.
	MaxKeyringName = 256
	// MaxRefSize is the longest reference of a batch item.
	MaxRefSize = 256
	// MaxBatchItems is the most items one batch call may carry.
	MaxBatchItems = 256
)

// Defaults of a Server.
const (
	// DefaultRate and DefaultBurst are the per-principal rate limit: keys
	// wrapped, unwrapped or rewrapped per second, and how many may come at
	// once. A keyring asks once per data key per cache TTL, so an
	// application stays far below it; a bulk export does not.
	DefaultRate  = 100
	DefaultBurst = 200

	// DefaultCallTimeout bounds the time the server spends on one call,
	// whatever deadline the client set.
	DefaultCallTimeout = 30 * time.Second
)

// ServerOption configures NewServer.
type ServerOption interface {
	apply(*serverConfig) error
}

// serverOptionFunc adapts a function to ServerOption.
type serverOptionFunc func(*serverConfig) error

func (f serverOptionFunc) apply(c *serverConfig) error { return f(c) }

type serverConfig struct {
	tls         *tls.Config
	insecure    bool
	auditor     *access.Auditor
	previous    []keyring.KeySource
	rate        float64
	burst       int
	callTimeout time.Duration
	log         *slog.Logger
	tel         []telemetry.Option
	grpcOpts    []grpc.ServerOption
	set         map[string]bool
}

func (c *serverConfig) once(name string) error {
	if c.set[name] {
		return fmt.Errorf("keyservice: option %s given twice", name)
	}
	c.set[name] = true
	return nil
}

// WithServerTLS sets the server's TLS configuration: its certificate
// (Certificates or GetCertificate) and the CAs that issue client
// certificates (ClientCAs). The server uses a copy that requires and
// verifies a client certificate (tls.RequireAndVerifyClientCert), TLS 1.3,
// and a client identity (see Identity); a configuration asking for less is
// an error.
func WithServerTLS(cfg *tls.Config) ServerOption {
	return serverOptionFunc(func(c *serverConfig) error {
		if cfg == nil {
			return errors.New("keyservice: WithServerTLS: nil config")
		}
		if len(cfg.Certificates) == 0 && cfg.GetCertificate == nil && cfg.GetConfigForClient == nil {
			return errors.New("keyservice: WithServerTLS: the config has no server certificate")
		}
		if cfg.GetConfigForClient != nil {
			return errors.New("keyservice: WithServerTLS: GetConfigForClient is not supported: it could bypass client verification")
		}
		if cfg.ClientCAs == nil {
			return errors.New("keyservice: WithServerTLS: the config has no ClientCAs: mutual TLS needs the CA of the client certificates")
		}
		if cfg.ClientAuth != tls.NoClientCert && cfg.ClientAuth != tls.RequireAndVerifyClientCert {
			return fmt.Errorf("keyservice: WithServerTLS: ClientAuth %v is weaker than RequireAndVerifyClientCert", cfg.ClientAuth)
		}
		if cfg.InsecureSkipVerify || cfg.VerifyPeerCertificate != nil || cfg.VerifyConnection != nil {
			return errors.New("keyservice: WithServerTLS: custom or skipped verification is not supported")
		}
		t := cfg.Clone()
		t.ClientAuth = tls.RequireAndVerifyClientCert
		t.MinVersion = tls.VersionTLS13
		t.VerifyConnection = verifyIdentity
		t.NextProtos = nil // gRPC sets h2
		c.tls = t
		return c.once("WithServerTLS")
	})
}

// WithServerTLSFiles is WithServerTLS from PEM files: the server's
// certificate chain and private key, and the CA certificates that issue
// client certificates.
func WithServerTLSFiles(certFile, keyFile, clientCAFile string) ServerOption {
	return serverOptionFunc(func(c *serverConfig) error {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return fmt.Errorf("keyservice: server certificate: %w", err)
		}
		pool, err := loadCAs(clientCAFile)
		if err != nil {
			return err
		}
		return WithServerTLS(&tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool}).apply(c)
	})
}

// loadCAs reads a PEM file of CA certificates.
func loadCAs(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keyservice: CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("keyservice: CA file %s holds no PEM certificate", path)
	}
	return pool, nil
}

// WithServerInsecureLoopback serves plain gRPC without TLS, for local
// development only: Serve refuses a listener that is not on a loopback
// address, every call is the principal InsecurePrincipal, and the server
// logs a warning. It contradicts WithServerTLS.
func WithServerInsecureLoopback() ServerOption {
	return serverOptionFunc(func(c *serverConfig) error {
		c.insecure = true
		return c.once("WithServerInsecureLoopback")
	})
}

// WithAuditor sets where every call's audit record goes (default: an
// access.Auditor writing to slog.Default()). Give it an *access.AuditLog
// sink for a hash-chained, verifiable log. A fail-closed Auditor (the
// default) makes the server refuse a call whose record it could not write.
func WithAuditor(a *access.Auditor) ServerOption {
	return serverOptionFunc(func(c *serverConfig) error {
		if a == nil {
			return errors.New("keyservice: WithAuditor: nil auditor")
		}
		c.auditor = a
		return c.once("WithAuditor")
	})
}

// WithPreviousKeySources lets the server unwrap and rewrap data keys wrapped
// by earlier key-encryption keys, after the service's KEK changed. The
// envelope of a wrapped key names its key source, so the source is picked by
// ID, never by trying; Rewrap moves a key to the current one.
func WithPreviousKeySources(srcs ...keyring.KeySource) ServerOption {
	return serverOptionFunc(func(c *serverConfig) error {
		for _, s := range srcs {
			if s == nil {
				return errors.New("keyservice: WithPreviousKeySources: nil key source")
			}
		}
		c.previous = append(c.previous, srcs...)
		return c.once("WithPreviousKeySources")
	})
}

// WithRateLimit sets the per-principal rate limit: perSecond keys (items)
// per second with bursts of up to burst (default DefaultRate,
// DefaultBurst). A call over it is refused with RESOURCE_EXHAUSTED, which
// clients retry with backoff.
func WithRateLimit(perSecond float64, burst int) ServerOption {
	return serverOptionFunc(func(c *serverConfig) error {
		if perSecond <= 0 || burst < 1 {
			return errors.New("keyservice: WithRateLimit: the rate must be positive and the burst at least 1")
		}
		c.rate, c.burst = perSecond, burst
		return c.once("WithRateLimit")
	})
}

// WithCallTimeout bounds the time the server spends on one call (default
// DefaultCallTimeout); a client's shorter deadline still applies.
func WithCallTimeout(d time.Duration) ServerOption {
	return serverOptionFunc(func(c *serverConfig) error {
		if d <= 0 {
			return errors.New("keyservice: WithCallTimeout: the timeout must be positive")
		}
		c.callTimeout = d
		return c.once("WithCallTimeout")
	})
}

// WithLogger sets the logger of the server's own messages: start, stop,
// failures of its key source (default slog.Default()). They never hold key
// material, payloads or associated data. Audit records go to the Auditor.
func WithLogger(l *slog.Logger) ServerOption {
	return serverOptionFunc(func(c *serverConfig) error {
		if l == nil {
			return errors.New("keyservice: WithLogger: nil logger")
		}
		c.log = l
		return c.once("WithLogger")
	})
}

// WithTelemetry passes options (tracer and meter providers, event sinks such
// as an anomaly.Analyzer, a pseudonymizer) to the server's instrumentation.
// Without them it follows telemetry.Default(). It may be given more than
// once; an option given twice in all is an error.
func WithTelemetry(opts ...telemetry.Option) ServerOption {
	return serverOptionFunc(func(c *serverConfig) error {
		c.tel = append(c.tel, opts...)
		return nil
	})
}

// WithGRPCServerOptions adds options to the gRPC server, for example
// interceptors or a stats handler. The server's own settings (credentials,
// message size, stream and connection limits) are applied after them and
// win.
func WithGRPCServerOptions(opts ...grpc.ServerOption) ServerOption {
	return serverOptionFunc(func(c *serverConfig) error {
		c.grpcOpts = append(c.grpcOpts, opts...)
		return c.once("WithGRPCServerOptions")
	})
}
