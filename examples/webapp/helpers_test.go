package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"gorm.io/gorm"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/adapters/filekey"
)

// syncBuffer is a bytes.Buffer safe for concurrent writers (the request
// log).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testApp is the application on a test database, served by httptest, with
// its request log and every span it ended kept for inspection.
type testApp struct {
	*app
	srv      *httptest.Server
	logs     *syncBuffer
	spans    *tracetest.InMemoryExporter
	auditDir string
}

// newTestApp starts the application on db with a random key and seed
// fictional records.
func newTestApp(t *testing.T, db *gorm.DB, seed int) *testApp {
	t.Helper()
	key := make([]byte, filekey.KeySize)
	_, err := rand.Read(key)
	require.NoError(t, err)
	src, err := filekey.New(key)
	require.NoError(t, err)
	ta := &testApp{logs: &syncBuffer{}, spans: tracetest.NewInMemoryExporter(), auditDir: t.TempDir()}
	a, err := newApp(t.Context(), Config{
		DB: db, KeySource: src, AuditDir: ta.auditDir, Seed: seed,
		Logger:         slog.New(slog.NewTextHandler(ta.logs, nil)),
		SpanProcessors: []sdktrace.SpanProcessor{sdktrace.NewSimpleSpanProcessor(ta.spans)},
	})
	require.NoError(t, err, "newApp")
	ta.app = a
	ta.srv = httptest.NewServer(a.handler())
	t.Cleanup(func() {
		ta.srv.Close()
		require.NoError(t, a.close(context.Background()), "close")
	})
	return ta
}

// client is a browser-like API client: a cookie jar and the session's
// CSRF token.
type client struct {
	t    *testing.T
	base string
	http *http.Client
	csrf string
	user string
}

func (ta *testApp) anonymous(t *testing.T) *client { return newClient(t, ta.srv.URL) }

// newClient is a client of the server at base, not signed in.
func newClient(t *testing.T, base string) *client {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &client{t: t, base: base, http: &http.Client{Jar: jar}}
}

// signIn returns a client signed in as user.
func (ta *testApp) signIn(t *testing.T, user string) *client {
	t.Helper()
	c := ta.anonymous(t)
	var s sessionInfo
	status := c.call(http.MethodPost, "/api/signin", map[string]string{"user": user}, &s)
	require.Equal(t, http.StatusOK, status, "sign in as %s", user)
	require.NotEmpty(t, s.CSRF, "sign in as %s: CSRF token", user)
	c.csrf, c.user = s.CSRF, user
	return c
}

// request builds a request as the frontend sends it: JSON body and the
// CSRF token on state-changing methods.
func (c *client) request(method, path string, body any) *http.Request {
	c.t.Helper()
	var rd io.Reader
	if method != http.MethodGet {
		b, err := json.Marshal(body)
		require.NoError(c.t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.base+path, rd)
	require.NoError(c.t, err)
	if method != http.MethodGet {
		req.Header.Set("Content-Type", "application/json")
		if c.csrf != "" {
			req.Header.Set(csrfHeader, c.csrf)
		}
	}
	return req
}

// send sends req and returns the status and the body.
func (c *client) send(req *http.Request) (int, []byte) {
	c.t.Helper()
	res, err := c.http.Do(req)
	require.NoError(c.t, err, "%s %s", req.Method, req.URL.Path)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(c.t, err)
	return res.StatusCode, b
}

// call sends a request and decodes a successful JSON answer into out (if
// not nil). It returns the status.
func (c *client) call(method, path string, body, out any) int {
	c.t.Helper()
	status, b := c.send(c.request(method, path, body))
	if out != nil && status < 300 && len(b) > 0 {
		require.NoError(c.t, json.Unmarshal(b, out), "%s %s: %s", method, path, b)
	}
	return status
}

// auditRecords reads every record of the audit log.
func (ta *testApp) auditRecords(t *testing.T) []auditEntry {
	t.Helper()
	files, err := access.ListAuditFiles(ta.auditDir, access.DefaultFilePrefix)
	require.NoError(t, err)
	var out []auditEntry
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if line == "" {
				continue
			}
			var e auditEntry
			require.NoError(t, json.Unmarshal([]byte(line), &e), "audit line %s", line)
			out = append(out, e)
		}
	}
	return out
}

// auditText is the whole audit log as text.
func (ta *testApp) auditText(t *testing.T) string {
	t.Helper()
	files, err := access.ListAuditFiles(ta.auditDir, access.DefaultFilePrefix)
	require.NoError(t, err)
	var sb strings.Builder
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		sb.Write(b)
	}
	return sb.String()
}

// spanText is every attribute and event of every ended span, as text.
func (ta *testApp) spanText() string {
	var sb strings.Builder
	for _, s := range ta.spans.GetSpans() {
		sb.WriteString(s.Name + "\n")
		for _, kv := range s.Attributes {
			sb.WriteString(string(kv.Key) + "=" + kv.Value.String() + "\n")
		}
		for _, ev := range s.Events {
			sb.WriteString(ev.Name + "\n")
			for _, kv := range ev.Attributes {
				sb.WriteString(string(kv.Key) + "=" + kv.Value.String() + "\n")
			}
		}
	}
	return sb.String()
}

// headerRecorder is a ResponseWriter that keeps only the headers.
type headerRecorder struct{ h http.Header }

func (r *headerRecorder) Header() http.Header         { return r.h }
func (r *headerRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *headerRecorder) WriteHeader(int)             {}

// unb64 decodes unpadded base64url.
func unb64(t *testing.T, s string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	require.NoError(t, err, "base64url %q", s)
	return string(b)
}
