package gormcrypt_test

import (
	"context"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/keyward/keyward/adapters/gormcrypt"
	"github.com/keyward/keyward/internal/dbtest"
	"github.com/keyward/keyward/internal/kmstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
)

// PatientUnbound declares patients.ssn without the primary key in its
// binding (an auto-increment key): another binding than Patient's.
type PatientUnbound struct {
	ID  uint
	SSN string `gorm:"serializer:keyward"`
}

func (PatientUnbound) TableName() string { return "patients" }

// Pair has a composite client-assigned key: values are bound to both
// columns.
type Pair struct {
	Tenant  string `gorm:"primaryKey;size:32"`
	Seq     int64  `gorm:"primaryKey;autoIncrement:false"`
	Secret  string `gorm:"serializer:keyward"`
	Note    string `gorm:"serializer:keyward" keyward:"blind:NoteIdx;bits:16;normalize:lower"`
	NoteIdx []byte
}

func registryColumns(t *testing.T, db *gorm.DB) map[string]gormcrypt.Column {
	t.Helper()
	cols, err := gormcrypt.Columns(context.Background(), db)
	require.NoError(t, err, "Columns")
	out := map[string]gormcrypt.Column{}
	for _, c := range cols {
		out[c.String()] = c
	}
	return out
}

func TestRegistryRecordsModels(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		kr := newKeyring(t)
		_, err := gormcrypt.Register(db, kr, gormcrypt.WithModels(&Patient{}))
		require.NoError(t, err)
		require.NoError(t, gormcrypt.AutoMigrate(db, &Patient{}, &Pair{}))

		cols := registryColumns(t, db)
		for _, name := range []string{"ssn", "email", "notes", "phone", "info", "tags"} {
			c, ok := cols["patients."+name]
			if assert.True(t, ok, "registry has patients.%s", name) {
				assert.Equal(t, []string{"id"}, c.PrimaryKey, "patients.%s primary key", name)
				assert.True(t, c.BoundToKey, "patients.%s bound to its key", name)
				assert.Equal(t, "test", c.Keyring, "patients.%s keyring", name)
			}
		}
		email := cols["patients.email"]
		assert.Equal(t, "email_idx", email.BlindIndex, "blind index of patients.email")
		assert.Equal(t, gormcrypt.DefaultBlindBits, email.BlindBits)
		assert.Equal(t, "lower,trim", email.Normalize)
		note := cols["pairs.note"]
		assert.Equal(t, []string{"tenant", "seq"}, note.PrimaryKey, "composite key in order")
		assert.Equal(t, 16, note.BlindBits)
		assert.Len(t, cols, 8, "6 columns of Patient and 2 of Pair, nothing of the models only related")

		// Recording again (another instance starting) changes nothing.
		require.NoError(t, gormcrypt.AutoMigrate(db, &Patient{}, &Pair{}))
		assert.Equal(t, cols, registryColumns(t, db), "registry after a second AutoMigrate")
	})
}

func TestRegistryRefusesModelLessWritesInEveryProcess(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		kr := newKeyring(t)
		_, err := gormcrypt.Register(db, kr)
		require.NoError(t, err)
		require.NoError(t, gormcrypt.AutoMigrate(db, &Company{}, &Patient{}, &Visit{}))
		p := newPatient("registry")
		require.NoError(t, db.Create(p).Error)

		// Another process: registered without models; it learns the
		// columns from the registry.
		other := dbtest.Reopen(t, db, nil)
		_, err = gormcrypt.Register(other, kr)
		require.NoError(t, err)
		writes := map[string]func() error{
			"Table.Create(map)": func() error {
				return other.Table("patients").Create(map[string]any{"id": uuid.NewString(), "name": "x", "ssn": canarySSN}).Error
			},
			"Table.Updates(map) in another letter case": func() error {
				return other.Table("patients").Where("id = ?", p.ID.String()).Updates(map[string]any{"SSN": canarySSN}).Error
			},
			"Table.Update of the blind index": func() error {
				return other.Table("patients").Where("id = ?", p.ID.String()).Update("email_idx", []byte("x")).Error
			},
			"Table.UpdateColumn quoted": func() error {
				return other.Table("patients").Where("id = ?", p.ID.String()).UpdateColumn(`"ssn"`, canarySSN).Error
			},
		}
		for name, write := range writes {
			assert.ErrorIs(t, write(), gormcrypt.ErrUnsupported, "%s on a handle that only knows the registry", name)
		}
		var ms []map[string]any
		assert.ErrorIs(t, other.Table("patients").Find(&ms).Error, gormcrypt.ErrUnsupported, "Table.Find(&[]map) of registry-only columns")
		for _, row := range rawRows(t, db, "patients") {
			for _, c := range canaries() {
				assert.NotContains(t, row["ssn"], c, "plaintext in patients.ssn")
			}
		}

		// Once the model is used, it decrypts there as everywhere.
		var got Patient
		require.NoError(t, other.First(&got, "id = ?", p.ID).Error)
		assert.Equal(t, canarySSN, got.SSN, "read through the model on the other handle")
	})
}

func TestRegistryRefusesAnotherBinding(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		kr := newKeyring(t)
		_, err := gormcrypt.Register(db, kr, gormcrypt.WithModels(&Patient{}))
		require.NoError(t, err)
		require.NoError(t, db.AutoMigrate(&Company{}, &Patient{}, &Visit{}))

		other := dbtest.Reopen(t, db, nil)
		_, err = gormcrypt.Register(other, kr, gormcrypt.WithModels(&PatientUnbound{}))
		assert.ErrorIs(t, err, gormcrypt.ErrTag, "Register WithModels of another binding of patients.ssn")

		third := dbtest.Reopen(t, db, nil)
		_, err = gormcrypt.Register(third, kr)
		require.NoError(t, err)
		assert.ErrorIs(t, gormcrypt.AutoMigrate(third, &PatientUnbound{}), gormcrypt.ErrTag, "AutoMigrate of another binding")
		err = third.Create(&PatientUnbound{SSN: canarySSN}).Error
		assert.ErrorIs(t, err, gormcrypt.ErrTag, "a statement through a model of another binding")

		otherKeyring := dbtest.Reopen(t, db, nil)
		_, err = gormcrypt.Register(otherKeyring, kmstest.MemoryKeyringNamed(t, "pii"), gormcrypt.WithModels(&Patient{}))
		assert.ErrorIs(t, err, gormcrypt.ErrTag, "Register of patients with another keyring")

		c := registryColumns(t, db)["patients.ssn"]
		assert.True(t, c.BoundToKey, "the registry keeps the first binding")
	})
}

func TestRegistryConcurrentRegistrations(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		kr := newKeyring(t)
		const n = 6
		handles := make([]*gorm.DB, n)
		for i := range handles {
			handles[i] = dbtest.Reopen(t, db, nil)
		}
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i, h := range handles {
			wg.Go(func() {
				_, errs[i] = gormcrypt.Register(h, kr, gormcrypt.WithModels(&Patient{}, &Pair{}))
			})
		}
		wg.Wait()
		for i, err := range errs {
			assert.NoError(t, err, "registration %d of %d at once", i, n)
		}
		assert.Len(t, registryColumns(t, db), 8, "one row per column")
	})
}

func TestColumnsWithoutRegistry(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		_, err := gormcrypt.Columns(context.Background(), db)
		assert.ErrorIs(t, err, gormcrypt.ErrNoRegistry, "Columns on a database without a registry")
		assert.False(t, db.Migrator().HasTable(gormcrypt.RegistryTable), "Columns created the registry table")
		_, err = gormcrypt.Register(db, newKeyring(t))
		require.NoError(t, err)
		assert.False(t, db.Migrator().HasTable(gormcrypt.RegistryTable), "Register without models created the registry table")
	})
}

func TestRegistryKeyEncodings(t *testing.T) {
	type strKey struct {
		ID     string `gorm:"primaryKey"`
		Secret string `gorm:"serializer:keyward"`
	}
	type intKey struct {
		ID     int64  `gorm:"primaryKey;autoIncrement:false"`
		Secret string `gorm:"serializer:keyward"`
	}
	db := dbtest.Open(t, dbtest.SQLite, nil)
	_, err := gormcrypt.Register(db, newKeyring(t))
	require.NoError(t, err)
	require.NoError(t, gormcrypt.AutoMigrate(db, &Patient{}, &strKey{}, &intKey{}))
	cols := registryColumns(t, db)
	for name, want := range map[string]string{"patients.ssn": "uuid", "str_keys.secret": "text", "int_keys.secret": "int"} {
		assert.Equal(t, want, gormcrypt.KeyEncodingForTest(cols[name]), "key encoding of %s", name)
	}
}
