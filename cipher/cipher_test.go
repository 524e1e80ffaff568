package cipher

import (
	"bytes"
	"crypto/aes"
	stdcipher "crypto/cipher"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
)

var algorithms = []Algorithm{AES256GCM, XChaCha20Poly1305}

func testKey(seed byte) []byte {
	k := make([]byte, KeySize)
	for i := range k {
		k[i] = seed + byte(i)
	}
	return k
}

func mustAEAD(t testing.TB, alg Algorithm, key []byte, id uint32) *AEAD {
	t.Helper()
	c, err := NewAEAD(alg, key, id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSealOpenRoundTrip(t *testing.T) {
	for _, alg := range algorithms {
		c := mustAEAD(t, alg, testKey(1), 0xdeadbeef)
		for _, n := range []int{0, 1, 15, 16, 17, 1000, 1 << 16} {
			for _, aad := range [][]byte{nil, []byte("users/42/ssn")} {
				name := fmt.Sprintf("%s/%d/aad=%d", alg, n, len(aad))
				t.Run(name, func(t *testing.T) {
					pt := bytes.Repeat([]byte{0xa5}, n)
					tok := c.Seal(nil, pt, aad)
					if len(tok) != c.SealedLen(n) {
						t.Fatalf("len(Seal) = %d, want %d", len(tok), c.SealedLen(n))
					}
					h, err := ParseHeader(tok)
					if err != nil || h != (Header{Version, alg, 0xdeadbeef}) {
						t.Fatalf("ParseHeader = %+v, %v", h, err)
					}
					got, err := c.Open(nil, tok, aad)
					if err != nil || !bytes.Equal(got, pt) {
						t.Fatalf("Open = %d bytes, %v, want %d bytes", len(got), err, n)
					}
					// Appending to a non-empty dst keeps the prefix.
					got, err = c.Open([]byte("prefix"), tok, aad)
					if err != nil || !bytes.Equal(got, append([]byte("prefix"), pt...)) {
						t.Fatalf("Open(prefix) = %v", err)
					}
					tok2 := c.Seal([]byte("xy"), pt, aad)
					if !bytes.HasPrefix(tok2, []byte("xy")) {
						t.Fatal("Seal dropped dst")
					}
					if _, err := c.Open(nil, tok2[2:], aad); err != nil {
						t.Fatalf("Open(Seal(dst)) = %v", err)
					}
				})
			}
		}
	}
}

func TestSealUsesFreshNonces(t *testing.T) {
	c := mustAEAD(t, AES256GCM, testKey(1), 7)
	seen := map[string]bool{}
	for range 1000 {
		tok, err := Parse(c.Seal(nil, []byte("same"), nil))
		if err != nil {
			t.Fatal(err)
		}
		if seen[string(tok.Nonce)] {
			t.Fatal("nonce repeated")
		}
		seen[string(tok.Nonce)] = true
	}
}

func TestNewAEADKeySize(t *testing.T) {
	for _, alg := range algorithms {
		for _, n := range []int{0, 1, 16, 24, 31, 33, 64} {
			_, err := NewAEAD(alg, make([]byte, n), 0)
			var kse KeySizeError
			if !errors.As(err, &kse) || int(kse) != n {
				t.Errorf("NewAEAD(%s, %d bytes) = %v, want KeySizeError(%d)", alg, n, err, n)
			}
			if _, err := EncryptData("x", make([]byte, n)); !errors.As(err, &kse) {
				t.Errorf("EncryptData(%d-byte key) = %v, want KeySizeError", n, err)
			}
			if _, err := DecryptData("kw1.AQEAAAAA", make([]byte, n)); !errors.As(err, &kse) {
				t.Errorf("DecryptData(%d-byte key) = %v, want KeySizeError", n, err)
			}
		}
	}
	if _, err := NewAEAD(Algorithm(9), testKey(0), 0); err == nil {
		t.Error("NewAEAD(unknown algorithm) succeeded")
	}
}

func TestParseMalformed(t *testing.T) {
	valid := mustAEAD(t, AES256GCM, testKey(1), 1).Seal(nil, []byte("hi"), nil)
	x := mustAEAD(t, XChaCha20Poly1305, testKey(1), 1).Seal(nil, nil, nil)
	for _, tc := range []struct {
		name string
		in   []byte
		why  string
	}{
		{"nil", nil, "empty"},
		{"empty", []byte{}, "empty"},
		{"one byte", []byte{1}, "header"},
		{"five bytes", valid[:5], "header"},
		{"header only", valid[:HeaderSize], "nonce"},
		{"truncated nonce", valid[:HeaderSize+11], "nonce"},
		{"no tag", valid[:HeaderSize+12], "tag"},
		{"truncated tag", valid[:HeaderSize+12+TagSize-1], "tag"},
		{"xchacha truncated nonce", x[:HeaderSize+23], "nonce"},
		{"version 0", append([]byte{0}, valid[1:]...), "version"},
		{"version 2", append([]byte{2}, valid[1:]...), "version"},
		{"algorithm 0", append([]byte{1, 0}, valid[2:]...), "algorithm"},
		{"algorithm 3", append([]byte{1, 3}, valid[2:]...), "algorithm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.in)
			if !errors.Is(err, ErrMalformedToken) || !strings.Contains(err.Error(), tc.why) {
				t.Errorf("Parse(%x) = %v, want ErrMalformedToken about %q", tc.in, err, tc.why)
			}
		})
	}
	if _, err := Parse(valid); err != nil {
		t.Fatalf("Parse(valid) = %v", err)
	}
	if _, err := Parse(x); err != nil {
		t.Fatalf("Parse(valid xchacha, empty plaintext) = %v", err)
	}
}

func TestParseTextMalformed(t *testing.T) {
	valid := EncodeText(mustAEAD(t, AES256GCM, testKey(1), 1).Seal(nil, []byte("hi"), nil))
	for _, tc := range []struct{ name, in, why string }{
		{"empty", "", "empty"},
		{"no prefix", valid[4:], "prefix"},
		{"wrong prefix", "kw2." + valid[4:], "prefix"},
		{"upper prefix", "KW1." + valid[4:], "prefix"},
		{"prefix only", "kw1.", "empty"},
		{"std alphabet", strings.ReplaceAll(strings.ReplaceAll(valid, "-", "+"), "_", "/") + "+", "base64"},
		{"padding", valid + "=", "base64"},
		{"whitespace", valid[:10] + " " + valid[10:], "base64"},
		{"newline", valid[:10] + "\n" + valid[10:], "base64"},
		{"bad length", valid + "A", "base64"},
		{"plaintext", "123-45-6789", "prefix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseText(tc.in)
			if !errors.Is(err, ErrMalformedToken) || !strings.Contains(err.Error(), tc.why) {
				t.Errorf("ParseText(%q) = %v, want ErrMalformedToken about %q", tc.in, err, tc.why)
			}
		})
	}
}

// TestTamperingRejected flips every bit of sample tokens, truncates them at
// every length, and changes every header field: each must be refused.
func TestTamperingRejected(t *testing.T) {
	aad := []byte("patients/7/notes")
	for _, alg := range algorithms {
		t.Run(alg.String(), func(t *testing.T) {
			c := mustAEAD(t, alg, testKey(3), 0x01020304)
			tok := c.Seal(nil, []byte("a sample of sensitive data"), aad)
			for i := range len(tok) * 8 {
				mod := bytes.Clone(tok)
				mod[i/8] ^= 1 << (i % 8)
				if pt, err := c.Open(nil, mod, aad); err == nil {
					t.Fatalf("bit %d flipped: Open = %q, nil", i, pt)
				}
			}
			for n := range len(tok) {
				if _, err := c.Open(nil, tok[:n], aad); err == nil {
					t.Fatalf("truncated to %d bytes: Open succeeded", n)
				}
			}
			if _, err := c.Open(nil, append(bytes.Clone(tok), 0), aad); err == nil {
				t.Fatal("extended by a byte: Open succeeded")
			}
			// Header changes: another key ID is caught before decryption,
			// another algorithm or version is refused.
			other := bytes.Clone(tok)
			other[5] ^= 1
			if _, err := c.Open(nil, other, aad); !errors.Is(err, ErrKeyIDMismatch) {
				t.Errorf("key ID changed: Open = %v, want ErrKeyIDMismatch", err)
			}
			other = bytes.Clone(tok)
			other[1] = byte(AES256GCM + XChaCha20Poly1305 - alg)
			if _, err := c.Open(nil, other, aad); err == nil {
				t.Error("algorithm changed: Open succeeded")
			}
			// The same token under another key with the same key ID, and the
			// same key under other associated data, fail authentication.
			c2 := mustAEAD(t, alg, testKey(4), 0x01020304)
			if _, err := c2.Open(nil, tok, aad); !errors.Is(err, ErrDecrypt) {
				t.Errorf("wrong key: Open = %v, want ErrDecrypt", err)
			}
			for _, bad := range [][]byte{nil, []byte("patients/8/notes"), append(bytes.Clone(aad), 0)} {
				if _, err := c.Open(nil, tok, bad); !errors.Is(err, ErrDecrypt) {
					t.Errorf("aad %q: Open = %v, want ErrDecrypt", bad, err)
				}
			}
			// Every single-character change of the text form is refused.
			text := EncodeText(tok)
			const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
			for i := len(TextPrefix); i < len(text); i++ {
				for _, r := range []byte{alphabet[(strings.IndexByte(alphabet, text[i])+1)%64], alphabet[(strings.IndexByte(alphabet, text[i])+32)%64]} {
					mod := text[:i] + string(r) + text[i+1:]
					if pt, err := OpenText(c, mod, aad); err == nil {
						t.Fatalf("text char %d changed: OpenText = %q, nil", i, pt)
					}
				}
			}
			if pt, err := OpenText(c, text, aad); err != nil || pt != "a sample of sensitive data" {
				t.Fatalf("OpenText(unmodified) = %q, %v", pt, err)
			}
		})
	}
}

func TestTextRoundTrip(t *testing.T) {
	for _, alg := range algorithms {
		c := mustAEAD(t, alg, testKey(5), 42)
		for _, s := range []string{"", "x", "123-45-6789", strings.Repeat("é", 300)} {
			for _, aad := range [][]byte{nil, []byte("t.c")} {
				tok := SealText(c, s, aad)
				if !IsText(tok) || len(tok) != TextLen(c.SealedLen(len(s))) {
					t.Fatalf("SealText = %q (len %d), want len %d", tok, len(tok), TextLen(c.SealedLen(len(s))))
				}
				got, err := OpenText(c, tok, aad)
				if err != nil || got != s {
					t.Fatalf("OpenText = %q, %v, want %q", got, err, s)
				}
				b, err := DecodeText(tok)
				if err != nil {
					t.Fatal(err)
				}
				if pt, err := c.Open(nil, b, aad); err != nil || string(pt) != s {
					t.Fatalf("Open(DecodeText(SealText)) = %q, %v", pt, err)
				}
			}
		}
	}
}

func TestEncryptDecryptData(t *testing.T) {
	key := testKey(9)
	tok, err := EncryptData("4111 1111 1111 1111", key)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseHeader(mustDecode(t, tok))
	if err != nil || h.KeyID != 0 || h.Algorithm != AES256GCM {
		t.Fatalf("header = %+v, %v; want key ID 0, AES-256-GCM", h, err)
	}
	if got, err := DecryptData(tok, key); err != nil || got != "4111 1111 1111 1111" {
		t.Fatalf("DecryptData = %q, %v", got, err)
	}
	if _, err := DecryptData(tok, testKey(10)); !errors.Is(err, ErrDecrypt) {
		t.Errorf("DecryptData(wrong key) = %v, want ErrDecrypt", err)
	}
	if _, err := DecryptData(tok, key, WithAAD([]byte("x"))); !errors.Is(err, ErrDecrypt) {
		t.Errorf("DecryptData(extra aad) = %v, want ErrDecrypt", err)
	}
	tok, err = EncryptData("v", key, WithAAD([]byte("users.ssn")), WithAlgorithm(XChaCha20Poly1305))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecryptData(tok, key, WithAAD([]byte("users.ssn"))); err != nil || got != "v" {
		t.Fatalf("DecryptData(xchacha, aad) = %q, %v", got, err)
	}
	// A token of a keyring DEK (key ID != 0) is not a raw-key token.
	kt := EncodeText(mustAEAD(t, AES256GCM, key, 77).Seal(nil, []byte("v"), nil))
	if _, err := DecryptData(kt, key); !errors.Is(err, ErrKeyIDMismatch) {
		t.Errorf("DecryptData(key ID 77) = %v, want ErrKeyIDMismatch", err)
	}
	if _, err := DecryptData("not a token", key); !errors.Is(err, ErrMalformedToken) {
		t.Errorf("DecryptData(plaintext) = %v, want ErrMalformedToken", err)
	}
}

func mustDecode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := DecodeText(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The documented test vector (README "Token format"): another implementation
// can check itself against it.
var vector = struct {
	key, nonce, plaintext, aad string
	keyID                      uint32
	binary, text               string
}{
	key:       "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
	nonce:     "a0a1a2a3a4a5a6a7a8a9aaab",
	plaintext: "123-45-6789",
	aad:       "patients/42/ssn",
	keyID:     0x2a5f3c01,
	binary:    "01012a5f3c01a0a1a2a3a4a5a6a7a8a9aaabd72a4f0071fe2f89555dbe4d3721917fc7a4573ffe60e19573ad28",
	text:      "kw1.AQEqXzwBoKGio6Slpqeoqaqr1ypPAHH-L4lVXb5NNyGRf8ekVz_-YOGVc60o",
}

func TestVector(t *testing.T) {
	key, nonce := unhex(t, vector.key), unhex(t, vector.nonce)
	// An independent construction with the standard library alone.
	block, _ := aes.NewCipher(key)
	gcm, _ := stdcipher.NewGCM(block)
	header := []byte{0x01, 0x01, 0x2a, 0x5f, 0x3c, 0x01}
	want := append(append(bytes.Clone(header), nonce...),
		gcm.Seal(nil, nonce, []byte(vector.plaintext), append(bytes.Clone(header), vector.aad...))...)

	c := mustAEAD(t, AES256GCM, key, vector.keyID)
	got := make([]byte, c.SealedLen(len(vector.plaintext)))
	c.sealInto(got, nonce, []byte(vector.plaintext), []byte(vector.aad), nil)
	if !bytes.Equal(got, want) {
		t.Fatalf("token = %x, want %x", got, want)
	}
	if hex.EncodeToString(got) != vector.binary {
		t.Errorf("binary token = %s, want the documented %s", hex.EncodeToString(got), vector.binary)
	}
	if EncodeText(got) != vector.text {
		t.Errorf("text token = %s, want the documented %s", EncodeText(got), vector.text)
	}
	pt, err := OpenText(c, vector.text, []byte(vector.aad))
	if err != nil || pt != vector.plaintext {
		t.Errorf("OpenText(vector) = %q, %v", pt, err)
	}
}

func TestFormattingRedacts(t *testing.T) {
	key := bytes.Repeat([]byte{0x5c}, KeySize)
	c := mustAEAD(t, AES256GCM, key, 3)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
		out := fmt.Sprintf(verb, c)
		if strings.Contains(strings.ToLower(out), "5c5c") || strings.Contains(out, "\\\\") || !strings.Contains(out, "redacted") {
			t.Errorf("Sprintf(%q, aead) = %q", verb, out)
		}
	}
}

func TestAlgorithmNames(t *testing.T) {
	for _, a := range algorithms {
		got, err := ParseAlgorithm(a.String())
		if err != nil || got != a {
			t.Errorf("ParseAlgorithm(%q) = %v, %v", a.String(), got, err)
		}
	}
	if _, err := ParseAlgorithm("AES-128-CBC"); err == nil {
		t.Error("ParseAlgorithm(AES-128-CBC) succeeded")
	}
	if Algorithm(7).Valid() || Algorithm(7).String() != "Algorithm(7)" {
		t.Error("Algorithm(7) looks valid")
	}
}

func TestAppendAADUnambiguous(t *testing.T) {
	cases := [][]string{{"a.b", "c"}, {"a", "b.c"}, {"ab", ""}, {"a", "b"}, {"", "ab"}, {"ab"}, {}}
	seen := map[string][]string{}
	for _, parts := range cases {
		enc := string(AppendAAD(nil, parts...))
		if prev, ok := seen[enc]; ok {
			t.Errorf("AppendAAD(%q) = AppendAAD(%q)", parts, prev)
		}
		seen[enc] = parts
	}
	long := strings.Repeat("x", 300)
	if got := AppendAAD([]byte("p"), long); len(got) != 1+2+300 || got[1] != 0xac || got[2] != 0x02 {
		t.Errorf("AppendAAD(300 bytes) prefix = %x", got[:3])
	}
}

func TestParseHeaderText(t *testing.T) {
	for _, alg := range algorithms {
		tok := SealText(mustAEAD(t, alg, testKey(1), 0xfeedface), "x", nil)
		h, err := ParseHeader(tok)
		if err != nil || h != (Header{Version, alg, 0xfeedface}) {
			t.Errorf("ParseHeader(text) = %+v, %v", h, err)
		}
	}
	for _, s := range []string{"", "kw1.", "kw1.AQEAAAA", "x", "kw1.AgEAAAAA", "kw1.AQMAAAAA", "kw1.AQEAAA!A"} {
		if _, err := ParseHeader(s); !errors.Is(err, ErrMalformedToken) {
			t.Errorf("ParseHeader(%q) = %v, want ErrMalformedToken", s, err)
		}
	}
}

func TestOpenToken(t *testing.T) {
	c := mustAEAD(t, AES256GCM, testKey(1), 9)
	tok, _ := Parse(c.Seal(nil, []byte("v"), []byte("a")))
	if pt, err := c.OpenToken(nil, tok, []byte("a")); err != nil || string(pt) != "v" {
		t.Fatalf("OpenToken = %q, %v", pt, err)
	}
	other := tok
	other.KeyID = 10
	if _, err := c.OpenToken(nil, other, []byte("a")); !errors.Is(err, ErrKeyIDMismatch) {
		t.Errorf("OpenToken(other key ID) = %v", err)
	}
	for _, bad := range []Token{
		{Header: Header{Version, XChaCha20Poly1305, 9}, Nonce: tok.Nonce, Ciphertext: tok.Ciphertext},
		{Header: Header{2, AES256GCM, 9}, Nonce: tok.Nonce, Ciphertext: tok.Ciphertext},
		{Header: tok.Header, Nonce: tok.Nonce[:5], Ciphertext: tok.Ciphertext},
		{Header: tok.Header, Nonce: tok.Nonce, Ciphertext: tok.Ciphertext[:3]},
	} {
		if _, err := c.OpenToken(nil, bad, []byte("a")); !errors.Is(err, ErrDecrypt) {
			t.Errorf("OpenToken(%+v) = %v, want ErrDecrypt", bad.Header, err)
		}
	}
}

// TestBase64InPlace checks the in-place use of the encoder that SealText
// relies on, at every length up to several blocks of the 6-byte loop, against
// the standard library.
func TestBase64InPlace(t *testing.T) {
	std := base64.RawURLEncoding
	for n := range 600 {
		raw := make([]byte, n)
		for i := range raw {
			raw[i] = byte(i*151 + n)
		}
		want := std.EncodeToString(raw)
		buf := make([]byte, len(want))
		copy(buf[len(buf)-n:], raw)
		b64Encode(buf, buf[len(buf)-n:])
		if string(buf) != want {
			t.Fatalf("n=%d: in place %q, want %q", n, buf, want)
		}
	}
}

func TestPeekKeyID(t *testing.T) {
	c := mustAEAD(t, AES256GCM, testKey(1), 0xfeedface)
	if id, ok := PeekKeyID(c.Seal(nil, []byte("x"), nil)); !ok || id != 0xfeedface {
		t.Errorf("PeekKeyID = %#x, %v", id, ok)
	}
	if id, ok := PeekKeyID(SealText(c, "x", nil)); !ok || id != 0xfeedface {
		t.Errorf("PeekKeyID(text) = %#x, %v", id, ok)
	}
	if _, ok := PeekKeyID([]byte{1, 1, 0, 0, 0}); ok {
		t.Error("PeekKeyID accepted 5 bytes")
	}
	for _, s := range []string{"", "kw1.", "kw1.AQEAAAA", "xx1.AQEAAAAA", "kw1.AQEAAA!A"} {
		if _, ok := PeekKeyID(s); ok {
			t.Errorf("PeekKeyID(%q) accepted", s)
		}
	}
}
