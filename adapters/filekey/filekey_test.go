package filekey_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward/adapters/filekey"
)

var key32 = bytes.Repeat([]byte{0xfb, 0xef, 0xbe}, 11)[:32] // exercises + / - _ in Base64

func write(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "crypto.key")
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadEncodings(t *testing.T) {
	for _, tc := range []struct {
		name, content string
	}{
		{"std padded", base64.StdEncoding.EncodeToString(key32)},
		{"std raw", base64.RawStdEncoding.EncodeToString(key32)},
		{"url padded", base64.URLEncoding.EncodeToString(key32)},
		{"url raw", base64.RawURLEncoding.EncodeToString(key32)},
		{"trailing newline", base64.StdEncoding.EncodeToString(key32) + "\n"},
		{"crlf and spaces", "  \t" + base64.StdEncoding.EncodeToString(key32) + " \r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := filekey.Load(write(t, tc.content, 0o600))
			if err != nil || !bytes.Equal(got, key32) {
				t.Fatalf("Load = %x, %v, want %x", got, err, key32)
			}
		})
	}
}

func TestLoadRejects(t *testing.T) {
	std := base64.StdEncoding.EncodeToString(key32)
	for _, tc := range []struct {
		name, content, why string
	}{
		{"empty", "", "empty"},
		{"only whitespace", " \n\t", "empty"},
		{"16 bytes", base64.StdEncoding.EncodeToString(key32[:16]), "16 bytes"},
		{"31 bytes", base64.StdEncoding.EncodeToString(key32[:31]), "31 bytes"},
		{"33 bytes", base64.StdEncoding.EncodeToString(append(bytes.Clone(key32), 1)), "33 bytes"},
		{"64 bytes", base64.StdEncoding.EncodeToString(append(bytes.Clone(key32), key32...)), "64 bytes"},
		{"inner newline", std[:20] + "\n" + std[20:], "whitespace"},
		{"inner space", std[:20] + " " + std[20:], "whitespace"},
		{"mixed alphabets", strings.Replace(base64.URLEncoding.EncodeToString(key32), "-", "+", 1), "Base64"},
		{"not base64", "this is not a key, it is a sentence!!!!!!!!!", "Base64"},
		{"hex", strings.Repeat("ab", 32), "48 bytes"},
		{"bad padding", std[:len(std)-1] + "==", "Base64"},
		{"nonzero pad bits", std[:len(std)-2] + "B=", "Base64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := filekey.Load(write(t, tc.content, 0o600))
			if !errors.Is(err, filekey.ErrInvalidKey) || !strings.Contains(err.Error(), tc.why) || got != nil {
				t.Fatalf("Load = %x, %v, want ErrInvalidKey about %q", got, err, tc.why)
			}
			if tc.content != "" && len(tc.content) > 8 && strings.Contains(err.Error(), strings.TrimSpace(tc.content)[:8]) {
				t.Errorf("error quotes the file content: %v", err)
			}
		})
	}
}

func TestLoadPermissions(t *testing.T) {
	if os.Getuid() == 0 {
		t.Log("running as root: permission bits are still checked, only reads of mode 000 files differ")
	}
	content := base64.StdEncoding.EncodeToString(key32)
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660, 0o606, 0o700 | 0o010, 0o666, 0o777} {
		p := write(t, content, mode)
		_, err := filekey.Load(p)
		if !errors.Is(err, filekey.ErrPermissions) || !strings.Contains(err.Error(), "chmod 600 "+p) {
			t.Errorf("Load(mode %04o) = %v, want ErrPermissions saying chmod 600", mode, err)
		}
	}
	for _, mode := range []os.FileMode{0o600, 0o400} {
		if _, err := filekey.Load(write(t, content, mode)); err != nil {
			t.Errorf("Load(mode %04o) = %v", mode, err)
		}
	}
}

func TestLoadSymlink(t *testing.T) {
	content := base64.StdEncoding.EncodeToString(key32)
	target := write(t, content, 0o600)
	link := filepath.Join(t.TempDir(), "crypto.key")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if got, err := filekey.Load(link); err != nil || !bytes.Equal(got, key32) {
		t.Fatalf("Load(symlink to 0600 file) = %x, %v", got, err)
	}
	// The permission check applies to the file the link leads to.
	if err := os.Chmod(target, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := filekey.Load(link); !errors.Is(err, filekey.ErrPermissions) {
		t.Fatalf("Load(symlink to 0644 file) = %v, want ErrPermissions", err)
	}
	if _, err := filekey.Load(t.TempDir()); !errors.Is(err, filekey.ErrInvalidKey) {
		t.Errorf("Load(directory) = %v, want ErrInvalidKey", err)
	}
	if _, err := filekey.Load(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want ErrNotExist", err)
	}
}

func TestGenerate(t *testing.T) {
	p := filepath.Join(t.TempDir(), "crypto.key")
	if err := filekey.Generate(p); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, %v, want 0600", fi.Mode(), err)
	}
	k1, err := filekey.Load(p)
	if err != nil || len(k1) != 32 {
		t.Fatalf("Load(Generate) = %d bytes, %v", len(k1), err)
	}
	if err := filekey.Generate(p); err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Fatalf("Generate over an existing key = %v", err)
	}
	if k2, _ := filekey.Load(p); !bytes.Equal(k1, k2) {
		t.Fatal("Generate changed an existing key file")
	}
	// A link where the key should go is not followed.
	link := filepath.Join(t.TempDir(), "crypto.key")
	if err := os.Symlink(filepath.Join(t.TempDir(), "elsewhere"), link); err != nil {
		t.Fatal(err)
	}
	if err := filekey.Generate(link); err == nil {
		t.Error("Generate followed a dangling symlink")
	}
	q := filepath.Join(t.TempDir(), "other.key")
	if err := filekey.Generate(q); err != nil {
		t.Fatal(err)
	}
	if k3, _ := filekey.Load(q); bytes.Equal(k1, k3) {
		t.Error("two generated keys are equal")
	}
	if err := filekey.Write(filepath.Join(t.TempDir(), "short.key"), key32[:16]); err == nil {
		t.Error("Write(16-byte key) succeeded")
	}
}

func TestSourceIDAndRedaction(t *testing.T) {
	s1, err := filekey.New(key32)
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := filekey.New(key32)
	if s1.ID() != s2.ID() || !strings.HasPrefix(s1.ID(), "filekey:") || len(s1.ID()) != len("filekey:")+16 {
		t.Errorf("ID = %q, %q", s1.ID(), s2.ID())
	}
	for _, f := range []string{s1.ID(), s1.String()} {
		if strings.Contains(f, base64.StdEncoding.EncodeToString(key32)[:8]) || strings.Contains(f, "fbefbe") {
			t.Errorf("%q reveals the key", f)
		}
	}
	if _, err := filekey.New(key32[:31]); err == nil {
		t.Error("New(31-byte key) succeeded")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(base64.StdEncoding.EncodeToString(key32)))
	f.Add([]byte(base64.RawURLEncoding.EncodeToString(key32) + "\n"))
	f.Add([]byte(""))
	f.Add([]byte("===="))
	f.Fuzz(func(t *testing.T, data []byte) {
		key, err := filekey.Parse(data)
		if err != nil {
			if key != nil || !errors.Is(err, filekey.ErrInvalidKey) {
				t.Fatalf("Parse = %x, %v", key, err)
			}
			return
		}
		if len(key) != filekey.KeySize {
			t.Fatalf("Parse returned %d bytes", len(key))
		}
		// Whatever parsed is one of the four encodings of the key.
		s := string(bytes.TrimSpace(data))
		ok := false
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			ok = ok || enc.EncodeToString(key) == s
		}
		if !ok {
			t.Fatalf("Parse accepted %q, which is no canonical encoding of its key", s)
		}
	})
}
