package gormcrypt_test

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/adapters/gormcrypt"
	"github.com/keyward/keyward/internal/dbtest"
	"gorm.io/gorm"
)

// TestAccessPolicy wires an access.Policy as the Authorizer: the principal
// in the statement's context decides, per field.
func TestAccessPolicy(t *testing.T) {
	policy, err := access.NewPolicy(access.Config{Roles: []access.Role{
		{Name: "clerk", Permissions: []access.Permission{
			{Actions: []string{access.ActionEncrypt}, Resources: []string{"field:patients.*"}},
			{Actions: []string{access.ActionDecrypt}, Resources: []string{access.FieldResource("patients", "email")}},
		}},
		{Name: "doctor", Inherits: []string{"clerk"}, Permissions: []access.Permission{
			{Actions: []string{access.ActionDecrypt}, Resources: []string{"field:patients.*"}},
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		setup(t, db, gormcrypt.WithAuthorizer(policy))
		clerk := access.WithPrincipal(t.Context(), access.Principal{UserID: "carol", Roles: []string{"clerk"}})
		doctor := access.WithPrincipal(t.Context(), access.Principal{UserID: "dan", Roles: []string{"doctor"}})
		p := newPatient("policy")
		if err := db.WithContext(clerk).Create(p).Error; err != nil {
			t.Fatal(err)
		}
		var got Patient
		if err := db.WithContext(doctor).First(&got, "id = ?", p.ID).Error; err != nil || got.SSN != p.SSN {
			t.Errorf("doctor reads %q, %v", got.SSN, err)
		}
		err := db.WithContext(clerk).First(&Patient{}, "id = ?", p.ID).Error
		if !errors.Is(err, access.ErrAccessDenied) {
			t.Errorf("clerk reading the SSN = %v, want access.ErrAccessDenied", err)
		}
		var e Patient
		if err := db.WithContext(clerk).Select("id", "email").First(&e, "id = ?", p.ID).Error; err != nil || e.Email != p.Email {
			t.Errorf("clerk reading the email = %q, %v", e.Email, err)
		}
		if err := db.First(&Patient{}, "id = ?", p.ID).Error; !errors.Is(err, access.ErrAccessDenied) {
			t.Errorf("no principal = %v, want access.ErrAccessDenied", err)
		}
	})
}

// TestAccessAuditEndToEnd runs two principals through gormcrypt on SQLite
// under a Guard whose audit log is a hash-chained file keyed by the
// keyring: the allowed and the denied attempt are both in the file, the
// file verifies, and an edit to it is detected.
func TestAccessAuditEndToEnd(t *testing.T) {
	policy, err := access.NewPolicy(access.Config{Roles: []access.Role{
		{Name: "clerk", Permissions: []access.Permission{
			{Actions: []string{access.ActionEncrypt}, Resources: []string{"field:patients.*"}},
		}},
		{Name: "doctor", Inherits: []string{"clerk"}, Permissions: []access.Permission{
			{Actions: []string{access.ActionDecrypt}, Resources: []string{"field:patients.*"}},
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	db := dbtest.Open(t, dbtest.SQLite, nil)
	kr := newKeyring(t)
	auditKey, err := kr.DeriveKey(t.Context(), access.AuditKeyLabel)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	log, err := access.OpenAuditLog(t.Context(), dir, auditKey.Bytes())
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
	if _, err := gormcrypt.Register(db, kr, gormcrypt.WithAuthorizer(guard)); err != nil {
		t.Fatal(err)
	}
	if err := db.AutoMigrate(&Company{}, &Patient{}, &Visit{}); err != nil {
		t.Fatal(err)
	}
	carol := access.WithPrincipal(t.Context(), access.Principal{UserID: "carol", Roles: []string{"clerk"}})
	dan := access.WithPrincipal(t.Context(), access.Principal{UserID: "dan", Roles: []string{"doctor"}})
	p := newPatient("audit")
	if err := db.WithContext(carol).Create(p).Error; err != nil {
		t.Fatal(err)
	}
	var got Patient
	if err := db.WithContext(dan).First(&got, "id = ?", p.ID).Error; err != nil || got.SSN != p.SSN {
		t.Fatalf("dan reads %q, %v", got.SSN, err)
	}
	if err := db.WithContext(carol).First(&Patient{}, "id = ?", p.ID).Error; !errors.Is(err, access.ErrAccessDenied) {
		t.Fatalf("carol reading = %v, want access.ErrAccessDenied", err)
	}
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}

	files, err := access.ListAuditFiles(dir, "audit")
	if err != nil || len(files) == 0 {
		t.Fatalf("audit files %v, %v", files, err)
	}
	if _, err := access.Verify(t.Context(), auditKey.Bytes(), files); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var danAllowed, carolDenied bool
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var r struct{ User, Action, Resource, Decision string }
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		if r.Action == access.ActionDecrypt && r.Resource == access.FieldResource("patients", "ssn") {
			danAllowed = danAllowed || (r.User == "dan" && r.Decision == "allow")
			carolDenied = carolDenied || (r.User == "carol" && r.Decision == "deny")
		}
		if strings.Contains(line, p.SSN) {
			t.Fatal("the audit log holds plaintext")
		}
	}
	if !danAllowed || !carolDenied {
		t.Fatalf("audit log lacks dan's allowed or carol's denied decrypt:\n%s", data)
	}
	// Turning carol's denial into an allow is detected.
	edited := strings.Replace(string(data), `"user":"carol","roles":["clerk"],"action":"decrypt","resource":"field:patients.ssn","decision":"deny"`,
		`"user":"carol","roles":["clerk"],"action":"decrypt","resource":"field:patients.ssn","decision":"allow"`, 1)
	if edited == string(data) {
		t.Fatal("the test could not find carol's denial to edit")
	}
	if err := os.WriteFile(files[0], []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := access.Verify(t.Context(), auditKey.Bytes(), files); !errors.Is(err, access.ErrTampered) {
		t.Fatalf("Verify(edited) = %v, want ErrTampered", err)
	}
}
