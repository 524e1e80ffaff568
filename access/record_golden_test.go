package access

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// goldenLog is an audit log written, under testKey, by the hand-written
// record encoder that encoding/json replaced. Its records cover every case
// of string escaping: quotes and backslashes, the control characters with
// short escapes and without, DEL (0x7f), HTML characters, U+2028/U+2029,
// invalid UTF-8 and non-ASCII text.
var goldenLog = filepath.Join("testdata", "audit", "golden.log")

// goldenRecords are the records of goldenLog, in order.
func goldenRecords() []Record {
	at := func(i int) time.Time { return time.Date(2026, 3, 1, 12, 0, i, 123456789, time.UTC) }
	return []Record{
		{Time: at(0), UserID: "alice", Roles: []string{"admin", "support"}, Action: "decrypt", Resource: "users/42/email", Decision: DecisionAllow, TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"},
		{Time: at(1), UserID: "bob", Action: "rotate", Decision: DecisionDeny, Reason: "no matching permission"},
		{Time: at(2), UserID: `quote " backslash \ slash /`, Roles: []string{"<script>&amp;"}, Action: "read", Resource: "a\nb\rc\td", Decision: DecisionAllow},
		{Time: at(3), UserID: "nul \x00 bell \x07 esc \x1b us \x1f", Action: "read", Decision: DecisionAllow, Reason: "line\u2028para\u2029end"},
		{Time: at(4), UserID: "invalid \xff\xfe utf-8 \xc3", Action: "read", Resource: "ünïcödé 日本 🔑", Decision: DecisionDeny},
		{Time: time.Date(2026, 3, 1, 12, 0, 5, 0, time.UTC), UserID: "carol", Roles: []string{""}, Action: "write", Decision: DecisionAllow},
		{Time: at(6), UserID: "backspace \b formfeed \f delete \x7f", Action: "read", Decision: DecisionAllow},
	}
}

// TestGoldenLog checks that logs written before encoding/json wrote the
// records still verify, and that the records are written byte for byte as
// before except where encoding/json chose other valid JSON: \b and \f for
// U+0008 and U+000C (before: \u0008, \u000c), DEL (0x7f) unescaped (before:
// \u007f), invalid UTF-8 as the U+FFFD character (before: its \ufffd
// escape). Verify MACs and chains the bytes of each line as they are in the
// file, never a re-encoding, so a log that mixes both forms verifies too.
func TestGoldenLog(t *testing.T) {
	data, err := os.ReadFile(goldenLog)
	require.NoError(t, err)
	res, err := Verify(context.Background(), testKey, []string{goldenLog})
	require.NoError(t, err, "Verify(%s), a log written by the previous encoder", goldenLog)
	records := goldenRecords()
	assert.Equal(t, uint64(len(records)), res.Records, "Verify(%s) records", goldenLog)

	changed := map[uint64]string{
		5: "\"user\":\"invalid \uFFFD\uFFFD utf-8 \uFFFD\"",
		7: "\"user\":\"backspace \\b formfeed \\f delete \x7f\"",
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	require.Len(t, lines, len(records)+1, "lines of %s", goldenLog)
	var prev [32]byte
	m := newMAC(testKey)
	for i, r := range records {
		seq := uint64(i + 1)
		golden := bytes.TrimSuffix(lines[i], []byte("\n"))
		got, err := appendRecord(nil, m, keyID(testKey), seq, &prev, &r)
		require.NoError(t, err, "appendRecord(record %d)", seq)
		if want, ok := changed[seq]; ok {
			assert.Contains(t, string(got), want, "appendRecord(record %d) writes the encoding/json form", seq)
			assert.NotEqual(t, golden, got, "record %d was expected to change form", seq)
			l, err := parseLine(golden)
			require.NoError(t, err, "parseLine(golden record %d)", seq)
			n, err := parseLine(got)
			require.NoError(t, err, "parseLine(appendRecord(record %d))", seq)
			assert.Equal(t, l.User, n.User, "record %d decodes to the same user in both forms", seq)
		} else {
			assert.Equal(t, string(golden), string(got), "appendRecord(record %d) = the line the previous encoder wrote", seq)
		}
		prev = sha256.Sum256(golden)
	}
}
