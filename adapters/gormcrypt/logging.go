package gormcrypt

import (
	"context"
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
		st.endTelemetry(db)
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
