package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/internal/dbtest"
	"github.com/keyward/keyward/keyring"
	"gorm.io/driver/postgres"
)

// checkOutput checks one run's output.
func checkOutput(t *testing.T, out string, first bool) {
	t.Helper()
	want := []string{
		"lookup Email = \"  ADA@Example.com \" (blind index):",
		"  Ada Lovelace, SSN 123-45-6789, ada@example.com, hypertension",
		"the stored row:",
		"  ssn       kw1.",
		"  email     kw1.",
		"  diagnosis kw1.",
		"tampered token:             refused (gormcrypt: decrypt patients.ssn:",
		"token moved to another row: refused (gormcrypt: decrypt patients.ssn: keyring: decryption failed",
	}
	if first {
		want = append(want, "stored patient", "created ")
	} else {
		want = append(want, "found  patient", "using ")
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	// The raw row shows tokens only.
	_, after, _ := strings.Cut(out, "the stored row:")
	row, _, _ := strings.Cut(after, "tampered")
	for _, secret := range []string{"123-45-6789", "ada@example.com", "hypertension"} {
		if strings.Contains(row, secret) {
			t.Errorf("the stored row shows %q", secret)
		}
	}
}

func TestRun(t *testing.T) {
	kinds := []string{dbtest.SQLite, dbtest.Postgres}
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			dsn := ""
			if kind == dbtest.Postgres {
				db := dbtest.Open(t, kind, nil)
				dsn = db.Dialector.(*postgres.Dialector).Config.DSN
			}
			for i, first := range []bool{true, false} {
				var out bytes.Buffer
				if err := run(context.Background(), &out, dir, dsn); err != nil {
					t.Fatalf("run %d: %v\n%s", i+1, err, out.String())
				}
				checkOutput(t, out.String(), first)
			}
			fi, err := os.Stat(filepath.Join(dir, "crypto.key"))
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("crypto.key: %v, %v", fi, err)
			}
			if kind == dbtest.SQLite {
				raw, err := os.ReadFile(filepath.Join(dir, "quickstart.db"))
				if err != nil {
					t.Fatal(err)
				}
				for _, secret := range []string{"123-45-6789", "ada@example.com", "hypertension", "asthma"} {
					if bytes.Contains(raw, []byte(secret)) {
						t.Errorf("quickstart.db contains %q", secret)
					}
				}
			}
		})
	}
}

// TestCommand builds the program and runs it as a user would, in an empty
// working directory, with no PostgreSQL configured.
func TestCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	bin := filepath.Join(t.TempDir(), "quickstart")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	work := t.TempDir()
	for i, first := range []bool{true, false} {
		cmd := exec.Command(bin)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "KEYWARD_PG_DSN=")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("run %d: %v\n%s", i+1, err, out)
		}
		checkOutput(t, string(out), first)
	}
	for _, f := range []string{"crypto.key", "quickstart.db"} {
		fi, err := os.Stat(filepath.Join(work, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v; want mode 0600", f, fi, err)
		}
	}
}

// TestLostKey: a run after crypto.key was lost, or replaced by another
// key, names the situation and the ways out, and makes no new key over
// the database's keyring.
func TestLostKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "dir") // made by the run
	require.NoError(t, run(context.Background(), io.Discard, dir, ""))
	keyPath := filepath.Join(dir, "crypto.key")
	require.NoError(t, os.Remove(keyPath))

	err := run(context.Background(), io.Discard, dir, "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "crypto.key is missing and the keyring in "+filepath.Join(dir, "quickstart.db")+" was made with it")
	assert.Contains(t, err.Error(), "restore the key file it was made with, or start over by deleting "+filepath.Join(dir, "quickstart.db"))
	assert.NoFileExists(t, keyPath, "a new key made over the keyring")

	require.NoError(t, filekey.Generate(keyPath))
	err = run(context.Background(), io.Discard, dir, "")
	require.ErrorIs(t, err, keyring.ErrWrongKEK)
	assert.Contains(t, err.Error(), "the keyring in "+filepath.Join(dir, "quickstart.db")+" was made with another key-encryption key than "+keyPath)
	assert.Contains(t, err.Error(), "start over by deleting")

	// Starting over as the message says works.
	require.NoError(t, os.Remove(filepath.Join(dir, "quickstart.db")))
	require.NoError(t, run(context.Background(), io.Discard, dir, ""))
}
