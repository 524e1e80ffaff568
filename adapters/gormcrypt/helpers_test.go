package gormcrypt_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/keyward/keyward/adapters/gormcrypt"
	"github.com/keyward/keyward/internal/kmstest"
	"github.com/keyward/keyward/keyring"
	"gorm.io/gorm"
)

// Info is a JSON-encoded encrypted field.
type Info struct {
	Allergies []string `json:"allergies"`
	Blood     string   `json:"blood"`
}

// Patient has a client-assigned UUID key: its encrypted fields are bound
// to the row.
type Patient struct {
	ID        uuid.UUID `gorm:"type:varchar(36);primaryKey"`
	Name      string
	SSN       string            `gorm:"serializer:keyward"`
	Email     string            `gorm:"serializer:keyward" keyward:"blind:EmailIdx;normalize:lower,trim"`
	EmailIdx  []byte            `gorm:"index"`
	Notes     []byte            `gorm:"serializer:keyward"`
	Phone     *string           `gorm:"serializer:keyward"`
	Info      *Info             `gorm:"serializer:keyward"`
	Tags      map[string]string `gorm:"serializer:keyward"`
	CompanyID *uint
	Company   *Company
	Visits    []Visit
	DeletedAt gorm.DeletedAt `gorm:"index"`
}

func (p *Patient) BeforeCreate(*gorm.DB) error {
	if p.ID == uuid.Nil {
		p.ID = uuid.New()
	}
	return nil
}

// Company has an auto-increment key: its encrypted fields are bound to the
// table and column only.
type Company struct {
	ID     uint
	Name   string
	Secret string `gorm:"serializer:keyward"`
}

type Visit struct {
	ID        uint
	PatientID uuid.UUID `gorm:"type:varchar(36);index"`
	Note      string    `gorm:"serializer:keyward"`
}

// Account has an auto-increment key and an indexed field.
type Account struct {
	ID       uint
	Owner    string `gorm:"serializer:keyward" keyward:"blind:OwnerIdx;bits:8"`
	OwnerIdx []byte `gorm:"index"`
	Balance  string `gorm:"serializer:keyward"`
}

func newKeyring(t testing.TB) *keyring.Keyring { return kmstest.MemoryKeyring(t) }

// setup registers a fresh keyring on db and migrates the test models.
func setup(t testing.TB, db *gorm.DB, opts ...gormcrypt.Option) (*gormcrypt.Crypt, *keyring.Keyring) {
	t.Helper()
	kr := newKeyring(t)
	c, err := gormcrypt.Register(db, kr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.AutoMigrate(&Company{}, &Patient{}, &Visit{}, &Account{}); err != nil {
		t.Fatal(err)
	}
	return c, kr
}

var errDenied = errors.New("access denied")

func ptr[T any](v T) *T { return &v }

// canary values: plaintext that must never appear in the database or logs.
const (
	canarySSN   = "CANARY-SSN-123-45-6789"
	canaryEmail = "Canary.Email@Example.com"
	canaryNote  = "CANARY-NOTE-private"
	canaryPhone = "CANARY-PHONE-555-0100"
	canaryBlood = "CANARY-BLOOD-AB"
)

func canaries() []string {
	return []string{canarySSN, strings.ToLower(canaryEmail), canaryEmail, canaryNote, canaryPhone, canaryBlood, "CANARY"}
}

func newPatient(name string) *Patient {
	return &Patient{
		Name:  name,
		SSN:   canarySSN,
		Email: canaryEmail,
		Notes: []byte(canaryNote),
		Phone: ptr(canaryPhone),
		Info:  &Info{Allergies: []string{"pollen"}, Blood: canaryBlood},
		Tags:  map[string]string{"ward": "CANARY-ward"},
	}
}

// rawRows returns every stored value of a table as text.
func rawRows(t testing.TB, db *gorm.DB, table string) []map[string]string {
	t.Helper()
	rows, err := db.Raw("SELECT * FROM " + table).Rows()
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []map[string]string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for i, c := range cols {
			switch v := vals[i].(type) {
			case nil:
				m[c] = ""
			case []byte:
				m[c] = string(v)
			case string:
				m[c] = v
			default:
				m[c] = fmt.Sprint(v)
			}
		}
		out = append(out, m)
	}
	return out
}

// assertNoPlaintext fails if any canary is stored in table.
func assertNoPlaintext(t testing.TB, db *gorm.DB, tables ...string) {
	t.Helper()
	for _, table := range tables {
		for _, row := range rawRows(t, db, table) {
			for col, v := range row {
				for _, c := range canaries() {
					if strings.Contains(v, c) {
						t.Errorf("%s.%s stores plaintext %q", table, col, c)
					}
				}
			}
		}
	}
}

// countingAuthorizer records the questions it is asked and refuses those
// in deny.
type countingAuthorizer struct {
	mu    sync.Mutex
	asked []string
	deny  map[string]bool
}

type principalKey struct{}

func (a *countingAuthorizer) Authorize(ctx context.Context, action, resource string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	user, _ := ctx.Value(principalKey{}).(string)
	a.asked = append(a.asked, user+" "+action+" "+resource)
	if a.deny[action+" "+resource] || (user == "" && a.deny["anonymous"]) {
		return errDenied
	}
	return nil
}

func (a *countingAuthorizer) questions() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.asked...)
}
