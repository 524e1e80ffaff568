package main

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyward/keyward/internal/awskmstest"
	"github.com/keyward/keyward/internal/gcpkmstest"
	"github.com/keyward/keyward/internal/kmstest"
)

// awsEnv gives the built binary static credentials and no AWS files, so the
// SDK's default chain resolves without a network.
func awsEnv(t *testing.T) { awskmstest.IsolateEnv(t, "AWS_MAX_ATTEMPTS", "2") }

func TestKMSKeySources(t *testing.T) {
	awsEnv(t)
	aws := awskmstest.New(t)
	arn := aws.CreateKey(t)
	aws.CreateAlias(t, "alias/keyward-cli", arn)
	gcp := gcpkmstest.New(t)
	name := gcp.CreateKey(t, "projects/cli/locations/global/keyRings/keyward", "cli")

	const secret = "123-45-6789"
	for _, tc := range []struct {
		name             string
		encrypt, decrypt []string
		calls            func() (wraps, unwraps int64)
	}{
		{
			"AWS",
			[]string{"--aws-kms", "alias/keyward-cli", "--aws-region", awskmstest.Region, "--kms-endpoint", aws.URL},
			[]string{"--aws-kms", arn, "--kms-endpoint", aws.URL}, // the region from the ARN
			func() (int64, int64) { return aws.Calls("Encrypt"), aws.Calls("Decrypt") },
		},
		{
			"GCP",
			[]string{"--gcp-kms", name, "--kms-endpoint", gcp.Addr, "--kms-plaintext"},
			[]string{"--gcp-kms", name, "--kms-endpoint", gcp.Addr, "--kms-plaintext"},
			func() (int64, int64) { return gcp.Calls("Encrypt"), gcp.Calls("Decrypt") },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			common := []string{"--store", "keys.json", "--keyring", "pii", "--aad", "patients/1/ssn"}
			r := keyward(t, dir, "", append(append([]string{"encrypt", "--create"}, tc.encrypt...), append(common, secret)...)...)
			tok := strings.TrimSpace(r.stdout)
			if r.code != 0 || !strings.HasPrefix(tok, "kw1.") || strings.Contains(r.stderr, secret) {
				t.Fatalf("encrypt = %+v", r)
			}
			// A second token by another process reuses the keyring.
			r2 := keyward(t, dir, secret, append(append([]string{"encrypt"}, tc.encrypt...), common...)...)
			if r2.code != 0 {
				t.Fatalf("second encrypt = %+v", r2)
			}
			for _, tk := range []string{tok, strings.TrimSpace(r2.stdout)} {
				d := keyward(t, dir, tk+"\n", append(append([]string{"decrypt"}, tc.decrypt...), common...)...)
				if d.code != 0 || d.stdout != secret {
					t.Fatalf("decrypt = %+v, want %q", d, secret)
				}
			}
			// One wrap to create the keyring, one unwrap per later process.
			if w, u := tc.calls(); w != 1 || u != 3 {
				t.Errorf("the KMS saw %d wraps and %d unwraps, want 1 and 3", w, u)
			}
			// Other associated data: refused, one line, no plaintext.
			bad := append(append([]string{"decrypt"}, tc.decrypt...), "--store", "keys.json", "--keyring", "pii", "--aad", "patients/2/ssn", tok)
			if d := keyward(t, dir, "", bad...); d.code != 1 || d.stdout != "" || strings.Count(d.stderr, "\n") != 1 {
				t.Errorf("decrypt with other aad = %+v", d)
			}
			// The keyring is bound to its KEK: a file key cannot open it.
			keyward(t, dir, "", "keygen")
			if d := keyward(t, dir, tok, "decrypt", "-k", "crypto.key", "--store", "keys.json", "--keyring", "pii", "--aad", "patients/1/ssn"); d.code != 1 || !strings.Contains(d.stderr, "another key-encryption key") {
				t.Errorf("decrypt with a file key = %+v", d)
			}
		})
	}

	t.Run("Errors", func(t *testing.T) {
		dir := t.TempDir()
		keyward(t, dir, "", "keygen")
		raw := strings.TrimSpace(keyward(t, dir, "", "encrypt", "-k", "crypto.key", secret).stdout)
		down := "http://" + kmstest.RefusedAddr(t)
		disabled := aws.CreateKey(t)
		if _, err := aws.Client().DisableKey(t.Context(), &kms.DisableKeyInput{KeyId: &disabled}); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name  string
			stdin string
			args  []string
			code  int
			want  string
		}{
			{"both clouds", "x", []string{"encrypt", "--aws-kms", arn, "--gcp-kms", name, "--store", "k.json"}, 2, "not both"},
			{"key file too", "x", []string{"encrypt", "-k", "crypto.key", "--aws-kms", arn, "--store", "k.json"}, 2, "not both"},
			{"no store", "x", []string{"encrypt", "--aws-kms", arn}, 2, "needs --store"},
			{"region without aws", "x", []string{"encrypt", "--gcp-kms", name, "--aws-region", "eu-west-1", "--store", "k.json"}, 2, "--aws-region"},
			{"plaintext without gcp", "x", []string{"encrypt", "--aws-kms", arn, "--kms-plaintext", "--store", "k.json"}, 2, "--kms-plaintext"},
			{"bad gcp name", "x", []string{"encrypt", "--create", "--gcp-kms", "cli", "--kms-endpoint", gcp.Addr, "--kms-plaintext", "--store", "k.json"}, 1, "not a CryptoKey name"},
			{"aws down", "x", []string{"encrypt", "--create", "--aws-kms", arn, "--kms-endpoint", down, "--store", "k.json"}, 1, "key source unavailable"},
			{"gcp down", "x", []string{"encrypt", "--create", "--gcp-kms", name, "--kms-endpoint", kmstest.RefusedAddr(t), "--kms-plaintext", "--store", "k.json"}, 1, "key source unavailable"},
			{"disabled key", "x", []string{"encrypt", "--create", "--aws-kms", disabled, "--kms-endpoint", aws.URL, "--store", "k.json"}, 1, "key-encryption key is disabled"},
			{"raw-key token", raw, []string{"decrypt", "--aws-kms", arn, "--kms-endpoint", aws.URL, "--store", "k.json"}, 1, "decrypt it with -k"},
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
	})
}
