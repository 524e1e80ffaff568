package gormcrypt_test

import (
	"errors"
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
