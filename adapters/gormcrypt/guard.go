package gormcrypt

import (
	"context"
	"database/sql/driver"
	"fmt"
	"reflect"
	"runtime"
	"strings"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"
)

// The statement guard. GORM builds every statement it sends from clauses,
// through the clause builders of the *gorm.DB's configuration. gormcrypt
// wraps the builders of the clauses that carry values into columns (VALUES,
// SET, ON CONFLICT) or out of them (SELECT), and of WHERE, and checks each
// against the authority before the clause is written:
//
//   - a value bound for an encrypted column must be an encrypted value of
//     a field with the column's binding (or NULL); a value for a blind index
//     column must be one gormcrypt computed; anything else fails with
//     ErrUnsupported before any SQL is sent;
//   - a selection that may return an encrypted column must go to a
//     destination that decrypts it with the right binding (a model field
//     with the serializer, a map or a Pluck that gormcrypt decrypts), else
//     it fails with ErrUnsupported; Row, Rows and Scan, whose destination
//     gormcrypt does not see, are refused unless the caller asked for rows
//     holding tokens (Rows);
//   - a condition that compares an encrypted column with a value (other
//     than the blind index lookups gormcrypt made) fails with
//     ErrNotSearchable, so the value is neither sent nor logged.
//
// So whatever path a statement takes through GORM (a model, Table(name), a
// map, clause.Set, Assignments, an upsert), it meets these checks. SQL that
// GORM does not build (Exec, Raw) is the caller's.

// installGuard wraps db's clause builders with the checks.
func (c *Crypt) installGuard(db *gorm.DB) {
	wrap := func(name string, check func(*gorm.Statement, *clause.Clause) error) {
		prev := db.ClauseBuilders[name]
		db.ClauseBuilders[name] = func(cl clause.Clause, b clause.Builder) {
			if stmt, ok := b.(*gorm.Statement); ok {
				if err := check(stmt, &cl); err != nil {
					_ = stmt.AddError(err)
					return
				}
			}
			if prev != nil {
				prev(cl, b)
			} else {
				cl.Build(b)
			}
		}
	}
	wrap("VALUES", c.guardValues)
	wrap("SET", c.guardSet)
	wrap("ON CONFLICT", c.guardOnConflict)
	wrap("SELECT", c.guardSelect)
	wrap("WHERE", c.guardWhere)
}

// guardValues checks the rows of an INSERT.
func (c *Crypt) guardValues(stmt *gorm.Statement, cl *clause.Clause) error {
	v, ok := cl.Expression.(clause.Values)
	if !ok {
		return nil
	}
	table := stmt.Table
	if ic, ok := stmt.Clauses["INSERT"]; ok {
		if ins, ok := ic.Expression.(clause.Insert); ok && ins.Table.Name != "" {
			table = ins.Table.Name
		}
	}
	tc := c.auth.table(c.tableKey(table))
	if tc == nil {
		return nil
	}
	var seal sealer
	for i, col := range v.Columns {
		_, name := splitColumn(col.Name)
		fi, isIndex := tc.column(name)
		if fi == nil {
			continue
		}
		for _, row := range v.Values {
			if i < len(row) {
				if err := c.checkWrite(stmt.Context, table, name, fi, isIndex, row[i]); err != nil {
					return err
				}
				row[i] = seal.wrap(stmt, row[i], len(v.Values))
			}
		}
	}
	return nil
}

// guardSet checks the assignments of an UPDATE.
func (c *Crypt) guardSet(stmt *gorm.Statement, cl *clause.Clause) error {
	set, ok := cl.Expression.(clause.Set)
	if !ok {
		return nil
	}
	var seal sealer
	for i, a := range set {
		table := stmt.Table
		ctable, name := splitColumn(a.Column.Name)
		if a.Column.Table != "" && a.Column.Table != clause.CurrentTable {
			table = a.Column.Table
		} else if ctable != "" {
			table = ctable
		}
		fi, isIndex := c.auth.table(c.tableKey(table)).column(name)
		if fi == nil {
			continue
		}
		if err := c.checkWrite(stmt.Context, table, name, fi, isIndex, a.Value); err != nil {
			return err
		}
		set[i].Value = seal.wrap(stmt, a.Value, len(set))
	}
	return nil
}

// sealer hands out the values that stand for encrypted values in a
// statement's variables, allocated together.
type sealer struct{ slab []sealOnce }

// wrap returns what the statement sends for v: v itself unless it is an
// encrypted value; then a sealOnce, or in a dry run a dryRunValue (nothing
// is encrypted). n sizes the allocation.
func (s *sealer) wrap(stmt *gorm.Statement, v any, n int) any {
	w, ok := v.(driver.Valuer)
	if !ok || ourWrapperField(v) == nil {
		return v
	}
	if stmt.DB.DryRun {
		return dryRunValue{}
	}
	if len(s.slab) == cap(s.slab) {
		s.slab = make([]sealOnce, 0, max(n, 1))
	}
	s.slab = append(s.slab, sealOnce{inner: w})
	return &s.slab[len(s.slab)-1]
}

// sealOnce is an encrypted value in a statement's variables: the first
// Value (the database driver's, when the statement runs) encrypts; later
// calls (a retry of the driver, or an SQL renderer such as GORM's logger or
// a tracing plugin that renders the variables after the statement ran)
// return the same token as a shownToken, which renderers print as Redacted.
// So a value is encrypted once, and the text of the SQL never holds it.
type sealOnce struct {
	inner driver.Valuer
	tok   driver.Value
	err   error
	done  bool
}

// Value implements driver.Valuer.
func (s *sealOnce) Value() (driver.Value, error) {
	if s.done {
		if t, ok := s.tok.(string); ok {
			return shownToken(t), s.err
		}
		return s.tok, s.err
	}
	s.done = true
	s.tok, s.err = s.inner.Value()
	return s.tok, s.err
}

// shownToken is a token given a second time: a database driver stores the
// string (its kind), fmt and SQL renderers show Redacted.
type shownToken string

// String implements fmt.Stringer.
func (shownToken) String() string { return Redacted }

// checkWrite checks one value written into column name of table, which the
// authority says is fi's encrypted column (or its blind index).
func (c *Crypt) checkWrite(ctx context.Context, table, name string, fi *fieldInfo, isIndex bool, v any) error {
	if isIndex {
		switch x := v.(type) {
		case nil:
			return nil
		case []byte:
			if x == nil || len(x) == blindPrefix+(fi.blind.bits+7)/8 {
				return nil
			}
		}
		return fmt.Errorf("%w: a value written into blind index column %s.%s that gormcrypt did not compute: write the field %s through its model", ErrUnsupported, table, name, fi.column)
	}
	if v == nil {
		return nil
	}
	if wf := ourWrapperField(v); wf != nil {
		wfi, err := c.fieldInfo(wf)
		if err != nil {
			return err
		}
		if wfi.binding != fi.binding {
			return fmt.Errorf("%w: a value encrypted for %s %s written into %s.%s, which is bound as %s", ErrUnsupported, wfi.field.Schema.Name, wfi.bindingText(), table, name, fi.bindingText())
		}
		return nil
	}
	return fmt.Errorf("%w: a value written into encrypted column %s.%s without encryption: write it through its model (declared by %s, a field with serializer:keyward)", ErrUnsupported, table, name, fi.owner())
}

// ourWrapperField returns the field of a GORM serializer value made for one
// of gormcrypt's fields, or nil.
func ourWrapperField(v any) *schema.Field {
	if reflect.TypeOf(v) != wrapperType() {
		return nil
	}
	i := wrapperFieldIndex()
	if i < 0 {
		return nil
	}
	f := reflect.ValueOf(v).Elem().Field(i)
	if !f.CanInterface() {
		return nil
	}
	sf, ok := f.Interface().(*schema.Field)
	if !ok || sf == nil || !isOurs(sf) {
		return nil
	}
	return sf
}

// guardOnConflict checks the updates of an upsert: an encrypted column (or
// its blind index) may only take the inserted row's value, and only when the
// conflict is on the primary key that values are bound to.
func (c *Crypt) guardOnConflict(stmt *gorm.Statement, cl *clause.Clause) error {
	oc, ok := cl.Expression.(clause.OnConflict)
	if !ok || oc.DoNothing {
		return nil
	}
	tc := c.auth.table(c.tableKey(stmt.Table))
	if tc == nil {
		return nil
	}
	for _, a := range oc.DoUpdates {
		_, name := splitColumn(a.Column.Name)
		fi, _ := tc.column(name)
		if fi == nil {
			continue
		}
		col, isCol := a.Value.(clause.Column)
		_, from := splitColumn(col.Name)
		if !isCol || !strings.EqualFold(col.Table, "excluded") || !strings.EqualFold(from, name) {
			return fmt.Errorf("%w: ON CONFLICT assigns a value to %s.%s that GORM does not encrypt; update it from the inserted row (clause.AssignmentColumns)", ErrUnsupported, stmt.Table, name)
		}
		if fi.pk != nil && !fi.conflictOnKey(oc.Columns) {
			return fmt.Errorf("%w: ON CONFLICT on columns other than the primary key would move values bound to one primary key into another row", ErrUnsupported)
		}
	}
	return nil
}

// readCol is an encrypted column a selection may return.
type readCol struct {
	fi    *fieldInfo
	name  string // the result column's name
	alias string // the relation path of a joined column ("" for the table's own)
}

// guardSelect checks what a selection may return, and puts the primary
// key columns first so that a row's key is set before the fields bound to it
// are decrypted (GORM sets fields in column order).
func (c *Crypt) guardSelect(stmt *gorm.Statement, cl *clause.Clause) error {
	sel, ok := cl.Expression.(clause.Select)
	if !ok {
		return nil
	}
	st := stateFrom(stmt.Context)
	if st != nil && st.stmt != stmt {
		st = nil
	}
	main := c.auth.table(c.tableKey(stmt.Table))
	var reads []readCol
	if sel.Expression != nil {
		if name, ok := c.mentions(stmt, main, sel.Expression); ok {
			return fmt.Errorf("%w: a selected SQL expression uses encrypted column %s of %s, whose value is ciphertext: select the column itself into a field with serializer:keyward", ErrUnsupported, name, stmt.Table)
		}
		return nil
	}
	all := func(tc *tableCols, alias string) {
		if tc == nil {
			return
		}
		for _, fi := range tc.cols {
			name := fi.column
			if alias != "" {
				name = alias + "__" + fi.column
			}
			reads = append(reads, readCol{fi: fi, name: name, alias: alias})
		}
	}
	if len(sel.Columns) == 0 {
		all(main, "")
	}
	for _, col := range sel.Columns {
		tc, alias := main, ""
		if col.Table != "" && col.Table != clause.CurrentTable && !sameTable(col.Table, stmt.Table) {
			tc, alias = c.joinedTable(stmt, col.Table)
			if tc == nil {
				continue
			}
		}
		if !col.Raw {
			if col.Name == "*" {
				all(tc, alias)
				continue
			}
			_, name := splitColumn(col.Name)
			if fi, isIndex := tc.column(name); fi != nil && !isIndex {
				rc := readCol{fi: fi, name: name, alias: alias}
				if col.Alias != "" {
					rc.name = col.Alias
				}
				reads = append(reads, rc)
			}
			continue
		}
		for _, part := range splitList(col.Name) {
			switch {
			case part == "*" || strings.HasSuffix(part, ".*"):
				all(tc, alias)
			case isIdentifier(part):
				_, name := splitColumn(part)
				if fi, isIndex := tc.column(name); fi != nil && !isIndex {
					reads = append(reads, readCol{fi: fi, name: name, alias: alias})
				}
			default:
				if name, ok := c.mentions(stmt, tc, clause.Expr{SQL: part}); ok {
					return fmt.Errorf("%w: a selected SQL expression uses encrypted column %s of %s, whose value is ciphertext: select the column itself into a field with serializer:keyward", ErrUnsupported, name, stmt.Table)
				}
			}
		}
	}
	if len(reads) == 0 {
		return nil
	}
	structs, err := st.destDecrypts(stmt, reads)
	if err != nil {
		return err
	}
	if structs {
		if keyed := keyFirst(stmt, sel, reads); keyed != nil {
			cl.Expression = *keyed
		}
	}
	return nil
}

// destDecrypts returns an error unless the statement's destination
// decrypts every column in reads with its binding, and whether the rows are
// scanned into structs (whose fields GORM sets in column order). st may be
// nil (a statement gormcrypt did not attach to: refused).
func (st *state) destDecrypts(stmt *gorm.Statement, reads []readCol) (structs bool, err error) {
	r := reads[0]
	if st == nil || st.kind != "query" {
		if st != nil && st.rowsOK {
			return true, nil
		}
		if readsColumnTypes() {
			return false, nil
		}
		return false, fmt.Errorf("%w: Scan, Row and Rows return what is stored, and %s.%s is encrypted: use Find or First (they decrypt), select only columns that are not encrypted, or read rows with gormcrypt.Rows and gormcrypt.ScanRows", ErrUnsupported, r.fi.table, r.fi.column)
	}
	switch stmt.Dest.(type) {
	case map[string]any, *map[string]any, []map[string]any, *[]map[string]any:
		for _, r := range reads {
			if r.alias != "" {
				return false, fmt.Errorf("%w: joined encrypted column %s.%s read into a map: read into the model", ErrUnsupported, r.fi.table, r.fi.column)
			}
			if err := r.fi.needModel(); err != nil {
				return false, err
			}
		}
		return false, nil // decryptMap decrypts them
	}
	rv := stmt.ReflectValue
	if !rv.IsValid() {
		return false, fmt.Errorf("%w: no destination for encrypted column %s.%s", ErrUnsupported, r.fi.table, r.fi.column)
	}
	t := rv.Type()
	if base := scalarType(t); base != nil {
		if len(reads) != 1 || (base.Kind() != reflect.String && !isBytes(base)) {
			return false, fmt.Errorf("%w: encrypted column %s.%s read into a %s: use Find into the model", ErrUnsupported, r.fi.table, r.fi.column, t)
		}
		if r.fi.pk != nil {
			return false, fmt.Errorf("%w: Pluck of %s.%s, which is bound to its row's primary key: use Select(...).Find", ErrUnsupported, r.fi.table, r.fi.column)
		}
		if err := r.fi.needModel(); err != nil {
			return false, err
		}
		return false, nil // decryptPluck decrypts it
	}
	for t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return false, fmt.Errorf("%w: encrypted column %s.%s read into a %s", ErrUnsupported, r.fi.table, r.fi.column, t)
	}
	ds := stmt.Schema
	if ds == nil || ds.ModelType != t {
		ps := &gorm.Statement{DB: stmt.DB, Context: stmt.Context}
		if err := ps.Parse(reflect.New(t).Interface()); err != nil || ps.Schema == nil {
			return false, fmt.Errorf("%w: encrypted column %s.%s read into a %s", ErrUnsupported, r.fi.table, r.fi.column, t)
		}
		ds = ps.Schema
	}
	for _, r := range reads {
		s := ds
		if r.alias != "" {
			if s = relationSchema(ds, r.alias); s == nil {
				return false, fmt.Errorf("%w: joined encrypted column %s.%s has no field in %s", ErrUnsupported, r.fi.table, r.fi.column, ds.Name)
			}
		}
		name := r.name
		if r.alias != "" {
			name = r.fi.column
		}
		f := s.LookUpField(name)
		if f == nil || !f.Readable {
			continue // GORM does not scan a column without a field
		}
		if !isOurs(f) {
			return false, fmt.Errorf("%w: field %s.%s would receive encrypted column %s.%s without serializer:keyward", ErrUnsupported, s.Name, f.Name, r.fi.table, r.fi.column)
		}
		dfi, err := st.c.fieldInfo(f)
		if err != nil {
			return false, err
		}
		if dfi.binding != r.fi.binding {
			return false, fmt.Errorf("%w: %s decrypts %s.%s as %s, but the column is bound as %s (give %s the table's TableName and primary key)", ErrUnsupported, s.Name, f.Name, dfi.bindingText(), r.fi.column, r.fi.bindingText(), s.Name)
		}
	}
	return true, nil
}

// keyFirst returns the selection with the primary key columns of the
// fields in reads first, or nil when the order need not change. A SELECT *
// becomes the list of the model's columns.
func keyFirst(stmt *gorm.Statement, sel clause.Select, reads []readCol) *clause.Select {
	keys := map[string]bool{} // alias + "\x00" + lower-case column
	var mainPK []*schema.Field
	for _, r := range reads {
		for _, pf := range r.fi.pk {
			keys[r.alias+"\x00"+strings.ToLower(pf.DBName)] = true
		}
		if r.alias == "" && r.fi.pk != nil && mainPK == nil {
			mainPK = r.fi.pk
		}
	}
	if len(keys) == 0 {
		return nil
	}
	cols := sel.Columns
	if len(cols) == 0 {
		if stmt.Schema == nil {
			return nil
		}
		cols = make([]clause.Column, len(stmt.Schema.DBNames))
		for i, n := range stmt.Schema.DBNames {
			cols[i] = clause.Column{Table: clause.CurrentTable, Name: n}
		}
	}
	var front, rest []clause.Column
	for _, col := range cols {
		alias := ""
		if col.Table != "" && col.Table != clause.CurrentTable && !sameTable(col.Table, stmt.Table) {
			alias = col.Table
		}
		_, name := splitColumn(col.Name)
		if !col.Raw && keys[alias+"\x00"+strings.ToLower(name)] {
			front = append(front, col)
		} else {
			rest = append(rest, col)
		}
	}
	if len(front) == 0 {
		// A raw "*" or list: name the keys before it.
		for _, pf := range mainPK {
			front = append(front, clause.Column{Table: clause.CurrentTable, Name: pf.DBName})
		}
	}
	out := append(front, rest...)
	if len(sel.Columns) == len(out) {
		same := true
		for i := range out {
			if out[i] != sel.Columns[i] {
				same = false
			}
		}
		if same {
			return nil
		}
	}
	sel.Columns = out
	return &sel
}

// joinedTable returns the encrypted columns of the table a join alias of the
// statement names (a relation path such as "Company" or "Company__Owner").
func (c *Crypt) joinedTable(stmt *gorm.Statement, alias string) (*tableCols, string) {
	if stmt.Schema == nil {
		return nil, ""
	}
	s := relationSchema(stmt.Schema, alias)
	if s == nil {
		return c.auth.table(c.tableKey(alias)), ""
	}
	c.schemaInfo(s)
	return c.auth.table(c.tableKey(s.Table)), alias
}

// relationSchema follows a relation path ("A__B") from s.
func relationSchema(s *schema.Schema, path string) *schema.Schema {
	for _, name := range strings.Split(path, "__") {
		rel, ok := s.Relationships.Relations[name]
		if !ok || rel.FieldSchema == nil {
			return nil
		}
		s = rel.FieldSchema
	}
	return s
}

// guardWhere refuses conditions that compare an encrypted column with a
// value: rewriteWhere has already made blind index lookups of the ones it
// can, and refused the others it recognized; this is the check for every
// condition, wherever it came from.
func (c *Crypt) guardWhere(stmt *gorm.Statement, cl *clause.Clause) error {
	w, ok := cl.Expression.(clause.Where)
	if !ok {
		return nil
	}
	main := c.auth.table(c.tableKey(stmt.Table))
	if main == nil && len(stmt.Joins) == 0 {
		return nil
	}
	return c.checkConds(stmt, main, w.Exprs)
}

func (c *Crypt) checkConds(stmt *gorm.Statement, main *tableCols, exprs []clause.Expression) error {
	for _, e := range exprs {
		var col any
		var val any
		switch x := e.(type) {
		case *blindExpr:
			continue
		case clause.Eq:
			col, val = x.Column, x.Value
		case clause.Neq:
			col, val = x.Column, x.Value
		case clause.Gt:
			col, val = x.Column, x.Value
		case clause.Gte:
			col, val = x.Column, x.Value
		case clause.Lt:
			col, val = x.Column, x.Value
		case clause.Lte:
			col, val = x.Column, x.Value
		case clause.Like:
			col, val = x.Column, x.Value
		case clause.IN:
			col, val = x.Column, x.Values
		case clause.Expr, clause.NamedExpr:
			if !hasValues(e) {
				continue
			}
			if name, ok := c.mentions(stmt, main, e); ok {
				return fmt.Errorf("%w: a condition compares encrypted column %s with a value, which would send and log the value and compare it with ciphertext: use a struct or map condition, gormcrypt.Eq, or \"%s = ?\" on a field with a blind index", ErrNotSearchable, name, name)
			}
			continue
		case clause.AndConditions:
			if err := c.checkConds(stmt, main, x.Exprs); err != nil {
				return err
			}
			continue
		case clause.OrConditions:
			if err := c.checkConds(stmt, main, x.Exprs); err != nil {
				return err
			}
			continue
		case clause.NotConditions:
			if err := c.checkConds(stmt, main, x.Exprs); err != nil {
				return err
			}
			continue
		default:
			continue
		}
		if val == nil {
			continue // IS NULL
		}
		var name string
		switch cc := col.(type) {
		case string:
			name = cc
		case clause.Column:
			if cc.Raw {
				continue
			}
			name = cc.Name
			if cc.Table != "" && cc.Table != clause.CurrentTable {
				name = cc.Table + "." + cc.Name
			}
		default:
			continue
		}
		table, column := splitColumn(name)
		tc := main
		if table != "" && !sameTable(table, stmt.Table) {
			tc, _ = c.joinedTable(stmt, table)
		}
		if fi, isIndex := tc.column(column); fi != nil && !isIndex {
			return fmt.Errorf("%w: a condition compares encrypted column %s.%s with a value: use a struct or map condition or gormcrypt.Eq on a field with a blind index", ErrNotSearchable, fi.table, fi.column)
		}
	}
	return nil
}

// hasValues reports whether an SQL expression carries values (not only
// column references).
func hasValues(e clause.Expression) bool {
	var vars []any
	switch x := e.(type) {
	case clause.Expr:
		vars = x.Vars
	case clause.NamedExpr:
		vars = x.Vars
	}
	for _, v := range vars {
		switch v.(type) {
		case clause.Column, clause.Table:
		default:
			return true
		}
	}
	return false
}

// mentions reports whether SQL text (outside string literals) or a column
// reference among an expression's variables names an encrypted column of
// tc or of a joined relation, and which.
func (c *Crypt) mentions(stmt *gorm.Statement, tc *tableCols, e clause.Expression) (string, bool) {
	var sql string
	var vars []any
	switch x := e.(type) {
	case clause.Expr:
		sql, vars = x.SQL, x.Vars
	case clause.NamedExpr:
		sql, vars = x.SQL, x.Vars
	default:
		return "", false
	}
	tables := []*tableCols{tc}
	for _, j := range stmt.Joins {
		if jt, _ := c.joinedTable(stmt, j.Name); jt != nil {
			tables = append(tables, jt)
		}
	}
	hit := func(name string) bool {
		for _, t := range tables {
			if fi, isIndex := t.column(name); fi != nil && !isIndex {
				return true
			}
		}
		return false
	}
	for _, id := range identifiers(sql) {
		if hit(id) {
			return id, true
		}
	}
	for _, v := range vars {
		if col, ok := v.(clause.Column); ok {
			_, name := splitColumn(col.Name)
			if hit(name) {
				return name, true
			}
		}
	}
	return "", false
}

// identifiers returns the identifiers of SQL text: words and quoted names,
// outside string literals.
func identifiers(sql string) []string {
	var out []string
	for i := 0; i < len(sql); {
		ch := sql[i]
		switch {
		case ch == '\'':
			j := i + 1
			for j < len(sql) {
				if sql[j] == '\'' {
					if j+1 < len(sql) && sql[j+1] == '\'' {
						j += 2
						continue
					}
					break
				}
				j++
			}
			i = j + 1
		case ch == '"' || ch == '`':
			j := strings.IndexByte(sql[i+1:], ch)
			if j < 0 {
				return append(out, sql[i+1:])
			}
			out = append(out, sql[i+1:i+1+j])
			i += j + 2
		case isIdentStart(ch):
			j := i + 1
			for j < len(sql) && (isIdentStart(sql[j]) || (sql[j] >= '0' && sql[j] <= '9') || sql[j] == '$') {
				j++
			}
			out = append(out, sql[i:j])
			i = j
		default:
			i++
		}
	}
	return out
}

func isIdentStart(ch byte) bool {
	return ch == '_' || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch >= 0x80
}

// splitList splits a selection written as SQL text at its top-level commas.
func splitList(s string) []string {
	var out []string
	depth, start := 0, 0
	var quote byte
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case quote != 0:
			if ch == quote {
				quote = 0
			}
		case ch == '\'' || ch == '"' || ch == '`':
			quote = ch
		case ch == '(':
			depth++
		case ch == ')':
			depth--
		case ch == ',' && depth == 0:
			out = append(out, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}

// isIdentifier reports whether s is a column reference: a name, optionally
// quoted and qualified ("ssn", `"patients"."ssn"`).
func isIdentifier(s string) bool {
	for _, p := range splitName(s) {
		if p == "" {
			return false
		}
		for i := 0; i < len(p); i++ {
			ch := p[i]
			if !isIdentStart(ch) && !(i > 0 && ch >= '0' && ch <= '9') && !(i > 0 && ch == '$') {
				return false
			}
		}
	}
	return true
}

// readsColumnTypes reports whether the statement runs for a GORM migrator's
// ColumnTypes, which reads a table's column types through Rows (one row,
// whose values it never scans): AutoMigrate of a table gormcrypt knows goes
// through it. It looks at the call stack, and only on the refusal path.
func readsColumnTypes() bool {
	var pcs [32]uintptr
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs[:])])
	for {
		f, more := frames.Next()
		if strings.HasSuffix(f.Function, ".ColumnTypes") && strings.Contains(f.Function, "Migrator") {
			return true
		}
		if !more {
			return false
		}
	}
}
