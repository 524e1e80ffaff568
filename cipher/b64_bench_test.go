package cipher

import (
	"encoding/base64"
	"testing"
)

// BenchmarkBase64 measures the token codec on a 66-byte binary token (a
// 32-byte value under AES-256-GCM) next to encoding/base64's strict
// RawURLEncoding in the same run.
func BenchmarkBase64(b *testing.B) {
	raw := make([]byte, 66)
	for i := range raw {
		raw[i] = byte(i * 37)
	}
	text := base64.RawURLEncoding.EncodeToString(raw)
	dst := make([]byte, len(raw))
	enc := make([]byte, len(text))
	std := base64.RawURLEncoding.Strict()
	b.Run("decode", func(b *testing.B) {
		for b.Loop() {
			if !b64DecodeTo(dst, text) {
				b.Fatal("decode failed")
			}
		}
	})
	b.Run("decode-stdlib", func(b *testing.B) {
		for b.Loop() {
			if _, err := std.Decode(dst, []byte(text)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode", func(b *testing.B) {
		for b.Loop() {
			b64Encode(enc, raw)
		}
	})
	b.Run("encode-stdlib", func(b *testing.B) {
		for b.Loop() {
			std.Encode(enc, raw)
		}
	})
}
