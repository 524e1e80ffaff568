package gormcrypt_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"log"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/adapters/gormcrypt"
	"github.com/keyward/keyward/internal/dbtest"
	"github.com/keyward/keyward/keyring"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// countingSource counts the key source calls (KMS calls).
type countingSource struct {
	*filekey.Source
	unwraps atomic.Int64
}

func (s *countingSource) Unwrap(ctx context.Context, wrapped, aad []byte) ([]byte, error) {
	s.unwraps.Add(1)
	return s.Source.Unwrap(ctx, wrapped, aad)
}

// syncBuffer is a logger output shared by goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLoggerNeverSeesPlaintext runs the write and read paths with GORM's
// logger at Info and checks that the log holds no plaintext and no
// ciphertext, and that the logger does not make the serializer encrypt
// twice (or call the key source at all beyond the first unwrap).
func TestLoggerNeverSeesPlaintext(t *testing.T) {
	for _, kind := range []string{dbtest.SQLite, dbtest.Postgres} {
		t.Run(kind, func(t *testing.T) {
			var out syncBuffer
			lg := logger.New(log.New(&out, "", 0), logger.Config{LogLevel: logger.Info, Colorful: false})
			db := dbtest.Open(t, kind, &gorm.Config{Logger: lg})
			k := make([]byte, 32)
			_, _ = rand.Read(k)
			fk, _ := filekey.New(k)
			src := &countingSource{Source: fk}
			kr, err := keyring.New(t.Context(), "logs", src, keyring.NewMemoryStore())
			if err != nil {
				t.Fatal(err)
			}
			defer kr.Close()
			if _, err := gormcrypt.Register(db, kr); err != nil {
				t.Fatal(err)
			}
			if err := db.AutoMigrate(&Company{}, &Patient{}, &Visit{}); err != nil {
				t.Fatal(err)
			}
			unwrapsBefore := src.unwraps.Load()
			before := kr.Encryptions(kr.Primary())

			ps := []*Patient{newPatient("log1"), newPatient("log2"), newPatient("log3")}
			if err := db.Create(ps).Error; err != nil {
				t.Fatal(err)
			}
			// 6 encrypted fields per patient, all non-NULL.
			if got := kr.Encryptions(kr.Primary()) - before; got != 3*6 {
				t.Errorf("Create of 3 patients encrypted %d values, want 18 (the logger must not encrypt again)", got)
			}
			if err := db.Model(ps[0]).Update("ssn", canarySSN+"-log").Error; err != nil {
				t.Fatal(err)
			}
			if err := db.Model(ps[1]).Updates(map[string]any{"email": "Log." + canaryEmail}).Error; err != nil {
				t.Fatal(err)
			}
			if err := db.Save(ps[2]).Error; err != nil {
				t.Fatal(err)
			}
			var got []Patient
			if err := db.Where(&Patient{Email: canaryEmail}).Find(&got).Error; err != nil {
				t.Fatal(err)
			}
			var one Patient
			if err := db.Raw("SELECT * FROM patients WHERE id = ?", ps[0].ID).Scan(&one).Error; err != nil || one.SSN != canarySSN+"-log" {
				t.Fatalf("Raw.Scan = %q, %v", one.SSN, err)
			}
			_ = db.Where(&Patient{SSN: canarySSN}).Find(&got).Error // refused: must not log the value either
			if n := src.unwraps.Load() - unwrapsBefore; n != 0 {
				t.Errorf("%d key source calls after the keyring opened, want 0 (the data key is cached)", n)
			}
			log := out.String()
			if !strings.Contains(log, "INSERT INTO") || !strings.Contains(log, gormcrypt.Redacted) {
				t.Fatalf("the logger did not log the statements:\n%s", log)
			}
			for _, c := range canaries() {
				if strings.Contains(log, c) {
					t.Errorf("the SQL log contains plaintext %q", c)
				}
			}
			if strings.Contains(log, "kw1.") {
				t.Error("the SQL log contains ciphertext tokens")
			}
		})
	}
}

func TestAccessControl(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		authz := &countingAuthorizer{deny: map[string]bool{
			"decrypt field:patients.ssn": true,
			"anonymous":                  true,
		}}
		setup(t, db, gormcrypt.WithAuthorizer(authz))
		alice := context.WithValue(t.Context(), principalKey{}, "alice")
		ps := []*Patient{newPatient("acl"), newPatient("acl")}
		if err := db.WithContext(alice).Create(ps).Error; err != nil {
			t.Fatal(err)
		}
		// Asked once per field per statement, with the principal of the
		// statement's context.
		q := authz.questions()
		if len(q) != 6 || !contains(q, "alice encrypt field:patients.ssn") || !contains(q, "alice encrypt field:patients.tags") {
			t.Errorf("questions for Create = %q, want 6 (one per field)", q)
		}
		var got []Patient
		err := db.WithContext(alice).Where("name = ?", "acl").Find(&got).Error
		if !errors.Is(err, errDenied) {
			t.Errorf("Find with a denied field = %v, want the authorizer's error", err)
		}
		if err := db.WithContext(alice).Omit("ssn").Where("name = ?", "acl").Find(&got).Error; err != nil || len(got) != 2 || got[0].Email != canaryEmail {
			t.Errorf("Find without the denied field = %+v, %v", got, err)
		}
		err = db.Where("name = ?", "acl").Find(&got).Error
		if !errors.Is(err, errDenied) {
			t.Errorf("Find without a principal = %v, want denied", err)
		}
		err = db.Create(newPatient("anon")).Error
		if !errors.Is(err, errDenied) {
			t.Errorf("Create without a principal = %v, want denied", err)
		}
	})
}

func TestRedaction(t *testing.T) {
	type Record struct {
		ID     uint
		Secret string  `gorm:"serializer:keyward"`
		Masked string  `gorm:"serializer:keyward" keyward:"redact:[hidden]"`
		Opt    *string `gorm:"serializer:keyward"`
		Info   *Info   `gorm:"serializer:keyward"`
	}
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		authz := &countingAuthorizer{deny: map[string]bool{
			"decrypt field:records.secret": true, "decrypt field:records.masked": true,
			"decrypt field:records.opt": true, "decrypt field:records.info": true,
		}}
		_, err := gormcrypt.Register(db, newKeyring(t), gormcrypt.WithAuthorizer(authz), gormcrypt.WithRedaction("***"))
		if err != nil {
			t.Fatal(err)
		}
		if err := db.AutoMigrate(&Record{}); err != nil {
			t.Fatal(err)
		}
		r := &Record{Secret: "CANARY-s", Masked: "CANARY-m", Opt: ptr("CANARY-o"), Info: &Info{Blood: "CANARY-b"}}
		if err := db.Create(r).Error; err != nil {
			t.Fatal(err)
		}
		var got Record
		if err := db.First(&got, r.ID).Error; err != nil {
			t.Fatal(err)
		}
		if got.Secret != "***" || got.Masked != "[hidden]" || got.Opt == nil || *got.Opt != "***" || got.Info != nil {
			t.Errorf("redacted record = %+v", got)
		}
		var owners []string
		if err := db.Model(&Record{}).Pluck("secret", &owners).Error; err != nil || len(owners) != 1 || owners[0] != "***" {
			t.Errorf("Pluck of a denied field = %q, %v", owners, err)
		}
		// Saving the redacted record back would overwrite the secret.
		if err := db.Save(&got).Error; !errors.Is(err, gormcrypt.ErrUnsupported) {
			t.Errorf("Save of a redacted record = %v, want ErrUnsupported", err)
		}
	})
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

func TestLegacyPlaintext(t *testing.T) {
	type Legacy struct {
		ID   uint
		Name string
		SSN  string `gorm:"serializer:keyward"`
	}
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		kr := newKeyring(t)
		// Rows written before encryption.
		if err := db.Exec("CREATE TABLE legacies (id integer primary key, name text, ssn text)").Error; err != nil {
			t.Fatal(err)
		}
		if err := db.Exec("INSERT INTO legacies (id, name, ssn) VALUES (1, 'old', 'CANARY-legacy-ssn')").Error; err != nil {
			t.Fatal(err)
		}
		strict := dbtest.Reopen(t, db, nil)
		if _, err := gormcrypt.Register(strict, kr); err != nil {
			t.Fatal(err)
		}
		var got Legacy
		if err := strict.First(&got, 1).Error; !errors.Is(err, gormcrypt.ErrNotEncrypted) {
			t.Errorf("legacy row without migration mode = %v %+v, want ErrNotEncrypted", err, got)
		}
		if _, err := gormcrypt.Register(db, kr, gormcrypt.WithLegacyPlaintext()); err != nil {
			t.Fatal(err)
		}
		var old Legacy
		if err := db.First(&old, 1).Error; err != nil || old.SSN != "CANARY-legacy-ssn" {
			t.Fatalf("legacy row in migration mode = %+v, %v", old, err)
		}
		if err := db.Save(&old).Error; err != nil {
			t.Fatal(err)
		}
		assertNoPlaintext(t, db, "legacies")
		var again Legacy
		if err := strict.First(&again, 1).Error; err != nil || again.SSN != "CANARY-legacy-ssn" {
			t.Errorf("after the save, strict mode reads %+v, %v", again, err)
		}
	})
}

func TestTagErrors(t *testing.T) {
	type NoSerializer struct {
		ID  uint
		SSN string `keyward:"redact:x"`
	}
	type BadIndex struct {
		ID    uint
		Email string `gorm:"serializer:keyward" keyward:"blind:Missing"`
	}
	type IndexNotBytes struct {
		ID       uint
		Email    string `gorm:"serializer:keyward" keyward:"blind:EmailIdx"`
		EmailIdx string
	}
	type BadBits struct {
		ID       uint
		Email    string `gorm:"serializer:keyward" keyward:"blind:EmailIdx;bits:4"`
		EmailIdx []byte
	}
	db := dbtest.Open(t, dbtest.SQLite, nil)
	if _, err := gormcrypt.Register(db, newKeyring(t)); err != nil {
		t.Fatal(err)
	}
	for _, m := range []any{&NoSerializer{ID: 1}, &BadIndex{ID: 1}, &IndexNotBytes{ID: 1}, &BadBits{ID: 1}} {
		if err := db.AutoMigrate(m); err != nil {
			t.Fatal(err)
		}
		if err := db.Create(m).Error; !errors.Is(err, gormcrypt.ErrTag) {
			t.Errorf("Create(%T) = %v, want ErrTag", m, err)
		}
	}
}
