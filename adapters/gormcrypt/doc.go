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
//	crypt, err := gormcrypt.Register(db, kr) // explicit; no init()
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
// smaller struct read from the table must name it with TableName.
//
// # Paths
//
// Every GORM path either encrypts or fails: Create, CreateInBatches, Save,
// First/Find/Take/Last, Joins, Preload, Raw(...).Scan(&model), Update,
// Updates with a map or struct, UpdateColumn(s), FirstOrCreate/FirstOrInit
// with Attrs and Assign, Pluck, Find into maps, Select, upserts
// (clause.OnConflict), soft delete and transactions. Struct and map
// conditions on an indexed field, and the SQL conditions "col = ?" and
// "col IN ?", become blind index lookups; on a field without an index, and
// ranges, LIKE or negations on any encrypted field, they fail with
// ErrNotSearchable. Other SQL text is not inspected. What GORM writes
// without the serializer (map values, Update(column, value)) is encrypted by
// gormcrypt's callbacks; what it reads without it (Pluck, maps) is decrypted
// by them, or refused with ErrUnsupported when the row's key is not
// available. Exec and Raw with hand-written SQL are the caller's: they see
// what is stored.
//
// GORM's serializer registry is global, so the serializer holds no keyring:
// Crypt's callbacks put the Crypt of the *gorm.DB running a statement into
// the statement's context, and the serializer takes it from there. Two
// databases registered with different keyrings never cross, and a handle
// without a registration fails with ErrNotRegistered. Rows scanned outside
// GORM's callbacks go through ScanRows.
//
// The SQL logger sees Redacted in place of every encrypted value, so it logs
// neither plaintext nor ciphertext, and GORM's second call to the serializer
// for rendering SQL never happens.
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
// Each statement carries a telemetry.Batch, so the keyring counts into it
// instead of starting a span and recording a metric per value; at the end
// of the statement gormcrypt records the counts in keyward.operations, one
// span SpanStatement+kind under a recording parent, and usage events with
// Count (failures always, every value when event sinks are configured).
// WithTracerProvider, WithMeterProvider and WithTelemetry configure it.
//
// # Legacy plaintext
//
// WithLegacyPlaintext reads column values that are not tokens as plaintext;
// any save writes them back encrypted. Off by default: such values fail with
// ErrNotEncrypted.
//
// # Rotation
//
// NewTarget is a rotation.Target over a model's encrypted columns: after
// keyring.Keyring.Rotate, rotation.Reencrypt scans the table in primary-key
// order and rewrites every value not under the primary, with the same
// associated data, by compare-and-swap UPDATEs (one transaction per batch),
// so that a concurrent application write is never overwritten. On a handle
// registered WithLegacyPlaintext it also encrypts legacy plaintext values and
// writes their blind indexes. Composite primary keys are not supported.
//
// # Key store
//
// NewStore returns a keyring.Store on two tables, with compare-and-swap on a
// version column, so that many instances share one keyring.
//
// # Errors
//
// ErrNotRegistered, ErrNotEncrypted, ErrNotSearchable, ErrUnsupported,
// ErrPrimaryKey and ErrTag; decryption failures wrap the keyring's errors
// (keyring.ErrDecrypt, keyring.ErrKeyNotFound, ...). No error contains
// plaintext, ciphertext or key material.
//
// # Concurrency
//
// A Crypt and a Store are safe for concurrent use; register a Crypt before
// the *gorm.DB is shared.
package gormcrypt
