package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// EnvDSN names the environment variable holding the PostgreSQL DSN.
const EnvDSN = "KEYWARD_PG_DSN"

// Kinds of database.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// Each runs f as a subtest on a fresh SQLite database and, when
// KEYWARD_PG_DSN is set, on a fresh PostgreSQL schema. With CI set and
// KEYWARD_PG_DSN not, the PostgreSQL subtest fails.
func Each(t testing.TB, f func(t *testing.T, db *gorm.DB)) {
	tt, ok := t.(*testing.T)
	if !ok {
		t.Fatal("dbtest.Each needs a *testing.T")
	}
	for _, kind := range []string{SQLite, Postgres} {
		tt.Run(kind, func(t *testing.T) {
			f(t, Open(t, kind, nil))
		})
	}
}

// EachB is Each for benchmarks: the PostgreSQL variant is skipped when
// KEYWARD_PG_DSN is not set.
func EachB(b *testing.B, f func(b *testing.B, db *gorm.DB)) {
	for _, kind := range []string{SQLite, Postgres} {
		if kind == Postgres && os.Getenv(EnvDSN) == "" {
			continue
		}
		b.Run(kind, func(b *testing.B) {
			f(b, Open(b, kind, nil))
		})
	}
}

// Open opens a fresh database of the given kind. cfg may be nil; Open uses
// a copy of it (GORM must not see one *gorm.Config twice). The logger
// defaults to silent.
func Open(t testing.TB, kind string, cfg *gorm.Config) *gorm.DB {
	t.Helper()
	switch kind {
	case SQLite:
		dsn := filepath.Join(t.TempDir(), "test.db") + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)"
		return OpenDSN(t, kind, dsn, cfg)
	case Postgres:
		base := os.Getenv(EnvDSN)
		if base == "" {
			if os.Getenv("CI") != "" {
				t.Fatalf("dbtest: CI is set but %s is not: the PostgreSQL tests cannot run", EnvDSN)
			}
			t.Skipf("dbtest: %s not set", EnvDSN)
		}
		return OpenDSN(t, kind, newSchema(t, base), cfg)
	}
	t.Fatalf("dbtest: unknown database kind %q", kind)
	return nil
}

// Reopen opens another handle (connection pool) on db's database, as a
// second process would.
func Reopen(t testing.TB, db *gorm.DB, cfg *gorm.Config) *gorm.DB {
	t.Helper()
	switch d := db.Dialector.(type) {
	case *sqlite.Dialector:
		return OpenDSN(t, SQLite, d.DSN, cfg)
	case *postgres.Dialector:
		return OpenDSN(t, Postgres, d.DSN, cfg)
	}
	t.Fatalf("dbtest: unknown dialector %T", db.Dialector)
	return nil
}

// Kind returns SQLite or Postgres for a database opened here.
func Kind(db *gorm.DB) string {
	if db.Dialector.Name() == "postgres" {
		return Postgres
	}
	return SQLite
}

// OpenDSN opens dsn with a fresh copy of cfg and closes it in t.Cleanup.
func OpenDSN(t testing.TB, kind, dsn string, cfg *gorm.Config) *gorm.DB {
	t.Helper()
	c := &gorm.Config{Logger: logger.Discard}
	if cfg != nil {
		cp := *cfg
		c = &cp
		if c.Logger == nil {
			c.Logger = logger.Discard
		}
	}
	var d gorm.Dialector
	if kind == Postgres {
		d = postgres.Open(dsn)
	} else {
		d = sqlite.Open(dsn)
	}
	db, err := gorm.Open(d, c)
	if err != nil {
		t.Fatalf("dbtest: open %s: %v", kind, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	sqlDB.SetMaxOpenConns(8)
	sqlDB.SetConnMaxIdleTime(time.Minute)
	t.Cleanup(func() { sqlDB.Close() })
	return db
}

// newSchema creates a schema of its own in the PostgreSQL database of base
// and returns a DSN whose search_path is that schema. The schema is dropped
// in t.Cleanup.
func newSchema(t testing.TB, base string) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "kwtest_" + hex.EncodeToString(b[:])
	admin, err := gorm.Open(postgres.Open(base), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatalf("dbtest: open %s: %v", EnvDSN, err)
	}
	sqlAdmin, _ := admin.DB()
	if err := admin.Exec("CREATE SCHEMA " + name).Error; err != nil {
		sqlAdmin.Close()
		t.Fatalf("dbtest: create schema: %v", err)
	}
	t.Cleanup(func() {
		defer sqlAdmin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := admin.WithContext(ctx).Exec("DROP SCHEMA " + name + " CASCADE").Error; err != nil {
			t.Errorf("dbtest: drop schema %s: %v", name, err)
		}
	})
	return withSearchPath(t, base, name)
}

func withSearchPath(t testing.TB, base, schema string) string {
	if strings.HasPrefix(base, "postgres://") || strings.HasPrefix(base, "postgresql://") {
		u, err := url.Parse(base)
		if err != nil {
			t.Fatalf("dbtest: %s is not a valid URL: %v", EnvDSN, err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return base + " search_path=" + schema // key=value form
}
