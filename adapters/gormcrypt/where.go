package gormcrypt

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"gorm.io/gorm/clause"
)

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
	case clause.Expr:
		return st.rewriteSQL(info, x, negated)
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

// quotedIdent matches an SQL identifier, optionally quoted, and captures
// it without quotes.
const quotedIdent = "[`\"]?([A-Za-z_][A-Za-z0-9_]*)[`\"]?"

// simpleCond matches the SQL conditions rewriteSQL understands:
// "column = ?", "column IN ?", "column <> ?" and "column LIKE ?", the column
// optionally quoted and qualified by its table.
var simpleCond = regexp.MustCompile(`(?i)^\s*(?:` + quotedIdent + `\.)?` + quotedIdent +
	`(?:\s*(=|<>|!=)\s*|\s+(in|like)\s+)\(?\s*\?\s*\)?\s*$`)

// rewriteSQL handles a condition written as SQL text on an encrypted
// column: "email = ?" and "email IN ?" become blind index lookups (or fail
// with ErrNotSearchable without an index), "<>" and LIKE fail, instead of
// comparing ciphertext with plaintext. Other SQL is left alone.
func (st *state) rewriteSQL(info *schemaInfo, x clause.Expr, negated bool) (clause.Expression, bool, error) {
	if len(info.fields) == 0 || len(x.Vars) != 1 {
		return x, false, nil
	}
	m := simpleCond.FindStringSubmatch(x.SQL)
	if m == nil {
		return x, false, nil
	}
	col := clause.Column{Table: m[1], Name: m[2]}
	op := m[3] + m[4]
	switch strings.ToLower(op) {
	case "in":
		vals, ok := asSlice(x.Vars[0])
		if !ok {
			return x, false, nil
		}
		return st.rewriteExpr(info, clause.IN{Column: col, Values: vals}, negated)
	case "<>", "!=":
		_, _, err := st.rewriteExpr(info, clause.Neq{Column: col, Value: x.Vars[0]}, negated)
		return x, false, err
	case "like":
		_, _, err := st.rewriteExpr(info, clause.Like{Column: col, Value: x.Vars[0]}, negated)
		return x, false, err
	}
	ne, changed, err := st.rewriteExpr(info, clause.Eq{Column: col, Value: x.Vars[0]}, negated)
	if !changed {
		return x, false, err
	}
	return ne, true, err
}

// asSlice returns the elements of a slice or array value (not []byte).
func asSlice(v any) ([]any, bool) {
	rv := reflect.ValueOf(v)
	if !rv.IsValid() || (rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array) || rv.Type().Elem().Kind() == reflect.Uint8 {
		return nil, false
	}
	out := make([]any, rv.Len())
	for i := range out {
		out[i] = rv.Index(i).Interface()
	}
	return out, true
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
