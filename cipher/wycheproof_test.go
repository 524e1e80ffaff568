package cipher

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

type wycheproofFile struct {
	Algorithm  string `json:"algorithm"`
	TestGroups []struct {
		KeySize int `json:"keySize"`
		IVSize  int `json:"ivSize"`
		TagSize int `json:"tagSize"`
		Tests   []struct {
			TcID   int    `json:"tcId"`
			Key    string `json:"key"`
			IV     string `json:"iv"`
			AAD    string `json:"aad"`
			Msg    string `json:"msg"`
			CT     string `json:"ct"`
			Tag    string `json:"tag"`
			Result string `json:"result"`
		} `json:"tests"`
	} `json:"testGroups"`
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex in vector: %v", err)
	}
	return b
}

// TestWycheproof runs the Wycheproof vectors through the AEADs NewAEAD
// builds. Vectors whose key size is not 256 bits must be refused with a
// KeySizeError; vectors whose nonce size differs from the token format's
// cannot be expressed as tokens and are counted, not run.
func TestWycheproof(t *testing.T) {
	for _, tc := range []struct {
		file       string
		alg        Algorithm
		applicable int // 256-bit key, the algorithm's nonce size, 128-bit tag
	}{
		{"aes_gcm_test.json", AES256GCM, 66},
		{"xchacha20_poly1305_test.json", XChaCha20Poly1305, 306},
	} {
		t.Run(tc.alg.String(), func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", "wycheproof", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			var f wycheproofFile
			if err := json.Unmarshal(raw, &f); err != nil {
				t.Fatal(err)
			}
			ran, refused := 0, 0
			for _, g := range f.TestGroups {
				for _, v := range g.Tests {
					key := unhex(t, v.Key)
					c, err := NewAEAD(tc.alg, key, 0)
					if g.KeySize != 256 {
						var kse KeySizeError
						if !errors.As(err, &kse) || int(kse) != len(key) {
							t.Errorf("tc %d: NewAEAD(%d-byte key) error = %v, want KeySizeError(%d)", v.TcID, len(key), err, len(key))
						}
						refused++
						continue
					}
					if err != nil {
						t.Fatalf("tc %d: NewAEAD: %v", v.TcID, err)
					}
					if g.IVSize != 8*tc.alg.NonceSize() || g.TagSize != 8*TagSize {
						continue
					}
					ran++
					iv, aad, msg := unhex(t, v.IV), unhex(t, v.AAD), unhex(t, v.Msg)
					want := append(unhex(t, v.CT), unhex(t, v.Tag)...)
					got, openErr := c.aead.Open(nil, iv, want, aad)
					switch v.Result {
					case "valid", "acceptable":
						if openErr != nil || !bytes.Equal(got, msg) {
							t.Errorf("tc %d: Open = %x, %v, want %x", v.TcID, got, openErr, msg)
						}
						if sealed := c.aead.Seal(nil, iv, msg, aad); !bytes.Equal(sealed, want) {
							t.Errorf("tc %d: Seal = %x, want %x", v.TcID, sealed, want)
						}
					case "invalid":
						if openErr == nil {
							t.Errorf("tc %d: Open of an invalid vector succeeded", v.TcID)
						}
					default:
						t.Fatalf("tc %d: unknown result %q", v.TcID, v.Result)
					}
				}
			}
			if ran != tc.applicable {
				t.Errorf("ran %d vectors, want %d", ran, tc.applicable)
			}
			t.Logf("%s: %d vectors run, %d refused for their key size", tc.alg, ran, refused)
		})
	}
}
