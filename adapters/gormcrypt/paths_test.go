package gormcrypt_test

import (
	"errors"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/keyward/keyward/adapters/gormcrypt"
	"github.com/keyward/keyward/internal/dbtest"
	"github.com/keyward/keyward/keyring"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// checkPatient compares the decrypted fields of got with want.
func checkPatient(t *testing.T, got, want *Patient) {
	t.Helper()
	if got.ID != want.ID || got.Name != want.Name || got.SSN != want.SSN || got.Email != want.Email ||
		string(got.Notes) != string(want.Notes) || !reflect.DeepEqual(got.Phone, want.Phone) ||
		!reflect.DeepEqual(got.Info, want.Info) || !reflect.DeepEqual(got.Tags, want.Tags) {
		t.Errorf("patient = %+v\nwant       %+v", got, want)
	}
}

func TestPaths(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		setup(t, db)
		tables := []string{"patients", "companies", "visits", "accounts"}
		t.Cleanup(func() { assertNoPlaintext(t, db, tables...) })

		t.Run("Create/First/Find/Take", func(t *testing.T) {
			p := newPatient("create")
			if err := db.Create(p).Error; err != nil {
				t.Fatal(err)
			}
			if len(p.EmailIdx) == 0 {
				t.Error("Create did not fill the blind index")
			}
			if p.SSN != canarySSN {
				t.Errorf("Create changed the caller's plaintext to %q", p.SSN)
			}
			var a, b, c Patient
			if err := db.First(&a, "id = ?", p.ID).Error; err != nil {
				t.Fatal(err)
			}
			checkPatient(t, &a, p)
			if err := db.Take(&b, "id = ?", p.ID).Error; err != nil {
				t.Fatal(err)
			}
			checkPatient(t, &b, p)
			var all []Patient
			if err := db.Where("name = ?", "create").Find(&all).Error; err != nil || len(all) != 1 {
				t.Fatalf("Find = %d rows, %v", len(all), err)
			}
			checkPatient(t, &all[0], p)
			var ptrs []*Patient
			if err := db.Where("name = ?", "create").Find(&ptrs).Error; err != nil || len(ptrs) != 1 {
				t.Fatalf("Find(&[]*Patient) = %d rows, %v", len(ptrs), err)
			}
			checkPatient(t, ptrs[0], p)
			if err := db.Where(&Patient{ID: p.ID}).Last(&c).Error; err != nil {
				t.Fatal(err)
			}
			checkPatient(t, &c, p)
		})

		t.Run("NULL", func(t *testing.T) {
			p := &Patient{Name: "null"}
			if err := db.Create(p).Error; err != nil {
				t.Fatal(err)
			}
			raw := rawRows(t, db.Where("1=1"), "patients")
			for _, r := range raw {
				if r["name"] == "null" && (r["phone"] != "" || r["info"] != "" || r["tags"] != "" || r["notes"] != "") {
					t.Errorf("nil values stored as %q %q %q %q, want NULL", r["phone"], r["info"], r["tags"], r["notes"])
				}
			}
			var got Patient
			if err := db.First(&got, "id = ?", p.ID).Error; err != nil {
				t.Fatal(err)
			}
			if got.Phone != nil || got.Info != nil || got.Tags != nil || got.Notes != nil {
				t.Errorf("NULLs read back as %+v", got)
			}
		})

		t.Run("CreateInBatches", func(t *testing.T) {
			var ps []Patient
			for i := range 25 {
				p := newPatient("batch")
				p.SSN = canarySSN + string(rune('a'+i))
				ps = append(ps, *p)
			}
			if err := db.CreateInBatches(&ps, 10).Error; err != nil {
				t.Fatal(err)
			}
			var got []Patient
			if err := db.Where("name = ?", "batch").Order("ssn").Find(&got).Error; err != nil || len(got) != 25 {
				t.Fatalf("Find = %d, %v", len(got), err)
			}
			want := map[string]bool{}
			for _, p := range ps {
				want[p.SSN] = true
			}
			var batches, seen int
			err := db.Where("name = ?", "batch").FindInBatches(&[]Patient{}, 10, func(tx *gorm.DB, n int) error {
				batches++
				for _, p := range *tx.Statement.Dest.(*[]Patient) {
					if !want[p.SSN] {
						t.Errorf("FindInBatches: SSN %q", p.SSN)
					}
					seen++
				}
				return nil
			}).Error
			if err != nil || batches != 3 || seen != 25 {
				t.Errorf("FindInBatches: %d batches, %d rows, %v", batches, seen, err)
			}
			for _, g := range got {
				if !want[g.SSN] {
					t.Errorf("unexpected SSN %q", g.SSN)
				}
			}
		})

		t.Run("Save", func(t *testing.T) {
			p := newPatient("save")
			if err := db.Save(p).Error; err != nil { // insert (zero key after hook? no: Save assigns via Create)
				t.Fatal(err)
			}
			p.SSN = canarySSN + "-saved"
			p.Email = "Other." + canaryEmail
			if err := db.Save(p).Error; err != nil {
				t.Fatal(err)
			}
			var got Patient
			if err := gormcrypt.Where(db, "Email", "other."+strings.ToLower(canaryEmail)).First(&got).Error; err != nil {
				t.Fatal(err)
			}
			checkPatient(t, &got, p)
			// Save of a new row with a client key that is not yet stored.
			q := newPatient("save-new")
			q.ID = uuid.New()
			if err := db.Save(q).Error; err != nil {
				t.Fatal(err)
			}
			var got2 Patient
			if err := db.First(&got2, "id = ?", q.ID).Error; err != nil {
				t.Fatal(err)
			}
			checkPatient(t, &got2, q)
		})

		t.Run("WhereStruct", func(t *testing.T) {
			p := newPatient("where-struct")
			p.Email = "Where.Struct@Example.com"
			if err := db.Create(p).Error; err != nil {
				t.Fatal(err)
			}
			var got Patient
			// The struct condition on an indexed encrypted field becomes a
			// blind index lookup (normalized: lower case, trimmed).
			if err := db.Where(&Patient{Email: "  where.struct@example.COM "}).First(&got).Error; err != nil {
				t.Fatal(err)
			}
			checkPatient(t, &got, p)
			var n int64
			if err := db.Model(&Patient{}).Where(map[string]any{"email": p.Email}).Count(&n).Error; err != nil || n != 1 {
				t.Errorf("Count(map condition) = %d, %v", n, err)
			}
			var found []Patient
			if err := db.Where(gormcrypt.Eq("email", p.Email, "nobody@example.com")).Find(&found).Error; err != nil || len(found) != 1 {
				t.Errorf("Eq with two values = %d rows, %v", len(found), err)
			}
			// Equality on a field without a blind index cannot be evaluated.
			err := db.Where(&Patient{SSN: canarySSN}).First(&got).Error
			if !errors.Is(err, gormcrypt.ErrNotSearchable) {
				t.Errorf("Where(SSN struct) = %v, want ErrNotSearchable", err)
			}
			err = db.Not(&Patient{Email: p.Email}).First(&got).Error
			if !errors.Is(err, gormcrypt.ErrNotSearchable) {
				t.Errorf("Not(Email struct) = %v, want ErrNotSearchable", err)
			}
			err = db.Where(clause.Like{Column: "ssn", Value: "%1%"}).Find(&found).Error
			if !errors.Is(err, gormcrypt.ErrNotSearchable) {
				t.Errorf("LIKE on ssn = %v, want ErrNotSearchable", err)
			}
			// Simple SQL text conditions on encrypted columns are understood.
			var bySQL Patient
			if err := db.First(&bySQL, "email = ?", p.Email).Error; err != nil || bySQL.ID != p.ID {
				t.Errorf("First(email = ?) = %v, %v", bySQL.ID, err)
			}
			found = nil
			if err := db.Where("patients.email IN ?", []string{p.Email, "x@example.com"}).Find(&found).Error; err != nil || len(found) != 1 {
				t.Errorf("Where(patients.email IN ?) = %d rows, %v", len(found), err)
			}
			for _, cond := range []string{"ssn = ?", "email <> ?", "ssn LIKE ?"} {
				if err := db.Where(cond, canarySSN).Find(&found).Error; !errors.Is(err, gormcrypt.ErrNotSearchable) {
					t.Errorf("Where(%s) = %v, want ErrNotSearchable", cond, err)
				}
			}
			// First with an inline struct condition.
			if err := db.First(&got, Patient{Email: p.Email}).Error; err != nil || got.ID != p.ID {
				t.Errorf("First(inline struct) = %v, %v", got.ID, err)
			}
		})

		t.Run("Joins/Preload", func(t *testing.T) {
			co := &Company{Name: "acme", Secret: "CANARY-company-secret"}
			if err := db.Create(co).Error; err != nil {
				t.Fatal(err)
			}
			p := newPatient("joins")
			p.CompanyID = &co.ID
			p.Visits = []Visit{{Note: "CANARY-visit-1"}, {Note: "CANARY-visit-2"}}
			if err := db.Create(p).Error; err != nil {
				t.Fatal(err)
			}
			var got Patient
			if err := db.Joins("Company").Preload("Visits", func(db *gorm.DB) *gorm.DB { return db.Order("id") }).
				First(&got, "patients.id = ?", p.ID).Error; err != nil {
				t.Fatal(err)
			}
			if got.Company == nil || got.Company.Secret != co.Secret || got.SSN != p.SSN {
				t.Errorf("Joins: company %+v, SSN %q", got.Company, got.SSN)
			}
			if len(got.Visits) != 2 || got.Visits[0].Note != "CANARY-visit-1" || got.Visits[1].Note != "CANARY-visit-2" {
				t.Errorf("Preload: %+v", got.Visits)
			}
			var withCo Patient
			if err := db.Preload("Company").First(&withCo, "id = ?", p.ID).Error; err != nil || withCo.Company == nil || withCo.Company.Secret != co.Secret {
				t.Errorf("Preload(Company) = %+v, %v", withCo.Company, err)
			}
		})

		t.Run("RawScan", func(t *testing.T) {
			p := newPatient("raw")
			if err := db.Create(p).Error; err != nil {
				t.Fatal(err)
			}
			var got Patient
			if err := db.Raw("SELECT * FROM patients WHERE id = ?", p.ID).Scan(&got).Error; err != nil {
				t.Fatal(err)
			}
			checkPatient(t, &got, p)
			var list []Patient
			if err := db.Raw("SELECT id, ssn, email FROM patients WHERE name = ?", "raw").Scan(&list).Error; err != nil || len(list) != 1 || list[0].SSN != p.SSN {
				t.Errorf("Raw.Scan(&[]Patient) = %+v, %v", list, err)
			}
			// A raw query that lists the encrypted column before the key
			// cannot bind it: it fails, it does not return ciphertext.
			err := db.Raw("SELECT ssn, id FROM patients WHERE id = ?", p.ID).Scan(&got).Error
			if !errors.Is(err, gormcrypt.ErrPrimaryKey) {
				t.Errorf("Raw(ssn before id).Scan = %v, want ErrPrimaryKey", err)
			}
			// GORM's Rows gives what is stored: refused on encrypted
			// columns; gormcrypt.Rows + ScanRows decrypt.
			_, err = db.Model(&Patient{}).Where("id = ?", p.ID).Rows()
			assert.ErrorIs(t, err, gormcrypt.ErrUnsupported, "db.Model(&Patient{}).Rows()")
			rows, err := gormcrypt.Rows(db.Model(&Patient{}).Where("id = ?", p.ID))
			require.NoError(t, err)
			defer rows.Close()
			n := 0
			for rows.Next() {
				var r Patient
				require.NoError(t, gormcrypt.ScanRows(db, rows, &r))
				checkPatient(t, &r, p)
				assert.ErrorIs(t, db.ScanRows(rows, &r), gormcrypt.ErrNotRegistered, "db.ScanRows")
				n++
			}
			assert.Equal(t, 1, n, "rows of gormcrypt.Rows")
			// A map scanned from such rows would hold tokens: refused.
			rows2, err := gormcrypt.Rows(db.Model(&Patient{}).Select("id", "ssn").Where("id = ?", p.ID))
			require.NoError(t, err)
			defer rows2.Close()
			require.True(t, rows2.Next())
			m := map[string]any{}
			assert.ErrorIs(t, gormcrypt.ScanRows(db, rows2, &m), gormcrypt.ErrUnsupported, "gormcrypt.ScanRows into a map")
		})

		t.Run("Update", func(t *testing.T) {
			p := newPatient("update")
			if err := db.Create(p).Error; err != nil {
				t.Fatal(err)
			}
			if err := db.Model(p).Update("ssn", canarySSN+"-updated").Error; err != nil {
				t.Fatal(err)
			}
			if p.SSN != canarySSN+"-updated" {
				t.Errorf("Update left the model's SSN at %q", p.SSN)
			}
			if err := db.Model(p).Update("Email", "Updated."+canaryEmail).Error; err != nil {
				t.Fatal(err)
			}
			var got Patient
			if err := gormcrypt.Where(db, "email", "updated."+canaryEmail).First(&got).Error; err != nil {
				t.Fatalf("lookup after Update(email): %v", err)
			}
			if got.SSN != canarySSN+"-updated" || got.ID != p.ID {
				t.Errorf("after Update: %+v", got)
			}
			err := db.Model(p).Update("ssn", gorm.Expr("upper(ssn)")).Error
			if !errors.Is(err, gormcrypt.ErrUnsupported) {
				t.Errorf("Update(ssn, Expr) = %v, want ErrUnsupported", err)
			}
			// Without the model's key the value cannot be bound.
			err = db.Model(&Patient{}).Where("name = ?", "update").Update("ssn", "x").Error
			if !errors.Is(err, gormcrypt.ErrPrimaryKey) {
				t.Errorf("Update without key = %v, want ErrPrimaryKey", err)
			}
		})

		t.Run("UpdatesMap", func(t *testing.T) {
			p := newPatient("updates-map")
			if err := db.Create(p).Error; err != nil {
				t.Fatal(err)
			}
			err := db.Model(p).Updates(map[string]any{"ssn": canarySSN + "-map", "Email": "Map." + canaryEmail, "Phone": nil, "name": "updates-map2", "Info": &Info{Blood: "O"}}).Error
			if err != nil {
				t.Fatal(err)
			}
			var got Patient
			if err := gormcrypt.Where(db, "Email", "map."+canaryEmail).First(&got).Error; err != nil {
				t.Fatal(err)
			}
			if got.SSN != canarySSN+"-map" || got.Phone != nil || got.Name != "updates-map2" || got.Info == nil || got.Info.Blood != "O" {
				t.Errorf("after Updates(map): %+v", got)
			}
			if err := db.Model(p).UpdateColumns(map[string]any{"ssn": canarySSN + "-cols"}).Error; err != nil {
				t.Fatal(err)
			}
			if err := db.First(&got, "id = ?", p.ID).Error; err != nil || got.SSN != canarySSN+"-cols" {
				t.Errorf("after UpdateColumns: %q, %v", got.SSN, err)
			}
			err = db.Model(p).Clauses(clause.Set{{Column: clause.Column{Name: "ssn"}, Value: "x"}}).Updates(map[string]any{"name": "x"}).Error
			if !errors.Is(err, gormcrypt.ErrUnsupported) {
				t.Errorf("SET clause on ssn = %v, want ErrUnsupported", err)
			}
		})

		t.Run("UpdatesStruct", func(t *testing.T) {
			p := newPatient("updates-struct")
			if err := db.Create(p).Error; err != nil {
				t.Fatal(err)
			}
			if err := db.Model(p).Updates(Patient{SSN: canarySSN + "-struct", Email: "Struct." + canaryEmail}).Error; err != nil {
				t.Fatal(err)
			}
			var got Patient
			if err := gormcrypt.Where(db, "email", "struct."+canaryEmail).First(&got).Error; err != nil {
				t.Fatal(err)
			}
			if got.SSN != canarySSN+"-struct" || got.ID != p.ID || got.Info == nil {
				t.Errorf("after Updates(struct): %+v", got)
			}
			if err := db.Model(p).Select("Email").Updates(&Patient{Email: "Sel." + canaryEmail}).Error; err != nil {
				t.Fatal(err)
			}
			if err := gormcrypt.Where(db, "email", "sel."+canaryEmail).First(&got).Error; err != nil {
				t.Errorf("index not updated by Select(Email).Updates: %v", err)
			}
			err := db.Model(&Patient{}).Where("name = ?", "updates-struct").Updates(Patient{SSN: "x"}).Error
			if !errors.Is(err, gormcrypt.ErrPrimaryKey) {
				t.Errorf("Updates(struct) without key = %v, want ErrPrimaryKey", err)
			}
		})

		t.Run("FirstOrCreate/Assign", func(t *testing.T) {
			var p Patient
			email := "FOC." + canaryEmail
			if err := db.Where(&Patient{Email: email}).Attrs(Patient{SSN: canarySSN + "-foc", Name: "foc"}).FirstOrCreate(&p).Error; err != nil {
				t.Fatal(err)
			}
			if p.Email != email || p.SSN != canarySSN+"-foc" {
				t.Fatalf("FirstOrCreate created %+v", p)
			}
			var again Patient
			if err := db.Where(&Patient{Email: email}).Assign(Patient{SSN: canarySSN + "-assigned"}).FirstOrCreate(&again).Error; err != nil {
				t.Fatal(err)
			}
			if again.ID != p.ID || again.SSN != canarySSN+"-assigned" {
				t.Errorf("FirstOrCreate+Assign found %+v", again)
			}
			var got Patient
			if err := db.First(&got, "id = ?", p.ID).Error; err != nil || got.SSN != canarySSN+"-assigned" || got.Email != email {
				t.Errorf("stored after Assign: %+v, %v", got, err)
			}
			var n int64
			db.Model(&Patient{}).Where(&Patient{Email: email}).Count(&n)
			if n != 1 {
				t.Errorf("%d rows with the email, want 1", n)
			}
			var init Patient
			if err := db.Where(&Patient{Email: "nobody@example.com"}).FirstOrInit(&init).Error; err != nil || init.Email != "nobody@example.com" {
				t.Errorf("FirstOrInit = %+v, %v", init, err)
			}
		})

		t.Run("Pluck", func(t *testing.T) {
			a := &Account{Owner: "CANARY-owner-pluck", Balance: "CANARY-10"}
			if err := db.Create(a).Error; err != nil {
				t.Fatal(err)
			}
			var owners []string
			if err := db.Model(&Account{}).Where("id = ?", a.ID).Pluck("owner", &owners).Error; err != nil {
				t.Fatal(err)
			}
			if len(owners) != 1 || owners[0] != a.Owner {
				t.Errorf("Pluck(owner) = %q", owners)
			}
			var ssns []string
			err := db.Model(&Patient{}).Pluck("ssn", &ssns).Error
			if !errors.Is(err, gormcrypt.ErrUnsupported) {
				t.Errorf("Pluck(ssn) bound to the key = %v %q, want ErrUnsupported", err, ssns)
			}
			// Without a model, the column is known to be encrypted (bound to
			// table and column only): decrypted.
			owners = nil
			require.NoError(t, db.Table("accounts").Where("id = ?", a.ID).Pluck("owner", &owners).Error)
			assert.Equal(t, []string{a.Owner}, owners, "Table(accounts).Pluck(owner)")
		})

		t.Run("FindMaps", func(t *testing.T) {
			p := newPatient("maps")
			if err := db.Create(p).Error; err != nil {
				t.Fatal(err)
			}
			var ms []map[string]any
			if err := db.Model(&Patient{}).Select("id", "ssn", "email", "notes", "phone").Where("name = ?", "maps").Find(&ms).Error; err != nil {
				t.Fatal(err)
			}
			if len(ms) != 1 || ms[0]["ssn"] != p.SSN || ms[0]["email"] != p.Email || string(asBytes(ms[0]["notes"])) != canaryNote || ms[0]["phone"] != canaryPhone {
				t.Errorf("Find(&[]map) = %v", ms)
			}
			var m map[string]any
			if err := db.Model(&Patient{}).Select("id", "ssn").Where("name = ?", "maps").Take(&m).Error; err != nil || m["ssn"] != p.SSN {
				t.Errorf("Take(&map) = %v, %v", m, err)
			}
			ms = nil
			// The key is added to the selection.
			if err := db.Model(&Patient{}).Select("ssn").Where("name = ?", "maps").Find(&ms).Error; err != nil || len(ms) != 1 || ms[0]["ssn"] != p.SSN {
				t.Errorf("Find(&[]map) selecting ssn only = %v, %v", ms, err)
			}
			// Without a model: decrypted with the binding of the field that
			// declared each column (the row's key is in the map).
			ms = nil
			require.NoError(t, db.Table("patients").Where("name = ?", "maps").Find(&ms).Error)
			require.Len(t, ms, 1, "Table(patients).Find(&[]map)")
			assert.Equal(t, p.SSN, ms[0]["ssn"], "Table(patients).Find(&[]map) ssn")
			// Without the key, a bound column cannot be decrypted: refused.
			ms = nil
			err := db.Table("patients").Select("name", "ssn").Where("name = ?", "maps").Find(&ms).Error
			assert.ErrorIs(t, err, gormcrypt.ErrPrimaryKey, "Table(patients).Select(name, ssn).Find(&[]map)")
		})

		t.Run("Select", func(t *testing.T) {
			p := newPatient("select")
			if err := db.Create(p).Error; err != nil {
				t.Fatal(err)
			}
			var got Patient
			// The key is added to the selection (and read first) so the
			// encrypted column can be bound.
			if err := db.Select("ssn", "name").Where("name = ?", "select").First(&got).Error; err != nil {
				t.Fatal(err)
			}
			if got.SSN != p.SSN || got.Email != "" {
				t.Errorf("Select(ssn, name) = %+v", got)
			}
			if err := db.Select("email", "ssn", "id").Where("name = ?", "select").First(&got).Error; err != nil || got.Email != p.Email {
				t.Errorf("Select(email, ssn, id) = %+v, %v", got, err)
			}
			type view struct {
				ID  uuid.UUID
				SSN string `gorm:"serializer:keyward"`
			}
			var vs []view
			err := db.Model(&Patient{}).Where("name = ?", "select").Find(&vs).Error
			if !errors.Is(err, gormcrypt.ErrUnsupported) {
				t.Errorf("Find(&[]view) for another table = %v, want ErrUnsupported", err)
			}
			type leaky struct {
				ID  uuid.UUID
				SSN string
			}
			var ls []leaky
			err = db.Model(&Patient{}).Where("name = ?", "select").Find(&ls).Error
			if !errors.Is(err, gormcrypt.ErrUnsupported) {
				t.Errorf("Find(&[]leaky) = %v %+v, want ErrUnsupported", err, ls)
			}
			var pv []patientView
			if err := db.Model(&Patient{}).Where("name = ?", "select").Find(&pv).Error; err != nil || len(pv) != 1 || pv[0].SSN != p.SSN {
				t.Errorf("Find(&[]patientView) = %+v, %v", pv, err)
			}
		})

		t.Run("CreateSelectOmit", func(t *testing.T) {
			p := newPatient("create-select")
			p.ID = uuid.New()
			p.Email = "Selected." + canaryEmail
			if err := db.Select("ID", "Name", "Email").Create(p).Error; err != nil {
				t.Fatal(err)
			}
			var got Patient
			if err := gormcrypt.Where(db, "email", p.Email).First(&got).Error; err != nil || got.ID != p.ID || got.SSN != "" {
				t.Errorf("after Select(ID, Name, Email).Create: %+v, %v", got, err)
			}
			q := newPatient("create-omit")
			q.Email = "Omitted." + canaryEmail
			if err := db.Omit("Email").Create(q).Error; err != nil {
				t.Fatal(err)
			}
			if q.EmailIdx != nil {
				t.Errorf("index computed for an omitted field")
			}
			if err := gormcrypt.Where(db, "email", q.Email).First(&Patient{}).Error; !errors.Is(err, gorm.ErrRecordNotFound) {
				t.Errorf("lookup of an omitted email = %v, want not found", err)
			}
		})

		t.Run("Upsert", func(t *testing.T) {
			p := newPatient("upsert")
			if err := db.Create(p).Error; err != nil {
				t.Fatal(err)
			}
			q := *p
			q.SSN = canarySSN + "-upsert"
			q.Email = "Upsert." + canaryEmail
			if err := db.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "id"}}, DoUpdates: clause.AssignmentColumns([]string{"ssn", "email"})}).Create(&q).Error; err != nil {
				t.Fatal(err)
			}
			var got Patient
			if err := gormcrypt.Where(db, "email", "upsert."+canaryEmail).First(&got).Error; err != nil {
				t.Fatalf("index not maintained by upsert: %v", err)
			}
			if got.ID != p.ID || got.SSN != q.SSN {
				t.Errorf("after upsert: %+v", got)
			}
			r := *p
			r.SSN = canarySSN + "-all"
			if err := db.Clauses(clause.OnConflict{UpdateAll: true}).Create(&r).Error; err != nil {
				t.Fatal(err)
			}
			if err := db.First(&got, "id = ?", p.ID).Error; err != nil || got.SSN != r.SSN {
				t.Errorf("after UpdateAll upsert: %q, %v", got.SSN, err)
			}
			err := db.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "id"}}, DoUpdates: clause.Assignments(map[string]any{"ssn": "plain"})}).Create(&r).Error
			if !errors.Is(err, gormcrypt.ErrUnsupported) {
				t.Errorf("upsert assigning a literal to ssn = %v, want ErrUnsupported", err)
			}
			s := *p
			s.ID = uuid.New()
			err = db.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "email_idx"}}, UpdateAll: true}).Create(&s).Error
			if !errors.Is(err, gormcrypt.ErrUnsupported) {
				t.Errorf("upsert on email_idx = %v, want ErrUnsupported", err)
			}
			if err := db.Clauses(clause.OnConflict{DoNothing: true}).Create(&r).Error; err != nil {
				t.Errorf("upsert DO NOTHING: %v", err)
			}
		})

		t.Run("CreateMap", func(t *testing.T) {
			id := uuid.New()
			err := db.Model(&Patient{}).Create(map[string]any{"ID": id, "Name": "create-map", "SSN": canarySSN + "-cmap", "Email": "CMap." + canaryEmail}).Error
			if err != nil {
				t.Fatal(err)
			}
			var got Patient
			if err := gormcrypt.Where(db, "Email", "cmap."+canaryEmail).First(&got).Error; err != nil || got.ID != id || got.SSN != canarySSN+"-cmap" {
				t.Errorf("after Create(map): %+v, %v", got, err)
			}
			err = db.Model(&Patient{}).Create(map[string]any{"Name": "create-map-nokey", "SSN": "x"}).Error
			if !errors.Is(err, gormcrypt.ErrPrimaryKey) {
				t.Errorf("Create(map) without key = %v, want ErrPrimaryKey", err)
			}
		})

		t.Run("SoftDelete", func(t *testing.T) {
			p := newPatient("soft")
			p.Email = "Soft." + canaryEmail
			if err := db.Create(p).Error; err != nil {
				t.Fatal(err)
			}
			if err := db.Delete(p).Error; err != nil {
				t.Fatal(err)
			}
			var got Patient
			if err := gormcrypt.Where(db, "email", p.Email).First(&got).Error; !errors.Is(err, gorm.ErrRecordNotFound) {
				t.Errorf("soft-deleted row found: %v", err)
			}
			if err := gormcrypt.Where(db.Unscoped(), "email", p.Email).First(&got).Error; err != nil || got.SSN != p.SSN {
				t.Errorf("Unscoped lookup = %+v, %v", got, err)
			}
			if err := db.Unscoped().Where(&Patient{Email: p.Email}).Delete(&Patient{}).Error; err != nil {
				t.Fatal(err)
			}
			if err := db.Unscoped().First(&got, "id = ?", p.ID).Error; !errors.Is(err, gorm.ErrRecordNotFound) {
				t.Errorf("hard delete by blind index left the row: %v", err)
			}
		})

		t.Run("Transaction", func(t *testing.T) {
			p := newPatient("tx")
			err := db.Transaction(func(tx *gorm.DB) error {
				if err := tx.Create(p).Error; err != nil {
					return err
				}
				if err := tx.Model(p).Update("ssn", canarySSN+"-tx").Error; err != nil {
					return err
				}
				var got Patient
				if err := tx.First(&got, "id = ?", p.ID).Error; err != nil {
					return err
				}
				if got.SSN != canarySSN+"-tx" {
					t.Errorf("in transaction: %q", got.SSN)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			rolled := newPatient("tx-rollback")
			_ = db.Transaction(func(tx *gorm.DB) error {
				tx.Create(rolled)
				return errors.New("roll back")
			})
			var n int64
			db.Model(&Patient{}).Where("name = ?", "tx-rollback").Count(&n)
			if n != 0 {
				t.Errorf("rolled back row exists")
			}
		})

		t.Run("UnregisteredHandle", func(t *testing.T) {
			other := dbtest.Reopen(t, db, nil)
			var got Patient
			err := other.Where("name = ?", "create").First(&got).Error
			if !errors.Is(err, gormcrypt.ErrNotRegistered) {
				t.Errorf("First on a handle without registration = %v, want ErrNotRegistered", err)
			}
			err = other.Create(newPatient("unregistered")).Error
			if !errors.Is(err, gormcrypt.ErrNotRegistered) {
				t.Errorf("Create on a handle without registration = %v, want ErrNotRegistered", err)
			}
		})
	})
}

// patientView reads a subset of patients' columns (smart select).
type patientView struct {
	ID  uuid.UUID
	SSN string `gorm:"serializer:keyward"`
}

func (patientView) TableName() string { return "patients" }

func asBytes(v any) []byte {
	switch x := v.(type) {
	case []byte:
		return x
	case string:
		return []byte(x)
	}
	return nil
}

func TestBinding(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		setup(t, db)
		a, b := newPatient("a"), newPatient("b")
		if err := db.Create([]*Patient{a, b}).Error; err != nil {
			t.Fatal(err)
		}
		rows := rawRows(t, db, "patients")
		byID := map[string]map[string]string{}
		for _, r := range rows {
			byID[r["id"]] = r
		}
		ra := byID[a.ID.String()]
		// Another row's ciphertext.
		if err := db.Exec("UPDATE patients SET ssn = ? WHERE id = ?", ra["ssn"], b.ID.String()).Error; err != nil {
			t.Fatal(err)
		}
		var got Patient
		err := db.First(&got, "id = ?", b.ID).Error
		if !errors.Is(err, keyring.ErrDecrypt) || !strings.Contains(err.Error(), "patients.ssn") {
			t.Errorf("ciphertext copied to another row: %v, want keyring.ErrDecrypt naming patients.ssn", err)
		}
		// Another column's ciphertext in the same row.
		if err := db.Exec("UPDATE patients SET ssn = ? WHERE id = ?", ra["email"], a.ID.String()).Error; err != nil {
			t.Fatal(err)
		}
		if err := db.First(new(Patient), "id = ?", a.ID).Error; !errors.Is(err, keyring.ErrDecrypt) {
			t.Errorf("ciphertext copied to another column: %v, want keyring.ErrDecrypt", err)
		}
		// Tampered token.
		tok := []byte(ra["email"])
		tok[len(tok)-3] ^= 1
		if err := db.Exec("UPDATE patients SET email = ? WHERE id = ?", string(tok), a.ID.String()).Error; err != nil {
			t.Fatal(err)
		}
		var e Patient
		if err := db.Select("id", "email").First(&e, "id = ?", a.ID).Error; !errors.Is(err, keyring.ErrDecrypt) && !errors.Is(err, keyring.ErrMalformedToken) {
			t.Errorf("tampered token: %v", err)
		}

		// Auto-increment keys bind table and column only: a copy across
		// rows decrypts (documented), a copy across columns does not.
		x, y := &Account{Owner: "CANARY-x", Balance: "1"}, &Account{Owner: "CANARY-y", Balance: "2"}
		if err := db.Create([]*Account{x, y}).Error; err != nil {
			t.Fatal(err)
		}
		if err := db.Exec("UPDATE accounts SET balance = (SELECT balance FROM accounts WHERE id = ?) WHERE id = ?", x.ID, y.ID).Error; err != nil {
			t.Fatal(err)
		}
		var acc Account
		if err := db.First(&acc, y.ID).Error; err != nil || acc.Balance != "1" {
			t.Errorf("auto-increment row copy: %+v, %v (bound to table and column only)", acc, err)
		}
		if err := db.Exec("UPDATE accounts SET balance = owner WHERE id = ?", x.ID).Error; err != nil {
			t.Fatal(err)
		}
		if err := db.First(new(Account), x.ID).Error; !errors.Is(err, keyring.ErrDecrypt) {
			t.Errorf("auto-increment column copy: %v, want ErrDecrypt", err)
		}
	})
}

func TestTwoRegistrations(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		setup(t, db)
		other := dbtest.Reopen(t, db, nil)
		kr2 := newKeyring(t)
		if _, err := gormcrypt.Register(other, kr2); err != nil {
			t.Fatal(err)
		}
		p := newPatient("one")
		if err := db.Create(p).Error; err != nil {
			t.Fatal(err)
		}
		q := newPatient("two")
		if err := other.Create(q).Error; err != nil {
			t.Fatal(err)
		}
		if err := other.First(new(Patient), "id = ?", p.ID).Error; !errors.Is(err, keyring.ErrKeyNotFound) {
			t.Errorf("row of keyring 1 read with keyring 2: %v, want ErrKeyNotFound", err)
		}
		if err := db.First(new(Patient), "id = ?", q.ID).Error; !errors.Is(err, keyring.ErrKeyNotFound) {
			t.Errorf("row of keyring 2 read with keyring 1: %v, want ErrKeyNotFound", err)
		}
		var got2 Patient
		if err := other.First(&got2, "id = ?", q.ID).Error; err != nil || got2.SSN != q.SSN {
			t.Errorf("keyring 2 reading its row: %v", err)
		}
		if _, err := gormcrypt.Register(db, kr2); err == nil {
			t.Error("second Register on one *gorm.DB succeeded")
		}
	})
}

func TestBlindIndex(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		_, kr := setup(t, db)
		// 8-bit index over 600 owners: every lookup meets collisions among
		// candidates, and the results must still be exact.
		var accs []Account
		for i := range 600 {
			accs = append(accs, Account{Owner: "owner-" + itoa(i), Balance: "0"})
		}
		if err := db.CreateInBatches(&accs, 100).Error; err != nil {
			t.Fatal(err)
		}
		lens := map[int]bool{}
		for _, a := range accs {
			lens[len(a.OwnerIdx)] = true
		}
		if len(lens) != 1 || !lens[4+1] {
			t.Errorf("index lengths %v, want 5 (key ID + 8 bits)", lens)
		}
		for _, i := range []int{0, 17, 599} {
			var got []Account
			if err := gormcrypt.Where(db, "Owner", "owner-"+itoa(i)).Find(&got).Error; err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].Owner != "owner-"+itoa(i) {
				t.Errorf("lookup owner-%d = %+v", i, got)
			}
		}
		// Find colliding pairs by index and check First still finds
		// exactly the right row.
		byIdx := map[string][]int{}
		for i, a := range accs {
			byIdx[string(a.OwnerIdx)] = append(byIdx[string(a.OwnerIdx)], i)
		}
		collisions := 0
		for _, is := range byIdx {
			if len(is) < 2 {
				continue
			}
			collisions++
			var got []Account
			if err := gormcrypt.Where(db, "Owner", accs[is[1]].Owner).Find(&got).Error; err != nil || len(got) != 1 || got[0].ID != accs[is[1]].ID {
				t.Errorf("collision: lookup %q = %+v, %v", accs[is[1]].Owner, got, err)
			}
		}
		t.Logf("%d colliding index values among 600 rows at 8 bits", collisions)

		// The index stays findable across a derive root rotation: old rows
		// keep the old key ID, new rows get the new one.
		before := accs[5].OwnerIdx
		if _, err := kr.RotateDerive(t.Context()); err != nil {
			t.Fatal(err)
		}
		n := Account{Owner: "after-rotation", Balance: "1"}
		if err := db.Create(&n).Error; err != nil {
			t.Fatal(err)
		}
		if string(n.OwnerIdx[:4]) == string(before[:4]) {
			t.Error("new index uses the old derive key ID")
		}
		for _, owner := range []string{accs[5].Owner, "after-rotation"} {
			var got Account
			if err := gormcrypt.Where(db, "owner", owner).First(&got).Error; err != nil || got.Owner != owner {
				t.Errorf("lookup %q after RotateDerive = %+v, %v", owner, got, err)
			}
		}
		idx, err := gormcrypt.BlindIndex(db, &Account{}, "Owner", "after-rotation")
		if err != nil || string(idx) != string(n.OwnerIdx) {
			t.Errorf("BlindIndex = %x, %v; want %x", idx, err, n.OwnerIdx)
		}
	})
}

func itoa(i int) string {
	s := []byte{}
	if i == 0 {
		return "0"
	}
	for i > 0 {
		s = append([]byte{byte('0' + i%10)}, s...)
		i /= 10
	}
	return string(s)
}

var _ = sort.Strings

func TestDryRunAndNoModel(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		_, kr := setup(t, db)
		p := newPatient("dry")
		p.ID = uuid.New()
		before := kr.Encryptions(kr.Primary())
		stmt := db.Session(&gorm.Session{DryRun: true}).Create(p).Statement
		assert.Equal(t, before, kr.Encryptions(kr.Primary()), "a dry run encrypted values")
		// A dry run's variables hold no encrypted value: executing them
		// fails instead of writing a placeholder.
		err := db.Exec(stmt.SQL.String(), stmt.Vars...).Error
		require.Error(t, err, "executing a dry run's SQL")
		assert.Contains(t, err.Error(), "dry run")
		var n int64
		require.NoError(t, db.Model(&Patient{}).Where("id = ?", p.ID).Count(&n).Error)
		assert.Zero(t, n, "rows written by executing a dry run")
		sql := db.ToSQL(func(tx *gorm.DB) *gorm.DB { return tx.Create(newPatient("tosql")) })
		for _, c := range canaries() {
			if strings.Contains(sql, c) {
				t.Errorf("ToSQL shows plaintext %q", c)
			}
		}
		var ms []map[string]any
		err = gormcrypt.Where(db.Table("patients"), "email", p.Email).Find(&ms).Error
		if !errors.Is(err, gormcrypt.ErrNotSearchable) {
			t.Errorf("gormcrypt.Where without a model = %v, want ErrNotSearchable", err)
		}
	})
}

// Contact is embedded in Member.
type Contact struct {
	Phone string `gorm:"serializer:keyward"`
	Mail  string `gorm:"serializer:keyward" keyward:"blind:MailIdx"`
}

// Member has a composite client-assigned key and an embedded struct with
// encrypted fields.
type Member struct {
	Org     string `gorm:"primaryKey;size:32"`
	Number  int64  `gorm:"primaryKey;autoIncrement:false"`
	Contact `gorm:"embedded"`
	MailIdx []byte
}

func TestCompositeKeyAndEmbedded(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		setup(t, db)
		if err := db.AutoMigrate(&Member{}); err != nil {
			t.Fatal(err)
		}
		ms := []Member{
			{Org: "a", Number: 1, Contact: Contact{Phone: "CANARY-p1", Mail: "m1@example.com"}},
			{Org: "a", Number: 2, Contact: Contact{Phone: "CANARY-p2", Mail: "m2@example.com"}},
		}
		if err := db.Create(&ms).Error; err != nil {
			t.Fatal(err)
		}
		assertNoPlaintext(t, db, "members")
		var got Member
		if err := gormcrypt.Where(db, "Mail", "m2@example.com").First(&got).Error; err != nil || got.Number != 2 || got.Phone != "CANARY-p2" {
			t.Errorf("lookup = %+v, %v", got, err)
		}
		if err := db.Model(&ms[0]).Update("Phone", "CANARY-p1b").Error; err != nil {
			t.Fatal(err)
		}
		var one Member
		if err := db.First(&one, "org = ? AND number = ?", "a", 1).Error; err != nil || one.Phone != "CANARY-p1b" {
			t.Errorf("after Update: %+v, %v", one, err)
		}
		// Both key columns are bound: the same org with another number
		// does not decrypt the value.
		if err := db.Exec("UPDATE members SET phone = (SELECT phone FROM members WHERE number = 1) WHERE number = 2").Error; err != nil {
			t.Fatal(err)
		}
		if err := db.First(&Member{}, "org = ? AND number = ?", "a", 2).Error; !errors.Is(err, keyring.ErrDecrypt) {
			t.Errorf("value moved between rows of a composite key: %v, want ErrDecrypt", err)
		}
	})
}
