package gormcrypt

import (
	"bytes"
	"context"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward/cipher"
	"gorm.io/gorm"
	"gorm.io/gorm/schema"
)

// RegistryTable is the table of the column registry: one row per encrypted
// column of the database, with its binding and keyring. Register (with
// WithModels) and AutoMigrate write it; Register reads it; RegistryTargets,
// Inventory and the usage checker of a guarded destroy read it.
const RegistryTable = "keyward_columns"

// Column is an encrypted column as the column registry records it.
type Column struct {
	Table      string   // the table as SQL names it (GORM's table name)
	BindTable  string   // the table as bound into associated data (with its schema when not the default one)
	Column     string   // the column
	Keyring    string   // the keyring that encrypts it
	PrimaryKey []string // the table's primary key columns, in order
	BoundToKey bool     // values are bound to the row's primary key too
	BlindIndex string   // the blind index column, "" without one
	BlindBits  int      // its length in bits
	Normalize  string   // its normalization: "lower", "trim", "lower,trim" or ""
	Binding    string   // the binding, as gormcrypt describes it in errors
	Registered time.Time

	// keyEncodings say how each primary key value, as the database returns
	// it, is bound into associated data ("" when gormcrypt cannot tell
	// without the Go model).
	keyEncodings []string
}

// String names the column as table.column.
func (c Column) String() string { return c.Table + "." + c.Column }

// registryDDL creates the registry table; every column is a portable type.
const registryDDL = `CREATE TABLE IF NOT EXISTS ` + RegistryTable + ` (
	tbl VARCHAR(255) NOT NULL,
	col VARCHAR(255) NOT NULL,
	sql_table VARCHAR(255) NOT NULL,
	bind_table VARCHAR(255) NOT NULL,
	column_name VARCHAR(255) NOT NULL,
	keyring VARCHAR(64) NOT NULL,
	primary_key VARCHAR(2048) NOT NULL,
	key_encoding VARCHAR(512) NOT NULL,
	bound_to_key INTEGER NOT NULL,
	blind_column VARCHAR(255) NOT NULL,
	blind_bits INTEGER NOT NULL,
	normalize VARCHAR(32) NOT NULL,
	binding VARCHAR(4096) NOT NULL,
	registered VARCHAR(40) NOT NULL,
	PRIMARY KEY (tbl, col)
)`

const registryColumns = "tbl, col, sql_table, bind_table, column_name, keyring, primary_key, key_encoding, bound_to_key, blind_column, blind_bits, normalize, binding, registered"

// AutoMigrate migrates models (db.AutoMigrate) and records their encrypted
// columns in the column registry, creating the registry table if needed,
// so that every process sharing the database refuses writes into them that
// do not go through the model. db must have a Crypt (Register). A column
// that the registry holds with another binding or keyring fails with
// ErrTag and nothing is recorded for it: re-binding a column is a
// migration to a new column, not a change of tags.
func AutoMigrate(db *gorm.DB, models ...any) error {
	c, err := fromDB(db)
	if err != nil {
		return err
	}
	// Check first, so that a refused model changes no table.
	cols, err := c.columnsOf(db, models)
	if err != nil {
		return err
	}
	if err := checkRegistry(db, cols); err != nil {
		return err
	}
	if err := db.AutoMigrate(models...); err != nil {
		return err
	}
	return writeRegistry(db, cols)
}

// record writes the encrypted columns of models into the registry, which it
// creates if needed, and checks that each matches what is recorded. It runs
// in Register, never inside a statement of the caller's.
func (c *Crypt) record(db *gorm.DB, models []any) error {
	cols, err := c.columnsOf(db, models)
	if err != nil {
		return err
	}
	return writeRegistry(db, cols)
}

// columnsOf returns the encrypted columns of models as the registry records
// them; a model whose columns contradict what the Crypt knows (the registry
// included) fails with ErrTag.
func (c *Crypt) columnsOf(db *gorm.DB, models []any) ([]Column, error) {
	var cols []Column
	for _, m := range models {
		stmt := &gorm.Statement{DB: db}
		if err := stmt.Parse(m); err != nil {
			return nil, fmt.Errorf("gormcrypt: model %T: %w", m, err)
		}
		info := c.schemaInfo(stmt.Schema)
		if info.err != nil {
			return nil, fmt.Errorf("gormcrypt: %w", info.err)
		}
		for _, fi := range info.fields {
			cols = append(cols, c.columnOf(stmt.Schema, fi))
		}
	}
	return cols, nil
}

// checkRegistry compares cols with the registry's rows, if it has any.
func checkRegistry(db *gorm.DB, cols []Column) error {
	if len(cols) == 0 {
		return nil
	}
	ok, err := hasRegistry(db)
	if err != nil || !ok {
		return err
	}
	for _, col := range cols {
		have, err := readRegistry(db, "tbl = ? AND col = ?", strings.ToLower(col.BindTable), strings.ToLower(col.Column))
		if err != nil {
			return err
		}
		if len(have) == 1 {
			if err := sameColumn(have[0], col); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeRegistry records cols (creating the registry if needed) unless they
// are recorded already, and checks each against what is recorded.
func writeRegistry(db *gorm.DB, cols []Column) error {
	if len(cols) == 0 {
		return nil
	}
	if err := createRegistry(db); err != nil {
		return err
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for _, col := range cols {
		pk, _ := json.Marshal(col.PrimaryKey)
		enc, _ := json.Marshal(col.keyEncodings)
		bound := 0
		if col.BoundToKey {
			bound = 1
		}
		err := db.Exec("INSERT INTO "+RegistryTable+" ("+registryColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tbl, col) DO NOTHING",
			strings.ToLower(col.BindTable), strings.ToLower(col.Column), col.Table, col.BindTable, col.Column, col.Keyring,
			string(pk), string(enc), bound, col.BlindIndex, col.BlindBits, col.Normalize, col.Binding, now).Error
		if err != nil {
			return fmt.Errorf("gormcrypt: record %s in the column registry: %w", col, err)
		}
		var have []Column
		if have, err = readRegistry(db, "tbl = ? AND col = ?", strings.ToLower(col.BindTable), strings.ToLower(col.Column)); err != nil {
			return err
		}
		if len(have) != 1 {
			return fmt.Errorf("gormcrypt: column %s vanished from the column registry while it was recorded", col)
		}
		if err := sameColumn(have[0], col); err != nil {
			return err
		}
	}
	return nil
}

// sameColumn reports whether a model's column agrees with the registry's.
func sameColumn(have, want Column) error {
	switch {
	case have.Keyring != want.Keyring:
		return fmt.Errorf("%w: column %s is encrypted by keyring %q in the column registry, not %q: values one writes could not be read by the other", ErrTag, want, have.Keyring, want.Keyring)
	case have.Binding != want.Binding:
		return fmt.Errorf("%w: column %s is recorded in the column registry with binding %s; the model declares %s: one column has one binding (move the data to a new column to change it)", ErrTag, want, have.Binding, want.Binding)
	}
	return nil
}

// columnOf describes fi of model s as the registry records it.
func (c *Crypt) columnOf(s *schema.Schema, fi *fieldInfo) Column {
	col := Column{
		Table: s.Table, BindTable: fi.bindTable, Column: fi.column, Keyring: c.kr.Name(),
		BoundToKey: fi.pk != nil, Binding: fi.binding,
	}
	for _, pf := range s.PrimaryFields {
		col.PrimaryKey = append(col.PrimaryKey, pf.DBName)
		col.keyEncodings = append(col.keyEncodings, keyEncoding(pf))
	}
	if fi.blind != nil {
		col.BlindIndex, col.BlindBits = fi.blind.index.DBName, fi.blind.bits
		col.Normalize = normalizeText(fi.blind.lower, fi.blind.trim)
	}
	return col
}

func normalizeText(lower, trim bool) string {
	switch {
	case lower && trim:
		return "lower,trim"
	case lower:
		return "lower"
	case trim:
		return "trim"
	}
	return ""
}

// createRegistry creates the registry table if it does not exist. Processes
// starting together may race to create it (PostgreSQL may then report a
// duplicate type); a loser tries again and finds it.
func createRegistry(db *gorm.DB) error {
	var err error
	for range 3 {
		if err = db.Exec(registryDDL).Error; err == nil {
			return nil
		}
	}
	return fmt.Errorf("gormcrypt: create the column registry: %w", err)
}

// ErrNoRegistry reports a database without a column registry: no model with
// encrypted fields was registered with WithModels or AutoMigrate yet.
var ErrNoRegistry = errors.New("gormcrypt: the database has no column registry (" + RegistryTable + "): register the models with gormcrypt.WithModels or gormcrypt.AutoMigrate")

// Columns returns the encrypted columns the registry of db records, by
// table and column. It only reads: a database without a registry fails with
// ErrNoRegistry. db needs no Crypt.
func Columns(ctx context.Context, db *gorm.DB) ([]Column, error) {
	db = db.WithContext(ctx)
	ok, err := hasRegistry(db)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNoRegistry
	}
	return readRegistry(db, "")
}

func hasRegistry(db *gorm.DB) (bool, error) {
	// Migrator().HasTable looks in the current schema, as unqualified
	// statements do.
	ok := db.Migrator().HasTable(RegistryTable)
	if err := db.Error; err != nil {
		return false, fmt.Errorf("gormcrypt: read the column registry: %w", err)
	}
	return ok, nil
}

// readRegistry reads the registry's rows matching where (all when "").
func readRegistry(db *gorm.DB, where string, args ...any) ([]Column, error) {
	q := "SELECT " + registryColumns + " FROM " + RegistryTable
	if where != "" {
		q += " WHERE " + where
	}
	rows, err := db.Raw(q+" ORDER BY tbl, col", args...).Rows()
	if err != nil {
		return nil, fmt.Errorf("gormcrypt: read the column registry: %w", err)
	}
	defer rows.Close()
	var out []Column
	for rows.Next() {
		var (
			c                       Column
			tbl, col, pk, enc, when string
			bound                   int64
			bits                    int64
		)
		if err := rows.Scan(&tbl, &col, &c.Table, &c.BindTable, &c.Column, &c.Keyring, &pk, &enc, &bound, &c.BlindIndex, &bits, &c.Normalize, &c.Binding, &when); err != nil {
			return nil, fmt.Errorf("gormcrypt: read the column registry: %w", err)
		}
		c.BoundToKey, c.BlindBits = bound != 0, int(bits)
		c.Registered, _ = time.Parse(time.RFC3339Nano, when)
		bad := func(what string) error {
			return fmt.Errorf("gormcrypt: column registry row %s.%s: %s", tbl, col, what)
		}
		if json.Unmarshal([]byte(pk), &c.PrimaryKey) != nil || json.Unmarshal([]byte(enc), &c.keyEncodings) != nil ||
			len(c.PrimaryKey) != len(c.keyEncodings) {
			return nil, bad("primary key is malformed")
		}
		if strings.ToLower(c.BindTable) != tbl || strings.ToLower(c.Column) != col {
			return nil, bad("names do not match its key")
		}
		if c.BlindIndex != "" && (c.BlindBits < MinBlindBits || c.BlindBits > MaxBlindBits) {
			return nil, bad("blind index bits out of range")
		}
		if fi := c.fieldInfo(); fi.binding != c.Binding {
			return nil, bad("binding does not match its columns")
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("gormcrypt: read the column registry: %w", err)
	}
	return out, nil
}

// fieldInfo is what the authority knows of a registered column no model of
// which this process has seen: enough to recognize its writes and refuse
// them, and to compare it with a model that declares it. It has no field.
func (c Column) fieldInfo() *fieldInfo {
	fi := &fieldInfo{
		table: c.Table, bindTable: c.BindTable, column: c.Column, keyring: c.Keyring,
		aad: cipher.AppendAAD(nil, aadVersion, c.BindTable, c.Column),
	}
	if c.BoundToKey {
		for _, k := range c.PrimaryKey {
			fi.pk = append(fi.pk, &schema.Field{Name: k, DBName: k, PrimaryKey: true})
		}
	}
	if c.BlindIndex != "" {
		fi.blind = &blindInfo{
			index: &schema.Field{Name: c.BlindIndex, DBName: c.BlindIndex},
			bits:  c.BlindBits, lower: strings.Contains(c.Normalize, "lower"), trim: strings.Contains(c.Normalize, "trim"),
			label: string(cipher.AppendAAD(nil, "gormcrypt.blind/v1", c.Table, c.Column)),
		}
	}
	fi.binding = fi.bindingText()
	if fi.blind != nil {
		fi.binding += fmt.Sprintf(" %t %t", fi.blind.lower, fi.blind.trim)
	}
	return fi
}

// loadRegistry teaches the authority every column of the registry, if the
// database has one: a write into such a column that names no model fails
// in this process too, even before any statement used the model.
func (c *Crypt) loadRegistry(db *gorm.DB) error {
	ok, err := hasRegistry(db)
	if err != nil || !ok {
		return err
	}
	cols, err := readRegistry(db, "")
	if err != nil {
		return err
	}
	byTable := map[string][]*fieldInfo{}
	var order []string
	for _, col := range cols {
		key := strings.ToLower(col.BindTable)
		if byTable[key] == nil {
			order = append(order, key)
		}
		byTable[key] = append(byTable[key], col.fieldInfo())
	}
	for _, key := range order {
		if err := c.auth.learn(key, byTable[key]); err != nil {
			return fmt.Errorf("gormcrypt: column registry: %w", err)
		}
	}
	return nil
}

// Key encodings: how a primary key value, as the database returns it,
// becomes the key part of a value's associated data (appendKey of the Go
// value).
const (
	encText  = "text"  // the value's text
	encInt   = "int"   // an integer in decimal
	encUUID  = "uuid"  // a UUID's 16 bytes, from its text or its bytes
	encBytes = "bytes" // the raw bytes
)

var keyEncodings = []string{encText, encInt, encUUID, encBytes}

// keyEncoding finds the encoding that turns the database value of a key
// field into the bytes appendKey makes of the Go value, tried on a sample
// value of the field's type; "" when none does (the registry cannot bind
// such keys without the Go model: use NewTarget).
func keyEncoding(f *schema.Field) string {
	t := f.FieldType
	v := reflect.New(t).Elem()
	switch t.Kind() {
	case reflect.String:
		v.SetString("k7")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(7)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(7)
	case reflect.Array:
		if t.Elem().Kind() != reflect.Uint8 {
			return ""
		}
		for i := range v.Len() {
			v.Index(i).SetUint(uint64(i*37 + 1))
		}
	default:
		return ""
	}
	want, ok := appendKey(nil, v)
	if !ok {
		return ""
	}
	dv, err := driver.DefaultParameterConverter.ConvertValue(v.Interface())
	if err != nil {
		return ""
	}
	for _, enc := range keyEncodings {
		if got, err := appendKeyValue(nil, enc, dv); err == nil && bytes.Equal(got, want) {
			return enc
		}
	}
	return ""
}

// appendKeyValue appends the key part of associated data for a primary
// key value v as the database returns it, in encoding enc.
func appendKeyValue(buf []byte, enc string, v any) ([]byte, error) {
	switch enc {
	case encText:
		switch x := v.(type) {
		case string:
			return cipher.AppendAAD(buf, x), nil
		case []byte:
			return appendPart(buf, x), nil
		}
	case encInt:
		switch x := v.(type) {
		case int64:
			return appendPart(buf, strconv.AppendInt(nil, x, 10)), nil
		case string, []byte:
			s := fmt.Sprint(x)
			if b, ok := x.([]byte); ok {
				s = string(b)
			}
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("gormcrypt: key %q is not an integer", s)
			}
			return appendPart(buf, strconv.AppendInt(nil, n, 10)), nil
		}
	case encUUID:
		switch x := v.(type) {
		case string:
			if b, ok := parseUUID(x); ok {
				return appendPart(buf, b), nil
			}
		case []byte:
			if len(x) == 16 {
				return appendPart(buf, x), nil
			}
			if b, ok := parseUUID(string(x)); ok {
				return appendPart(buf, b), nil
			}
		case [16]byte:
			return appendPart(buf, x[:]), nil
		}
	case encBytes:
		if x, ok := v.([]byte); ok {
			return appendPart(buf, x), nil
		}
	}
	return nil, fmt.Errorf("gormcrypt: a primary key value of type %T cannot be bound as %q", v, enc)
}

// parseUUID parses a UUID in canonical (8-4-4-4-12) or plain hex form.
func parseUUID(s string) ([]byte, bool) {
	if len(s) == 36 {
		if s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
			return nil, false
		}
		s = s[:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
	}
	if len(s) != 32 {
		return nil, false
	}
	b, err := hex.DecodeString(s)
	return b, err == nil
}

// registryTables groups columns by table (and keyring), sorted.
func registryTables(cols []Column) [][]Column {
	by := map[string][]Column{}
	for _, c := range cols {
		k := strings.ToLower(c.BindTable) + "\x00" + c.Keyring
		by[k] = append(by[k], c)
	}
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([][]Column, len(keys))
	for i, k := range keys {
		out[i] = by[k]
	}
	return out
}
