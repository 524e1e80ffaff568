package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/google/uuid"
	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/adapters/gormcrypt"
	"github.com/keyward/keyward/keyring"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Patient is the model: SSN, Email and Diagnosis are encrypted; Email is
// also searchable by equality through its blind index EmailIdx.
type Patient struct {
	ID        uuid.UUID `gorm:"type:varchar(36);primaryKey"`
	Name      string
	SSN       string `gorm:"serializer:keyward"`
	Email     string `gorm:"serializer:keyward" keyward:"blind:EmailIdx;normalize:lower,trim"`
	EmailIdx  []byte `gorm:"index"`
	Diagnosis string `gorm:"serializer:keyward"`
	CreatedAt time.Time
}

func main() {
	dir := flag.String("dir", ".", "directory for crypto.key and quickstart.db (made if missing)")
	dsn := flag.String("dsn", os.Getenv("KEYWARD_PG_DSN"), "PostgreSQL DSN to use instead of quickstart.db (default $KEYWARD_PG_DSN)")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, *dir, *dsn); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer, dir, dsn string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// The database: embedded SQLite by default, PostgreSQL with a DSN.
	var dialector gorm.Dialector
	where, startOver := "the PostgreSQL database", "dropping its tables keyward_keysets, keyward_keys, keyward_key_counts and patients"
	if dsn != "" {
		dialector = postgres.Open(dsn)
		fmt.Fprintln(out, "database: PostgreSQL")
	} else {
		path := filepath.Join(dir, "quickstart.db")
		where, startOver = path, "deleting "+path
		// Created 0600 first: the file holds the wrapped keys too.
		if f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600); err == nil {
			f.Close()
		}
		dialector = sqlite.Open(path + "?_pragma=busy_timeout(5000)")
		fmt.Fprintf(out, "database: SQLite %s\n", path)
	}
	db, err := gorm.Open(dialector, &gorm.Config{Logger: logger.Discard})
	if err != nil {
		return err
	}
	if sqlDB, err := db.DB(); err == nil {
		defer sqlDB.Close()
	}

	// The keyring, kept in the same database, and the GORM registration.
	store, err := gormcrypt.NewStore(ctx, db)
	if err != nil {
		return err
	}
	// The key-encryption key: made on the first run only. A keyring made
	// with a key that is gone is not papered over with a new key.
	keyPath := filepath.Join(dir, "crypto.key")
	wayOut := fmt.Sprintf("restore the key file it was made with, or start over by %s (what it holds becomes unreadable)", startOver)
	switch _, err := os.Stat(keyPath); {
	case errors.Is(err, fs.ErrNotExist):
		if _, err := store.Load(ctx, "default"); err == nil {
			return fmt.Errorf("%s is missing and the keyring in %s was made with it: %s", keyPath, where, wayOut)
		} else if !errors.Is(err, keyring.ErrKeyringNotFound) {
			return err
		}
		if err := filekey.Generate(keyPath); err != nil {
			return err
		}
		fmt.Fprintf(out, "created %s (mode 0600): keep it secret, keep it safe\n", keyPath)
	case err != nil:
		return err
	default:
		fmt.Fprintf(out, "using %s\n", keyPath)
	}
	src, err := filekey.Open(keyPath)
	if err != nil {
		return err
	}
	kr, err := keyring.New(ctx, "default", src, store)
	if errors.Is(err, keyring.ErrWrongKEK) {
		return fmt.Errorf("the keyring in %s was made with another key-encryption key than %s: %s: %w", where, keyPath, wayOut, keyring.ErrWrongKEK)
	}
	if err != nil {
		return err
	}
	defer kr.Close()
	fmt.Fprintf(out, "keyring %q in table keyward_keys, primary key ID %d\n\n", kr.Name(), kr.Primary())
	if _, err := gormcrypt.Register(db, kr); err != nil {
		return err
	}
	db = db.WithContext(ctx)
	if err := db.AutoMigrate(&Patient{}); err != nil {
		return err
	}

	// Create (or find, on a second run) two patients. The condition on
	// Email is a blind index lookup.
	people := []Patient{
		{Name: "Ada Lovelace", SSN: "123-45-6789", Email: "ada@example.com", Diagnosis: "hypertension"},
		{Name: "Alan Turing", SSN: "987-65-4321", Email: "alan@example.com", Diagnosis: "asthma"},
	}
	for i, in := range people {
		in.ID = uuid.New()
		var p Patient
		if err := db.Where(&Patient{Email: in.Email}).Attrs(in).FirstOrCreate(&p).Error; err != nil {
			return err
		}
		verb := "found "
		if p.ID == in.ID {
			verb = "stored"
		}
		fmt.Fprintf(out, "%s patient %s  %s\n", verb, p.ID, p.Name)
		people[i] = p
	}

	// Query by blind index (normalized: case and spaces do not matter) and
	// read back.
	var ada Patient
	if err := gormcrypt.Where(db, "Email", "  ADA@Example.com ").First(&ada).Error; err != nil {
		return err
	}
	fmt.Fprintf(out, "\nlookup Email = \"  ADA@Example.com \" (blind index):\n")
	fmt.Fprintf(out, "  %s, SSN %s, %s, %s\n", ada.Name, ada.SSN, ada.Email, ada.Diagnosis)

	// The row as the database holds it.
	rows, err := db.Raw("SELECT id, name, ssn, email, email_idx, diagnosis FROM patients WHERE id = ?", ada.ID.String()).Rows()
	if err != nil {
		return err
	}
	cols, _ := rows.Columns()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			rows.Close()
			return err
		}
	}
	rows.Close()
	fmt.Fprintln(out, "\nthe stored row:")
	stored := map[string]string{}
	for i, c := range cols {
		var s string
		switch v := vals[i].(type) {
		case []byte:
			if c == "email_idx" {
				s = fmt.Sprintf("%x (key ID + 32-bit HMAC)", v)
			} else {
				s = string(v)
			}
		default:
			s = fmt.Sprint(v)
		}
		stored[c] = s
		fmt.Fprintf(out, "  %-9s %s\n", c, s)
	}
	for _, secret := range []string{ada.SSN, ada.Email, ada.Diagnosis} {
		for _, v := range stored {
			if strings.Contains(v, secret) {
				return fmt.Errorf("the database holds plaintext")
			}
		}
	}

	// A tampered token and a token moved to another row are refused. Both
	// changes are made in a transaction that is rolled back.
	fmt.Fprintln(out)
	tampered := []byte(stored["ssn"])
	tampered[len(tampered)-5] ^= 1
	err = refused(db, ada.ID, string(tampered))
	fmt.Fprintf(out, "tampered token:             refused (%v)\n", err)
	if !errors.Is(err, keyring.ErrDecrypt) && !errors.Is(err, keyring.ErrMalformedToken) {
		return fmt.Errorf("a tampered token was not refused: %v", err)
	}
	err = refused(db, people[1].ID, stored["ssn"])
	fmt.Fprintf(out, "token moved to another row: refused (%v)\n", err)
	if !errors.Is(err, keyring.ErrDecrypt) {
		return fmt.Errorf("a moved token was not refused: %v", err)
	}
	return nil
}

// refused writes token into the ssn column of row id, reads the row back
// and rolls the change back. It returns the read's error.
func refused(db *gorm.DB, id uuid.UUID, token string) error {
	var readErr error
	errRollback := errors.New("roll back")
	err := db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec("UPDATE patients SET ssn = ? WHERE id = ?", token, id.String()).Error; err != nil {
			return err
		}
		readErr = tx.First(&Patient{}, "id = ?", id.String()).Error
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		return err
	}
	return readErr
}
