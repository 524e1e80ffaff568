package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/adapters/gormcrypt"
	"github.com/keyward/keyward/keyring"
)

// fleetFlags are the flags of the key and re-encryption commands: the key
// source (-k or a cloud KMS key), the store, the registry's database and
// the keyring.
type fleetFlags struct {
	keyPath, store, db, keyringName *string
	kms                             kmsFlags
	keySvc                          keyServiceFlags
}

func addFleetFlags(fs *flag.FlagSet) fleetFlags {
	return fleetFlags{
		keyPath:     fs.String("k", "", "`path` of the key file (crypto.key) wrapping the data keys"),
		store:       fs.String("store", "", "the keyring store: a keys.json `path`, a PostgreSQL DSN (postgres://...) or a SQLite file holding keyward's tables"),
		db:          fs.String("db", "", "the `database` holding the column registry (PostgreSQL DSN or SQLite file), when --store is a keys.json file"),
		keyringName: fs.String("keyring", "default", "keyring `name`"),
		kms:         addKMSFlags(fs),
		keySvc:      addKeyServiceFlags(fs),
	}
}

// databaseDSN reports whether s names a database rather than a keys.json
// file, and whether PostgreSQL.
func databaseDSN(s string) (isDB, pg bool) {
	switch {
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"), strings.Contains(s, "host="):
		return true, true
	case strings.HasSuffix(strings.ToLower(s), ".json"):
		return false, false
	}
	return true, false
}

// openDB opens a database named by dsn. A SQLite file must exist: the tool
// never creates a database; readOnly opens it read-only.
func openDB(dsn string, readOnly bool) (*gorm.DB, error) {
	_, pg := databaseDSN(dsn)
	cfg := &gorm.Config{Logger: logger.Discard}
	if pg {
		db, err := gorm.Open(postgres.Open(dsn), cfg)
		if err != nil {
			return nil, fmt.Errorf("open the database: %w", err)
		}
		return db, nil
	}
	path := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "file:")
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	q := "?_pragma=busy_timeout(10000)"
	if readOnly {
		q += "&mode=ro"
	}
	db, err := gorm.Open(sqlite.Open("file:"+path+q), cfg)
	if err != nil {
		return nil, fmt.Errorf("open the database: %w", err)
	}
	return db, nil
}

// fleet is what a key or re-encryption command works on.
type fleet struct {
	store keyring.Store
	db    *gorm.DB // the registry's database; nil when none was given
}

func (f *fleet) close() {
	if f.db != nil {
		if sqlDB, err := f.db.DB(); err == nil {
			sqlDB.Close()
		}
	}
}

// open opens the store and the registry's database. A read-only command
// never creates or changes a store or a table: a missing store is an
// error.
func (f fleetFlags) open(ctx context.Context, readOnly bool) (*fleet, error) {
	if *f.store == "" {
		return nil, usagef("--store is required: a keys.json path or a database DSN")
	}
	out := &fleet{}
	isDB, _ := databaseDSN(*f.store)
	dbDSN := *f.db
	if isDB {
		if dbDSN != "" && dbDSN != *f.store {
			return nil, usagef("--db goes with a keys.json --store; a database --store holds the registry itself")
		}
		dbDSN = *f.store
	} else {
		if _, err := os.Stat(*f.store); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("keyring store %s does not exist", *f.store)
		}
		s, err := keyring.NewFileStore(*f.store)
		if err != nil {
			return nil, err
		}
		out.store = s
	}
	if dbDSN != "" {
		db, err := openDB(dbDSN, readOnly)
		if err != nil {
			return nil, err
		}
		out.db = db
	}
	if out.store == nil {
		s, err := gormcrypt.NewStore(ctx, out.db, gormcrypt.WithoutMigrate())
		if err != nil {
			out.close()
			return nil, err
		}
		out.store = s
	}
	return out, nil
}

// source returns the key source of the flags and a function releasing it.
func (f fleetFlags) source(ctx context.Context) (keyring.KeySource, func(), error) {
	r, err := pickRemote(f.kms, f.keySvc)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case *f.keyPath != "" && r != nil:
		return nil, nil, usagef("give -k or a remote key source (--aws-kms, --gcp-kms, --key-service), not both")
	case *f.kms.aws != "" && *f.kms.gcp != "":
		return nil, nil, usagef("give --aws-kms or --gcp-kms, not both")
	case r != nil:
		return r.source(ctx)
	case *f.keyPath != "":
		key, err := filekey.Load(*f.keyPath)
		if err != nil {
			return nil, nil, err
		}
		defer clear(key)
		src, err := filekey.New(key)
		if err != nil {
			return nil, nil, err
		}
		return src, func() {}, nil
	}
	return nil, nil, usagef("a key source is required: -k PATH, --aws-kms KEY, --gcp-kms NAME or --key-service ADDR")
}

// keyringOf opens keyring name of the store with the flags' key source. It
// never creates a keyring.
func (f fleetFlags) keyringOf(ctx context.Context, fl *fleet, name string, opts ...keyring.Option) (*keyring.Keyring, func(), error) {
	src, release, err := f.source(ctx)
	if err != nil {
		return nil, nil, err
	}
	kr, err := keyring.New(ctx, name, src, fl.store, append([]keyring.Option{keyring.WithoutCreate()}, opts...)...)
	if err != nil {
		release()
		return nil, nil, err
	}
	return kr, func() { kr.Close(); release() }, nil
}

// fleetTimeout bounds a key command (the re-encryption runs until done).
const fleetTimeout = 2 * time.Minute
