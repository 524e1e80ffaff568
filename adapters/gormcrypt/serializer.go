package gormcrypt

import (
	"context"
	"fmt"
	"reflect"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/cipher"
	"github.com/keyward/keyward/telemetry"
	"gorm.io/gorm/schema"
)

// serializer is the "keyward" GORM serializer. It holds nothing: the Crypt
// and the statement come from the context (see Crypt).
type serializer struct{}

var _ schema.SerializerInterface = serializer{}

// Value encrypts a field value into a text token bound to the field's table,
// column and (when bound) the row's primary key.
func (serializer) Value(ctx context.Context, field *schema.Field, dst reflect.Value, fieldValue any) (any, error) {
	st := stateFrom(ctx)
	if st == nil {
		return nil, fmt.Errorf("%w: cannot encrypt %s", ErrNotRegistered, fieldName(field))
	}
	fi, err := st.fieldInfo(field)
	if err != nil {
		return nil, err
	}
	return st.encrypt(ctx, fi, dst, fieldValue)
}

// Scan decrypts a column value into the field of dst.
func (serializer) Scan(ctx context.Context, field *schema.Field, dst reflect.Value, dbValue any) error {
	st := stateFrom(ctx)
	if st == nil {
		return fmt.Errorf("%w: cannot decrypt %s (outside GORM's callbacks use gormcrypt.ScanRows)", ErrNotRegistered, fieldName(field))
	}
	fi, err := st.fieldInfo(field)
	if err != nil {
		return err
	}
	return st.scan(ctx, fi, dst, dbValue)
}

func fieldName(f *schema.Field) string {
	if f == nil {
		return "a field"
	}
	if f.Schema != nil {
		return f.Schema.Table + "." + f.DBName
	}
	return f.DBName
}

// encrypt returns the token of v (nil for NULL).
func (st *state) encrypt(ctx context.Context, fi *fieldInfo, dst reflect.Value, v any) (any, error) {
	pt, null, err := fi.plaintext(v)
	if err != nil {
		return nil, err
	}
	if null {
		return nil, nil
	}
	tok, err := st.sealText(ctx, fi, dst, pt)
	if err != nil {
		return nil, err
	}
	return tok, nil
}

// sealText authorizes and encrypts pt for field fi of the row dst.
func (st *state) sealText(ctx context.Context, fi *fieldInfo, dst reflect.Value, pt string) (string, error) {
	if st.c.cfg.authz != nil && fi.redact != nil && pt == *fi.redact && fi.kind != kindJSON {
		// Most likely a row read while decryption was refused, saved back:
		// writing it would replace the real value with the placeholder.
		return "", fmt.Errorf("%w: %s.%s holds the redaction value; refusing to write it over the stored value", ErrUnsupported, fi.table, fi.column)
	}
	if err := st.authorize(ctx, fi, access.ActionEncrypt); err != nil {
		return "", err
	}
	var buf [160]byte
	aad, err := fi.appendAADMemo(ctx, buf[:0], dst, st.model(), &st.pkAAD)
	if err != nil {
		return "", err
	}
	tok, err := st.c.kr.EncryptText(ctx, pt, aad)
	if err != nil {
		return "", fmt.Errorf("gormcrypt: encrypt %s.%s: %w", fi.table, fi.column, err)
	}
	st.valueEvent(ctx, telemetry.ActionEncrypt, fi, dst, tok)
	return tok, nil
}

// model returns the statement's model value (for the primary key of
// Updates with a struct of changes), if any.
func (st *state) model() reflect.Value {
	if st.stmt == nil {
		return reflect.Value{}
	}
	return reflect.Indirect(st.stmt.ReflectValue)
}

// scan decrypts dbValue into the field of dst.
func (st *state) scan(ctx context.Context, fi *fieldInfo, dst reflect.Value, dbValue any) error {
	var tok string
	switch x := dbValue.(type) {
	case nil:
		return fi.set(ctx, dst, "", true)
	case string:
		tok = x
	case []byte:
		tok = string(x)
	default:
		return fmt.Errorf("%w: %s.%s holds a %T, not a token", ErrNotEncrypted, fi.table, fi.column, dbValue)
	}
	pt, err := st.open(ctx, fi, tok, dst)
	if err != nil {
		if red, ok := st.redactFor(err, fi); ok {
			target := fi.field.ReflectValueOf(ctx, dst)
			if target.CanSet() {
				target.Set(red)
				return nil
			}
		}
		return err
	}
	return fi.set(ctx, dst, pt, false)
}

// open authorizes and decrypts one token of fi for the row dst.
func (st *state) open(ctx context.Context, fi *fieldInfo, tok string, dst reflect.Value) (string, error) {
	if !cipher.IsText(tok) {
		if st.c.cfg.legacy {
			return tok, nil
		}
		return "", fmt.Errorf("%w: %s.%s (enable WithLegacyPlaintext to read and migrate plaintext rows)", ErrNotEncrypted, fi.table, fi.column)
	}
	if err := st.authorize(ctx, fi, access.ActionDecrypt); err != nil {
		return "", &deniedError{err}
	}
	var buf [160]byte
	aad, err := fi.appendAADMemo(ctx, buf[:0], dst, reflect.Value{}, &st.pkAAD)
	if err != nil {
		return "", err
	}
	pt, err := st.c.kr.DecryptText(ctx, tok, aad)
	if err != nil {
		return "", fmt.Errorf("gormcrypt: decrypt %s.%s: %w", fi.table, fi.column, err)
	}
	st.valueEvent(ctx, telemetry.ActionDecrypt, fi, dst, tok)
	return pt, nil
}

// deniedError marks a refusal by the Authorizer, which a redaction value
// may replace.
type deniedError struct{ err error }

func (e *deniedError) Error() string { return e.err.Error() }
func (e *deniedError) Unwrap() error { return e.err }

func (st *state) redactFor(err error, fi *fieldInfo) (reflect.Value, bool) {
	if _, ok := err.(*deniedError); !ok {
		return reflect.Value{}, false
	}
	return fi.redacted()
}
