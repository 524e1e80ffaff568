package gormcrypt

import (
	"fmt"
	"strings"
	"sync"
)

// authority is what a Crypt knows about encrypted columns, by table: every
// column of an encrypted field of every model it has seen (in a statement,
// through WithModels, or as a relation of such a model), every column of the
// database's column registry (registry.go), and every blind index column. Names are matched the way databases match them: without
// quotes, case-insensitively, with or without the table (and schema)
// prefix.
//
// It is the one place the statement guard (guard.go) asks whether a value
// bound for a column must be encrypted, or whether a result may carry a
// token, whatever the statement's destination: a model, Table(name), a map,
// clause.Set, Assignments.
type authority struct {
	mu     sync.RWMutex
	tables map[string]*tableCols // canonical lower-case table name
}

// tableCols are the encrypted columns of one table.
type tableCols struct {
	cols  map[string]*fieldInfo // lower-case column -> the field that declared it
	index map[string]*fieldInfo // lower-case blind index column -> its source field
}

// table returns the encrypted columns of table (a canonical key), or nil.
func (a *authority) table(key string) *tableCols {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.tables[key]
}

// learn records the encrypted fields of a model under the table key. A
// column that another model declared with another binding is refused: the
// values one writes could not be read by the other.
func (a *authority) learn(key string, fields []*fieldInfo) error {
	if len(fields) == 0 {
		return nil
	}
	a.mu.RLock()
	tc := a.tables[key]
	known := tc != nil
	if known {
		for _, fi := range fields {
			if tc.cols[strings.ToLower(fi.column)] != fi {
				known = false
				break
			}
		}
	}
	a.mu.RUnlock()
	if known {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.tables == nil {
		a.tables = map[string]*tableCols{}
	}
	tc = a.tables[key]
	if tc == nil {
		tc = &tableCols{cols: map[string]*fieldInfo{}, index: map[string]*fieldInfo{}}
	}
	// Check every field before changing anything.
	for _, fi := range fields {
		col := strings.ToLower(fi.column)
		if old := tc.cols[col]; old != nil && old.binding != fi.binding {
			return fmt.Errorf("%w: column %s.%s is encrypted by %s with binding %s and by %s with binding %s; one column has one binding",
				ErrTag, key, fi.column, old.owner(), old.bindingText(), fi.owner(), fi.bindingText())
		}
		if old := tc.cols[col]; old != nil && old.keyring != fi.keyring {
			return fmt.Errorf("%w: column %s.%s is encrypted with keyring %q by %s and with keyring %q by %s: values one writes could not be read by the other",
				ErrTag, key, fi.column, old.keyring, old.owner(), fi.keyring, fi.owner())
		}
		if fi.blind != nil {
			idx := strings.ToLower(fi.blind.index.DBName)
			if old := tc.index[idx]; old != nil && old.binding != fi.binding {
				return fmt.Errorf("%w: blind index column %s.%s is maintained for two bindings", ErrTag, key, fi.blind.index.DBName)
			}
		}
	}
	cp := &tableCols{cols: make(map[string]*fieldInfo, len(tc.cols)+len(fields)), index: make(map[string]*fieldInfo, len(tc.index)+1)}
	for k, v := range tc.cols {
		cp.cols[k] = v
	}
	for k, v := range tc.index {
		cp.index[k] = v
	}
	// A model's field takes the place of the column registry's entry: it
	// can encrypt and decrypt, the entry can only refuse.
	for _, fi := range fields {
		col := strings.ToLower(fi.column)
		if old := cp.cols[col]; old == nil || (old.field == nil && fi.field != nil) {
			cp.cols[col] = fi
		}
		if fi.blind != nil {
			idx := strings.ToLower(fi.blind.index.DBName)
			if old := cp.index[idx]; old == nil || (old.field == nil && fi.field != nil) {
				cp.index[idx] = fi
			}
		}
	}
	a.tables[key] = cp
	return nil
}

// column returns the encrypted field that owns column col of tc, or the
// field whose blind index col is.
func (tc *tableCols) column(col string) (fi *fieldInfo, index bool) {
	if tc == nil {
		return nil, false
	}
	col = strings.ToLower(col)
	if fi := tc.cols[col]; fi != nil {
		return fi, false
	}
	if fi := tc.index[col]; fi != nil {
		return fi, true
	}
	return nil, false
}

// unquote removes one pair of identifier quotes ("x", `x`, [x]) and
// surrounding white space.
func unquote(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 {
		switch {
		case s[0] == '"' && s[len(s)-1] == '"', s[0] == '`' && s[len(s)-1] == '`', s[0] == '[' && s[len(s)-1] == ']':
			return s[1 : len(s)-1]
		}
	}
	return s
}

// splitName splits a possibly qualified, possibly quoted name into its
// parts: `"public"."patients"` -> [public patients].
func splitName(name string) []string {
	var parts []string
	start, quote := 0, byte(0)
	for i := 0; i < len(name); i++ {
		ch := name[i]
		switch {
		case quote != 0:
			if ch == quote {
				quote = 0
			}
		case ch == '"' || ch == '`':
			quote = ch
		case ch == '[':
			quote = ']'
		case ch == '.':
			parts = append(parts, unquote(name[start:i]))
			start = i + 1
		}
	}
	return append(parts, unquote(name[start:]))
}

// defaultSchema reports whether s names the schema a database uses when a
// table is not qualified and no other is set: PostgreSQL's public, SQLite's
// main.
func defaultSchema(s string) bool {
	s = strings.ToLower(s)
	return s == "public" || s == "main"
}

// bindTable is the table name bound into associated data: the name GORM
// uses, without quotes and without the default schema, qualified with the
// registration's schema when the database's current schema is another one
// (PostgreSQL's search_path), so that a row copied between schemas that
// share a keyring does not decrypt.
func (c *Crypt) bindTable(table string) string {
	parts := splitName(table)
	switch {
	case len(parts) == 1 && c.schema != "":
		return c.schema + "." + parts[0]
	case len(parts) == 2 && defaultSchema(parts[0]):
		return parts[1]
	}
	return strings.Join(parts, ".")
}

// tableKey is the authority's key of a table name: bindTable in lower case.
func (c *Crypt) tableKey(table string) string {
	return strings.ToLower(c.bindTable(table))
}

// splitColumn splits a column reference ("ssn", `"patients"."SSN"`) into
// the table it names ("" when unqualified) and the column.
func splitColumn(name string) (table, column string) {
	parts := splitName(name)
	if len(parts) == 1 {
		return "", parts[0]
	}
	return strings.Join(parts[:len(parts)-1], "."), parts[len(parts)-1]
}
