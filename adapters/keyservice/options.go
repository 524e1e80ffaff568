package keyservice

import (
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
)

// Defaults of a Source.
const (
	// DefaultAttempts is how many times a call is tried when the service
	// answers UNAVAILABLE or RESOURCE_EXHAUSTED (rate limited), or cannot be
	// reached. Retries never go past the caller's deadline.
	DefaultAttempts = 8

	// DefaultBackoff is the first pause between attempts; it doubles, with
	// jitter, up to DefaultMaxBackoff.
	DefaultBackoff    = 50 * time.Millisecond
	DefaultMaxBackoff = time.Second

	// DefaultIntegrityAttempts is how many times a call is tried when a
	// CRC32C does not match, in either direction.
	DefaultIntegrityAttempts = 3
)

// Option configures New.
type Option interface {
	apply(*clientConfig) error
}

// optionFunc adapts a function to Option.
type optionFunc func(*clientConfig) error

func (f optionFunc) apply(c *clientConfig) error { return f(c) }

type clientConfig struct {
	tls        *tls.Config
	insecure   bool
	serverName string
	keyring    string
	attempts   int
	backoff    time.Duration
	maxBackoff time.Duration
	integrity  int
	dialOpts   []grpc.DialOption
	set        map[string]bool
}

func (c *clientConfig) once(name string) error {
	if c.set[name] {
		return fmt.Errorf("keyservice: option %s given twice", name)
	}
	c.set[name] = true
	return nil
}

// WithTLS sets the client's TLS configuration: its certificate
// (Certificates or GetClientCertificate), whose SPIFFE ID or DNS name is
// the caller's identity at the service, and the CAs that issue the
// service's certificate (RootCAs; nil means the system's). The Source uses
// a copy with TLS 1.3 at least.
func WithTLS(cfg *tls.Config) Option {
	return optionFunc(func(c *clientConfig) error {
		if cfg == nil {
			return errors.New("keyservice: WithTLS: nil config")
		}
		if len(cfg.Certificates) == 0 && cfg.GetClientCertificate == nil {
			return errors.New("keyservice: WithTLS: the config has no client certificate: the key service requires one")
		}
		if cfg.InsecureSkipVerify {
			return errors.New("keyservice: WithTLS: InsecureSkipVerify is not supported: the service's certificate must be verified")
		}
		t := cfg.Clone()
		t.MinVersion = max(t.MinVersion, tls.VersionTLS13)
		c.tls = t
		return c.once("WithTLS")
	})
}

// WithTLSFiles is WithTLS from PEM files: the client's certificate chain and
// private key, and the CA certificates that issue the service's
// certificate.
func WithTLSFiles(certFile, keyFile, serverCAFile string) Option {
	return optionFunc(func(c *clientConfig) error {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return fmt.Errorf("keyservice: client certificate: %w", err)
		}
		pool, err := loadCAs(serverCAFile)
		if err != nil {
			return err
		}
		return WithTLS(&tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool}).apply(c)
	})
}

// WithServerName sets the name the service's certificate is verified
// against, which is also what the Source's ID names (default: the TLS
// config's ServerName, else the host of the first address). Give it when
// the addresses are IP addresses or name different hosts.
func WithServerName(name string) Option {
	return optionFunc(func(c *clientConfig) error {
		if name == "" {
			return errors.New("keyservice: WithServerName: empty name")
		}
		c.serverName = name
		return c.once("WithServerName")
	})
}

// WithInsecureLoopback talks plain gRPC without TLS to a server started
// with WithServerInsecureLoopback, for local development only: every address
// must be a loopback address (127.0.0.1, ::1, localhost). It contradicts
// WithTLS.
func WithInsecureLoopback() Option {
	return optionFunc(func(c *clientConfig) error {
		c.insecure = true
		return c.once("WithInsecureLoopback")
	})
}

// WithKeyring names the keyring of calls whose associated data does not say
// it. A keyring's own calls always do (their associated data is a
// data-key binding, which names the keyring), so this matters only for direct
// Wrap and Unwrap calls with other associated data; without it they fail.
func WithKeyring(name string) Option {
	return optionFunc(func(c *clientConfig) error {
		if name == "" || len(name) > MaxKeyringName {
			return fmt.Errorf("keyservice: WithKeyring: want a name of 1 to %d bytes", MaxKeyringName)
		}
		c.keyring = name
		return c.once("WithKeyring")
	})
}

// WithRetry sets how calls answered UNAVAILABLE or RESOURCE_EXHAUSTED are
// retried: up to attempts tries in all, pausing backoff at first, doubling
// (with jitter) up to maxBackoff (default DefaultAttempts, DefaultBackoff,
// DefaultMaxBackoff). A retry that would pass the caller's deadline is not
// made.
func WithRetry(attempts int, backoff, maxBackoff time.Duration) Option {
	return optionFunc(func(c *clientConfig) error {
		if attempts < 1 {
			return errors.New("keyservice: WithRetry: attempts must be at least 1")
		}
		if backoff <= 0 || maxBackoff < backoff {
			return errors.New("keyservice: WithRetry: need 0 < backoff <= maxBackoff")
		}
		c.attempts, c.backoff, c.maxBackoff = attempts, backoff, maxBackoff
		return c.once("WithRetry")
	})
}

// WithIntegrityAttempts sets how many times a call is tried when a CRC32C
// does not match (default DefaultIntegrityAttempts). A payload that fails
// its check is never returned.
func WithIntegrityAttempts(n int) Option {
	return optionFunc(func(c *clientConfig) error {
		if n < 1 {
			return errors.New("keyservice: WithIntegrityAttempts: must be at least 1")
		}
		c.integrity = n
		return c.once("WithIntegrityAttempts")
	})
}

// WithDialOptions adds options to the gRPC client connection, for example
// interceptors or a stats handler. The Source's own settings (credentials,
// load balancing, reconnection backoff) are applied after them and win.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return optionFunc(func(c *clientConfig) error {
		c.dialOpts = append(c.dialOpts, opts...)
		return c.once("WithDialOptions")
	})
}
