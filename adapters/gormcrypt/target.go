package gormcrypt

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/keyward/keyward/cipher"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/rotation"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Target is a rotation.Target over the encrypted columns of one table: the
// job of rotation.Reencrypt after a key rotation, and the bulk encryption
// of legacy plaintext rows that WithLegacyPlaintext promises. NewTarget
// makes one from a GORM model, RegistryTargets from the column registry
// alone (no Go model).
//
// It reads rows in primary-key order (composite keys too) with plain SQL
// (every row, soft deleted ones too, no hooks), binds each value to the
// associated data gormcrypt uses for it (table, column and, when bound, the
// row's key), and writes each batch with one statement per chunk of rows:
//
//	UPDATE t SET c = CASE WHEN t.c = v.old_c THEN v.new_c ELSE t.c END, ...
//	FROM (VALUES (key, old_c, new_c, ...), ...) AS v
//	WHERE t.key = v.key AND (t.c = v.old_c OR ...)
//
// so each value is a compare-and-swap of its own: a value the application
// changed meanwhile keeps the application's value, the row's other values
// are still swapped. Rows read back through GORM decrypt as before.
// Updated-at columns are not touched: the data did not change.
//
// When the Crypt on db has WithLegacyPlaintext, a value that is not a token
// is reported as rotation.FormatPlaintext and encrypted by the job, and a
// blind index of its field is written in the same statement. Otherwise such
// a value fails the job (fail closed). The target's statements are kept out
// of the SQL logger, which would print legacy values.
//
// A Target is safe for concurrent use.
type Target struct {
	db     *gorm.DB
	kr     *keyring.Keyring // derives blind index keys for legacy values
	legacy bool
	pg     bool
	table  string // as SQL names it
	qtable string
	keys   []keyCol
	cols   []colSpec

	mu    sync.Mutex
	types map[string]string // PostgreSQL column types, lower-case name -> type
}

var (
	_ rotation.BatchTarget = (*Target)(nil)
	_ rotation.NamedTarget = (*Target)(nil)
	_ rotation.KeyCounter  = (*Target)(nil)
)

// keyCol is a primary key column of a target.
type keyCol struct {
	name, q string
	codec   keyCodec
}

// colSpec is an encrypted column of a target.
type colSpec struct {
	name, q string
	aad     []byte // associated data without the key
	bound   bool   // the row's key is part of the associated data
	blind   *blindInfo
	blindQ  string
}

// keyCodec reads and writes the values of one primary key column.
type keyCodec interface {
	// dest returns a fresh scan destination.
	dest() any
	// value returns the key value of a scanned destination, as the
	// target passes it back to SQL.
	value(dest any) (any, error)
	// appendAAD appends the key's part of the associated data.
	appendAAD(buf []byte, v any) ([]byte, error)
	// appendText appends a readable form, for value IDs.
	appendText(buf []byte, v any) []byte
	// marshal and unmarshal a value in a cursor.
	marshal(v any) (json.RawMessage, error)
	unmarshal(m json.RawMessage) (any, error)
}

// NewTarget returns a Target over model's encrypted fields (all of them,
// or those named, by field or column name). db must have a Crypt
// registered (Register).
func NewTarget(db *gorm.DB, model any, fields ...string) (*Target, error) {
	c, err := fromDB(db)
	if err != nil {
		return nil, err
	}
	stmt := &gorm.Statement{DB: db}
	if err := stmt.Parse(model); err != nil {
		return nil, fmt.Errorf("gormcrypt: target: %w", err)
	}
	s := stmt.Schema
	info := c.schemaInfo(s)
	if info.err != nil {
		return nil, fmt.Errorf("gormcrypt: %w", info.err)
	}
	if len(s.PrimaryFields) == 0 {
		return nil, fmt.Errorf("%w: a rotation target needs a primary key; %s has none", ErrUnsupported, s.Name)
	}
	var fis []*fieldInfo
	if len(fields) == 0 {
		fis = info.fields
	}
	for _, name := range fields {
		fi := info.lookup(s, name)
		if fi == nil {
			return nil, fmt.Errorf("%w: %s has no encrypted field %q", ErrTag, s.Name, name)
		}
		for _, have := range fis {
			if have == fi {
				return nil, fmt.Errorf("gormcrypt: target: field %q named twice", name)
			}
		}
		fis = append(fis, fi)
	}
	if len(fis) == 0 {
		return nil, fmt.Errorf("%w: %s has no encrypted fields", ErrTag, s.Name)
	}
	t := newTarget(db, c.kr, c.cfg.legacy, s.Table)
	for _, pf := range s.PrimaryFields {
		t.keys = append(t.keys, keyCol{name: pf.DBName, q: stmt.Quote(pf.DBName), codec: goKey{pf.FieldType}})
	}
	for _, fi := range fis {
		t.cols = append(t.cols, t.colOf(fi))
	}
	return t, nil
}

// RegistryTargets returns a Target per table (and keyring kr) of the column
// registry of db, over every column the registry records for kr, built
// from the registry alone: no Go model is needed, composite primary keys
// included. It only reads the registry (ErrNoRegistry when db has none).
// The targets encrypt legacy plaintext only when db has a Crypt registered
// WithLegacyPlaintext. A table whose primary key the registry cannot bind
// without its Go model (a key type other than text, integers and UUIDs)
// fails with ErrUnsupported: use NewTarget with the model.
func RegistryTargets(ctx context.Context, db *gorm.DB, kr *keyring.Keyring) ([]*Target, error) {
	if kr == nil {
		return nil, errors.New("gormcrypt: RegistryTargets needs a keyring")
	}
	cols, err := Columns(ctx, db)
	if err != nil {
		return nil, err
	}
	legacy := false
	if c, err := fromDB(db); err == nil {
		legacy = c.cfg.legacy
	}
	stmt := &gorm.Statement{DB: db}
	var out []*Target
	for _, group := range registryTables(cols) {
		if group[0].Keyring != kr.Name() {
			continue
		}
		t := newTarget(db, kr, legacy, group[0].Table)
		first := group[0]
		for i, k := range first.PrimaryKey {
			enc := first.keyEncodings[i]
			if enc == "" {
				return nil, fmt.Errorf("%w: the primary key %s of %s has a type the column registry cannot bind without the Go model: use NewTarget", ErrUnsupported, k, first.Table)
			}
			t.keys = append(t.keys, keyCol{name: k, q: stmt.Quote(k), codec: rawKey{enc}})
		}
		if len(t.keys) == 0 {
			return nil, fmt.Errorf("%w: %s has no primary key in the column registry", ErrUnsupported, first.Table)
		}
		for _, col := range group {
			if strings.Join(col.PrimaryKey, "\x00") != strings.Join(first.PrimaryKey, "\x00") || col.Table != first.Table {
				return nil, fmt.Errorf("gormcrypt: the column registry records %s and %s with different tables or primary keys", first, col)
			}
			t.cols = append(t.cols, t.colOf(col.fieldInfo()))
		}
		out = append(out, t)
	}
	return out, nil
}

func newTarget(db *gorm.DB, kr *keyring.Keyring, legacy bool, table string) *Target {
	db = db.Session(&gorm.Session{Logger: db.Logger.LogMode(logger.Silent), NewDB: true})
	stmt := &gorm.Statement{DB: db}
	return &Target{
		db: db, kr: kr, legacy: legacy, pg: db.Dialector.Name() == "postgres",
		table: table, qtable: stmt.Quote(table),
	}
}

func (t *Target) colOf(fi *fieldInfo) colSpec {
	stmt := &gorm.Statement{DB: t.db}
	c := colSpec{name: fi.column, q: stmt.Quote(fi.column), aad: fi.aad, bound: fi.pk != nil, blind: fi.blind}
	if fi.blind != nil {
		c.blindQ = stmt.Quote(fi.blind.index.DBName)
	}
	return c
}

// TargetName implements rotation.NamedTarget: "gormcrypt:TABLE(COLUMNS)",
// which a run binds its checkpoints to.
func (t *Target) TargetName() string {
	return "gormcrypt:" + t.table + "(" + strings.Join(t.Columns(), ",") + ")"
}

// CountByKey implements rotation.KeyCounter: the target's values by the
// key that made them, from the token headers, in one grouped scan of the
// table (as Inventory does), counting every row (soft-deleted ones too)
// without reading the values. Values that are not tokens count under key
// ID 0.
func (t *Target) CountByKey(ctx context.Context) (map[uint32]int64, error) {
	cols := make([]Column, len(t.cols))
	for i, c := range t.cols {
		cols[i] = Column{Table: t.table, Column: c.name}
	}
	hs, err := inventoryTable(t.db.WithContext(ctx), cols)
	if err != nil {
		return nil, fmt.Errorf("gormcrypt: target %s: count values by key: %w", t.table, err)
	}
	counts := map[uint32]int64{}
	for _, h := range hs {
		counts[h.KeyID] += h.Values
	}
	return counts, nil
}

// Table returns the table the target rewrites, as SQL names it.
func (t *Target) Table() string { return t.table }

// Columns returns the encrypted columns the target rewrites.
func (t *Target) Columns() []string {
	out := make([]string, len(t.cols))
	for i, c := range t.cols {
		out[i] = c.name
	}
	return out
}

// targetRow is Value.Row: the row's key and the value's column.
type targetRow struct {
	t    *Target
	key  []any // the primary key values
	text string
	col  int
}

// targetCursor is the JSON of a cursor: the table and the last key.
type targetCursor struct {
	Table string            `json:"table"`
	Key   []json.RawMessage `json:"key"`
}

// Scan implements rotation.Target: the encrypted values of up to limit
// rows after cursor, in primary-key order.
func (t *Target) Scan(ctx context.Context, cursor string, limit int) ([]rotation.Value, string, error) {
	var after []any
	if cursor != "" {
		var err error
		if after, err = t.decodeCursor(cursor); err != nil {
			return nil, "", err
		}
	}
	vals, last, err := t.scan(ctx, after, nil, limit)
	if err != nil {
		return nil, "", err
	}
	if last == nil {
		return nil, cursor, nil
	}
	next, err := t.encodeCursor(last)
	if err != nil {
		return nil, "", err
	}
	return vals, next, nil
}

// keyList is "k1, k2" of the primary key columns, qualified by prefix.
func (t *Target) keyList(prefix string) string {
	var b strings.Builder
	for i, k := range t.keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(prefix + k.q)
	}
	return b.String()
}

// keyCompare is the condition "key op (?, ...)", a row comparison for
// composite keys.
func (t *Target) keyCompare(b *sqlBuf, op string, key []any) {
	if len(t.keys) == 1 {
		b.WriteString(t.keys[0].q + " " + op + " ")
		b.arg(key[0])
		return
	}
	b.WriteString("(" + t.keyList("") + ") " + op + " (")
	for i, v := range key {
		if i > 0 {
			b.WriteString(", ")
		}
		b.arg(v)
	}
	b.WriteString(")")
}

// sqlBuf builds a statement with the database's placeholders. The
// target's statements go to the connection pool as they are: GORM's SQL
// builder would expand a []byte value that follows a parenthesis into a
// list.
type sqlBuf struct {
	strings.Builder
	pg   bool
	args []any
}

// arg writes a placeholder for v.
func (b *sqlBuf) arg(v any) {
	b.args = append(b.args, v)
	if b.pg {
		b.WriteString("$" + strconv.Itoa(len(b.args)))
	} else {
		b.WriteByte('?')
	}
}

// argAs writes a placeholder for v cast to typ on PostgreSQL (whose VALUES
// would otherwise type parameters as text).
func (b *sqlBuf) argAs(v any, typ string) {
	if !b.pg || typ == "" {
		b.arg(v)
		return
	}
	b.WriteString("CAST(")
	b.arg(v)
	b.WriteString(" AS " + typ + ")")
}

// query runs b on db's connection (its transaction inside one).
func (b *sqlBuf) query(ctx context.Context, db *gorm.DB) (*sql.Rows, error) {
	return db.Statement.ConnPool.QueryContext(ctx, b.String(), b.args...)
}

// scan reads up to limit rows with a key after after (nil: from the start)
// and up to upTo (nil: to the end). It returns the values and the last key
// read (nil when no row was).
func (t *Target) scan(ctx context.Context, after, upTo []any, limit int) ([]rotation.Value, []any, error) {
	vals, last, _, err := t.scanRows(ctx, after, upTo, limit)
	return vals, last, err
}

// scanRows is scan that also returns how many rows it read.
func (t *Target) scanRows(ctx context.Context, after, upTo []any, limit int) ([]rotation.Value, []any, int, error) {
	b := &sqlBuf{pg: t.pg}
	b.WriteString("SELECT " + t.keyList(""))
	for _, c := range t.cols {
		b.WriteString(", " + c.q)
	}
	b.WriteString(" FROM " + t.qtable)
	if after != nil {
		b.WriteString(" WHERE ")
		t.keyCompare(b, ">", after)
	}
	if upTo != nil {
		if after != nil {
			b.WriteString(" AND ")
		} else {
			b.WriteString(" WHERE ")
		}
		t.keyCompare(b, "<=", upTo)
	}
	b.WriteString(" ORDER BY " + t.keyList("") + " LIMIT ")
	b.arg(limit)
	rows, err := b.query(ctx, t.db.WithContext(ctx))
	if err != nil {
		return nil, nil, 0, fmt.Errorf("gormcrypt: target %s: %w", t.table, err)
	}
	defer rows.Close()
	var (
		out  []rotation.Value
		last []any
	)
	raw := make([]any, len(t.cols))
	dest := make([]any, len(t.keys)+len(t.cols))
	for i := range raw {
		dest[len(t.keys)+i] = &raw[i]
	}
	var aad []byte
	nrows := 0
	for rows.Next() {
		key, text, err := t.scanKey(rows, dest)
		if err != nil {
			return nil, nil, 0, err
		}
		last = key
		nrows++
		for i, c := range t.cols {
			var stored []byte
			switch x := raw[i].(type) {
			case nil:
				continue // NULL: nothing stored
			case string:
				stored = []byte(x)
			case []byte:
				stored = bytes.Clone(x)
			default:
				return nil, nil, 0, fmt.Errorf("%w: %s.%s holds a %T, not a token", ErrNotEncrypted, t.table, c.name, raw[i])
			}
			aad = append(aad[:0], c.aad...)
			if c.bound {
				for j, k := range t.keys {
					if aad, err = k.codec.appendAAD(aad, key[j]); err != nil {
						return nil, nil, 0, fmt.Errorf("gormcrypt: target %s: %w", t.table, err)
					}
				}
			}
			f := rotation.FormatText
			if t.legacy && !cipher.IsText(string(stored)) {
				f = rotation.FormatPlaintext
			}
			out = append(out, rotation.Value{
				ID:     t.table + "/" + string(text) + "/" + c.name,
				Stored: stored, AAD: bytes.Clone(aad), Format: f,
				Row: targetRow{t: t, key: key, text: string(text), col: i},
			})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, 0, fmt.Errorf("gormcrypt: target %s: %w", t.table, err)
	}
	return out, last, nrows, nil
}

// scanKey scans a row whose first columns are the key into dest (whose
// other entries the caller set) and returns the key and its text.
func (t *Target) scanKey(rows *sql.Rows, dest []any) ([]any, []byte, error) {
	for i, k := range t.keys {
		dest[i] = k.codec.dest()
	}
	if err := rows.Scan(dest...); err != nil {
		return nil, nil, fmt.Errorf("gormcrypt: target %s: %w", t.table, err)
	}
	key := make([]any, len(t.keys))
	var text []byte
	for i, k := range t.keys {
		var err error
		if key[i], err = k.codec.value(dest[i]); err != nil {
			return nil, nil, fmt.Errorf("gormcrypt: target %s: %w", t.table, err)
		}
		if i > 0 {
			text = append(text, ',')
		}
		text = k.codec.appendText(text, key[i])
	}
	return key, text, nil
}

func (t *Target) encodeCursor(key []any) (string, error) {
	c := targetCursor{Table: t.table, Key: make([]json.RawMessage, len(key))}
	for i, k := range t.keys {
		m, err := k.codec.marshal(key[i])
		if err != nil {
			return "", fmt.Errorf("gormcrypt: target %s: primary key as cursor: %w", t.table, err)
		}
		c.Key[i] = m
	}
	b, err := json.Marshal(c)
	return string(b), err
}

func (t *Target) decodeCursor(cursor string) ([]any, error) {
	bad := fmt.Errorf("%w: cursor is not one of table %s", rotation.ErrCheckpoint, t.table)
	var c targetCursor
	if err := json.Unmarshal([]byte(cursor), &c); err != nil || c.Table != t.table || len(c.Key) != len(t.keys) {
		return nil, bad
	}
	out := make([]any, len(t.keys))
	for i, k := range t.keys {
		v, err := k.codec.unmarshal(c.Key[i])
		if err != nil {
			return nil, fmt.Errorf("%w: cursor key of table %s does not decode", rotation.ErrCheckpoint, t.table)
		}
		out[i] = v
	}
	return out, nil
}

// Swap implements rotation.Target: it writes token in place of v's value
// if the row still holds v.Stored.
func (t *Target) Swap(ctx context.Context, v rotation.Value, token []byte) (bool, error) {
	w, err := t.SwapAll(ctx, []rotation.Swap{{Value: v, Token: token}})
	if err != nil {
		return false, err
	}
	return w[0], nil
}

// SwapAll implements rotation.BatchTarget: the swaps of a batch with one
// statement per chunk of rows (in one transaction when there are several),
// each value with its own compare-and-swap.
func (t *Target) SwapAll(ctx context.Context, swaps []rotation.Swap) ([]bool, error) {
	return t.swapAll(ctx, swaps, nil)
}

// swapRow is a row of a batch with its columns' swaps.
type swapRow struct {
	key   []any
	text  string
	old   []any // per column: the stored value, or nil when not swapped
	new   []any
	blind []any // per column: the blind index of a legacy value, or nil
	idx   []int // per column: the swap's index, or -1
}

// batchGuard is what a job's range adds to the write of a batch: the
// renewal of its lease (with its pending progress), without which nothing
// of the batch is written.
type batchGuard interface {
	// cte writes, for PostgreSQL, "WITH kw_lease AS (...) ": an UPDATE
	// that renews the lease and returns a row while it still holds.
	cte(b *sqlBuf)
	// renew renews the lease in tx, the batch's transaction (SQLite).
	renew(tx *gorm.DB) error
	// held fails with rotation.ErrLeaseLost unless the lease is held; it
	// is asked after a PostgreSQL batch that wrote nothing.
	held(ctx context.Context) error
	// renewed records that the lease was renewed.
	renewed()
}

// swapAll writes swaps. With a guard, the batch is written only if the
// guard's lease holds, in the same statement (PostgreSQL) or transaction
// (SQLite).
func (t *Target) swapAll(ctx context.Context, swaps []rotation.Swap, guard batchGuard) ([]bool, error) {
	written := make([]bool, len(swaps))
	rows, blind, err := t.group(ctx, swaps)
	if err != nil {
		return nil, err
	}
	db := t.db.WithContext(ctx)
	if t.pg {
		// PostgreSQL takes the batch as arrays: one statement of a few
		// parameters, planned once, the lease renewed in it.
		if err := t.loadTypes(ctx); err != nil {
			return nil, err
		}
		any, err := t.update(ctx, db, rows, blind, written, guard)
		if err != nil {
			return nil, err
		}
		if guard != nil {
			if !any {
				if err := guard.held(ctx); err != nil {
					return nil, err
				}
			}
			guard.renewed()
		}
		return written, nil
	}
	// SQLite takes it as VALUES, within its limit of parameters per
	// statement, in one transaction with the lease's renewal.
	chunk := max(1, 30000/(1+len(t.keys)+3*len(t.cols)))
	write := func(db *gorm.DB) error {
		if guard != nil {
			if err := guard.renew(db); err != nil {
				return err
			}
		}
		for start := 0; start < len(rows); start += chunk {
			part := rows[start:min(start+chunk, len(rows))]
			if _, err := t.update(ctx, db, part, blind, written, nil); err != nil {
				return err
			}
		}
		return nil
	}
	if guard != nil || len(rows) > chunk {
		err = db.Transaction(write)
	} else {
		err = write(db)
	}
	if err != nil {
		return nil, err
	}
	if guard != nil {
		guard.renewed()
	}
	return written, nil
}

// group collects the swaps by row; blind reports whether any needs a blind
// index written (a legacy value of an indexed column).
func (t *Target) group(ctx context.Context, swaps []rotation.Swap) ([]*swapRow, bool, error) {
	var rows []*swapRow
	byKey := map[string]*swapRow{}
	blind := false
	macs := map[*blindInfo]*macKey{}
	for i, s := range swaps {
		r, ok := s.Value.Row.(targetRow)
		if !ok || r.t != t {
			return nil, false, errors.New("gormcrypt: target: value not scanned by this target")
		}
		row := byKey[r.text]
		if row == nil {
			row = &swapRow{
				key: r.key, text: r.text,
				old: make([]any, len(t.cols)), new: make([]any, len(t.cols)), blind: make([]any, len(t.cols)),
				idx: make([]int, len(t.cols)),
			}
			for j := range row.idx {
				row.idx[j] = -1
			}
			byKey[r.text] = row
			rows = append(rows, row)
		}
		if row.idx[r.col] >= 0 {
			return nil, false, fmt.Errorf("gormcrypt: target: value %s swapped twice in one batch", s.Value.ID)
		}
		row.idx[r.col] = i
		row.old[r.col], row.new[r.col] = string(s.Value.Stored), string(s.Token)
		c := t.cols[r.col]
		if s.Value.Format == rotation.FormatPlaintext && c.blind != nil {
			k := macs[c.blind]
			if k == nil {
				d, err := t.kr.DeriveKey(ctx, c.blind.label)
				if err != nil {
					return nil, false, fmt.Errorf("gormcrypt: blind index key of %s.%s: %w", t.table, c.name, err)
				}
				k = &macKey{id: d.KeyID(), mac: hmac.New(sha256.New, d.Bytes())}
				macs[c.blind] = k
			}
			row.blind[r.col] = c.blind.compute(k, string(s.Value.Stored))
			blind = true
		}
	}
	return rows, blind, nil
}

// update writes rows with one statement and marks what it wrote.
// With guard (PostgreSQL only), the statement renews the guard's lease and
// writes only while it holds. It reports whether it returned any row.
func (t *Target) update(ctx context.Context, db *gorm.DB, rows []*swapRow, blind bool, written []bool, guard batchGuard) (bool, error) {
	b := &sqlBuf{pg: t.pg, args: make([]any, 0, len(rows)*(1+len(t.keys)+3*len(t.cols)))}
	if guard != nil {
		guard.cte(b)
	}
	// The VALUES columns: i, k0.., then per column o, n[, x].
	var names []string
	vcol := func(name string) string {
		names = append(names, name)
		if t.pg {
			return "kw_v." + name
		}
		return "kw_v.column" + fmt.Sprint(len(names))
	}
	iCol := vcol("i")
	kCols := make([]string, len(t.keys))
	for i := range t.keys {
		kCols[i] = vcol(fmt.Sprintf("k%d", i))
	}
	oCols, nCols, xCols := make([]string, len(t.cols)), make([]string, len(t.cols)), make([]string, len(t.cols))
	for i, c := range t.cols {
		oCols[i], nCols[i] = vcol(fmt.Sprintf("o%d", i)), vcol(fmt.Sprintf("n%d", i))
		if blind && c.blind != nil {
			xCols[i] = vcol(fmt.Sprintf("x%d", i))
		}
	}
	b.WriteString("UPDATE " + t.qtable + " AS kw_t SET ")
	for i, c := range t.cols {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(b, "%s = CASE WHEN kw_t.%s = %s THEN %s ELSE kw_t.%s END", c.q, c.q, oCols[i], nCols[i], c.q)
		if xCols[i] != "" {
			fmt.Fprintf(b, ", %s = CASE WHEN kw_t.%s = %s AND %s IS NOT NULL THEN %s ELSE kw_t.%s END", c.blindQ, c.q, oCols[i], xCols[i], xCols[i], c.blindQ)
		}
	}
	if t.pg {
		if err := t.arrays(b, rows, names, xCols); err != nil {
			return false, err
		}
	} else {
		b.WriteString(" FROM (VALUES ")
		for ri, r := range rows {
			if ri > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(")
			b.arg(ri)
			for i := range t.keys {
				b.WriteString(", ")
				b.arg(r.key[i])
			}
			for i := range t.cols {
				b.WriteString(", ")
				b.arg(r.old[i])
				b.WriteString(", ")
				b.arg(r.new[i])
				if xCols[i] != "" {
					b.WriteString(", ")
					b.arg(r.blind[i])
				}
			}
			b.WriteString(")")
		}
		b.WriteString(") AS kw_v")
	}
	b.WriteString(" WHERE ")
	if guard != nil {
		b.WriteString("EXISTS (SELECT 1 FROM kw_lease) AND ")
	}
	for i, k := range t.keys {
		fmt.Fprintf(b, "kw_t.%s = %s AND ", k.q, kCols[i])
	}
	b.WriteString("(")
	for i, c := range t.cols {
		if i > 0 {
			b.WriteString(" OR ")
		}
		fmt.Fprintf(b, "kw_t.%s = %s", c.q, oCols[i])
	}
	b.WriteString(") RETURNING ")
	if t.pg {
		// PostgreSQL returns the batch index and, per column, whether the
		// new token is what the row now holds.
		b.WriteString(iCol)
		for i, c := range t.cols {
			fmt.Fprintf(b, ", kw_t.%s = %s", c.q, nCols[i])
		}
	} else {
		// SQLite's RETURNING sees only the table: the key and the values.
		b.WriteString(t.keyList(""))
		for _, c := range t.cols {
			b.WriteString(", " + c.q)
		}
	}
	res, err := b.query(ctx, db)
	if err != nil {
		return false, fmt.Errorf("gormcrypt: target %s: write a batch: %w", t.table, err)
	}
	defer res.Close()
	returned := false
	if t.pg {
		ok := make([]sql.NullBool, len(t.cols))
		dest := make([]any, 1+len(t.cols))
		var ri int
		dest[0] = &ri
		for i := range ok {
			dest[1+i] = &ok[i]
		}
		for res.Next() {
			returned = true
			if err := res.Scan(dest...); err != nil {
				return false, fmt.Errorf("gormcrypt: target %s: write a batch: %w", t.table, err)
			}
			if ri < 0 || ri >= len(rows) {
				return false, fmt.Errorf("gormcrypt: target %s: write a batch: unexpected row index", t.table)
			}
			for i, o := range ok {
				if o.Valid && o.Bool && rows[ri].idx[i] >= 0 {
					written[rows[ri].idx[i]] = true
				}
			}
		}
	} else {
		byKey := make(map[string]*swapRow, len(rows))
		for _, r := range rows {
			byKey[r.text] = r
		}
		dest := make([]any, len(t.keys)+len(t.cols))
		vals := make([]any, len(t.cols))
		for i := range vals {
			dest[len(t.keys)+i] = &vals[i]
		}
		for res.Next() {
			returned = true
			_, text, err := t.scanKey(res, dest)
			if err != nil {
				return false, err
			}
			r := byKey[string(text)]
			if r == nil {
				continue
			}
			for i, v := range vals {
				if r.idx[i] < 0 {
					continue
				}
				var s string
				switch x := v.(type) {
				case string:
					s = x
				case []byte:
					s = string(x)
				}
				if s == r.new[i] {
					written[r.idx[i]] = true
				}
			}
		}
	}
	if err := res.Err(); err != nil {
		return false, fmt.Errorf("gormcrypt: target %s: write a batch: %w", t.table, err)
	}
	return returned, nil
}

// arrays writes the FROM clause of PostgreSQL's batch UPDATE: unnest of
// one array per column of names (i, the keys, then per column old, new and,
// in xCols, blind index), each cast to the array of its column's type.
func (t *Target) arrays(b *sqlBuf, rows []*swapRow, names, xCols []string) error {
	idx := make([]int64, len(rows))
	for i := range idx {
		idx[i] = int64(i)
	}
	b.WriteString(" FROM unnest(")
	b.argAs(idx, "bigint[]")
	for ki, k := range t.keys {
		vals := make([]any, len(rows))
		for i, r := range rows {
			vals[i] = r.key[ki]
		}
		arr, err := keyArray(vals)
		if err != nil {
			return fmt.Errorf("gormcrypt: target %s: key %s: %w", t.table, k.name, err)
		}
		b.WriteString(", ")
		b.argAs(arr, t.types[strings.ToLower(k.name)]+"[]")
	}
	for ci, c := range t.cols {
		typ := t.types[strings.ToLower(c.name)] + "[]"
		olds, news := make([]*string, len(rows)), make([]*string, len(rows))
		for i, r := range rows {
			if o, ok := r.old[ci].(string); ok {
				n := r.new[ci].(string)
				olds[i], news[i] = &o, &n
			}
		}
		b.WriteString(", ")
		b.argAs(olds, typ)
		b.WriteString(", ")
		b.argAs(news, typ)
		if xCols[ci] != "" {
			xs := make([][]byte, len(rows))
			for i, r := range rows {
				xs[i], _ = r.blind[ci].([]byte)
			}
			b.WriteString(", ")
			b.argAs(xs, t.types[strings.ToLower(c.blind.index.DBName)]+"[]")
		}
	}
	b.WriteString(") AS kw_v(" + strings.Join(names, ", ") + ")")
	return nil
}

// keyArray returns key values as one typed slice that the PostgreSQL
// driver sends as an array: their driver values, all text, integers or
// bytes.
func keyArray(vals []any) (any, error) {
	dv := make([]driver.Value, len(vals))
	for i, v := range vals {
		var err error
		if dv[i], err = driver.DefaultParameterConverter.ConvertValue(v); err != nil {
			return nil, err
		}
	}
	switch dv[0].(type) {
	case string:
		out := make([]string, len(dv))
		for i, v := range dv {
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("mixed key types %T and %T", dv[0], v)
			}
			out[i] = s
		}
		return out, nil
	case int64:
		out := make([]int64, len(dv))
		for i, v := range dv {
			n, ok := v.(int64)
			if !ok {
				return nil, fmt.Errorf("mixed key types %T and %T", dv[0], v)
			}
			out[i] = n
		}
		return out, nil
	case []byte:
		out := make([][]byte, len(dv))
		for i, v := range dv {
			b, ok := v.([]byte)
			if !ok {
				return nil, fmt.Errorf("mixed key types %T and %T", dv[0], v)
			}
			out[i] = b
		}
		return out, nil
	}
	return nil, fmt.Errorf("key values of type %T cannot be sent as an array", dv[0])
}

// loadTypes reads the PostgreSQL types of the target's columns, once.
func (t *Target) loadTypes(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.types != nil {
		return nil
	}
	rows, err := t.db.WithContext(ctx).Raw("SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a WHERE a.attrelid = to_regclass(?) AND a.attnum > 0 AND NOT a.attisdropped", t.qtable).Rows()
	if err != nil {
		return fmt.Errorf("gormcrypt: target %s: column types: %w", t.table, err)
	}
	defer rows.Close()
	types := map[string]string{}
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			return fmt.Errorf("gormcrypt: target %s: column types: %w", t.table, err)
		}
		types[strings.ToLower(name)] = typ
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("gormcrypt: target %s: column types: %w", t.table, err)
	}
	for _, k := range t.keys {
		if types[strings.ToLower(k.name)] == "" {
			return fmt.Errorf("gormcrypt: target %s: no column %s", t.table, k.name)
		}
	}
	t.types = types
	return nil
}

// goKey is the key codec of a model's primary key field: values of the
// field's Go type, bound as the serializer binds them.
type goKey struct{ typ reflect.Type }

func (g goKey) dest() any { return reflect.New(g.typ).Interface() }

func (g goKey) value(dest any) (any, error) { return reflect.ValueOf(dest).Elem().Interface(), nil }

func (g goKey) appendAAD(buf []byte, v any) ([]byte, error) {
	out, ok := appendKey(buf, reflect.ValueOf(v))
	if !ok {
		return nil, fmt.Errorf("%w: a primary key value of type %s cannot be bound", ErrPrimaryKey, g.typ)
	}
	return out, nil
}

func (g goKey) appendText(buf []byte, v any) []byte { return appendKeyText(buf, reflect.ValueOf(v)) }

func (g goKey) marshal(v any) (json.RawMessage, error) { return json.Marshal(v) }

func (g goKey) unmarshal(m json.RawMessage) (any, error) {
	p := reflect.New(g.typ)
	if err := json.Unmarshal(m, p.Interface()); err != nil {
		return nil, err
	}
	return p.Elem().Interface(), nil
}

// rawKey is the key codec of a registry target: values as the database
// returns them (text, integers, bytes), bound in the encoding the registry
// recorded.
type rawKey struct{ enc string }

func (r rawKey) dest() any { return new(any) }

func (r rawKey) value(dest any) (any, error) {
	switch x := (*dest.(*any)).(type) {
	case []byte:
		if r.enc == encBytes {
			return bytes.Clone(x), nil
		}
		return string(x), nil
	case string, int64:
		return x, nil
	case [16]byte:
		return x[:], nil
	case nil:
		return nil, errors.New("NULL primary key")
	default:
		return nil, fmt.Errorf("a primary key value of type %T", x)
	}
}

func (r rawKey) appendAAD(buf []byte, v any) ([]byte, error) { return appendKeyValue(buf, r.enc, v) }

func (r rawKey) appendText(buf []byte, v any) []byte {
	if b, ok := v.([]byte); ok {
		return fmt.Appendf(buf, "%x", b)
	}
	return fmt.Append(buf, v)
}

// rawCursor is the JSON of a raw key value in a cursor.
type rawCursor struct {
	S *string `json:"s,omitempty"`
	I *int64  `json:"i,omitempty"`
	B []byte  `json:"b,omitempty"`
}

func (r rawKey) marshal(v any) (json.RawMessage, error) {
	var c rawCursor
	switch x := v.(type) {
	case string:
		c.S = &x
	case int64:
		c.I = &x
	case []byte:
		c.B = x
	default:
		return nil, fmt.Errorf("a primary key value of type %T", v)
	}
	return json.Marshal(c)
}

func (r rawKey) unmarshal(m json.RawMessage) (any, error) {
	var c rawCursor
	if err := json.Unmarshal(m, &c); err != nil {
		return nil, err
	}
	switch {
	case c.S != nil:
		return *c.S, nil
	case c.I != nil:
		return *c.I, nil
	case c.B != nil:
		return c.B, nil
	}
	return nil, errors.New("empty key")
}
