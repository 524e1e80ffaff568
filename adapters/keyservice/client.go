package keyservice

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	"github.com/keyward/keyward/adapters/keyservice/internal/keyservicepb"
	"github.com/keyward/keyward/keyring"
)

// Source is a keyring.KeySource over the key service: the key-encryption
// key stays in the service, which wraps and unwraps data keys for this
// caller (identified by its client certificate) if the service's policy
// allows it. A Source is safe for concurrent use; Close releases its
// connections.
type Source struct {
	conn       *grpc.ClientConn
	client     keyservicepb.KeyServiceClient
	name       string
	id         string
	keyring    string
	attempts   int
	backoff    time.Duration
	maxBackoff time.Duration
	integrity  int
}

var (
	_ keyring.KeySource = (*Source)(nil)
	_ keyring.Closer    = (*Source)(nil)
)

// serviceConfig spreads calls over every address (round robin) and skips
// instances whose health service does not report SERVING, such as one that
// is shutting down.
const serviceConfig = `{"loadBalancingConfig":[{"round_robin":{}}],"healthCheckConfig":{"serviceName":"` + ServiceName + `"}}`

// New returns a Source over the key service at addrs ("host:port"), which
// must be instances of one service (with one KEK). With one address that is
// a DNS name, every address the name resolves to is used. Calls are spread
// over the instances, and a call that fails on one because it is down or
// stopping is retried on another.
//
// New needs WithTLS or WithTLSFiles (or WithInsecureLoopback). It makes no
// call: connections are made on first use, and a certificate the service
// refuses shows as the first call's error. A client certificate that is
// expired or not yet valid is an error here.
func New(addrs []string, opts ...Option) (*Source, error) {
	if len(addrs) == 0 {
		return nil, errors.New("keyservice: New: no address")
	}
	cfg := clientConfig{attempts: DefaultAttempts, backoff: DefaultBackoff, maxBackoff: DefaultMaxBackoff, integrity: DefaultIntegrityAttempts, set: map[string]bool{}}
	for _, o := range opts {
		if err := o.apply(&cfg); err != nil {
			return nil, err
		}
	}
	hosts := make([]string, len(addrs))
	for i, a := range addrs {
		h, port, err := net.SplitHostPort(a)
		if err != nil || h == "" || port == "" {
			return nil, fmt.Errorf("keyservice: address %q: want host:port", a)
		}
		if cfg.insecure && !loopbackHost(h) {
			return nil, fmt.Errorf("keyservice: WithInsecureLoopback: address %q is not a loopback address", a)
		}
		hosts[i] = h
	}
	var creds credentials.TransportCredentials
	switch {
	case cfg.tls != nil && cfg.insecure:
		return nil, errors.New("keyservice: WithTLS and WithInsecureLoopback contradict each other")
	case cfg.tls == nil && !cfg.insecure:
		return nil, errors.New("keyservice: New needs WithTLS or WithTLSFiles (mutual TLS) or, for local development, WithInsecureLoopback")
	case cfg.insecure:
		creds = insecure.NewCredentials()
	default:
		if err := checkValidity(cfg.tls.Certificates, time.Now()); err != nil {
			return nil, err
		}
	}
	name := cfg.serverName
	if name == "" && cfg.tls != nil {
		name = cfg.tls.ServerName
	}
	if name == "" {
		for _, h := range hosts[1:] {
			if h != hosts[0] {
				return nil, errors.New("keyservice: the addresses name different hosts: give WithServerName, the name in the service's certificate")
			}
		}
		name = hosts[0]
	}
	if cfg.tls != nil {
		cfg.tls.ServerName = name
		creds = credentials.NewTLS(cfg.tls)
	}

	target := "dns:///" + addrs[0]
	dialOpts := append([]grpc.DialOption(nil), cfg.dialOpts...)
	if len(addrs) > 1 {
		r := manual.NewBuilderWithScheme("keyservice")
		state := resolver.State{}
		for _, a := range addrs {
			state.Addresses = append(state.Addresses, resolver.Address{Addr: a})
		}
		r.InitialState(state)
		target = "keyservice:///" + name
		dialOpts = append(dialOpts, grpc.WithResolvers(r))
	}
	dialOpts = append(dialOpts,
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultServiceConfig(serviceConfig),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: 5 * time.Second,
		}),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(4*MaxMessageSize)),
	)
	conn, err := grpc.NewClient(target, dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("keyservice: %w", err)
	}
	return &Source{
		conn: conn, client: keyservicepb.NewKeyServiceClient(conn),
		name: name, id: "keyservice:" + name, keyring: cfg.keyring,
		attempts: cfg.attempts, backoff: cfg.backoff, maxBackoff: cfg.maxBackoff, integrity: cfg.integrity,
	}, nil
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// checkValidity refuses a client certificate that is expired or not yet
// valid: the service would refuse it at the handshake, with a less clear
// error.
func checkValidity(certs []tls.Certificate, now time.Time) error {
	for _, c := range certs {
		if len(c.Certificate) == 0 {
			continue
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			return fmt.Errorf("keyservice: client certificate: %w", err)
		}
		switch {
		case now.After(leaf.NotAfter):
			return fmt.Errorf("keyservice: the client certificate expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339))
		case now.Before(leaf.NotBefore):
			return fmt.Errorf("keyservice: the client certificate is not valid before %s", leaf.NotBefore.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

// ID returns "keyservice:" and the service's name (see WithServerName).
func (s *Source) ID() string { return s.id }

// String describes the source; it holds no secrets.
func (s *Source) String() string { return s.id }

// Close closes the Source's connections.
func (s *Source) Close() error { return s.conn.Close() }

// keyringFor returns the keyring a call with aad is for: the one aad names
// when it is a keyring's data-key binding, else the WithKeyring default.
func (s *Source) keyringFor(op string, aad []byte) (string, error) {
	if name, _, ok := dekBinding(aad); ok {
		return name, nil
	}
	if s.keyring == "" {
		return "", fmt.Errorf("keyservice: %s: the associated data names no keyring and the Source has no WithKeyring default", op)
	}
	return s.keyring, nil
}

// deadlineSlack is how close to the caller's deadline a DEADLINE_EXCEEDED
// answer is taken as the caller's deadline passing.
const deadlineSlack = 250 * time.Millisecond

// errChecksum reports an answer whose CRC32C does not match its payload.
var errChecksum = errors.New("the answer's CRC32C does not match")

// Wrap implements keyring.KeySource: the service wraps dek under its
// current KEK, bound to aad and the keyring aad names.
func (s *Source) Wrap(ctx context.Context, dek, aad []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(dek) == 0 || len(dek) > MaxDataKeySize {
		return nil, fmt.Errorf("keyservice: wrap: data key of %d bytes, want 1 to %d", len(dek), MaxDataKeySize)
	}
	name, err := s.keyringFor("wrap", aad)
	if err != nil {
		return nil, err
	}
	req := &keyservicepb.WrapRequest{
		Keyring: name, Plaintext: dek, PlaintextCrc32C: checksum(dek),
		AssociatedData: aad, AssociatedDataCrc32C: checksum(aad),
	}
	return s.call(ctx, "wrap", false, func(ctx context.Context) ([]byte, uint32, error) {
		resp, err := s.client.Wrap(ctx, req)
		return resp.GetWrapped(), resp.GetWrappedCrc32C(), err
	})
}

// Unwrap implements keyring.KeySource: the service unwraps a key made by
// Wrap (or Rewrap) with the same aad.
func (s *Source) Unwrap(ctx context.Context, wrapped, aad []byte) ([]byte, error) {
	name, err := s.wrappedKeyring(ctx, "unwrap", wrapped, aad)
	if err != nil {
		return nil, err
	}
	req := &keyservicepb.UnwrapRequest{
		Keyring: name, Wrapped: wrapped, WrappedCrc32C: checksum(wrapped),
		AssociatedData: aad, AssociatedDataCrc32C: checksum(aad),
	}
	return s.call(ctx, "unwrap", true, func(ctx context.Context) ([]byte, uint32, error) {
		resp, err := s.client.Unwrap(ctx, req)
		return resp.GetPlaintext(), resp.GetPlaintextCrc32C(), err
	})
}

// Rewrap asks the service to move a wrapped key to its current KEK,
// keeping its keyring and associated data. The data key never leaves the
// service. It needs the rewrap permission.
func (s *Source) Rewrap(ctx context.Context, wrapped, aad []byte) ([]byte, error) {
	name, err := s.wrappedKeyring(ctx, "rewrap", wrapped, aad)
	if err != nil {
		return nil, err
	}
	req := &keyservicepb.RewrapRequest{
		Keyring: name, Wrapped: wrapped, WrappedCrc32C: checksum(wrapped),
		AssociatedData: aad, AssociatedDataCrc32C: checksum(aad),
	}
	return s.call(ctx, "rewrap", false, func(ctx context.Context) ([]byte, uint32, error) {
		resp, err := s.client.Rewrap(ctx, req)
		return resp.GetWrapped(), resp.GetWrappedCrc32C(), err
	})
}

// wrappedKeyring checks the context and a wrapped key's size and returns
// the keyring aad names, for an unwrap or rewrap.
func (s *Source) wrappedKeyring(ctx context.Context, op string, wrapped, aad []byte) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if len(wrapped) == 0 || len(wrapped) > MaxWrappedSize {
		return "", fmt.Errorf("keyservice: %s: %w: wrapped key of %d bytes, want 1 to %d", op, keyring.ErrUnwrap, len(wrapped), MaxWrappedSize)
	}
	return s.keyringFor(op, aad)
}

// call makes one call through do and checks that the answer's payload is
// not empty and matches its CRC32C; a payload that does not is discarded
// (cleared first when secret: it would be a data key) and the call is
// tried as do retries.
func (s *Source) call(ctx context.Context, op string, secret bool, rpc func(context.Context) ([]byte, uint32, error)) ([]byte, error) {
	var out []byte
	err := s.do(ctx, op, func(ctx context.Context) error {
		payload, crc, err := rpc(ctx)
		if err != nil {
			return err
		}
		if len(payload) == 0 || checksum(payload) != crc {
			if secret {
				clear(payload)
			}
			return errChecksum
		}
		out = payload
		return nil
	})
	return out, err
}

// do runs call, retrying transient failures and checksum mismatches with
// backoff within ctx, and classifies the final error.
func (s *Source) do(ctx context.Context, op string, call func(context.Context) error) error {
	integrityFails := 0
	for attempt := 1; ; attempt++ {
		err := call(ctx)
		if err == nil {
			return nil
		}
		retry := false
		switch code := status.Code(err); {
		case errors.Is(err, errChecksum) || code == codes.DataLoss:
			integrityFails++
			if retry = integrityFails < s.integrity; !retry {
				err = fmt.Errorf("%w: %w", ErrIntegrity, err)
			}
		case code == codes.Unavailable || code == codes.ResourceExhausted:
			retry = attempt < s.attempts
		}
		if !retry || ctx.Err() != nil {
			return s.classify(ctx, op, err)
		}
		pause := s.pause(attempt)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= pause {
			return s.classify(ctx, op, err)
		}
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return s.classify(ctx, op, err)
		}
	}
}

// pause is the backoff before attempt+1: backoff x 2^(attempt-1), at most
// maxBackoff, with full jitter over its upper half.
func (s *Source) pause(attempt int) time.Duration {
	d := s.backoff << min(attempt-1, 20)
	if d <= 0 || d > s.maxBackoff {
		d = s.maxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

// classify wraps err, the last error of a call, with the keyring sentinel
// its status code stands for. status.Code still reads the code from it.
func (s *Source) classify(ctx context.Context, op string, err error) error {
	// The service ends a call at the caller's deadline (gRPC passes it on)
	// and its answer can arrive just before the caller's own context ends:
	// wait for that moment, so that the error says the caller's deadline
	// passed.
	if status.Code(err) == codes.DeadlineExceeded {
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < deadlineSlack {
			<-ctx.Done()
		}
	}
	var class error
	switch status.Code(err) {
	case codes.PermissionDenied, codes.Unauthenticated:
		class = keyring.ErrKEKAccessDenied
	case codes.NotFound:
		class = keyring.ErrKEKNotFound
	case codes.FailedPrecondition:
		class = keyring.ErrKEKDisabled
	case codes.InvalidArgument:
		if op != "wrap" {
			class = keyring.ErrUnwrap
		}
	case codes.Unavailable, codes.ResourceExhausted, codes.DeadlineExceeded, codes.Internal, codes.Aborted, codes.Unknown, codes.DataLoss:
		class = keyring.ErrKEKUnavailable
	}
	if errors.Is(err, ErrIntegrity) {
		class = keyring.ErrKEKUnavailable
	}
	// A definitive answer stands even if the context ended meanwhile;
	// otherwise the context's end is the cause.
	if ctxErr := ctx.Err(); ctxErr != nil && (class == nil || class == keyring.ErrKEKUnavailable) {
		if !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w: %w", ctxErr, err)
		}
		class = nil
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			class = keyring.ErrKEKUnavailable
		}
	}
	where := "keyservice: " + op + " at " + s.name
	if class == nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	return fmt.Errorf("%s: %w: %w", where, class, err)
}
