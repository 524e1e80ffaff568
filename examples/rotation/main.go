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

	"github.com/glebarez/sqlite"
	"github.com/google/uuid"
	"github.com/keyward/keyward/access"
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
	keep := *dir != ""
	if !keep {
		d, err := os.MkdirTemp("", "keyward-rotation-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "rotation:", err)
			os.Exit(1)
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	if err := run(context.Background(), os.Stdout, *dir, keep); err != nil {
		fmt.Fprintln(os.Stderr, "rotation:", err)
		os.Exit(1)
	}
}

// demoFiles are the files a run writes in its directory besides
// crypto.key, which later runs reuse.
var demoFiles = []string{"keys.json", "keys.json.lock", "rotation.db", "rotation.db-wal", "rotation.db-shm", "rotation.checkpoint", "audit"}

// run runs the demo in dir; keep says dir stays after the run, so the
// audit verify command it prints can be run.
func run(ctx context.Context, out io.Writer, dir string, keep bool) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// A checkpoint left by an interrupted run: continue its
	// re-encryption. Otherwise start over, so that runs do not pile up
	// rows and key versions.
	cpPath := filepath.Join(dir, "rotation.checkpoint")
	_, err := os.Stat(cpPath)
	resume := err == nil
	if resume {
		fmt.Fprintf(out, "resuming the interrupted re-encryption in %s (rotation.checkpoint)\n", dir)
	} else {
		var removed []string
		for _, name := range demoFiles {
			p := filepath.Join(dir, name)
			if _, err := os.Lstat(p); err != nil {
				continue
			}
			if err := os.RemoveAll(p); err != nil {
				return err
			}
			removed = append(removed, name)
		}
		if len(removed) > 0 {
			fmt.Fprintf(out, "removed the previous run's demo data in %s (%s): starting over\n", dir, strings.Join(removed, ", "))
		}
	}

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

	newID := kr.Primary()
	if !resume {
		// Rows encrypted under the current primary data key.
		batch := make([]Customer, customers)
		for i := range batch {
			batch[i] = Customer{Name: fmt.Sprintf("customer %03d", i), Card: fmt.Sprintf("4111-0000-0000-%04d", i), Email: fmt.Sprintf("c%03d@example.com", i)}
		}
		if err := db.CreateInBatches(batch, 50).Error; err != nil {
			return err
		}
		fmt.Fprintf(out, "stored %d customers under data key %d\n", customers, newID)

		// Rotate: new values use the new primary at once; old ones still
		// decrypt with the old key, which stays enabled.
		if newID, err = kr.Rotate(ctx); err != nil {
			return err
		}
		fmt.Fprintf(out, "rotated: primary data key is now %d\n", newID)
	}

	// Re-encrypt the old values, resumably: run the command again after
	// an interruption and it continues from the checkpoint.
	target, err := gormcrypt.NewTarget(db, &Customer{})
	if err != nil {
		return err
	}
	cp, err := rotation.NewFileCheckpoint(cpPath)
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
	return writeAudit(ctx, out, kr, dir, st, keep)
}

// writeAudit records what the run did in a hash-chained audit log in
// dir/audit, under a key derived from the keyring, and prints the command
// that verifies it.
func writeAudit(ctx context.Context, out io.Writer, kr *keyring.Keyring, dir string, st rotation.Stats, keep bool) error {
	d, err := kr.DeriveKey(ctx, access.AuditKeyLabel)
	if err != nil {
		return err
	}
	key := d.Bytes()
	defer clear(key)
	auditDir := filepath.Join(dir, "audit")
	var last access.Checkpoint
	log, err := access.OpenAuditLog(ctx, auditDir, key, access.WithCheckpointFunc(func(cp access.Checkpoint) { last = cp }))
	if err != nil {
		return err
	}
	for _, r := range []access.Record{
		{Action: "rotate", Resource: "keyring:" + kr.Name()},
		{Action: fmt.Sprintf("reencrypt %d values", st.Rewritten), Resource: "table:customers"},
		{Action: "decrypt", Resource: "field:customers.card"},
	} {
		r.UserID, r.Decision = "rotation-example", access.DecisionAllow
		if err := log.WriteRecord(ctx, r); err != nil {
			_ = log.Close()
			return err
		}
	}
	if err := log.Close(); err != nil {
		return err
	}
	if !keep {
		fmt.Fprintf(out, "\nwrote a hash-chained audit log; run with -dir DIR to keep it and verify it with keyward audit verify\n")
		return nil
	}
	files, err := access.ListAuditFiles(auditDir, "")
	if err != nil {
		return err
	}
	// The checkpoint (written at Close) lets the verifier notice records
	// cut from the end of the log.
	fmt.Fprintf(out, "\naudit log: %s; verify it with the keyward command (go install ./examples/keyward):\n", auditDir)
	fmt.Fprintf(out, "  keyward audit verify -k %s --store %s --checkpoint %s %s\n",
		shellQuote(filepath.Join(dir, "crypto.key")), shellQuote(filepath.Join(dir, "keys.json")), shellQuote(last.String()), strings.Join(quoteAll(files), " "))
	return nil
}

// shellQuote quotes s for a POSIX shell when it holds anything but safe
// characters.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=+@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = shellQuote(s)
	}
	return out
}
