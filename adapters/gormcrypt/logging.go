package gormcrypt

import (
	"context"
	"database/sql/driver"
	"fmt"
	"reflect"
	"sync"

	"github.com/keyward/keyward/cipher"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"
)

// finish runs last in every chain: it restores rewritten conditions (so
// FirstOrCreate assigns the plaintext it searched for), records the
// statement's telemetry, and replaces
// encrypted values in the statement's variables with a placeholder, so the
// SQL logger neither logs them nor calls the serializer a second time.
func (c *Crypt) finish(db *gorm.DB) {
	stmt := db.Statement
	if st := stateFrom(stmt.Context); st != nil && st.stmt == stmt {
		if st.savedWhere != nil {
			if cl, ok := st.savedWhere.value.(clause.Clause); ok {
				stmt.Clauses["WHERE"] = cl
			}
			st.savedWhere = nil
		}
		st.restoreMaps()
		if st.kind == "row" {
			fixFailedRow(db)
		}
		st.endTelemetry(db)
	}
	redactVars(stmt.Vars, stmt.DB.DryRun)
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

// wrapperFieldIndex is the index of the wrapper's Field field (the
// *schema.Field it serializes), or -1; looked up by name once, since
// FieldByName on every statement variable showed in the Create profile.
var wrapperFieldIndex = sync.OnceValue(func() int {
	t := wrapperType()
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return -1
	}
	f, ok := t.Elem().FieldByName("Field")
	if !ok || len(f.Index) != 1 {
		return -1
	}
	return f.Index[0]
})

// redactVars replaces the encrypted values among a statement's variables,
// which the SQL logger renders after the statement ran. In a dry run
// nothing has been encrypted yet (the serializer encrypts when a value is
// sent), and nothing will be: each becomes dryRunValue, which the logger
// shows as Redacted and a database refuses, so dry-run SQL never carries a
// token or plaintext, and executing it fails instead of writing a
// placeholder.
func redactVars(vars []any, dryRun bool) {
	for i, v := range vars {
		switch x := v.(type) {
		case string:
			if cipher.IsText(x) {
				vars[i] = Redacted
			}
		case nil, []byte, int, int64, uint, uint64, bool:
		case *sealOnce, shownToken:
			vars[i] = Redacted
		default:
			if ourWrapperField(v) != nil {
				if dryRun {
					vars[i] = dryRunValue{}
				} else {
					vars[i] = Redacted
				}
			}
		}
	}
}

// dryRunValue stands for an encrypted value in the variables of a dry run.
type dryRunValue struct{}

// errDryRun is what a database driver gets for a dryRunValue.
var errDryRun = fmt.Errorf("%w: the SQL of a dry run holds no encrypted values and cannot be executed: run the statement itself", ErrUnsupported)

// Value implements driver.Valuer: it fails, so that executing dry-run SQL
// fails; the SQL logger ignores the error and shows Redacted.
func (dryRunValue) Value() (driver.Value, error) { return Redacted, errDryRun }
