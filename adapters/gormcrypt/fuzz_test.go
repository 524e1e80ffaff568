package gormcrypt

import (
	"context"
	"crypto/rand"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/keyring"
	"gorm.io/gorm/schema"
)

func FuzzParseTag(f *testing.F) {
	for _, s := range []string{
		"", "blind:email_idx", "blind:EmailIdx;bits:48;normalize:lower,trim", "redact:***",
		"blind:x;bits:7", "bits:32", "normalize:upper", "blind:", "redact", "BLIND:a;Bits:256",
		"blind:a;blind:b", ";;", "redact:a:b;blind:c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tag string) {
		o, err := parseTag(tag)
		if err != nil {
			if !errors.Is(err, ErrTag) {
				t.Fatalf("parseTag(%q) = %v, not ErrTag", tag, err)
			}
			return
		}
		if o.bits != 0 && (o.bits < MinBlindBits || o.bits > MaxBlindBits) {
			t.Fatalf("parseTag(%q) accepted bits %d", tag, o.bits)
		}
		if (o.bits != 0 || o.lower || o.trim) && o.blind == "" {
			t.Fatalf("parseTag(%q) accepted index options without an index", tag)
		}
		if o.blind != strings.TrimSpace(o.blind) {
			t.Fatalf("parseTag(%q) kept spaces in the index name", tag)
		}
	})
}

type fuzzRow struct {
	ID    string `gorm:"primaryKey"`
	Text  string `gorm:"serializer:keyward"`
	Bytes []byte `gorm:"serializer:keyward"`
	Ptr   *string
	JSON  *struct {
		A []int `json:"a"`
	} `gorm:"serializer:keyward"`
	Map map[string]any `gorm:"serializer:keyward"`
}

// FuzzScan feeds arbitrary column values to the serializer's Scan: it never
// panics, never accepts what is not an authentic token made for that field
// and row, and in migration mode passes other values through as plaintext.
func FuzzScan(f *testing.F) {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	src, _ := filekey.New(k)
	ctx := context.Background()
	kr, err := keyring.New(ctx, "fuzz", src, keyring.NewMemoryStore())
	if err != nil {
		f.Fatal(err)
	}
	defer kr.Close()
	s, err := schema.Parse(&fuzzRow{}, &sync.Map{}, schema.NamingStrategy{})
	if err != nil {
		// The serializer is registered by Initialize; register it here.
		schema.RegisterSerializer(SerializerName, serializer{})
		if s, err = schema.Parse(&fuzzRow{}, &sync.Map{}, schema.NamingStrategy{}); err != nil {
			f.Fatal(err)
		}
	}
	strict := &Crypt{kr: kr, cfg: config{bits: DefaultBlindBits}}
	legacy := &Crypt{kr: kr, cfg: config{bits: DefaultBlindBits, legacy: true}}
	row := fuzzRow{ID: "row-1"}
	rv := reflect.ValueOf(&row).Elem()
	var good []string
	for _, name := range []string{"Text", "Bytes", "JSON", "Map"} {
		fi, err := strict.fieldInfo(s.LookUpField(name))
		if err != nil {
			f.Fatal(err)
		}
		aad, _ := fi.appendAAD(ctx, nil, rv, reflect.Value{})
		pt := `{"a":[1,2]}`
		tok, err := kr.EncryptText(ctx, pt, aad)
		if err != nil {
			f.Fatal(err)
		}
		good = append(good, tok)
		f.Add(tok, uint8(len(good)-1))
	}
	f.Add("", uint8(0))
	f.Add("kw1.", uint8(1))
	f.Add("kw1.AQE", uint8(2))
	f.Add("plain text", uint8(3))
	f.Add("kw1."+strings.Repeat("A", 80), uint8(0))
	names := []string{"Text", "Bytes", "JSON", "Map"}
	f.Fuzz(func(t *testing.T, value string, which uint8) {
		name := names[int(which)%len(names)]
		field := s.LookUpField(name)
		for _, c := range []*Crypt{strict, legacy} {
			fi, err := c.fieldInfo(field)
			if err != nil {
				t.Fatal(err)
			}
			st := &state{c: c}
			sctx := context.WithValue(ctx, stateKey{}, st)
			for _, in := range []any{value, []byte(value)} {
				dst := fuzzRow{ID: "row-1"}
				dv := reflect.ValueOf(&dst).Elem()
				err := serializer{}.Scan(sctx, field, dv, in)
				authentic := false
				for i, g := range good {
					if g == value && names[i] == name {
						authentic = true
					}
				}
				switch {
				case err == nil && !authentic && !c.cfg.legacy:
					t.Fatalf("Scan(%s, %q) accepted a value that is not its token", name, value)
				case err != nil && authentic:
					t.Fatalf("Scan(%s, authentic token) = %v", name, err)
				case err == nil && c.cfg.legacy && !strings.HasPrefix(value, "kw1.") && fi.kind == kindString && dst.Text != value:
					t.Fatalf("migration mode read %q as %q", value, dst.Text)
				}
				if err != nil && strings.Contains(err.Error(), value) && len(value) > 8 {
					t.Fatalf("error %q quotes the input", err)
				}
			}
		}
	})
}
