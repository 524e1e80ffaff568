package gormcrypt

import "errors"

// Errors a caller can test with errors.Is. Decryption failures wrap the
// keyring's errors (keyring.ErrDecrypt for a token that does not
// authenticate, e.g. one copied to another column or row;
// keyring.ErrKeyNotFound, keyring.ErrKeyDisabled, ...), and a refused
// authorization wraps the Authorizer's error. No error contains plaintext,
// ciphertext or key material.
var (
	// ErrNotRegistered reports a statement that reads or writes an encrypted
	// field on a *gorm.DB without a gormcrypt registration (Register or
	// db.Use(crypt)), or outside GORM's callbacks (use ScanRows).
	ErrNotRegistered = errors.New("gormcrypt: the statement has no gormcrypt registration")

	// ErrNotEncrypted reports an encrypted column that holds a value that is
	// not a keyward token: legacy plaintext, read while the migration mode
	// (WithLegacyPlaintext) is off, or a value written around gormcrypt.
	ErrNotEncrypted = errors.New("gormcrypt: column holds a value that is not a keyward token")

	// ErrNotSearchable reports a condition on an encrypted column that
	// cannot be evaluated: equality on a column without a blind index, or
	// any other comparison (ranges, LIKE, negation) on an encrypted column.
	ErrNotSearchable = errors.New("gormcrypt: encrypted column cannot be compared")

	// ErrUnsupported reports a GORM path that would write plaintext or
	// return ciphertext as data, such as an SQL expression assigned to an
	// encrypted column, an upsert that would move a ciphertext to another
	// row, or a Pluck of a column bound to the primary key.
	ErrUnsupported = errors.New("gormcrypt: operation would bypass encryption")

	// ErrPrimaryKey reports a field bound to its row's primary key when the
	// key is not known: zero before insert, or not read by the query.
	ErrPrimaryKey = errors.New("gormcrypt: primary key needed to bind the value is missing")

	// ErrTag reports an invalid keyward struct tag or an unsupported field.
	ErrTag = errors.New("gormcrypt: invalid keyward tag")
)
