package main

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dirNames lists the names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// newKeyStore makes crypto.key and keys.json (keyring "default") in a new
// directory and returns it with a keyring token of secret.
func newKeyStore(t *testing.T, secret string) (dir, tok string) {
	t.Helper()
	dir = t.TempDir()
	require.Equal(t, 0, keyward(t, dir, "", "keygen").code)
	r := keyward(t, dir, "", "encrypt", "--create", "-k", "crypto.key", "--store", "keys.json", "--aad", "a", secret)
	require.Equal(t, 0, r.code, "encrypt --create: %+v", r)
	return dir, strings.TrimSpace(r.stdout)
}

// A mistyped store path is an error for every command but encrypt
// --create, and nothing is written: no store, no lock file, no key.
func TestMissingStoreCreatesNothing(t *testing.T) {
	dir, tok := newKeyStore(t, "123-45-6789")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.jsonl"), []byte("{}\n"), 0o600))
	before := dirNames(t, dir)
	keysJSON, err := os.ReadFile(filepath.Join(dir, "keys.json"))
	require.NoError(t, err)
	const typo = "typo.json"
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"encrypt without --create", []string{"encrypt", "-k", "crypto.key", "--store", typo, "x"}},
		{"decrypt", []string{"decrypt", "-k", "crypto.key", "--store", typo, "--aad", "a", tok}},
		{"audit verify", []string{"audit", "verify", "-k", "crypto.key", "--store", typo, "a.jsonl"}},
		{"keys list", []string{"keys", "list", "--store", typo}},
		{"keys inventory", []string{"keys", "inventory", "--store", typo, "--db", "app.db"}},
		{"keys rotate", []string{"keys", "rotate", "-k", "crypto.key", "--store", typo}},
		{"keys disable", []string{"keys", "disable", "1", "-k", "crypto.key", "--store", typo}},
		{"keys destroy", []string{"keys", "destroy", "1", "--force", "-k", "crypto.key", "--store", typo}},
		{"keys rewrap", []string{"keys", "rewrap", "-k", "crypto.key", "--store", typo, "--to", "-k", "other.key"}},
		{"reencrypt", []string{"reencrypt", "-k", "crypto.key", "--store", typo, "--db", "app.db", "--dry-run"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := keyward(t, dir, "", tc.args...)
			assert.Equal(t, 1, r.code, "keyward %v = %+v", tc.args, r)
			assert.Contains(t, r.stderr, "keyring store typo.json does not exist", "keyward %v", tc.args)
			assert.Equal(t, before, dirNames(t, dir), "keyward %v wrote a file", tc.args)
		})
	}

	// A keyring name not in an existing store: an error, the store unchanged.
	for _, args := range [][]string{
		{"encrypt", "-k", "crypto.key", "--store", "keys.json", "--keyring", "typo", "x"},
		{"decrypt", "-k", "crypto.key", "--store", "keys.json", "--keyring", "typo", "--aad", "a", tok},
	} {
		r := keyward(t, dir, "", args...)
		assert.Equal(t, 1, r.code, "keyward %v = %+v", args, r)
		assert.Contains(t, r.stderr, `keyring "typo" is not in keys.json`, "keyward %v", args)
		after, err := os.ReadFile(filepath.Join(dir, "keys.json"))
		require.NoError(t, err)
		assert.Equal(t, string(keysJSON), string(after), "keyward %v changed keys.json", args)
	}

	// encrypt --create makes the store, and then it decrypts.
	r := keyward(t, dir, "", "encrypt", "--create", "-k", "crypto.key", "--store", "new.json", "x")
	require.Equal(t, 0, r.code, "encrypt --create = %+v", r)
	assert.FileExists(t, filepath.Join(dir, "new.json"))
	d := keyward(t, dir, r.stdout, "decrypt", "-k", "crypto.key", "--store", "new.json")
	assert.Equal(t, "x", d.stdout, "decrypt after --create: %+v", d)
}

// edit changes one character in the middle of tok.
func edit(tok string) string {
	b := []byte(tok)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// Every authentication failure, with a key file or a keyring, says the
// same thing and names the causes; a replaced key file next to a store is
// named as such.
func TestAuthenticationFailureWording(t *testing.T) {
	const secret = "123-45-6789"
	dir, storeTok := newKeyStore(t, secret)
	require.Equal(t, 0, keyward(t, dir, "", "keygen", "-o", "other.key").code)
	r := keyward(t, dir, "", "encrypt", "-k", "crypto.key", "--aad", "a", secret)
	require.Equal(t, 0, r.code)
	rawTok := strings.TrimSpace(r.stdout)
	const want = "keyward decrypt: the token does not authenticate: the wrong key file or key source, the wrong --aad, or an edited or truncated token\n"
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"key file: wrong key", []string{"-k", "other.key", "--aad", "a", rawTok}},
		{"key file: wrong aad", []string{"-k", "crypto.key", "--aad", "b", rawTok}},
		{"key file: no aad", []string{"-k", "crypto.key", rawTok}},
		{"key file: edited token", []string{"-k", "crypto.key", "--aad", "a", edit(rawTok)}},
		{"key file: truncated token", []string{"-k", "crypto.key", "--aad", "a", rawTok[:len(rawTok)-4]}},
		{"store: wrong aad", []string{"-k", "crypto.key", "--store", "keys.json", "--aad", "b", storeTok}},
		{"store: edited token", []string{"-k", "crypto.key", "--store", "keys.json", "--aad", "a", edit(storeTok)}},
		{"store: truncated token", []string{"-k", "crypto.key", "--store", "keys.json", "--aad", "a", storeTok[:len(storeTok)-4]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := keyward(t, dir, "", append([]string{"decrypt"}, tc.args...)...)
			assert.Equal(t, 1, r.code, "decrypt %v = %+v", tc.args, r)
			assert.Equal(t, want, r.stderr, "decrypt %v", tc.args)
			assert.Empty(t, r.stdout)
		})
	}

	// The store was made with crypto.key: another key file is named as
	// the situation it is, with the ways out.
	r = keyward(t, dir, "", "decrypt", "-k", "other.key", "--store", "keys.json", "--aad", "a", storeTok)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "the keyring in keys.json was made with another key-encryption key")
	assert.Contains(t, r.stderr, "restore the key file")
	assert.Contains(t, r.stderr, "start over by deleting keys.json")
	assert.NotContains(t, r.stderr, "filekey:", "an internal key ID")
}

// A missing AWS region or missing credentials is a configuration error,
// not an unavailable key source, and costs no KMS call.
func TestConfigurationErrors(t *testing.T) {
	awsEnv(t)
	dir := t.TempDir()
	const arn = "arn:aws:kms:eu-west-1:111122223333:key/1bf9bf63-8bfc-422d-9190-f69f7eec33a7"
	r := keyward(t, dir, "", "encrypt", "--create", "--aws-kms", "alias/app", "--store", "k.json", "x")
	assert.Equal(t, 1, r.code, "%+v", r)
	assert.Equal(t, "keyward encrypt: configuration error: "+errRegion.Error()+"\n", r.stderr)

	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	r = keyward(t, dir, "", "encrypt", "--create", "--aws-kms", arn, "--store", "k.json", "x")
	assert.Equal(t, 1, r.code, "%+v", r)
	assert.True(t, strings.HasPrefix(r.stderr, "keyward encrypt: configuration error: no AWS credentials: set AWS_PROFILE"), "stderr %q", r.stderr)
	assert.NotContains(t, r.stderr, "key source unavailable")
	assert.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line: %q", r.stderr)
	assert.NoFileExists(t, filepath.Join(dir, "k.json"))

	// Cloud KMS without Application Default Credentials.
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	t.Setenv("HOME", dir)
	t.Setenv("CLOUDSDK_CONFIG", filepath.Join(dir, "gcloud"))
	r = keyward(t, dir, "", "encrypt", "--create", "--gcp-kms", "projects/p/locations/global/keyRings/r/cryptoKeys/k", "--store", "k.json", "x")
	assert.Equal(t, 1, r.code, "%+v", r)
	assert.True(t, strings.HasPrefix(r.stderr, "keyward encrypt: configuration error: the Cloud KMS client: "), "stderr %q", r.stderr)
	assert.Contains(t, r.stderr, "gcloud auth application-default login")
	assert.NoFileExists(t, filepath.Join(dir, "k.json"))
}

// --version prints the build's version; -h of a command lists its own
// flags on stdout; a usage error prints the usage line once and no flag
// list.
func TestHelpAndVersion(t *testing.T) {
	dir := t.TempDir()
	r := keyward(t, dir, "", "--version")
	assert.Equal(t, 0, r.code)
	assert.True(t, strings.HasPrefix(r.stdout, "keyward "), "--version = %q", r.stdout)
	assert.True(t, strings.HasSuffix(r.stdout, ", "+runtime.Version()+"\n"), "--version = %q", r.stdout)

	for _, tc := range []struct {
		args       []string
		has, hasNo []string
	}{
		{[]string{"encrypt", "-h"}, []string{"-create", "-aad", "-key-service", "-store"}, nil},
		{[]string{"decrypt", "-h"}, []string{"-aad", "-k path"}, []string{"-create"}},
		{[]string{"audit", "verify", "-h"}, []string{"-checkpoint", "-k path"}, []string{"-aad", "-create", "-key-service"}},
		{[]string{"keys", "list", "-h"}, []string{"-json", "-store"}, []string{"-k path", "-aws-kms", "-key-service"}},
		{[]string{"keys", "inventory", "-h"}, []string{"-db"}, []string{"-k path", "-gcp-kms", "-keyring"}},
		{[]string{"reencrypt", "-h"}, []string{"-dry-run", "-k path"}, []string{"-keyring"}},
		{[]string{"keys", "rotate", "-h"}, []string{"-k path", "-store"}, []string{"-json", "-force"}},
		{[]string{"keygen", "-h"}, []string{"-o path", "-f"}, []string{"-store"}},
		{[]string{"inspect", "-h"}, nil, []string{"-k path"}},
		{[]string{"keys", "-h"}, nil, []string{"-k path"}},
		{[]string{"audit", "--help"}, nil, []string{"-k path"}},
	} {
		r := keyward(t, dir, "", tc.args...)
		assert.Equal(t, 0, r.code, "%v = %+v", tc.args, r)
		assert.Empty(t, r.stderr, "%v", tc.args)
		assert.Equal(t, 1, strings.Count(r.stdout, "usage: keyward "), "%v: %q", tc.args, r.stdout)
		if tc.args[0] == "keys" && len(tc.args) > 2 {
			assert.Contains(t, r.stdout, "usage: keyward keys "+tc.args[1]+" ", "%v: the subcommand's own usage line", tc.args)
		}
		lines := strings.Split(r.stdout, "\n")
		for _, f := range tc.has {
			assert.True(t, slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "  "+f) }), "%v lists no %s: %q", tc.args, f, r.stdout)
		}
		for _, f := range tc.hasNo {
			assert.False(t, slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "  "+f) }), "%v lists %s: %q", tc.args, f, r.stdout)
		}
	}

	for _, args := range [][]string{{"encrypt", "-k"}, {"decrypt", "--nope"}, {"keys", "list", "--store"}} {
		r := keyward(t, dir, "", args...)
		assert.Equal(t, 2, r.code, "%v = %+v", args, r)
		assert.Equal(t, 1, strings.Count(r.stderr, "usage:"), "%v: %q", args, r.stderr)
		assert.NotContains(t, r.stderr, "Usage of", "%v", args)
		assert.Equal(t, 2, strings.Count(r.stderr, "\n"), "%v: the error and the usage line: %q", args, r.stderr)
	}
}
