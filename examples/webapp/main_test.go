package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/internal/dbtest"
	"gorm.io/driver/postgres"
)

// TestRun starts the program as `go run ./examples/webapp` would, twice
// on the same data: the first run creates crypto.key and the demo data,
// the second continues them (and the audit chain). Each run prints the URL
// and the demo users, serves the page, holds an event stream open, and
// shuts down gracefully when its context ends.
func TestRun(t *testing.T) {
	for _, kind := range []string{dbtest.SQLite, dbtest.Postgres} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			args := []string{"-addr", "127.0.0.1:0", "-dir", dir, "-seed", "5"}
			if kind == dbtest.Postgres {
				db := dbtest.Open(t, kind, nil)
				args = append(args, "-dsn", db.Dialector.(*postgres.Dialector).Config.DSN)
			}
			for i, wantKey := range []string{"(created, mode 0600", filepath.Join(dir, "crypto.key") + "\n"} {
				out := runOnce(t, args)
				assert.Contains(t, out, "keyward web app: http://127.0.0.1:", "run %d prints the URL", i)
				assert.Contains(t, out, wantKey, "run %d: the key file", i)
				for _, u := range []string{"alice", "bob", "carol"} {
					assert.Contains(t, out, "  "+u+" ", "run %d lists the demo user %s", i, u)
				}
				assert.NotContains(t, out, "mallory", "run %d: the scripted user cannot sign in", i)
				assert.Contains(t, out, "shutting down", "run %d shuts down", i)
			}
			info, err := os.Stat(filepath.Join(dir, "crypto.key"))
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "crypto.key mode")

			// Both runs wrote one chain, closed with a checkpoint.
			files, err := access.ListAuditFiles(filepath.Join(dir, "audit"), access.DefaultFilePrefix)
			require.NoError(t, err)
			require.NotEmpty(t, files, "audit files")
		})
	}
}

// runOnce runs the program until it has served a page and an event
// stream, then cancels it and returns what it printed.
func runOnce(t *testing.T, args []string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out syncBuffer
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, &out, io.Discard, func(a string) { addr <- a }) }()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-done:
		require.NoError(t, err, "run ended before listening")
	}
	res, err := http.Get(base + "/")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode, "GET /")

	// An admin's event stream is open when the shutdown begins: it ends.
	c := newClient(t, base)
	require.Equal(t, http.StatusOK, c.call("POST", "/api/signin", map[string]string{"user": "carol"}, nil))
	req := c.request("GET", "/api/keys/reencrypt/events", nil)
	stream, err := c.http.Do(req)
	require.NoError(t, err)
	defer stream.Body.Close()
	line, err := bufio.NewReader(stream.Body).ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "event: progress\n", line, "the stream's first line")

	cancel()
	require.NoError(t, <-done, "run after cancel")
	return out.String()
}
