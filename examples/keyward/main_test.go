package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// bin is the keyward binary built for these tests.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "keyward-cli")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "keyward")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		panic("go build: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

// keyward runs the built binary in dir with stdin.
func keyward(t *testing.T, dir, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

func TestKeygen(t *testing.T) {
	dir := t.TempDir()
	if r := keyward(t, dir, "", "keygen"); r.code != 0 {
		t.Fatalf("keygen = %+v", r)
	}
	fi, err := os.Stat(filepath.Join(dir, "crypto.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("crypto.key: %v, %v", fi.Mode(), err)
	}
	old, _ := os.ReadFile(filepath.Join(dir, "crypto.key"))
	r := keyward(t, dir, "", "keygen")
	if r.code != 1 || !strings.Contains(r.stderr, "-f") || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("keygen over an existing key = %+v", r)
	}
	if now, _ := os.ReadFile(filepath.Join(dir, "crypto.key")); !bytes.Equal(now, old) {
		t.Fatal("keygen without -f changed the key")
	}
	if r := keyward(t, dir, "", "keygen", "-f"); r.code != 0 {
		t.Fatalf("keygen -f = %+v", r)
	}
	if now, _ := os.ReadFile(filepath.Join(dir, "crypto.key")); bytes.Equal(now, old) {
		t.Fatal("keygen -f kept the old key")
	}
	if r := keyward(t, dir, "", "keygen", "-o", "other.key"); r.code != 0 {
		t.Fatalf("keygen -o = %+v", r)
	}
	if r := keyward(t, dir, "", "keygen", "extra"); r.code != 2 {
		t.Fatalf("keygen extra = %+v, want exit 2", r)
	}
}

func TestEncryptDecrypt(t *testing.T) {
	dir := t.TempDir()
	keyward(t, dir, "", "keygen")
	keyward(t, dir, "", "keygen", "-o", "other.key")
	const secret = "123-45-6789"
	for _, tc := range []struct {
		name  string
		flags []string
	}{
		{"raw key", []string{"-k", "crypto.key"}},
		{"raw key with aad", []string{"-k", "crypto.key", "--aad", "patients/1/ssn"}},
		{"keyring", []string{"-k", "crypto.key", "--store", "keys.json"}},
		{"keyring with aad", []string{"-k", "crypto.key", "--store", "keys.json", "--keyring", "pii", "--aad", "x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Argument in, stdin in.
			for _, viaStdin := range []bool{false, true} {
				args := append([]string{"encrypt"}, tc.flags...)
				if slices.Contains(tc.flags, "--store") {
					args = append(args, "--create") // the first encryption makes the store
				}
				stdin := ""
				if viaStdin {
					stdin = secret
				} else {
					args = append(args, secret)
				}
				r := keyward(t, dir, stdin, args...)
				tok := strings.TrimSpace(r.stdout)
				if r.code != 0 || !strings.HasPrefix(tok, "kw1.") || strings.Contains(r.stdout+r.stderr, secret) {
					t.Fatalf("encrypt = %+v", r)
				}
				d := keyward(t, dir, tok+"\n", append([]string{"decrypt"}, tc.flags...)...)
				if d.code != 0 || d.stdout != secret {
					t.Fatalf("decrypt = %+v, want %q", d, secret)
				}
				// The wrong key fails with one line and no plaintext.
				bad := append([]string{"decrypt"}, tc.flags...)
				bad[2] = "other.key"
				w := keyward(t, dir, "", append(bad, tok)...)
				if w.code != 1 || w.stdout != "" || strings.Count(w.stderr, "\n") != 1 || strings.Contains(w.stderr, secret) {
					t.Fatalf("decrypt with another key = %+v", w)
				}
			}
		})
	}
	// A byte-for-byte round trip of stdin, newline included.
	r := keyward(t, dir, "line\n", "encrypt", "-k", "crypto.key")
	if d := keyward(t, dir, r.stdout, "decrypt", "-k", "crypto.key"); d.stdout != "line\n" {
		t.Errorf("stdin round trip = %q", d.stdout)
	}
	// A keyring token without --store says what is missing.
	r = keyward(t, dir, secret, "encrypt", "--create", "-k", "crypto.key", "--store", "keys.json")
	if d := keyward(t, dir, r.stdout, "decrypt", "-k", "crypto.key"); d.code != 1 || !strings.Contains(d.stderr, "--store") {
		t.Errorf("keyring token without --store = %+v", d)
	}
	// The aad matters.
	r = keyward(t, dir, secret, "encrypt", "-k", "crypto.key", "--aad", "a")
	if d := keyward(t, dir, r.stdout, "decrypt", "-k", "crypto.key", "--aad", "b"); d.code != 1 || d.stdout != "" {
		t.Errorf("decrypt with other aad = %+v", d)
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	keyward(t, dir, "", "keygen")
	os.WriteFile(filepath.Join(dir, "open.key"), []byte("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"), 0o644)
	os.Chmod(filepath.Join(dir, "open.key"), 0o644)
	os.WriteFile(filepath.Join(dir, "short.key"), []byte("AAAA\n"), 0o600)
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"no command", "", nil, 2, "usage"},
		{"unknown command", "", []string{"frobnicate"}, 2, "unknown command"},
		{"missing -k", "x", []string{"encrypt"}, 2, "a key source is required: -k PATH"},
		{"bad flag", "x", []string{"encrypt", "--nope"}, 2, "not defined"},
		{"two arguments", "", []string{"encrypt", "-k", "crypto.key", "a", "b"}, 2, "at most one"},
		{"missing key file", "x", []string{"encrypt", "-k", "missing.key"}, 1, "no such file"},
		{"open permissions", "x", []string{"encrypt", "-k", "open.key"}, 1, "chmod 600"},
		{"short key", "x", []string{"encrypt", "-k", "short.key"}, 1, "want 32"},
		{"not a token", "123-45-6789", []string{"decrypt", "-k", "crypto.key"}, 1, "malformed token"},
		{"inspect garbage", "", []string{"inspect", "kw1.@@@"}, 1, "malformed token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := keyward(t, dir, tc.stdin, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("keyward %v = %+v, want exit %d and %q", tc.args, r, tc.code, tc.want)
			}
			if tc.code == 1 && strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("error is not one line: %q", r.stderr)
			}
		})
	}
	if r := keyward(t, dir, "", "help"); r.code != 0 {
		t.Errorf("help = %+v", r)
	}
}

func TestInspect(t *testing.T) {
	dir := t.TempDir()
	keyward(t, dir, "", "keygen")
	tok := strings.TrimSpace(keyward(t, dir, "", "encrypt", "-k", "crypto.key", "hello").stdout)
	for _, viaStdin := range []bool{false, true} {
		var r result
		if viaStdin {
			r = keyward(t, dir, tok+"\n", "inspect")
		} else {
			r = keyward(t, dir, "", "inspect", tok)
		}
		var h map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &h); err != nil || r.code != 0 {
			t.Fatalf("inspect = %+v: %v", r, err)
		}
		want := map[string]any{"version": 1.0, "algorithm": "AES-256-GCM", "key_id": 0.0, "nonce_bytes": 12.0, "ciphertext_bytes": 5.0}
		for k, v := range want {
			if h[k] != v {
				t.Errorf("inspect %s = %v, want %v", k, h[k], v)
			}
		}
		if len(h) != len(want) {
			t.Errorf("inspect = %v, want exactly %v", h, want)
		}
	}
	// The documented test vector of the README.
	r := keyward(t, dir, "", "inspect", "kw1.AQEqXzwBoKGio6Slpqeoqaqr1ypPAHH-L4lVXb5NNyGRf8ekVz_-YOGVc60o")
	if r.stdout != `{"version":1,"algorithm":"AES-256-GCM","key_id":710884353,"nonce_bytes":12,"ciphertext_bytes":11}`+"\n" {
		t.Errorf("inspect(vector) = %q", r.stdout)
	}
}
