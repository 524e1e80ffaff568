package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/internal/awskmstest"
	"github.com/keyward/keyward/internal/gcpkmstest"
)

// serveProc is a `keyward serve` process started by a test.
type serveProc struct {
	cmd   *exec.Cmd
	addr  string
	lines chan string
	mu    sync.Mutex
	log   strings.Builder
	exit  chan int
}

// startServe runs `keyward serve ARGS` in dir and waits for its
// "listening on" line; the process gets SIGKILL when the test ends if it
// still runs.
func startServe(t *testing.T, dir string, args ...string) *serveProc {
	t.Helper()
	p := &serveProc{cmd: exec.Command(bin, append([]string{"serve"}, args...)...), lines: make(chan string, 1024), exit: make(chan int, 1)}
	p.cmd.Dir = dir
	stderr, err := p.cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start())
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
	}()
	go func() {
		<-scanned
		err := p.cmd.Wait()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			code = -1
		}
		p.exit <- code
		close(p.lines)
	}()
	t.Cleanup(func() { _ = p.cmd.Process.Kill() })
	line := p.waitLine(t, "keyward serve: listening on ")
	p.addr = strings.Fields(strings.TrimPrefix(line, "keyward serve: listening on "))[0]
	return p
}

// waitLine waits for a stderr line containing s and returns it; it fails
// the test if the process exits first or after 30 s.
func (p *serveProc) waitLine(t *testing.T, s string) string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("keyward serve exited before printing %q; its stderr:\n%s", s, p.stderr())
			}
			if strings.Contains(l, s) {
				return l
			}
		case <-timeout:
			t.Fatalf("keyward serve did not print %q in 30 s; its stderr:\n%s", s, p.stderr())
		}
	}
}

func (p *serveProc) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// stop sends sig and returns the exit status.
func (p *serveProc) stop(t *testing.T, sig os.Signal) int {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(sig))
	select {
	case code := <-p.exit:
		return code
	case <-time.After(30 * time.Second):
		t.Fatalf("keyward serve did not exit within 30 s of %v", sig)
		return -1
	}
}

const (
	appID      = "spiffe://example.org/ns/prod/sa/billing"
	intruderID = "spiffe://example.org/ns/prod/sa/intruder"
)

// appPolicy lets the billing service wrap and unwrap the keys of every
// keyring, and nobody else anything.
const appPolicy = `{"version": 1, "roles": [
  {"name": "` + appID + `", "permissions": [{"actions": ["encrypt", "decrypt"], "resources": ["keyring:*"]}]}
]}`

// setUpService does the package documentation's five-minute set-up in dir:
// a key, a test CA with certificates for the service and two clients, a
// policy.
func setUpService(t *testing.T, dir string) {
	t.Helper()
	r := keyward(t, dir, "", "keygen")
	require.Equal(t, 0, r.code, "keygen: %+v", r)
	r = keyward(t, dir, "", "certs", "-o", "certs", "--client", appID, "--client", intruderID)
	require.Equal(t, 0, r.code, "certs: %+v", r)
	assert.Contains(t, r.stderr, "principal "+appID, "certs names the principal")
	for _, f := range []string{"ca.pem", "ca-key.pem", "server.pem", "server-key.pem", "client-billing.pem", "client-billing-key.pem", "client-intruder.pem"} {
		fi, err := os.Stat(filepath.Join(dir, "certs", f))
		require.NoError(t, err, "certs wrote %s", f)
		if strings.HasSuffix(f, "-key.pem") {
			assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "%s mode", f)
		}
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "policy.json"), []byte(appPolicy), 0o600))
}

// serveArgs are the flags of the set-up's service on a free port.
func serveArgs(listen string, extra ...string) []string {
	return append([]string{"--listen", listen, "-k", "crypto.key",
		"--tls-cert", "certs/server.pem", "--tls-key", "certs/server-key.pem", "--client-ca", "certs/ca.pem",
		"--policy", "policy.json"}, extra...)
}

// clientArgs are the key-service flags of encrypt and decrypt as client
// NAME (certs/client-NAME.pem).
func clientArgs(addr, name string) []string {
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	return []string{"--key-service", "localhost:" + port, "--tls-cert", "certs/client-" + name + ".pem",
		"--tls-key", "certs/client-" + name + "-key.pem", "--server-ca", "certs/ca.pem", "--store", "keys.json"}
}

// TestServe runs the five-minute set-up: certificates from `keyward
// certs`, `keyward serve` with an audit log and usage events, encrypt and
// decrypt through it, a principal the policy refuses, a policy reload, a
// graceful stop, and the audit log verified with `keyward audit verify`.
func TestServe(t *testing.T) {
	dir := t.TempDir()
	setUpService(t, dir)
	p := startServe(t, dir, serveArgs("127.0.0.1:0", "--audit", "audit", "--events", "events.jsonl")...)
	assert.Contains(t, p.stderr(), "(mutual TLS)")

	const secret = "123-45-6789"
	enc := keyward(t, dir, "", append(append([]string{"encrypt", "--create"}, clientArgs(p.addr, "billing")...), "--keyring", "pii", secret)...)
	require.Equal(t, 0, enc.code, "encrypt through the key service: %+v", enc)
	tok := strings.TrimSpace(enc.stdout)
	require.True(t, strings.HasPrefix(tok, "kw1."), "token %q", tok)
	dec := keyward(t, dir, tok, append(append([]string{"decrypt"}, clientArgs(p.addr, "billing")...), "--keyring", "pii")...)
	require.Equal(t, 0, dec.code, "decrypt through the key service: %+v", dec)
	assert.Equal(t, secret, dec.stdout)

	// The intruder's certificate is valid, but the policy grants it nothing.
	bad := keyward(t, dir, tok, append(append([]string{"decrypt"}, clientArgs(p.addr, "intruder")...), "--keyring", "pii")...)
	assert.Equal(t, 1, bad.code, "decrypt by a principal the policy refuses: %+v", bad)
	assert.Contains(t, bad.stderr, "access to the key-encryption key denied")
	assert.Contains(t, bad.stderr, intruderID+" may not unwrap data keys of keyring \"pii\"")
	assert.Equal(t, 1, strings.Count(bad.stderr, "\n"), "one line of error: %q", bad.stderr)
	assert.NotContains(t, bad.stdout+bad.stderr, secret)

	// SIGHUP reloads the policy: now the intruder may decrypt too.
	grant := strings.TrimSuffix(appPolicy, "\n]}") + `,
  {"name": "` + intruderID + `", "permissions": [{"actions": ["decrypt"], "resources": ["keyring:pii"]}]}
]}`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "policy.json"), []byte(grant), 0o600))
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGHUP))
	p.waitLine(t, "policy reloaded")
	ok := keyward(t, dir, tok, append(append([]string{"decrypt"}, clientArgs(p.addr, "intruder")...), "--keyring", "pii")...)
	assert.Equal(t, 0, ok.code, "decrypt after the policy granted it: %+v", ok)

	assert.Equal(t, 0, p.stop(t, syscall.SIGTERM), "keyward serve exits 0 on SIGTERM; stderr:\n%s", p.stderr())
	assert.NotContains(t, p.stderr(), secret)

	// The audit log verifies with the KEK, and holds the four calls
	// (wrap, unwrap, the denied unwrap, the granted unwrap).
	files, err := filepath.Glob(filepath.Join(dir, "audit", "audit-*.jsonl"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	v := keyward(t, dir, "", append([]string{"audit", "verify", "-k", "crypto.key", "--store", "audit/audit-keyring.json", "--keyring", "audit"}, files...)...)
	assert.Equal(t, 0, v.code, "audit verify: %+v", v)
	assert.Contains(t, v.stdout, "4 records")
	log, err := os.ReadFile(files[0])
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(string(log), `"decision":"deny"`), "denied records in the audit log")
	assert.Contains(t, string(log), `"user":"`+intruderID+`"`)

	// The usage events name the principals and the peer, for the analyzer.
	events, err := os.ReadFile(filepath.Join(dir, "events.jsonl"))
	require.NoError(t, err)
	assert.Equal(t, 4, strings.Count(string(events), "\n"), "usage events: %s", events)
	assert.Contains(t, string(events), `"source":"127.0.0.1"`)
	a := keyward(t, dir, "", "analyze", "events.jsonl")
	assert.Equal(t, 0, a.code, "analyze the service's events: %+v", a)
}

func TestServeUsage(t *testing.T) {
	dir := t.TempDir()
	setUpService(t, dir)
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"NoPolicy", []string{"-k", "crypto.key", "--insecure-loopback"}, 2, "--policy FILE is required"},
		{"NoKey", []string{"--policy", "policy.json", "--insecure-loopback"}, 2, "give the key the service guards"},
		{"NoTLS", []string{"-k", "crypto.key", "--policy", "policy.json"}, 2, "mutual TLS needs --tls-cert"},
		{"InsecureWithTLS", serveArgs("127.0.0.1:0", "--insecure-loopback"), 2, "leave out --tls-cert"},
		{"KeyAndKMS", serveArgs("127.0.0.1:0", "--aws-kms", "alias/x"), 2, "not both"},
		{"PreviousWithKMS", []string{"--aws-kms", "alias/x", "--previous-key", "crypto.key", "--policy", "policy.json", "--insecure-loopback"}, 2, "--previous-key goes with -k"},
		{"BadPolicy", []string{"-k", "crypto.key", "--policy", "certs/ca.pem", "--insecure-loopback"}, 1, "invalid policy"},
		{"InsecureOffLoopback", []string{"--listen", "0.0.0.0:0", "-k", "crypto.key", "--policy", "policy.json", "--insecure-loopback"}, 1, "loopback"},
		{"MissingCert", serveArgs("127.0.0.1:0", "--tls-cert", "nope.pem"), 1, "nope.pem"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := keyward(t, dir, "", append([]string{"serve"}, tc.args...)...)
			assert.Equal(t, tc.code, r.code, "serve %v: %+v", tc.args, r)
			assert.Contains(t, r.stderr, tc.msg, "serve %v", tc.args)
		})
	}

	// Insecure loopback: a loud warning; every caller is the insecure
	// principal, which the development policy names.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "dev.json"), []byte(`{"roles": [{"name": "insecure:loopback", "permissions": [{"actions": ["*"], "resources": ["keyring:*"]}]}]}`), 0o600))
	p := startServe(t, dir, "--listen", "127.0.0.1:0", "-k", "crypto.key", "--policy", "dev.json", "--insecure-loopback")
	assert.Contains(t, p.stderr(), "WARNING: --insecure-loopback")
	assert.Contains(t, p.stderr(), "(INSECURE plain gRPC)")
	r := keyward(t, dir, "", "encrypt", "--create", "--key-service", p.addr, "--insecure-loopback", "--store", "dev-keys.json", "dev value")
	assert.Equal(t, 0, r.code, "encrypt through an insecure loopback service: %+v", r)
	r = keyward(t, dir, "", "encrypt", "--key-service", p.addr, "--insecure-loopback", "--tls-cert", "certs/client-billing.pem", "--store", "dev-keys.json", "x")
	assert.Equal(t, 2, r.code, "--insecure-loopback with --tls-cert: %+v", r)
	r = keyward(t, dir, "", "encrypt", "--key-service", p.addr, "--store", "dev-keys.json", "x")
	assert.Equal(t, 2, r.code, "--key-service without TLS flags: %+v", r)
	assert.Contains(t, r.stderr, "--tls-cert, --tls-key and --server-ca")
	assert.Equal(t, 0, p.stop(t, syscall.SIGINT), "keyward serve exits 0 on SIGINT")
}

// TestServeOverKMS runs the key service over a cloud KMS key instead of a
// key file: the service's wraps and unwraps reach the KMS.
func TestServeOverKMS(t *testing.T) {
	awsEnv(t)
	aws := awskmstest.New(t)
	arn := aws.CreateKey(t)
	gcp := gcpkmstest.New(t)
	name := gcp.CreateKey(t, "projects/cli/locations/global/keyRings/keyward", "serve")
	for _, tc := range []struct {
		name  string
		flags []string
		calls func() (wraps, unwraps int64)
	}{
		{"AWS", []string{"--aws-kms", arn, "--kms-endpoint", aws.URL}, func() (int64, int64) { return aws.Calls("Encrypt"), aws.Calls("Decrypt") }},
		{"GCP", []string{"--gcp-kms", name, "--kms-endpoint", gcp.Addr, "--kms-plaintext"}, func() (int64, int64) { return gcp.Calls("Encrypt"), gcp.Calls("Decrypt") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, "dev.json"), []byte(`{"roles": [{"name": "insecure:loopback", "permissions": [{"actions": ["*"], "resources": ["keyring:*"]}]}]}`), 0o600))
			p := startServe(t, dir, append([]string{"--listen", "127.0.0.1:0", "--policy", "dev.json", "--insecure-loopback", "--audit", "audit"}, tc.flags...)...)
			w0, u0 := tc.calls()
			client := []string{"--key-service", p.addr, "--insecure-loopback", "--store", "keys.json"}
			enc := keyward(t, dir, "", append(append([]string{"encrypt", "--create"}, client...), "over a KMS")...)
			require.Equal(t, 0, enc.code, "encrypt: %+v", enc)
			dec := keyward(t, dir, enc.stdout, append([]string{"decrypt"}, client...)...)
			require.Equal(t, 0, dec.code, "decrypt: %+v", dec)
			assert.Equal(t, "over a KMS", dec.stdout)
			w, u := tc.calls()
			assert.Equal(t, int64(1), w-w0, "KMS wraps for one new keyring")
			assert.Equal(t, int64(1), u-u0, "KMS unwraps for one decrypt in a new process")
			assert.Equal(t, 0, p.stop(t, syscall.SIGTERM), "stderr:\n%s", p.stderr())

			// The audit log verifies with the same KMS key.
			files, err := filepath.Glob(filepath.Join(dir, "audit", "audit-*.jsonl"))
			require.NoError(t, err)
			v := keyward(t, dir, "", append(append(append([]string{"audit", "verify"}, tc.flags...), "--store", "audit/audit-keyring.json", "--keyring", "audit"), files...)...)
			assert.Equal(t, 0, v.code, "audit verify over the KMS key: %+v", v)
			assert.Contains(t, v.stdout, "2 records")
		})
	}
}
