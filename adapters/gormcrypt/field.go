package gormcrypt

import (
	"context"
	"database/sql/driver"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/keyward/keyward/cipher"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"
)

// aadVersion names the layout of the associated data gormcrypt binds a
// value with: AppendAAD("gormcrypt/v1", table, column[, primary key...]).
const aadVersion = "gormcrypt/v1"

type valueKind uint8

const (
	kindString valueKind = iota // string (named string types too)
	kindBytes                   // []byte
	kindJSON                    // anything else, as JSON
)

// fieldInfo is what gormcrypt knows about one encrypted field.
type fieldInfo struct {
	field     *schema.Field
	table     string // the model's table, as GORM names it
	bindTable string // the table as bound into the associated data
	column    string
	aad       []byte // the associated data without the primary key
	kind      valueKind
	ptr       bool            // *string or *[]byte
	pk        []*schema.Field // primary key fields bound into the AAD; nil = not bound
	blind     *blindInfo
	redact    *string
	elemType  reflect.Type // FieldType without the pointer for ptr kinds

	// binding says how a value of the column is bound and indexed: two
	// fields that write one column must agree on it (see authority).
	binding string
	// keyring names the keyring that encrypts the column.
	keyring string
}

// owner names what declared fi, for errors: its model, or the column
// registry for a column no model of which this process has seen (field is
// nil then).
func (fi *fieldInfo) owner() string {
	if fi.field == nil {
		return "the column registry"
	}
	return fi.field.Schema.Name
}

// needModel fails for a column known only from the column registry: its
// values are decrypted only into a model that declares it.
func (fi *fieldInfo) needModel() error {
	if fi.field != nil {
		return nil
	}
	return fmt.Errorf("%w: %s.%s is encrypted (column registry) and no model of it is known to this handle: read it through its model", ErrUnsupported, fi.table, fi.column)
}

// conflictOnKey reports whether an ON CONFLICT target (GORM's default when
// empty) is the primary key fi's values are bound to.
func (fi *fieldInfo) conflictOnKey(cols []clause.Column) bool {
	if fi.field != nil {
		return targetIsPK(cols, fi.field.Schema)
	}
	if len(cols) == 0 {
		return true
	}
	if len(cols) != len(fi.pk) {
		return false
	}
	for _, c := range cols {
		_, name := splitColumn(c.Name)
		found := false
		for _, pf := range fi.pk {
			found = found || strings.EqualFold(pf.DBName, name)
		}
		if !found {
			return false
		}
	}
	return true
}

// bindingText describes fi's binding for an error message.
func (fi *fieldInfo) bindingText() string {
	b := "(" + fi.bindTable + "." + fi.column
	if fi.pk != nil {
		b += ", primary key"
		for _, pf := range fi.pk {
			b += " " + pf.DBName
		}
	}
	if fi.blind != nil {
		b += fmt.Sprintf(", blind index %s of %d bits", fi.blind.index.DBName, fi.blind.bits)
	}
	return b + ")"
}

// blindInfo describes a field's blind index.
type blindInfo struct {
	index *schema.Field // the []byte field that holds it
	bits  int
	lower bool
	trim  bool
	label string
}

// schemaInfo is what gormcrypt knows about one model.
type schemaInfo struct {
	err      error
	fields   []*fieldInfo
	byField  map[*schema.Field]*fieldInfo
	byColumn map[string]*fieldInfo
	byLower  map[string]*fieldInfo // lower-case column and field names
	indexes  map[string]*fieldInfo // blind index column -> its source field
	pkBound  bool
	keyNames map[string]bool // primary key columns of the model and its relations
}

// isOurs reports whether f is encrypted by gormcrypt.
func isOurs(f *schema.Field) bool {
	_, ok := f.Serializer.(serializer)
	return ok
}

// schemaInfo returns (building once) the information on s.
func (c *Crypt) schemaInfo(s *schema.Schema) *schemaInfo {
	if v, ok := c.schemas.Load(s); ok {
		return v.(*schemaInfo)
	}
	info := c.buildSchemaInfo(s)
	v, loaded := c.schemas.LoadOrStore(s, info)
	info = v.(*schemaInfo)
	if loaded || info.err != nil {
		return info
	}
	if err := c.auth.learn(c.tableKey(s.Table), info.fields); err != nil {
		info.err = err
		return info
	}
	// Related models are learned too: a statement on a relation's table may
	// come before any statement on the relation's own model. (Stored first,
	// so a cycle of relations ends here.)
	for _, rel := range s.Relationships.Relations {
		if rel.FieldSchema != nil && rel.FieldSchema != s {
			c.schemaInfo(rel.FieldSchema)
		}
	}
	return info
}

// fieldInfo returns the information on an encrypted field.
func (c *Crypt) fieldInfo(f *schema.Field) (*fieldInfo, error) {
	if f == nil || f.Schema == nil {
		return nil, fmt.Errorf("%w: field without a schema", ErrTag)
	}
	info := c.schemaInfo(f.Schema)
	if info.err != nil {
		return nil, info.err
	}
	fi, ok := info.byField[f]
	if !ok {
		return nil, fmt.Errorf("%w: field %s.%s is not an encrypted field of its schema", ErrTag, f.Schema.Name, f.Name)
	}
	return fi, nil
}

func (c *Crypt) buildSchemaInfo(s *schema.Schema) *schemaInfo {
	info := &schemaInfo{
		byField:  map[*schema.Field]*fieldInfo{},
		byColumn: map[string]*fieldInfo{},
		byLower:  map[string]*fieldInfo{},
		indexes:  map[string]*fieldInfo{},
		keyNames: map[string]bool{},
	}
	fail := func(err error) *schemaInfo {
		info.err = fmt.Errorf("model %s: %w", s.Name, err)
		return info
	}
	info.pkBound = len(s.PrimaryFields) > 0
	for _, pf := range s.PrimaryFields {
		if pf.AutoIncrement || pf.HasDefaultValue {
			info.pkBound = false
		}
		info.keyNames[pf.DBName] = true
	}
	for _, rel := range s.Relationships.Relations {
		if rel.FieldSchema != nil {
			for _, pf := range rel.FieldSchema.PrimaryFields {
				info.keyNames[pf.DBName] = true
			}
		}
	}
	for _, f := range s.Fields {
		tag, hasTag := f.Tag.Lookup(TagName)
		if !isOurs(f) {
			if hasTag {
				return fail(fmt.Errorf("%w: field %s has a keyward tag but not gorm:\"serializer:keyward\"", ErrTag, f.Name))
			}
			continue
		}
		if f.DBName == "" {
			return fail(fmt.Errorf("%w: field %s is not a column", ErrTag, f.Name))
		}
		if f.PrimaryKey {
			return fail(fmt.Errorf("%w: primary key %s cannot be encrypted", ErrTag, f.Name))
		}
		opts, err := parseTag(tag)
		if err != nil {
			return fail(fmt.Errorf("field %s: %w", f.Name, err))
		}
		bt := c.bindTable(s.Table)
		fi := &fieldInfo{
			field:     f,
			table:     s.Table,
			bindTable: bt,
			column:    f.DBName,
			aad:       cipher.AppendAAD(nil, aadVersion, bt, f.DBName),
			redact:    c.cfg.redact,
			keyring:   c.kr.Name(),
		}
		if opts.hasRedact {
			fi.redact = opts.redact
		}
		t := f.FieldType
		fi.elemType = t
		if t.Kind() == reflect.Pointer && (t.Elem().Kind() == reflect.String || isBytes(t.Elem())) {
			fi.ptr, fi.elemType = true, t.Elem()
		}
		switch {
		case fi.elemType.Kind() == reflect.String:
			fi.kind = kindString
		case isBytes(fi.elemType):
			fi.kind = kindBytes
		default:
			fi.kind = kindJSON
		}
		if info.pkBound {
			fi.pk = s.PrimaryFields
		}
		if opts.blind != "" {
			idx := s.LookUpField(opts.blind)
			switch {
			case idx == nil:
				return fail(fmt.Errorf("%w: field %s: blind index field %q not found", ErrTag, f.Name, opts.blind))
			case idx == f || isOurs(idx) || idx.DBName == "":
				return fail(fmt.Errorf("%w: field %s: blind index %q must be a plain column of its own", ErrTag, f.Name, opts.blind))
			case !isBytes(idx.FieldType):
				return fail(fmt.Errorf("%w: field %s: blind index field %s must be []byte", ErrTag, f.Name, idx.Name))
			case info.indexes[idx.DBName] != nil:
				return fail(fmt.Errorf("%w: blind index %s is named by two fields", ErrTag, idx.Name))
			}
			bits := opts.bits
			if bits == 0 {
				bits = c.cfg.bits
			}
			fi.blind = &blindInfo{
				index: idx, bits: bits, lower: opts.lower, trim: opts.trim,
				label: string(cipher.AppendAAD(nil, "gormcrypt.blind/v1", s.Table, f.DBName)),
			}
			info.indexes[idx.DBName] = fi
		}
		fi.binding = fi.bindingText()
		if fi.blind != nil {
			fi.binding += fmt.Sprintf(" %t %t", fi.blind.lower, fi.blind.trim)
		}
		info.fields = append(info.fields, fi)
		info.byField[f] = fi
		info.byColumn[f.DBName] = fi
		info.byLower[strings.ToLower(f.DBName)] = fi
		info.byLower[strings.ToLower(f.Name)] = fi
	}
	return info
}

func isBytes(t reflect.Type) bool {
	return t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8
}

// lookup finds an encrypted field by field or column name, spelled as GORM
// or the database would accept it: in any letter case, quoted or not,
// qualified by the model's table or not.
func (info *schemaInfo) lookup(s *schema.Schema, name string) *fieldInfo {
	if fi := info.byColumn[name]; fi != nil {
		return fi
	}
	if f := s.LookUpField(name); f != nil {
		return info.byField[f]
	}
	table, col := splitColumn(name)
	if table != "" && !sameTable(table, s.Table) {
		return nil
	}
	return info.byLower[strings.ToLower(col)]
}

// index finds the field whose blind index column is name (spelled as in
// lookup).
func (info *schemaInfo) index(s *schema.Schema, name string) *fieldInfo {
	if f := s.LookUpField(name); f != nil {
		name = f.DBName
	}
	if fi := info.indexes[name]; fi != nil {
		return fi
	}
	table, col := splitColumn(name)
	if table != "" && !sameTable(table, s.Table) {
		return nil
	}
	for idx, fi := range info.indexes {
		if strings.EqualFold(idx, col) {
			return fi
		}
	}
	return nil
}

// sameTable reports whether two table names name the same table, ignoring
// quotes, letter case and the default schema.
func sameTable(a, b string) bool {
	pa, pb := splitName(a), splitName(b)
	if len(pa) == 2 && defaultSchema(pa[0]) {
		pa = pa[1:]
	}
	if len(pb) == 2 && defaultSchema(pb[0]) {
		pb = pb[1:]
	}
	if len(pa) != len(pb) {
		// One side is unqualified: compare the table names.
		return strings.EqualFold(pa[len(pa)-1], pb[len(pb)-1])
	}
	for i := range pa {
		if !strings.EqualFold(pa[i], pb[i]) {
			return false
		}
	}
	return true
}

// appendAAD appends the associated data of fi for the row dst. With a bound
// primary key it needs the key's value: from dst, or else from fallback
// (the statement's model, for Updates with a struct of changes).
func (fi *fieldInfo) appendAAD(ctx context.Context, buf []byte, dst, fallback reflect.Value) ([]byte, error) {
	return fi.appendAADMemo(ctx, buf, dst, fallback, nil)
}

// appendAADMemo is appendAAD with memo, the statement's record of the last
// row's key bytes (nil: none), so a row's other fields skip reading and
// encoding the key again.
func (fi *fieldInfo) appendAADMemo(ctx context.Context, buf []byte, dst, fallback reflect.Value, memo *pkMemo) ([]byte, error) {
	buf = append(buf, fi.aad...)
	if fi.pk == nil {
		return buf, nil
	}
	if memo != nil {
		if out, ok := memo.append(ctx, buf, fi.pk, dst); ok {
			return out, nil
		}
	}
	out, ok := appendPK(ctx, buf, fi.pk, dst)
	if !ok && fallback.IsValid() && fallback.Kind() == reflect.Struct && fallback.Type() == fi.field.Schema.ModelType {
		out, ok = appendPK(ctx, buf, fi.pk, fallback)
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s.%s is bound to its row's primary key, which is zero or was not read: assign the key before saving, and select it when reading", ErrPrimaryKey, fi.table, fi.column)
	}
	return out, nil
}

// pkMemo remembers the encoded primary key of the last row whose fields
// were bound to it, so that the row's other fields reuse it. The row is
// held by a pointer to it (row), which keeps it alive: two rows alive at
// once never share an address, so an equal pointer is the same row, never a
// later one allocated where a collected one was. A row's key does not
// change between its fields' values within one statement (GORM writes the
// key before it converts or scans the values), and the memo lives for one
// statement.
type pkMemo struct {
	mu  sync.Mutex
	row any           // a pointer to the row
	pk  *schema.Field // the first field of the key it holds
	key []byte        // the key's encoded bytes (appendPK without a prefix)
}

// append appends the key bytes of the row dst to buf: from the memo when it
// holds this row's, else read with appendPK and remembered. It reports
// false when the row has no usable key (the caller reports the error).
func (m *pkMemo) append(ctx context.Context, buf []byte, pk []*schema.Field, dst reflect.Value) ([]byte, bool) {
	row := reflect.Indirect(dst)
	if !row.CanAddr() || row.Type() != pk[0].Schema.ModelType {
		return appendPK(ctx, buf, pk, dst)
	}
	p := row.Addr().Interface()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.row == p && m.pk == pk[0] {
		return append(buf, m.key...), true
	}
	start := len(buf)
	out, ok := appendPK(ctx, buf, pk, row)
	if !ok {
		return nil, false
	}
	m.row, m.pk, m.key = p, pk[0], append(m.key[:0], out[start:]...)
	return out, true
}

// dataID names one value for telemetry: "table/primary key/column", or
// "table/column" when the row's key is not known (an auto-increment key
// before insert). Composite keys are joined with ",". cache keeps the key
// text of the last row, which the row's other fields share.
func (fi *fieldInfo) dataID(ctx context.Context, dst reflect.Value, cache *pkCache) string {
	pk, ok := cache.lookup(ctx, fi.field.Schema, dst)
	if !ok {
		return fi.table + "/" + fi.column
	}
	return fi.table + "/" + pk + "/" + fi.column
}

// pkCache remembers the primary-key text of the last row seen. It holds a
// pointer to that row, which keeps the row alive, so an equal pointer is
// the same row (an address alone could be reused by another row once the
// first was collected).
type pkCache struct {
	row  any
	text string
}

func (c *pkCache) lookup(ctx context.Context, s *schema.Schema, dst reflect.Value) (string, bool) {
	dst = reflect.Indirect(dst)
	if !dst.IsValid() || dst.Kind() != reflect.Struct || len(s.PrimaryFields) == 0 || dst.Type() != s.ModelType {
		return "", false
	}
	var p any
	if dst.CanAddr() {
		p = dst.Addr().Interface()
		if c.row == p && c.text != "" {
			return c.text, true
		}
	}
	var b []byte
	for i, pf := range s.PrimaryFields {
		v := reflect.Indirect(pf.ReflectValueOf(ctx, dst))
		if !v.IsValid() || v.IsZero() {
			return "", false
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = appendKeyText(b, v)
	}
	t := string(b)
	if p != nil {
		c.row, c.text = p, t
	}
	return t, true
}

// appendKeyText appends a readable form of a key value: strings and
// integers as themselves, 16-byte arrays (UUIDs) in canonical form, other
// byte arrays in hex, anything else as fmt prints it.
func appendKeyText(b []byte, v reflect.Value) []byte {
	switch v.Kind() {
	case reflect.String:
		return append(b, v.String()...)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.AppendInt(b, v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.AppendUint(b, v.Uint(), 10)
	case reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			var raw []byte
			if v.CanAddr() {
				raw = v.Bytes()
			} else {
				raw = make([]byte, v.Len())
				reflect.Copy(reflect.ValueOf(raw), v)
			}
			const hexd = "0123456789abcdef"
			for i, x := range raw {
				if len(raw) == 16 && (i == 4 || i == 6 || i == 8 || i == 10) {
					b = append(b, '-') // a UUID in canonical form
				}
				b = append(b, hexd[x>>4], hexd[x&15])
			}
			return b
		}
	}
	return fmt.Append(b, v.Interface())
}

func appendPK(ctx context.Context, buf []byte, pk []*schema.Field, dst reflect.Value) ([]byte, bool) {
	dst = reflect.Indirect(dst)
	if !dst.IsValid() || dst.Kind() != reflect.Struct || len(pk) == 0 || dst.Type() != pk[0].Schema.ModelType {
		return nil, false
	}
	for _, pf := range pk {
		v := pf.ReflectValueOf(ctx, dst)
		if !v.IsValid() || v.IsZero() {
			return nil, false
		}
		var ok bool
		if buf, ok = appendKey(buf, v); !ok {
			return nil, false
		}
	}
	return buf, true
}

// appendKey appends the canonical bytes of a primary key value,
// length-prefixed: a byte array (uuid.UUID) as its bytes, a string as
// itself, an integer in decimal, anything else as the text of its driver
// value (fmt.Sprint of it when it is not text or a number).
func appendKey(buf []byte, v reflect.Value) ([]byte, bool) {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil, false
		}
		v = v.Elem()
	}
	var scratch [24]byte
	switch v.Kind() {
	case reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			if v.CanAddr() {
				return appendPart(buf, v.Bytes()), true
			}
			b := make([]byte, v.Len())
			reflect.Copy(reflect.ValueOf(b), v)
			return appendPart(buf, b), true
		}
	case reflect.String:
		return cipher.AppendAAD(buf, v.String()), true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return appendPart(buf, strconv.AppendInt(scratch[:0], v.Int(), 10)), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return appendPart(buf, strconv.AppendUint(scratch[:0], v.Uint(), 10)), true
	}
	if !v.CanInterface() {
		return nil, false
	}
	s, ok := keyString(v.Interface())
	if !ok {
		return nil, false
	}
	return cipher.AppendAAD(buf, s), true
}

func appendPart(buf, part []byte) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(part)))
	return append(buf, part...)
}

// keyString is the canonical text of a primary key value: its driver value
// (uuid.UUID and ULID types give their text form).
func keyString(v any) (string, bool) {
	if vl, ok := v.(driver.Valuer); ok {
		dv, err := vl.Value()
		if err != nil || dv == nil {
			return "", false
		}
		v = dv
	}
	switch x := v.(type) {
	case string:
		return x, true
	case []byte:
		return string(x), true
	case int:
		return strconv.FormatInt(int64(x), 10), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case int32:
		return strconv.FormatInt(int64(x), 10), true
	case uint:
		return strconv.FormatUint(uint64(x), 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case uint32:
		return strconv.FormatUint(uint64(x), 10), true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(rv.Int(), 10), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(rv.Uint(), 10), true
	case reflect.String:
		return rv.String(), true
	}
	return fmt.Sprint(v), true
}

// plaintext returns the bytes to encrypt for a field value, or null for
// a nil pointer, slice or map.
func (fi *fieldInfo) plaintext(v any) (pt string, null bool, err error) {
	switch fi.kind {
	case kindString:
		switch x := v.(type) {
		case string:
			return x, false, nil
		case *string:
			if x == nil {
				return "", true, nil
			}
			return *x, false, nil
		}
		rv := reflect.ValueOf(v)
		if !rv.IsValid() {
			return "", true, nil
		}
		if rv.Kind() == reflect.Pointer {
			if rv.IsNil() {
				return "", true, nil
			}
			rv = rv.Elem()
		}
		if rv.Kind() != reflect.String {
			return "", false, fmt.Errorf("%w: %s.%s: value of type %T for a string field", ErrUnsupported, fi.table, fi.column, v)
		}
		return rv.String(), false, nil
	case kindBytes:
		switch x := v.(type) {
		case []byte:
			if x == nil {
				return "", true, nil
			}
			return string(x), false, nil
		case *[]byte:
			if x == nil || *x == nil {
				return "", true, nil
			}
			return string(*x), false, nil
		}
		rv := reflect.ValueOf(v)
		if !rv.IsValid() {
			return "", true, nil
		}
		if rv.Kind() == reflect.Pointer {
			if rv.IsNil() {
				return "", true, nil
			}
			rv = rv.Elem()
		}
		if !isBytes(rv.Type()) {
			return "", false, fmt.Errorf("%w: %s.%s: value of type %T for a []byte field", ErrUnsupported, fi.table, fi.column, v)
		}
		if rv.IsNil() {
			return "", true, nil
		}
		return string(rv.Bytes()), false, nil
	}
	rv := reflect.ValueOf(v)
	if !rv.IsValid() {
		return "", true, nil
	}
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
		if rv.IsNil() {
			return "", true, nil
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		// The encoder's message names types only, never values.
		return "", false, fmt.Errorf("gormcrypt: encode %s.%s as JSON: %w", fi.table, fi.column, err)
	}
	return string(b), false, nil
}

// set stores plaintext pt into the field of dst (null: its zero value).
func (fi *fieldInfo) set(ctx context.Context, dst reflect.Value, pt string, null bool) error {
	target := fi.field.ReflectValueOf(ctx, dst)
	if !target.CanSet() {
		return fmt.Errorf("gormcrypt: %s.%s: destination field cannot be set", fi.table, fi.column)
	}
	if null {
		target.Set(reflect.Zero(fi.field.FieldType))
		return nil
	}
	if !fi.ptr {
		switch fi.kind {
		case kindString:
			target.SetString(pt)
			return nil
		case kindBytes:
			target.SetBytes([]byte(pt))
			return nil
		}
	}
	v, err := fi.decode(pt)
	if err != nil {
		return err
	}
	target.Set(v)
	return nil
}

// decode turns plaintext into a value of the field's type.
func (fi *fieldInfo) decode(pt string) (reflect.Value, error) {
	var v reflect.Value
	switch fi.kind {
	case kindString:
		v = reflect.New(fi.elemType).Elem()
		v.SetString(pt)
	case kindBytes:
		v = reflect.New(fi.elemType).Elem()
		v.SetBytes([]byte(pt))
	default:
		p := reflect.New(fi.field.FieldType)
		if err := json.Unmarshal([]byte(pt), p.Interface()); err != nil {
			return reflect.Value{}, fmt.Errorf("gormcrypt: decode %s.%s from JSON: %s", fi.table, fi.column, jsonErrorClass(err))
		}
		return p.Elem(), nil
	}
	if fi.ptr {
		p := reflect.New(fi.elemType)
		p.Elem().Set(v)
		return p, nil
	}
	return v, nil
}

// jsonErrorClass describes a JSON decoding error without quoting the
// (decrypted) input, which encoding/json syntax errors may do.
func jsonErrorClass(err error) string {
	var msg string
	switch e := err.(type) {
	case *json.SyntaxError:
		msg = "invalid JSON at offset " + strconv.FormatInt(e.Offset, 10)
	case *json.UnmarshalTypeError:
		msg = "JSON " + e.Value + " cannot be stored in " + e.Type.String()
	default:
		msg = "invalid JSON"
	}
	return strings.TrimSpace(msg)
}

// redacted returns the value shown for a refused decryption.
func (fi *fieldInfo) redacted() (reflect.Value, bool) {
	if fi.redact == nil {
		return reflect.Value{}, false
	}
	if fi.kind == kindJSON {
		return reflect.Zero(fi.field.FieldType), true
	}
	v, _ := fi.decode(*fi.redact)
	return v, true
}
