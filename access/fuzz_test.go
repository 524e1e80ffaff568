package access

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"os"
	"slices"
	"testing"
)

// seedLog returns the lines of a small valid log.
func seedLog(f *testing.F) [][]byte {
	f.Helper()
	dir := f.TempDir()
	l, err := OpenAuditLog(context.Background(), dir, testKey, WithCheckpointFunc(func(Checkpoint) {}))
	if err != nil {
		f.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		r := testRecord(i)
		r.Reason, r.TraceID = "no matching permission", "4bf92f3577b34da6a3ce929d0e0e4736"
		if err := l.WriteRecord(context.Background(), r); err != nil {
			f.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		f.Fatal(err)
	}
	files, err := ListAuditFiles(dir, "")
	if err != nil || len(files) != 1 {
		f.Fatal(files, err)
	}
	var lines [][]byte
	data, _ := readFile(files[0])
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		if len(line) > 0 {
			lines = append(lines, line)
		}
	}
	return lines
}

func FuzzParseRecordLine(f *testing.F) {
	for _, line := range seedLog(f) {
		f.Add(bytes.TrimSuffix(line, []byte("\n")))
	}
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		l, err := parseLine(line)
		if err != nil {
			return
		}
		// What parses re-encodes to a line that parses to the same values.
		r := Record{Time: l.time, UserID: l.User, Roles: l.Roles, Action: l.Action, Resource: l.Resource,
			Decision: Decision(l.Decision), Reason: l.Reason, TraceID: l.Trace}
		m := newMAC(testKey)
		line2, err := appendRecord(nil, m, l.Kid, l.Seq, &l.prev, &r)
		if err != nil {
			t.Fatalf("re-encoding a parsed record: %v", err)
		}
		again, err := parseLine(line2)
		if err != nil {
			t.Fatalf("re-encoded record does not parse: %v", err)
		}
		if again.User != l.User || !slices.Equal(again.Roles, l.Roles) || again.Action != l.Action ||
			again.Resource != l.Resource || again.Decision != l.Decision || again.Reason != l.Reason ||
			again.Trace != l.Trace || !again.time.Equal(l.time) || again.Seq != l.Seq || again.prev != l.prev {
			t.Fatalf("round trip changed the record: %+v -> %+v", l, again)
		}
	})
}

func FuzzVerify(f *testing.F) {
	lines := seedLog(f)
	f.Add(bytes.Join(lines, nil))
	f.Add(bytes.Join(lines[:2], nil))
	f.Add(bytes.Join([][]byte{lines[0], lines[2], lines[1]}, nil))
	f.Add(append(bytes.Join(lines, nil), "{\"v\":1"...))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := newVerifier(testKey, verifyConfig{})
		if err != nil {
			t.Fatal(err)
		}
		err = v.file(context.Background(), "fuzz.jsonl", bytes.NewReader(data), true)
		if err != nil {
			var ve *VerifyError
			if !errors.As(err, &ve) || ve.Line < 1 || ve.File != "fuzz.jsonl" {
				t.Fatalf("Verify error %v is not a positioned *VerifyError", err)
			}
			return
		}
		// Whatever verifies is a run of complete records from seq 1.
		if n := bytes.Count(data, []byte("\n")); uint64(n) != v.records || (n > 0 && v.firstSeq != 1) {
			t.Fatalf("verified %d records from seq %d in %d lines", v.records, v.firstSeq, n)
		}
	})
}

func FuzzParseCheckpoint(f *testing.F) {
	f.Add([]byte(newCheckpoint(testKey, keyID(testKey), 7, &[32]byte{1}, testRecord(1).Time).String()))
	f.Add([]byte(`{"count":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cp, err := ParseCheckpoint(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidCheckpoint) {
				t.Fatalf("ParseCheckpoint error %v does not wrap ErrInvalidCheckpoint", err)
			}
			return
		}
		// A parsed checkpoint either verifies or is rejected; it never
		// panics, and only a genuine one verifies.
		if _, err := verifyCheckpoint(testKey, keyID(testKey), cp); err == nil {
			want := newCheckpoint(testKey, keyID(testKey), cp.Count, (*[32]byte)(mustHex(t, cp.Head)), cp.Time)
			if want.MAC != cp.MAC {
				t.Fatalf("checkpoint %v verified with a MAC we would not produce", cp)
			}
		}
	})
}

func readFile(name string) ([]byte, error) { return os.ReadFile(name) }

func newMAC(key []byte) hash.Hash { return hmac.New(sha256.New, key) }

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		t.Fatalf("bad hex %q", s)
	}
	return b
}
