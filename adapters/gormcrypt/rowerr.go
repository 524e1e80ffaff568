package gormcrypt

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"sync"

	"gorm.io/gorm"
)

// GORM's Row has no error result: when a statement fails before it runs,
// Row returns a nil *sql.Row, and the caller's row.Scan panics. On a
// registered handle a Row statement that failed (refused by gormcrypt, or
// any other error) returns a *sql.Row whose Err and Scan report the error.
// Such a row comes from failedRows, a database/sql handle whose driver
// answers every query with the error carried in the query's context; it
// opens no connection to anything.

// failedRow returns a *sql.Row reporting err.
func failedRow(ctx context.Context, err error) *sql.Row {
	return failedRows().QueryRowContext(context.WithValue(ctx, failedRowKey{}, err), "")
}

type failedRowKey struct{}

var failedRows = sync.OnceValue(func() *sql.DB { return sql.OpenDB(failedConnector{}) })

type failedConnector struct{}

func (failedConnector) Connect(context.Context) (driver.Conn, error) { return failedConn{}, nil }
func (failedConnector) Driver() driver.Driver                        { return failedDriver{} }

type failedDriver struct{}

func (failedDriver) Open(string) (driver.Conn, error) { return failedConn{}, nil }

type failedConn struct{}

var errFailedConn = errors.New("gormcrypt: statement failed")

func (failedConn) Prepare(string) (driver.Stmt, error) { return nil, errFailedConn }
func (failedConn) Close() error                        { return nil }
func (failedConn) Begin() (driver.Tx, error)           { return nil, errFailedConn }

// QueryContext implements driver.QueryerContext: it reports the error in ctx.
func (failedConn) QueryContext(ctx context.Context, _ string, _ []driver.NamedValue) (driver.Rows, error) {
	if err, ok := ctx.Value(failedRowKey{}).(error); ok {
		return nil, err
	}
	return nil, errFailedConn
}

// fixFailedRow gives a failed Row statement a *sql.Row that reports its
// error (see failedRow).
func fixFailedRow(db *gorm.DB) {
	if db.Error == nil {
		return
	}
	if rows, ok := db.Get("rows"); !ok || rows != false {
		return
	}
	if _, ok := db.Statement.Dest.(*sql.Row); ok {
		return
	}
	ctx := db.Statement.Context
	if ctx == nil {
		ctx = context.Background()
	}
	db.Statement.Dest = failedRow(ctx, db.Error)
}
