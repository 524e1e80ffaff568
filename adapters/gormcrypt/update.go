package gormcrypt

import (
	"context"
	"fmt"
	"reflect"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"
)

// beforeUpdate runs before GORM builds the UPDATE: it rewrites conditions
// on encrypted fields, encrypts map values, fills blind indexes and refuses
// SET clauses that bypass encryption.
func (c *Crypt) beforeUpdate(db *gorm.DB) {
	st := c.attach(db, "update")
	if db.Error != nil {
		return
	}
	info := c.info(db)
	if info == nil {
		return
	}
	stmt := db.Statement
	if !st.rewriteWhere(info) || len(info.fields) == 0 {
		return
	}
	if sc, ok := stmt.Clauses["SET"]; ok {
		if set, ok := sc.Expression.(clause.Set); ok {
			for _, a := range set {
				if info.lookup(stmt.Schema, a.Column.Name) != nil || info.indexes[a.Column.Name] != nil {
					_ = db.AddError(fmt.Errorf("%w: a SET clause assigns encrypted column %s.%s; use Update or Updates", ErrUnsupported, stmt.Schema.Table, a.Column.Name))
					return
				}
			}
		}
	}
	if err := st.checkUpdateKey(info); err != nil {
		_ = db.AddError(err)
		return
	}
	switch dest := stmt.Dest.(type) {
	case map[string]any:
		m, err := st.encryptMap(info, dest, false)
		if db.AddError(err) == nil {
			stmt.Dest = m
		}
	case *map[string]any:
		m, err := st.encryptMap(info, *dest, false)
		if db.AddError(err) == nil {
			stmt.Dest = m
		}
	default:
		_ = db.AddError(st.prepareUpdateStruct(info))
	}
}

// prepareUpdateStruct fills the blind indexes of a struct update (Save,
// Updates(struct)) for the encrypted fields it changes, on an addressable
// copy when the caller passed a value.
func (st *state) prepareUpdateStruct(info *schemaInfo) error {
	stmt := st.stmt
	uv := reflect.ValueOf(stmt.Dest)
	for uv.Kind() == reflect.Pointer {
		uv = uv.Elem()
	}
	if uv.Kind() != reflect.Struct {
		return nil
	}
	uinfo := info
	if uv.Type() != stmt.Schema.ModelType {
		us := &gorm.Statement{DB: stmt.DB, Context: stmt.Context}
		if err := us.Parse(stmt.Dest); err != nil {
			return nil // GORM reports it
		}
		uinfo = st.c.schemaInfo(us.Schema)
		if uinfo.err != nil {
			return fmt.Errorf("gormcrypt: %w", uinfo.err)
		}
		if len(uinfo.fields) > 0 && us.Schema.Table != stmt.Schema.Table {
			return fmt.Errorf("%w: update values of type %s encrypt for table %s, not %s (give it TableName)", ErrUnsupported, us.Schema.Name, us.Schema.Table, stmt.Schema.Table)
		}
		for _, f := range us.Schema.Fields {
			if fi := info.byColumn[f.DBName]; fi != nil && !isOurs(f) {
				return fmt.Errorf("%w: field %s.%s updates encrypted column %s.%s without serializer:keyward", ErrUnsupported, us.Schema.Name, f.Name, fi.table, fi.column)
			}
		}
	}
	if !hasBlind(uinfo) {
		return nil
	}
	ctx := stmt.Context
	written := st.selected(uinfo, false)
	sel, _ := stmt.SelectAndOmitColumns(false, true)
	included := func(fi *fieldInfo) bool {
		if _, explicit := sel[fi.column]; explicit {
			return written(fi)
		}
		return written(fi) && !fi.field.ReflectValueOf(ctx, uv).IsZero()
	}
	if !uv.CanAddr() {
		cp := reflect.New(uv.Type())
		cp.Elem().Set(uv)
		uv = cp.Elem()
		stmt.Dest = cp.Interface()
	}
	return st.indexRow(uinfo, uv, included)
}

// beforeDelete rewrites conditions on encrypted fields.
func (c *Crypt) beforeDelete(db *gorm.DB) {
	st := c.attach(db, "delete")
	if db.Error == nil {
		if info := c.info(db); info != nil {
			st.rewriteWhere(info)
		}
	}
}

// beforeRow rewrites conditions on encrypted fields of Row, Rows and
// Scan.
func (c *Crypt) beforeRow(db *gorm.DB) {
	st := c.attach(db, "row")
	if db.Error == nil {
		if info := c.info(db); info != nil {
			st.rewriteWhere(info)
		}
	}
}

// beforeRaw attaches the state: Raw(...).Scan(&model) decrypts through it.
func (c *Crypt) beforeRaw(db *gorm.DB) { c.attach(db, "raw") }

// checkUpdateKey refuses an update of a model whose values are bound to
// the primary key that would store such values under another row's key, or
// change a row's key: the row's values would never decrypt again. The row
// an update writes is the one the model's key names (GORM's condition); a
// struct of changes must name the same key or none.
func (st *state) checkUpdateKey(info *schemaInfo) error {
	if !info.pkBound || len(info.fields) == 0 {
		return nil
	}
	stmt := st.stmt
	ctx := stmt.Context
	s := stmt.Schema
	var modelKey []string // nil: the model names no row
	if model := reflect.Indirect(stmt.ReflectValue); model.Kind() == reflect.Struct && model.Type() == s.ModelType {
		modelKey = keyTexts(ctx, s, model)
	}
	differs := func(pf *schema.Field, i int, v any) bool {
		t, ok := keyString(v)
		return !ok || modelKey == nil || modelKey[i] != t
	}
	switch dest := stmt.Dest.(type) {
	case map[string]any, *map[string]any:
		m, _ := dest.(map[string]any)
		if p, ok := dest.(*map[string]any); ok && p != nil {
			m = *p
		}
		for i, pf := range s.PrimaryFields {
			if v := mapKeyValue(m, pf); v != nil && differs(pf, i, unwrapValue(ctx, v)) {
				return fmt.Errorf("%w: the update changes primary key %s.%s, to which the row's encrypted values are bound", ErrPrimaryKey, s.Table, pf.DBName)
			}
		}
		return nil
	}
	uv := reflect.ValueOf(stmt.Dest)
	same := uv.Kind() == reflect.Pointer && reflect.ValueOf(stmt.Model).Kind() == reflect.Pointer &&
		uv.Pointer() == reflect.ValueOf(stmt.Model).Pointer()
	uv = reflect.Indirect(uv)
	if same || uv.Kind() != reflect.Struct || uv.Type() != s.ModelType {
		return nil
	}
	for i, pf := range s.PrimaryFields {
		if v, zero := pf.ValueOf(ctx, uv); !zero && differs(pf, i, v) {
			return fmt.Errorf("%w: the values are bound to primary key %v of %s but the update writes the row the model names: give both the same key", ErrPrimaryKey, keyTexts(ctx, s, uv), s.Table)
		}
	}
	return nil
}

// keyTexts returns the primary key of row as text, or nil if a part is
// zero.
func keyTexts(ctx context.Context, s *schema.Schema, row reflect.Value) []string {
	out := make([]string, len(s.PrimaryFields))
	for i, pf := range s.PrimaryFields {
		v, zero := pf.ValueOf(ctx, row)
		if zero {
			return nil
		}
		t, ok := keyString(v)
		if !ok {
			return nil
		}
		out[i] = t
	}
	return out
}
