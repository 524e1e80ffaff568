package gormcrypt

import (
	"context"
	"crypto/rand"
	"reflect"
	"sync"
	"testing"

	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/keyring"
	"gorm.io/gorm/schema"
)

type benchRow struct {
	ID [16]byte `gorm:"primaryKey"`
	A  string   `gorm:"serializer:keyward"`
}

// BenchmarkSerializer puts the serializer's Scan next to the keyring's
// DecryptText it is built on, and its parts, for one 27-byte string bound
// to a UUID key.
func BenchmarkSerializer(b *testing.B) {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	src, _ := filekey.New(k)
	ctx := context.Background()
	kr, _ := keyring.New(ctx, "m", src, keyring.NewMemoryStore())
	defer kr.Close()
	schema.RegisterSerializer(SerializerName, serializer{}) // as Initialize does
	s, err := schema.Parse(&benchRow{}, &sync.Map{}, schema.NamingStrategy{})
	if err != nil {
		b.Fatal(err)
	}
	c := &Crypt{kr: kr, cfg: config{bits: 32}}
	st := &state{c: c}
	sctx := context.WithValue(ctx, stateKey{}, st)
	row := benchRow{ID: [16]byte{1, 2, 3}, A: "value-1234567890-abcdefghij"}
	rv := reflect.ValueOf(&row).Elem()
	f := s.LookUpField("A")
	fi, _ := c.fieldInfo(f)
	aad, _ := fi.appendAAD(ctx, nil, rv, reflect.Value{})
	tok, _ := kr.EncryptText(ctx, row.A, aad)
	var tokAny any = tok
	b.Run("DecryptText", func(b *testing.B) {
		for b.Loop() {
			_, _ = kr.DecryptText(ctx, tok, aad)
		}
	})
	b.Run("Scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := (serializer{}).Scan(sctx, f, rv, tokAny); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fieldInfo", func(b *testing.B) {
		for b.Loop() {
			_, _ = c.fieldInfo(f)
		}
	})
	b.Run("appendAAD", func(b *testing.B) {
		var buf [160]byte
		for b.Loop() {
			_, _ = fi.appendAAD(ctx, buf[:0], rv, reflect.Value{})
		}
	})
}
