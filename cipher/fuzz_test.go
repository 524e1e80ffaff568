package cipher

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"
)

func fuzzSeeds(f *testing.F, text bool) {
	for _, alg := range algorithms {
		c := mustAEAD(f, alg, testKey(1), 7)
		for _, pt := range []string{"", "x", "sensitive"} {
			tok := c.Seal(nil, []byte(pt), []byte("aad"))
			if text {
				f.Add(EncodeText(tok))
			} else {
				f.Add(tok)
			}
		}
	}
}

// knownError reports whether err is one of the errors Open documents.
func knownError(err error) bool {
	return errors.Is(err, ErrMalformedToken) || errors.Is(err, ErrDecrypt) || errors.Is(err, ErrKeyIDMismatch)
}

func FuzzParse(f *testing.F) {
	fuzzSeeds(f, false)
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, err := Parse(b)
		// ParseHeader checks a binary token as Parse does.
		if h, herr := ParseHeader(b); (herr == nil) != (err == nil) || (err == nil && h != tok.Header) {
			t.Fatalf("ParseHeader(%x) = %+v, %v; Parse = %+v, %v", b, h, herr, tok.Header, err)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformedToken) {
				t.Fatalf("Parse error %v does not wrap ErrMalformedToken", err)
			}
			return
		}
		if id, ok := PeekKeyID(b); !ok || id != tok.KeyID {
			t.Fatalf("PeekKeyID(%x) = %d, %v; want %d", b, id, ok, tok.KeyID)
		}
		// A parsed token re-assembles to the input.
		again := append(AppendHeader(nil, tok.Header), tok.Nonce...)
		again = append(again, tok.Ciphertext...)
		if !bytes.Equal(again, b) || len(tok.Nonce) != tok.Algorithm.NonceSize() || len(tok.Ciphertext) < TagSize {
			t.Fatalf("Parse(%x) = %+v does not re-assemble", b, tok)
		}
		// The text form parses to the same token.
		tt, err := ParseText(EncodeText(b))
		if err != nil || tt.Header != tok.Header || !bytes.Equal(tt.Ciphertext, tok.Ciphertext) {
			t.Fatalf("ParseText(EncodeText) = %+v, %v", tt, err)
		}
	})
}

func FuzzParseText(f *testing.F) {
	fuzzSeeds(f, true)
	f.Add("kw1.")
	f.Add("kw1.====")
	f.Add("kw1.AQEA\nAAAA")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseText(s)
		h, herr := ParseHeader(s)
		if herr != nil && !errors.Is(herr, ErrMalformedToken) {
			t.Fatalf("ParseHeader error %v does not wrap ErrMalformedToken", herr)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformedToken) {
				t.Fatalf("ParseText error %v does not wrap ErrMalformedToken", err)
			}
			return
		}
		// A token that parses has a header that parses, the same one.
		if herr != nil || h != tok.Header {
			t.Fatalf("ParseHeader(%q) = %+v, %v; ParseText = %+v", s, h, herr, tok.Header)
		}
		if id, ok := PeekKeyID(s); !ok || id != tok.KeyID {
			t.Fatalf("PeekKeyID(%q) = %d, %v; want %d", s, id, ok, tok.KeyID)
		}
		b, err := DecodeText(s)
		if err != nil {
			t.Fatalf("DecodeText failed after ParseText succeeded: %v", err)
		}
		// Strict decoding: one text form per token.
		if EncodeText(b) != s {
			t.Fatalf("EncodeText(DecodeText(%q)) = %q", s, EncodeText(b))
		}
	})
}

func FuzzOpen(f *testing.F) {
	fuzzSeeds(f, false)
	keys := map[Algorithm]*AEAD{}
	for _, alg := range algorithms {
		keys[alg] = mustAEAD(f, alg, testKey(1), 7)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, c := range keys {
			pt, err := c.Open(nil, b, []byte("aad"))
			if err != nil {
				if pt != nil || !knownError(err) {
					t.Fatalf("Open = %x, %v", pt, err)
				}
				continue
			}
			// Only a token sealed under this key opens; sealing the
			// plaintext again must open as well.
			if got, err := c.Open(nil, c.Seal(nil, pt, []byte("aad")), []byte("aad")); err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("re-seal round trip failed: %v", err)
			}
		}
	})
}

func FuzzDecryptData(f *testing.F) {
	key := testKey(1)
	for _, s := range []string{"", "x", "secret"} {
		tok, _ := EncryptData(s, key)
		f.Add(tok)
	}
	f.Add("kw1.AQEAAAAA")
	f.Fuzz(func(t *testing.T, s string) {
		pt, err := DecryptData(s, key)
		if err != nil {
			if pt != "" || !knownError(err) {
				t.Fatalf("DecryptData = %q, %v", pt, err)
			}
			return
		}
		c := mustAEAD(t, AES256GCM, key, 0)
		if got, err := OpenText(c, s, nil); err != nil || got != pt {
			// Only AES tokens go through this AEAD; XChaCha ones differ.
			if h, _ := ParseText(s); h.Algorithm == AES256GCM {
				t.Fatalf("OpenText disagrees with DecryptData: %q, %v", got, err)
			}
		}
	})
}

// FuzzBase64 checks the token codec against the standard library's strict
// unpadded base64url.
func FuzzBase64(f *testing.F) {
	for _, s := range []string{"", "A", "AA", "AB", "AAA", "AAB", "AAAA", "kw1", "SGVsbG8gd29ybGQ", "__--", "a\nb", "abc=", "ab==", "aé"} {
		f.Add([]byte(s), s)
	}
	std := base64.RawURLEncoding.Strict()
	f.Fuzz(func(t *testing.T, raw []byte, text string) {
		enc := make([]byte, b64EncodedLen(len(raw)))
		b64Encode(enc, raw)
		if want := std.EncodeToString(raw); string(enc) != want {
			t.Fatalf("encode(%x) = %q, want %q", raw, enc, want)
		}
		// In place, as SealText does it: raw copied to the tail of the output.
		inPlace := make([]byte, len(enc))
		copy(inPlace[len(enc)-len(raw):], raw)
		b64Encode(inPlace, inPlace[len(enc)-len(raw):])
		if !bytes.Equal(inPlace, enc) {
			t.Fatalf("in-place encode(%x) = %q, want %q", raw, inPlace, enc)
		}
		want, stdErr := std.DecodeString(text)
		if stdErr == nil && std.EncodedLen(len(want)) != len(text) {
			stdErr = errors.New("line breaks skipped")
		}
		n := b64DecodedLen(len(text))
		ok := n >= 0
		var got []byte
		if ok {
			got = make([]byte, n)
			ok = b64DecodeTo(got, text)
		}
		if ok != (stdErr == nil) || (ok && !bytes.Equal(got, want)) {
			t.Fatalf("decode(%q) = %x, %v; stdlib %x, %v", text, got, ok, want, stdErr)
		}
	})
}
