package gormcrypt_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/adapters/gormcrypt"
	"github.com/keyward/keyward/internal/dbtest"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/rotation"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
)

// The environment of the child process of TestTargetKilledMidRun.
const (
	envKillChild = "KEYWARD_TEST_ROTATION_CHILD" // the work directory
	envKillKind  = "KEYWARD_TEST_ROTATION_KIND"
	envKillDSN   = "KEYWARD_TEST_ROTATION_DSN"
	envKillMode  = "KEYWARD_TEST_ROTATION_MODE"
)

const (
	killBatch     = 5 // rows per batch
	killAfter     = 3 // batches checkpointed before the child stops
	killMidBatch  = 7 // values the child rewrites in the next batch before it stops
	killPatients  = 40
	killCheckFile = "rotation.checkpoint"
)

// sharedKeyring opens the keyring of dir (key file and file store), as
// both processes do.
func sharedKeyring(t testing.TB, dir string) *keyring.Keyring {
	t.Helper()
	src, err := filekey.Open(filepath.Join(dir, "crypto.key"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := keyring.NewFileStore(filepath.Join(dir, "keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.New(context.Background(), "kill", src, store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kr.Close() })
	return kr
}

// TestTargetKilledMidRun runs Reencrypt in a child process (this test
// binary again), kills it with SIGKILL in the middle of a batch, after
// some batches were checkpointed, and resumes the job here: every row must
// read back through GORM as it was written, under the new primary key.
//
// In mode "value" the child writes value by value (Swap) and is killed
// after killMidBatch values of the batch; in mode "batch" it writes the
// batch in one transaction (SwapAll) and is killed inside it, after
// killMidBatch UPDATEs, so none of them may be seen.
func TestTargetKilledMidRun(t *testing.T) {
	for _, kind := range []string{dbtest.SQLite, dbtest.Postgres} {
		for _, mode := range []string{"value", "batch"} {
			t.Run(kind+"/"+mode, func(t *testing.T) { killMidRun(t, kind, mode) })
		}
	}
}

func killMidRun(t *testing.T, kind, mode string) {
	ctx := context.Background()
	db := dbtest.Open(t, kind, nil)
	dir := t.TempDir()
	if err := filekey.Generate(filepath.Join(dir, "crypto.key")); err != nil {
		t.Fatal(err)
	}
	kr := sharedKeyring(t, dir)
	if _, err := gormcrypt.Register(db, kr); err != nil {
		t.Fatal(err)
	}
	if err := db.AutoMigrate(&Company{}, &Patient{}, &Visit{}); err != nil {
		t.Fatal(err)
	}
	want := map[string]*Patient{}
	for i := range killPatients {
		p := newPatient(fmt.Sprint(i))
		p.SSN = fmt.Sprintf("SSN-%03d", i)
		if err := db.Create(p).Error; err != nil {
			t.Fatal(err)
		}
		want[p.ID.String()] = p
	}
	if _, err := kr.Rotate(ctx); err != nil {
		t.Fatal(err)
	}

	var dsn string
	switch d := db.Dialector.(type) {
	case *sqlite.Dialector:
		dsn = d.DSN
	case *postgres.Dialector:
		dsn = d.Config.DSN
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestTargetKillChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envKillChild+"="+dir, envKillKind+"="+kind, envKillDSN+"="+dsn, envKillMode+"="+mode)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var unlock func()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A watchdog, should the child hang before the kill point.
	watchdog := time.AfterFunc(2*time.Minute, func() { _ = cmd.Process.Kill() })
	defer watchdog.Stop()
	// Wait for the child to say it stopped mid-batch, then kill it.
	var lines []string
	stoppedAt := false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if sc.Text() == "READY" {
			unlock = lockTable(t, db, "patients")
			fmt.Fprintln(in, "go")
		}
		if strings.HasPrefix(sc.Text(), "KILL ME") {
			stoppedAt = true
			break
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if unlock != nil {
		unlock()
	}
	if !stoppedAt {
		t.Fatalf("the child exited without reaching the kill point:\n%s\n%s", strings.Join(lines, "\n"), stderr.String())
	}

	cp, err := rotation.NewFileCheckpoint(filepath.Join(dir, killCheckFile))
	if err != nil {
		t.Fatal(err)
	}
	p, ok, err := cp.Load(ctx)
	if err != nil || !ok || p.Cursor == "" {
		t.Fatalf("checkpoint after the kill = %+v, %v, %v; want progress", p, ok, err)
	}

	target, err := gormcrypt.NewTarget(db, &Patient{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := rotation.Reencrypt(ctx, kr, target, rotation.WithCheckpoint(cp), rotation.WithBatchSize(killBatch))
	if err != nil {
		t.Fatal(err)
	}
	// The resumed run starts after the checkpointed batches; the
	// values the killed batch rewrote are current.
	rows := killPatients - killAfter*killBatch
	switch mode {
	case "value":
		current := killMidBatch
		if !st.Resumed || st.Current != int64(current) || st.Scanned != int64(rows*6) || st.Rewritten != int64(rows*6-current) {
			t.Errorf("resumed run = %+v; want %d values from the checkpoint, %d of them current", st, rows*6, current)
		}
	case "batch":
		// The killed batch is one statement: it wrote nothing, or (when
		// the server ran it after the client died, once the lock was
		// released) all of it, seen as current or, when it landed after
		// the resumed run read the batch, as compare-and-swap misses.
		done := st.Current + st.Skipped
		if !st.Resumed || st.Scanned != int64(rows*6) || (done != 0 && done != killBatch*6) || st.Rewritten != int64(rows*6)-done {
			t.Errorf("resumed run = %+v; want %d values from the checkpoint, the killed batch all or nothing", st, rows*6)
		}
	}
	if _, ok, _ := cp.Load(ctx); ok {
		t.Error("checkpoint left after the run finished")
	}
	if n := checkUnder(t, db, "patients", kr.Primary()); n != killPatients*6 {
		t.Errorf("%d values under the primary, want %d", n, killPatients*6)
	}
	var got []Patient
	if err := db.Find(&got).Error; err != nil {
		t.Fatal(err)
	}
	if len(got) != killPatients {
		t.Fatalf("Find returned %d patients, want %d", len(got), killPatients)
	}
	for _, g := range got {
		w := want[g.ID.String()]
		if w == nil || g.SSN != w.SSN || g.Email != w.Email || string(g.Notes) != string(w.Notes) ||
			*g.Phone != *w.Phone || g.Info.Blood != w.Info.Blood || g.Tags["ward"] != w.Tags["ward"] {
			t.Errorf("patient %s reads back differently", g.ID)
		}
	}
}

// lockTable keeps every other connection from writing table until the
// returned function is called.
func lockTable(t *testing.T, db *gorm.DB, table string) func() {
	t.Helper()
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := sqlDB.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	lock := []string{"BEGIN IMMEDIATE"}
	if dbtest.Kind(db) == dbtest.Postgres {
		lock = []string{"BEGIN", "LOCK TABLE " + table + " IN EXCLUSIVE MODE"}
	}
	for _, q := range lock {
		if _, err := conn.ExecContext(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	return func() {
		_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
		conn.Close()
	}
}

// stallingTarget stops the job for good in the middle of a batch: after
// killAfter batches are checkpointed it lets killMidBatch more values be
// rewritten, says so on stdout, and blocks every later write.
type stallingTarget struct {
	rotation.Target // not a BatchTarget: value by value
	batches         atomic.Int64
	mu              sync.Mutex
	swapped         int
	said            bool
}

// TargetName passes the wrapped target's name on: the checkpoint's MAC
// binds it, and the parent resumes with the unwrapped target.
func (s *stallingTarget) TargetName() string { return s.Target.(rotation.NamedTarget).TargetName() }

func (s *stallingTarget) Swap(ctx context.Context, v rotation.Value, token []byte) (bool, error) {
	if s.batches.Load() < killAfter {
		return s.Target.Swap(ctx, v, token)
	}
	s.mu.Lock()
	if s.swapped < killMidBatch {
		defer s.mu.Unlock()
		ok, err := s.Target.Swap(ctx, v, token)
		if ok {
			s.swapped++
		}
		return ok, err
	}
	if !s.said {
		s.said = true
		fmt.Printf("KILL ME after %d values\n", s.swapped)
	}
	s.mu.Unlock()
	<-ctx.Done() // until the parent kills the process
	return false, ctx.Err()
}

// blockedBatch is a BatchTarget whose SwapAll, after killAfter batches,
// says "READY", waits for a line on stdin (the parent locked the table),
// says "KILL ME" and writes, which blocks until the parent kills it.
type blockedBatch struct {
	rotation.BatchTarget
	st *stallingTarget
}

// TargetName is the target's: the checkpoint names it.
func (b *blockedBatch) TargetName() string { return b.st.TargetName() }

func (b *blockedBatch) SwapAll(ctx context.Context, swaps []rotation.Swap) ([]bool, error) {
	if b.st.batches.Load() >= killAfter {
		fmt.Println("READY")
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			return nil, err
		}
		fmt.Printf("KILL ME in a batch of %d values\n", len(swaps))
	}
	return b.BatchTarget.SwapAll(ctx, swaps)
}

// TestTargetKillChild is the child process of TestTargetKilledMidRun.
func TestTargetKillChild(t *testing.T) {
	dir := os.Getenv(envKillChild)
	if dir == "" {
		t.Skip("the child process of TestTargetKilledMidRun")
	}
	db := dbtest.OpenDSN(t, os.Getenv(envKillKind), os.Getenv(envKillDSN), nil)
	kr := sharedKeyring(t, dir)
	if _, err := gormcrypt.Register(db, kr); err != nil {
		t.Fatal(err)
	}
	target, err := gormcrypt.NewTarget(db, &Patient{})
	if err != nil {
		t.Fatal(err)
	}
	cp, err := rotation.NewFileCheckpoint(filepath.Join(dir, killCheckFile))
	if err != nil {
		t.Fatal(err)
	}
	st := &stallingTarget{Target: target}
	var run rotation.Target = st
	if os.Getenv(envKillMode) == "batch" {
		// Stop inside SwapAll: after killAfter batches, wait for the
		// parent to lock the table, then write (and block on the lock).
		run = &blockedBatch{BatchTarget: target, st: st}
	}
	_, err = rotation.Reencrypt(context.Background(), kr, run, rotation.WithCheckpoint(cp),
		rotation.WithBatchSize(killBatch), rotation.WithWorkers(2),
		rotation.WithProgress(func(s rotation.Stats) { st.batches.Store(s.Batches) }))
	t.Fatalf("Reencrypt returned (%v) instead of being killed", err)
}
