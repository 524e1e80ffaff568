package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/adapters/gormcrypt"
	"github.com/keyward/keyward/keyring"
)

// cliPatient is the application's model in the CLI tests.
type cliPatient struct {
	ID    uint
	SSN   string `gorm:"serializer:keyward"`
	Email string `gorm:"serializer:keyward"`
}

func (cliPatient) TableName() string { return "patients" }

// app is an application's SQLite database with its keyring store, column
// registry and n patients, and its key file, in dir.
type app struct {
	dir, key, db string
	n            int
}

func openApp(t *testing.T, path string) (*gorm.DB, *keyring.Keyring) {
	t.Helper()
	ctx := context.Background()
	db, err := gorm.Open(sqlite.Open(path+"?_pragma=busy_timeout(10000)"), &gorm.Config{Logger: logger.Discard})
	require.NoError(t, err)
	t.Cleanup(func() {
		if s, err := db.DB(); err == nil {
			s.Close()
		}
	})
	store, err := gormcrypt.NewStore(ctx, db)
	require.NoError(t, err)
	src, err := filekey.Open(filepath.Join(filepath.Dir(path), "crypto.key"))
	require.NoError(t, err)
	kr, err := keyring.New(ctx, "default", src, store)
	require.NoError(t, err)
	t.Cleanup(func() { kr.Close() })
	_, err = gormcrypt.Register(db, kr)
	require.NoError(t, err)
	return db, kr
}

func newApp(t *testing.T, n int) app {
	t.Helper()
	dir := t.TempDir()
	a := app{dir: dir, key: filepath.Join(dir, "crypto.key"), db: filepath.Join(dir, "app.db"), n: n}
	require.NoError(t, filekey.Generate(a.key))
	db, kr := openApp(t, a.db)
	require.NoError(t, gormcrypt.AutoMigrate(db, &cliPatient{}))
	for i := range n {
		require.NoError(t, db.Create(&cliPatient{SSN: fmt.Sprintf("ssn-%d", i), Email: fmt.Sprintf("p%d@example.com", i)}).Error)
	}
	require.NoError(t, kr.Close(), "the application stops: its counts go to the store")
	return a
}

// tables lists the tables of the app's database.
func (a app) tables(t *testing.T) []string {
	t.Helper()
	db, err := gorm.Open(sqlite.Open("file:"+a.db+"?mode=ro"), &gorm.Config{Logger: logger.Discard})
	require.NoError(t, err)
	defer func() { s, _ := db.DB(); s.Close() }()
	var names []string
	require.NoError(t, db.Raw("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").Scan(&names).Error)
	return names
}

// age makes the key state changes of the app's keyring look a year old,
// as if the settle time had passed since (every process has reloaded).
func (a app) age(t *testing.T) {
	t.Helper()
	db, err := gorm.Open(sqlite.Open(a.db+"?_pragma=busy_timeout(10000)"), &gorm.Config{Logger: logger.Discard})
	require.NoError(t, err)
	defer func() { s, _ := db.DB(); s.Close() }()
	for _, col := range []string{"retired", "disabled"} {
		require.NoError(t, db.Exec("UPDATE keyward_keys SET "+col+" = ? WHERE "+col+" IS NOT NULL", time.Now().AddDate(-1, 0, 0).UTC()).Error)
	}
}

func (a app) run(t *testing.T, args ...string) result {
	t.Helper()
	return keyward(t, a.dir, "", args...)
}

// keysJSON runs keys list --json.
func (a app) keysJSON(t *testing.T) []keyInfo {
	t.Helper()
	r := a.run(t, "keys", "list", "--store", a.db, "--json")
	require.Equal(t, 0, r.code, "keys list: %s", r.stderr)
	var out []keyInfo
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), "keys list --json output %q", r.stdout)
	return out
}

func (a app) inventory(t *testing.T) map[uint32]int64 {
	t.Helper()
	r := a.run(t, "keys", "inventory", "--store", a.db, "--json")
	require.Equal(t, 0, r.code, "keys inventory: %s", r.stderr)
	var hs []holding
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &hs))
	out := map[uint32]int64{}
	for _, h := range hs {
		out[h.KeyID] += h.Values
	}
	return out
}

func TestKeysReadOnlyCommands(t *testing.T) {
	a := newApp(t, 3)
	before := a.tables(t)
	for _, args := range [][]string{
		{"keys", "list", "--store", a.db},
		{"keys", "list", "--store", a.db, "--json"},
		{"keys", "inventory", "--store", a.db},
		{"reencrypt", "--store", a.db, "--dry-run"},
	} {
		r := a.run(t, args...)
		assert.Equal(t, 0, r.code, "%v: %s", args, r.stderr)
	}
	assert.Equal(t, before, a.tables(t), "read-only commands changed the tables")
	for _, missing := range []string{"missing.db", "missing.json"} {
		for _, args := range [][]string{{"keys", "list"}, {"keys", "inventory"}, {"reencrypt", "--dry-run"}} {
			r := a.run(t, append(args, "--store", missing)...)
			assert.Equal(t, 1, r.code, "%v --store %s: %+v", args, missing, r)
			assert.Contains(t, r.stderr, "missing", "%v: the error names the store", args)
			assert.NoFileExists(t, filepath.Join(a.dir, missing), "%v created the missing store", args)
		}
	}
	keys := a.keysJSON(t)
	require.Len(t, keys, 1)
	assert.Equal(t, "active", keys[0].State)
	require.NotNil(t, keys[0].Values, "values of the key")
	assert.Equal(t, int64(6), *keys[0].Values, "3 patients, 2 encrypted columns")
	require.NotNil(t, keys[0].Encryptions)
	assert.Equal(t, uint64(6), *keys[0].Encryptions, "the application's encryptions, counted in the store")
}

func TestKeysLifecycle(t *testing.T) {
	a := newApp(t, 20)
	old := a.keysJSON(t)[0].ID
	r := a.run(t, "keys", "rotate", "-k", a.key, "--store", a.db)
	require.Equal(t, 0, r.code, "rotate: %s", r.stderr)
	keys := a.keysJSON(t)
	require.Len(t, keys, 2)
	cur := keys[1].ID
	assert.Equal(t, map[uint32]int64{old: 40}, a.inventory(t), "inventory after the rotation")

	r = a.run(t, "keys", "disable", fmt.Sprint(old), "-k", a.key, "--store", a.db)
	assert.Equal(t, 1, r.code, "disable of a key that was the primary a moment ago: %+v", r)
	assert.Contains(t, r.stderr, "too recently")
	a.age(t)
	r = a.run(t, "keys", "disable", fmt.Sprint(old), "-k", a.key, "--store", a.db)
	require.Equal(t, 0, r.code, "disable: %s", r.stderr)
	a.age(t)
	r = a.run(t, "keys", "destroy", fmt.Sprint(old), "-k", a.key, "--store", a.db)
	assert.Equal(t, 1, r.code, "destroy of a key 40 values use: %+v", r)
	assert.Contains(t, r.stderr, "still in use")
	r = a.run(t, "keys", "enable", fmt.Sprint(old), "-k", a.key, "--store", a.db)
	require.Equal(t, 0, r.code, "enable: %s", r.stderr)

	r = a.run(t, "reencrypt", "--store", a.db, "--dry-run")
	require.Equal(t, 0, r.code, "dry run: %s", r.stderr)
	assert.Contains(t, r.stdout, "40 values to re-encrypt")
	assert.NotContains(t, a.tables(t), gormcrypt.JobsTable, "a dry run created the job tables")

	r = a.run(t, "reencrypt", "-k", a.key, "--store", a.db, "--batch", "7")
	require.Equal(t, 0, r.code, "reencrypt: %s", r.stderr)
	assert.Contains(t, r.stdout, "re-encrypted 40 values")
	assert.Contains(t, r.stderr, "", "progress goes to stderr")
	assert.Equal(t, map[uint32]int64{cur: 40}, a.inventory(t), "inventory after re-encryption")

	r = a.run(t, "keys", "disable", fmt.Sprint(old), "-k", a.key, "--store", a.db)
	require.Equal(t, 0, r.code, "disable: %s", r.stderr)
	a.age(t)
	r = a.run(t, "keys", "destroy", fmt.Sprint(old), "-k", a.key, "--store", a.db)
	require.Equal(t, 0, r.code, "destroy of an unused key: %s", r.stderr)
	keys = a.keysJSON(t)
	assert.Equal(t, "destroyed", keys[0].State)

	// The application reads every row under the new key.
	db, _ := openApp(t, a.db)
	var ps []cliPatient
	require.NoError(t, db.Order("id").Find(&ps).Error)
	require.Len(t, ps, 20)
	assert.Equal(t, "ssn-19", ps[19].SSN)
}

func TestKeysDestroyForce(t *testing.T) {
	a := newApp(t, 4)
	old := a.keysJSON(t)[0].ID
	require.Equal(t, 0, a.run(t, "keys", "rotate", "-k", a.key, "--store", a.db).code)
	a.age(t)
	require.Equal(t, 0, a.run(t, "keys", "disable", fmt.Sprint(old), "-k", a.key, "--store", a.db).code)
	r := a.run(t, "keys", "destroy", fmt.Sprint(old), "--force", "-k", a.key, "--store", a.db)
	require.Equal(t, 0, r.code, "forced destroy: %s", r.stderr)
	assert.Contains(t, r.stdout, "8 stored values can no longer be read", "the forced destroy names what it destroyed")
}

func TestKeysRewrap(t *testing.T) {
	a := newApp(t, 2)
	next := filepath.Join(a.dir, "next.key")
	require.NoError(t, filekey.Generate(next))
	r := a.run(t, "keys", "rewrap", "-k", a.key, "--store", a.db, "--to", "-k", next)
	require.Equal(t, 0, r.code, "rewrap: %s", r.stderr)
	assert.Contains(t, r.stdout, "re-wrapped 1 data keys")
	r = a.run(t, "keys", "rotate", "-k", next, "--store", a.db)
	assert.Equal(t, 0, r.code, "rotate with the new key: %s", r.stderr)

	// The old key file, and a key the keyring never had, are named as what
	// they are, with the ways out.
	other := filepath.Join(a.dir, "other.key")
	require.NoError(t, filekey.Generate(other))
	for _, k := range []string{a.key, other} {
		r = a.run(t, "keys", "rotate", "-k", k, "--store", a.db)
		assert.Equal(t, 1, r.code, "rotate with %s: %+v", k, r)
		assert.Contains(t, r.stderr, "the keyring in the database was made with another key-encryption key", "rotate with %s", k)
		assert.Contains(t, r.stderr, "start over by dropping its keyring tables (keyward_keysets, keyward_keys, keyward_key_counts)")
	}
}

func TestFleetUsageErrors(t *testing.T) {
	a := newApp(t, 1)
	for _, args := range [][]string{
		{"keys"},
		{"keys", "frobnicate"},
		{"keys", "list"},
		{"keys", "destroy", "--store", a.db, "-k", a.key},
		{"keys", "disable", "x", "--store", a.db, "-k", a.key},
		{"keys", "rotate", "--store", a.db},
		{"keys", "rewrap", "-k", a.key, "--store", a.db},
		{"reencrypt", "--store", a.db, "--workers", "0"},
		{"reencrypt", "--store", a.db, "--bogus"},
	} {
		r := a.run(t, args...)
		assert.Equal(t, 2, r.code, "%v: %+v", args, r)
	}
}

// TestReencryptStopAndResume interrupts a slow re-encryption with SIGINT:
// it stops after the current batch, and a second run finishes from there.
func TestReencryptStopAndResume(t *testing.T) {
	a := newApp(t, 30)
	require.Equal(t, 0, a.run(t, "keys", "rotate", "-k", a.key, "--store", a.db).code)
	cmd := exec.Command(bin, "reencrypt", "-k", a.key, "--store", a.db, "--batch", "2", "--workers", "1", "--rate", "20")
	cmd.Dir = a.dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	sc := bufio.NewScanner(out)
	require.True(t, sc.Scan(), "reencrypt printed its plan")
	assert.Contains(t, sc.Text(), "60 of 60 values")
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	var rest strings.Builder
	for sc.Scan() {
		rest.WriteString(sc.Text() + "\n")
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "interrupted run: %s", stderr.String())
	assert.Equal(t, 1, ee.ExitCode())
	assert.Contains(t, stderr.String(), "stopping after the current batch")
	assert.Contains(t, stderr.String(), "run keyward reencrypt again to resume")

	left := a.inventory(t)
	keys := a.keysJSON(t)
	cur := keys[len(keys)-1].ID
	require.Less(t, left[cur], int64(60), "the interrupted run did not finish: %v", left)

	r := a.run(t, "reencrypt", "-k", a.key, "--store", a.db)
	require.Equal(t, 0, r.code, "resumed run: %s", r.stderr)
	assert.Equal(t, map[uint32]int64{cur: 60}, a.inventory(t), "after the resumed run")
	var rewritten int
	_, err = fmt.Sscanf(lastLine(r.stdout), "re-encrypted %d values", &rewritten)
	require.NoError(t, err, "the resumed run's summary %q", r.stdout)
	assert.Equal(t, 60-int(left[cur]), rewritten, "the resumed run re-encrypted only what was left")
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
