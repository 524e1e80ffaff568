package keyservice_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/adapters/keyservice"
	"github.com/keyward/keyward/adapters/keyservice/internal/keyservicepb"
	"github.com/keyward/keyward/keyring"
)

// expiredTLS is a client TLS config for billing whose certificate, from the
// service's own CA, expired an hour ago.
func expiredTLS(t testing.TB, svc *service) *tls.Config {
	cert := svc.ca.issue(t, leaf{uris: []string{billing}, notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-time.Hour)})
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: svc.ca.pool()}
}

// rawClient is a gRPC client of the service's protocol with the given TLS
// config, for requests the Source would not send.
func rawClient(t testing.TB, svc *service, cfg *tls.Config) keyservicepb.KeyServiceClient {
	t.Helper()
	cfg = cfg.Clone()
	cfg.ServerName = svc.name
	conn, err := grpc.NewClient("passthrough:///"+svc.addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return keyservicepb.NewKeyServiceClient(conn)
}

func wrapRequest(name string, dek, aad []byte) *keyservicepb.WrapRequest {
	return &keyservicepb.WrapRequest{Keyring: name, Plaintext: dek, PlaintextCrc32C: crc(dek), AssociatedData: aad, AssociatedDataCrc32C: crc(aad)}
}

// TestHandshakeRefusals: a client without a certificate, with one from
// another CA, with an expired one or with one that names no identity is
// refused at the TLS handshake, before any call reaches the service
// (nothing is audited).
func TestHandshakeRefusals(t *testing.T) {
	svc := startService(t, serviceConfig{audit: true})
	other := newCA(t, "another CA")
	otherCert := other.client(t, billing)
	// The client sends its certificate even though the server asks for
	// another CA's (Go's client would otherwise send none).
	otherCA := &tls.Config{RootCAs: svc.ca.pool(), GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &otherCert, nil }}
	for _, tc := range []struct {
		name  string
		cfg   *tls.Config
		alert string
	}{
		{"NoCertificate", &tls.Config{RootCAs: svc.ca.pool()}, "tls: certificate required"},
		{"AnotherCA", otherCA, "tls: unknown certificate authority"},
		{"Expired", expiredTLS(t, svc), "tls: expired certificate"},
		{"NoIdentity", &tls.Config{Certificates: []tls.Certificate{svc.ca.issue(t, leaf{})}, RootCAs: svc.ca.pool()}, "tls: bad certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// In TLS 1.3 the server judges the client's certificate after the
			// client's side of the handshake: the refusal is the alert the
			// client reads next.
			cfg := tc.cfg.Clone()
			cfg.ServerName, cfg.NextProtos = svc.name, []string{"h2"}
			conn, err := tls.Dial("tcp", svc.addr, cfg)
			require.NoError(t, err, "the client's side of the handshake")
			defer conn.Close()
			require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
			_, err = conn.Read(make([]byte, 1))
			assert.ErrorContains(t, err, tc.alert, "reading after a handshake with %s", tc.name)

			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_, err = rawClient(t, svc, tc.cfg).Wrap(cctx, wrapRequest("default", randomKey(t), nil))
			assert.Equal(t, codes.Unavailable, status.Code(err), "Wrap with %s: %v", tc.name, err)
		})
	}
	// Through a Source, the refusal is reported as the key source being
	// unavailable (gRPC reports the alert or the broken connection, as the
	// timing falls).
	src := newSource(t, []string{svc.addr}, keyservice.WithTLS(otherCA), keyservice.WithServerName(svc.name), keyservice.WithRetry(1, time.Millisecond, time.Millisecond))
	_, err := src.Wrap(ctx, randomKey(t), dekAAD("default", 1))
	assert.ErrorIs(t, err, keyring.ErrKEKUnavailable, "Source.Wrap with a certificate of another CA")
	assert.Empty(t, svc.records(t), "audit records of refused handshakes")
}

// TestRefusedCalls covers calls that reach the service and are refused:
// each is audited as denied with its reason.
func TestRefusedCalls(t *testing.T) {
	svc := startService(t, serviceConfig{audit: true})
	raw := rawClient(t, svc, svc.clientTLS(t, billing))
	dek := randomKey(t)
	badCRC := wrapRequest("default", dek, nil)
	badCRC.PlaintextCrc32C ^= 1
	badAADCRC := wrapRequest("default", dek, []byte("aad"))
	badAADCRC.AssociatedDataCrc32C ^= 1
	for _, tc := range []struct {
		name   string
		client keyservicepb.KeyServiceClient
		req    *keyservicepb.WrapRequest
		code   codes.Code
		user   string
		reason string
	}{
		{"TamperedPayloadCRC", raw, badCRC, codes.DataLoss, billing, "checksum mismatch: data key"},
		{"TamperedAADCRC", raw, badAADCRC, codes.DataLoss, billing, "checksum mismatch: associated data"},
		{"OversizedDataKey", raw, wrapRequest("default", make([]byte, keyservice.MaxDataKeySize+1), nil), codes.InvalidArgument, billing, "malformed request: data key of 1025 bytes, want 1 to 1024"},
		{"OversizedAAD", raw, wrapRequest("default", dek, make([]byte, keyservice.MaxAADSize+1)), codes.InvalidArgument, billing, "malformed request: associated data of 4097 bytes, more than 4096"},
		{"NoKeyring", raw, wrapRequest("", dek, nil), codes.InvalidArgument, billing, "malformed request: no keyring name"},
		{"PrincipalNotAllowed", rawClient(t, svc, svc.clientTLS(t, outsider)), wrapRequest("default", dek, nil), codes.PermissionDenied, outsider, "no matching permission"},
		{"WrapNotAllowed", rawClient(t, svc, svc.clientTLS(t, reporting)), wrapRequest("reports", dek, nil), codes.PermissionDenied, reporting, "no matching permission"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := len(svc.records(t))
			resp, err := tc.client.Wrap(ctx, tc.req)
			assert.Equal(t, tc.code, status.Code(err), "Wrap = %v, %v, want %v", resp, err, tc.code)
			recs := svc.records(t)
			require.Len(t, recs, n+1, "one audit record per refused call")
			got := recs[n]
			assert.Equal(t, auditRecord{User: tc.user, Action: "encrypt", Resource: got.Resource, Decision: "deny", Reason: tc.reason}, got, "audit record of %s", tc.name)
			assert.NotContains(t, err.Error(), string(dek), "the error holds no key material")
		})
	}

	// A message over MaxMessageSize is refused by gRPC before the service
	// reads it.
	_, err := raw.Wrap(ctx, wrapRequest("default", dek, make([]byte, 2*keyservice.MaxMessageSize)))
	assert.Equal(t, codes.ResourceExhausted, status.Code(err), "Wrap of a %d-byte message: %v", 2*keyservice.MaxMessageSize, err)

	// A batch over MaxBatchItems is refused whole, and audited once.
	n := len(svc.records(t))
	big := &keyservicepb.BatchWrapRequest{}
	for range keyservice.MaxBatchItems + 1 {
		big.Items = append(big.Items, &keyservicepb.BatchWrapRequest_Item{Request: wrapRequest("default", dek, nil)})
	}
	_, err = raw.BatchWrap(ctx, big)
	assert.Equal(t, codes.InvalidArgument, status.Code(err), "BatchWrap of %d items: %v", len(big.Items), err)
	recs := svc.records(t)
	require.Len(t, recs, n+1)
	assert.Equal(t, "deny", recs[n].Decision)

	// Through a Source, a denial is keyring.ErrKEKAccessDenied and says so.
	_, err = svc.client(t, outsider).Wrap(ctx, dek, dekAAD("default", 1))
	assert.ErrorIs(t, err, keyring.ErrKEKAccessDenied, "Source.Wrap by a principal the policy does not allow")
	assert.Contains(t, err.Error(), "may not wrap data keys of keyring \"default\"")
}

// TestTamperedAnswer corrupts the service's answers on the way back: the
// Source checks every CRC32C, retries, and never returns a corrupted key.
func TestTamperedAnswer(t *testing.T) {
	svc := startService(t, serviceConfig{})
	good := svc.client(t, billing)
	aad := dekAAD("default", 3)
	dek := randomKey(t)
	w, err := good.Wrap(ctx, dek, aad)
	require.NoError(t, err)

	var calls counter
	flip := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		calls.add(method)
		switch r := reply.(type) {
		case *keyservicepb.UnwrapResponse:
			r.Plaintext[0] ^= 1
		case *keyservicepb.WrapResponse:
			r.WrappedCrc32C ^= 1
		}
		return err
	}
	bad := svc.client(t, billing, keyservice.WithDialOptions(grpc.WithUnaryInterceptor(flip)), keyservice.WithIntegrityAttempts(2))
	got, err := bad.Unwrap(ctx, w, aad)
	assert.ErrorIs(t, err, keyservice.ErrIntegrity, "Unwrap with corrupted answers = %x", got)
	assert.ErrorIs(t, err, keyring.ErrKEKUnavailable)
	assert.Nil(t, got)
	assert.Equal(t, 2, calls.get(keyservicepb.KeyService_Unwrap_FullMethodName), "Unwrap attempts with corrupted answers")
	_, err = bad.Wrap(ctx, dek, aad)
	assert.ErrorIs(t, err, keyservice.ErrIntegrity, "Wrap with corrupted answers")
}

func TestRateLimit(t *testing.T) {
	// One token per 1000 s: the second call is over the limit whatever the
	// timing.
	svc := startService(t, serviceConfig{audit: true, opts: []keyservice.ServerOption{keyservice.WithRateLimit(0.001, 1)}})
	raw := rawClient(t, svc, svc.clientTLS(t, billing))
	req := wrapRequest("default", randomKey(t), nil)
	_, err := raw.Wrap(ctx, req)
	require.NoError(t, err, "first call within the burst")
	_, err = raw.Wrap(ctx, req)
	assert.Equal(t, codes.ResourceExhausted, status.Code(err), "second call, burst 1: %v", err)
	recs := svc.records(t)
	assert.Equal(t, "rate limited", recs[len(recs)-1].Reason, "the refusal is audited")

	// The limit is per principal: billing's calls do not limit rotator.
	_, err = rawClient(t, svc, svc.clientTLS(t, rotator)).Wrap(ctx, req)
	assert.Equal(t, codes.PermissionDenied, status.Code(err), "rotator's first call is judged by the policy, not the limit")

	// A Source reports the limit as a transient failure once its retries
	// are used up, or when its deadline leaves no time for another.
	_, err = svc.client(t, billing, keyservice.WithRetry(1, time.Millisecond, time.Millisecond)).Wrap(ctx, randomKey(t), dekAAD("default", 9))
	assert.ErrorIs(t, err, keyring.ErrKEKUnavailable, "Wrap over the rate limit without retries")
	assert.Equal(t, codes.ResourceExhausted, status.Code(err))
	dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = svc.client(t, billing).Wrap(dctx, randomKey(t), dekAAD("default", 9))
	assert.ErrorIs(t, err, keyring.ErrKEKUnavailable, "Wrap over the rate limit with a deadline")
	assert.Less(t, time.Since(start), 2*time.Second, "the retries stay within the caller's deadline")

	// At 50 keys a second with bursts of 1, a Source's retries get through.
	fast := startService(t, serviceConfig{opts: []keyservice.ServerOption{keyservice.WithRateLimit(50, 1)}})
	src := fast.client(t, billing)
	for i := range 3 {
		_, err := src.Wrap(ctx, randomKey(t), dekAAD("default", uint32(i+1)))
		require.NoError(t, err, "Source.Wrap %d under a rate limit of 50/s", i)
	}
}

// TestAuditFailureRefuses: a call whose audit record cannot be written is
// refused, and the key it would have returned is not.
func TestAuditFailureRefuses(t *testing.T) {
	svc := startService(t, serviceConfig{audit: true})
	src := svc.client(t, billing, keyservice.WithRetry(2, time.Millisecond, time.Millisecond))
	aad := dekAAD("default", 5)
	w, err := src.Wrap(ctx, randomKey(t), aad)
	require.NoError(t, err)
	require.NoError(t, svc.audit.Close())
	svc.audit = nil
	got, err := src.Unwrap(ctx, w, aad)
	assert.Nil(t, got, "Unwrap with the audit log closed")
	assert.ErrorIs(t, err, keyring.ErrKEKUnavailable)
	assert.Contains(t, err.Error(), "could not be audited")
}

func TestNewServerErrors(t *testing.T) {
	ca := newCA(t, "server options CA")
	cert := ca.issue(t, leaf{server: true, dns: []string{"keys.test"}})
	good := keyservice.WithServerTLS(&tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: ca.pool()})
	src, policy := fileSource(t), testPolicy(t)
	for _, tc := range []struct {
		name   string
		src    keyring.KeySource
		policy *access.Policy
		opts   []keyservice.ServerOption
	}{
		{"NilSource", nil, policy, []keyservice.ServerOption{good}},
		{"NilPolicy", src, nil, []keyservice.ServerOption{good}},
		{"NoTLS", src, policy, nil},
		{"TLSAndInsecure", src, policy, []keyservice.ServerOption{good, keyservice.WithServerInsecureLoopback()}},
		{"NoClientCAs", src, policy, []keyservice.ServerOption{keyservice.WithServerTLS(&tls.Config{Certificates: []tls.Certificate{cert}})}},
		{"WeakClientAuth", src, policy, []keyservice.ServerOption{keyservice.WithServerTLS(&tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: ca.pool(), ClientAuth: tls.VerifyClientCertIfGiven})}},
		{"NoServerCert", src, policy, []keyservice.ServerOption{keyservice.WithServerTLS(&tls.Config{ClientCAs: ca.pool()})}},
		{"SameSourceTwice", src, policy, []keyservice.ServerOption{good, keyservice.WithPreviousKeySources(src)}},
		{"BadRateLimit", src, policy, []keyservice.ServerOption{good, keyservice.WithRateLimit(0, 1)}},
		{"MissingFiles", src, policy, []keyservice.ServerOption{keyservice.WithServerTLSFiles("no.pem", "no-key.pem", "no-ca.pem")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := keyservice.NewServer(tc.src, tc.policy, tc.opts...)
			assert.Error(t, err, "NewServer = %v, want an error", s)
		})
	}
}

// TestInsecureLoopback: plain gRPC is served on a loopback address only,
// and every caller is InsecurePrincipal.
func TestInsecureLoopback(t *testing.T) {
	policy, err := access.ParsePolicy("dev.json", []byte(`{"roles": [{"name": "`+keyservice.InsecurePrincipal+`", "permissions": [{"actions": ["*"], "resources": ["keyring:*"]}]}]}`))
	require.NoError(t, err)
	var logs, audit bytes.Buffer
	auditor, err := access.NewAuditor(access.WithLogger(slogTo(&audit)))
	require.NoError(t, err)
	srv, err := keyservice.NewServer(fileSource(t), policy, keyservice.WithServerInsecureLoopback(), keyservice.WithLogger(slogTo(&logs)), keyservice.WithAuditor(auditor))
	require.NoError(t, err)

	// Not on a loopback address: refused.
	err = srv.Serve(fakeListener{addr: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 7443}})
	assert.ErrorContains(t, err, "loopback", "Serve without TLS on 192.0.2.1")

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	defer func() {
		require.NoError(t, srv.Shutdown(ctx))
		require.NoError(t, <-done)
	}()
	src := newSource(t, []string{lis.Addr().String()}, keyservice.WithInsecureLoopback())
	kr, err := keyring.New(ctx, "dev", src, keyring.NewMemoryStore())
	require.NoError(t, err, "keyring over an insecure loopback service")
	kr.Close()
	assert.Contains(t, logs.String(), "INSECURE", "the server warns")
	assert.Contains(t, audit.String(), "user="+keyservice.InsecurePrincipal, "the audit records name the insecure principal")
}

// fakeListener is a listener on an address this machine need not have; it
// accepts nothing.
type fakeListener struct{ addr net.Addr }

func (f fakeListener) Accept() (net.Conn, error) { return nil, net.ErrClosed }
func (f fakeListener) Close() error              { return nil }
func (f fakeListener) Addr() net.Addr            { return f.addr }
