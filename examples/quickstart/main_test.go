package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestQuickstart(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := run(context.Background(), &out, dir); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{"created", "crypto.key", "stored", "kw1.", "read     patients/1/ssn         123-45-6789", "tampered token:          refused", "another row: refused"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, "crypto.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("crypto.key mode = %v, %v", fi.Mode(), err)
	}
	// A second run reuses the key and the keyring.
	out.Reset()
	if err := run(context.Background(), &out, dir); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if !strings.Contains(out.String(), "using") {
		t.Errorf("second run made a new key:\n%s", out.String())
	}
	// The stored file holds no plaintext.
	raw, _ := os.ReadFile(filepath.Join(dir, "keyward-keys.json"))
	if bytes.Contains(raw, []byte("123-45-6789")) {
		t.Error("plaintext in the key store")
	}
}
