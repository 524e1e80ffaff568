// Package gormcrypt encrypts GORM struct fields transparently, with blind
// indexes for equality lookups, and keeps keyrings in the database.
//
// A field tagged `gorm:"serializer:keyward"` is encrypted with a keyring
// before it reaches the database and decrypted when it comes back: string,
// []byte, pointers to them, and any JSON-able type (structs, maps, slices).
// A nil pointer, slice or map is stored as NULL. The stored value is a text
// token ("kw1." + base64url), so the column is text (GORM's default for a
// serializer):
//
//	type Patient struct {
//		ID       uuid.UUID `gorm:"type:varchar(36);primaryKey"`
//		Name     string
//		SSN      string `gorm:"serializer:keyward"`
//		Email    string `gorm:"serializer:keyward" keyward:"blind:EmailIdx;normalize:lower,trim"`
//		EmailIdx []byte `gorm:"index"`
//	}
//
//	crypt, err := gormcrypt.Register(db, kr, gormcrypt.WithModels(&Patient{}))
//	err = db.AutoMigrate(&Patient{})
//	db.Create(&Patient{ID: uuid.New(), SSN: "123-45-6789", Email: "ada@example.com"})
//	gormcrypt.Where(db, "Email", "ADA@example.com").First(&p)
//	db.Where(&Patient{Email: "ada@example.com"}).First(&p) // the same lookup
//
// The keyward tag takes entries separated by ';': blind:<field> (the []byte
// field holding the blind index), bits:<8-256> (its length, default 32),
// normalize:lower,trim, and redact:<text> (what a refused decryption shows).
//
// # Binding
//
// Each value's associated data is the table and column and, when the model's
// primary key is assigned by the client (UUID, ULID, or any key that is not
// auto-increment and has no database default), the row's primary key: a
// token copied to another column or row fails with keyring.ErrDecrypt. With
// auto-increment keys the key is not known before the insert, so values are
// bound to table and column only. The table is the one GORM derives for the
// struct declaring the field (db.Table overrides do not change it); a
// smaller struct read from the table must name it with TableName. One column
// has one binding: two models that declare it differently (with and without
// the primary key, or different blind indexes) fail with ErrTag.
//
// On PostgreSQL the table is bound with its schema when the handle's
// current schema (the first schema of its search_path, read once when the
// Crypt is registered) is not public: tenants kept in schemas of their own
// may share a keyring, and a row copied from one tenant's table to another's
// does not decrypt. A Crypt serves the handles of one schema; a connection
// that changes search_path after registration is not seen, so qualify the
// tables (TableName "tenant.patients") if connections switch schemas.
//
// # The guard
//
// gormcrypt knows every encrypted column of every model it has seen (in a
// statement, through WithModels, or as a relation of such a model), by
// table, matched the way databases match names: in any letter case, quoted
// or not, with or without the table prefix. GORM builds every statement from
// clauses, and gormcrypt checks the clauses that carry values into columns
// (VALUES, SET, ON CONFLICT), out of them (SELECT) and the conditions
// (WHERE) as they are built, whatever path the statement took: a value for
// an encrypted column must be one the serializer encrypts with the column's
// binding, a result must go to a destination that decrypts it, a condition
// may not compare the column with a value except through its blind index.
// Anything else fails before any SQL is sent. Its callbacks run before and
// after GORM's own, which they never replace, so other plugins (tracing,
// dbresolver) compose with it.
//
// A model that no statement on the handle has used yet is not known: a
// write into its table through a path that names no model (Table(name)
// with a map) before then is not recognized. Register with WithModels to
// close that window. db.AutoMigrate may come before or after Register.
//
// GORM's Scan, Row and Rows give what is stored, so they fail with
// ErrUnsupported when the selection includes an encrypted column; Find
// decrypts into the same destinations, and Rows with ScanRows reads row by
// row. SQL that GORM does not build (Exec, and Raw scanned into anything but
// a model) is the caller's: it sees what is stored.
//
// The SQL logger, and any plugin that renders a statement's variables,
// sees Redacted in place of every encrypted value, and a value is encrypted
// once however often it is rendered. A dry run (DryRun, ToSQL) encrypts
// nothing: its SQL shows Redacted, and executing its variables fails.
//
// GORM's serializer registry is global, so the serializer holds no keyring:
// Crypt's callbacks put the Crypt of the *gorm.DB running a statement into
// the statement's context, and the serializer takes it from there. Two
// databases registered with different keyrings never cross, and a handle
// without a registration fails with ErrNotRegistered.
//
// # Every GORM path
//
// What each path does with an encrypted column. The list is checked against
// a test matrix that runs every statement kind, destination, source and
// spelling of the column on SQLite and PostgreSQL, with and without the
// go-gorm tracing and dbresolver plugins, and checks that no plaintext
// reaches the table, the SQL log (also of dry runs) or a span, that no token
// is returned as data, and that a statement that fails wrote nothing.
// "Encrypts" and "decrypts" mean with the binding of the field that declares
// the column.
//
// Writing an encrypted column:
//
//   - a condition that compares the column with a value when it has no blind
//     index, as in Delete with Where or a map (and in every other statement):
//     fails with ErrNotSearchable.
//   - a clause.Set that assigns the column, whatever the destination: fails
//     with ErrUnsupported.
//   - any write of the column through a struct of the table whose field has
//     no serializer:keyward: fails with ErrUnsupported.
//   - any write of the column without a model: Create, Update, Updates,
//     UpdateColumn(s) on Table(name) with a map or value: fails with
//     ErrUnsupported.
//   - Create, CreateInBatches, Save, FirstOrCreate (also with Attrs or
//     Assign) and upserts with UpdateAll, of a model: pointer, slice, slice
//     of pointers, or with Table(name): encrypts.
//   - the same, of another struct of the table that declares the field with
//     the same binding (TableName, primary key, serializer): encrypts.
//   - the same, of a struct value (not a pointer) of a model with a blind
//     index: fails with ErrUnsupported.
//   - Create of a map or a slice of maps with Model, the column spelled as
//     its field or column name, in any letter case, quoted or qualified by
//     its table: encrypts.
//   - Updates with a struct that names another primary key than the model's,
//     when values are bound to the key: fails with ErrPrimaryKey.
//   - the same when values are bound to table and column only (auto-increment
//     keys): encrypts.
//   - Save, Update, UpdateColumn, Updates and UpdateColumns with a map or a
//     struct, and upserts with UpdateAll, through the model (or Table(name)
//     with it) or another struct of the table with the same binding, the
//     column spelled as its field or column name, in any letter case, quoted
//     or qualified by its table: encrypts.
//   - an upsert that updates the column from the inserted row
//     (AssignmentColumns), the column spelled as its field or column name, in
//     any letter case, quoted or qualified by its table: encrypts.
//   - an upsert that assigns a literal value to the column (Assignments):
//     fails with ErrUnsupported.
//
// Reading it:
//
//   - a selection without encrypted columns: as without gormcrypt.
//   - an SQL expression over the column in the selection, such as
//     Select("upper(ssn)"): fails with ErrUnsupported.
//   - GORM's Scan, Row and Rows (then rows.Scan or db.ScanRows), whatever the
//     destination, as they would give what is stored: fails with
//     ErrUnsupported.
//   - gormcrypt.Rows, then gormcrypt.ScanRows into a model: decrypts.
//   - gormcrypt.Rows, then gormcrypt.ScanRows into a map: fails with
//     ErrUnsupported.
//   - hand-written SQL (Raw) scanned into a model: decrypts.
//   - hand-written SQL (Raw) scanned into anything else, which is the
//     caller's: returns what is stored.
//   - a struct whose field for the column has no serializer:keyward, or that
//     names another table: fails with ErrUnsupported.
//   - First, Take, Last, Find and FindInBatches into a model, a slice of
//     models or of pointers, or another struct of the table with the same
//     binding; through Model, Table(name) or both; any selection that
//     includes the column, the column spelled as its field or column name, in
//     any letter case, quoted or qualified by its table: decrypts.
//   - the same into a map or a slice of maps without a model (Table(name)),
//     selecting the column but not the primary key, when values are bound to
//     the key: fails with ErrPrimaryKey.
//   - the same into a map or a slice of maps otherwise (with a model the key
//     is added to the selection): decrypts.
//   - Find or Pluck of the column alone into strings, when values are bound
//     to the primary key (use Select(...).Find into the model): fails with
//     ErrUnsupported.
//   - Find or Pluck of the column alone into strings, when values are bound
//     to table and column only: decrypts.
//
// # Blind indexes
//
// A blind index is the derive-root key ID (4 bytes) followed by
// HMAC-SHA256 of the normalized plaintext, truncated to bits, under a key
// derived from the keyring per table and column (keyring.DeriveKey). It
// stays stable while data keys rotate; after RotateDerive, lookups match
// both old and new index values until rows are re-indexed (saved again).
// A lookup drops rows whose index collides but whose value differs, so its
// results are exact; Count, Update and Delete by index are not filtered.
//
// # What a blind index leaks
//
// What an index leaks: rows with equal (normalized) values have equal index
// values, so anyone who reads the table learns which rows share a value and how
// often each value occurs — for a low-cardinality field (a blood type, a yes/no)
// that is close to the value itself. It does not leak the length of the value.
// The ciphertext leaks the length of the value (AES-GCM adds a fixed 34 bytes
// before text encoding).
//
// False positives: for a lookup against N rows of which m hold the value, each of
// the other N − m rows matches by chance with probability 2^-bits, so a lookup
// returns on average (N − m) · 2^-bits extra candidates:
//
//	bits  N = 10⁴    N = 10⁶    N = 10⁸
//	8     39         3 906      390 625
//	16    0.15       15         1 526
//	32    2.3·10⁻⁶   2.3·10⁻⁴   0.023
//	64    5.4·10⁻¹⁶  5.4·10⁻¹⁴  5.4·10⁻¹²
//
// Find/First/Take decrypt the candidates and drop the false ones (for
// First, the LIMIT is applied after that), so their results are exact as long
// as the field is read. Count, Update and Delete by index act on all
// candidates. Fewer bits mean more false candidates per lookup but also less
// certainty for an observer that two rows share a value; 32 bits keeps
// collisions negligible up to hundreds of millions of rows.
//
// # Access control
//
// WithAuthorizer asks before a field is encrypted or decrypted (action
// "encrypt" or "decrypt", resource "field:<table>.<column>"), once per field
// per statement, with the statement's context (db.WithContext(ctx)). A
// refusal fails the statement, or for reads shows the field's redaction
// value (tag redact:, or WithRedaction). Writing a field's redaction value
// fails with ErrUnsupported, so a redacted row saved back does not
// overwrite the real value.
//
// # Telemetry
//
// Each statement carries a batch in its context, so the keyring counts into it
// instead of starting a span and recording a metric per value; at the end
// of the statement gormcrypt records the counts in keyward.operations, one
// span SpanStatement+kind under a recording parent, and usage events with
// Count (failures always, every value when event sinks are configured).
// WithTelemetry(telemetry.WithTracerProvider(tp), ...) configures it.
//
// # Legacy plaintext
//
// WithLegacyPlaintext reads column values that are not tokens as plaintext;
// any save writes them back encrypted. Off by default: such values fail with
// ErrNotEncrypted.
//
// # The column registry
//
// Register with WithModels, and AutoMigrate, record every encrypted column
// in a table of the database itself, RegistryTable ("keyward_columns"):
// table, column, binding (table and column, or with the primary key and its
// columns in order), blind index with its bits and normalization, and the
// keyring. Many instances may record the same models at once; a column
// recorded with another binding or keyring fails with ErrTag (changing a
// binding is a migration to a new column). Register loads the registry, so
// a write that names no model (Table(name) with a map) into a registered
// column fails with ErrUnsupported in every process, even before the
// process used the model; a column known only from the registry is
// decrypted only through a model that declares it. The registry is
// written only by Register and AutoMigrate, never inside a statement of
// yours; Columns reads it, and nothing that reads it creates it
// (ErrNoRegistry).
//
// # Rotation
//
// A Target is a rotation.Target over the encrypted columns of one table:
// NewTarget from a model, RegistryTargets from the registry alone, for a
// tool that has no Go model (composite primary keys included; text,
// integer and UUID keys). After keyring.Keyring.Rotate, rotation.Reencrypt
// scans the table in primary-key order and rewrites every value not under
// the primary, with the same associated data. A batch is written with one
// statement (PostgreSQL: an UPDATE ... FROM unnest of arrays; SQLite: an
// UPDATE ... FROM VALUES per chunk), each value its own compare-and-swap,
// so a concurrent application write is never overwritten and the row's
// other values are still swapped. On a handle registered
// WithLegacyPlaintext it also encrypts legacy plaintext values and writes
// their blind indexes in the same statement.
//
// NewJob makes a rotation.Job of a Target, for rotation.ReencryptJob: on
// PostgreSQL several processes, each with several workers, share it
// through leased ranges of the primary key in JobsTable and PartsTable (a
// range's writes and its lease renewal commit together; a killed worker's
// range is taken over once its lease ends, at once when its process on the
// same host is gone); on SQLite one worker holds it and another process
// gets an error wrapping rotation.ErrJobBusy that names the holder.
//
// Inventory counts the values under each key ID in every registered
// column. It reads only the first 12 characters of each value, where a
// token names its key, and groups by them in the database: one sequential
// scan per table, no value leaves the database. Usage is the
// keyring.UsageChecker of a guarded destroy over the same counts:
//
//	kr, err := keyring.New(ctx, "default", src, store,
//		keyring.WithUsageChecker(gormcrypt.NewUsage(db)))
//	err = kr.Destroy(ctx, oldID) // keyring.ErrKeyInUse while values use it
//
// On a table of hundreds of millions of rows, an expression index on
// substr(column, 1, 12) makes KeyInUse an index lookup. The rotation
// package's documentation has the operator's runbook.
//
// # Re-encryption speed
//
// Figures on local PostgreSQL 15 on 2 cores shared with other work, 3
// encrypted columns, batches of 1,000 rows, 4 workers per process; the
// baseline is a plain batched compare-and-swap UPDATE ... FROM (VALUES ...)
// of a table of the same shape and value lengths without crypto, with as
// many workers, in the same run:
//
//	KEYWARD_PG_DSN=... KEYWARD_BENCH_ROWS=100000 go test ./adapters/gormcrypt \
//	    -run '^$' -bench 'BenchmarkFleet/postgres' -benchtime 3x -timeout 1h
//	KEYWARD_PG_DSN=... KEYWARD_BENCH_ROWS=1000000 go test ./adapters/gormcrypt \
//	    -run '^$' -bench 'BenchmarkFleet/postgres' -benchtime 1x -timeout 1h
//
//	rows       processes  rows/s  baseline rows/s  ratio  peak RSS per process  load average
//	100,000    1          31,600  54,600           0.58   77 MiB                1 to 4
//	100,000    2          18,500  42,900           0.43   73 MiB                1 to 4
//	1,000,000  1          14,800  14,800           1.00   79 MiB                10 to 13
//	1,000,000  2          20,700  25,600           0.81   77 MiB                10 to 13
//
// Memory stays flat with the table (a batch at a time). The ratio moves with the
// load of the shared machine (0.43 to 1.00 over the runs): the job spends CPU on
// crypto that PostgreSQL, on the same two cores, would otherwise have, and a
// second process adds no core. Rewrap of 10 data keys takes 2 to 4 ms with
// 100,000 rows and with 1,000,000 (it touches keys, not rows); the inventory of
// the three columns takes 0.14 to 1.0 s on 100,000 rows and 5.3 s on 1,000,000
// rows (one grouped scan per table).
//
// # Key store
//
// NewStore returns a keyring.Store on database tables, with
// compare-and-swap on a version column, so that many instances share one
// keyring, and the encryption counts of every instance summed per key
// (keyring.CountStore).
//
// # Performance
//
// BenchmarkRatio runs plain GORM, the serializer a user would write by hand
// (AES-256-GCM with a cached cipher.AEAD, a random nonce and
// encoding/base64; no binding, no key IDs, no access checks), keyward, and
// keyward with one blind index, interleaved round by round in one run: 1000
// rows with three encrypted strings of 20-40 bytes, Create in batches of
// 100 and Find, with a UUID (row-bound) or auto-increment key. It reports
// each variant's time over plain's, and allocations and bytes per value:
//
//	KEYWARD_PG_DSN=postgres://... go test -run '^$' -bench '^BenchmarkRatio$' -benchtime 30x -count 5 ./adapters/gormcrypt/
//
// Median of 5 runs, UUID / auto-increment key, on an otherwise idle 2-core
// virtual machine with PostgreSQL 15 on the same machine:
//
//	ratio to plain GORM  naive (cached AEAD)  keyward      keyward + blind index
//	SQLite Create        1.35 / 1.45          1.44 / 1.56  1.88 / 2.00
//	SQLite Find          1.34 / 1.42          1.48 / 1.50  1.72 / 1.84
//	PostgreSQL Create    1.45 / 1.56          1.61 / 1.72  1.94 / 2.19
//	PostgreSQL Find      2.47 / 2.10          2.86 / 2.34  2.80 / 2.60
//
// PostgreSQL Find moves most between runs (keyward 2.5-3.1, naive 2.3-2.9
// over the five; 1.87 and 1.46 in a single run with a CPU profile): a
// plain Find of 1000 rows is a few milliseconds, mostly waiting for the
// server on the other core, so the client's per-value work weighs heavily.
// With other work keeping both cores busy (load average 13) the same
// benchmark gave keyward 1.58 / 1.76, 1.54 / 1.58, 1.64 / 1.73 and 1.88 /
// 1.87 (naive 1.47 / 1.63, 1.40 / 1.45, 1.54 / 1.65, 1.60 / 1.82).
//
// Allocations per value, plain / naive / keyward / keyward + blind index
// (UUID key): SQLite Find 7.46 / 10.02 / 8.03 / 9.37 (234 / 450 / 394 / 457
// bytes), SQLite Create 2.54 / 8.54 / 5.59 / 7.05; PostgreSQL Find 5.02 /
// 7.02 / 5.03 / 6.37, Create 3.61 / 9.62 / 6.68 / 8.48.
//
// keyward stays 0.08-0.39 behind the hand-written serializer while it
// binds every value to its table, column and row, carries key IDs, counts
// per key and checks access. Where the time goes on Find (profile of the
// per-value Scan): the keyring's DecryptText about 70% (AES-GCM about a
// third of it, base64 a few percent), the row's key as associated data
// about 11% (built once per row), context lookups 6%, the telemetry check
// 3%, the field lookup 2% (remembered per statement); a token is also 12
// characters longer than the naive serializer's output (the "kw1." prefix
// and the header), which the driver and the database carry. A blind index
// adds 0.24-0.47 (PostgreSQL Find apart): computing it is about 2% of
// Create; the rest is the extra column and its database index.
//
// Telemetry cost, Find of the same rows under a request span with the
// OpenTelemetry SDK recording every span and metrics into a manual reader,
// next to telemetry off (go test -run '^$' -bench '^BenchmarkTelemetryRatio$'
// ./adapters/gormcrypt/): with the analyzer as a span processor (one span
// per statement with its count) 1.04-1.05; as an event sink, which sees
// every value with its data ID, 1.47 on SQLite and 1.56 on PostgreSQL (about
// 0.3 µs per value to build the data ID and run the analyzer's windows).
//
// # Errors
//
// ErrNotRegistered, ErrNotEncrypted, ErrNotSearchable, ErrUnsupported,
// ErrPrimaryKey, ErrTag and ErrNoRegistry; decryption failures wrap the
// keyring's errors (keyring.ErrDecrypt, keyring.ErrKeyNotFound, ...), a
// busy SQLite job rotation.ErrJobBusy. No error contains plaintext,
// ciphertext or key material.
//
// # Concurrency
//
// A Crypt and a Store are safe for concurrent use; register a Crypt before
// the *gorm.DB is shared.
package gormcrypt
