package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/gcpkmstest"
)

// TestAgainstEmulator runs the example twice, as two processes sharing one
// store, against the in-process Cloud KMS.
func TestAgainstEmulator(t *testing.T) {
	srv := gcpkmstest.New(t)
	name := srv.CreateKey(t, "projects/example/locations/global/keyRings/keyward", "example")
	store := filepath.Join(t.TempDir(), "keys.json")
	for i, want := range []string{
		"opening it cost 1 Encrypt and 0 Decrypt calls",
		"opening it cost 0 Encrypt and 1 Decrypt calls",
	} {
		var out, errb bytes.Buffer
		if err := run(context.Background(), []string{"-endpoint", srv.Addr, "-plaintext", "-store", store, "-key", name}, &out, &errb); err != nil {
			t.Fatalf("run %d: %v\n%s", i+1, err, errb.String())
		}
		for _, w := range []string{want, `read back "123-45-6789"`, "1000 more values encrypted and decrypted: 0 Encrypt and 0 Decrypt calls", "gcpkms:" + name} {
			if !strings.Contains(out.String(), w) {
				t.Errorf("run %d output lacks %q:\n%s", i+1, w, out.String())
			}
		}
	}
	if e, d := srv.Calls("Encrypt"), srv.Calls("Decrypt"); e != 1 || d != 1 {
		t.Errorf("the emulator saw %d Encrypt and %d Decrypt calls, want 1 and 1", e, d)
	}
	for _, args := range [][]string{{"-store", store}, {"-key", name, "-plaintext"}} {
		if err := run(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
			t.Errorf("run %q succeeded", args)
		}
	}
}
