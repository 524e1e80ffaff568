package access

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keyward/keyward/internal/fsutil"
)

// SyncPolicy says when an AuditLog forces its records to stable storage
// (fsync). The zero value is SyncEachRecord.
type SyncPolicy struct {
	mode     syncMode
	count    int
	interval time.Duration
}

type syncMode int

const (
	syncEach syncMode = iota
	syncBatch
	syncNever
)

// SyncEachRecord makes every write return only once its record is on stable
// storage. Concurrent writers share one fsync (group commit). This is the
// default.
func SyncEachRecord() SyncPolicy { return SyncPolicy{mode: syncEach} }

// SyncBatch makes writes return once the record is written to the file, and
// syncs in the background once count records are unsynced or every
// interval, whichever comes first; a zero count or interval disables that
// trigger, but not both. A crash of the machine can lose the records of the
// last batch; checkpoints only cover synced records. An fsync failure fails
// the next write and Close.
func SyncBatch(count int, interval time.Duration) SyncPolicy {
	return SyncPolicy{mode: syncBatch, count: count, interval: interval}
}

// SyncNever leaves flushing to the operating system, except on rotation and
// Close. A crash of the machine can lose any number of records; checkpoints
// cover records as soon as they are written.
func SyncNever() SyncPolicy { return SyncPolicy{mode: syncNever} }

// LogOption configures OpenAuditLog.
type LogOption interface {
	apply(*logConfig) error
}

// logOptionFunc adapts a function to LogOption.
type logOptionFunc func(*logConfig) error

func (f logOptionFunc) apply(c *logConfig) error { return f(c) }

type logConfig struct {
	prefix     string
	maxSize    int64
	sync       SyncPolicy
	cpEvery    uint64
	cpFunc     func(Checkpoint)
	repairTorn bool
}

// Defaults of OpenAuditLog.
const (
	DefaultFilePrefix      = "audit"
	DefaultMaxFileSize     = 64 << 20
	DefaultCheckpointEvery = 1000
)

// WithFilePrefix sets the prefix of the log's file names (default "audit"):
// files are named PREFIX-NNNNNNNN.jsonl. It may hold letters, digits, '_'
// and '-'.
func WithFilePrefix(prefix string) LogOption {
	return logOptionFunc(func(c *logConfig) error {
		if !validPrefix(prefix) {
			return fmt.Errorf("access: WithFilePrefix: invalid prefix %q", prefix)
		}
		c.prefix = prefix
		return nil
	})
}

func validPrefix(p string) bool {
	if p == "" || len(p) > 64 {
		return false
	}
	for _, c := range p {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// WithMaxFileSize sets the size at which the log starts a new file (default
// 64 MiB); 0 never rotates. The chain continues across files.
func WithMaxFileSize(n int64) LogOption {
	return logOptionFunc(func(c *logConfig) error {
		if n < 0 {
			return fmt.Errorf("access: WithMaxFileSize: negative size %d", n)
		}
		c.maxSize = n
		return nil
	})
}

// WithSyncPolicy sets the fsync policy (default SyncEachRecord).
func WithSyncPolicy(p SyncPolicy) LogOption {
	return logOptionFunc(func(c *logConfig) error {
		if p.mode == syncBatch && (p.count < 0 || p.interval < 0 || p.count == 0 && p.interval == 0) {
			return errors.New("access: SyncBatch needs a positive count or interval, and no negative one")
		}
		c.sync = p
		return nil
	})
}

// WithCheckpointEvery makes the log emit a checkpoint each time the count of
// durable records crosses a multiple of n (default 1000); 0 emits only on
// Close.
func WithCheckpointEvery(n uint64) LogOption {
	return logOptionFunc(func(c *logConfig) error {
		c.cpEvery = n
		return nil
	})
}

// WithCheckpointFunc sets where checkpoints go, for example to an
// OpenTelemetry span event or a log pipeline the log's host cannot rewrite.
// f must not call back into the AuditLog. By default checkpoints are logged
// to slog.Default() at level Info with the message "access audit
// checkpoint" and the attribute "checkpoint" holding the JSON form.
func WithCheckpointFunc(f func(Checkpoint)) LogOption {
	return logOptionFunc(func(c *logConfig) error {
		if f == nil {
			return errors.New("access: WithCheckpointFunc: nil function")
		}
		c.cpFunc = f
		return nil
	})
}

// WithRepairTornTail makes OpenAuditLog cut an incomplete last line (left by
// a crash mid-append) instead of refusing to open with ErrTornRecord. The cut
// bytes were never a complete record.
func WithRepairTornTail() LogOption {
	return logOptionFunc(func(c *logConfig) error {
		c.repairTorn = true
		return nil
	})
}

// AuditLog is a Sink that appends records to hash-chained JSON Lines files.
// Each line holds a record, its seq, the SHA-256 of the line before it, and
// an HMAC-SHA256 under the audit key; Verify checks them. An AuditLog is safe
// for concurrent use.
//
// Only one AuditLog may write to a directory and prefix at a time. On Unix
// systems an advisory lock (flock) on the active log file itself enforces
// it: the lock is on the file the writer appends to, not on a separate lock
// file that could be deleted or replaced under its holder, and a writer that
// opens a log checks, once it holds the lock, that the file is still the
// log's newest. A second writer gets ErrLocked.
//
// An AuditLog prints as "access.AuditLog{dir, prefix, key ID}" under every
// format verb: never its key.
type AuditLog struct {
	dir string
	key *[AuditKeySize]byte // behind a pointer: a value printed by reflection shows an address, not the key
	kid string
	cfg logConfig

	mu         sync.Mutex
	cond       sync.Cond
	mac        hash.Hash
	buf        []byte
	f          *os.File
	segment    uint64
	size       int64
	seq        uint64            // last written
	head       [sha256.Size]byte // hash of the last written line
	synced     uint64            // last durable
	syncedHead [sha256.Size]byte
	syncing    bool
	retired    []*os.File // rotated files still being synced
	err        error      // sticky: the log is unusable
	closed     bool
	lastCP     uint64

	cpMu       sync.Mutex // serializes checkpoint callbacks; guards keyCleared
	keyCleared bool

	syncFile func(*os.File) error // (*os.File).Sync; replaced in tests
	created  func(name string)    // called between creating a file and locking it; set in tests

	kick chan struct{} // batch mode: sync now
	stop chan struct{}
	done chan struct{}
}

var _ Sink = (*AuditLog)(nil)

// OpenAuditLog opens the audit log in dir (created 0700 if missing) for
// appending, under a 32-byte audit key. An existing log is continued: its
// newest file is verified (a tampered file, a record under another key or a
// torn last line is an error) and the chain goes on from its last record.
func OpenAuditLog(ctx context.Context, dir string, key []byte, opts ...LogOption) (*AuditLog, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	cfg := logConfig{prefix: DefaultFilePrefix, maxSize: DefaultMaxFileSize, cpEvery: DefaultCheckpointEvery}
	for _, o := range opts {
		if err := o.apply(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.cpFunc == nil {
		cfg.cpFunc = func(cp Checkpoint) {
			slog.Default().Info("access audit checkpoint", slog.Uint64("count", cp.Count), slog.String("checkpoint", cp.String()))
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("access: audit log: %w", err)
	}
	l := &AuditLog{
		dir: dir,
		key: new([AuditKeySize]byte),
		kid: keyID(key),
		cfg: cfg,
		mac: hmac.New(sha256.New, key),

		syncFile: (*os.File).Sync,
	}
	copy(l.key[:], key)
	l.cond.L = &l.mu
	if err := l.open(ctx); err != nil {
		clear(l.key[:])
		return nil, err
	}
	if cfg.sync.mode == syncBatch {
		l.kick = make(chan struct{}, 1)
		l.stop = make(chan struct{})
		l.done = make(chan struct{})
		go l.batchLoop()
	}
	return l, nil
}

// maxOpenAttempts bounds how often open starts over because the newest file
// changed between listing and locking it (another writer rotating).
const maxOpenAttempts = 16

// open locks the log's newest file (creating the first one when there is
// none), checks that it is still the newest once locked, and continues the
// chain from the log's last record.
func (l *AuditLog) open(ctx context.Context) error {
	for range maxOpenAttempts {
		files, err := ListAuditFiles(l.dir, l.cfg.prefix)
		if err != nil {
			return err
		}
		if len(files) == 0 {
			err := l.createSegment(1)
			if errors.Is(err, fs.ErrExist) {
				continue // another writer created it first
			}
			return err
		}
		last := files[len(files)-1]
		n, _ := segmentNumber(filepath.Base(last), l.cfg.prefix)
		f, err := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("access: audit log: %w", err)
		}
		if err := lockFile(f); err != nil {
			f.Close()
			return err
		}
		newest, err := l.isNewest(f, last)
		if err == nil && newest {
			err = l.continueFrom(ctx, files, f, n)
		}
		if err != nil || !newest {
			f.Close()
		}
		if err != nil || newest {
			return err
		}
	}
	return fmt.Errorf("%w: its newest file kept changing while opening it", ErrLocked)
}

// isNewest reports whether f, locked, is still the file at path and path
// still the log's newest file: a writer that held the lock may have rotated
// to a new file before letting go of the old one.
func (l *AuditLog) isNewest(f *os.File, path string) (bool, error) {
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("access: audit log: %w", err)
	}
	pi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("access: audit log: %w", err)
	}
	if !os.SameFile(fi, pi) {
		return false, nil
	}
	files, err := ListAuditFiles(l.dir, l.cfg.prefix)
	if err != nil {
		return false, err
	}
	return len(files) > 0 && files[len(files)-1] == path, nil
}

// continueFrom verifies the newest file holding records and positions the
// log after its last record, appending to f, the locked newest file
// (segment n).
func (l *AuditLog) continueFrom(ctx context.Context, files []string, f *os.File, n uint64) error {
	// The newest file may hold no record (a crash right after rotation, or
	// during its first append); the chain's end is then in an older one.
	for i := len(files) - 1; i >= 0; i-- {
		st, err := os.Stat(files[i])
		if err != nil {
			return fmt.Errorf("access: audit log: %w", err)
		}
		if st.Size() == 0 {
			continue
		}
		found, err := l.recoverFrom(ctx, files[i])
		if err != nil {
			return err
		}
		if found {
			break
		}
	}
	st, err := f.Stat()
	if err == nil {
		err = l.syncFile(f)
	}
	if err != nil {
		return fmt.Errorf("access: audit log: %w", err)
	}
	l.f, l.segment, l.size = f, n, st.Size()
	return nil
}

// recoverFrom verifies the file name and, when it holds records, positions
// the log after the last one.
func (l *AuditLog) recoverFrom(ctx context.Context, name string) (found bool, err error) {
	f, err := os.Open(name)
	if err != nil {
		return false, fmt.Errorf("access: audit log: %w", err)
	}
	defer f.Close()
	v, err := newVerifier(l.key[:], verifyConfig{})
	if err != nil {
		return false, err
	}
	v.loose = true
	err = v.file(ctx, name, f, true)
	if errors.Is(err, ErrTornRecord) && l.cfg.repairTorn {
		if terr := os.Truncate(name, v.goodEnd); terr != nil {
			return false, fmt.Errorf("access: audit log: repair torn tail: %w", terr)
		}
		err = nil
	}
	if err != nil {
		return false, fmt.Errorf("access: audit log: cannot continue the log: %w", err)
	}
	if v.records == 0 {
		return false, nil
	}
	l.seq, l.head = v.next-1, v.prev
	l.synced, l.syncedHead, l.lastCP = l.seq, l.head, l.seq
	return true, nil
}

// segmentName returns the file name of segment n.
func segmentName(prefix string, n uint64) string {
	return fmt.Sprintf("%s-%08d.jsonl", prefix, n)
}

func segmentNumber(name, prefix string) (uint64, bool) {
	s, ok := strings.CutPrefix(name, prefix+"-")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, ".jsonl")
	if !ok || len(s) < 8 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil && n > 0
}

// ListAuditFiles returns the paths of the files of the audit log in dir with
// the given file prefix ("" for the default), oldest first: the order Verify
// wants.
func ListAuditFiles(dir, prefix string) ([]string, error) {
	if prefix == "" {
		prefix = DefaultFilePrefix
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("access: audit log: %w", err)
	}
	type seg struct {
		n    uint64
		name string
	}
	var segs []seg
	for _, e := range entries {
		if n, ok := segmentNumber(e.Name(), prefix); ok && e.Type().IsRegular() {
			segs = append(segs, seg{n, e.Name()})
		}
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].n < segs[j].n })
	out := make([]string, len(segs))
	for i, s := range segs {
		out[i] = filepath.Join(dir, s.name)
	}
	return out, nil
}

// createSegment creates segment n, locks it and makes it the current file.
// A writer that opens the log in the moment between creation and lock may
// get the file first: this one then fails with ErrLocked (the file is
// locked, or no longer empty once the other let go of it) and the other
// goes on from the same chain, so the log never forks.
func (l *AuditLog) createSegment(n uint64) error {
	name := segmentName(l.cfg.prefix, n)
	f, err := os.OpenFile(filepath.Join(l.dir, name), os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("access: audit log: %w", err)
	}
	if l.created != nil {
		l.created(name)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return err
	}
	if st, err := f.Stat(); err != nil || st.Size() != 0 {
		f.Close()
		if err == nil {
			err = fmt.Errorf("%w: another writer wrote to %s while it was being created", ErrLocked, name)
		}
		return fmt.Errorf("access: audit log: %w", err)
	}
	if err := fsutil.SyncDir(l.dir); err != nil {
		f.Close()
		return fmt.Errorf("access: audit log: %w", err)
	}
	l.f, l.segment, l.size = f, n, 0
	return nil
}

// WriteRecord appends r to the log. Under SyncEachRecord it returns once the
// record is on stable storage. It returns an error when the record was not
// written (ctx already done, record larger than MaxRecordSize, write or
// fsync failure, closed log); after an fsync or rotation failure every later
// write fails too. A zero r.Time is set to the current time.
func (l *AuditLog) WriteRecord(ctx context.Context, r Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	l.mu.Lock()
	seq, due, err := l.appendLocked(&r)
	if err != nil {
		l.mu.Unlock()
		return err
	}
	switch l.cfg.sync.mode {
	case syncNever:
		due = l.durableLocked(seq, l.head) || due
	case syncBatch:
		if l.cfg.sync.count > 0 && l.seq-l.synced >= uint64(l.cfg.sync.count) {
			select {
			case l.kick <- struct{}{}:
			default:
			}
		}
	case syncEach:
		var d bool
		d, err = l.waitDurableLocked(seq)
		due = due || d
	}
	l.mu.Unlock()
	if due {
		l.emitCheckpoint(false)
	}
	return err
}

// appendLocked writes the line of r as the next record, rotating first when
// the current file is full. It reports whether a checkpoint is due.
func (l *AuditLog) appendLocked(r *Record) (seq uint64, due bool, err error) {
	switch {
	case l.closed:
		return 0, false, ErrClosed
	case l.err != nil:
		return 0, false, l.err
	}
	if y := r.Time.UTC().Year(); y < 1 || y > 9999 {
		return 0, false, fmt.Errorf("access: audit log: record time %d is outside years 1 to 9999", y)
	}
	seq = l.seq + 1
	line, err := appendRecord(l.buf[:0], l.mac, l.kid, seq, &l.head, r)
	if err != nil {
		return 0, false, fmt.Errorf("access: audit log: encoding record: %w", err)
	}
	l.buf = line[:0]
	if len(line) > MaxRecordSize {
		return 0, false, fmt.Errorf("access: audit log: record of %d bytes exceeds %d", len(line), MaxRecordSize)
	}
	if l.cfg.maxSize > 0 && l.size > 0 && l.size+int64(len(line))+1 > l.cfg.maxSize {
		if due, err = l.rotateLocked(); err != nil {
			return 0, due, err
		}
	}
	head := sha256.Sum256(line)
	line = append(line, '\n')
	n, err := l.f.Write(line)
	if err != nil {
		if n > 0 {
			// Cut the partial line so the file stays a valid chain.
			if terr := l.f.Truncate(l.size); terr != nil {
				l.err = fmt.Errorf("access: audit log: write failed and the partial record could not be removed: %w", errors.Join(err, terr))
			}
		}
		return 0, due, fmt.Errorf("access: audit log: write: %w", err)
	}
	l.size += int64(n)
	l.seq, l.head = seq, head
	return seq, due, nil
}

// rotateLocked syncs and closes the current file and starts the next one.
func (l *AuditLog) rotateLocked() (due bool, err error) {
	if err := l.syncFile(l.f); err != nil {
		l.err = fmt.Errorf("access: audit log: fsync before rotation: %w", err)
		return false, l.err
	}
	if err := stillAt(l.f, l.path()); err != nil {
		l.err = fmt.Errorf("access: audit log: %w", err)
		return false, l.err
	}
	due = l.durableLocked(l.seq, l.head)
	old := l.f
	if err := l.createSegment(l.segment + 1); err != nil {
		l.err = fmt.Errorf("access: audit log: rotation: %w", err)
		return due, l.err
	}
	if l.syncing {
		l.retired = append(l.retired, old) // the sync leader closes it
	} else if err := old.Close(); err != nil {
		l.err = fmt.Errorf("access: audit log: rotation: %w", err)
		return due, l.err
	}
	return due, nil
}

// durableLocked records that every record up to seq is durable and reports
// whether a checkpoint is due.
func (l *AuditLog) durableLocked(seq uint64, head [sha256.Size]byte) bool {
	if seq <= l.synced {
		return false
	}
	l.synced, l.syncedHead = seq, head
	every := l.cfg.cpEvery
	return every > 0 && seq/every > l.lastCP/every
}

// waitDurableLocked returns once record seq is durable. One waiter at a time
// runs fsync for everything written so far; the others wait for it (group
// commit).
func (l *AuditLog) waitDurableLocked(seq uint64) (due bool, err error) {
	for l.synced < seq {
		if l.err != nil {
			return due, l.err
		}
		if l.syncing {
			l.cond.Wait()
			continue
		}
		d, err := l.syncRoundLocked()
		due = due || d
		if err != nil {
			return due, err
		}
	}
	return due, nil
}

// syncRoundLocked fsyncs the current file without holding the lock.
func (l *AuditLog) syncRoundLocked() (due bool, err error) {
	l.syncing = true
	f, target, head, path := l.f, l.seq, l.head, l.path()
	l.mu.Unlock()
	if err = l.syncFile(f); err != nil {
		err = fmt.Errorf("access: audit log: fsync: %w", err)
	} else if err = stillAt(f, path); err != nil {
		err = fmt.Errorf("access: audit log: %w", err)
	}
	l.mu.Lock()
	l.syncing = false
	for _, r := range l.retired {
		r.Close()
	}
	l.retired = nil
	l.cond.Broadcast()
	if err != nil {
		if l.err == nil {
			l.err = err
		}
		return false, l.err
	}
	return l.durableLocked(target, head), nil
}

// path returns the path of the active file.
func (l *AuditLog) path() string { return filepath.Join(l.dir, segmentName(l.cfg.prefix, l.segment)) }

// stillAt checks that f is still the file at path. A log file removed or
// replaced under its writer (by a copy, which another writer could lock)
// stops the writer: from then on its records would reach no one's log.
func stillAt(f *os.File, path string) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	pi, err := os.Stat(path)
	if err == nil && !os.SameFile(fi, pi) {
		err = errors.New("the file was replaced")
	}
	if err != nil {
		return fmt.Errorf("%w: active file %s: %w", ErrLocked, filepath.Base(path), err)
	}
	return nil
}

func (l *AuditLog) batchLoop() {
	defer close(l.done)
	var tick <-chan time.Time
	if l.cfg.sync.interval > 0 {
		t := time.NewTicker(l.cfg.sync.interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-l.stop:
			return
		case <-tick:
		case <-l.kick:
		}
		l.mu.Lock()
		due := false
		if !l.syncing && !l.closed && l.err == nil && l.synced < l.seq {
			due, _ = l.syncRoundLocked() // a failure is sticky: the next write reports it
		}
		l.mu.Unlock()
		if due {
			l.emitCheckpoint(false)
		}
	}
}

// emitCheckpoint passes a checkpoint of the durable records to the
// checkpoint function, when one is due or force is set.
func (l *AuditLog) emitCheckpoint(force bool) {
	l.cpMu.Lock()
	defer l.cpMu.Unlock()
	if l.keyCleared {
		return
	}
	l.mu.Lock()
	count, head := l.synced, l.syncedHead
	every := l.cfg.cpEvery
	due := force || (every > 0 && count/every > l.lastCP/every)
	if due {
		l.lastCP = count
	}
	l.mu.Unlock()
	if due {
		l.cfg.cpFunc(newCheckpoint(l.key[:], l.kid, count, &head, time.Now()))
	}
}

// Checkpoint makes every record written so far durable and returns a signed
// checkpoint of them. It does not pass it to the checkpoint function.
func (l *AuditLog) Checkpoint(ctx context.Context) (Checkpoint, error) {
	if err := ctx.Err(); err != nil {
		return Checkpoint{}, err
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return Checkpoint{}, ErrClosed
	}
	due, err := l.waitDurableLocked(l.seq)
	count, head := l.synced, l.syncedHead
	l.mu.Unlock()
	if due {
		l.emitCheckpoint(false)
	}
	if err != nil {
		return Checkpoint{}, err
	}
	l.cpMu.Lock()
	defer l.cpMu.Unlock()
	if l.keyCleared {
		return Checkpoint{}, ErrClosed
	}
	return newCheckpoint(l.key[:], l.kid, count, &head, time.Now()), nil
}

// Close syncs and closes the log, emits a final checkpoint and releases the
// lock on the active file. It returns the log's sticky error, if any. Writes after
// Close fail with ErrClosed; Close is idempotent.
func (l *AuditLog) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	if l.stop != nil {
		close(l.stop)
		<-l.done
	}
	l.mu.Lock()
	for l.syncing {
		l.cond.Wait()
	}
	if l.err == nil {
		if err := l.syncFile(l.f); err != nil {
			l.err = fmt.Errorf("access: audit log: fsync: %w", err)
		} else if err := stillAt(l.f, l.path()); err != nil {
			l.err = fmt.Errorf("access: audit log: %w", err)
		} else {
			l.durableLocked(l.seq, l.head)
		}
	}
	errs := []error{l.err}
	if err := l.f.Close(); err != nil && l.err == nil {
		errs = append(errs, fmt.Errorf("access: audit log: close: %w", err))
	}
	for _, r := range l.retired {
		r.Close()
	}
	l.retired = nil
	l.cond.Broadcast()
	l.mu.Unlock()
	l.emitCheckpoint(true)
	l.cpMu.Lock()
	clear(l.key[:]) // best effort; checkpoints are no longer emitted
	l.keyCleared = true
	l.cpMu.Unlock()
	return errors.Join(errs...)
}

// String describes the log without its key: directory, file prefix and the
// key's public ID.
func (l *AuditLog) String() string {
	return "access.AuditLog{" + l.dir + ", prefix " + l.cfg.prefix + ", key ID " + l.kid + "}"
}

// GoString is String.
func (l *AuditLog) GoString() string { return l.String() }

// Format prints String under every verb, so that no verb (%v, %+v, %#v,
// %x, ...) reaches the key.
func (l *AuditLog) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(l.String())) }

// lockFile takes an exclusive, non-blocking advisory lock on f, so that two
// processes never append to the same audit log.
func lockFile(f *os.File) error {
	err := fsutil.TryLock(f)
	if errors.Is(err, fsutil.ErrLocked) {
		return ErrLocked
	}
	if err != nil {
		return fmt.Errorf("access: audit log: lock: %w", err)
	}
	return nil
}
