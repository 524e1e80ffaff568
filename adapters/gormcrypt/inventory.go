package gormcrypt

import (
	"context"
	"encoding/base64"
	"fmt"
	"sort"
	"strings"

	"github.com/keyward/keyward/cipher"
	"github.com/keyward/keyward/keyring"
	"gorm.io/gorm"
)

// Holding is how many stored values of one column one key protects, a row
// of Inventory.
type Holding struct {
	Table   string // as SQL names it
	Column  string
	Keyring string // the registry's keyring of the column
	// KeyID is the key that made the values, from their token header;
	// 0 for values that are not keyward tokens (legacy plaintext, or
	// raw-key tokens of cipher.EncryptData).
	KeyID  uint32
	Values int64
}

// headerChars is how many characters of a text token name its key: "kw1."
// and the base64url of the 6 header bytes (version, algorithm, key ID).
const headerChars = 12

// Inventory counts, for every column of the column registry of db, the
// stored values per key ID, sorted by table, column and key ID. It reads
// the registry (ErrNoRegistry without one) and never writes.
//
// It is cheap because the key ID sits at a fixed place of every text token:
// the database groups the rows of each table by the first 12 characters of
// its encrypted columns, all columns at once (one sequential scan per
// table), and sends back a handful of rows, never a value. On a table of
// millions of rows it costs about what a COUNT(*) costs. KeyInUse stops at
// the first value it finds, and an expression index on substr(column, 1,
// 12) makes it an index lookup.
func Inventory(ctx context.Context, db *gorm.DB) ([]Holding, error) {
	cols, err := Columns(ctx, db)
	if err != nil {
		return nil, err
	}
	db = db.WithContext(ctx)
	var out []Holding
	for _, group := range registryTables(cols) {
		hs, err := inventoryTable(db, group)
		if err != nil {
			return nil, fmt.Errorf("gormcrypt: inventory of %s: %w", group[0].Table, err)
		}
		out = append(out, hs...)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Table != b.Table {
			return a.Table < b.Table
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		return a.KeyID < b.KeyID
	})
	return out, nil
}

// headerExpr is the SQL of a column's token header: the first 12
// characters of a token, ” for a value that is not one, NULL for NULL.
func headerExpr(q string) string {
	return "CASE WHEN " + q + " IS NULL THEN NULL WHEN SUBSTR(" + q + ", 1, 4) = 'kw1.' THEN SUBSTR(" + q + ", 1, " + fmt.Sprint(headerChars) + ") ELSE '' END"
}

// inventoryTable counts the values of the columns of one table by header
// in one scan: it groups the rows by the headers of all the columns at
// once (a few groups: the keys in use per column, combined) and sums per
// column here.
func inventoryTable(db *gorm.DB, cols []Column) ([]Holding, error) {
	stmt := &gorm.Statement{DB: db}
	hs := make([]string, len(cols))
	sel := make([]string, len(cols))
	for i, c := range cols {
		hs[i] = fmt.Sprintf("h%d", i)
		sel[i] = headerExpr(stmt.Quote(c.Column)) + " AS " + hs[i]
	}
	list := strings.Join(hs, ", ")
	q := "SELECT " + list + ", COUNT(*) FROM (SELECT " + strings.Join(sel, ", ") + " FROM " + stmt.Quote(cols[0].Table) + ") AS kw_h GROUP BY " + list
	rows, err := db.Raw(q).Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	type slot struct{ col, key uint32 }
	counts := map[slot]int64{}
	heads := make([]*string, len(cols))
	dest := make([]any, 0, len(cols)+1)
	for i := range heads {
		dest = append(dest, &heads[i])
	}
	var n int64
	dest = append(dest, &n)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		for i, h := range heads {
			if h != nil { // NULL is not a value
				id, _ := cipher.PeekKeyID(*h) // 0: not a token
				counts[slot{uint32(i), id}] += n
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]Holding, 0, len(counts))
	for s, n := range counts {
		c := cols[s.col]
		out = append(out, Holding{Table: c.Table, Column: c.Column, Keyring: c.Keyring, KeyID: s.key, Values: n})
	}
	return out, nil
}

// Usage answers, from the column registry of a database, whether stored
// values still use a key: the keyring.UsageChecker of a guarded Destroy
// (keyring.WithUsageChecker), and how many (for the audit of a forced one).
// It only reads.
type Usage struct {
	db *gorm.DB
}

var (
	_ keyring.UsageChecker = (*Usage)(nil)
	_ keyring.ValueCounter = (*Usage)(nil)
)

// NewUsage returns the Usage of db's column registry.
func NewUsage(db *gorm.DB) *Usage { return &Usage{db: db} }

// headers returns the token headers ("kw1." + 8 characters) of key id,
// one per algorithm.
func headers(id uint32) []string {
	var out []string
	for _, alg := range []cipher.Algorithm{cipher.AES256GCM, cipher.XChaCha20Poly1305} {
		h := []byte{cipher.Version, byte(alg), byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}
		out = append(out, cipher.TextPrefix+base64.RawURLEncoding.EncodeToString(h))
	}
	return out
}

// KeyInUse implements keyring.UsageChecker: whether any column the
// registry records for keyring holds a value made by keyID. It stops at
// the first such value. A database without a registry fails with
// ErrNoRegistry: with nothing to ask, it cannot say a key is unused.
func (u *Usage) KeyInUse(ctx context.Context, keyringName string, keyID uint32) (bool, error) {
	n, err := u.count(ctx, keyringName, keyID, true)
	return n > 0, err
}

// KeyValues implements keyring.ValueCounter: how many stored values of
// keyring's columns keyID made (a forced destroy records it).
func (u *Usage) KeyValues(ctx context.Context, keyringName string, keyID uint32) (int64, error) {
	return u.count(ctx, keyringName, keyID, false)
}

func (u *Usage) count(ctx context.Context, keyringName string, keyID uint32, first bool) (int64, error) {
	cols, err := Columns(ctx, u.db)
	if err != nil {
		return 0, err
	}
	db := u.db.WithContext(ctx)
	stmt := &gorm.Statement{DB: db}
	hs := headers(keyID)
	var total int64
	for _, c := range cols {
		if c.Keyring != keyringName {
			continue
		}
		q := stmt.Quote(c.Column)
		cond := "SUBSTR(" + q + ", 1, " + fmt.Sprint(headerChars) + ") IN (?, ?)"
		var n int64
		if first {
			err = db.Raw("SELECT COUNT(*) FROM (SELECT 1 FROM "+stmt.Quote(c.Table)+" WHERE "+cond+" LIMIT 1) AS kw_u", hs[0], hs[1]).Scan(&n).Error
		} else {
			err = db.Raw("SELECT COUNT(*) FROM "+stmt.Quote(c.Table)+" WHERE "+cond, hs[0], hs[1]).Scan(&n).Error
		}
		if err != nil {
			return 0, fmt.Errorf("gormcrypt: values of key ID %d in %s: %w", keyID, c, err)
		}
		total += n
		if first && n > 0 {
			return total, nil
		}
	}
	return total, nil
}
