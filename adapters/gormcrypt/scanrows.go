package gormcrypt

import (
	"context"
	"database/sql"

	"gorm.io/gorm"
)

// ScanRows is db.ScanRows for rows read outside GORM's callbacks (from
// db.Rows()), whose encrypted fields need db's Crypt to decrypt. Plain
// db.ScanRows on such rows fails with ErrNotRegistered. An encrypted field
// bound to the primary key needs the key column before it in the rows.
func ScanRows(db *gorm.DB, rows *sql.Rows, dest any) error {
	c, err := fromDB(db)
	if err != nil {
		return err
	}
	ctx := db.Statement.Context
	if ctx == nil {
		ctx = context.Background()
	}
	return db.WithContext(context.WithValue(ctx, stateKey{}, &state{c: c})).ScanRows(rows, dest)
}
