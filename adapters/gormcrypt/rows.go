package gormcrypt

import (
	"database/sql"
	"strings"

	"gorm.io/gorm"
)

// keyRows presents a result's columns with the primary key columns first.
// GORM sets a row's fields in column order, and an encrypted field bound to
// the primary key can only be decrypted once the key is set.
type keyRows struct {
	*sql.Rows
	cols []string
	perm []int // perm[i] = the original position of column i
	buf  []any
}

// keyFirst returns rows, or a view of it with the primary key columns of
// the model and its joined relations first when that changes the order and
// the model has fields bound to the key.
func keyFirst(rows *sql.Rows, stmt *gorm.Statement, info *schemaInfo) gorm.Rows {
	if info == nil || (len(stmt.Joins) == 0 && !(info.pkBound && len(info.fields) > 0)) {
		return rows
	}
	cols, err := rows.Columns()
	if err != nil {
		return rows
	}
	isKey := func(c string) bool {
		if i := strings.LastIndex(c, "__"); i >= 0 {
			c = c[i+2:]
		}
		return info.keyNames[c]
	}
	perm := make([]int, 0, len(cols))
	for i, c := range cols {
		if isKey(c) {
			perm = append(perm, i)
		}
	}
	moved := false
	for i, p := range perm {
		if p != i {
			moved = true
		}
	}
	if !moved {
		return rows
	}
	for i, c := range cols {
		if !isKey(c) {
			perm = append(perm, i)
		}
	}
	ordered := make([]string, len(cols))
	for i, p := range perm {
		ordered[i] = cols[p]
	}
	return &keyRows{Rows: rows, cols: ordered, perm: perm, buf: make([]any, len(cols))}
}

// Columns returns the reordered column names.
func (r *keyRows) Columns() ([]string, error) {
	return append([]string(nil), r.cols...), nil
}

// ColumnTypes returns the column types in the reordered order.
func (r *keyRows) ColumnTypes() ([]*sql.ColumnType, error) {
	ts, err := r.Rows.ColumnTypes()
	if err != nil {
		return nil, err
	}
	out := make([]*sql.ColumnType, len(ts))
	for i, p := range r.perm {
		if p < len(ts) {
			out[i] = ts[p]
		}
	}
	return out, nil
}

// Scan scans into dest given in the reordered order.
func (r *keyRows) Scan(dest ...any) error {
	if len(dest) != len(r.perm) {
		return r.Rows.Scan(dest...) // let database/sql report the mismatch
	}
	for i, p := range r.perm {
		r.buf[p] = dest[i]
	}
	err := r.Rows.Scan(r.buf...)
	clear(r.buf)
	return err
}
