package gormcrypt

import (
	"fmt"
	"reflect"

	"github.com/keyward/keyward/cipher"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// beforeQuery runs before GORM's query callback: it rewrites conditions on
// encrypted fields into blind index lookups, makes an explicit selection
// include the primary key that encrypted fields are bound to, and prepares
// the check of blind index matches. GORM's own callback then builds the
// SQL (through the statement guard), runs it and scans the rows.
func (c *Crypt) beforeQuery(db *gorm.DB) {
	st := c.attach(db, "query")
	if db.Error != nil {
		return
	}
	info := c.info(db)
	if db.Error != nil {
		return
	}
	if info != nil && st.prepareQuery(info) {
		st.filter = st.startFilter(info)
	}
}

// afterQuery runs after GORM's query callback (and before preloading): it
// drops blind index collisions and decrypts what GORM scanned without the
// serializer (Pluck, maps), or refuses it.
func (c *Crypt) afterQuery(db *gorm.DB) {
	st := stateFrom(db.Statement.Context)
	if st == nil || st.stmt != db.Statement {
		return
	}
	if f := st.filter; f != nil {
		st.filter = nil
		f.finish(st)
	}
	if db.Error == nil && !db.DryRun {
		_ = db.AddError(st.decryptResults())
	}
}

// filter is the state of a query whose blind index conditions may match
// colliding rows: it runs without LIMIT and OFFSET (and into a slice for a
// single-row destination), drops the collisions, then applies them.
type filter struct {
	limit  *clause.Clause
	single reflect.Value // the caller's struct for First, Take, Last
	dest   any
}

func (st *state) startFilter(info *schemaInfo) *filter {
	stmt := st.stmt
	if len(info.fields) == 0 || len(st.filters) == 0 || !st.filterable() {
		return nil
	}
	f := &filter{}
	if cl, ok := stmt.Clauses["LIMIT"]; ok {
		f.limit = &cl
		delete(stmt.Clauses, "LIMIT")
	}
	if rv := reflect.Indirect(stmt.ReflectValue); rv.Kind() == reflect.Struct {
		if rv.Type() == stmt.Schema.ModelType {
			// GORM makes a non-zero primary key of a model destination a
			// condition; it keeps being one for the slice put in its place.
			var conds []clause.Expression
			for _, pf := range stmt.Schema.PrimaryFields {
				if v, zero := pf.ValueOf(stmt.Context, rv); !zero {
					conds = append(conds, clause.Eq{Column: clause.Column{Table: stmt.Table, Name: pf.DBName}, Value: v})
				}
			}
			if len(conds) > 0 {
				stmt.AddClause(clause.Where{Exprs: conds})
			}
		}
		f.single, f.dest = rv, stmt.Dest
		sl := reflect.New(reflect.SliceOf(rv.Type()))
		stmt.Dest, stmt.ReflectValue = sl.Interface(), sl.Elem()
	}
	return f
}

// filterable reports whether the destination holds rows of the model that
// a blind index condition can be checked on.
func (st *state) filterable() bool {
	stmt := st.stmt
	t := stmt.ReflectValue.Type()
	for t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != stmt.Schema.ModelType {
		return false
	}
	for _, e := range st.filters {
		if e.fi != nil && e.fi.field.Schema == stmt.Schema && st.readField(e.fi) {
			return true
		}
	}
	return false
}

func (f *filter) restore(st *state) {
	stmt := st.stmt
	if f.limit != nil {
		stmt.Clauses["LIMIT"] = *f.limit
	}
	if f.single.IsValid() {
		stmt.Dest, stmt.ReflectValue = f.dest, f.single
	}
}

func (f *filter) finish(st *state) {
	stmt := st.stmt
	rv := stmt.ReflectValue
	if stmt.DB.Error == nil && rv.Kind() == reflect.Slice {
		st.dropCollisions(rv)
		if f.limit != nil {
			if l, ok := f.limit.Expression.(clause.Limit); ok {
				off := min(max(l.Offset, 0), rv.Len())
				end := rv.Len()
				if l.Limit != nil && *l.Limit >= 0 {
					end = min(end, off+*l.Limit)
				}
				for i := off; i < end; i++ {
					rv.Index(i - off).Set(rv.Index(i))
				}
				rv.SetLen(end - off)
			}
		}
		stmt.DB.RowsAffected = int64(rv.Len())
		if stmt.Result != nil {
			stmt.Result.RowsAffected = stmt.DB.RowsAffected
		}
	}
	f.restore(st)
	if f.single.IsValid() && stmt.DB.Error == nil {
		if rv.Len() > 0 {
			f.single.Set(rv.Index(0))
			stmt.DB.RowsAffected = 1
		} else {
			stmt.DB.RowsAffected = 0
			if stmt.RaiseErrorOnNotFound {
				_ = stmt.AddError(gorm.ErrRecordNotFound)
			}
		}
	}
}

// prepareQuery rewrites conditions and makes an explicit selection include
// the primary key that encrypted fields are bound to. It reports false
// after recording an error on the statement.
func (st *state) prepareQuery(info *schemaInfo) bool {
	stmt := st.stmt
	if !st.rewriteWhere(info) {
		return false
	}
	if len(info.fields) == 0 || !info.pkBound || len(stmt.Selects) == 0 {
		return true
	}
	needKey, hasStar := false, false
	have := map[string]bool{}
	for _, sel := range stmt.Selects {
		for _, s := range splitList(sel) {
			if s == "*" {
				hasStar = true
			}
			if fi := info.lookup(stmt.Schema, s); fi != nil {
				needKey = true
			}
			if f := stmt.Schema.LookUpField(s); f != nil {
				have[f.DBName] = true
			}
		}
	}
	if needKey && !hasStar {
		for _, pf := range stmt.Schema.PrimaryFields {
			if !have[pf.DBName] {
				stmt.Selects = append(stmt.Selects, pf.DBName)
			}
		}
	}
	return true
}

// decryptResults decrypts what GORM scanned without the serializer (maps,
// Pluck and scans into strings) and refuses tokens it cannot attribute to
// an encrypted column of the statement's table.
func (st *state) decryptResults() error {
	stmt := st.stmt
	tc := st.c.auth.table(st.c.tableKey(stmt.Table))
	switch dest := stmt.Dest.(type) {
	case map[string]any:
		return st.decryptMap(tc, dest)
	case *map[string]any:
		return st.decryptMap(tc, *dest)
	case *[]map[string]any:
		for _, m := range *dest {
			if err := st.decryptMap(tc, m); err != nil {
				return err
			}
		}
		return nil
	case []map[string]any:
		for _, m := range dest {
			if err := st.decryptMap(tc, m); err != nil {
				return err
			}
		}
		return nil
	}
	rv := reflect.Indirect(stmt.ReflectValue)
	if !rv.IsValid() {
		return nil
	}
	if base := scalarType(rv.Type()); base != nil && (base.Kind() == reflect.String || isBytes(base)) {
		return st.decryptPluck(tc, rv)
	}
	return nil
}

// scalarType returns the element type of a destination of single values
// (T, *T, []T, []*T), without pointers, or nil for structs and maps.
func scalarType(t reflect.Type) reflect.Type {
	if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
		if isBytes(t) {
			return t
		}
		t = t.Elem()
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map, reflect.Interface:
		return nil
	}
	return t
}

// selectedColumn returns the one column a Pluck-like query selects.
func selectedColumn(stmt *gorm.Statement) string {
	if c, ok := stmt.Clauses["SELECT"]; ok {
		if s, ok := c.Expression.(clause.Select); ok && len(s.Columns) == 1 {
			return s.Columns[0].Name
		}
	}
	if len(stmt.Selects) == 1 {
		return stmt.Selects[0]
	}
	return ""
}

// decryptPluck decrypts the values of a Pluck (or a scan into strings) of
// an encrypted column, and refuses tokens it cannot attribute.
func (st *state) decryptPluck(tc *tableCols, rv reflect.Value) error {
	stmt := st.stmt
	var fi *fieldInfo
	if name := selectedColumn(stmt); name != "" {
		_, col := splitColumn(name)
		if f, isIndex := tc.column(col); !isIndex {
			fi = f
		}
	}
	each := func(f func(v reflect.Value) error) error {
		if (rv.Kind() == reflect.Slice || rv.Kind() == reflect.Array) && !isBytes(rv.Type()) {
			for i := range rv.Len() {
				if err := f(reflect.Indirect(rv.Index(i))); err != nil {
					return err
				}
			}
			return nil
		}
		return f(reflect.Indirect(rv))
	}
	if fi == nil {
		return each(func(v reflect.Value) error { return refuseToken(v, stmt) })
	}
	if fi.pk != nil {
		return fmt.Errorf("%w: Pluck of %s.%s, which is bound to its row's primary key: use Select(...).Find", ErrUnsupported, fi.table, fi.column)
	}
	if err := fi.needModel(); err != nil {
		return err
	}
	ctx := stmt.Context
	return each(func(v reflect.Value) error {
		if !v.IsValid() || !v.CanSet() {
			return nil
		}
		var tok string
		if v.Kind() == reflect.String {
			tok = v.String()
		} else {
			tok = string(v.Bytes())
		}
		pt, err := st.open(ctx, fi, tok, reflect.Value{})
		if err != nil {
			if _, denied := err.(*deniedError); denied && fi.redact != nil {
				pt = *fi.redact
			} else {
				return err
			}
		}
		if v.Kind() == reflect.String {
			v.SetString(pt)
		} else {
			v.SetBytes([]byte(pt))
		}
		return nil
	})
}

// refuseToken fails a query that returned a keyward token where gormcrypt
// cannot tell which field it belongs to.
func refuseToken(v reflect.Value, stmt *gorm.Statement) error {
	if !v.IsValid() {
		return nil
	}
	var s string
	switch {
	case v.Kind() == reflect.String:
		s = v.String()
	case isBytes(v.Type()):
		s = string(v.Bytes())
	default:
		return nil
	}
	if looksLikeToken(s) {
		return fmt.Errorf("%w: the query returned keyward tokens from %s that no encrypted field maps: query through the model (db.Model(&T{}))", ErrUnsupported, tableName(stmt))
	}
	return nil
}

func looksLikeToken(s string) bool {
	if !cipher.IsText(s) {
		return false
	}
	_, err := cipher.ParseHeader(s)
	return err == nil
}

func tableName(stmt *gorm.Statement) string {
	if stmt.Table != "" {
		return stmt.Table
	}
	return "the result"
}

// decryptMap decrypts the encrypted columns of a row scanned into a map
// (Find(&[]map[string]any{})), with the binding of the field that declared
// the column (the primary key, when bound, from the map), and refuses
// tokens in columns that are not known to be encrypted.
func (st *state) decryptMap(tc *tableCols, m map[string]any) error {
	stmt := st.stmt
	ctx := stmt.Context
	var row reflect.Value
	for k, v := range m {
		fi, isIndex := tc.column(k)
		if fi == nil || isIndex {
			if v != nil {
				if err := refuseToken(reflect.ValueOf(v), stmt); err != nil {
					return err
				}
			}
			continue
		}
		if err := fi.needModel(); err != nil {
			return err
		}
		var tok string
		switch x := v.(type) {
		case nil:
			continue
		case string:
			tok = x
		case []byte:
			tok = string(x)
		case *string:
			if x == nil {
				continue
			}
			tok = *x
		default:
			return fmt.Errorf("%w: %s.%s holds a %T, not a token", ErrNotEncrypted, fi.table, fi.column, v)
		}
		if fi.pk != nil && (!row.IsValid() || row.Type() != fi.field.Schema.ModelType) {
			row = reflect.New(fi.field.Schema.ModelType).Elem()
			if err := st.keyInto(fi.field.Schema, row, m, true); err != nil {
				return err
			}
		}
		pt, err := st.open(ctx, fi, tok, row)
		if err != nil {
			if red, ok := st.redactFor(err, fi); ok {
				m[k] = red.Interface()
				continue
			}
			return err
		}
		dv, err := fi.decode(pt)
		if err != nil {
			return err
		}
		m[k] = reflect.Indirect(dv).Interface()
	}
	return nil
}

// dropCollisions removes rows from the slice rv that a blind index condition matched but
// whose decrypted value differs (an index collision). Fields that were not
// read or whose decryption was refused are not checked.
func (st *state) dropCollisions(rv reflect.Value) {
	stmt := st.stmt
	ctx := stmt.Context
	var checks []*blindExpr
	for _, e := range st.filters {
		if e.fi == nil || e.fi.field.Schema != stmt.Schema || !st.readField(e.fi) {
			continue
		}
		checks = append(checks, e)
	}
	if len(checks) == 0 {
		return
	}
	keep := func(row reflect.Value) bool {
		row = reflect.Indirect(row)
		if !row.IsValid() {
			return true
		}
		for _, e := range checks {
			pt, null, err := e.fi.plaintext(e.fi.field.ReflectValueOf(ctx, row).Interface())
			if err != nil || null || !e.matches(pt) {
				return false
			}
		}
		return true
	}
	n := 0
	for i := range rv.Len() {
		if keep(rv.Index(i)) {
			if n != i {
				rv.Index(n).Set(rv.Index(i))
			}
			n++
		}
	}
	rv.SetLen(n)
}

// readField reports whether the query read fi's column and decrypted it.
func (st *state) readField(fi *fieldInfo) bool {
	stmt := st.stmt
	if len(stmt.Selects) > 0 {
		found := false
		for _, s := range stmt.Selects {
			if s == "*" || s == fi.column || s == fi.field.Name {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	for _, o := range stmt.Omits {
		if o == fi.column || o == fi.field.Name {
			return false
		}
	}
	st.mu.Lock()
	err := st.authz[authKey{fi, "decrypt"}]
	st.mu.Unlock()
	return err == nil
}
