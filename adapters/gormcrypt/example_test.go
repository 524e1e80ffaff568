package gormcrypt_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/glebarez/sqlite"
	"github.com/google/uuid"
	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/adapters/gormcrypt"
	"github.com/keyward/keyward/keyring"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Customer is a model with an encrypted field, an encrypted and searchable
// field and its blind index.
type Customer struct {
	ID       uuid.UUID `gorm:"type:varchar(36);primaryKey"`
	Name     string
	SSN      string `gorm:"serializer:keyward"`
	Email    string `gorm:"serializer:keyward" keyward:"blind:EmailIdx;normalize:lower,trim"`
	EmailIdx []byte `gorm:"index"`
}

// open opens an SQLite database, a crypto.key and a keyring kept in the
// database, in dir.
func open(ctx context.Context, dir string) (*gorm.DB, *keyring.Keyring, error) {
	db, err := gorm.Open(sqlite.Open(filepath.Join(dir, "app.db")), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		return nil, nil, err
	}
	keyPath := filepath.Join(dir, "crypto.key")
	if err := filekey.Generate(keyPath); err != nil {
		return nil, nil, err
	}
	src, err := filekey.Open(keyPath)
	if err != nil {
		return nil, nil, err
	}
	store, err := gormcrypt.NewStore(ctx, db)
	if err != nil {
		return nil, nil, err
	}
	kr, err := keyring.New(ctx, "default", src, store)
	if err != nil {
		return nil, nil, err
	}
	return db, kr, nil
}

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "gormcrypt-example")
	defer os.RemoveAll(dir)
	db, kr, err := open(ctx, dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer kr.Close()

	if _, err := gormcrypt.Register(db, kr); err != nil {
		fmt.Println(err)
		return
	}
	if err := db.AutoMigrate(&Customer{}); err != nil {
		fmt.Println(err)
		return
	}
	ada := Customer{ID: uuid.New(), Name: "Ada", SSN: "123-45-6789", Email: "ada@example.com"}
	if err := db.WithContext(ctx).Create(&ada).Error; err != nil {
		fmt.Println(err)
		return
	}

	// Equality lookup through the blind index (normalized: lower case).
	var found Customer
	if err := gormcrypt.Where(db.WithContext(ctx), "Email", "ADA@example.com").First(&found).Error; err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(found.Name, found.SSN)

	// What the database holds.
	var stored string
	db.Raw("SELECT ssn FROM customers WHERE id = ?", ada.ID).Scan(&stored)
	fmt.Println(strings.HasPrefix(stored, "kw1."), strings.Contains(stored, "6789"))
	// Output:
	// Ada 123-45-6789
	// true false
}

// A struct condition on an indexed field is a blind index lookup; on a
// field without an index it is refused rather than compared to ciphertext.
func ExampleEq() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "gormcrypt-example")
	defer os.RemoveAll(dir)
	db, kr, err := open(ctx, dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer kr.Close()
	if _, err := gormcrypt.Register(db, kr); err != nil {
		fmt.Println(err)
		return
	}
	_ = db.AutoMigrate(&Customer{})
	_ = db.Create(&[]Customer{
		{ID: uuid.New(), Name: "Ada", SSN: "1", Email: "ada@example.com"},
		{ID: uuid.New(), Name: "Bob", SSN: "2", Email: "bob@example.com"},
	}).Error

	var cs []Customer
	db.Where(gormcrypt.Eq("Email", "ada@example.com", "bob@example.com")).Order("name").Find(&cs)
	fmt.Println(len(cs), cs[0].Name, cs[1].Name)

	var c Customer
	db.Where(&Customer{Email: "bob@example.com"}).First(&c)
	fmt.Println(c.Name)

	err = db.Where(&Customer{SSN: "1"}).First(&c).Error
	fmt.Println(errors.Is(err, gormcrypt.ErrNotSearchable))
	// Output:
	// 2 Ada Bob
	// Bob
	// true
}

// denyDecrypt lets everyone encrypt and no one decrypt the SSN.
type denyDecrypt struct{}

func (denyDecrypt) Authorize(_ context.Context, action, resource string) error {
	if action == access.ActionDecrypt && resource == "field:customers.ssn" {
		return errors.New("not allowed")
	}
	return nil
}

// A refused decryption shows a redaction value instead of failing the
// query.
func ExampleWithRedaction() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "gormcrypt-example")
	defer os.RemoveAll(dir)
	db, kr, err := open(ctx, dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer kr.Close()
	if _, err := gormcrypt.Register(db, kr, gormcrypt.WithAuthorizer(denyDecrypt{}), gormcrypt.WithRedaction("***")); err != nil {
		fmt.Println(err)
		return
	}
	_ = db.AutoMigrate(&Customer{})
	_ = db.Create(&Customer{ID: uuid.New(), Name: "Ada", SSN: "123-45-6789", Email: "ada@example.com"}).Error
	var c Customer
	if err := db.First(&c).Error; err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Name, c.SSN, c.Email)
	// Output: Ada *** ada@example.com
}
