package dekaad

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/keyward/keyward/cipher"
)

func TestRoundTrip(t *testing.T) {
	b := Binding{Keyring: "pii", KeyID: 305419896, Purpose: "data", Algorithm: "AES-256-GCM"}
	got, ok := Parse(Append(nil, b))
	assert.True(t, ok, "Parse(Append(%+v)) ok", b)
	assert.Equal(t, b, got, "Parse(Append(b))")
}

func TestParseRefuses(t *testing.T) {
	tests := map[string][]byte{
		"empty":           nil,
		"other label":     cipher.AppendAAD(nil, "keyward.dek/v2", "pii", "1", "data", "AES-256-GCM"),
		"four parts":      cipher.AppendAAD(nil, label, "pii", "1", "data"),
		"six parts":       cipher.AppendAAD(nil, label, "pii", "1", "data", "AES-256-GCM", "x"),
		"empty keyring":   cipher.AppendAAD(nil, label, "", "1", "data", "AES-256-GCM"),
		"empty purpose":   cipher.AppendAAD(nil, label, "pii", "1", "", "AES-256-GCM"),
		"leading zero":    cipher.AppendAAD(nil, label, "pii", "01", "data", "AES-256-GCM"),
		"not a number":    cipher.AppendAAD(nil, label, "pii", "x", "data", "AES-256-GCM"),
		"over 32 bits":    cipher.AppendAAD(nil, label, "pii", "4294967296", "data", "AES-256-GCM"),
		"trailing byte":   append(cipher.AppendAAD(nil, label, "pii", "1", "data", "AES-256-GCM"), 0),
		"length past end": {0x7f, 'k'},
		"long length":     append([]byte{0x8e, 0x00}, cipher.AppendAAD(nil, label, "pii", "1", "data", "AES-256-GCM")[1:]...),
	}
	for name, aad := range tests {
		t.Run(name, func(t *testing.T) {
			_, ok := Parse(aad)
			assert.False(t, ok, "Parse(%q) ok, want refused", aad)
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add(Append(nil, Binding{Keyring: "pii", KeyID: 1, Purpose: "data", Algorithm: "AES-256-GCM"}))
	f.Add([]byte{0x7f})
	f.Fuzz(func(t *testing.T, aad []byte) {
		b, ok := Parse(aad)
		if ok {
			assert.Equal(t, aad, Append(nil, b), "Append(Parse(aad)) differs from aad")
		}
	})
}
