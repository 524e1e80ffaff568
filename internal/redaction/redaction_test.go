package redaction_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/access/otelaccess"
	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/adapters/gormcrypt"
	"github.com/keyward/keyward/adapters/keyservice"
	"github.com/keyward/keyward/cipher"
	"github.com/keyward/keyward/internal/dbtest"
	"github.com/keyward/keyward/internal/dekaad"
	"github.com/keyward/keyward/internal/instrument"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/rotation"
	"github.com/keyward/keyward/telemetry"
)

const module = "github.com/keyward/keyward"

// holder builds a value of a type that holds key material, around canary.
// It returns the value as programs hold it and the key material in it (the
// canary, or a key made from it).
type holder struct {
	make func(t *testing.T, canary []byte) (value any, secret []byte)
	// notRetained says why the secret is not in the value's memory (the
	// reachability check is skipped; the format check still runs).
	notRetained string
}

// holders lists every exported type that holds key material, by
// "package.Type" relative to the module, and a few that the package
// documentation names as holders though their key hides behind an
// interface the source walk does not follow (Auditor, Guard).
var holders = map[string]holder{
	"access.AuditLog": {make: func(t *testing.T, canary []byte) (any, []byte) {
		return auditLog(t, canary), canary
	}},
	"access.Auditor": {make: func(t *testing.T, canary []byte) (any, []byte) {
		return auditor(t, canary), canary
	}},
	"access.Guard": {make: func(t *testing.T, canary []byte) (any, []byte) {
		p, err := access.NewPolicy(access.Config{Roles: []access.Role{{Name: "r"}}})
		require.NoError(t, err)
		g, err := access.NewGuard(p, auditor(t, canary))
		require.NoError(t, err)
		return g, canary
	}},
	"access/otelaccess.Sink": {make: func(t *testing.T, canary []byte) (any, []byte) {
		s, err := otelaccess.NewSink(telemetry.WithPseudonymizer(pseudonymizer(t, canary)))
		require.NoError(t, err)
		return s, canary
	}},
	"telemetry.Pseudonymizer": {make: func(t *testing.T, canary []byte) (any, []byte) {
		return pseudonymizer(t, canary), canary
	}},
	"telemetry.Instrumentation": {make: func(t *testing.T, canary []byte) (any, []byte) {
		in, err := telemetry.New("redaction", telemetry.WithPseudonymizer(pseudonymizer(t, canary)))
		require.NoError(t, err)
		return in, canary
	}},
	"internal/instrument.Instrumentation": {make: func(t *testing.T, canary []byte) (any, []byte) {
		in, err := instrument.New("redaction", telemetry.WithPseudonymizer(pseudonymizer(t, canary)))
		require.NoError(t, err)
		return in, canary
	}},
	"cipher.AEAD": {make: func(t *testing.T, canary []byte) (any, []byte) {
		c, err := cipher.NewAEAD(cipher.XChaCha20Poly1305, canary, 7)
		require.NoError(t, err)
		return c, canary
	}},
	"adapters/filekey.Source": {make: func(t *testing.T, canary []byte) (any, []byte) {
		s, err := filekey.New(canary)
		require.NoError(t, err)
		return s, canary
	}},
	"keyring.Keyring": {make: func(t *testing.T, canary []byte) (any, []byte) {
		return keyringWith(t, canary), canary
	}},
	"keyring.DerivedKey": {make: func(t *testing.T, canary []byte) (any, []byte) {
		dk, err := keyringWith(t, canary).DeriveKey(context.Background(), "redaction")
		require.NoError(t, err)
		return dk, dk.Bytes()
	}},
	"keyring.Key": {make: func(t *testing.T, canary []byte) (any, []byte) {
		return wrappedKeyset(canary).Keys[0], canary
	}},
	"keyring.Keyset": {make: func(t *testing.T, canary []byte) (any, []byte) {
		return wrappedKeyset(canary), canary
	}},
	"keyring.MemoryStore": {make: func(t *testing.T, canary []byte) (any, []byte) {
		s := keyring.NewMemoryStore()
		require.NoError(t, s.Save(context.Background(), wrappedKeyset(canary)))
		return s, canary
	}},
	"keyring.FileStore": {
		make: func(t *testing.T, canary []byte) (any, []byte) {
			s, err := keyring.NewFileStore(filepath.Join(t.TempDir(), "keys.json"))
			require.NoError(t, err)
			require.NoError(t, s.Save(context.Background(), wrappedKeyset(canary)))
			return s, canary
		},
		notRetained: "a FileStore keeps only its path; the wrapped keys stay in the file",
	},
	"adapters/gormcrypt.Crypt": {make: func(t *testing.T, canary []byte) (any, []byte) {
		c, _ := gormPlugin(t, canary)
		return c, canary
	}},
	"adapters/gormcrypt.Target": {make: func(t *testing.T, canary []byte) (any, []byte) {
		_, target := gormPlugin(t, canary)
		return target, canary
	}},
	"adapters/gormcrypt.Job": {make: func(t *testing.T, canary []byte) (any, []byte) {
		_, target := gormPlugin(t, canary)
		job, err := gormcrypt.NewJob(context.Background(), target)
		require.NoError(t, err)
		return job, canary
	}},
	"rotation.Scheduler": {make: func(t *testing.T, canary []byte) (any, []byte) {
		s, err := rotation.NewScheduler(keyringWith(t, canary), rotation.Policy{})
		require.NoError(t, err)
		return s, canary
	}},
	"adapters/keyservice.Item": {make: func(t *testing.T, canary []byte) (any, []byte) {
		return keyservice.Item{Ref: "r1", Keyring: "pii", Key: bytes.Clone(canary), AAD: []byte("aad")}, canary
	}},
	"adapters/keyservice.Result": {make: func(t *testing.T, canary []byte) (any, []byte) {
		return keyservice.Result{Ref: "r1", Key: bytes.Clone(canary)}, canary
	}},
	"adapters/keyservice.Server": {make: func(t *testing.T, canary []byte) (any, []byte) {
		src, err := filekey.New(canary)
		require.NoError(t, err)
		p, err := access.NewPolicy(access.Config{Roles: []access.Role{{Name: "r"}}})
		require.NoError(t, err)
		s, err := keyservice.NewServer(src, p, keyservice.WithServerInsecureLoopback(), keyservice.WithAuditor(auditor(t, canary)),
			keyservice.WithTelemetry(telemetry.WithPseudonymizer(pseudonymizer(t, canary))))
		require.NoError(t, err)
		return s, canary
	}},
}

// noKeyMaterial lists the types the source walk finds whose bytes are not
// key material, with the reason.
var noKeyMaterial = map[string]string{
	"cipher.Token":               "a parsed token: header, nonce and ciphertext",
	"rotation.Value":             "a stored token (or legacy plaintext) and its associated data, on their way through a rotation run",
	"rotation.Swap":              "a rotation.Value and its new token",
	"telemetry.FileSink":         "buffered usage-event lines, which hold no keys",
	"telemetry.WriterSink":       "buffered usage-event lines, which hold no keys",
	"internal/benchbase.GCM":     "the baseline of benchmarks, over random keys; never in a program",
	"internal/gcpkmstest.Server": "the in-process Cloud KMS of the tests; its keys are test keys",
}

// wireTypes are the key service's generated protobuf messages: they carry
// data keys between client and server by design and print their fields
// (protobuf's own String). They live in an internal package, cannot be
// given a Format of their own (the code is generated and checked), and
// keyservice never formats them: its logs and errors name references and
// key IDs only. The source walk finds every message of the package; each
// must be one of these.
var wireTypes = map[string]bool{
	"BatchUnwrapRequest": true, "BatchUnwrapRequest_Item": true, "BatchUnwrapResponse": true, "BatchUnwrapResponse_Result": true,
	"BatchWrapRequest": true, "BatchWrapRequest_Item": true, "BatchWrapResponse": true, "BatchWrapResponse_Result": true,
	"RewrapRequest": true, "RewrapResponse": true, "UnwrapRequest": true, "UnwrapResponse": true,
	"WrapRequest": true, "WrapResponse": true,
}

const wirePackage = "adapters/keyservice/internal/keyservicepb."

var verbs = []string{"%v", "%+v", "%#v", "%s", "%x", "%q"}

func TestRedaction(t *testing.T) {
	found := keyHoldingTypes(t)
	require.NotEmpty(t, found, "the source walk found no type holding key material: it is broken")

	t.Run("every key-holding type is listed", func(t *testing.T) {
		for name, path := range found {
			_, held := holders[name]
			_, exempt := noKeyMaterial[name]
			if msg, ok := strings.CutPrefix(name, wirePackage); ok && wireTypes[msg] {
				exempt = true
			}
			assert.True(t, held || exempt,
				"%s holds bytes (%s): add it to holders with a canary constructor (and make it print without them), or to noKeyMaterial with the reason", name, path)
		}
		for name := range noKeyMaterial {
			if _, ok := found[name]; !ok {
				t.Errorf("noKeyMaterial lists %s, which holds no bytes (or no longer exists): remove it", name)
			}
		}
		for msg := range wireTypes {
			if _, ok := found[wirePackage+msg]; !ok {
				t.Errorf("wireTypes lists %s, which holds no bytes (or no longer exists): remove it", msg)
			}
		}
	})

	names := make([]string, 0, len(holders))
	for name := range holders {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		h := holders[name]
		t.Run(name, func(t *testing.T) {
			canary := make([]byte, 32)
			_, _ = rand.Read(canary)
			v, secret := h.make(t, canary)
			require.Len(t, secret, 32, "the key material of %s", name)
			got := reflect.TypeOf(v)
			if got.Kind() == reflect.Pointer {
				got = got.Elem()
			}
			assert.Equal(t, name, strings.TrimPrefix(got.PkgPath(), module+"/")+"."+got.Name(), "the constructor of %s builds another type", name)
			if h.notRetained == "" {
				require.True(t, reachable(reflect.ValueOf(v), secret, map[uintptr]bool{}),
					"the key material is not in the %s value built for the test: the test would prove nothing", name)
			}
			forms := renderings(secret)
			for _, subject := range []struct {
				how string
				v   any
			}{
				{"itself", v},
				{"in a struct", struct{ Field any }{v}},
				{"in a slice", []any{v}},
			} {
				for _, verb := range verbs {
					out := fmt.Sprintf(verb, subject.v)
					for form, r := range forms {
						assert.NotContains(t, out, r, "fmt.Sprintf(%q, %s %s) prints its key material (%s)", verb, name, subject.how, form)
					}
				}
			}
		})
	}
}

// renderings returns the forms in which fmt could print secret (or the
// start of it).
func renderings(secret []byte) map[string]string {
	head := secret[:8]
	dec := make([]string, len(head))
	gox := make([]string, len(head))
	for i, b := range head {
		dec[i] = strconv.Itoa(int(b))
		gox[i] = fmt.Sprintf("%#x", b)
	}
	r := map[string]string{
		"raw":            string(head),
		"hex":            hex.EncodeToString(head),
		"HEX":            strings.ToUpper(hex.EncodeToString(head)),
		"decimal bytes":  strings.Join(dec, " "),
		"Go-syntax":      strings.Join(gox, ", "),
		"quoted":         strings.Trim(strconv.Quote(string(head)), `"`),
		"base64":         base64.StdEncoding.EncodeToString(secret)[:10],
		"base64url":      base64.RawURLEncoding.EncodeToString(secret)[:10],
		"quoted (ASCII)": strings.Trim(strconv.QuoteToASCII(string(head)), `"`),
	}
	for _, order := range []struct {
		name string
		bo   binary.ByteOrder
	}{{"big-endian", binary.BigEndian}, {"little-endian", binary.LittleEndian}} {
		w0, w1 := order.bo.Uint32(secret[0:4]), order.bo.Uint32(secret[4:8])
		r["words "+order.name] = fmt.Sprintf("%d %d", w0, w1)
		r["Go-syntax words "+order.name] = fmt.Sprintf("%#x, %#x", w0, w1)
	}
	return r
}

// reachable reports whether secret is somewhere in v's memory: in a byte
// slice, array or string, or in an array of 32-bit words (a key schedule),
// following pointers, interfaces, maps, unexported fields and atomic
// pointers.
func reachable(v reflect.Value, secret []byte, seen map[uintptr]bool) bool {
	if !v.IsValid() {
		return false
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() || seen[v.Pointer()] {
			return false
		}
		seen[v.Pointer()] = true
		return reachable(v.Elem(), secret, seen)
	case reflect.Interface:
		return !v.IsNil() && reachable(v.Elem(), secret, seen)
	case reflect.String:
		return strings.Contains(v.String(), string(secret))
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && (v.IsNil() || seen[v.Pointer()]) {
			return false
		}
		if v.Kind() == reflect.Slice {
			seen[v.Pointer()] = true
		}
		switch v.Type().Elem().Kind() {
		case reflect.Uint8:
			return bytes.Contains(byteContents(v), secret)
		case reflect.Uint32:
			return wordsContain(v, secret)
		}
		for i := range v.Len() {
			if reachable(v.Index(i), secret, seen) {
				return true
			}
		}
	case reflect.Map:
		if v.IsNil() || seen[v.Pointer()] {
			return false
		}
		seen[v.Pointer()] = true
		it := v.MapRange()
		for it.Next() {
			if reachable(it.Key(), secret, seen) || reachable(it.Value(), secret, seen) {
				return true
			}
		}
	case reflect.Struct:
		if p, ok := atomicPointer(v); ok {
			return reachable(p, secret, seen)
		}
		for i := range v.NumField() {
			if reachable(v.Field(i), secret, seen) {
				return true
			}
		}
	}
	return false
}

func byteContents(v reflect.Value) []byte {
	b := make([]byte, v.Len())
	for i := range b {
		b[i] = byte(v.Index(i).Uint())
	}
	return b
}

// wordsContain reports whether the 32-bit words of v hold secret's first 8
// bytes in either byte order, as a key schedule does.
func wordsContain(v reflect.Value, secret []byte) bool {
	be, le := make([]byte, 4*v.Len()), make([]byte, 4*v.Len())
	for i := range v.Len() {
		w := uint32(v.Index(i).Uint())
		binary.BigEndian.PutUint32(be[4*i:], w)
		binary.LittleEndian.PutUint32(le[4*i:], w)
	}
	return bytes.Contains(be, secret[:8]) || bytes.Contains(le, secret[:8])
}

// atomicPointer follows a sync/atomic.Pointer[T], whose value reflection
// sees only as an unsafe.Pointer.
func atomicPointer(v reflect.Value) (reflect.Value, bool) {
	t := v.Type()
	if t.PkgPath() != "sync/atomic" || !strings.HasPrefix(t.Name(), "Pointer[") || !v.CanAddr() {
		return reflect.Value{}, false
	}
	elem := t.Field(0).Type.Elem() // the field "_ [0]*T"
	p := v.FieldByName("v")
	if !p.IsValid() || p.Kind() != reflect.UnsafePointer {
		return reflect.Value{}, false
	}
	ptr := unsafe.Pointer(p.Pointer())
	if ptr == nil {
		return reflect.Value{}, false
	}
	return reflect.NewAt(elem.Elem(), ptr), true
}

// keyHoldingTypes walks the source of the module's packages (for this
// platform, tests excluded) and returns the exported types whose fields
// reach key-holding types, each with the path that reaches them.
func keyHoldingTypes(t *testing.T) map[string]string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(root, "go.mod"))
	require.NoError(t, err, "module root")
	w := &walker{pkgs: map[string]*pkgTypes{}, memo: map[string]string{}}
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if base := d.Name(); path != root && (base == "testdata" || strings.HasPrefix(base, ".") || strings.HasPrefix(base, "_")) {
			return filepath.SkipDir
		}
		bp, err := build.Default.ImportDir(path, 0)
		if err != nil || bp.Name == "main" {
			return nil // no Go package here, or a program
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		return w.parse(filepath.ToSlash(rel), path, bp.GoFiles)
	})
	require.NoError(t, err)
	require.Contains(t, w.pkgs, "keyring", "the walk found the keyring package")
	found := map[string]string{}
	for rel, p := range w.pkgs {
		for name := range p.types {
			if !ast.IsExported(name) {
				continue
			}
			if why := w.typeHolds(p, name); why != "" {
				found[rel+"."+name] = why
			}
		}
	}
	return found
}

type pkgTypes struct {
	rel     string
	types   map[string]*ast.TypeSpec
	imports map[*ast.TypeSpec]map[string]string // the import names of each type's file
}

type walker struct {
	pkgs map[string]*pkgTypes // by path relative to the module ("" for its root)
	memo map[string]string
}

func (w *walker) parse(rel, dir string, files []string) error {
	p := &pkgTypes{rel: rel, types: map[string]*ast.TypeSpec{}, imports: map[*ast.TypeSpec]map[string]string{}}
	fset := token.NewFileSet()
	for _, name := range files {
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		imports := map[string]string{}
		for _, im := range f.Imports {
			path, _ := strconv.Unquote(im.Path.Value)
			local := path[strings.LastIndex(path, "/")+1:]
			if im.Name != nil {
				local = im.Name.Name
			}
			imports[local] = path
		}
		for _, decl := range f.Decls {
			if gd, ok := decl.(*ast.GenDecl); ok && gd.Tok == token.TYPE {
				for _, spec := range gd.Specs {
					ts := spec.(*ast.TypeSpec)
					p.types[ts.Name.Name] = ts
					p.imports[ts] = imports
				}
			}
		}
	}
	w.pkgs[rel] = p
	return nil
}

// typeHolds returns how type name of p reaches key material, or "".
func (w *walker) typeHolds(p *pkgTypes, name string) string {
	k := p.rel + "." + name
	if why, ok := w.memo[k]; ok {
		return why
	}
	w.memo[k] = "" // a type that reaches itself does not hold by that path
	ts := p.types[name]
	if ts == nil {
		return ""
	}
	why := w.holds(p, p.imports[ts], ts.Type)
	w.memo[k] = why
	return why
}

// stdHolders are the standard library types that hold key material.
var stdHolders = map[string]bool{
	"hash.Hash": true, "crypto/cipher.AEAD": true, "crypto/cipher.Block": true, "crypto/cipher.Stream": true,
}

func (w *walker) holds(p *pkgTypes, imports map[string]string, e ast.Expr) string {
	switch x := e.(type) {
	case *ast.ArrayType:
		if id, ok := x.Elt.(*ast.Ident); ok && (id.Name == "byte" || id.Name == "uint8") {
			return "bytes"
		}
		return w.holds(p, imports, x.Elt)
	case *ast.StarExpr:
		return w.holds(p, imports, x.X)
	case *ast.ParenExpr:
		return w.holds(p, imports, x.X)
	case *ast.MapType:
		if why := w.holds(p, imports, x.Key); why != "" {
			return why
		}
		return w.holds(p, imports, x.Value)
	case *ast.StructType:
		for _, f := range x.Fields.List {
			if why := w.holds(p, imports, f.Type); why != "" {
				field := "(embedded)"
				if len(f.Names) > 0 {
					field = f.Names[0].Name
				}
				return field + " > " + why
			}
		}
	case *ast.IndexExpr: // a generic type such as atomic.Pointer[T]
		if why := w.holds(p, imports, x.Index); why != "" {
			return why
		}
		return w.holds(p, imports, x.X)
	case *ast.IndexListExpr:
		for _, i := range x.Indices {
			if why := w.holds(p, imports, i); why != "" {
				return why
			}
		}
		return w.holds(p, imports, x.X)
	case *ast.Ident:
		if why := w.typeHolds(p, x.Name); why != "" {
			return x.Name + " > " + why
		}
	case *ast.SelectorExpr:
		pkg, ok := x.X.(*ast.Ident)
		if !ok {
			return ""
		}
		path := imports[pkg.Name]
		if stdHolders[path+"."+x.Sel.Name] {
			return path + "." + x.Sel.Name
		}
		if rel, ok := strings.CutPrefix(path, module+"/"); ok && w.pkgs[rel] != nil {
			if why := w.typeHolds(w.pkgs[rel], x.Sel.Name); why != "" {
				return rel + "." + x.Sel.Name + " > " + why
			}
		}
	}
	return ""
}

// Constructors of the holders.

func auditLog(t *testing.T, key []byte) *access.AuditLog {
	l, err := access.OpenAuditLog(context.Background(), t.TempDir(), key, access.WithCheckpointFunc(func(access.Checkpoint) {}))
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	return l
}

func auditor(t *testing.T, key []byte) *access.Auditor {
	a, err := access.NewAuditor(access.WithSink(auditLog(t, key)))
	require.NoError(t, err)
	return a
}

func pseudonymizer(t *testing.T, key []byte) *telemetry.Pseudonymizer {
	p, err := telemetry.NewPseudonymizer(key)
	require.NoError(t, err)
	return p
}

const keyID = 0x5eed

// wrappedKeyset is a keyset whose one key's wrapped material is canary.
func wrappedKeyset(canary []byte) keyring.Keyset {
	now := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	return keyring.Keyset{Name: "redaction", KEK: "test:kek", Keys: []keyring.Key{{
		ID: keyID, Purpose: keyring.PurposeData, Algorithm: cipher.XChaCha20Poly1305, State: keyring.StateActive,
		KEK: "test:kek", Wrapped: bytes.Clone(canary), Created: now, Updated: now,
	}}}
}

// keyringWith returns a keyring whose primary data key is canary, cached
// unwrapped.
func keyringWith(t *testing.T, canary []byte) *keyring.Keyring {
	ctx := context.Background()
	kek := make([]byte, 32)
	_, _ = rand.Read(kek)
	src, err := filekey.New(kek)
	require.NoError(t, err)
	ks := wrappedKeyset(nil)
	ks.KEK, ks.Keys[0].KEK = src.ID(), src.ID()
	aad := dekaad.Append(nil, dekaad.Binding{Keyring: ks.Name, KeyID: keyID, Purpose: string(keyring.PurposeData), Algorithm: cipher.XChaCha20Poly1305.String()})
	ks.Keys[0].Wrapped, err = src.Wrap(ctx, canary, aad)
	require.NoError(t, err)
	store := keyring.NewMemoryStore()
	require.NoError(t, store.Save(ctx, ks))
	kr, err := keyring.New(ctx, ks.Name, src, store)
	require.NoError(t, err)
	t.Cleanup(func() { kr.Close() })
	require.Equal(t, uint32(keyID), kr.Primary())
	return kr
}

// Chart is a model with an encrypted column.
type Chart struct {
	ID        uint
	Diagnosis string `gorm:"serializer:keyward"`
}

func gormPlugin(t *testing.T, canary []byte) (*gormcrypt.Crypt, *gormcrypt.Target) {
	db := dbtest.Open(t, dbtest.SQLite, nil)
	c, err := gormcrypt.Register(db, keyringWith(t, canary))
	require.NoError(t, err)
	require.NoError(t, db.AutoMigrate(&Chart{}))
	target, err := gormcrypt.NewTarget(db, &Chart{})
	require.NoError(t, err)
	return c, target
}
