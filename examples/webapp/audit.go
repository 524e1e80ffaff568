package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/keyring"
)

// tailBytes is how much of the end of the audit log the audit page reads.
const tailBytes = 1 << 20

// auditTrail is the hash-chained audit log and what the audit page does
// with it. It is the Auditor's sink: writes share a read lock, and
// verification takes the write lock, so that Verify never reads a line
// being appended.
type auditTrail struct {
	mu  sync.RWMutex
	log *access.AuditLog
	dir string
	key []byte
}

var _ access.Sink = (*auditTrail)(nil)

// openAuditTrail opens (or continues) the audit log in dir under the audit
// key derived from kr. Its periodic checkpoints go to log: keep them where
// the log's writer cannot rewrite them.
func openAuditTrail(ctx context.Context, kr *keyring.Keyring, dir string, log *slog.Logger) (*auditTrail, error) {
	dk, err := kr.DeriveKey(ctx, access.AuditKeyLabel)
	if err != nil {
		return nil, err
	}
	key := dk.Bytes()
	l, err := access.OpenAuditLog(ctx, dir, key, access.WithRepairTornTail(),
		access.WithCheckpointFunc(func(cp access.Checkpoint) {
			log.Info("audit checkpoint", "checkpoint", cp.String())
		}))
	if err != nil {
		return nil, err
	}
	return &auditTrail{log: l, dir: dir, key: key}, nil
}

// WriteRecord implements access.Sink.
func (t *auditTrail) WriteRecord(ctx context.Context, r access.Record) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.log.WriteRecord(ctx, r)
}

func (t *auditTrail) close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	err := t.log.Close()
	clear(t.key)
	return err
}

// verification is the chain's status as the audit page shows it.
type verification struct {
	OK      bool   `json:"ok"`
	Records uint64 `json:"records"`
	Files   int    `json:"files"`
	Head    string `json:"head,omitempty"`
	Error   string `json:"error,omitempty"`
}

// verify checks the whole log against a fresh checkpoint: every record's
// MAC, the chain, and that nothing was cut from the end.
func (t *auditTrail) verify(ctx context.Context) (verification, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	cp, err := t.log.Checkpoint(ctx)
	if err != nil {
		return verification{}, err
	}
	files, err := access.ListAuditFiles(t.dir, access.DefaultFilePrefix)
	if err != nil {
		return verification{}, err
	}
	res, err := access.Verify(ctx, t.key, files, access.ExpectCheckpoint(cp))
	return verificationOf(res, err)
}

// verificationOf turns Verify's answer into the page's status. A bad record
// is a status, not an error; names of this machine's files are cut to
// their base names.
func verificationOf(res access.VerifyResult, err error) (verification, error) {
	var ve *access.VerifyError
	if errors.As(err, &ve) {
		v := *ve
		v.File = filepath.Base(v.File)
		return verification{Error: v.String()}, nil
	}
	if err != nil {
		return verification{}, err
	}
	return verification{OK: true, Records: res.Records, Files: res.Files, Head: res.Head}, nil
}

// auditEntry is one record line of the audit log as the page shows it.
// The file format is the access package's; these are the fields it
// documents for a Record.
type auditEntry struct {
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	User     string    `json:"user"`
	Roles    []string  `json:"roles"`
	Action   string    `json:"action"`
	Resource string    `json:"resource"`
	Decision string    `json:"decision"`
	Reason   string    `json:"reason"`
}

// latest returns up to n of the newest records that keep says to keep,
// newest first, read from the last tailBytes of the log. keep sees every
// record read.
func (t *auditTrail) latest(n int, keep func(auditEntry) bool) ([]auditEntry, error) {
	lines, err := t.tail()
	if err != nil {
		return nil, err
	}
	var out []auditEntry
	for i := len(lines) - 1; i >= 0; i-- {
		var e auditEntry
		if json.Unmarshal(lines[i], &e) != nil || e.Seq == 0 {
			continue // a line the chain check reports, not this list
		}
		if keep(e) && len(out) < n {
			out = append(out, e)
		}
	}
	return out, nil
}

// tail returns the complete lines in the last tailBytes of the log, oldest
// first.
func (t *auditTrail) tail() ([][]byte, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	files, err := access.ListAuditFiles(t.dir, access.DefaultFilePrefix)
	if err != nil {
		return nil, err
	}
	var lines [][]byte
	budget := int64(tailBytes)
	for i := len(files) - 1; i >= 0 && budget > 0; i-- {
		ls, n, err := tailLines(files[i], budget)
		if err != nil {
			return nil, err
		}
		budget -= n
		lines = append(ls, lines...)
	}
	return lines, nil
}

// tailLines reads the complete lines in the last limit bytes of path.
func tailLines(path string, limit int64) ([][]byte, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	off := max(st.Size()-limit, 0)
	b, err := io.ReadAll(io.NewSectionReader(f, off, st.Size()-off))
	if err != nil {
		return nil, 0, err
	}
	if off > 0 { // the first line is cut
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		} else {
			b = nil
		}
	}
	var lines [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, access.MaxRecordSize+1)
	for sc.Scan() {
		lines = append(lines, slices.Clone(sc.Bytes()))
	}
	return lines, int64(len(b)), sc.Err()
}

// tamperDemo is what the audit page shows of a tampered copy of the log.
type tamperDemo struct {
	File     string       `json:"file"`
	Line     int          `json:"line"`
	Original string       `json:"original"`
	Tampered string       `json:"tampered"`
	Result   verification `json:"result"`
}

// tamperDemo copies the log to a temporary directory, turns the newest
// denial in the copy into an approval (or, without one, renames the user
// of the newest record), and verifies the copy. The log itself is not
// touched.
func (t *auditTrail) tamperDemo(ctx context.Context) (tamperDemo, error) {
	tmp, err := os.MkdirTemp("", "webapp-tamper-")
	if err != nil {
		return tamperDemo{}, err
	}
	defer os.RemoveAll(tmp)
	copies, err := t.copyFiles(ctx, tmp)
	if err != nil {
		return tamperDemo{}, err
	}
	if len(copies) == 0 {
		return tamperDemo{}, errors.New("webapp: the audit log is empty")
	}
	last := copies[len(copies)-1]
	data, err := os.ReadFile(last)
	if err != nil {
		return tamperDemo{}, err
	}
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	at, from, to := -1, []byte(`"decision":"deny"`), []byte(`"decision":"allow"`)
	for i := len(lines) - 1; i >= 0 && at < 0; i-- {
		if bytes.Contains(lines[i], from) {
			at = i
		}
	}
	if at < 0 {
		at = len(lines) - 1
		var e auditEntry
		if err := json.Unmarshal(lines[at], &e); err != nil {
			return tamperDemo{}, err
		}
		from, to = []byte(`"user":`+quote(e.User)), []byte(`"user":"someone-else"`)
	}
	d := tamperDemo{File: filepath.Base(last), Line: at + 1, Original: string(lines[at])}
	lines[at] = bytes.Replace(lines[at], from, to, 1)
	d.Tampered = string(lines[at])
	if err := os.WriteFile(last, append(bytes.Join(lines, []byte("\n")), '\n'), 0o600); err != nil {
		return tamperDemo{}, err
	}
	res, err := access.Verify(ctx, t.key, copies)
	if d.Result, err = verificationOf(res, err); err != nil {
		return tamperDemo{}, err
	}
	return d, nil
}

// copyFiles copies the log's files into dir, under the write lock so that
// no line is half written, and returns the copies in order.
func (t *auditTrail) copyFiles(ctx context.Context, dir string) ([]string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, err := t.log.Checkpoint(ctx); err != nil { // everything written is on disk
		return nil, err
	}
	files, err := access.ListAuditFiles(t.dir, access.DefaultFilePrefix)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		dst := filepath.Join(dir, filepath.Base(f))
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			return nil, err
		}
		out = append(out, dst)
	}
	return out, nil
}

// quote is s as a JSON string.
func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// auditLimit is how many entries the audit page lists.
const auditLimit = 100

type auditPage struct {
	Entries []auditEntry `json:"entries"`
	Users   []string     `json:"users"`
	Verify  verification `json:"verification"`
}

// listAudit lists the newest audit entries, filtered by user and result
// (GET /api/audit?user=ID&result=allow|deny), with the chain's
// verification status.
func (a *app) listAudit(_ http.ResponseWriter, r *http.Request) (any, error) {
	ctx := r.Context()
	if err := a.guard.Authorize(ctx, access.ActionManage, a.keyringResource()); err != nil {
		return nil, err
	}
	user, result := r.URL.Query().Get("user"), r.URL.Query().Get("result")
	if result != "" && result != string(access.DecisionAllow) && result != string(access.DecisionDeny) {
		return nil, badRequest("result: allow, deny or empty")
	}
	users := map[string]bool{}
	entries, err := a.audit.latest(auditLimit, func(e auditEntry) bool {
		users[e.User] = true
		return (user == "" || e.User == user) && (result == "" || e.Decision == result)
	})
	if err != nil {
		return nil, err
	}
	page := auditPage{Entries: entries, Users: slices.Sorted(maps.Keys(users))}
	if page.Entries == nil {
		page.Entries = []auditEntry{}
	}
	if page.Verify, err = a.audit.verify(ctx); err != nil {
		return nil, err
	}
	return page, nil
}

// tamperAudit shows what verification says of a tampered copy of the log
// (GET /api/audit/tamper).
func (a *app) tamperAudit(_ http.ResponseWriter, r *http.Request) (any, error) {
	if err := a.guard.Authorize(r.Context(), access.ActionManage, a.keyringResource()); err != nil {
		return nil, err
	}
	return a.audit.tamperDemo(r.Context())
}
