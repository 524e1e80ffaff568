package gormcrypt

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward/rotation"
	"gorm.io/gorm"
)

// Tables of shared re-encryption jobs.
const (
	JobsTable  = "keyward_jobs"
	PartsTable = "keyward_job_parts"
)

// Defaults of a Job.
const (
	DefaultLease    = 30 * time.Second
	DefaultPartRows = 20_000
)

const jobsDDL = `CREATE TABLE IF NOT EXISTS ` + JobsTable + ` (
	job VARCHAR(512) NOT NULL PRIMARY KEY,
	run VARCHAR(512) NOT NULL,
	frontier VARCHAR(4096) NOT NULL,
	exhausted INTEGER NOT NULL,
	done INTEGER NOT NULL,
	total BIGINT NOT NULL,
	updated BIGINT NOT NULL
)`

const partsDDL = `CREATE TABLE IF NOT EXISTS ` + PartsTable + ` (
	job VARCHAR(512) NOT NULL,
	seq BIGINT NOT NULL,
	lo VARCHAR(4096) NOT NULL,
	hi VARCHAR(4096) NOT NULL,
	owner VARCHAR(512) NOT NULL,
	lease_until BIGINT NOT NULL,
	progress VARCHAR(8192) NOT NULL,
	rows_done BIGINT NOT NULL,
	done INTEGER NOT NULL,
	PRIMARY KEY (job, seq)
)`

// Job is a rotation.Job over a Target: re-encryption of one table that
// several workers and processes share through two tables in the same
// database (JobsTable, PartsTable).
//
// On PostgreSQL the table is cut, as the job goes, into ranges of the
// primary key of WithPartRows rows; a worker leases one range at a time,
// renews its lease with every finished batch (the batch's writes and the
// renewal in one transaction, so a worker that lost its lease writes
// nothing), and records its progress in the range. A worker killed with
// SIGKILL stops renewing: once its lease ends (WithLease; at once when it
// ran on the same host and its process is gone) another worker takes its
// range over from the last finished batch. Claims serialize on the job's
// row, so no range is handed out twice.
//
// On SQLite, which has one writer at a time, the job is one range held by
// one worker: another process's ReencryptJob fails with an error wrapping
// rotation.ErrJobBusy that names the process holding it.
//
// The job belongs to the run (the keyring's primary data key): a job of
// another run starts over once no live worker holds a range of it. Times
// are the database's clock.
type Job struct {
	t        *Target
	db       *gorm.DB
	name     string
	owner    string
	host     string
	lease    time.Duration
	partRows int
	single   bool // SQLite: one range, one worker
}

var _ rotation.Job = (*Job)(nil)

// JobOption configures NewJob.
type JobOption interface {
	apply(*jobConfig) error
}

// jobOptionFunc adapts a function to JobOption.
type jobOptionFunc func(*jobConfig) error

func (f jobOptionFunc) apply(c *jobConfig) error { return f(c) }

type jobConfig struct {
	lease    time.Duration
	partRows int
	set      map[string]bool
}

// WithLease sets how long a range stays leased to a worker that does not
// renew it (default DefaultLease). Each finished batch renews it, so it
// must exceed the time of one batch.
func WithLease(d time.Duration) JobOption {
	return jobOptionFunc(func(c *jobConfig) error {
		if d < 100*time.Millisecond {
			return errors.New("gormcrypt: lease must be at least 100ms")
		}
		if c.set["WithLease"] {
			return errors.New("gormcrypt: option WithLease given twice")
		}
		c.lease, c.set["WithLease"] = d, true
		return nil
	})
}

// WithPartRows sets how many rows one range of a PostgreSQL job holds
// (default DefaultPartRows).
func WithPartRows(n int) JobOption {
	return jobOptionFunc(func(c *jobConfig) error {
		if n < 1 {
			return errors.New("gormcrypt: part rows must be positive")
		}
		if c.set["WithPartRows"] {
			return errors.New("gormcrypt: option WithPartRows given twice")
		}
		c.partRows, c.set["WithPartRows"] = n, true
		return nil
	})
}

// NewJob returns the shared job of t, creating the job tables if they do
// not exist.
func NewJob(ctx context.Context, t *Target, opts ...JobOption) (*Job, error) {
	if t == nil {
		return nil, errors.New("gormcrypt: NewJob needs a target")
	}
	cfg := jobConfig{lease: DefaultLease, partRows: DefaultPartRows, set: map[string]bool{}}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("gormcrypt: nil job option")
		}
		if err := o.apply(&cfg); err != nil {
			return nil, err
		}
	}
	host, _ := os.Hostname()
	var tok [4]byte
	_, _ = rand.Read(tok[:])
	j := &Job{
		t: t, db: t.db.WithContext(ctx), name: strings.ToLower(t.table) + "|" + t.kr.Name(),
		owner: host + "/" + strconv.Itoa(os.Getpid()) + "/" + hex.EncodeToString(tok[:]), host: host,
		lease: cfg.lease, partRows: cfg.partRows, single: !t.pg,
	}
	for _, ddl := range []string{jobsDDL, partsDDL} {
		var err error
		for range 3 {
			if err = j.db.Exec(ddl).Error; err == nil {
				break
			}
		}
		if err != nil {
			return nil, fmt.Errorf("gormcrypt: create the job tables: %w", err)
		}
	}
	return j, nil
}

// Owner names this process's workers in the job tables (host/pid/token).
func (j *Job) Owner() string { return j.owner }

// nowMS is the database's clock in Unix milliseconds.
func (j *Job) nowMS() string {
	if j.t.pg {
		return "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"
	}
	return "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
}

// jobRow is the job's row.
type jobRow struct {
	Run       string
	Frontier  string
	Exhausted int64
	Done      int64
}

// partRow is a range's row.
type partRow struct {
	Seq        int64
	Lo, Hi     string
	Owner      string
	LeaseUntil int64
	Progress   string
	RowsDone   int64
	Done       int64
}

// Claim implements rotation.Job.
func (j *Job) Claim(ctx context.Context, run string) (rotation.Part, error) {
	db := j.db.WithContext(ctx)
	// A new job's row names no run: the first claim starts it as a job of
	// another run would be started over.
	err := db.Exec("INSERT INTO "+JobsTable+" (job, run, frontier, exhausted, done, total, updated) VALUES (?, '', '', 0, 0, 0, "+j.nowMS()+") ON CONFLICT (job) DO NOTHING", j.name).Error
	if err != nil {
		return nil, fmt.Errorf("gormcrypt: job %s: %w", j.name, err)
	}
	var part rotation.Part
	finished := false
	err = db.Transaction(func(tx *gorm.DB) error {
		// The first statement writes the job's row: it serializes claims
		// (a row lock on PostgreSQL, the write lock on SQLite).
		if err := tx.Exec("UPDATE "+JobsTable+" SET updated = "+j.nowMS()+" WHERE job = ?", j.name).Error; err != nil {
			return err
		}
		var jr jobRow
		if err := tx.Raw("SELECT run, frontier, exhausted, done FROM "+JobsTable+" WHERE job = ?", j.name).Scan(&jr).Error; err != nil {
			return err
		}
		var now int64
		if err := tx.Raw("SELECT " + j.nowMS()).Scan(&now).Error; err != nil {
			return err
		}
		var parts []partRow
		if err := tx.Raw("SELECT seq, lo, hi, owner, lease_until, progress, rows_done, done FROM "+PartsTable+" WHERE job = ? AND done = 0 ORDER BY seq", j.name).Scan(&parts).Error; err != nil {
			return err
		}
		if jr.Run != run {
			// A job of another run: start over, unless a live worker holds
			// a range of it.
			if err := j.busy(parts, now, true); err != nil {
				return err
			}
			total, err := j.estimate(ctx, tx)
			if err != nil {
				return err
			}
			if err := tx.Exec("DELETE FROM "+PartsTable+" WHERE job = ?", j.name).Error; err != nil {
				return err
			}
			if err := tx.Exec("UPDATE "+JobsTable+" SET run = ?, frontier = '', exhausted = 0, done = 0, total = ? WHERE job = ?", run, total, j.name).Error; err != nil {
				return err
			}
			jr, parts = jobRow{Run: run}, nil
		}
		if jr.Done != 0 {
			return rotation.ErrJobDone
		}
		// A range whose worker is gone.
		for _, p := range parts {
			if p.LeaseUntil <= now || !j.alive(p.Owner) {
				if err := j.take(tx, p.Seq, p.Owner); err != nil {
					return err
				}
				part, err = j.newPart(p)
				return err
			}
		}
		if jr.Exhausted == 0 && (!j.single || len(parts) == 0) {
			p, err := j.cut(ctx, tx, jr.Frontier, len(parts))
			if err != nil {
				return err
			}
			part, err = j.newPart(p)
			return err
		}
		if len(parts) > 0 {
			return j.busy(parts, now, false)
		}
		if err := tx.Exec("UPDATE "+JobsTable+" SET done = 1 WHERE job = ?", j.name).Error; err != nil {
			return err
		}
		finished = true // committed, then reported
		return nil
	})
	if err == nil && finished {
		err = rotation.ErrJobDone
	}
	if err != nil {
		var le *rotation.LeasedError
		if errors.Is(err, rotation.ErrJobDone) || errors.Is(err, rotation.ErrJobBusy) || errors.As(err, &le) {
			return nil, err
		}
		return nil, fmt.Errorf("gormcrypt: job %s: claim: %w", j.name, err)
	}
	return part, nil
}

// busy returns the error for live leases among parts, or nil when there is
// none. otherRun: the leases belong to another run.
func (j *Job) busy(parts []partRow, now int64, otherRun bool) error {
	var first *partRow
	for i, p := range parts {
		if p.Owner != "" && p.LeaseUntil > now && j.alive(p.Owner) {
			if first == nil || p.LeaseUntil < first.LeaseUntil {
				first = &parts[i]
			}
		}
	}
	if first == nil {
		return nil
	}
	until := time.UnixMilli(first.LeaseUntil)
	if j.single && first.Owner != j.owner {
		return fmt.Errorf("%w: job %s is running in process %s (lease until %s)", rotation.ErrJobBusy, j.name, first.Owner, until.UTC().Format(time.RFC3339))
	}
	if otherRun && first.Owner != j.owner {
		return &rotation.LeasedError{Owner: first.Owner + " (a job for another primary key)", Until: until}
	}
	return &rotation.LeasedError{Owner: first.Owner, Until: until}
}

// alive reports whether the worker owner may still run: false only for a
// process of this host that no longer exists.
func (j *Job) alive(owner string) bool {
	parts := strings.Split(owner, "/")
	if len(parts) != 3 || parts[0] != j.host {
		return true
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil || pid == os.Getpid() {
		return true
	}
	return processAlive(pid)
}

// take leases an existing range to this worker.
func (j *Job) take(tx *gorm.DB, seq int64, from string) error {
	res := tx.Exec("UPDATE "+PartsTable+" SET owner = ?, lease_until = "+j.nowMS()+" + ? WHERE job = ? AND seq = ? AND owner = ?",
		j.owner, j.lease.Milliseconds(), j.name, seq, from)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected != 1 {
		return fmt.Errorf("range %d changed while it was claimed", seq)
	}
	return nil
}

// cut hands out the next range after the frontier.
func (j *Job) cut(ctx context.Context, tx *gorm.DB, frontier string, open int) (partRow, error) {
	var after []any
	if frontier != "" {
		var err error
		if after, err = j.t.decodeCursor(frontier); err != nil {
			return partRow{}, err
		}
	}
	hi := ""
	if !j.single {
		end, err := j.t.keyAt(ctx, tx, after, j.partRows)
		if err != nil {
			return partRow{}, err
		}
		if end != nil {
			if hi, err = j.t.encodeCursor(end); err != nil {
				return partRow{}, err
			}
		}
	}
	var seq int64
	if err := tx.Raw("SELECT COALESCE(MAX(seq), 0) + 1 FROM "+PartsTable+" WHERE job = ?", j.name).Scan(&seq).Error; err != nil {
		return partRow{}, err
	}
	p := partRow{Seq: seq, Lo: frontier, Hi: hi, Owner: j.owner}
	err := tx.Exec("INSERT INTO "+PartsTable+" (job, seq, lo, hi, owner, lease_until, progress, rows_done, done) VALUES (?, ?, ?, ?, ?, "+j.nowMS()+" + ?, '', 0, 0)",
		j.name, seq, p.Lo, p.Hi, p.Owner, j.lease.Milliseconds()).Error
	if err != nil {
		return partRow{}, err
	}
	exhausted := 0
	if hi == "" {
		exhausted = 1
	}
	err = tx.Exec("UPDATE "+JobsTable+" SET frontier = ?, exhausted = ? WHERE job = ?", hi, exhausted, j.name).Error
	return p, err
}

// estimate returns about how many rows the table has.
func (j *Job) estimate(ctx context.Context, tx *gorm.DB) (int64, error) {
	var n int64
	if j.t.pg {
		if err := tx.Raw("SELECT CAST(GREATEST(reltuples, 0) AS BIGINT) FROM pg_class WHERE oid = to_regclass(?)", j.t.qtable).Scan(&n).Error; err != nil {
			return 0, err
		}
		if n > 0 {
			return n, nil
		}
	}
	err := tx.Raw("SELECT COUNT(*) FROM " + j.t.qtable).Scan(&n).Error
	return n, err
}

// CountByKey counts the values of the job's table by the key that made
// them (Target.CountByKey), for rotation.ReencryptJob's check of its end
// state.
func (j *Job) CountByKey(ctx context.Context) (map[uint32]int64, error) {
	return j.t.CountByKey(ctx)
}

// Restart marks the finished job of run to be done again: the next claim
// starts it over. rotation.ReencryptJob calls it when values are left
// under other keys at the end.
func (j *Job) Restart(ctx context.Context, run string) error {
	err := j.db.WithContext(ctx).Exec("UPDATE "+JobsTable+" SET run = '' WHERE job = ? AND run = ?", j.name, run).Error
	if err != nil {
		return fmt.Errorf("gormcrypt: job %s: restart: %w", j.name, err)
	}
	return nil
}

// Left implements the rows-left estimate of rotation's job metrics: the
// table's estimated rows less those the job's ranges went through.
func (j *Job) Left(ctx context.Context) (int64, error) {
	var total, done int64
	db := j.db.WithContext(ctx)
	if err := db.Raw("SELECT total FROM "+JobsTable+" WHERE job = ?", j.name).Scan(&total).Error; err != nil {
		return 0, err
	}
	if err := db.Raw("SELECT COALESCE(SUM(rows_done), 0) FROM "+PartsTable+" WHERE job = ?", j.name).Scan(&done).Error; err != nil {
		return 0, err
	}
	return max(total-done, 0), nil
}

// keyAt returns the key n rows after after (nil: from the start), or nil
// when fewer rows are left.
func (t *Target) keyAt(ctx context.Context, db *gorm.DB, after []any, n int) ([]any, error) {
	b := &sqlBuf{pg: t.pg}
	b.WriteString("SELECT " + t.keyList("") + " FROM " + t.qtable)
	if after != nil {
		b.WriteString(" WHERE ")
		t.keyCompare(b, ">", after)
	}
	b.WriteString(" ORDER BY " + t.keyList("") + " LIMIT 1 OFFSET ")
	b.arg(n - 1)
	rows, err := b.query(ctx, db)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	key, _, err := t.scanKey(rows, make([]any, len(t.keys)))
	if err != nil {
		return nil, err
	}
	return key, rows.Err()
}

// jobPart is a leased range of a Job.
//
// Its progress is written with the next batch: Save keeps it, and the next
// SwapAll writes it in the batch's transaction with the lease's renewal,
// so a batch costs one commit. A Save that no SwapAll follows within a
// third of the lease (batches whose values were all current) is written
// on its own. A worker that dies loses at most the progress of its last
// batch, which the next worker goes through again and finds current.
type jobPart struct {
	j         *Job
	seq       int64
	lo, hi    []any  // nil: open
	stored    string // the progress as the range's row holds it
	pending   string // progress saved since, written with the next batch
	sent      string // the progress the last renewal carried
	renewedAt time.Time
	rows      atomic.Int64
}

var (
	_ rotation.Part        = (*jobPart)(nil)
	_ rotation.BatchTarget = (*jobPart)(nil)
	_ rotation.NamedTarget = (*jobPart)(nil)
)

func (j *Job) newPart(p partRow) (*jobPart, error) {
	jp := &jobPart{j: j, seq: p.Seq, stored: p.Progress, pending: p.Progress, renewedAt: time.Now()}
	jp.rows.Store(p.RowsDone)
	var err error
	if p.Lo != "" {
		if jp.lo, err = j.t.decodeCursor(p.Lo); err != nil {
			return nil, err
		}
	}
	if p.Hi != "" {
		if jp.hi, err = j.t.decodeCursor(p.Hi); err != nil {
			return nil, err
		}
	}
	return jp, nil
}

// TargetName implements rotation.NamedTarget: the target's name and the
// range's number, so that one range's progress is not taken for another's.
func (p *jobPart) TargetName() string {
	return p.j.t.TargetName() + "#" + strconv.FormatInt(p.seq, 10)
}

// Scan implements rotation.Target within the range.
func (p *jobPart) Scan(ctx context.Context, cursor string, limit int) ([]rotation.Value, string, error) {
	after := p.lo
	if cursor != "" {
		var err error
		if after, err = p.j.t.decodeCursor(cursor); err != nil {
			return nil, "", err
		}
	}
	vals, last, rows, err := p.j.t.scanRows(ctx, after, p.hi, limit)
	if err != nil || last == nil {
		return nil, cursor, err
	}
	p.rows.Add(int64(rows))
	next, err := p.j.t.encodeCursor(last)
	if err != nil {
		return nil, "", err
	}
	return vals, next, nil
}

// Swap implements rotation.Target.
func (p *jobPart) Swap(ctx context.Context, v rotation.Value, token []byte) (bool, error) {
	w, err := p.SwapAll(ctx, []rotation.Swap{{Value: v, Token: token}})
	if err != nil {
		return false, err
	}
	return w[0], nil
}

// SwapAll implements rotation.BatchTarget: the batch's writes, the
// renewal of the lease and the progress saved before, in one statement on
// PostgreSQL and one transaction on SQLite; nothing is written once the
// lease is lost.
func (p *jobPart) SwapAll(ctx context.Context, swaps []rotation.Swap) ([]bool, error) {
	return p.j.t.swapAll(ctx, swaps, (*partGuard)(p))
}

// partGuard is a range's batchGuard.
type partGuard jobPart

var _ batchGuard = (*partGuard)(nil)

// cte implements batchGuard: the renewal as a data-modifying CTE.
func (g *partGuard) cte(b *sqlBuf) {
	p := (*jobPart)(g)
	b.WriteString("WITH kw_lease AS (UPDATE " + PartsTable + " SET lease_until = " + p.j.nowMS() + " + ")
	b.arg(p.j.lease.Milliseconds())
	b.WriteString(", rows_done = ")
	b.arg(p.rows.Load())
	if p.pending != p.stored {
		b.WriteString(", progress = ")
		b.arg(p.pending)
	}
	b.WriteString(" WHERE job = ")
	b.arg(p.j.name)
	b.WriteString(" AND seq = ")
	b.arg(p.seq)
	b.WriteString(" AND owner = ")
	b.arg(p.j.owner)
	b.WriteString(" AND done = 0 RETURNING 1) ")
	g.sent = p.pending
}

// renew implements batchGuard.
func (g *partGuard) renew(tx *gorm.DB) error {
	g.sent = g.pending
	return (*jobPart)(g).renew(tx)
}

// held implements batchGuard.
func (g *partGuard) held(ctx context.Context) error {
	p := (*jobPart)(g)
	var n int64
	err := p.j.db.WithContext(ctx).Raw("SELECT COUNT(*) FROM "+PartsTable+" WHERE job = ? AND seq = ? AND owner = ? AND done = 0",
		p.j.name, p.seq, p.j.owner).Scan(&n).Error
	if err != nil {
		return fmt.Errorf("gormcrypt: job %s: check the lease of range %d: %w", p.j.name, p.seq, err)
	}
	if n != 1 {
		return fmt.Errorf("%w (job %s, range %d)", rotation.ErrLeaseLost, p.j.name, p.seq)
	}
	return nil
}

// renewed implements batchGuard: the progress sent is now stored.
func (g *partGuard) renewed() { g.stored, g.renewedAt = g.sent, time.Now() }

// renew extends the lease and writes the pending progress.
func (p *jobPart) renew(db *gorm.DB) error {
	q := "UPDATE " + PartsTable + " SET lease_until = " + p.j.nowMS() + " + ?, rows_done = ?"
	args := []any{p.j.lease.Milliseconds(), p.rows.Load()}
	progress := p.pending
	if progress != p.stored {
		q += ", progress = ?"
		args = append(args, progress)
	}
	q += " WHERE job = ? AND seq = ? AND owner = ? AND done = 0"
	args = append(args, p.j.name, p.seq, p.j.owner)
	res := db.Exec(q, args...)
	if res.Error != nil {
		return fmt.Errorf("gormcrypt: job %s: renew the lease of range %d: %w", p.j.name, p.seq, res.Error)
	}
	if res.RowsAffected != 1 {
		return fmt.Errorf("%w (job %s, range %d)", rotation.ErrLeaseLost, p.j.name, p.seq)
	}
	return nil
}

// Load implements rotation.Checkpoint: the range's progress.
func (p *jobPart) Load(ctx context.Context) (rotation.Progress, bool, error) {
	if p.pending == "" {
		return rotation.Progress{}, false, nil
	}
	var pr rotation.Progress
	if err := json.Unmarshal([]byte(p.pending), &pr); err != nil {
		return rotation.Progress{}, false, fmt.Errorf("%w: job %s range %d: progress does not decode", rotation.ErrCheckpoint, p.j.name, p.seq)
	}
	return pr, true, nil
}

// Save implements rotation.Checkpoint: the progress is written with the
// next batch, or now when the lease needs renewing.
func (p *jobPart) Save(ctx context.Context, pr rotation.Progress) error {
	b, err := json.Marshal(pr)
	if err != nil {
		return fmt.Errorf("%w: %w", rotation.ErrCheckpoint, err)
	}
	p.pending = string(b)
	if time.Since(p.renewedAt) < p.j.lease/3 {
		return nil
	}
	if err := p.renew(p.j.db.WithContext(ctx)); err != nil {
		return err
	}
	p.stored, p.renewedAt = p.pending, time.Now()
	return nil
}

// Clear implements rotation.Checkpoint: the range is done.
func (p *jobPart) Clear(ctx context.Context) error {
	res := p.j.db.WithContext(ctx).Exec("UPDATE "+PartsTable+" SET done = 1, owner = '', progress = '', rows_done = ? WHERE job = ? AND seq = ? AND owner = ?",
		p.rows.Load(), p.j.name, p.seq, p.j.owner)
	if res.Error != nil {
		return fmt.Errorf("gormcrypt: job %s: finish range %d: %w", p.j.name, p.seq, res.Error)
	}
	if res.RowsAffected != 1 {
		return fmt.Errorf("%w (job %s, range %d)", rotation.ErrLeaseLost, p.j.name, p.seq)
	}
	return nil
}

// Release implements rotation.Part: the pending progress is written.
func (p *jobPart) Release(ctx context.Context) error {
	err := p.j.db.WithContext(ctx).Exec("UPDATE "+PartsTable+" SET owner = '', lease_until = 0, progress = ?, rows_done = ? WHERE job = ? AND seq = ? AND owner = ?",
		p.pending, p.rows.Load(), p.j.name, p.seq, p.j.owner).Error
	if err != nil {
		return fmt.Errorf("gormcrypt: job %s: release range %d: %w", p.j.name, p.seq, err)
	}
	return nil
}
