package gormcrypt_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/keyward/keyward/adapters/gormcrypt"
	"github.com/keyward/keyward/internal/dbtest"
	"gorm.io/gorm"
	"gorm.io/gorm/schema"
)

// The benchmark models: the same three 20-40 byte strings, stored plain,
// encrypted by gormcrypt (bound to table, column and the UUID key), and by
// a naive serializer (AES-256-GCM with a cached cipher.AEAD, a random nonce,
// base64, no associated data, no key IDs).
type benchPlain struct {
	ID      uuid.UUID `gorm:"type:varchar(36);primaryKey"`
	A, B, C string
}

// benchPlain90 stores plain values as long as the tokens (about 90 bytes),
// to separate the cost of longer values from the cost of encryption.
type benchPlain90 benchPlain

type benchKeyward struct {
	ID uuid.UUID `gorm:"type:varchar(36);primaryKey"`
	A  string    `gorm:"serializer:keyward"`
	B  string    `gorm:"serializer:keyward"`
	C  string    `gorm:"serializer:keyward"`
}

type benchNaive struct {
	ID uuid.UUID `gorm:"type:varchar(36);primaryKey"`
	A  string    `gorm:"serializer:kwbench_naive"`
	B  string    `gorm:"serializer:kwbench_naive"`
	C  string    `gorm:"serializer:kwbench_naive"`
}

// naiveSerializer is the GORM encryption serializer a user would write by
// hand: AES-256-GCM with the cipher.AEAD built once, a random nonce per
// value, standard base64, and no binding to the row or the column.
type naiveSerializer struct{ gcm cipher.AEAD }

func newNaive(key []byte) naiveSerializer {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return naiveSerializer{gcm: gcm}
}

func (n naiveSerializer) Value(_ context.Context, _ *schema.Field, _ reflect.Value, v any) (any, error) {
	pt := v.(string)
	ns := n.gcm.NonceSize()
	out := make([]byte, ns, ns+len(pt)+n.gcm.Overhead())
	if _, err := rand.Read(out); err != nil {
		return nil, err
	}
	ct := n.gcm.Seal(out, out, []byte(pt), nil)
	return base64.StdEncoding.EncodeToString(ct), nil
}

func (n naiveSerializer) Scan(ctx context.Context, f *schema.Field, dst reflect.Value, db any) error {
	var s string
	switch x := db.(type) {
	case string:
		s = x
	case []byte:
		s = string(x)
	default:
		return errors.New("naive: unsupported value")
	}
	ct, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return err
	}
	ns := n.gcm.NonceSize()
	if len(ct) < ns+n.gcm.Overhead() {
		return errors.New("naive: short")
	}
	pt, err := n.gcm.Open(ct[ns:ns], ct[:ns], ct[ns:], nil)
	if err != nil {
		return err
	}
	f.ReflectValueOf(ctx, dst).SetString(string(pt))
	return nil
}

var registerNaive = sync.OnceFunc(func() {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	schema.RegisterSerializer("kwbench_naive", newNaive(k))
})

const benchRows = 1000

func benchValue(i, j int) string {
	s := fmt.Sprintf("v%d-%d-", i, j)
	n := 20 + (i*7+j*13)%21 // 20..40 bytes
	return s + strings.Repeat("x", max(0, n-len(s)))
}

// benchDBs returns a plain GORM handle and a gormcrypt-registered handle on
// one fresh database with the three tables.
func benchDBs(b *testing.B, db *gorm.DB) (plain, enc *gorm.DB) {
	registerNaive()
	enc = dbtest.Reopen(b, db, nil)
	if _, err := gormcrypt.Register(enc, newKeyring(b)); err != nil {
		b.Fatal(err)
	}
	if err := enc.AutoMigrate(&benchPlain{}, &benchPlain90{}, &benchKeyward{}, &benchNaive{}); err != nil {
		b.Fatal(err)
	}
	return db, enc
}

type variant struct {
	name  string
	plain bool // run on the handle without gormcrypt
	rows  func() any
}

func variants() []variant {
	mk := func(set func(i int, id uuid.UUID, a, b, c string)) {
		for i := range benchRows {
			set(i, uuid.New(), benchValue(i, 0), benchValue(i, 1), benchValue(i, 2))
		}
	}
	return []variant{
		{"plain", true, func() any {
			r := make([]benchPlain, benchRows)
			mk(func(i int, id uuid.UUID, a, b, c string) { r[i] = benchPlain{id, a, b, c} })
			return &r
		}},
		{"keyward", false, func() any {
			r := make([]benchKeyward, benchRows)
			mk(func(i int, id uuid.UUID, a, b, c string) { r[i] = benchKeyward{id, a, b, c} })
			return &r
		}},
		{"naive", true, func() any {
			r := make([]benchNaive, benchRows)
			mk(func(i int, id uuid.UUID, a, b, c string) { r[i] = benchNaive{id, a, b, c} })
			return &r
		}},
		{"plain-90B", true, func() any {
			r := make([]benchPlain90, benchRows)
			mk(func(i int, id uuid.UUID, a, b, c string) {
				r[i] = benchPlain90{id, a + strings.Repeat("y", 90-len(a)), b + strings.Repeat("y", 90-len(b)), c + strings.Repeat("y", 90-len(c))}
			})
			return &r
		}},
		// The plain model on the registered handle: the cost of gormcrypt's
		// callbacks for models without encrypted fields.
		{"plain-registered", false, func() any {
			r := make([]benchPlain, benchRows)
			mk(func(i int, id uuid.UUID, a, b, c string) { r[i] = benchPlain{id, a, b, c} })
			return &r
		}},
	}
}

// BenchmarkCreateInBatches inserts 1000 rows in batches of 250 per
// iteration. Compare ns/op of the variants within one run:
//
//	go test -run '^$' -bench 'CreateInBatches|Find' -count 6 ./adapters/gormcrypt/
func BenchmarkCreateInBatches(b *testing.B) {
	dbtest.EachB(b, func(b *testing.B, db *gorm.DB) {
		plain, enc := benchDBs(b, db)
		for _, v := range variants() {
			h := enc
			if v.plain {
				h = plain
			}
			b.Run(v.name, func(b *testing.B) {
				for b.Loop() {
					b.StopTimer()
					rows := v.rows()
					b.StartTimer()
					if err := h.CreateInBatches(rows, 250).Error; err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					if err := h.Session(&gorm.Session{AllowGlobalUpdate: true}).Delete(reflect.New(reflect.TypeOf(rows).Elem().Elem()).Interface()).Error; err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
			})
		}
	})
}

// BenchmarkFind reads 1000 rows per iteration.
func BenchmarkFind(b *testing.B) {
	dbtest.EachB(b, func(b *testing.B, db *gorm.DB) {
		plain, enc := benchDBs(b, db)
		for _, v := range variants() {
			h := enc
			if v.plain {
				h = plain
			}
			rows := v.rows()
			if err := h.CreateInBatches(rows, 250).Error; err != nil {
				b.Fatal(err)
			}
			b.Run(v.name, func(b *testing.B) {
				for b.Loop() {
					dest := reflect.New(reflect.TypeOf(rows).Elem())
					if err := h.Find(dest.Interface()).Error; err != nil {
						b.Fatal(err)
					}
					if dest.Elem().Len() != benchRows {
						b.Fatalf("Find read %d rows", dest.Elem().Len())
					}
				}
			})
			if err := h.Session(&gorm.Session{AllowGlobalUpdate: true}).Delete(reflect.New(reflect.TypeOf(rows).Elem().Elem()).Interface()).Error; err != nil {
				b.Fatal(err)
			}
		}
	})
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func medianF(f []float64) float64 {
	s := slices.Clone(f)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}
