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

	"github.com/glebarez/sqlite"
	"github.com/google/uuid"
	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/adapters/gormcrypt"
	"github.com/keyward/keyward/cipher"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/rotation"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Customer has two encrypted fields, bound to the row's UUID.
type Customer struct {
	ID    uuid.UUID `gorm:"type:varchar(36);primaryKey"`
	Name  string
	Card  string `gorm:"serializer:keyward"`
	Email string `gorm:"serializer:keyward"`
}

// BeforeCreate assigns the key, so values are bound to it.
func (c *Customer) BeforeCreate(*gorm.DB) error {
	if c.ID == uuid.Nil {
		c.ID = uuid.New()
	}
	return nil
}

const customers = 200

func main() {
	dir := flag.String("dir", "", "directory for crypto.key, keys.json, rotation.db and the checkpoint (default: a new temporary directory)")
	flag.Parse()
	if *dir == "" {
		d, err := os.MkdirTemp("", "keyward-rotation-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "rotation:", err)
			os.Exit(1)
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	if err := run(context.Background(), os.Stdout, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "rotation:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer, dir string) error {
	// The key-encryption key: a key file, made once.
	keyPath := filepath.Join(dir, "crypto.key")
	if _, err := os.Stat(keyPath); errors.Is(err, fs.ErrNotExist) {
		if err := filekey.Generate(keyPath); err != nil {
			return err
		}
		fmt.Fprintf(out, "created %s\n", filepath.Base(keyPath))
	}
	src, err := filekey.Open(keyPath)
	if err != nil {
		return err
	}
	store, err := keyring.NewFileStore(filepath.Join(dir, "keys.json"))
	if err != nil {
		return err
	}
	kr, err := keyring.New(ctx, "default", src, store)
	if err != nil {
		return err
	}
	defer kr.Close()

	dbPath := filepath.Join(dir, "rotation.db")
	if f, err := os.OpenFile(dbPath, os.O_RDONLY|os.O_CREATE, 0o600); err == nil {
		f.Close()
	}
	db, err := gorm.Open(sqlite.Open(dbPath+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		return err
	}
	if sqlDB, err := db.DB(); err == nil {
		defer sqlDB.Close()
	}
	if _, err := gormcrypt.Register(db, kr); err != nil {
		return err
	}
	if err := db.AutoMigrate(&Customer{}); err != nil {
		return err
	}

	// Rows encrypted under the current primary data key.
	batch := make([]Customer, customers)
	for i := range batch {
		batch[i] = Customer{Name: fmt.Sprintf("customer %03d", i), Card: fmt.Sprintf("4111-0000-0000-%04d", i), Email: fmt.Sprintf("c%03d@example.com", i)}
	}
	if err := db.CreateInBatches(batch, 50).Error; err != nil {
		return err
	}
	before := kr.Primary()
	fmt.Fprintf(out, "stored %d customers under data key %d\n", customers, before)

	// Rotate: new values use the new primary at once; old ones still
	// decrypt with the old key, which stays enabled.
	newID, err := kr.Rotate(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "rotated: primary data key is now %d\n", newID)

	// Re-encrypt the old values, resumably: run the command again after
	// an interruption and it continues from the checkpoint.
	target, err := gormcrypt.NewTarget(db, &Customer{})
	if err != nil {
		return err
	}
	cp, err := rotation.NewFileCheckpoint(filepath.Join(dir, "rotation.checkpoint"))
	if err != nil {
		return err
	}
	st, err := rotation.Reencrypt(ctx, kr, target,
		rotation.WithCheckpoint(cp), rotation.WithBatchSize(50), rotation.WithWorkers(4),
		rotation.WithProgress(func(s rotation.Stats) {
			fmt.Fprintf(out, "  batch %d: %d values done\n", s.Batches, s.Scanned)
		}))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "re-encrypted: scanned %d, rewritten %d, already current %d, skipped %d, failed %d\n",
		st.Scanned, st.Rewritten, st.Current, st.Skipped, st.Failed)

	// Every stored value is now under the new key, and reads back.
	var stored []string
	if err := db.Raw("SELECT card FROM customers UNION ALL SELECT email FROM customers").Scan(&stored).Error; err != nil {
		return err
	}
	under := 0
	for _, tok := range stored {
		if id, ok := cipher.PeekKeyID(tok); ok && id == newID {
			under++
		}
	}
	fmt.Fprintf(out, "values under data key %d: %d of %d\n", newID, under, len(stored))
	var c Customer
	if err := db.Where("name = ?", "customer 042").First(&c).Error; err != nil {
		return err
	}
	fmt.Fprintf(out, "customer 042 reads back: card %s, email %s\n", c.Card, c.Email)
	return nil
}
