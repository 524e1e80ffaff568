package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/keyward/keyward/adapters/gormcrypt"
	"github.com/keyward/keyward/keyring"
)

// fleetFlags are the flags of the key and re-encryption commands: the key
// source (for the commands that use one), the store, the registry's
// database and the keyring.
type fleetFlags struct {
	sourceFlags
	store, db, keyringName *string
}

// addFleetFlags adds the fleet flags; withSource adds the key-source flags
// (-k, a KMS key, the key service) for the commands that unwrap keys, and
// withKeyring --keyring for the commands that work on one keyring.
func addFleetFlags(fs *flag.FlagSet, withSource, withKeyring bool) fleetFlags {
	var f fleetFlags
	if withSource {
		f.sourceFlags = addSourceFlags(fs, true)
	}
	f.store = fs.String("store", "", "the keyring store: a keys.json `path`, a PostgreSQL DSN (postgres://...) or a SQLite file holding keyward's tables")
	f.db = fs.String("db", "", "the `database` holding the column registry (PostgreSQL DSN or SQLite file), when --store is a keys.json file")
	if withKeyring {
		f.keyringName = fs.String("keyring", "default", "keyring `name`")
	}
	return f
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
		s, err := openFileStore(*f.store, false)
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

// keyringOf opens keyring name of the store with the flags' key source. It
// never creates a keyring.
func (f fleetFlags) keyringOf(ctx context.Context, fl *fleet, name string, opts ...keyring.Option) (*keyring.Keyring, func(), error) {
	if err := f.check(); err != nil {
		return nil, nil, err
	}
	src, release, err := f.source(ctx)
	if err != nil {
		return nil, nil, err
	}
	kr, err := keyring.New(ctx, name, src, fl.store, append([]keyring.Option{keyring.WithoutCreate()}, opts...)...)
	if err != nil {
		release()
		return nil, nil, explainKeyring(err, *f.store, name)
	}
	return kr, func() { kr.Close(); release() }, nil
}

// fleetTimeout bounds a key command (the re-encryption runs until done).
const fleetTimeout = 2 * time.Minute
