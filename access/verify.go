package access

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
)

// VerifyOption configures Verify.
type VerifyOption interface {
	apply(*verifyConfig)
}

// verifyOptionFunc adapts a function to VerifyOption.
type verifyOptionFunc func(*verifyConfig)

func (f verifyOptionFunc) apply(c *verifyConfig) { f(c) }

type verifyConfig struct {
	expect *Checkpoint
	after  *Checkpoint
}

// ExpectCheckpoint makes Verify check the files against a checkpoint the
// AuditLog emitted: the log must reach cp.Count records, and the record with
// seq cp.Count must be the one the checkpoint names. A log that ends earlier
// is reported as ErrTruncated. Give the latest checkpoint you hold.
func ExpectCheckpoint(cp Checkpoint) VerifyOption {
	return verifyOptionFunc(func(c *verifyConfig) { c.expect = &cp })
}

// StartAfter makes Verify accept files that begin after earlier records were
// archived or deleted: the first record must be the one that follows cp
// (seq cp.Count+1, chained to cp.Head). Without it the first record must be
// seq 1.
func StartAfter(cp Checkpoint) VerifyOption {
	return verifyOptionFunc(func(c *verifyConfig) { c.after = &cp })
}

// VerifyResult summarizes the records Verify checked.
type VerifyResult struct {
	Files    int    // files read
	Records  uint64 // records verified
	FirstSeq uint64 // seq of the first record verified; 0 if none
	LastSeq  uint64 // seq of the last record verified; 0 if none
	Head     string // SHA-256 of the last record line, hex
}

// String returns a one-line summary.
func (r VerifyResult) String() string {
	if r.Records == 0 {
		return fmt.Sprintf("ok: %d files, no records", r.Files)
	}
	return fmt.Sprintf("ok: %d files, %d records (seq %d..%d), head %s", r.Files, r.Records, r.FirstSeq, r.LastSeq, r.Head)
}

// Verify checks an audit log given as its files in order (oldest first; the
// names AuditLog writes sort in that order). It checks every record's MAC
// under key, that seq numbers run without gap or repeat, and that every
// record carries the SHA-256 of the one before it, across file boundaries.
// It returns a *VerifyError for the first bad record, wrapping:
//
//   - ErrTampered: a record edited, forged, inserted, removed or moved, a
//     malformed line, or a log that does not start at seq 1 (or right after
//     the StartAfter checkpoint);
//   - ErrWrongKey: a record written under another audit key;
//   - ErrTornRecord: the last line of the last file is incomplete (a crash
//     mid-append); every record before it verified;
//   - ErrTruncated: the log ends before the ExpectCheckpoint count.
//
// A checkpoint whose MAC does not verify is an error wrapping
// ErrInvalidCheckpoint; an unreadable file or a done ctx gives that error. Without ExpectCheckpoint, removal of records from
// the end of the log cannot be detected.
func Verify(ctx context.Context, key []byte, files []string, opts ...VerifyOption) (VerifyResult, error) {
	if err := checkKey(key); err != nil {
		return VerifyResult{}, err
	}
	if len(files) == 0 {
		return VerifyResult{}, errors.New("access: audit verify: no files")
	}
	var cfg verifyConfig
	for _, o := range opts {
		o.apply(&cfg)
	}
	v, err := newVerifier(key, cfg)
	if err != nil {
		return VerifyResult{}, err
	}
	for i, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return v.result(), fmt.Errorf("access: audit verify: %w", err)
		}
		err = v.file(ctx, name, f, i == len(files)-1)
		f.Close()
		if err != nil {
			return v.result(), err
		}
	}
	if err := v.finish(); err != nil {
		return v.result(), err
	}
	return v.result(), nil
}

type verifier struct {
	key   []byte
	kid   string
	mac   hash.Hash
	cfg   verifyConfig
	loose bool // accept any start (reopening a log)

	expectHead [sha256.Size]byte // head of cfg.expect

	started  bool
	next     uint64            // seq expected next
	prev     [sha256.Size]byte // hash of the last good line
	files    int
	records  uint64
	firstSeq uint64

	name    string // current file
	line    int    // lines read in the current file
	goodEnd int64  // offset after the last good line in the current file
}

func newVerifier(key []byte, cfg verifyConfig) (*verifier, error) {
	v := &verifier{key: key, kid: keyID(key), mac: hmac.New(sha256.New, key), cfg: cfg, next: 1}
	if cfg.after != nil {
		head, err := verifyCheckpoint(key, v.kid, *cfg.after)
		if err != nil {
			return nil, fmt.Errorf("access: audit verify: start checkpoint: %w", err)
		}
		v.prev, v.next = head, cfg.after.Count+1
	}
	if cfg.expect != nil {
		head, err := verifyCheckpoint(key, v.kid, *cfg.expect)
		if err != nil {
			return nil, fmt.Errorf("access: audit verify: checkpoint: %w", err)
		}
		v.expectHead = head
		if cfg.after != nil && cfg.expect.Count < cfg.after.Count {
			return nil, fmt.Errorf("access: audit verify: %w: expected checkpoint precedes start checkpoint", ErrInvalidCheckpoint)
		}
		if cfg.after != nil && cfg.expect.Count == cfg.after.Count && head != v.prev {
			return nil, fmt.Errorf("access: audit verify: %w: checkpoints of the same count name different records", ErrInvalidCheckpoint)
		}
	}
	return v, nil
}

func (v *verifier) result() VerifyResult {
	r := VerifyResult{Files: v.files, Records: v.records, FirstSeq: v.firstSeq}
	if v.records > 0 {
		r.LastSeq = v.next - 1
		r.Head = hex.EncodeToString(v.prev[:])
	}
	return r
}

func (v *verifier) fail(seq uint64, sentinel error, format string, args ...any) *VerifyError {
	return &VerifyError{File: v.name, Line: v.line, Seq: seq, Reason: fmt.Sprintf(format, args...), Err: sentinel}
}

// file verifies the records of one file. last says whether it is the last
// file, where an incomplete final line is a torn record rather than
// tampering.
func (v *verifier) file(ctx context.Context, name string, r io.Reader, last bool) error {
	v.files++
	v.name, v.line, v.goodEnd = name, 0, 0
	br := bufio.NewReaderSize(r, MaxRecordSize+1)
	for {
		if v.line%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		line, err := br.ReadSlice('\n')
		switch {
		case err == bufio.ErrBufferFull:
			v.line++
			return v.fail(v.next, ErrTampered, "line longer than %d bytes", MaxRecordSize)
		case err == io.EOF && len(line) == 0:
			return nil
		case err == io.EOF:
			v.line++
			if last {
				return v.fail(v.next, ErrTornRecord, "last line is incomplete (%d bytes, no newline): torn write, e.g. a crash while appending; the records before it verified", len(line))
			}
			return v.fail(v.next, ErrTampered, "incomplete last line in a file that is not the last")
		case err != nil:
			return fmt.Errorf("access: audit verify: %s: %w", name, err)
		}
		v.line++
		if err := v.record(line[:len(line)-1]); err != nil {
			return err
		}
		v.goodEnd += int64(len(line))
	}
}

// record verifies one line (without newline) and advances the chain.
func (v *verifier) record(line []byte) error {
	l, err := parseLine(line)
	if err != nil {
		return v.fail(v.next, ErrTampered, "malformed record: %v", err)
	}
	if l.Kid != v.kid && v.started {
		// A log is written under one key; earlier records verified.
		return v.fail(l.Seq, ErrTampered, "record claims another audit key (id %s) than the records before it", l.Kid)
	}
	if l.Kid != v.kid {
		return v.fail(l.Seq, ErrWrongKey, "record written under a different audit key (id %s), not the given key (id %s)", l.Kid, v.kid)
	}
	var sum [sha256.Size]byte
	if !hmac.Equal(recordMAC(v.mac, l.body, sum[:0]), l.mac[:]) {
		return v.fail(l.Seq, ErrTampered, "mac does not verify: record edited or forged")
	}
	switch {
	case !v.started && v.loose:
		// Reopening a log: trust where the file starts.
	case l.Seq < v.next:
		return v.fail(l.Seq, ErrTampered, "seq %d where %d was expected: record repeated, inserted or moved", l.Seq, v.next)
	case l.Seq > v.next && !v.started && v.cfg.after == nil:
		return v.fail(l.Seq, ErrTampered, "log starts at seq %d, not 1: earlier records missing (use a start checkpoint to verify a partial log)", l.Seq)
	case l.Seq > v.next:
		return v.fail(l.Seq, ErrTampered, "seq %d where %d was expected: records %d..%d missing or moved", l.Seq, v.next, v.next, l.Seq-1)
	case l.prev != v.prev:
		if !v.started && v.cfg.after != nil {
			return v.fail(l.Seq, ErrTampered, "first record does not follow the start checkpoint")
		}
		return v.fail(l.Seq, ErrTampered, "prev hash does not match the record before it: record replaced or moved")
	}
	v.prev = sha256.Sum256(line)
	if v.cfg.expect != nil && l.Seq == v.cfg.expect.Count && v.prev != v.expectHead {
		return v.fail(l.Seq, ErrTampered, "record differs from the one the checkpoint names")
	}
	if !v.started {
		v.started = true
		v.firstSeq = l.Seq
	}
	v.next = l.Seq + 1
	v.records++
	return nil
}

// finish checks the end of the log against the expected checkpoint.
func (v *verifier) finish() error {
	cp := v.cfg.expect
	if cp == nil || v.next > cp.Count {
		return nil
	}
	if cp.Count == 0 {
		return nil
	}
	v.line++
	last := v.next - 1
	return v.fail(v.next, ErrTruncated, "log ends at seq %d but the checkpoint of %s counts %d records: tail truncated",
		last, cp.Time.Format("2006-01-02T15:04:05Z07:00"), cp.Count)
}
