package access

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"
	"unicode/utf8"
)

// AuditKeySize is the size of the audit key: the HMAC-SHA256 key that
// authenticates audit records and checkpoints.
const AuditKeySize = 32

// AuditKeyLabel is the label under which a keyring derives the audit key:
// kr.DeriveKey(ctx, access.AuditKeyLabel). Whoever holds the keyring's KEK
// can recompute the key; whoever can only edit the audit files cannot.
const AuditKeyLabel = "keyward.audit/v1"

// MaxRecordSize is the largest audit record line, newline excluded. AuditLog
// refuses larger records and Verify reports them as tampering.
const MaxRecordSize = 64 << 10

// Domain separation of the three uses of the audit key.
const (
	macRecordDomain     = "keyward audit record v1\n"
	macCheckpointDomain = "keyward audit checkpoint v1\n"
	keyIDDomain         = "keyward audit key id v1"
)

// macSuffix is the fixed-size tail of a record line:
// ,"mac":"<64 hex digits>"}
const (
	macPrefix    = `,"mac":"`
	macSuffixLen = len(macPrefix) + 2*sha256.Size + len(`"}`)
)

func checkKey(key []byte) error {
	if len(key) != AuditKeySize {
		return fmt.Errorf("%w: %d bytes, want %d", ErrInvalidKey, len(key), AuditKeySize)
	}
	return nil
}

// keyID returns the public identifier of an audit key: 8 bytes of an HMAC of
// a constant, in hex. It tells keys apart without revealing them.
func keyID(key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(keyIDDomain))
	return hex.EncodeToString(m.Sum(nil)[:8])
}

// recordMAC computes the MAC of a record body into dst.
func recordMAC(m hash.Hash, body []byte, dst []byte) []byte {
	m.Reset()
	m.Write([]byte(macRecordDomain))
	m.Write(body)
	return m.Sum(dst)
}

// appendRecord appends the line of record r (without newline) to dst: the
// JSON object of auditLine's fields as encoding/json writes them (<, > and &
// kept as they are, invalid UTF-8 first made valid by validUTF8), with the
// MAC of those bytes as its last member.
func appendRecord(dst []byte, m hash.Hash, kid string, seq uint64, prev *[sha256.Size]byte, r *Record) ([]byte, error) {
	l := auditLine{
		V:        1,
		Seq:      seq,
		Time:     r.Time.UTC().Format(time.RFC3339Nano),
		Kid:      kid,
		User:     validUTF8(r.UserID),
		Action:   validUTF8(r.Action),
		Resource: validUTF8(r.Resource),
		Decision: validUTF8(string(r.Decision)),
		Reason:   validUTF8(r.Reason),
		Trace:    validUTF8(r.TraceID),
		Prev:     hex.EncodeToString(prev[:]),
	}
	if len(r.Roles) > 0 {
		l.Roles = make([]string, len(r.Roles))
		for i, role := range r.Roles {
			l.Roles[i] = validUTF8(role)
		}
	}
	start := len(dst)
	buf := bytes.NewBuffer(dst)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&l); err != nil {
		return dst, err
	}
	// The MAC covers the object up to, not including, its closing brace
	// (Encode ends it with "}\n").
	dst = buf.Bytes()
	dst = dst[:len(dst)-2]
	var sum [sha256.Size]byte
	mac := recordMAC(m, dst[start:], sum[:0])
	dst = append(dst, macPrefix...)
	dst = hex.AppendEncode(dst, mac)
	return append(dst, '"', '}'), nil
}

// validUTF8 returns s with each byte that is not part of valid UTF-8
// replaced by U+FFFD (as a conversion to []rune does), so that a record's
// bytes do not depend on how a Go release of encoding/json writes invalid
// UTF-8 (an escape or the rune), and it decodes as records written before
// encoding/json did.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return string([]rune(s))
}

// auditLine is a record line: appendRecord writes its exported fields in
// this order, parseLine reads them back.
type auditLine struct {
	V        int      `json:"v"`
	Seq      uint64   `json:"seq"`
	Time     string   `json:"time"`
	Kid      string   `json:"kid"`
	User     string   `json:"user"`
	Roles    []string `json:"roles,omitempty"`
	Action   string   `json:"action"`
	Resource string   `json:"resource,omitempty"`
	Decision string   `json:"decision"`
	Reason   string   `json:"reason,omitempty"`
	Trace    string   `json:"trace,omitempty"`
	Prev     string   `json:"prev"`

	body []byte            // the bytes the MAC covers
	mac  [sha256.Size]byte // the MAC in the line
	prev [sha256.Size]byte // Prev, decoded
	time time.Time         // Time, parsed
}

// parseLine parses a record line (without newline). It checks the syntax
// and fields, not the MAC or the chain.
func parseLine(line []byte) (*auditLine, error) {
	if len(line) > MaxRecordSize {
		return nil, fmt.Errorf("line longer than %d bytes", MaxRecordSize)
	}
	if len(line) < macSuffixLen+2 || line[0] != '{' {
		return nil, errors.New("not a record")
	}
	body, tail := line[:len(line)-macSuffixLen], line[len(line)-macSuffixLen:]
	if !bytes.HasPrefix(tail, []byte(macPrefix)) || !bytes.HasSuffix(tail, []byte(`"}`)) {
		return nil, errors.New("record does not end with its mac")
	}
	l := &auditLine{body: body}
	if err := decodeHex(l.mac[:], tail[len(macPrefix):len(macPrefix)+2*sha256.Size]); err != nil {
		return nil, errors.New("mac is not lowercase hex")
	}
	obj := make([]byte, 0, len(body)+1)
	obj = append(append(obj, body...), '}')
	dec := json.NewDecoder(bytes.NewReader(obj))
	dec.DisallowUnknownFields()
	if err := dec.Decode(l); err != nil {
		return nil, fmt.Errorf("invalid record JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("invalid record JSON: data after the record")
	}
	switch {
	case l.V != 1:
		return nil, fmt.Errorf("unsupported record version %d", l.V)
	case l.Seq == 0:
		return nil, errors.New("seq missing or zero")
	case len(l.Kid) != 16 || decodeHex(make([]byte, 8), []byte(l.Kid)) != nil:
		return nil, errors.New("kid is not 16 lowercase hex digits")
	case l.Decision != string(DecisionAllow) && l.Decision != string(DecisionDeny):
		return nil, fmt.Errorf("invalid decision %q", l.Decision)
	}
	if len(l.Prev) != 2*sha256.Size || decodeHex(l.prev[:], []byte(l.Prev)) != nil {
		return nil, errors.New("prev is not 64 lowercase hex digits")
	}
	t, err := time.Parse(time.RFC3339Nano, l.Time)
	if err != nil {
		return nil, errors.New("invalid time")
	}
	l.time = t
	return l, nil
}

// decodeHex decodes exactly len(dst) bytes of lowercase hex.
func decodeHex(dst, src []byte) error {
	if len(src) != 2*len(dst) {
		return errors.New("bad length")
	}
	for _, c := range src {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return errors.New("not lowercase hex")
		}
	}
	_, err := hex.Decode(dst, src)
	return err
}

// Checkpoint is a signed statement of the state of an audit log: how many
// records it holds (Count, the seq of the last one) and the SHA-256 of the
// last record line (Head). The AuditLog emits checkpoints periodically and
// on Close; keep them somewhere the log's writer cannot rewrite (a log
// pipeline, a trace backend), and give the latest to Verify (ExpectCheckpoint)
// to detect removal of records from the tail. Its JSON form is one line.
type Checkpoint struct {
	Count uint64    `json:"count"` // records in the log, = seq of the last record
	Head  string    `json:"head"`  // SHA-256 of the last record line, hex; zeros when Count is 0
	Time  time.Time `json:"time"`  // when the checkpoint was made
	KeyID string    `json:"kid"`   // identifier of the audit key
	MAC   string    `json:"mac"`   // HMAC-SHA256 of the above under the audit key, hex
}

// String returns the checkpoint's one-line JSON form, which ParseCheckpoint
// reads.
func (c Checkpoint) String() string {
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Sprintf("access: checkpoint: %v", err)
	}
	return string(b)
}

// ParseCheckpoint parses the JSON form of a checkpoint. It checks the syntax
// only; Verify checks the MAC.
func ParseCheckpoint(data []byte) (Checkpoint, error) {
	var c Checkpoint
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Checkpoint{}, fmt.Errorf("%w: %v", ErrInvalidCheckpoint, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Checkpoint{}, fmt.Errorf("%w: data after the checkpoint", ErrInvalidCheckpoint)
	}
	var head [sha256.Size]byte
	var mac [sha256.Size]byte
	switch {
	case decodeHex(head[:], []byte(c.Head)) != nil:
		return Checkpoint{}, fmt.Errorf("%w: head is not 64 lowercase hex digits", ErrInvalidCheckpoint)
	case decodeHex(mac[:], []byte(c.MAC)) != nil:
		return Checkpoint{}, fmt.Errorf("%w: mac is not 64 lowercase hex digits", ErrInvalidCheckpoint)
	case decodeHex(make([]byte, 8), []byte(c.KeyID)) != nil:
		return Checkpoint{}, fmt.Errorf("%w: kid is not 16 lowercase hex digits", ErrInvalidCheckpoint)
	}
	return c, nil
}

// checkpointMAC computes the MAC of a checkpoint's count, head, time and key
// ID. head must be 32 bytes.
func checkpointMAC(key []byte, count uint64, head []byte, t time.Time, kid string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(macCheckpointDomain))
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], count)
	binary.BigEndian.PutUint64(b[8:], uint64(t.UnixNano()))
	m.Write(b[:])
	m.Write(head)
	m.Write([]byte(kid))
	return m.Sum(nil)
}

func newCheckpoint(key []byte, kid string, count uint64, head *[sha256.Size]byte, now time.Time) Checkpoint {
	now = now.UTC().Round(0)
	return Checkpoint{
		Count: count,
		Head:  hex.EncodeToString(head[:]),
		Time:  now,
		KeyID: kid,
		MAC:   hex.EncodeToString(checkpointMAC(key, count, head[:], now, kid)),
	}
}

// verifyCheckpoint checks c's syntax, key ID and MAC under key, and returns
// the decoded head.
func verifyCheckpoint(key []byte, kid string, c Checkpoint) ([sha256.Size]byte, error) {
	var head, mac [sha256.Size]byte
	if decodeHex(head[:], []byte(c.Head)) != nil || decodeHex(mac[:], []byte(c.MAC)) != nil {
		return head, fmt.Errorf("%w: malformed head or mac", ErrInvalidCheckpoint)
	}
	if c.KeyID != kid {
		return head, fmt.Errorf("%w: made under audit key %s, not the given key (%s)", ErrInvalidCheckpoint, c.KeyID, kid)
	}
	if !hmac.Equal(mac[:], checkpointMAC(key, c.Count, head[:], c.Time, kid)) {
		return head, fmt.Errorf("%w: mac does not verify", ErrInvalidCheckpoint)
	}
	return head, nil
}
