package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// keyVersions counts the data key versions in dir/keys.json.
func keyVersions(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "keys.json"))
	require.NoError(t, err)
	var f struct {
		Keyrings map[string]struct {
			Keys []struct {
				Purpose string `json:"purpose"`
			} `json:"keys"`
		} `json:"keyrings"`
	}
	require.NoError(t, json.Unmarshal(b, &f), "keys.json")
	n := 0
	for _, ks := range f.Keyrings {
		for _, k := range ks.Keys {
			if k.Purpose == "data" {
				n++
			}
		}
	}
	return n
}

// cancelAt is an output that cancels a run when it prints at.
type cancelAt struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	at     string
	cancel context.CancelFunc
}

func (c *cancelAt) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if strings.Contains(string(p), c.at) {
		c.cancel()
	}
	return c.buf.Write(p)
}

// An interrupted re-encryption continues on the next run (the checkpoint)
// instead of starting over.
func TestResume(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "demo")
	ctx, cancel := context.WithCancel(context.Background())
	out := &cancelAt{at: "  batch 1:", cancel: cancel}
	require.Error(t, run(ctx, out, dir, true), "the interrupted run")
	require.FileExists(t, filepath.Join(dir, "rotation.checkpoint"))

	var again bytes.Buffer
	require.NoError(t, run(context.Background(), &again, dir, true), "the resumed run: %s", again.String())
	assert.Contains(t, again.String(), "resuming the interrupted re-encryption in "+dir)
	assert.NotContains(t, again.String(), "stored ")
	assert.Contains(t, again.String(), ": 400 of 400")
	assert.Equal(t, 2, keyVersions(t, dir))
	assert.NoFileExists(t, filepath.Join(dir, "rotation.checkpoint"))
}

// The run prints a keyward audit verify command that verifies the audit
// log it wrote.
func TestAuditVerifyCommand(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out, dir, true))
	var verify string
	for _, l := range strings.Split(out.String(), "\n") {
		if l, ok := strings.CutPrefix(l, "  keyward audit verify "); ok {
			verify = l
		}
	}
	require.NotEmpty(t, verify, "no verify command in\n%s", out.String())

	bin := filepath.Join(t.TempDir(), "keyward")
	build, err := exec.Command("go", "build", "-o", bin, "../keyward").CombinedOutput()
	require.NoError(t, err, "go build: %s", build)
	sh := func(cmdline string) (string, error) {
		cmd := exec.Command("sh", "-c", cmdline)
		cmd.Dir = dir
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	got, err := sh(bin + " audit verify " + verify)
	require.NoError(t, err, "the printed command: %s", got)
	assert.Contains(t, got, "ok: 1 files, 3 records")

	// The checkpoint in the command notices a record cut from the end.
	files, err := filepath.Glob(filepath.Join(dir, "audit", "audit-*.jsonl"))
	require.NoError(t, err)
	require.Len(t, files, 1)
	b, err := os.ReadFile(files[0])
	require.NoError(t, err)
	lines := strings.SplitAfter(strings.TrimSuffix(string(b), "\n"), "\n")
	require.NoError(t, os.WriteFile(files[0], []byte(strings.Join(lines[:len(lines)-1], "")), 0o600))
	got, err = sh(bin + " audit verify " + verify)
	assert.Error(t, err, "a cut log verified: %s", got)
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := run(context.Background(), &out, dir, true); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"created crypto.key",
		fmt.Sprintf("stored %d customers under data key", customers),
		"rotated: primary data key is now",
		"  batch 4: 400 values done",
		"re-encrypted: scanned 400, rewritten 400, already current 0, skipped 0, failed 0",
		": 400 of 400",
		"customer 042 reads back: card 4111-0000-0000-0042, email c042@example.com",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "rotation.checkpoint")); !os.IsNotExist(err) {
		t.Errorf("checkpoint left after a finished run: %v", err)
	}
	// A second run starts over and says so: no rows or key versions pile
	// up; the key file is reused.
	out.Reset()
	require.NoError(t, run(context.Background(), &out, dir, true), "second run: %s", out.String())
	assert.Contains(t, out.String(), "removed the previous run's demo data in "+dir+" (keys.json, keys.json.lock, rotation.db, audit): starting over")
	assert.Contains(t, out.String(), "re-encrypted: scanned 400, rewritten 400, already current 0")
	assert.NotContains(t, out.String(), "created crypto.key")
	assert.Equal(t, 2, keyVersions(t, dir), "data key versions after the second run")
	raw, err := os.ReadFile(filepath.Join(dir, "rotation.db"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("4111-0000")) || bytes.Contains(raw, []byte("@example.com")) {
		t.Error("rotation.db holds plaintext")
	}
}
