package main

import (
	"bytes"
	"context"
	"os"
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
		"created keyring \"aws-example\" in " + store + ", primary key ID",
		"reused an earlier run's keyring \"aws-example\" in " + store + ", primary key ID",
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
		opening := []string{"opening it cost 1 Encrypt and 0 Decrypt calls", "opening it cost 0 Encrypt and 1 Decrypt calls"}[i]
		for _, w := range []string{want, opening, `read back "123-45-6789"`, "1000 more values encrypted and decrypted: 0 Encrypt and 0 Decrypt calls", "awskms:" + arn} {
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

	// Another key (an emulator restarted since) with the earlier run's
	// store: named as such, with the ways out.
	other := srv.CreateKey(t)
	err := run(context.Background(), []string{"-endpoint", srv.URL, "-store", store, "-key", other}, &bytes.Buffer{}, &errb)
	if err == nil || !strings.Contains(err.Error(), "made by an earlier run, does not open with awskms:"+other) || !strings.Contains(err.Error(), "delete "+store+" to start over") {
		t.Errorf("run with another key = %v", err)
	}
}

// A missing region or missing credentials is a configuration error, found
// before any KMS call.
func TestConfigurationErrors(t *testing.T) {
	dir := t.TempDir()
	awskmstest.IsolateEnv(t, "AWS_ACCESS_KEY_ID", "", "AWS_SECRET_ACCESS_KEY", "")
	store := filepath.Join(dir, "keys.json")
	var errb bytes.Buffer
	err := run(context.Background(), []string{"-key", "alias/app", "-store", store}, &bytes.Buffer{}, &errb)
	if err == nil || !strings.HasPrefix(err.Error(), "configuration error: no AWS region") {
		t.Errorf("without a region: %v", err)
	}
	err = run(context.Background(), []string{"-key", "alias/app", "-region", "eu-west-1", "-store", store}, &bytes.Buffer{}, &errb)
	if err == nil || !strings.HasPrefix(err.Error(), "configuration error: no AWS credentials") {
		t.Errorf("without credentials: %v", err)
	}
	if _, err := os.Stat(store); !os.IsNotExist(err) {
		t.Errorf("a failed run left %s: %v", store, err)
	}
}
