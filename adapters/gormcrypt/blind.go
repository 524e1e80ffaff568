package gormcrypt

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"reflect"
	"strings"

	"github.com/keyward/keyward/keyring"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"
)

// blindPrefix is the length of the key ID that starts every blind index
// value: the version of the derive root it was computed with, so that
// indexes made before a RotateDerive stay findable while they are rebuilt.
const blindPrefix = 4

// macKey is an HMAC-SHA256 keyed with a blind index key of one field.
type macKey struct {
	id  uint32
	mac hash.Hash
	buf []byte // scratch for the normalized plaintext; zero between uses
}

// blindKey returns the current blind index key of fi for this statement.
func (st *state) blindKey(ctx context.Context, fi *fieldInfo) (*macKey, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if k := st.macs[fi]; k != nil {
		return k, nil
	}
	d, err := st.c.kr.DeriveKey(ctx, fi.blind.label)
	if err != nil {
		return nil, fmt.Errorf("gormcrypt: blind index key of %s.%s: %w", fi.table, fi.column, err)
	}
	k := &macKey{id: d.KeyID(), mac: hmac.New(sha256.New, d.Bytes())}
	if st.macs == nil {
		st.macs = map[*fieldInfo]*macKey{}
	}
	st.macs[fi] = k
	return k, nil
}

// lookupKeys returns the blind index keys of fi under every usable derive
// root, the primary first: a lookup matches rows indexed before and after a
// RotateDerive.
func (st *state) lookupKeys(ctx context.Context, fi *fieldInfo) ([]*macKey, error) {
	cur, err := st.blindKey(ctx, fi)
	if err != nil {
		return nil, err
	}
	st.mu.Lock()
	ks := st.lookup[fi]
	st.mu.Unlock()
	if ks != nil {
		return ks, nil
	}
	ks = []*macKey{cur}
	for _, k := range st.c.kr.Keys() {
		if k.Purpose != keyring.PurposeDerive || k.ID == cur.id || (k.State != keyring.StateActive && k.State != keyring.StateEnabled) {
			continue
		}
		d, err := st.c.kr.DeriveKeyVersion(ctx, k.ID, fi.blind.label)
		if err != nil {
			return nil, fmt.Errorf("gormcrypt: blind index key of %s.%s: %w", fi.table, fi.column, err)
		}
		ks = append(ks, &macKey{id: d.KeyID(), mac: hmac.New(sha256.New, d.Bytes())})
	}
	st.mu.Lock()
	if st.lookup == nil {
		st.lookup = map[*fieldInfo][]*macKey{}
	}
	st.lookup[fi] = ks
	st.mu.Unlock()
	return ks, nil
}

// normalize applies the field's normalization to a plaintext.
func (b *blindInfo) normalize(pt string) string {
	if b.trim {
		pt = strings.TrimSpace(pt)
	}
	if b.lower {
		pt = strings.ToLower(pt)
	}
	return pt
}

// compute returns a blind index value: the derive root's key ID (4 bytes,
// big-endian) followed by HMAC-SHA256(key, normalized plaintext) truncated to
// bits (the unused low bits of the last byte are zero).
func (b *blindInfo) compute(k *macKey, pt string) []byte {
	n := (b.bits + 7) / 8
	out := make([]byte, blindPrefix+n, blindPrefix+sha256.Size)
	binary.BigEndian.PutUint32(out, k.id)
	k.mac.Reset()
	// Through the key's scratch: converting the string for Write would
	// allocate a copy per value. The scratch holds plaintext, so it is
	// cleared at once.
	k.buf = append(k.buf[:0], b.normalize(pt)...)
	_, _ = k.mac.Write(k.buf)
	clear(k.buf)
	out = k.mac.Sum(out[:blindPrefix])[:blindPrefix+n]
	if r := b.bits % 8; r != 0 {
		out[len(out)-1] &= byte(0xff << (8 - r))
	}
	return out
}

// blindExpr is an equality condition on an encrypted field, evaluated on its
// blind index: Eq and Where make it, and struct or map conditions on an
// indexed field are rewritten to it. It resolves (computes the index values)
// in gormcrypt's callbacks, where the keyring and the statement are known.
type blindExpr struct {
	name   string // field or column name as given
	values []any  // plaintext values (one for =, several for IN)

	fi       *fieldInfo
	indexes  [][]byte
	resolved bool
	err      error
}

// Eq returns a condition that matches rows whose encrypted field (by field
// or column name) equals value, through its blind index:
//
//	db.Where(gormcrypt.Eq("Email", "ada@example.com")).First(&p)
//
// Several values match any of them (IN). The statement's model must declare
// the field with a blind index. Rows whose index collides but whose
// decrypted value differs are dropped from the results (when the field is
// read), so the results are exact; a Count is not.
func Eq(field string, value any, more ...any) clause.Expression {
	return &blindExpr{name: field, values: append([]any{value}, more...)}
}

// Where is db.Where(Eq(field, value)).
func Where(db *gorm.DB, field string, value any) *gorm.DB {
	return db.Where(Eq(field, value))
}

// Build implements clause.Expression.
func (e *blindExpr) Build(builder clause.Builder) {
	stmt, ok := builder.(*gorm.Statement)
	if !ok {
		return
	}
	if !e.resolved {
		_ = stmt.AddError(fmt.Errorf("%w: blind index condition on %q needs the statement's model (db.Model(&T{})) on a *gorm.DB with gormcrypt registered", ErrNotSearchable, e.name))
		return
	}
	if e.err != nil {
		_ = stmt.AddError(e.err)
		return
	}
	col := clause.Column{Table: clause.CurrentTable, Name: e.fi.blind.index.DBName}
	if len(e.indexes) == 1 {
		clause.Eq{Column: col, Value: e.indexes[0]}.Build(builder)
		return
	}
	vals := make([]any, len(e.indexes))
	for i, v := range e.indexes {
		vals[i] = v
	}
	clause.IN{Column: col, Values: vals}.Build(builder)
}

// resolve computes the index values of e for the statement.
func (st *state) resolveBlind(e *blindExpr, info *schemaInfo) {
	if e.resolved {
		return
	}
	e.resolved = true
	stmt := st.stmt
	fi := info.lookup(stmt.Schema, e.name)
	if fi == nil || fi.blind == nil {
		e.err = fmt.Errorf("%w: %s.%s has no blind index", ErrNotSearchable, stmt.Schema.Table, e.name)
		return
	}
	e.fi = fi
	keys, err := st.lookupKeys(stmt.Context, fi)
	if err != nil {
		e.err = err
		return
	}
	for i, v := range e.values {
		v = unwrapValue(stmt.Context, v)
		e.values[i] = v
		pt, null, err := fi.plaintext(v)
		if err != nil {
			e.err = err
			return
		}
		if null {
			e.err = fmt.Errorf("%w: blind index lookup of NULL on %s.%s (use IS NULL on the column)", ErrNotSearchable, fi.table, fi.column)
			return
		}
		for _, k := range keys {
			e.indexes = append(e.indexes, fi.blind.compute(k, pt))
		}
	}
	st.filters = append(st.filters, e)
}

// matches reports whether a decrypted row value satisfies e.
func (e *blindExpr) matches(pt string) bool {
	n := e.fi.blind.normalize(pt)
	for _, v := range e.values {
		q, null, err := e.fi.plaintext(v)
		if err == nil && !null && e.fi.blind.normalize(q) == n {
			return true
		}
	}
	return false
}

// BlindIndex computes the blind index value that field (by field or column
// name) of model would store for value: for raw SQL lookups and for jobs
// that rebuild indexes. db must have a Crypt registered.
func BlindIndex(db *gorm.DB, model any, field string, value any) ([]byte, error) {
	c, err := fromDB(db)
	if err != nil {
		return nil, err
	}
	stmt := &gorm.Statement{DB: db, Context: db.Statement.Context}
	if stmt.Context == nil {
		stmt.Context = context.Background()
	}
	if err := stmt.Parse(model); err != nil {
		return nil, err
	}
	info := c.schemaInfo(stmt.Schema)
	if info.err != nil {
		return nil, info.err
	}
	fi := info.lookup(stmt.Schema, field)
	if fi == nil || fi.blind == nil {
		return nil, fmt.Errorf("%w: %s.%s has no blind index", ErrNotSearchable, stmt.Schema.Table, field)
	}
	pt, null, err := fi.plaintext(value)
	if err != nil {
		return nil, err
	}
	if null {
		return nil, nil
	}
	st := &state{c: c, stmt: stmt}
	k, err := st.blindKey(stmt.Context, fi)
	if err != nil {
		return nil, err
	}
	return fi.blind.compute(k, pt), nil
}

// unwrapValue returns the field value inside a GORM serializer wrapper (the
// values of struct conditions), or v itself.
func unwrapValue(ctx context.Context, v any) any {
	rv := reflect.ValueOf(v)
	if !rv.IsValid() || rv.Kind() != reflect.Pointer || rv.IsNil() {
		return v
	}
	e := rv.Elem()
	if e.Kind() != reflect.Struct || e.Type().Name() != "serializer" || e.Type().PkgPath() != "gorm.io/gorm/schema" {
		return v
	}
	f := e.FieldByName("Field")
	d := e.FieldByName("Destination")
	if !f.IsValid() || !d.IsValid() || !f.CanInterface() || !d.CanInterface() {
		return v
	}
	sf, ok := f.Interface().(*schema.Field)
	if !ok || sf == nil || sf.ReflectValueOf == nil {
		return v
	}
	dst, ok := d.Interface().(reflect.Value)
	if !ok || !dst.IsValid() {
		return v
	}
	return sf.ReflectValueOf(ctx, dst).Interface()
}
