package gormcrypt

import (
	"context"
	"database/sql"
	"reflect"

	"gorm.io/gorm"
)

// rowsKey marks the context of a Row statement made by Rows.
type rowsKey struct{}

// Rows is db.Rows() for a statement that selects encrypted columns: GORM's
// Row, Rows and Scan give what is stored, so gormcrypt refuses them on such
// a selection (ErrUnsupported); Rows asks for the rows anyway, with the
// primary key columns first, for ScanRows to decrypt:
//
//	rows, err := gormcrypt.Rows(db.Model(&Patient{}).Where("name = ?", n))
//	defer rows.Close()
//	for rows.Next() {
//		var p Patient
//		err := gormcrypt.ScanRows(db, rows, &p)
//	}
//
// A caller that scans the rows by hand (rows.Scan) gets the tokens, as with
// hand-written SQL.
func Rows(db *gorm.DB) (*sql.Rows, error) {
	ctx := db.Statement.Context
	if ctx == nil {
		ctx = context.Background()
	}
	return db.WithContext(context.WithValue(ctx, rowsKey{}, true)).Rows()
}

// ScanRows is db.ScanRows for rows read outside GORM's callbacks (from Rows
// or db.Raw(...).Rows()), whose encrypted fields need db's Crypt to decrypt.
// dest must be a struct whose fields receiving encrypted columns have the
// serializer (a model); a map or a string that receives a token fails with
// ErrUnsupported. Plain db.ScanRows on such rows fails with
// ErrNotRegistered. An encrypted field bound to the primary key needs the
// key column before it in the rows (Rows puts it first).
func ScanRows(db *gorm.DB, rows *sql.Rows, dest any) error {
	c, err := fromDB(db)
	if err != nil {
		return err
	}
	ctx := db.Statement.Context
	if ctx == nil {
		ctx = context.Background()
	}
	st := &state{c: c}
	if err := db.WithContext(context.WithValue(ctx, stateKey{}, st)).ScanRows(rows, dest); err != nil {
		return err
	}
	return refuseTokens(reflect.ValueOf(dest), db.Statement)
}

// refuseTokens fails when a map or single value scanned by hand holds a
// token (struct fields with the serializer were decrypted; other struct
// fields are GORM's to fill from the columns they name).
func refuseTokens(v reflect.Value, stmt *gorm.Statement) error {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			if err := refuseTokens(iter.Value(), stmt); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice, reflect.Array:
		if isBytes(v.Type()) {
			return refuseToken(v, stmt)
		}
		for i := range v.Len() {
			if err := refuseTokens(v.Index(i), stmt); err != nil {
				return err
			}
		}
		return nil
	}
	return refuseToken(v, stmt)
}
