package gormcrypt

import (
	"fmt"
	"reflect"
	"strings"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"
)

// beforeCreate runs after the BeforeCreate hooks (which may assign the
// primary key) and before GORM builds the INSERT: it fills blind indexes,
// encrypts map values, and refuses upserts that would bypass encryption.
func (c *Crypt) beforeCreate(db *gorm.DB) {
	st := c.attach(db, "create")
	if db.Error != nil {
		return
	}
	info := c.info(db)
	if info == nil || len(info.fields) == 0 {
		return
	}
	stmt := db.Statement
	if err := checkOnConflict(stmt, info); err != nil {
		_ = db.AddError(err)
		return
	}
	// Maps are replaced by copies holding serializer values; what GORM
	// adds to the copies (a key the database assigned) is copied back when
	// the statement ends (restoreMaps).
	switch dest := stmt.Dest.(type) {
	case map[string]any:
		m, err := st.encryptMap(info, dest, true)
		if db.AddError(err) == nil {
			stmt.Dest, st.maps = m, []mapCopy{{dest, m}}
		}
	case *map[string]any:
		m, err := st.encryptMap(info, *dest, true)
		if db.AddError(err) == nil {
			stmt.Dest, st.maps = &m, []mapCopy{{*dest, m}}
		}
	case []map[string]any:
		ms, err := st.encryptMaps(info, dest)
		if db.AddError(err) == nil {
			stmt.Dest, st.maps = ms, mapCopies(dest, ms)
		}
	case *[]map[string]any:
		ms, err := st.encryptMaps(info, *dest)
		if db.AddError(err) == nil {
			stmt.Dest, st.maps = &ms, mapCopies(*dest, ms)
		}
	default:
		_ = db.AddError(st.indexRows(info, stmt.ReflectValue))
	}
}

// mapCopy is a caller's map and the copy gormcrypt gave GORM in its place.
type mapCopy struct{ orig, cp map[string]any }

func mapCopies(orig, cp []map[string]any) []mapCopy {
	out := make([]mapCopy, len(orig))
	for i := range orig {
		out[i] = mapCopy{orig[i], cp[i]}
	}
	return out
}

// restoreMaps copies into the caller's maps the entries GORM added to their
// copies (the primary key the database assigned), as GORM does for maps it
// inserts itself.
func (st *state) restoreMaps() {
	for _, mc := range st.maps {
		for k, v := range mc.cp {
			if _, had := mc.orig[k]; !had && ourWrapperField(v) == nil {
				if _, isBytes := v.([]byte); !isBytes {
					mc.orig[k] = v
				}
			}
		}
	}
	st.maps = nil
}

// selected returns whether an insert or update writes fi's column, and adds
// the blind index column of each written indexed field to an explicit
// selection.
func (st *state) selected(info *schemaInfo, create bool) func(*fieldInfo) bool {
	stmt := st.stmt
	sel, restricted := stmt.SelectAndOmitColumns(create, !create)
	include := func(fi *fieldInfo) bool {
		if v, ok := sel[fi.column]; ok {
			return v
		}
		return !restricted
	}
	if restricted {
		for _, fi := range info.fields {
			if fi.blind != nil && include(fi) {
				if v, ok := sel[fi.blind.index.DBName]; !ok || !v {
					stmt.Selects = append(stmt.Selects, fi.blind.index.DBName)
				}
			}
		}
	}
	return include
}

// indexRows fills the blind index fields of every row in rv (a struct or a
// slice or array of structs or pointers) for the fields the insert writes.
func (st *state) indexRows(info *schemaInfo, rv reflect.Value) error {
	if !hasBlind(info) {
		return nil
	}
	include := st.selected(info, true)
	rv = reflect.Indirect(rv)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		for i := range rv.Len() {
			if err := st.indexRow(info, rv.Index(i), include); err != nil {
				return err
			}
		}
		return nil
	case reflect.Struct:
		return st.indexRow(info, rv, include)
	}
	return nil
}

func hasBlind(info *schemaInfo) bool {
	for _, fi := range info.fields {
		if fi.blind != nil {
			return true
		}
	}
	return false
}

// indexRow fills the blind index fields of one row; only those of fields
// for which include returns true, when include is not nil.
func (st *state) indexRow(info *schemaInfo, row reflect.Value, include func(*fieldInfo) bool) error {
	row = reflect.Indirect(row)
	if !row.IsValid() || row.Kind() != reflect.Struct {
		return nil
	}
	ctx := st.stmt.Context
	for _, fi := range info.fields {
		if fi.blind == nil || (include != nil && !include(fi)) {
			continue
		}
		target := fi.blind.index.ReflectValueOf(ctx, row)
		if !target.CanSet() {
			return fmt.Errorf("%w: %s.%s has a blind index, which gormcrypt sets in the row: pass a pointer", ErrUnsupported, fi.table, fi.column)
		}
		var (
			idx []byte
			err error
		)
		if fv := fi.field.ReflectValueOf(ctx, row); fi.kind == kindString && fv.Kind() == reflect.String {
			idx, err = st.indexText(fi, fv.String()) // no boxing of the string per row
		} else {
			idx, err = st.indexOf(fi, fv.Interface())
		}
		if err != nil {
			return err
		}
		target.SetBytes(idx)
	}
	return nil
}

// indexOf returns the blind index of a field value (nil for NULL).
func (st *state) indexOf(fi *fieldInfo, v any) ([]byte, error) {
	pt, null, err := fi.plaintext(v)
	if err != nil || null {
		return nil, err
	}
	return st.indexText(fi, pt)
}

// indexText returns the blind index of the plaintext pt of fi.
func (st *state) indexText(fi *fieldInfo, pt string) ([]byte, error) {
	k, err := st.blindKey(st.stmt.Context, fi)
	if err != nil {
		return nil, err
	}
	return fi.blind.compute(k, pt), nil
}

// checkOnConflict refuses upserts that would write a value GORM does not
// pass through the serializer (DoUpdates with literal values) or move a
// ciphertext bound to one primary key into a row with another (a conflict
// target other than the primary key). It adds the blind index column to
// DoUpdates that update its source column from the inserted row.
func checkOnConflict(stmt *gorm.Statement, info *schemaInfo) error {
	c, ok := stmt.Clauses["ON CONFLICT"]
	if !ok {
		return nil
	}
	oc, ok := c.Expression.(clause.OnConflict)
	if !ok || oc.DoNothing {
		return nil
	}
	updatesEncrypted := oc.UpdateAll
	set := map[string]bool{}
	for _, a := range oc.DoUpdates {
		set[a.Column.Name] = true
	}
	var extra []string
	updates := append(clause.Set(nil), oc.DoUpdates...)
	for i, a := range updates {
		fi := info.lookup(stmt.Schema, a.Column.Name)
		src := info.index(stmt.Schema, a.Column.Name)
		if fi == nil && src == nil {
			continue
		}
		col, isCol := a.Value.(clause.Column)
		if !isCol || !strings.EqualFold(col.Table, "excluded") || col.Name != a.Column.Name {
			return fmt.Errorf("%w: ON CONFLICT assigns a value to %s.%s that GORM does not encrypt; update it from the inserted row (clause.AssignmentColumns)", ErrUnsupported, info.tableOf(stmt), a.Column.Name)
		}
		// The column as the table names it, in whatever spelling it was
		// given.
		var name string
		if fi != nil {
			name = fi.column
		} else {
			name = src.blind.index.DBName
		}
		updates[i] = clause.Assignment{Column: clause.Column{Name: name}, Value: clause.Column{Table: col.Table, Name: name}}
		if fi != nil {
			updatesEncrypted = true
			if fi.blind != nil && !set[fi.blind.index.DBName] {
				extra = append(extra, fi.blind.index.DBName)
				set[fi.blind.index.DBName] = true
			}
		}
	}
	if updatesEncrypted && info.pkBound && !targetIsPK(oc.Columns, stmt.Schema) {
		return fmt.Errorf("%w: ON CONFLICT on columns other than the primary key would move values bound to one primary key into another row", ErrUnsupported)
	}
	oc.DoUpdates = append(updates, clause.AssignmentColumns(extra)...)
	c.Expression = oc
	stmt.Clauses["ON CONFLICT"] = c
	return nil
}

func (info *schemaInfo) tableOf(stmt *gorm.Statement) string {
	if stmt.Schema != nil {
		return stmt.Schema.Table
	}
	return stmt.Table
}

func targetIsPK(cols []clause.Column, s *schema.Schema) bool {
	if len(cols) == 0 {
		return true // GORM uses the primary key
	}
	if len(cols) != len(s.PrimaryFields) {
		return false
	}
	for _, c := range cols {
		f := s.LookUpField(c.Name)
		if f == nil || !f.PrimaryKey {
			return false
		}
	}
	return true
}

// encryptMaps is encryptMap for each map of a batch insert.
func (st *state) encryptMaps(info *schemaInfo, ms []map[string]any) ([]map[string]any, error) {
	out := make([]map[string]any, len(ms))
	for i, m := range ms {
		var err error
		if out[i], err = st.encryptMap(info, m, true); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// encryptMap returns a copy of m (the values of Create or Updates with a
// map, and of Update(column, value)) in which every encrypted field's value
// is a GORM serializer value under the field's column name: GORM then
// encrypts it when it writes, and assigns the plaintext to the model. A key
// may name the field or the column in any spelling the database accepts
// (letter case, quotes, a table prefix). Blind index columns are computed
// from their fields, never taken from the map. For an insert the primary key
// comes from the map; for an update from the model.
func (st *state) encryptMap(info *schemaInfo, m map[string]any, insert bool) (map[string]any, error) {
	stmt := st.stmt
	ctx := stmt.Context
	s := stmt.Schema
	var row reflect.Value // a scratch row holding the primary key and the value
	out := make(map[string]any, len(m)+2)
	from := map[*fieldInfo]string{}
	for k, v := range m {
		fi := info.lookup(s, k)
		if fi == nil {
			if info.index(s, k) == nil {
				out[k] = v
			} // else computed from the source field below
			continue
		}
		if prev, dup := from[fi]; dup {
			return nil, fmt.Errorf("%w: the values name encrypted column %s.%s twice (%q and %q)", ErrUnsupported, fi.table, fi.column, prev, k)
		}
		from[fi] = k
		v = unwrapValue(ctx, v)
		switch v.(type) {
		case clause.Expression, *gorm.DB:
			return nil, fmt.Errorf("%w: an SQL expression assigned to encrypted column %s.%s", ErrUnsupported, fi.table, fi.column)
		}
		if !row.IsValid() {
			row = reflect.New(s.ModelType).Elem()
			if err := st.keyInto(s, row, m, insert); err != nil {
				return nil, err
			}
		}
		if v == nil {
			out[fi.column] = nil
		} else {
			if err := fi.field.Set(ctx, row, v); err != nil {
				return nil, fmt.Errorf("gormcrypt: %s.%s: %w", fi.table, fi.column, err)
			}
			out[fi.column], _ = fi.field.ValueOf(ctx, row)
		}
		if fi.blind != nil {
			var idx []byte
			if v != nil {
				var err error
				if idx, err = st.indexOf(fi, fi.field.ReflectValueOf(ctx, row).Interface()); err != nil {
					return nil, err
				}
			}
			delete(out, fi.blind.index.Name)
			if idx == nil {
				out[fi.blind.index.DBName] = nil
			} else {
				out[fi.blind.index.DBName] = idx
			}
		}
	}
	return out, nil
}

// keyInto copies the primary key of model s into the scratch row: from
// the map m when fromMap (an insert, a row read into a map), else from the
// statement's model (an update).
func (st *state) keyInto(s *schema.Schema, row reflect.Value, m map[string]any, fromMap bool) error {
	stmt := st.stmt
	ctx := stmt.Context
	for _, pf := range s.PrimaryFields {
		var v any
		if fromMap {
			v = mapKeyValue(m, pf)
		} else {
			model := reflect.Indirect(stmt.ReflectValue)
			if model.Kind() == reflect.Struct && model.Type() == s.ModelType {
				var zero bool
				if v, zero = pf.ValueOf(ctx, model); zero {
					v = nil
				}
			}
		}
		if v == nil {
			continue // appendAAD reports a missing key for bound fields
		}
		if err := pf.Set(ctx, row, v); err != nil {
			return fmt.Errorf("gormcrypt: primary key %s: %w", pf.Name, err)
		}
	}
	return nil
}

// mapKeyValue returns the value m holds for field f, under its column or
// field name in any spelling.
func mapKeyValue(m map[string]any, f *schema.Field) any {
	if v, ok := m[f.DBName]; ok {
		return v
	}
	if v, ok := m[f.Name]; ok {
		return v
	}
	for k, v := range m {
		_, col := splitColumn(k)
		if strings.EqualFold(col, f.DBName) || strings.EqualFold(col, f.Name) {
			return v
		}
	}
	return nil
}
