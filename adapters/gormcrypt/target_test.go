package gormcrypt_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/keyward/keyward/adapters/gormcrypt"
	"github.com/keyward/keyward/cipher"
	"github.com/keyward/keyward/internal/dbtest"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/rotation"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
)

// encryptedColumns lists the encrypted columns of each test table.
var encryptedColumns = map[string][]string{
	"patients":  {"ssn", "email", "notes", "phone", "info", "tags"},
	"companies": {"secret"},
	"accounts":  {"owner", "balance"},
}

// checkUnder asserts every non-NULL encrypted value of table is a token of
// key ID id, and returns how many there are.
func checkUnder(t *testing.T, db *gorm.DB, table string, id uint32) int {
	t.Helper()
	n := 0
	for _, row := range rawRows(t, db, table) {
		for _, col := range encryptedColumns[table] {
			v := row[col]
			if v == "" {
				continue
			}
			n++
			if got, ok := cipher.PeekKeyID(v); !ok || got != id {
				t.Errorf("%s.%s of row %s: key ID %d (%v), want %d", table, col, row["id"], got, ok, id)
			}
		}
	}
	return n
}

func TestTargetReencrypt(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		_, kr := setup(t, db)
		var want []Patient
		for i := range 23 {
			p := newPatient(fmt.Sprintf("patient %02d", i))
			if i%5 == 0 {
				p.Phone = nil // NULL: not a value
			}
			if err := db.Create(p).Error; err != nil {
				t.Fatal(err)
			}
			want = append(want, *p)
		}
		for i := range 9 {
			if err := db.Create(&Company{Name: fmt.Sprint(i), Secret: fmt.Sprintf("CANARY-company-%d", i)}).Error; err != nil {
				t.Fatal(err)
			}
		}
		old := kr.Primary()
		if _, err := kr.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		// One patient written after the rotation is current already.
		late := newPatient("late")
		if err := db.Create(late).Error; err != nil {
			t.Fatal(err)
		}
		want = append(want, *late)

		target, err := gormcrypt.NewTarget(db, &Patient{})
		if err != nil {
			t.Fatal(err)
		}
		st, err := rotation.Reencrypt(ctx, kr, target, rotation.WithBatchSize(4), rotation.WithWorkers(3))
		if err != nil {
			t.Fatal(err)
		}
		values := 23*6 - 5
		if st.Rewritten != int64(values) || st.Current != 6 || st.Scanned != int64(values+6) || st.Batches != 6 || st.Skipped != 0 {
			t.Errorf("Reencrypt(patients) = %+v, want %d rewritten, 6 current in 6 batches", st, values)
		}
		if n := checkUnder(t, db, "patients", kr.Primary()); n != values+6 {
			t.Errorf("%d encrypted values, want %d", n, values+6)
		}
		if checkUnder(t, db, "companies", old) != 9 {
			t.Error("companies were touched by the patients' target")
		}
		assertNoPlaintext(t, db, "patients")

		// Everything reads back through GORM, and blind index lookups work.
		var got []Patient
		if err := db.Order("name").Find(&got).Error; err != nil {
			t.Fatal(err)
		}
		sort.Slice(want, func(i, j int) bool { return want[i].Name < want[j].Name })
		if len(got) != len(want) {
			t.Fatalf("Find returned %d patients, want %d", len(got), len(want))
		}
		for i := range got {
			g, w := got[i], want[i]
			if g.ID != w.ID || g.SSN != w.SSN || g.Email != w.Email || string(g.Notes) != string(w.Notes) ||
				(g.Phone == nil) != (w.Phone == nil) || g.Info.Blood != w.Info.Blood || g.Tags["ward"] != w.Tags["ward"] {
				t.Errorf("patient %s reads back differently", w.Name)
			}
		}
		var found Patient
		if err := gormcrypt.Where(db, "Email", canaryEmail).First(&found).Error; err != nil {
			t.Errorf("blind index lookup after re-encryption: %v", err)
		}

		// Auto-increment keys: values bound to table and column only.
		ct, err := gormcrypt.NewTarget(db, &Company{}, "Secret")
		if err != nil {
			t.Fatal(err)
		}
		if st, err := rotation.Reencrypt(ctx, kr, ct, rotation.WithBatchSize(2)); err != nil || st.Rewritten != 9 {
			t.Errorf("Reencrypt(companies) = %+v, %v; want 9 rewritten", st, err)
		}
		checkUnder(t, db, "companies", kr.Primary())
		var c Company
		if err := db.First(&c, "name = ?", "3").Error; err != nil || c.Secret != "CANARY-company-3" {
			t.Errorf("company 3 = %q, %v", c.Secret, err)
		}
	})
}

// racingTarget makes the application update a row through GORM right
// before the job's compare-and-swap on it (Swap, or SwapAll when batch).
type racingTarget struct {
	rotation.Target
	batch *gormcrypt.Target
	db    *gorm.DB
	id    uuid.UUID
	field string
	value string
	done  bool
}

func (r *racingTarget) Swap(ctx context.Context, v rotation.Value, token []byte) (bool, error) {
	if err := r.race(v); err != nil {
		return false, err
	}
	return r.Target.Swap(ctx, v, token)
}

func (r *racingTarget) race(v rotation.Value) error {
	if !r.done && v.ID == fmt.Sprintf("patients/%v/%s", r.id, r.field) {
		r.done = true
		return r.db.Model(&Patient{ID: r.id}).Update("SSN", r.value).Error
	}
	return nil
}

// racingBatchTarget is racingTarget for SwapAll.
type racingBatchTarget struct{ *racingTarget }

func (r racingBatchTarget) SwapAll(ctx context.Context, swaps []rotation.Swap) ([]bool, error) {
	for _, s := range swaps {
		if err := r.race(s.Value); err != nil {
			return nil, err
		}
	}
	return r.batch.SwapAll(ctx, swaps)
}

func TestTargetConcurrentUpdate(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		_, kr := setup(t, db)
		var ps []*Patient
		for i := range 6 {
			p := newPatient(fmt.Sprint(i))
			if err := db.Create(p).Error; err != nil {
				t.Fatal(err)
			}
			ps = append(ps, p)
		}
		if _, err := kr.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		target, err := gormcrypt.NewTarget(db, &Patient{}, "SSN", "email")
		if err != nil {
			t.Fatal(err)
		}
		const newSSN = "987-65-4321"
		rt := &racingTarget{Target: target, batch: target, db: db, id: ps[3].ID, field: "ssn", value: newSSN}
		st, err := rotation.Reencrypt(ctx, kr, rt, rotation.WithWorkers(1), rotation.WithBatchSize(4))
		if err != nil {
			t.Fatal(err)
		}
		if st.Skipped != 1 || st.Rewritten != 11 {
			t.Errorf("Reencrypt value by value = %+v, want 1 skipped, 11 rewritten", st)
		}
		var p Patient
		if err := db.First(&p, "id = ?", ps[3].ID).Error; err != nil || p.SSN != newSSN {
			t.Errorf("patient 3 SSN = %q, %v; the application's update was overwritten", p.SSN, err)
		}

		// The same in batches: SwapAll's transaction misses the row too.
		if _, err := kr.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		const newer = "111-22-3333"
		rt = &racingTarget{Target: target, batch: target, db: db, id: ps[4].ID, field: "ssn", value: newer}
		st, err = rotation.Reencrypt(ctx, kr, racingBatchTarget{rt}, rotation.WithBatchSize(4))
		if err != nil {
			t.Fatal(err)
		}
		if st.Skipped != 1 || st.Rewritten != 11 {
			t.Errorf("Reencrypt in batches = %+v, want 1 skipped, 11 rewritten", st)
		}
		var p4 Patient
		if err := db.First(&p4, "id = ?", ps[4].ID).Error; err != nil || p4.SSN != newer {
			t.Errorf("patient 4 SSN = %q, %v; the application's update was overwritten", p4.SSN, err)
		}
		// Only the named columns were rewritten.
		for _, row := range rawRows(t, db, "patients") {
			if id, _ := cipher.PeekKeyID(row["notes"]); id == kr.Primary() {
				t.Error("notes rewritten although not named")
			}
		}
	})
}

func TestTargetLegacyPlaintext(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		_, kr := setup(t, db, gormcrypt.WithLegacyPlaintext())
		for i := range 5 {
			if err := db.Exec("INSERT INTO accounts (owner, balance) VALUES (?, ?)", fmt.Sprintf("owner-%d", i), "100").Error; err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Create(&Account{Owner: "owner-new", Balance: "5"}).Error; err != nil {
			t.Fatal(err)
		}
		target, err := gormcrypt.NewTarget(db, &Account{})
		if err != nil {
			t.Fatal(err)
		}
		st, err := rotation.Reencrypt(ctx, kr, target)
		if err != nil || st.Legacy != 10 || st.Rewritten != 10 || st.Current != 2 {
			t.Fatalf("Reencrypt = %+v, %v; want 10 legacy values encrypted, 2 current", st, err)
		}
		checkUnder(t, db, "accounts", kr.Primary())
		for _, row := range rawRows(t, db, "accounts") {
			if row["owner"] == "owner-2" || row["balance"] == "100" {
				t.Errorf("plaintext left in row %s", row["id"])
			}
		}
		var a Account
		if err := gormcrypt.Where(db, "Owner", "owner-2").First(&a).Error; err != nil || a.Balance != "100" {
			t.Errorf("lookup of an encrypted legacy row = %+v, %v", a, err)
		}
	})
}

func TestTargetFailsClosed(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		_, kr := setup(t, db)
		a, b := newPatient("a"), newPatient("b")
		for _, p := range []*Patient{a, b} {
			if err := db.Create(p).Error; err != nil {
				t.Fatal(err)
			}
		}
		// b's SSN token moved into a's row: it does not authenticate there.
		var tok string
		if err := db.Raw("SELECT ssn FROM patients WHERE id = ?", b.ID).Scan(&tok).Error; err != nil {
			t.Fatal(err)
		}
		if err := db.Exec("UPDATE patients SET ssn = ? WHERE id = ?", tok, a.ID).Error; err != nil {
			t.Fatal(err)
		}
		if err := db.Exec("UPDATE patients SET notes = ? WHERE id = ?", "plain "+canaryNote, b.ID).Error; err != nil {
			t.Fatal(err)
		}
		if _, err := kr.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		target, err := gormcrypt.NewTarget(db, &Patient{})
		if err != nil {
			t.Fatal(err)
		}
		st, err := rotation.Reencrypt(ctx, kr, target, rotation.WithContinueOnError())
		if !errors.Is(err, rotation.ErrIncomplete) || st.Failed != 2 {
			t.Fatalf("Reencrypt = %+v, %v; want 2 failures", st, err)
		}
		ids := map[string]error{}
		for _, f := range st.Failures {
			ids[f.ID] = f.Err
			for _, c := range canaries() {
				if strings.Contains(f.Error(), c) {
					t.Errorf("failure %q names plaintext", f.Error())
				}
			}
		}
		if err := ids[fmt.Sprintf("patients/%s/ssn", a.ID)]; !errors.Is(err, keyring.ErrDecrypt) {
			t.Errorf("moved token: %v, want keyring.ErrDecrypt", err)
		}
		if err := ids[fmt.Sprintf("patients/%s/notes", b.ID)]; !errors.Is(err, cipher.ErrMalformedToken) {
			t.Errorf("plaintext without the migration mode: %v, want a malformed token", err)
		}
	})
}

func TestNewTargetErrors(t *testing.T) {
	db := dbtest.Open(t, dbtest.SQLite, nil)
	if _, err := gormcrypt.NewTarget(db, &Patient{}); !errors.Is(err, gormcrypt.ErrNotRegistered) {
		t.Errorf("NewTarget without Register = %v", err)
	}
	setup(t, db)
	for name, fields := range map[string][]string{
		"unknown":   {"Nope"},
		"plain":     {"Name"},
		"twice":     {"SSN", "ssn"},
		"index col": {"EmailIdx"},
	} {
		if _, err := gormcrypt.NewTarget(db, &Patient{}, fields...); err == nil {
			t.Errorf("NewTarget with %s fields succeeded", name)
		}
	}
	type NoKey struct {
		Secret string `gorm:"serializer:keyward"`
	}
	if _, err := gormcrypt.NewTarget(db, &NoKey{}); !errors.Is(err, gormcrypt.ErrUnsupported) {
		t.Errorf("NewTarget of a model without a primary key = %v", err)
	}
	target, err := gormcrypt.NewTarget(db, &Patient{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"x", `{"table":"companies","key":1}`, `{"table":"patients","key":5}`} {
		if _, _, err := target.Scan(context.Background(), c, 10); !errors.Is(err, rotation.ErrCheckpoint) {
			t.Errorf("Scan from cursor %s = %v, want ErrCheckpoint", c, err)
		}
	}
}

// TestRegistryTargets re-encrypts every registered table, a composite key
// included, with targets built from the column registry alone, on a handle
// that has no Crypt and no Go model, as an operator's tool does.
func TestRegistryTargets(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		kr := newKeyring(t)
		_, err := gormcrypt.Register(db, kr)
		require.NoError(t, err)
		require.NoError(t, gormcrypt.AutoMigrate(db, &Company{}, &Patient{}, &Visit{}, &Account{}, &Pair{}))
		var patients []*Patient
		for i := range 7 {
			p := newPatient(fmt.Sprint(i))
			require.NoError(t, db.Create(&Company{Secret: fmt.Sprintf("secret %d", i)}).Error)
			require.NoError(t, db.Create(p).Error)
			patients = append(patients, p)
			for j := range 3 {
				require.NoError(t, db.Create(&Pair{Tenant: fmt.Sprintf("t%d", j), Seq: int64(i + 1), Secret: fmt.Sprintf("pair %d %d", i+1, j), Note: "Note"}).Error)
			}
		}
		old := kr.Primary()
		_, err = kr.Rotate(ctx)
		require.NoError(t, err)

		tool := dbtest.Reopen(t, db, nil) // no Crypt, no models
		targets, err := gormcrypt.RegistryTargets(ctx, tool, kr)
		require.NoError(t, err)
		tables := map[string][]string{}
		for _, target := range targets {
			tables[target.Table()] = target.Columns()
			st, err := rotation.Reencrypt(ctx, kr, target, rotation.WithBatchSize(4))
			require.NoError(t, err, "Reencrypt of %s", target.Table())
			assert.Zero(t, st.Skipped+st.Failed, "%s: %+v", target.Table(), st)
		}
		assert.ElementsMatch(t, []string{"companies", "patients", "visits", "accounts", "pairs"}, keysOf(tables), "tables of the registry")
		assert.ElementsMatch(t, []string{"secret", "note"}, tables["pairs"], "columns of pairs")
		assert.Equal(t, 7*6, checkUnder(t, db, "patients", kr.Primary()), "patients values under the new primary")
		for _, row := range rawRows(t, db, "pairs") {
			for _, col := range []string{"secret", "note"} {
				id, ok := cipher.PeekKeyID(row[col])
				assert.True(t, ok && id != old && id == kr.Primary(), "pairs.%s of %s/%s under key %d", col, row["tenant"], row["seq"], id)
			}
		}
		for _, p := range patients {
			var got Patient
			require.NoError(t, db.First(&got, "id = ?", p.ID).Error)
			assert.Equal(t, p.SSN, got.SSN, "patient %s after re-encryption", p.ID)
			assert.Equal(t, p.Tags, got.Tags)
		}
		var pairs []Pair
		require.NoError(t, db.Order("tenant, seq").Find(&pairs).Error)
		require.Len(t, pairs, 21)
		assert.Equal(t, "pair 1 0", pairs[0].Secret, "composite-key row after re-encryption")
		var found Pair
		require.NoError(t, gormcrypt.Where(db, "Note", "note").Where("tenant = ? AND seq = ?", "t2", 3).First(&found).Error)
		assert.Equal(t, "pair 3 2", found.Secret, "blind index lookup after re-encryption")

		// The model's own target of the composite key agrees.
		_, err = kr.Rotate(ctx)
		require.NoError(t, err)
		pt, err := gormcrypt.NewTarget(db, &Pair{})
		require.NoError(t, err)
		st, err := rotation.Reencrypt(ctx, kr, pt, rotation.WithBatchSize(5))
		require.NoError(t, err)
		assert.Equal(t, int64(42), st.Rewritten, "NewTarget of a composite key: %+v", st)
	})
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
