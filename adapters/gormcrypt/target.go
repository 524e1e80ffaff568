package gormcrypt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/keyward/keyward/cipher"
	"github.com/keyward/keyward/rotation"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
	"gorm.io/gorm/schema"
)

// Target is a rotation.Target over the encrypted columns of one GORM
// model: the job of rotation.Reencrypt after a key rotation, and the bulk
// encryption of legacy plaintext rows that WithLegacyPlaintext promises.
//
// It reads rows in primary-key order with plain SQL (every row, soft
// deleted ones too, no hooks), binds each value to the associated data
// gormcrypt uses for it (table, column and, when bound, the row's key), and
// rewrites each value with
//
//	UPDATE table SET column = new WHERE key = ? AND column = old
//
// so a row changed by the application meanwhile is never overwritten; the
// updates of one batch run in one transaction (SwapAll), so a batch costs
// one commit. Rows
// read back through GORM decrypt as before. Updated-at columns are not
// touched: the data did not change.
//
// When the Crypt on db has WithLegacyPlaintext, a value that is not a token
// is reported as rotation.FormatPlaintext and encrypted by the job, and a
// blind index of its field is written in the same UPDATE. Otherwise such a
// value fails the job (fail closed). Legacy values swapped are kept out of
// the SQL logger, which would print them.
//
// A Target is safe for concurrent use.
type Target struct {
	db     *gorm.DB
	c      *Crypt
	s      *schema.Schema
	pk     *schema.Field
	fields []*fieldInfo
	query  string   // SELECT of the first batch
	after  string   // SELECT of a batch after a cursor
	counts []string // per field, the SELECT that counts its values by token header
	name   string   // TargetName
}

var (
	_ rotation.BatchTarget = (*Target)(nil)
	_ rotation.NamedTarget = (*Target)(nil)
	_ rotation.KeyCounter  = (*Target)(nil)
)

// NewTarget returns a Target over model's encrypted fields (all of them,
// or those named, by field or column name). db must have a Crypt
// registered (Register); the model needs a single-column primary key.
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
	if len(s.PrimaryFields) != 1 {
		return nil, fmt.Errorf("%w: a rotation target needs a single-column primary key; %s has %d", ErrUnsupported, s.Name, len(s.PrimaryFields))
	}
	t := &Target{db: db, c: c, s: s, pk: s.PrimaryFields[0]}
	if len(fields) == 0 {
		t.fields = info.fields
	}
	for _, name := range fields {
		fi := info.lookup(s, name)
		if fi == nil {
			return nil, fmt.Errorf("%w: %s has no encrypted field %q", ErrTag, s.Name, name)
		}
		for _, have := range t.fields {
			if have == fi {
				return nil, fmt.Errorf("gormcrypt: target: field %q named twice", name)
			}
		}
		t.fields = append(t.fields, fi)
	}
	if len(t.fields) == 0 {
		return nil, fmt.Errorf("%w: %s has no encrypted fields", ErrTag, s.Name)
	}
	cols := []string{stmt.Quote(t.pk.DBName)}
	names := make([]string, len(t.fields))
	for i, fi := range t.fields {
		col := stmt.Quote(fi.column)
		cols = append(cols, col)
		names[i] = fi.column
		// The first 12 characters of a text token ("kw1." and the base64url
		// of the 6 header bytes) name its key; what is not a token counts
		// under key ID 0.
		t.counts = append(t.counts, "SELECT CASE WHEN SUBSTR("+col+", 1, 4) = 'kw1.' THEN SUBSTR("+col+", 1, 12) ELSE '' END, COUNT(*) FROM "+
			stmt.Quote(s.Table)+" WHERE "+col+" IS NOT NULL GROUP BY 1")
	}
	t.name = "gormcrypt:" + s.Table + "(" + strings.Join(names, ",") + ")"
	base := "SELECT " + strings.Join(cols, ", ") + " FROM " + stmt.Quote(s.Table)
	order := " ORDER BY " + stmt.Quote(t.pk.DBName) + " LIMIT ?"
	t.query = base + order
	t.after = base + " WHERE " + stmt.Quote(t.pk.DBName) + " > ?" + order
	return t, nil
}

// TargetName implements rotation.NamedTarget: "gormcrypt:TABLE(COLUMNS)".
func (t *Target) TargetName() string { return t.name }

// CountByKey implements rotation.KeyCounter: one GROUP BY per encrypted
// column over the token headers, counting every row (soft-deleted ones
// too), without reading the values.
func (t *Target) CountByKey(ctx context.Context) (map[uint32]int64, error) {
	counts := map[uint32]int64{}
	for _, q := range t.counts {
		if err := t.countInto(ctx, q, counts); err != nil {
			return nil, fmt.Errorf("gormcrypt: target %s: count values by key: %w", t.s.Table, err)
		}
	}
	return counts, nil
}

func (t *Target) countInto(ctx context.Context, q string, counts map[uint32]int64) error {
	rows, err := t.db.WithContext(ctx).Raw(q).Rows()
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			header []byte
			n      int64
		)
		if err := rows.Scan(&header, &n); err != nil {
			return err
		}
		id, _ := cipher.PeekTextKeyID(string(header)) // 0: not a token
		counts[id] += n
	}
	return rows.Err()
}

// targetRow is Value.Row: the row's key and the value's field.
type targetRow struct {
	key any // the primary key value, of the field's type
	fi  *fieldInfo
}

// targetCursor is the JSON of a cursor: the table and the last key.
type targetCursor struct {
	Table string          `json:"table"`
	Key   json.RawMessage `json:"key"`
}

// Scan implements rotation.Target: the encrypted values of up to limit
// rows after cursor, in primary-key order.
func (t *Target) Scan(ctx context.Context, cursor string, limit int) ([]rotation.Value, string, error) {
	db := t.db.WithContext(ctx)
	var q *gorm.DB
	if cursor == "" {
		q = db.Raw(t.query, limit)
	} else {
		key, err := t.decodeCursor(cursor)
		if err != nil {
			return nil, "", err
		}
		q = db.Raw(t.after, key, limit)
	}
	rows, err := q.Rows()
	if err != nil {
		return nil, "", fmt.Errorf("gormcrypt: target %s: %w", t.s.Table, err)
	}
	defer rows.Close()
	var (
		out  []rotation.Value
		last reflect.Value
	)
	raw := make([]any, len(t.fields))
	dest := make([]any, 1+len(t.fields))
	for i := range raw {
		dest[1+i] = &raw[i]
	}
	for rows.Next() {
		key := reflect.New(t.pk.FieldType)
		dest[0] = key.Interface()
		if err := rows.Scan(dest...); err != nil {
			return nil, "", fmt.Errorf("gormcrypt: target %s: %w", t.s.Table, err)
		}
		row := reflect.New(t.s.ModelType).Elem()
		if err := t.pk.Set(ctx, row, key.Elem().Interface()); err != nil {
			return nil, "", fmt.Errorf("gormcrypt: target %s: primary key: %w", t.s.Table, err)
		}
		last = key.Elem()
		keyText := string(appendKeyText(nil, last))
		for i, fi := range t.fields {
			var stored []byte
			switch x := raw[i].(type) {
			case nil:
				continue // NULL: nothing stored
			case string:
				stored = []byte(x)
			case []byte:
				stored = bytes.Clone(x)
			default:
				return nil, "", fmt.Errorf("%w: %s.%s holds a %T, not a token", ErrNotEncrypted, fi.table, fi.column, raw[i])
			}
			aad, err := fi.appendAAD(ctx, nil, row, reflect.Value{})
			if err != nil {
				return nil, "", err
			}
			f := rotation.FormatText
			if t.c.cfg.legacy && !cipher.IsText(string(stored)) {
				f = rotation.FormatPlaintext
			}
			out = append(out, rotation.Value{
				ID:     fi.table + "/" + keyText + "/" + fi.column,
				Stored: stored, AAD: aad, Format: f,
				Row: targetRow{key: last.Interface(), fi: fi},
			})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("gormcrypt: target %s: %w", t.s.Table, err)
	}
	if !last.IsValid() {
		return nil, cursor, nil
	}
	next, err := t.encodeCursor(last)
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

func (t *Target) encodeCursor(key reflect.Value) (string, error) {
	k, err := json.Marshal(key.Interface())
	if err != nil {
		return "", fmt.Errorf("gormcrypt: target %s: primary key as cursor: %w", t.s.Table, err)
	}
	b, err := json.Marshal(targetCursor{Table: t.s.Table, Key: k})
	return string(b), err
}

func (t *Target) decodeCursor(cursor string) (any, error) {
	var c targetCursor
	if err := json.Unmarshal([]byte(cursor), &c); err != nil || c.Table != t.s.Table || len(c.Key) == 0 {
		return nil, fmt.Errorf("%w: cursor is not one of table %s", rotation.ErrCheckpoint, t.s.Table)
	}
	key := reflect.New(t.pk.FieldType)
	if err := json.Unmarshal(c.Key, key.Interface()); err != nil {
		return nil, fmt.Errorf("%w: cursor key of table %s does not decode", rotation.ErrCheckpoint, t.s.Table)
	}
	return key.Elem().Interface(), nil
}

// Swap implements rotation.Target: it writes token in place of v's value
// if the row still holds v.Stored.
func (t *Target) Swap(ctx context.Context, v rotation.Value, token []byte) (bool, error) {
	return t.swap(ctx, t.db.WithContext(ctx), v, token)
}

// SwapAll implements rotation.BatchTarget: the swaps of a batch in one
// transaction, each with its own compare-and-swap.
func (t *Target) SwapAll(ctx context.Context, swaps []rotation.Swap) ([]bool, error) {
	written := make([]bool, len(swaps))
	err := t.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for i, s := range swaps {
			ok, err := t.swap(ctx, tx, s.Value, s.Token)
			if err != nil {
				return err
			}
			written[i] = ok
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return written, nil
}

func (t *Target) swap(ctx context.Context, db *gorm.DB, v rotation.Value, token []byte) (bool, error) {
	r, ok := v.Row.(targetRow)
	if !ok || r.fi == nil {
		return false, errors.New("gormcrypt: target: value not scanned by this target")
	}
	fi := r.fi
	stmt := db.Statement
	set := stmt.Quote(fi.column) + " = ?"
	args := []any{string(token)}
	if v.Format == rotation.FormatPlaintext {
		// Keep legacy plaintext (the compared value) out of the SQL log.
		db = db.Session(&gorm.Session{Logger: db.Logger.LogMode(logger.Silent)})
		if fi.blind != nil {
			st := &state{c: t.c}
			k, err := st.blindKey(ctx, fi)
			if err != nil {
				return false, err
			}
			set += ", " + stmt.Quote(fi.blind.index.DBName) + " = ?"
			args = append(args, fi.blind.compute(k, string(v.Stored)))
		}
	}
	q := "UPDATE " + stmt.Quote(t.s.Table) + " SET " + set +
		" WHERE " + stmt.Quote(t.pk.DBName) + " = ? AND " + stmt.Quote(fi.column) + " = ?"
	args = append(args, r.key, string(v.Stored))
	res := db.Exec(q, args...)
	if res.Error != nil {
		return false, fmt.Errorf("gormcrypt: target %s: %w", v.ID, res.Error)
	}
	return res.RowsAffected == 1, nil
}
