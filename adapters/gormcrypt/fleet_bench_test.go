package gormcrypt_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/adapters/gormcrypt"
	"github.com/keyward/keyward/internal/dbtest"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/rotation"
	"github.com/stretchr/testify/require"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
)

// The fleet re-encryption benchmark: a table of three encrypted columns
// (fleetRow) re-encrypted by ReencryptJob in one or two processes, next to
// a plain batched compare-and-swap UPDATE ... FROM (VALUES ...) of a table
// of the same shape and value lengths without crypto (fleetPlain), in the
// same run. KEYWARD_BENCH_ROWS sets the rows (default 20000; the package
// documentation's figures use 100000 and 1000000).
//
//	KEYWARD_PG_DSN=... KEYWARD_BENCH_ROWS=100000 go test ./adapters/gormcrypt \
//	    -run '^$' -bench 'BenchmarkFleet/postgres' -benchtime 3x -timeout 1h
type fleetRow struct {
	ID int64  `gorm:"primaryKey;autoIncrement:false"`
	A  string `gorm:"serializer:keyward"`
	B  string `gorm:"serializer:keyward"`
	C  string `gorm:"serializer:keyward"`
}

type fleetPlain struct {
	ID      int64 `gorm:"primaryKey;autoIncrement:false"`
	A, B, C string
}

// Settings of the benchmark's job. Both sides use fleetWorkers workers
// (KEYWARD_BENCH_WORKERS, default 4) per process.
const (
	fleetBatch    = 1000
	fleetPartRows = 5000
)

var fleetWorkers = func() int {
	if n, err := strconv.Atoi(os.Getenv("KEYWARD_BENCH_WORKERS")); err == nil && n > 0 {
		return n
	}
	return 4
}()

// The environment of a benchmark child process.
const (
	envFleetChild = "KEYWARD_BENCH_FLEET_CHILD" // the work directory
	envFleetKind  = "KEYWARD_BENCH_FLEET_KIND"
	envFleetDSN   = "KEYWARD_BENCH_FLEET_DSN"
)

func fleetRows(b testing.TB) int {
	n := 20000
	if s := os.Getenv("KEYWARD_BENCH_ROWS"); s != "" {
		v, err := strconv.Atoi(s)
		require.NoError(b, err, "KEYWARD_BENCH_ROWS")
		n = v
	}
	return n
}

// fleetSeed fills fleetRow (encrypted) and fleetPlain (random text of the
// tokens' length) with n rows.
func fleetSeed(b *testing.B, db *gorm.DB, n int) {
	b.Helper()
	require.NoError(b, gormcrypt.AutoMigrate(db, &fleetRow{}))
	require.NoError(b, db.AutoMigrate(&fleetPlain{}))
	const chunk = 2000
	rows := make([]fleetRow, 0, chunk)
	plain := make([]fleetPlain, 0, chunk)
	for i := 1; i <= n; i++ {
		rows = append(rows, fleetRow{ID: int64(i), A: fmt.Sprintf("a value of row %08d", i), B: fmt.Sprintf("b value of row %08d", i), C: fmt.Sprintf("c value of row %08d", i)})
		plain = append(plain, fleetPlain{ID: int64(i), A: randomText(76), B: randomText(76), C: randomText(76)})
		if len(rows) == chunk || i == n {
			require.NoError(b, db.Create(&rows).Error)
			require.NoError(b, db.Create(&plain).Error)
			rows, plain = rows[:0], plain[:0]
		}
	}
	if dbtest.Kind(db) == dbtest.Postgres {
		require.NoError(b, db.Exec("VACUUM ANALYZE fleet_rows").Error)
		require.NoError(b, db.Exec("VACUUM ANALYZE fleet_plains").Error)
	}
}

func randomText(n int) string {
	b := make([]byte, n*3/4+1)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}

// basePass is the baseline: the rows of fleetPlain in batches of
// fleetBatch by key, each batch written back with new values of the same
// length in one UPDATE ... FROM (VALUES ...) with a compare-and-swap on
// the old values, by fleetWorkers workers over disjoint key ranges.
func basePass(b *testing.B, db *gorm.DB, n int) {
	sqlDB, err := db.DB()
	require.NoError(b, err)
	pg := dbtest.Kind(db) == dbtest.Postgres
	ph := func(i int) string {
		if pg {
			return "$" + strconv.Itoa(i)
		}
		return "?"
	}
	var wg sync.WaitGroup
	per := (n + fleetWorkers - 1) / fleetWorkers
	for w := range fleetWorkers {
		lo, hi := int64(w*per), int64(min((w+1)*per, n))
		wg.Go(func() {
			ctx := context.Background()
			type row struct {
				id      int64
				a, b, c string
			}
			batch := make([]row, 0, fleetBatch)
			for cur := lo; cur < hi; {
				rs, err := sqlDB.QueryContext(ctx, "SELECT id, a, b, c FROM fleet_plains WHERE id > "+ph(1)+" AND id <= "+ph(2)+" ORDER BY id LIMIT "+ph(3), cur, hi, fleetBatch)
				if err != nil {
					b.Error(err)
					return
				}
				batch = batch[:0]
				for rs.Next() {
					var r row
					if err := rs.Scan(&r.id, &r.a, &r.b, &r.c); err != nil {
						b.Error(err)
						return
					}
					batch = append(batch, r)
				}
				rs.Close()
				if len(batch) == 0 {
					return
				}
				// The VALUES columns: id, then old and new of a, b, c.
				v := []string{"v.id", "v.oa", "v.na", "v.ob", "v.nb", "v.oc", "v.nc"}
				if !pg {
					for j := range v {
						v[j] = "v.column" + strconv.Itoa(j+1)
					}
				}
				var q strings.Builder
				args := make([]any, 0, len(batch)*7)
				fmt.Fprintf(&q, "UPDATE fleet_plains AS t SET a = %s, b = %s, c = %s FROM (VALUES ", v[2], v[4], v[6])
				for i, r := range batch {
					if i > 0 {
						q.WriteString(", ")
					}
					q.WriteString("(")
					for j := range 7 {
						if j > 0 {
							q.WriteString(", ")
						}
						p := ph(len(args) + j + 1)
						if pg && j == 0 {
							p = "CAST(" + p + " AS bigint)"
						} else if pg {
							p = "CAST(" + p + " AS text)"
						}
						q.WriteString(p)
					}
					q.WriteString(")")
					args = append(args, r.id, r.a, randomText(len(r.a)), r.b, randomText(len(r.b)), r.c, randomText(len(r.c)))
				}
				q.WriteString(") AS v")
				if pg {
					q.WriteString("(id, oa, na, ob, nb, oc, nc)")
				}
				fmt.Fprintf(&q, " WHERE t.id = %s AND t.a = %s AND t.b = %s AND t.c = %s", v[0], v[1], v[3], v[5])
				res, err := sqlDB.ExecContext(ctx, q.String(), args...)
				if err != nil {
					b.Error(err)
					return
				}
				if k, _ := res.RowsAffected(); k != int64(len(batch)) {
					b.Errorf("baseline batch wrote %d of %d rows", k, len(batch))
					return
				}
				cur = batch[len(batch)-1].id
			}
		})
	}
	wg.Wait()
}

func fleetDSN(db *gorm.DB) string {
	switch d := db.Dialector.(type) {
	case *sqlite.Dialector:
		return d.DSN
	case *postgres.Dialector:
		return d.Config.DSN
	}
	return ""
}

// fleetProcesses runs the job in procs child processes at once and returns
// the wall time and the largest peak RSS among them, in bytes.
func fleetProcesses(b *testing.B, db *gorm.DB, dir string, procs int) (time.Duration, int64) {
	b.Helper()
	cmds := make([]*exec.Cmd, procs)
	outs := make([]*bytes.Buffer, procs)
	for i := range cmds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFleetBenchChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), envFleetChild+"="+dir, envFleetKind+"="+dbtest.Kind(db), envFleetDSN+"="+fleetDSN(db))
		outs[i] = new(bytes.Buffer)
		cmd.Stdout, cmd.Stderr = outs[i], outs[i]
		cmds[i] = cmd
	}
	start := time.Now()
	for _, cmd := range cmds {
		require.NoError(b, cmd.Start())
	}
	for i, cmd := range cmds {
		require.NoError(b, cmd.Wait(), "child %d:\n%s", i, outs[i])
		if os.Getenv("KEYWARD_BENCH_VERBOSE") != "" {
			b.Logf("child %d after %s: %s", i, time.Since(start), outs[i])
		}
	}
	wall := time.Since(start)
	var peak int64
	for i, out := range outs {
		sc := bufio.NewScanner(out)
		found := false
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "PEAK RSS "); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				require.NoError(b, err)
				peak, found = max(peak, n), true
			}
		}
		require.True(b, found, "child %d reported no peak RSS:\n%s", i, out)
	}
	return wall, peak
}

// BenchmarkFleet measures, over one table of KEYWARD_BENCH_ROWS rows per
// database:
//
//   - reencrypt/procs=N: ReencryptJob in N processes at once after a
//     rotation: rows/s, base-rows/s of the plain baseline in the same run,
//     ratio (ours/base), and peak-RSS-MiB of the largest job process;
//   - rewrap: Rewrap of 10 data keys to another key-encryption key and
//     back (ms/op: one Rewrap), which touches keys, not rows;
//   - inventory: Inventory of the table (ms/op).
func BenchmarkFleet(b *testing.B) {
	dbtest.EachB(b, func(b *testing.B, db *gorm.DB) {
		ctx := context.Background()
		n := fleetRows(b)
		dir := b.TempDir()
		require.NoError(b, filekey.Generate(filepath.Join(dir, "crypto.key")))
		kr := sharedKeyring(b, dir)
		_, err := gormcrypt.Register(db, kr)
		require.NoError(b, err)
		fleetSeed(b, db, n)
		for _, procs := range []int{1, 2} {
			b.Run(fmt.Sprintf("reencrypt/procs=%d", procs), func(b *testing.B) {
				if procs > 1 && dbtest.Kind(db) == dbtest.SQLite {
					b.Skip("SQLite: one worker holds the job")
				}
				var ours, base time.Duration
				var peak int64
				for b.Loop() {
					b.StopTimer()
					_, err := kr.Rotate(ctx)
					require.NoError(b, err)
					b.StartTimer()
					start := time.Now()
					basePass(b, db, n)
					base += time.Since(start)
					wall, p := fleetProcesses(b, db, dir, procs)
					ours += wall
					peak = max(peak, p)
				}
				runs := float64(b.N)
				b.ReportMetric(float64(n)*runs/ours.Seconds(), "rows/s")
				b.ReportMetric(float64(n)*runs/base.Seconds(), "base-rows/s")
				b.ReportMetric(base.Seconds()/ours.Seconds(), "ratio")
				b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
			})
		}
		b.Run("rewrap", func(b *testing.B) {
			store, err := gormcrypt.NewStore(ctx, db)
			require.NoError(b, err)
			kekA, err := filekey.New(bytes.Repeat([]byte{1}, 32))
			require.NoError(b, err)
			kekB, err := filekey.New(bytes.Repeat([]byte{2}, 32))
			require.NoError(b, err)
			a, err := keyring.New(ctx, "rewrap", kekA, store)
			require.NoError(b, err)
			defer a.Close()
			for range 9 {
				_, err := a.Rotate(ctx)
				require.NoError(b, err)
			}
			krs := []*keyring.Keyring{}
			for _, pair := range [][2]keyring.KeySource{{kekB, kekA}, {kekA, kekB}} {
				k, err := keyring.New(ctx, "rewrap", pair[0], store, keyring.WithPreviousKeySources(pair[1]))
				require.NoError(b, err)
				defer k.Close()
				krs = append(krs, k)
			}
			i := 0
			for b.Loop() {
				m, err := krs[i%2].Rewrap(ctx)
				require.NoError(b, err)
				require.Equal(b, 10, m, "data keys re-wrapped")
				i++
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/op")
		})
		b.Run("inventory", func(b *testing.B) {
			for b.Loop() {
				inv, err := gormcrypt.Inventory(ctx, db)
				require.NoError(b, err)
				var total int64
				for _, h := range inv {
					total += h.Values
				}
				require.Equal(b, int64(3*n), total, "values in the inventory")
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/op")
		})
	})
}

// TestFleetBenchChild is a job process of BenchmarkFleet: it runs
// the job to its end and prints its peak RSS.
func TestFleetBenchChild(t *testing.T) {
	dir := os.Getenv(envFleetChild)
	if dir == "" {
		t.Skip("a child process of BenchmarkFleet")
	}
	ctx := context.Background()
	start := time.Now()
	db := dbtest.OpenDSN(t, os.Getenv(envFleetKind), os.Getenv(envFleetDSN), nil)
	kr := sharedKeyring(t, dir)
	targets, err := gormcrypt.RegistryTargets(ctx, db, kr)
	require.NoError(t, err)
	for _, target := range targets {
		job, err := gormcrypt.NewJob(ctx, target, gormcrypt.WithPartRows(fleetPartRows))
		require.NoError(t, err)
		st, err := rotation.ReencryptJob(ctx, kr, job, rotation.WithWorkers(fleetWorkers), rotation.WithBatchSize(fleetBatch))
		require.NoError(t, err)
		require.Zero(t, st.Failed+st.Skipped, "%+v", st)
	}
	fmt.Printf("PEAK RSS %d\n", peakRSS(t))
	fmt.Printf("ELAPSED %s\n", time.Since(start))
}

// peakRSS returns the process's peak resident set size in bytes (VmHWM).
func peakRSS(t testing.TB) int64 {
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}
