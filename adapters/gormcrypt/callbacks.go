package gormcrypt

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/keyward/keyward/cipher"
	"gorm.io/gorm"
	"gorm.io/gorm/callbacks"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"
)

// info returns the schema information of the statement's model, reporting
// an invalid tag as the statement's error. It returns nil when the
// statement has no model.
func (c *Crypt) info(db *gorm.DB) *schemaInfo {
	if db.Statement.Schema == nil {
		return nil
	}
	info := c.schemaInfo(db.Statement.Schema)
	if info.err != nil {
		_ = db.AddError(fmt.Errorf("gormcrypt: %w", info.err))
		return nil
	}
	return info
}

// beforeCreate runs after the BeforeCreate hooks (which may assign the
// primary key) and before GORM builds the INSERT: it fills blind indexes,
// encrypts map values, and refuses upserts that would bypass encryption.
func (c *Crypt) beforeCreate(db *gorm.DB) {
	st := c.attach(db)
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
	switch dest := stmt.Dest.(type) {
	case map[string]any:
		m, err := st.encryptMap(info, dest, true)
		if db.AddError(err) == nil {
			stmt.Dest = m
		}
	case *map[string]any:
		m, err := st.encryptMap(info, *dest, true)
		if db.AddError(err) == nil {
			stmt.Dest = m
		}
	case []map[string]any:
		ms, err := st.encryptMaps(info, dest)
		if db.AddError(err) == nil {
			stmt.Dest = ms
		}
	case *[]map[string]any:
		ms, err := st.encryptMaps(info, *dest)
		if db.AddError(err) == nil {
			stmt.Dest = ms
		}
	default:
		_ = db.AddError(st.indexRows(info, stmt.ReflectValue))
	}
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
			return fmt.Errorf("gormcrypt: %s.%s: pass a pointer so that its blind index can be set", fi.table, fi.column)
		}
		idx, err := st.indexOf(fi, fi.field.ReflectValueOf(ctx, row).Interface())
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
	for _, a := range oc.DoUpdates {
		fi := info.lookup(stmt.Schema, a.Column.Name)
		src := info.indexes[a.Column.Name]
		if fi == nil && src == nil {
			continue
		}
		col, isCol := a.Value.(clause.Column)
		if !isCol || !strings.EqualFold(col.Table, "excluded") || col.Name != a.Column.Name {
			return fmt.Errorf("%w: ON CONFLICT assigns a value to %s.%s that GORM does not encrypt; update it from the inserted row (clause.AssignmentColumns)", ErrUnsupported, info.tableOf(stmt), a.Column.Name)
		}
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
	if len(extra) > 0 {
		oc.DoUpdates = append(append(clause.Set(nil), oc.DoUpdates...), clause.AssignmentColumns(extra)...)
		c.Expression = oc
		stmt.Clauses["ON CONFLICT"] = c
	}
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
// is a GORM serializer value: GORM then encrypts it when it writes, and
// assigns the plaintext to the model. Blind index columns are added. For an
// insert the primary key comes from the map; for an update from the model.
func (st *state) encryptMap(info *schemaInfo, m map[string]any, insert bool) (map[string]any, error) {
	stmt := st.stmt
	ctx := stmt.Context
	s := stmt.Schema
	var row reflect.Value // a scratch row holding the primary key and the value
	out := make(map[string]any, len(m)+2)
	for k, v := range m {
		out[k] = v
	}
	for k, v := range m {
		fi := info.lookup(s, k)
		if fi == nil {
			if src := info.indexes[columnOf(s, k)]; src != nil {
				delete(out, k) // computed from the source field below
			}
			continue
		}
		v = unwrapValue(ctx, v)
		switch v.(type) {
		case clause.Expression, *gorm.DB:
			return nil, fmt.Errorf("%w: an SQL expression assigned to encrypted column %s.%s", ErrUnsupported, fi.table, fi.column)
		}
		if !row.IsValid() {
			row = reflect.New(s.ModelType).Elem()
			if err := st.keyInto(row, m, insert); err != nil {
				return nil, err
			}
		}
		if v == nil {
			out[k] = nil
		} else {
			if err := fi.field.Set(ctx, row, v); err != nil {
				return nil, fmt.Errorf("gormcrypt: %s.%s: %w", fi.table, fi.column, err)
			}
			out[k], _ = fi.field.ValueOf(ctx, row)
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

func columnOf(s *schema.Schema, name string) string {
	if f := s.LookUpField(name); f != nil {
		return f.DBName
	}
	return name
}

// keyInto copies the primary key into the scratch row: from the map for an
// insert, from the statement's model for an update.
func (st *state) keyInto(row reflect.Value, m map[string]any, insert bool) error {
	stmt := st.stmt
	ctx := stmt.Context
	for _, pf := range stmt.Schema.PrimaryFields {
		var v any
		if insert {
			var ok bool
			if v, ok = m[pf.DBName]; !ok {
				v = m[pf.Name]
			}
		} else {
			model := reflect.Indirect(stmt.ReflectValue)
			if model.Kind() == reflect.Struct && model.Type() == stmt.Schema.ModelType {
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

// beforeUpdate runs before GORM builds the UPDATE: it rewrites conditions
// on encrypted fields, encrypts map values, fills blind indexes and refuses
// SET clauses that bypass encryption.
func (c *Crypt) beforeUpdate(db *gorm.DB) {
	st := c.attach(db)
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
	st := c.attach(db)
	if db.Error == nil {
		if info := c.info(db); info != nil {
			st.rewriteWhere(info)
		}
	}
}

// beforeRow rewrites conditions on encrypted fields of Row, Rows and
// Scan.
func (c *Crypt) beforeRow(db *gorm.DB) {
	st := c.attach(db)
	if db.Error == nil {
		if info := c.info(db); info != nil {
			st.rewriteWhere(info)
		}
	}
}

// beforeRaw attaches the state: Raw(...).Scan(&model) decrypts through it.
func (c *Crypt) beforeRaw(db *gorm.DB) { c.attach(db) }

// rewriteWhere replaces equality conditions on encrypted fields with blind
// index conditions and refuses other conditions on them. It reports false
// after recording an error on the statement.
func (st *state) rewriteWhere(info *schemaInfo) bool {
	stmt := st.stmt
	c, ok := stmt.Clauses["WHERE"]
	if !ok {
		return true
	}
	w, ok := c.Expression.(clause.Where)
	if !ok {
		return true
	}
	exprs, changed, err := st.rewriteExprs(info, w.Exprs, false)
	if err != nil {
		_ = stmt.AddError(err)
		return false
	}
	if changed {
		st.savedWhere = &savedClause{present: true, value: c}
		c.Expression = clause.Where{Exprs: exprs}
		stmt.Clauses["WHERE"] = c
	}
	return true
}

func (st *state) rewriteExprs(info *schemaInfo, exprs []clause.Expression, negated bool) ([]clause.Expression, bool, error) {
	var out []clause.Expression
	for i, e := range exprs {
		ne, changed, err := st.rewriteExpr(info, e, negated)
		if err != nil {
			return nil, false, err
		}
		if changed && out == nil {
			out = make([]clause.Expression, len(exprs))
			copy(out, exprs[:i])
		}
		if out != nil {
			out[i] = ne
		}
	}
	if out == nil {
		return exprs, false, nil
	}
	return out, true, nil
}

func (st *state) rewriteExpr(info *schemaInfo, e clause.Expression, negated bool) (clause.Expression, bool, error) {
	switch x := e.(type) {
	case *blindExpr:
		if negated {
			return nil, false, fmt.Errorf("%w: negated blind index condition on %q", ErrNotSearchable, x.name)
		}
		ne := &blindExpr{name: x.name, values: append([]any(nil), x.values...)}
		st.resolveBlind(ne, info)
		return ne, true, ne.err
	case clause.Eq:
		fi := st.encryptedColumn(info, x.Column)
		if fi == nil || x.Value == nil {
			return e, false, nil
		}
		if fi.blind == nil || negated {
			return nil, false, notSearchable(fi, "equality")
		}
		ne := &blindExpr{name: fi.column, values: []any{x.Value}}
		st.resolveBlind(ne, info)
		return ne, true, ne.err
	case clause.IN:
		fi := st.encryptedColumn(info, x.Column)
		if fi == nil || len(x.Values) == 0 {
			return e, false, nil
		}
		if fi.blind == nil || negated {
			return nil, false, notSearchable(fi, "IN")
		}
		ne := &blindExpr{name: fi.column, values: append([]any(nil), x.Values...)}
		st.resolveBlind(ne, info)
		return ne, true, ne.err
	case clause.Neq:
		if fi := st.encryptedColumn(info, x.Column); fi != nil && x.Value != nil {
			return nil, false, notSearchable(fi, "inequality")
		}
	case clause.Gt:
		return e, false, st.refuse(info, x.Column, "ordering")
	case clause.Gte:
		return e, false, st.refuse(info, x.Column, "ordering")
	case clause.Lt:
		return e, false, st.refuse(info, x.Column, "ordering")
	case clause.Lte:
		return e, false, st.refuse(info, x.Column, "ordering")
	case clause.Like:
		return e, false, st.refuse(info, x.Column, "LIKE")
	case clause.AndConditions:
		exprs, changed, err := st.rewriteExprs(info, x.Exprs, negated)
		return clause.AndConditions{Exprs: exprs}, changed, err
	case clause.OrConditions:
		exprs, changed, err := st.rewriteExprs(info, x.Exprs, negated)
		return clause.OrConditions{Exprs: exprs}, changed, err
	case clause.NotConditions:
		exprs, changed, err := st.rewriteExprs(info, x.Exprs, !negated)
		return clause.NotConditions{Exprs: exprs}, changed, err
	}
	return e, false, nil
}

func (st *state) refuse(info *schemaInfo, col any, what string) error {
	if fi := st.encryptedColumn(info, col); fi != nil {
		return notSearchable(fi, what)
	}
	return nil
}

func notSearchable(fi *fieldInfo, what string) error {
	if what == "equality" || what == "IN" {
		if fi.blind == nil {
			return fmt.Errorf("%w: %s on %s.%s, which has no blind index (keyward:\"blind:<field>\")", ErrNotSearchable, what, fi.table, fi.column)
		}
		return fmt.Errorf("%w: negated %s on %s.%s", ErrNotSearchable, what, fi.table, fi.column)
	}
	return fmt.Errorf("%w: %s on %s.%s", ErrNotSearchable, what, fi.table, fi.column)
}

// encryptedColumn returns the encrypted field a condition's column names,
// if it is one of the statement's model.
func (st *state) encryptedColumn(info *schemaInfo, col any) *fieldInfo {
	if len(info.fields) == 0 {
		return nil
	}
	var name, table string
	switch c := col.(type) {
	case string:
		name = c
	case clause.Column:
		if c.Raw {
			return nil
		}
		name, table = c.Name, c.Table
	default:
		return nil
	}
	s := st.stmt.Schema
	if table == "" {
		if i := strings.LastIndexByte(name, '.'); i >= 0 {
			table, name = strings.Trim(name[:i], "`\""), strings.Trim(name[i+1:], "`\"")
		}
	}
	if table != "" && table != clause.CurrentTable && table != s.Table && table != st.stmt.Table {
		return nil
	}
	return info.lookup(s, name)
}

// finish runs last in every chain: it restores rewritten conditions (so
// FirstOrCreate assigns the plaintext it searched for) and replaces
// encrypted values in the statement's variables with a placeholder, so the
// SQL logger neither logs them nor calls the serializer a second time.
func (c *Crypt) finish(db *gorm.DB) {
	stmt := db.Statement
	if st := stateFrom(stmt.Context); st != nil && st.stmt == stmt && st.savedWhere != nil {
		if cl, ok := st.savedWhere.value.(clause.Clause); ok {
			stmt.Clauses["WHERE"] = cl
		}
		st.savedWhere = nil
	}
	if !stmt.DB.DryRun {
		// A dry run hands its variables to the caller, who may execute
		// them: there they stay serializer values, which encrypt.
		redactVars(stmt.Vars)
	}
}

// Redacted is what the SQL logger shows for an encrypted value.
const Redacted = "[keyward:encrypted]"

var wrapperType = sync.OnceValue(func() reflect.Type {
	type probe struct {
		V string `gorm:"serializer:json"`
	}
	s, err := schema.Parse(&probe{}, &sync.Map{}, schema.NamingStrategy{})
	if err != nil {
		return nil
	}
	v, _ := s.Fields[0].ValueOf(context.Background(), reflect.ValueOf(probe{}))
	return reflect.TypeOf(v)
})

func redactVars(vars []any) {
	wt := wrapperType()
	for i, v := range vars {
		switch x := v.(type) {
		case string:
			if cipher.IsText(x) {
				vars[i] = Redacted
			}
		case nil, []byte, int, int64, uint, uint64, bool:
		default:
			if reflect.TypeOf(v) == wt && isOurWrapper(v) {
				vars[i] = Redacted
			}
		}
	}
}

func isOurWrapper(v any) bool {
	f := reflect.ValueOf(v).Elem().FieldByName("Field")
	if !f.IsValid() || !f.CanInterface() {
		return false
	}
	sf, ok := f.Interface().(*schema.Field)
	return ok && sf != nil && isOurs(sf)
}

// query replaces GORM's query callback: it is GORM's (build, query, scan)
// with gormcrypt's steps around the scan: conditions on encrypted fields
// rewritten, the primary key read before the encrypted columns bound to it,
// values GORM scans without the serializer (Pluck, maps) decrypted or
// refused, and blind index collisions dropped.
func (c *Crypt) query(db *gorm.DB) {
	st := c.attach(db)
	if db.Error != nil {
		return
	}
	info := c.info(db)
	if db.Error != nil {
		return
	}
	if info != nil && !st.prepareQuery(info) {
		return
	}
	callbacks.BuildQuerySQL(db)
	if db.DryRun || db.Error != nil {
		return
	}
	stmt := db.Statement
	f := st.startFilter(info)
	rows, err := stmt.ConnPool.QueryContext(stmt.Context, stmt.SQL.String(), stmt.Vars...)
	if err != nil {
		f.restore(st)
		_ = db.AddError(err)
		return
	}
	gorm.Scan(keyFirst(rows, stmt, info), db, 0)
	_ = db.AddError(rows.Close())
	f.finish(st)
	if stmt.Result != nil {
		stmt.Result.RowsAffected = db.RowsAffected
	}
	if db.Error == nil {
		_ = db.AddError(st.afterQuery(info))
	}
}

// filter is the state of a query whose blind index conditions may match
// colliding rows: it runs without LIMIT and OFFSET (and into a slice for a
// single-row destination), drops the collisions, then applies them.
type filter struct {
	active bool
	limit  *clause.Clause
	single reflect.Value // the caller's struct for First, Take, Last
	dest   any
}

func (st *state) startFilter(info *schemaInfo) *filter {
	stmt := st.stmt
	f := &filter{}
	if info == nil || len(st.filters) == 0 || !st.filterable() {
		return f
	}
	f.active = true
	if cl, ok := stmt.Clauses["LIMIT"]; ok {
		f.limit = &cl
		delete(stmt.Clauses, "LIMIT")
	}
	if rv := reflect.Indirect(stmt.ReflectValue); rv.Kind() == reflect.Struct {
		f.single, f.dest = rv, stmt.Dest
		s := reflect.New(reflect.SliceOf(rv.Type()))
		stmt.Dest, stmt.ReflectValue = s.Interface(), s.Elem()
	}
	stmt.SQL.Reset()
	stmt.Vars = nil
	callbacks.BuildQuerySQL(stmt.DB)
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
	if !f.active {
		return
	}
	stmt := st.stmt
	if f.limit != nil {
		stmt.Clauses["LIMIT"] = *f.limit
	}
	if f.single.IsValid() {
		stmt.Dest, stmt.ReflectValue = f.dest, f.single
	}
}

func (f *filter) finish(st *state) {
	if !f.active {
		return
	}
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

// prepareQuery rewrites conditions, checks the destination type and makes
// an explicit selection include the primary key that encrypted fields are
// bound to.
func (st *state) prepareQuery(info *schemaInfo) bool {
	stmt := st.stmt
	if !st.rewriteWhere(info) {
		return false
	}
	if len(info.fields) == 0 {
		return true
	}
	if err := st.checkDest(info); err != nil {
		_ = stmt.AddError(err)
		return false
	}
	if info.pkBound && len(stmt.Selects) > 0 {
		needKey, hasStar := false, false
		have := map[string]bool{}
		for _, s := range stmt.Selects {
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
		if needKey && !hasStar {
			for _, pf := range stmt.Schema.PrimaryFields {
				if !have[pf.DBName] {
					stmt.Selects = append(stmt.Selects, pf.DBName)
				}
			}
		}
	}
	return true
}

// checkDest refuses a destination struct of another type than the model
// that would receive encrypted columns without decrypting them, or decrypt
// them for another table.
func (st *state) checkDest(info *schemaInfo) error {
	stmt := st.stmt
	t := reflect.TypeOf(stmt.Dest)
	for t != nil && (t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct || t == stmt.Schema.ModelType {
		return nil
	}
	ds := &gorm.Statement{DB: stmt.DB, Context: stmt.Context}
	if err := ds.Parse(stmt.Dest); err != nil || ds.Schema == nil {
		return nil
	}
	dinfo := st.c.schemaInfo(ds.Schema)
	if dinfo.err != nil {
		return fmt.Errorf("gormcrypt: %w", dinfo.err)
	}
	if len(dinfo.fields) > 0 && ds.Schema.Table != stmt.Schema.Table {
		return fmt.Errorf("%w: %s decrypts for table %s but the query reads %s (give it TableName)", ErrUnsupported, ds.Schema.Name, ds.Schema.Table, stmt.Schema.Table)
	}
	for _, f := range ds.Schema.Fields {
		if fi := info.byColumn[f.DBName]; fi != nil && !isOurs(f) && f.Readable {
			return fmt.Errorf("%w: field %s.%s would receive encrypted column %s.%s without serializer:keyward", ErrUnsupported, ds.Schema.Name, f.Name, fi.table, fi.column)
		}
	}
	return nil
}

// afterQuery decrypts what GORM scanned without the serializer and drops
// blind index collisions.
func (st *state) afterQuery(info *schemaInfo) error {
	stmt := st.stmt
	switch dest := stmt.Dest.(type) {
	case map[string]any:
		return st.decryptMap(info, dest)
	case *map[string]any:
		return st.decryptMap(info, *dest)
	case *[]map[string]any:
		for _, m := range *dest {
			if err := st.decryptMap(info, m); err != nil {
				return err
			}
		}
		return nil
	}
	rv := reflect.Indirect(stmt.ReflectValue)
	if !rv.IsValid() {
		return nil
	}
	et := rv.Type()
	if et.Kind() == reflect.Slice || et.Kind() == reflect.Array {
		et = et.Elem()
	}
	base := et
	if base.Kind() == reflect.Pointer {
		base = base.Elem()
	}
	if base.Kind() == reflect.String || isBytes(base) {
		return st.decryptPluck(info, rv)
	}
	return nil
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
func (st *state) decryptPluck(info *schemaInfo, rv reflect.Value) error {
	stmt := st.stmt
	var fi *fieldInfo
	if info != nil {
		name := selectedColumn(stmt)
		if i := strings.LastIndexByte(name, '.'); i >= 0 {
			name = name[i+1:]
		}
		fi = info.lookup(stmt.Schema, strings.Trim(name, "`\""))
	}
	each := func(f func(v reflect.Value) error) error {
		if rv.Kind() == reflect.Slice || rv.Kind() == reflect.Array {
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
// cannot tell which field it belongs to (no model given).
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
	_, err := cipher.ParseTextHeader(s)
	return err == nil
}

func tableName(stmt *gorm.Statement) string {
	if stmt.Table != "" {
		return stmt.Table
	}
	return "the result"
}

// decryptMap decrypts the encrypted columns of a row scanned into a map
// (Find(&[]map[string]any{}) with a model) and refuses tokens in a map
// without a model.
func (st *state) decryptMap(info *schemaInfo, m map[string]any) error {
	stmt := st.stmt
	ctx := stmt.Context
	var row reflect.Value
	for k, v := range m {
		var fi *fieldInfo
		if info != nil {
			fi = info.byColumn[k]
		}
		if fi == nil {
			if v != nil {
				if err := refuseToken(reflect.ValueOf(v), stmt); err != nil {
					return err
				}
			}
			continue
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
		if fi.pk != nil && !row.IsValid() {
			row = reflect.New(stmt.Schema.ModelType).Elem()
			if err := st.keyInto(row, m, true); err != nil {
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
