package rotation_test

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/keyward/keyward/cipher"
	"github.com/keyward/keyward/internal/kmstest"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/rotation"
)

// memTarget is an in-memory Target: rows in key order, one value each.
type memTarget struct {
	mu     sync.Mutex
	keys   []string
	vals   map[string][]byte
	format map[string]rotation.Format
	scans  []string // cursors given to Scan
	swaps  int

	// beforeSwap, if set, runs before a swap compares (outside the lock):
	// a concurrent application write.
	beforeSwap func(v rotation.Value)
}

var _ rotation.Target = (*memTarget)(nil)

func newMemTarget() *memTarget {
	return &memTarget{vals: map[string][]byte{}, format: map[string]rotation.Format{}}
}

func (m *memTarget) put(key string, stored []byte, f rotation.Format) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.vals[key]; !ok {
		m.keys = append(m.keys, key)
		sort.Strings(m.keys)
	}
	m.vals[key] = stored
	m.format[key] = f
}

func (m *memTarget) get(key string) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.vals[key]
}

// aad is the associated data of a row: its key.
func aad(key string) []byte { return []byte("mem/" + key) }

func (m *memTarget) Scan(ctx context.Context, cursor string, limit int) ([]rotation.Value, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.scans = append(m.scans, cursor)
	i := sort.SearchStrings(m.keys, cursor)
	if i < len(m.keys) && m.keys[i] == cursor {
		i++
	}
	var out []rotation.Value
	next := cursor
	for ; i < len(m.keys) && len(out) < limit; i++ {
		k := m.keys[i]
		out = append(out, rotation.Value{ID: "mem/" + k, Stored: bytes.Clone(m.vals[k]), AAD: aad(k), Format: m.format[k], Row: k})
		next = k
	}
	return out, next, nil
}

func (m *memTarget) Swap(ctx context.Context, v rotation.Value, token []byte) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if m.beforeSwap != nil {
		m.beforeSwap(v)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := v.Row.(string)
	if !bytes.Equal(m.vals[k], v.Stored) {
		return false, nil
	}
	m.vals[k] = bytes.Clone(token)
	if m.format[k] == rotation.FormatPlaintext {
		m.format[k] = rotation.FormatText
	}
	m.swaps++
	return true, nil
}

func newKeyring(t testing.TB) *keyring.Keyring { return kmstest.MemoryKeyring(t) }

func key(i int) string { return fmt.Sprintf("r%05d", i) }

func plaintext(i int) string { return fmt.Sprintf("SECRET-%05d", i) }

// fill stores n text tokens of kr's current primary, rows from..from+n-1.
func fill(t testing.TB, kr *keyring.Keyring, m *memTarget, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		tok, err := kr.EncryptText(context.Background(), plaintext(i), aad(key(i)))
		if err != nil {
			t.Fatal(err)
		}
		m.put(key(i), []byte(tok), rotation.FormatText)
	}
}

// checkAll asserts rows 0..n-1 decrypt to their plaintext under the primary.
func checkAll(t testing.TB, kr *keyring.Keyring, m *memTarget, n int) {
	t.Helper()
	for i := range n {
		tok := string(m.get(key(i)))
		h, err := cipher.ParseHeader(tok)
		if err != nil || h.KeyID != kr.Primary() {
			t.Errorf("row %d: key ID %d, %v; want the primary %d", i, h.KeyID, err, kr.Primary())
		}
		pt, err := kr.DecryptText(context.Background(), tok, aad(key(i)))
		if err != nil || pt != plaintext(i) {
			t.Errorf("row %d: DecryptText = %q, %v; want %q", i, pt, err, plaintext(i))
		}
	}
}

func noSecrets(t testing.TB, s string) {
	t.Helper()
	if strings.Contains(s, "SECRET") {
		t.Errorf("%q names plaintext", s)
	}
}
