package gormcrypt_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/url"
	"os"
	"reflect"
	"testing"

	"github.com/google/uuid"
	"github.com/keyward/keyward/adapters/gormcrypt"
	"github.com/keyward/keyward/internal/dbtest"
	"github.com/keyward/keyward/keyring"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
	"gorm.io/gorm/schema"
)

// The attacks of the fail-closed review, each as it was reproduced; the
// matrix (matrix_test.go) covers their classes.
func TestFailClosedReproductions(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		setup(t, db)
		p := newPatient("repro")
		require.NoError(t, db.Create(p).Error)

		t.Run("map key in another letter case", func(t *testing.T) {
			require.NoError(t, db.Model(p).Update("sSN", canarySSN+"-case").Error)
			var got Patient
			require.NoError(t, db.First(&got, "id = ?", p.ID).Error)
			assert.Equal(t, canarySSN+"-case", got.SSN)
		})
		t.Run("writes without a model", func(t *testing.T) {
			err := db.Table("patients").Where("id = ?", p.ID.String()).Updates(map[string]any{"ssn": canarySSN}).Error
			assert.ErrorIs(t, err, gormcrypt.ErrUnsupported, "Table.Updates(map)")
			err = db.Table("patients").Create(map[string]any{"id": uuid.NewString(), "name": "x", "ssn": canarySSN}).Error
			assert.ErrorIs(t, err, gormcrypt.ErrUnsupported, "Table.Create(map)")
		})
		t.Run("ciphertext returned by Scan", func(t *testing.T) {
			type view struct {
				Name string
				SSN  string
			}
			var vs []view
			assert.ErrorIs(t, db.Model(&Patient{}).Select("name, ssn").Scan(&vs).Error, gormcrypt.ErrUnsupported, "Scan(&[]view)")
			var ms []map[string]any
			assert.ErrorIs(t, db.Model(&Patient{}).Scan(&ms).Error, gormcrypt.ErrUnsupported, "Scan(&[]map)")
			var ss []string
			assert.ErrorIs(t, db.Model(&Patient{}).Select("ssn").Scan(&ss).Error, gormcrypt.ErrUnsupported, "Scan(&[]string)")
			assert.ErrorIs(t, db.Table("patients").Scan(&ms).Error, gormcrypt.ErrUnsupported, "Table.Scan(&[]map)")
			row := db.Model(&Patient{}).Select("ssn").Where("id = ?", p.ID).Row()
			require.NotNil(t, row, "Row() of a refused statement")
			var s string
			assert.ErrorIs(t, row.Scan(&s), gormcrypt.ErrUnsupported, "Row().Scan")
			_, err := db.Model(&Patient{}).Rows()
			assert.ErrorIs(t, err, gormcrypt.ErrUnsupported, "Rows()")
		})
		t.Run("value bound to one row written into another", func(t *testing.T) {
			q := newPatient("other-row")
			require.NoError(t, db.Create(q).Error)
			err := db.Model(&Patient{ID: p.ID}).Select("ssn").Updates(&Patient{ID: q.ID, SSN: canarySSN}).Error
			assert.ErrorIs(t, err, gormcrypt.ErrPrimaryKey)
			var all []Patient
			require.NoError(t, db.Find(&all).Error, "every row still decrypts")
		})
		t.Run("dry run", func(t *testing.T) {
			var out syncBuffer
			lg := logger.New(log.New(&out, "", 0), logger.Config{LogLevel: logger.Info})
			sql := db.Session(&gorm.Session{Logger: lg}).ToSQL(func(tx *gorm.DB) *gorm.DB { return tx.Create(newPatient("dry")) })
			assert.NotContains(t, sql, "kw1.", "ToSQL")
			assert.Contains(t, sql, gormcrypt.Redacted, "ToSQL")
			for _, c := range canaries() {
				assert.NotContains(t, sql+out.String(), c)
			}
		})
	})
}

// A selection that lists the key after a bound field still decrypts: the
// key is read first.
func TestKeyReadFirst(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		setup(t, db)
		p := newPatient("order")
		require.NoError(t, db.Create(p).Error)
		var got Patient
		require.NoError(t, db.Select("ssn", "email", "id").First(&got, "id = ?", p.ID).Error)
		assert.Equal(t, p.SSN, got.SSN)
		var views []patientView
		require.NoError(t, db.Model(&Patient{}).Select("ssn", "id").Where("id = ?", p.ID).Find(&views).Error)
		require.Len(t, views, 1)
		assert.Equal(t, p.SSN, views[0].SSN)
	})
}

// Without WithModels a model is known from its first statement on; from
// then on model-less writes into its table are refused, and so are those
// into the tables of the models it relates to.
func TestAuthorityLearnsModels(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		require.NoError(t, db.AutoMigrate(&Company{}, &Patient{}, &Visit{}))
		_, err := gormcrypt.Register(db, newKeyring(t))
		require.NoError(t, err)
		require.NoError(t, db.Model(&Patient{}).Where("1 = 0").Find(&[]Patient{}).Error)
		err = db.Table("visits").Create(map[string]any{"patient_id": uuid.NewString(), "note": canaryNote}).Error
		assert.ErrorIs(t, err, gormcrypt.ErrUnsupported, "a relation's table (visits) after a statement on patients")
		err = db.Table("companies").Create(map[string]any{"name": "x", "secret": "CANARY-secret"}).Error
		assert.ErrorIs(t, err, gormcrypt.ErrUnsupported, "a relation's table (companies)")
		assertNoPlaintext(t, db, "visits", "companies")
	})
}

// Two models that write one column with different bindings cannot both be
// used.
func TestAuthorityRefusesTwoBindings(t *testing.T) {
	type Unbound struct {
		Key  string `gorm:"primaryKey;default:x"` // has a default: not bound
		Name string
		SSN  string `gorm:"serializer:keyward"`
	}
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		setup(t, db)
		require.NoError(t, db.Model(&Patient{}).Where("1 = 0").Find(&[]Patient{}).Error)
		err := db.Table("patients").Model(&Unbound{}).Where("1 = 0").Find(&[]Unbound{}).Error
		assert.ErrorIs(t, err, gormcrypt.ErrTag)
		assert.ErrorContains(t, err, "one column has one binding")
	})
}

// GORM closes a query's rows in a defer: a field scanner that panics,
// recovered by the application, leaves no connection in use.
func TestPanickingScannerReleasesConnection(t *testing.T) {
	schema.RegisterSerializer("kwtest-panic", panicSerializer{})
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		setup(t, db)
		require.NoError(t, db.Create(newPatient("panic")).Error)
		func() {
			defer func() { assert.NotNil(t, recover(), "the scanner panicked") }()
			var ps []panicky
			_ = db.Find(&ps)
		}()
		sqlDB, err := db.DB()
		require.NoError(t, err)
		assert.Zero(t, sqlDB.Stats().InUse, "connections in use after a recovered panic")
	})
}

// panicky reads patients with a column whose scanner panics.
type panicky struct {
	ID   uuid.UUID `gorm:"type:varchar(36);primaryKey"`
	Name string    `gorm:"serializer:kwtest-panic"`
	SSN  string    `gorm:"serializer:keyward"`
}

func (panicky) TableName() string { return "patients" }

// panicSerializer panics when it scans.
type panicSerializer struct{}

func (panicSerializer) Scan(context.Context, *schema.Field, reflect.Value, any) error {
	panic("scanner")
}

func (panicSerializer) Value(_ context.Context, _ *schema.Field, _ reflect.Value, v any) (any, error) {
	return v, nil
}

// PostgreSQL schemas chosen by search_path are bound: a row copied from one
// schema's table to another's does not decrypt there.
func TestSchemaBinding(t *testing.T) {
	base := os.Getenv(dbtest.EnvDSN)
	if base == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set but %s is not", dbtest.EnvDSN)
		}
		t.Skipf("%s not set: the schema binding needs PostgreSQL", dbtest.EnvDSN)
	}
	admin := dbtest.Open(t, dbtest.Postgres, nil)
	suffix := uuid.NewString()[:8]
	a, b := "kwa_"+suffix, "kwb_"+suffix
	for _, s := range []string{a, b} {
		require.NoError(t, admin.Exec("CREATE SCHEMA "+s).Error)
		t.Cleanup(func() { admin.Exec("DROP SCHEMA " + s + " CASCADE") })
	}
	kr := newKeyring(t)
	open := func(schema string) *gorm.DB {
		u, err := url.Parse(base)
		require.NoError(t, err)
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		db := dbtest.OpenDSN(t, dbtest.Postgres, u.String(), nil)
		require.NoError(t, db.AutoMigrate(&Company{}, &Patient{}, &Visit{}))
		_, err = gormcrypt.Register(db, kr)
		require.NoError(t, err)
		return db
	}
	dba, dbb := open(a), open(b)
	p := newPatient("tenant-a")
	require.NoError(t, dba.Create(p).Error)
	require.NoError(t, admin.Exec(fmt.Sprintf("INSERT INTO %s.patients SELECT * FROM %s.patients", b, a)).Error)
	var got Patient
	require.NoError(t, dba.First(&got, "id = ?", p.ID).Error, "read in its own schema")
	err := dbb.First(&got, "id = ?", p.ID).Error
	assert.True(t, errors.Is(err, keyring.ErrDecrypt), "a row copied to another schema: %v, want keyring.ErrDecrypt", err)
}

// AutoMigrate of a known table after Register reads the table's column
// types through Rows; that read is let through, a Rows of the caller is not.
func TestAutoMigrateAfterRegister(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		require.NoError(t, db.AutoMigrate(&Company{}, &Patient{}, &Visit{}))
		_, err := gormcrypt.Register(db, newKeyring(t), gormcrypt.WithModels(&Company{}, &Patient{}, &Visit{}))
		require.NoError(t, err)
		require.NoError(t, db.Create(newPatient("migrate")).Error)
		require.NoError(t, db.AutoMigrate(&Company{}, &Patient{}, &Visit{}), "AutoMigrate after Register")
		types, err := db.Migrator().ColumnTypes(&Patient{})
		require.NoError(t, err)
		assert.NotEmpty(t, types)
		_, err = db.Table("patients").Limit(1).Rows()
		assert.ErrorIs(t, err, gormcrypt.ErrUnsupported, "a caller's Rows on the table")
	})
}
