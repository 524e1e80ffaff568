// Package dbtest opens fresh databases for tests: a SQLite file in the
// test's temporary directory always, and a PostgreSQL schema of its own when
// KEYWARD_PG_DSN is set. With CI set and KEYWARD_PG_DSN missing, the
// PostgreSQL variant fails instead of skipping, so a CI run cannot silently
// lose its PostgreSQL coverage.
//
// Every database is new and private to one test (a new file, a new schema
// dropped in t.Cleanup), so test packages that run in parallel never share
// tables.
//
//	func TestSomething(t *testing.T) {
//		dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
//			// db is a fresh SQLite database, then a fresh PostgreSQL schema
//		})
//	}
//
// Reopen opens a second handle on the same database, as a second process
// would. Every Open uses a *gorm.Config of its own (GORM must not see one
// Config twice).
package dbtest
