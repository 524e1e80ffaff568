package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/awskmstest"
)

// TestAgainstLocalKMS runs the example twice, as two processes sharing one
// store, against local-kms served in-process.
func TestAgainstLocalKMS(t *testing.T) {
	dir := t.TempDir()
	awskmstest.IsolateEnv(t)
	srv := awskmstest.New(t)
	arn := srv.CreateKey(t)
	srv.CreateAlias(t, "alias/keyward-example", arn)
	store := filepath.Join(dir, "keys.json")

	for i, want := range []string{
		"opening it cost 1 Encrypt and 0 Decrypt calls",
		"opening it cost 0 Encrypt and 1 Decrypt calls",
	} {
		key := arn // the region comes from the ARN
		args := []string{"-endpoint", srv.URL, "-store", store}
		if i == 1 {
			key = "alias/keyward-example"
			args = append(args, "-region", awskmstest.Region)
		}
		var out, errb bytes.Buffer
		if err := run(context.Background(), append(args, "-key", key), &out, &errb); err != nil {
			t.Fatalf("run %d: %v\n%s", i+1, err, errb.String())
		}
		for _, w := range []string{want, `read back "123-45-6789"`, "1000 more values encrypted and decrypted: 0 Encrypt and 0 Decrypt calls", "awskms:" + arn} {
			if !strings.Contains(out.String(), w) {
				t.Errorf("run %d output lacks %q:\n%s", i+1, w, out.String())
			}
		}
	}
	if e, d := srv.Calls("Encrypt"), srv.Calls("Decrypt"); e != 1 || d != 1 {
		t.Errorf("local-kms saw %d Encrypt and %d Decrypt calls, want 1 and 1", e, d)
	}

	var errb bytes.Buffer
	if err := run(context.Background(), []string{"-store", store}, &bytes.Buffer{}, &errb); err == nil {
		t.Error("run without -key succeeded")
	}
}
