package keyservice_test

import (
	"bufio"
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"hash/crc32"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/adapters/keyservice"
	"github.com/keyward/keyward/cipher"
	"github.com/keyward/keyward/keyring"
)

var ctx = context.Background()

// ca is a test certificate authority made with crypto/x509.
type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	der  []byte
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	require.NoError(t, err)
	return n
}

func newCA(t testing.TB, name string) *ca {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &ca{cert: cert, key: key, der: der}
}

func (c *ca) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.cert)
	return p
}

func (c *ca) pem() []byte { return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.der}) }

// leaf says what a certificate issued by a test CA holds.
type leaf struct {
	dns       []string
	uris      []string
	ips       []net.IP
	server    bool
	notBefore time.Time
	notAfter  time.Time
}

func (c *ca) issue(t testing.TB, l leaf) tls.Certificate {
	t.Helper()
	key := newKey(t)
	if l.notBefore.IsZero() {
		l.notBefore = time.Now().Add(-time.Hour)
	}
	if l.notAfter.IsZero() {
		l.notAfter = time.Now().Add(24 * time.Hour)
	}
	usage := x509.ExtKeyUsageClientAuth
	if l.server {
		usage = x509.ExtKeyUsageServerAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: "keyservice test"},
		NotBefore:    l.notBefore,
		NotAfter:     l.notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     l.dns,
		IPAddresses:  l.ips,
	}
	for _, u := range l.uris {
		pu, err := url.Parse(u)
		require.NoError(t, err)
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// client issues a client certificate for id: a SPIFFE ID becomes the URI
// SAN, anything else the DNS SAN.
func (c *ca) client(t testing.TB, id string) tls.Certificate {
	if strings.HasPrefix(id, "spiffe://") {
		return c.issue(t, leaf{uris: []string{id}})
	}
	return c.issue(t, leaf{dns: []string{id}})
}

// writePEM writes a certificate and its key to dir as NAME.pem and
// NAME-key.pem, and returns their paths.
func writePEM(t testing.TB, dir, name string, cert tls.Certificate) (certPath, keyPath string) {
	t.Helper()
	var certPEM []byte
	for _, der := range cert.Certificate {
		certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	require.NoError(t, err)
	certPath, keyPath = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	require.NoError(t, os.WriteFile(certPath, certPEM, 0o600))
	require.NoError(t, os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	return certPath, keyPath
}

// Identities used by the tests.
const (
	billing   = "spiffe://example.org/ns/prod/sa/billing"
	reporting = "reporting.internal.example"
	outsider  = "spiffe://example.org/ns/prod/sa/outsider"
	rotator   = "spiffe://example.org/ns/prod/sa/rotator"
)

// policyJSON lets billing wrap and unwrap keys of every keyring, reporting
// only unwrap those of "reports", and rotator rewrap; outsider gets nothing.
const policyJSON = `{"version": 1, "roles": [
	{"name": "wrap-unwrap", "permissions": [{"actions": ["encrypt", "decrypt"], "resources": ["keyring:*"]}]},
	{"name": "` + billing + `", "inherits": ["wrap-unwrap"]},
	{"name": "` + reporting + `", "permissions": [{"actions": ["decrypt"], "resources": ["keyring:reports"]}]},
	{"name": "` + rotator + `", "permissions": [{"actions": ["rewrap"], "resources": ["keyring:*"]}]},
	{"name": "` + outsider + `"}
]}`

func testPolicy(t testing.TB) *access.Policy {
	t.Helper()
	p, err := access.ParsePolicy("test-policy.json", []byte(policyJSON))
	require.NoError(t, err)
	return p
}

func randomKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, filekey.KeySize)
	_, err := rand.Read(k)
	require.NoError(t, err)
	return k
}

func fileSource(t testing.TB) *filekey.Source {
	t.Helper()
	src, err := filekey.New(randomKey(t))
	require.NoError(t, err)
	return src
}

// service is a key service started in-process for a test, on a loopback
// port, with mutual TLS under its own CA, a server certificate for name
// (and 127.0.0.1), and a hash-chained audit log in a temporary directory.
type service struct {
	name     string
	addr     string
	ca       *ca
	srv      *keyservice.Server
	auditDir string
	auditKey []byte
	audit    *access.AuditLog
	done     chan error
}

// serviceConfig changes how startService makes a service.
type serviceConfig struct {
	ca    *ca
	name  string
	src   keyring.KeySource
	opts  []keyservice.ServerOption
	audit bool         // false: no audit log, the auditor logs to a discarded logger
	log   *slog.Logger // the server's logger; nil discards
}

func startService(t testing.TB, cfg serviceConfig) *service {
	t.Helper()
	if cfg.ca == nil {
		cfg.ca = newCA(t, "keyservice test CA")
	}
	if cfg.name == "" {
		cfg.name = "keys.test"
	}
	if cfg.src == nil {
		cfg.src = fileSource(t)
	}
	s := &service{name: cfg.name, ca: cfg.ca, done: make(chan error, 1)}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	auditorOpts := []access.AuditorOption{access.WithLogger(quiet)}
	if cfg.audit {
		s.auditDir, s.auditKey = t.TempDir(), randomKey(t)
		l, err := access.OpenAuditLog(ctx, s.auditDir, s.auditKey, access.WithCheckpointFunc(func(access.Checkpoint) {}))
		require.NoError(t, err)
		s.audit = l
		auditorOpts = []access.AuditorOption{access.WithSink(l)}
	}
	auditor, err := access.NewAuditor(auditorOpts...)
	require.NoError(t, err)
	serverCert := cfg.ca.issue(t, leaf{server: true, dns: []string{cfg.name}, ips: []net.IP{net.IPv4(127, 0, 0, 1)}})
	opts := append([]keyservice.ServerOption{
		keyservice.WithServerTLS(&tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: cfg.ca.pool()}),
		keyservice.WithAuditor(auditor),
		keyservice.WithLogger(cmp.Or(cfg.log, quiet)),
	}, cfg.opts...)
	s.srv, err = keyservice.NewServer(cfg.src, testPolicy(t), opts...)
	require.NoError(t, err)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s.addr = lis.Addr().String()
	go func() { s.done <- s.srv.Serve(lis) }()
	t.Cleanup(func() { s.stop(t) })
	return s
}

// stop shuts the service down (once) and closes its audit log.
func (s *service) stop(t testing.TB) {
	t.Helper()
	if s.srv == nil {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, s.srv.Shutdown(sctx), "Shutdown")
	if err := <-s.done; !errors.Is(err, keyservice.ErrServerClosed) { // ErrServerClosed: Serve had not started yet
		require.NoError(t, err, "Serve after Shutdown")
	}
	s.srv = nil
	if s.audit != nil {
		require.NoError(t, s.audit.Close())
	}
}

// clientTLS is the client TLS config of identity id under the service's CA.
func (s *service) clientTLS(t testing.TB, id string) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{s.ca.client(t, id)}, RootCAs: s.ca.pool()}
}

// client returns a Source of identity id over the service, closed when the
// test ends.
func (s *service) client(t testing.TB, id string, opts ...keyservice.Option) *keyservice.Source {
	t.Helper()
	return newSource(t, []string{s.addr}, append([]keyservice.Option{keyservice.WithTLS(s.clientTLS(t, id)), keyservice.WithServerName(s.name)}, opts...)...)
}

func newSource(t testing.TB, addrs []string, opts ...keyservice.Option) *keyservice.Source {
	t.Helper()
	src, err := keyservice.New(addrs, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { src.Close() })
	return src
}

// auditRecord is the part of an audit log line the tests read.
type auditRecord struct {
	User     string `json:"user"`
	Action   string `json:"action"`
	Resource string `json:"resource"`
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
}

// records verifies the service's audit log and returns its records.
func (s *service) records(t testing.TB) []auditRecord {
	t.Helper()
	require.NotNil(t, s.audit, "the service has no audit log")
	files, err := access.ListAuditFiles(s.auditDir, "")
	require.NoError(t, err)
	_, err = access.Verify(ctx, s.auditKey, files)
	require.NoError(t, err, "the audit log verifies")
	var out []auditRecord
	for _, f := range files {
		fh, err := os.Open(f)
		require.NoError(t, err)
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			var r auditRecord
			require.NoError(t, json.Unmarshal(sc.Bytes(), &r))
			out = append(out, r)
		}
		fh.Close()
	}
	return out
}

// dekLabel is the first part of a keyring's data-key associated data
// (internal/dekaad), written out so that a change of the format fails here.
const dekLabel = "keyward.dek/v1"

// dekAAD is the associated data a keyring gives its key source for data
// key id of keyring name (internal/dekaad's layout).
func dekAAD(name string, id uint32) []byte {
	return cipher.AppendAAD(nil, dekLabel, name, strconv.FormatUint(uint64(id), 10), string(keyring.PurposeData), cipher.AES256GCM.String())
}

// counter counts events of a kind concurrently.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) add(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[k]++
}

func (c *counter) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[k]
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc is the CRC32C of b, computed here independently of the package.
func crc(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// slogTo is a logger writing text to w.
func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// signalHandler is a slog handler that signals when a record with the
// message msg is logged.
type signalHandler struct {
	slog.Handler
	msg string
	ch  chan struct{}
}

func (h signalHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		select {
		case h.ch <- struct{}{}:
		default:
		}
	}
	return nil
}

func (h signalHandler) Enabled(context.Context, slog.Level) bool { return true }

// logSignal returns a logger that signals on the returned channel when msg
// is logged.
func logSignal(msg string) (*slog.Logger, <-chan struct{}) {
	ch := make(chan struct{}, 1)
	return slog.New(signalHandler{Handler: slog.DiscardHandler, msg: msg, ch: ch}), ch
}
