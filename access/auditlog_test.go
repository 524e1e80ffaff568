package access

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var testKey = bytes.Repeat([]byte{0x42}, AuditKeySize)

// cpRecorder collects emitted checkpoints.
type cpRecorder struct {
	mu  sync.Mutex
	cps []Checkpoint
}

func (c *cpRecorder) add(cp Checkpoint) {
	c.mu.Lock()
	c.cps = append(c.cps, cp)
	c.mu.Unlock()
}

func (c *cpRecorder) all() []Checkpoint {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Checkpoint(nil), c.cps...)
}

func (c *cpRecorder) last(t *testing.T) Checkpoint {
	t.Helper()
	cps := c.all()
	if len(cps) == 0 {
		t.Fatal("no checkpoint emitted")
	}
	return cps[len(cps)-1]
}

func openTestLog(t *testing.T, dir string, opts ...LogOption) (*AuditLog, *cpRecorder) {
	t.Helper()
	rec := &cpRecorder{}
	l, err := OpenAuditLog(context.Background(), dir, testKey, append([]LogOption{WithCheckpointFunc(rec.add)}, opts...)...)
	if err != nil {
		t.Fatalf("OpenAuditLog: %v", err)
	}
	return l, rec
}

func testRecord(i int) Record {
	d := DecisionAllow
	if i%3 == 0 {
		d = DecisionDeny
	}
	return Record{
		Time:     time.Date(2026, 3, 1, 12, 0, 0, i, time.UTC),
		UserID:   fmt.Sprintf("user-%d", i),
		Roles:    []string{"support"},
		Action:   ActionDecrypt,
		Resource: FieldResource("users", "ssn"),
		Decision: d,
	}
}

// writeTestLog writes n records to a new log in dir, closes it and returns
// its files and final checkpoint.
func writeTestLog(t *testing.T, dir string, n int, opts ...LogOption) ([]string, Checkpoint) {
	t.Helper()
	l, rec := openTestLog(t, dir, opts...)
	for i := 1; i <= n; i++ {
		if err := l.WriteRecord(context.Background(), testRecord(i)); err != nil {
			t.Fatalf("WriteRecord %d: %v", i, err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	files, err := ListAuditFiles(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	return files, rec.last(t)
}

func readLines(t *testing.T, name string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	return lines
}

func writeLines(t *testing.T, name string, lines [][]byte) {
	t.Helper()
	if err := os.WriteFile(name, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestAuditLogVerifies(t *testing.T) {
	dir := t.TempDir()
	files, cp := writeTestLog(t, dir, 5)
	if len(files) != 1 || filepath.Base(files[0]) != "audit-00000001.jsonl" {
		t.Fatalf("files = %v, want one audit-00000001.jsonl", files)
	}
	res, err := Verify(context.Background(), testKey, files, ExpectCheckpoint(cp))
	if err != nil {
		t.Fatalf("Verify = %v", err)
	}
	if res.Records != 5 || res.FirstSeq != 1 || res.LastSeq != 5 || res.Head != cp.Head || cp.Count != 5 {
		t.Fatalf("Verify = %+v with checkpoint %+v, want 5 records seq 1..5 ending at the checkpoint head", res, cp)
	}
	st, err := os.Stat(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
		t.Errorf("file mode = %v, want 0600", st.Mode().Perm())
	}
	// The record fields round-trip.
	lines := readLines(t, files[0])
	l, err := parseLine(bytes.TrimSuffix(lines[2], []byte("\n")))
	if err != nil {
		t.Fatal(err)
	}
	want := testRecord(3)
	if l.Seq != 3 || l.User != want.UserID || l.Action != want.Action || l.Resource != want.Resource ||
		l.Decision != string(want.Decision) || !l.time.Equal(want.Time) || len(l.Roles) != 1 || l.Roles[0] != "support" {
		t.Fatalf("parsed line 3 = %+v, want %+v", l, want)
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	otherKey := bytes.Repeat([]byte{0x17}, AuditKeySize)
	tests := []struct {
		name     string
		tamper   func(t *testing.T, lines [][]byte) [][]byte
		key      []byte
		line     int
		seq      uint64
		sentinel error
		why      string
	}{
		{"edit a field", func(t *testing.T, lines [][]byte) [][]byte {
			lines[2] = bytes.Replace(lines[2], []byte(`"decision":"deny"`), []byte(`"decision":"allow"`), 1)
			return lines
		}, testKey, 3, 3, ErrTampered, "mac does not verify"},
		{"edit the user", func(t *testing.T, lines [][]byte) [][]byte {
			lines[3] = bytes.Replace(lines[3], []byte(`user-4`), []byte(`user-5`), 1)
			return lines
		}, testKey, 4, 4, ErrTampered, "mac does not verify"},
		{"delete a line", func(t *testing.T, lines [][]byte) [][]byte {
			return append(lines[:2:2], lines[3:]...)
		}, testKey, 3, 4, ErrTampered, "records 3..3 missing"},
		{"delete the first line", func(t *testing.T, lines [][]byte) [][]byte {
			return lines[1:]
		}, testKey, 1, 2, ErrTampered, "not 1"},
		{"insert a copy", func(t *testing.T, lines [][]byte) [][]byte {
			out := append([][]byte{}, lines[:3]...)
			out = append(out, lines[1])
			return append(out, lines[3:]...)
		}, testKey, 4, 2, ErrTampered, "where 4 was expected"},
		{"insert a forged line", func(t *testing.T, lines [][]byte) [][]byte {
			forged := bytes.Replace(lines[1], []byte(`"seq":2`), []byte(`"seq":3`), 1)
			out := append([][]byte{}, lines[:2]...)
			out = append(out, forged)
			return append(out, lines[2:]...)
		}, testKey, 3, 3, ErrTampered, "mac does not verify"},
		{"swap two lines", func(t *testing.T, lines [][]byte) [][]byte {
			lines[2], lines[3] = lines[3], lines[2]
			return lines
		}, testKey, 3, 4, ErrTampered, "where 3 was expected"},
		{"malformed line", func(t *testing.T, lines [][]byte) [][]byte {
			lines[1] = []byte("hello\n")
			return lines
		}, testKey, 2, 2, ErrTampered, "malformed"},
		{"empty line", func(t *testing.T, lines [][]byte) [][]byte {
			return append(lines[:1:1], append([][]byte{[]byte("\n")}, lines[1:]...)...)
		}, testKey, 2, 2, ErrTampered, "malformed"},
		{"wrong key", func(t *testing.T, lines [][]byte) [][]byte { return lines }, otherKey, 1, 1, ErrWrongKey, "different"},
		{"kid changed mid-log", func(t *testing.T, lines [][]byte) [][]byte {
			lines[2] = bytes.Replace(lines[2], []byte(keyID(testKey)), []byte(keyID(otherKey)), 1)
			return lines
		}, testKey, 3, 3, ErrTampered, "another audit key"},
		{"torn last line", func(t *testing.T, lines [][]byte) [][]byte {
			last := len(lines) - 1
			lines[last] = lines[last][:len(lines[last])/2]
			return lines
		}, testKey, 6, 6, ErrTornRecord, "incomplete"},
		{"newline missing at the end", func(t *testing.T, lines [][]byte) [][]byte {
			last := len(lines) - 1
			lines[last] = bytes.TrimSuffix(lines[last], []byte("\n"))
			return lines
		}, testKey, 6, 6, ErrTornRecord, "incomplete"},
		{"zeros after a crash", func(t *testing.T, lines [][]byte) [][]byte {
			return append(lines, make([]byte, 100))
		}, testKey, 7, 7, ErrTornRecord, "incomplete"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			files, _ := writeTestLog(t, dir, 6)
			writeLines(t, files[0], tt.tamper(t, readLines(t, files[0])))
			_, err := Verify(context.Background(), tt.key, files)
			var ve *VerifyError
			if !errors.As(err, &ve) || !errors.Is(err, tt.sentinel) {
				t.Fatalf("Verify = %v, want a *VerifyError wrapping %v", err, tt.sentinel)
			}
			if ve.File != files[0] || ve.Line != tt.line || ve.Seq != tt.seq || !strings.Contains(ve.Reason, tt.why) {
				t.Fatalf("Verify = %q, want %s:%d seq %d: ...%s...", ve.String(), files[0], tt.line, tt.seq, tt.why)
			}
		})
	}
}

func TestVerifyErrorFormat(t *testing.T) {
	e := &VerifyError{File: "audit-00000001.jsonl", Line: 3, Seq: 4, Reason: "why", Err: ErrTampered}
	if got, want := e.String(), "audit-00000001.jsonl:3 seq 4: why"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	if got, want := e.Error(), "access: audit verify: audit-00000001.jsonl:3 seq 4: why"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}

func TestVerifyTornKeepsEarlierRecords(t *testing.T) {
	dir := t.TempDir()
	files, _ := writeTestLog(t, dir, 4)
	data, _ := os.ReadFile(files[0])
	if err := os.WriteFile(files[0], data[:len(data)-7], 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := Verify(context.Background(), testKey, files)
	if !errors.Is(err, ErrTornRecord) || errors.Is(err, ErrTampered) {
		t.Fatalf("Verify = %v, want ErrTornRecord only", err)
	}
	if res.Records != 3 || res.LastSeq != 3 {
		t.Fatalf("Verify result = %+v, want the 3 complete records verified", res)
	}
}

func TestVerifyTruncatedTail(t *testing.T) {
	dir := t.TempDir()
	files, cp := writeTestLog(t, dir, 6)
	lines := readLines(t, files[0])
	writeLines(t, files[0], lines[:4])
	// Without a checkpoint a clean cut at a line boundary looks complete.
	if _, err := Verify(context.Background(), testKey, files); err != nil {
		t.Fatalf("Verify without checkpoint = %v, want nil", err)
	}
	_, err := Verify(context.Background(), testKey, files, ExpectCheckpoint(cp))
	var ve *VerifyError
	if !errors.As(err, &ve) || !errors.Is(err, ErrTruncated) || ve.Line != 5 || ve.Seq != 5 || !strings.Contains(ve.Reason, "counts 6 records") {
		t.Fatalf("Verify with checkpoint = %v, want ErrTruncated at line 5 seq 5", err)
	}
	// All records removed.
	writeLines(t, files[0], nil)
	if _, err := Verify(context.Background(), testKey, files, ExpectCheckpoint(cp)); !errors.Is(err, ErrTruncated) {
		t.Fatalf("Verify of an emptied log = %v, want ErrTruncated", err)
	}
}

func TestVerifyCheckpointChecks(t *testing.T) {
	dir := t.TempDir()
	files, cp := writeTestLog(t, dir, 3)
	forged := cp
	forged.Count = 2
	if _, err := Verify(context.Background(), testKey, files, ExpectCheckpoint(forged)); !errors.Is(err, ErrInvalidCheckpoint) {
		t.Fatalf("Verify with forged checkpoint = %v, want ErrInvalidCheckpoint", err)
	}
	other := bytes.Repeat([]byte{1}, AuditKeySize)
	if _, err := Verify(context.Background(), other, files, ExpectCheckpoint(cp)); !errors.Is(err, ErrInvalidCheckpoint) {
		t.Fatalf("Verify with another key's checkpoint = %v, want ErrInvalidCheckpoint", err)
	}
	// A genuine checkpoint of a different log under the same key.
	dir2 := t.TempDir()
	l, rec := openTestLog(t, dir2)
	for i := 1; i <= 3; i++ {
		r := testRecord(i)
		r.UserID = "someone-else"
		if err := l.WriteRecord(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	_, err := Verify(context.Background(), testKey, files, ExpectCheckpoint(rec.last(t)))
	var ve *VerifyError
	if !errors.As(err, &ve) || !errors.Is(err, ErrTampered) || ve.Seq != 3 || !strings.Contains(ve.Reason, "checkpoint") {
		t.Fatalf("Verify against another log's checkpoint = %v, want ErrTampered at seq 3", err)
	}
	// The JSON form round-trips.
	parsed, err := ParseCheckpoint([]byte(cp.String()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(context.Background(), testKey, files, ExpectCheckpoint(parsed)); err != nil {
		t.Fatalf("Verify with parsed checkpoint = %v", err)
	}
}

func TestParseCheckpointErrors(t *testing.T) {
	for _, doc := range []string{
		``, `{}`, `{"count":1,"head":"00","time":"2026-01-01T00:00:00Z","kid":"0000000000000000","mac":"00"}`,
		`{"count":1,"head":"` + strings.Repeat("0", 64) + `","time":"2026-01-01T00:00:00Z","kid":"0000000000000000","mac":"` + strings.Repeat("0", 64) + `","x":1}`,
		`{"count":1,"head":"` + strings.Repeat("0", 64) + `","time":"2026-01-01T00:00:00Z","kid":"0000000000000000","mac":"` + strings.Repeat("0", 64) + `"} {}`,
	} {
		if _, err := ParseCheckpoint([]byte(doc)); !errors.Is(err, ErrInvalidCheckpoint) {
			t.Errorf("ParseCheckpoint(%q) = %v, want ErrInvalidCheckpoint", doc, err)
		}
	}
}

func TestAuditLogRotation(t *testing.T) {
	dir := t.TempDir()
	files, cp := writeTestLog(t, dir, 40, WithMaxFileSize(1500))
	if len(files) < 4 {
		t.Fatalf("%d files, want rotation into at least 4", len(files))
	}
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 1500 {
			t.Errorf("%s has %d bytes, above the 1500 limit", f, st.Size())
		}
	}
	res, err := Verify(context.Background(), testKey, files, ExpectCheckpoint(cp))
	if err != nil || res.Records != 40 || res.Files != len(files) {
		t.Fatalf("Verify = %+v, %v, want 40 records over %d files", res, err, len(files))
	}
	// The second file continues the first one's chain.
	first := readLines(t, files[0])
	second := readLines(t, files[1])
	l0, err := parseLine(bytes.TrimSuffix(first[len(first)-1], []byte("\n")))
	if err != nil {
		t.Fatal(err)
	}
	l1, err := parseLine(bytes.TrimSuffix(second[0], []byte("\n")))
	if err != nil {
		t.Fatal(err)
	}
	if l1.Seq != l0.Seq+1 || l1.prev == [32]byte{} {
		t.Fatalf("second file starts at seq %d after %d", l1.Seq, l0.Seq)
	}

	t.Run("files out of order", func(t *testing.T) {
		swapped := append([]string{files[1], files[0]}, files[2:]...)
		_, err := Verify(context.Background(), testKey, swapped)
		var ve *VerifyError
		if !errors.As(err, &ve) || !errors.Is(err, ErrTampered) || ve.File != files[1] || ve.Line != 1 {
			t.Fatalf("Verify(swapped files) = %v, want ErrTampered at %s:1", err, files[1])
		}
	})
	t.Run("middle file missing", func(t *testing.T) {
		missing := append([]string{files[0]}, files[2:]...)
		_, err := Verify(context.Background(), testKey, missing)
		var ve *VerifyError
		if !errors.As(err, &ve) || !errors.Is(err, ErrTampered) || ve.File != files[2] || ve.Line != 1 || !strings.Contains(ve.Reason, "missing") {
			t.Fatalf("Verify(missing file) = %v, want ErrTampered at %s:1", err, files[2])
		}
	})
	t.Run("last file missing", func(t *testing.T) {
		if _, err := Verify(context.Background(), testKey, files[:len(files)-1], ExpectCheckpoint(cp)); !errors.Is(err, ErrTruncated) {
			t.Fatalf("Verify(without last file) = %v, want ErrTruncated", err)
		}
	})
	t.Run("torn line in an earlier file", func(t *testing.T) {
		d := t.TempDir()
		fs, _ := writeTestLog(t, d, 40, WithMaxFileSize(1500))
		data, _ := os.ReadFile(fs[0])
		os.WriteFile(fs[0], data[:len(data)-1], 0o600)
		if _, err := Verify(context.Background(), testKey, fs); !errors.Is(err, ErrTampered) {
			t.Fatalf("Verify = %v, want ErrTampered for an incomplete line before the last file", err)
		}
	})
	t.Run("archived head", func(t *testing.T) {
		// Verifying from the second file on needs the checkpoint the first
		// file ends at.
		if _, err := Verify(context.Background(), testKey, files[1:]); !errors.Is(err, ErrTampered) {
			t.Fatalf("Verify(files[1:]) = %v, want ErrTampered (log does not start at seq 1)", err)
		}
		head := sha256Line(first[len(first)-1])
		anchor := newCheckpoint(testKey, keyID(testKey), l0.Seq, &head, time.Now())
		res, err := Verify(context.Background(), testKey, files[1:], StartAfter(anchor), ExpectCheckpoint(cp))
		if err != nil || res.FirstSeq != l0.Seq+1 || res.LastSeq != 40 {
			t.Fatalf("Verify(files[1:], StartAfter) = %+v, %v, want seq %d..40", res, err, l0.Seq+1)
		}
		wrong := newCheckpoint(testKey, keyID(testKey), l0.Seq, &[32]byte{1}, time.Now())
		if _, err := Verify(context.Background(), testKey, files[1:], StartAfter(wrong)); !errors.Is(err, ErrTampered) {
			t.Fatalf("Verify(files[1:], wrong StartAfter) = %v, want ErrTampered", err)
		}
	})
}

func sha256Line(line []byte) [32]byte {
	return sha256.Sum256(bytes.TrimSuffix(line, []byte("\n")))
}

func TestAuditLogCheckpoints(t *testing.T) {
	dir := t.TempDir()
	l, rec := openTestLog(t, dir, WithCheckpointEvery(10))
	for i := 1; i <= 25; i++ {
		if err := l.WriteRecord(context.Background(), testRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	mid, err := l.Checkpoint(context.Background())
	if err != nil || mid.Count != 25 {
		t.Fatalf("Checkpoint() = %+v, %v, want count 25", mid, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	cps := rec.all()
	var counts []uint64
	for _, cp := range cps {
		counts = append(counts, cp.Count)
	}
	if fmt.Sprint(counts) != "[10 20 25]" {
		t.Fatalf("checkpoints at %v, want [10 20 25]", counts)
	}
	files, _ := ListAuditFiles(dir, "")
	for _, cp := range append(cps, mid) {
		if _, err := Verify(context.Background(), testKey, files, ExpectCheckpoint(cp)); err != nil {
			t.Errorf("Verify with checkpoint %d = %v", cp.Count, err)
		}
	}
	if _, err := l.Checkpoint(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Checkpoint after Close = %v, want ErrClosed", err)
	}
	if err := l.WriteRecord(context.Background(), testRecord(1)); !errors.Is(err, ErrClosed) {
		t.Errorf("WriteRecord after Close = %v, want ErrClosed", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
}

func TestAuditLogReopen(t *testing.T) {
	dir := t.TempDir()
	writeTestLog(t, dir, 5, WithMaxFileSize(1500))
	files, cp := writeTestLog(t, dir, 30, WithMaxFileSize(1500))
	res, err := Verify(context.Background(), testKey, files, ExpectCheckpoint(cp))
	if err != nil || res.Records != 35 || cp.Count != 35 {
		t.Fatalf("Verify after reopen = %+v, %v (checkpoint %d), want 35 records", res, err, cp.Count)
	}
	// A newest file left empty by a crash right after rotation is reused.
	empty := filepath.Join(dir, segmentName(DefaultFilePrefix, uint64(len(files)+1)))
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	files, cp = writeTestLog(t, dir, 1, WithMaxFileSize(1500))
	if res, err := Verify(context.Background(), testKey, files, ExpectCheckpoint(cp)); err != nil || res.Records != 36 || files[len(files)-1] != empty {
		t.Fatalf("Verify after reopen over an empty file = %+v, %v, want 36 records ending in %s", res, err, empty)
	}
}

func TestAuditLogReopenRefusesBadLogs(t *testing.T) {
	t.Run("torn", func(t *testing.T) {
		dir := t.TempDir()
		files, _ := writeTestLog(t, dir, 3)
		data, _ := os.ReadFile(files[0])
		os.WriteFile(files[0], data[:len(data)-10], 0o600)
		if _, err := OpenAuditLog(context.Background(), dir, testKey); !errors.Is(err, ErrTornRecord) {
			t.Fatalf("OpenAuditLog over a torn log = %v, want ErrTornRecord", err)
		}
		files, cp := writeTestLog(t, dir, 2, WithRepairTornTail())
		res, err := Verify(context.Background(), testKey, files, ExpectCheckpoint(cp))
		if err != nil || res.Records != 4 {
			t.Fatalf("Verify after repair = %+v, %v, want 4 records (2 kept + 2 new)", res, err)
		}
	})
	t.Run("torn first line of a new file", func(t *testing.T) {
		dir := t.TempDir()
		files, _ := writeTestLog(t, dir, 40, WithMaxFileSize(1500))
		// A crash during the first append to the next file.
		torn := filepath.Join(dir, segmentName(DefaultFilePrefix, uint64(len(files)+1)))
		if err := os.WriteFile(torn, []byte(`{"v":1,"seq":41,"ti`), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenAuditLog(context.Background(), dir, testKey); !errors.Is(err, ErrTornRecord) {
			t.Fatalf("OpenAuditLog = %v, want ErrTornRecord", err)
		}
		files, cp := writeTestLog(t, dir, 1, WithMaxFileSize(1500), WithRepairTornTail())
		res, err := Verify(context.Background(), testKey, files, ExpectCheckpoint(cp))
		if err != nil || res.Records != 41 || res.LastSeq != 41 {
			t.Fatalf("Verify after repair = %+v, %v, want 41 records", res, err)
		}
	})
	t.Run("tampered", func(t *testing.T) {
		dir := t.TempDir()
		files, _ := writeTestLog(t, dir, 3)
		lines := readLines(t, files[0])
		lines[1] = bytes.Replace(lines[1], []byte("user-2"), []byte("user-9"), 1)
		writeLines(t, files[0], lines)
		if _, err := OpenAuditLog(context.Background(), dir, testKey); !errors.Is(err, ErrTampered) {
			t.Fatalf("OpenAuditLog over a tampered log = %v, want ErrTampered", err)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		dir := t.TempDir()
		writeTestLog(t, dir, 1)
		if _, err := OpenAuditLog(context.Background(), dir, bytes.Repeat([]byte{9}, 32)); !errors.Is(err, ErrWrongKey) {
			t.Fatalf("OpenAuditLog with another key = %v, want ErrWrongKey", err)
		}
	})
}

func TestOpenAuditLogErrors(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := OpenAuditLog(context.Background(), dir, make([]byte, n)); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("OpenAuditLog(%d-byte key) = %v, want ErrInvalidKey", n, err)
		}
		if _, err := Verify(context.Background(), make([]byte, n), []string{"x"}); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Verify(%d-byte key) = %v, want ErrInvalidKey", n, err)
		}
	}
	for name, opt := range map[string]LogOption{
		"bad prefix": WithFilePrefix("a/b"), "empty prefix": WithFilePrefix(""), "negative size": WithMaxFileSize(-1),
		"empty batch": WithSyncPolicy(SyncBatch(0, 0)), "negative batch": WithSyncPolicy(SyncBatch(-1, time.Second)),
		"nil checkpoint func": WithCheckpointFunc(nil),
	} {
		if l, err := OpenAuditLog(context.Background(), dir, testKey, opt); l != nil || err == nil {
			t.Errorf("OpenAuditLog(%s) = %v, %v, want an error", name, l, err)
		}
	}
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := OpenAuditLog(context.Background(), file, testKey); err == nil {
		t.Error("OpenAuditLog on a regular file succeeded")
	}
	l, _ := openTestLog(t, dir)
	defer l.Close()
	if _, err := OpenAuditLog(context.Background(), dir, testKey); !errors.Is(err, ErrLocked) && runtime.GOOS == "linux" {
		t.Errorf("second OpenAuditLog on the same dir = %v, want ErrLocked", err)
	}
	if _, err := Verify(context.Background(), testKey, nil); err == nil {
		t.Error("Verify(no files) succeeded")
	}
}

func TestAuditLogWriteErrors(t *testing.T) {
	t.Run("record too large", func(t *testing.T) {
		l, _ := openTestLog(t, t.TempDir())
		defer l.Close()
		r := testRecord(1)
		r.UserID = strings.Repeat("x", MaxRecordSize)
		if err := l.WriteRecord(context.Background(), r); err == nil || !strings.Contains(err.Error(), "exceeds") {
			t.Fatalf("WriteRecord(huge) = %v, want a size error", err)
		}
		if err := l.WriteRecord(context.Background(), testRecord(2)); err != nil {
			t.Fatalf("WriteRecord after a refused record = %v", err)
		}
	})
	t.Run("time out of range", func(t *testing.T) {
		l, _ := openTestLog(t, t.TempDir())
		defer l.Close()
		r := testRecord(1)
		r.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
		if err := l.WriteRecord(context.Background(), r); err == nil {
			t.Fatal("WriteRecord(year 10000) succeeded; Verify could not parse it")
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		l, _ := openTestLog(t, t.TempDir())
		defer l.Close()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := l.WriteRecord(ctx, testRecord(1)); !errors.Is(err, context.Canceled) {
			t.Fatalf("WriteRecord(cancelled) = %v, want context.Canceled", err)
		}
	})
	t.Run("closed descriptor fails closed", func(t *testing.T) {
		dir := t.TempDir()
		l, _ := openTestLog(t, dir)
		a, _ := NewAuditor(WithSink(l))
		g, _ := NewGuard(mustPolicy(t, testConfig()), a)
		ctx := WithPrincipal(context.Background(), Principal{UserID: "alice", Roles: []string{"support"}})
		if err := g.Authorize(ctx, ActionDecrypt, FieldResource("users", "email")); err != nil {
			t.Fatal(err)
		}
		l.f.Close() // the descriptor goes away under the log
		err := g.Authorize(ctx, ActionDecrypt, FieldResource("users", "email"))
		if !errors.Is(err, ErrAuditFailed) || !errors.Is(err, os.ErrClosed) {
			t.Fatalf("Authorize with a broken audit file = %v, want ErrAuditFailed wrapping os.ErrClosed", err)
		}
		l.Close()
		files, _ := ListAuditFiles(dir, "")
		if res, err := Verify(context.Background(), testKey, files); err != nil || res.Records != 1 {
			t.Fatalf("Verify = %+v, %v, want the one record written before the failure", res, err)
		}
	})
	t.Run("fsync failure is sticky", func(t *testing.T) {
		l, _ := openTestLog(t, t.TempDir())
		errIO := errors.New("input/output error")
		var fail atomic.Bool
		l.syncFile = func(f *os.File) error {
			if fail.Load() {
				return errIO
			}
			return f.Sync()
		}
		if err := l.WriteRecord(context.Background(), testRecord(1)); err != nil {
			t.Fatal(err)
		}
		fail.Store(true)
		if err := l.WriteRecord(context.Background(), testRecord(2)); !errors.Is(err, errIO) {
			t.Fatalf("WriteRecord with failing fsync = %v, want its error", err)
		}
		fail.Store(false)
		if err := l.WriteRecord(context.Background(), testRecord(3)); !errors.Is(err, errIO) {
			t.Fatalf("WriteRecord after an fsync failure = %v, want the sticky error", err)
		}
		if err := l.Close(); !errors.Is(err, errIO) {
			t.Fatalf("Close = %v, want the sticky error", err)
		}
	})
	t.Run("batch fsync failure reported by next write", func(t *testing.T) {
		l, _ := openTestLog(t, t.TempDir(), WithSyncPolicy(SyncBatch(1, 0)))
		errIO := errors.New("input/output error")
		synced := make(chan struct{}, 1)
		l.mu.Lock()
		l.syncFile = func(*os.File) error {
			defer func() { synced <- struct{}{} }()
			return errIO
		}
		l.mu.Unlock()
		require.NoError(t, l.WriteRecord(context.Background(), testRecord(1)), "batched WriteRecord: the sync is in the background")
		<-synced
		// The background sync records its failure once it holds the lock
		// again; it broadcasts in the same critical section.
		l.mu.Lock()
		for l.err == nil {
			l.cond.Wait()
		}
		l.mu.Unlock()
		require.ErrorIs(t, l.WriteRecord(context.Background(), testRecord(2)), errIO, "WriteRecord after a failed background fsync")
		require.ErrorIs(t, l.Close(), errIO, "Close after a failed background fsync")
	})
}

func TestAuditLogGroupCommit(t *testing.T) {
	l, _ := openTestLog(t, t.TempDir())
	var rounds atomic.Int32
	entered := make(chan struct{})
	release := make(chan struct{})
	l.syncFile = func(f *os.File) error {
		if rounds.Add(1) == 1 {
			close(entered)
			<-release
		}
		return f.Sync()
	}
	const writers = 8
	errs := make(chan error, writers)
	go func() { errs <- l.WriteRecord(context.Background(), testRecord(1)) }()
	<-entered // the first writer is inside fsync
	for i := 2; i <= writers; i++ {
		go func() { errs <- l.WriteRecord(context.Background(), testRecord(i)) }()
	}
	// Wait until every other writer has appended its record and waits.
	for {
		l.mu.Lock()
		n := l.seq
		l.mu.Unlock()
		if n == writers {
			break
		}
		runtime.Gosched()
	}
	close(release)
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := rounds.Load(); got != 2 {
		t.Fatalf("%d fsync rounds for %d concurrent writers, want 2 (one shared by the seven waiting)", got, writers)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestAuditLogConcurrentWriters(t *testing.T) {
	policies := map[string]SyncPolicy{
		"each":  SyncEachRecord(),
		"batch": SyncBatch(7, time.Millisecond),
		"never": SyncNever(),
	}
	for name, sp := range policies {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			l, rec := openTestLog(t, dir, WithSyncPolicy(sp), WithMaxFileSize(4096), WithCheckpointEvery(16))
			const goroutines, each = 8, 25
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Go(func() {
					for i := range each {
						if err := l.WriteRecord(context.Background(), testRecord(g*each+i)); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Go(func() {
				for range 5 {
					if _, err := l.Checkpoint(context.Background()); err != nil {
						t.Error(err)
					}
				}
			})
			wg.Wait()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			files, _ := ListAuditFiles(dir, "")
			res, err := Verify(context.Background(), testKey, files, ExpectCheckpoint(rec.last(t)))
			if err != nil || res.Records != goroutines*each {
				t.Fatalf("Verify = %+v, %v, want %d records", res, err, goroutines*each)
			}
			for _, cp := range rec.all() {
				if _, err := Verify(context.Background(), testKey, files, ExpectCheckpoint(cp)); err != nil {
					t.Fatalf("Verify against checkpoint %d = %v", cp.Count, err)
				}
			}
		})
	}
}

func TestListAuditFiles(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"audit-00000010.jsonl", "audit-00000002.jsonl", "audit-x.jsonl", "other-00000001.jsonl", "audit-00000001.json", "audit-1.jsonl", "audit-100000000.jsonl"} {
		os.WriteFile(filepath.Join(dir, n), nil, 0o600)
	}
	files, err := ListAuditFiles(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	if got, want := strings.Join(names, " "), "audit-00000002.jsonl audit-00000010.jsonl audit-100000000.jsonl"; got != want {
		t.Fatalf("ListAuditFiles = %s, want %s", got, want)
	}
}

func TestGuardToAuditLogEndToEnd(t *testing.T) {
	dir := t.TempDir()
	l, rec := openTestLog(t, dir)
	a, err := NewAuditor(WithSink(l), WithTraceIDFunc(func(context.Context) string { return "trace-e2e" }))
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGuard(mustPolicy(t, testConfig()), a)
	if err != nil {
		t.Fatal(err)
	}
	alice := WithPrincipal(context.Background(), Principal{UserID: "alice", Roles: []string{"ssnreader"}})
	bob := WithPrincipal(context.Background(), Principal{UserID: "bob", Roles: []string{"support"}})
	ssn := FieldResource("users", "ssn")
	if err := g.Authorize(alice, ActionDecrypt, ssn); err != nil {
		t.Fatalf("alice: %v", err)
	}
	if err := g.Authorize(bob, ActionDecrypt, ssn); !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("bob: %v, want ErrAccessDenied", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := ListAuditFiles(dir, "")
	if _, err := Verify(context.Background(), testKey, files, ExpectCheckpoint(rec.last(t))); err != nil {
		t.Fatalf("Verify = %v", err)
	}
	lines := readLines(t, files[0])
	if len(lines) != 2 {
		t.Fatalf("%d audit lines, want 2", len(lines))
	}
	for i, want := range []struct{ user, decision, reason string }{
		{"alice", "allow", ""}, {"bob", "deny", reasonNoPermission},
	} {
		l, err := parseLine(bytes.TrimSuffix(lines[i], []byte("\n")))
		if err != nil {
			t.Fatal(err)
		}
		if l.User != want.user || l.Decision != want.decision || l.Reason != want.reason || l.Resource != ssn || l.Trace != "trace-e2e" {
			t.Errorf("line %d = %+v, want %s %s %q on %s", i+1, l, want.user, want.decision, want.reason, ssn)
		}
	}
}
