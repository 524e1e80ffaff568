package keyring_test

import (
	"context"
	"errors"
	"testing"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/keyring"
)

// TestWithAccessGuard runs a keyring under a real policy and audit log: the
// allowed principal decrypts, the denied one never causes an unwrap, a call
// without a principal is refused, and the audit file holds every decision and
// verifies under the keyring-derived audit key.
func TestWithAccessGuard(t *testing.T) {
	policy, err := access.NewPolicy(access.Config{Roles: []access.Role{
		{Name: "writer", Permissions: []access.Permission{{Actions: []string{access.ActionEncrypt}, Resources: []string{access.KeyringResource("pii")}}}},
		{Name: "reader", Inherits: []string{"writer"}, Permissions: []access.Permission{{Actions: []string{access.ActionDecrypt}, Resources: []string{"keyring:*"}}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	src, store := newSource(t), keyring.NewMemoryStore()
	admin := open(t, "pii", src, store) // no authorizer: the application's own setup
	auditKey, err := admin.DeriveKey(ctx, access.AuditKeyLabel)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	log, err := access.OpenAuditLog(ctx, dir, auditKey.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	auditor, err := access.NewAuditor(access.WithSink(log))
	if err != nil {
		t.Fatal(err)
	}
	guard, err := access.NewGuard(policy, auditor)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := admin.EncryptString(ctx, "123-45-6789")
	if _, err := admin.Rotate(ctx); err != nil { // tok's key is now cold in a new keyring
		t.Fatal(err)
	}
	kr := open(t, "pii", src, store, keyring.WithAuthorizer(guard))
	before := src.unwraps.Load()

	alice := access.WithPrincipal(ctx, access.Principal{UserID: "alice", Roles: []string{"reader"}})
	bob := access.WithPrincipal(ctx, access.Principal{UserID: "bob", Roles: []string{"writer"}})

	if _, err := kr.DecryptString(bob, tok); !errors.Is(err, access.ErrAccessDenied) {
		t.Fatalf("bob's decrypt = %v, want ErrAccessDenied", err)
	}
	if _, err := kr.DecryptString(context.Background(), tok); !errors.Is(err, access.ErrAccessDenied) {
		t.Fatalf("decrypt without a principal = %v, want ErrAccessDenied", err)
	}
	if src.unwraps.Load() != before {
		t.Fatal("a denied decrypt unwrapped a data key")
	}
	if got, err := kr.DecryptString(alice, tok); err != nil || got != "123-45-6789" {
		t.Fatalf("alice's decrypt = %q, %v", got, err)
	}
	if _, err := kr.EncryptString(bob, "x"); err != nil {
		t.Fatalf("bob's encrypt = %v", err)
	}
	if _, err := kr.Rotate(alice); !errors.Is(err, access.ErrAccessDenied) {
		t.Fatalf("alice's rotate = %v, want ErrAccessDenied", err)
	}
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := access.ListAuditFiles(dir, "audit")
	if err != nil || len(files) == 0 {
		t.Fatalf("audit files: %v, %v", files, err)
	}
	res, err := access.Verify(ctx, auditKey.Bytes(), files)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if res.Records != 5 {
		t.Errorf("audit holds %d records, want 5 (2 denied decrypts, 1 allowed, 1 encrypt, 1 denied rotate): %s", res.Records, res)
	}
}
