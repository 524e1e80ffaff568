package gormcrypt_test

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/keyward/keyward/adapters/gormcrypt"
	"github.com/keyward/keyward/internal/dbtest"
	"github.com/keyward/keyward/keyring"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/logger"
	"gorm.io/plugin/dbresolver"
	"gorm.io/plugin/opentelemetry/tracing"
)

// The path matrix: every GORM statement kind, destination and spelling of a
// column, generated as a product, run on each database with and without the
// go-gorm tracing and dbresolver plugins registered. Each write cell checks
// that no plaintext reaches the table or the SQL log (at Info level, run for
// real and as a dry run), and that the value reads back through the model,
// or that the statement failed with a keyward error and wrote nothing. Each
// read cell checks that no token is returned as data and that what is
// returned is the plaintext, or that the statement failed with a keyward
// error. The outcomes are summarized into the path table of the package
// documentation (TestPathTable).

// MxBound has a client-assigned key: its values are bound to the row.
type MxBound struct {
	ID       uuid.UUID `gorm:"type:varchar(36);primaryKey"`
	Name     string
	SSN      string `gorm:"serializer:keyward"`
	Email    string `gorm:"serializer:keyward" keyward:"blind:EmailIdx"`
	EmailIdx []byte
}

func (MxBound) TableName() string { return "mx_bound" }

// MxBoundView reads and writes mx_bound's SSN with the same binding.
type MxBoundView struct {
	ID   uuid.UUID `gorm:"type:varchar(36);primaryKey"`
	Name string
	SSN  string `gorm:"serializer:keyward"`
}

func (MxBoundView) TableName() string { return "mx_bound" }

// MxBoundPlain is mx_bound without the serializer.
type MxBoundPlain struct {
	ID    uuid.UUID `gorm:"type:varchar(36);primaryKey"`
	Name  string
	SSN   string
	Email string
}

func (MxBoundPlain) TableName() string { return "mx_bound" }

// MxSerial has an auto-increment key: its values are bound to table and
// column only.
type MxSerial struct {
	ID       uint
	Name     string
	SSN      string `gorm:"serializer:keyward"`
	Email    string `gorm:"serializer:keyward" keyward:"blind:EmailIdx"`
	EmailIdx []byte
}

func (MxSerial) TableName() string { return "mx_serial" }

// MxSerialView reads and writes mx_serial's SSN with the same binding.
type MxSerialView struct {
	ID   uint
	Name string
	SSN  string `gorm:"serializer:keyward"`
}

func (MxSerialView) TableName() string { return "mx_serial" }

// MxSerialPlain is mx_serial without the serializer.
type MxSerialPlain struct {
	ID    uint
	Name  string
	SSN   string
	Email string
}

func (MxSerialPlain) TableName() string { return "mx_serial" }

// mxModel describes one matrix model and its same-table structs.
type mxModel struct {
	name        string
	table       string
	model, view reflect.Type
	plain       reflect.Type
	clientKey   bool
}

var mxModels = []mxModel{
	{name: "bound", table: "mx_bound", model: reflect.TypeFor[MxBound](), view: reflect.TypeFor[MxBoundView](), plain: reflect.TypeFor[MxBoundPlain](), clientKey: true},
	{name: "serial", table: "mx_serial", model: reflect.TypeFor[MxSerial](), view: reflect.TypeFor[MxSerialView](), plain: reflect.TypeFor[MxSerialPlain](), clientKey: false},
}

// row returns a new *T of t with the given fields set (ID only when the
// model's key is client-assigned, or when id is not nil).
func (m mxModel) row(t reflect.Type, id any, name, ssn string) any {
	p := reflect.New(t)
	e := p.Elem()
	if id != nil {
		e.FieldByName("ID").Set(reflect.ValueOf(id))
	} else if m.clientKey {
		e.FieldByName("ID").Set(reflect.ValueOf(uuid.New()))
	}
	e.FieldByName("Name").SetString(name)
	if ssn != "" {
		e.FieldByName("SSN").SetString(ssn)
	}
	return p.Interface()
}

func idOf(v any) any { return reflect.Indirect(reflect.ValueOf(v)).FieldByName("ID").Interface() }

// spellings of the SSN column in map keys and column arguments.
func spellings(table string) []string {
	return []string{"SSN", "ssn", "sSN", `"ssn"`, table + ".ssn", strings.ToUpper(table) + ".SSN"}
}

// outcome classes of a cell.
const (
	outWrites      = "writes encrypted"
	outDecrypts    = "decrypts"
	outEmpty       = "reads no encrypted column"
	outUnsupported = "ErrUnsupported"
	outPrimaryKey  = "ErrPrimaryKey"
	outSearchable  = "ErrNotSearchable"
	outStored      = "returns what is stored"
)

func classify(err error) string {
	switch {
	case errors.Is(err, gormcrypt.ErrPrimaryKey):
		return outPrimaryKey
	case errors.Is(err, gormcrypt.ErrNotSearchable):
		return outSearchable
	case errors.Is(err, gormcrypt.ErrUnsupported):
		return outUnsupported
	}
	return ""
}

// writeCell is one write path.
type writeCell struct {
	op, dest, spelling string
	insert             bool // writes a new row named "new" (else the seed row)
	// run runs the statement on db; seed is the seed row (*model), other
	// another row.
	run func(db *gorm.DB, m mxModel, seed, other any, col, canary string) *gorm.DB
}

func (c writeCell) name() string {
	n := c.op + "/" + c.dest
	if c.spelling != "" {
		n += "/" + c.spelling
	}
	return n
}

// writeCells generates the write matrix for model m.
func writeCells(m mxModel) []writeCell {
	var cells []writeCell
	add := func(c writeCell) { cells = append(cells, c) }

	// Inserts of structs, into each destination.
	type structDest struct {
		name string
		make func(m mxModel, canary string) any // the value passed to the statement
		db   func(db *gorm.DB, m mxModel) *gorm.DB
	}
	single := []structDest{
		{"pointer", func(m mxModel, c string) any { return m.row(m.model, nil, "new", c) }, nil},
		{"value", func(m mxModel, c string) any {
			return reflect.ValueOf(m.row(m.model, nil, "new", c)).Elem().Interface()
		}, nil},
		{"Table+pointer", func(m mxModel, c string) any { return m.row(m.model, nil, "new", c) }, func(db *gorm.DB, m mxModel) *gorm.DB { return db.Table(m.table) }},
		{"same-table view", func(m mxModel, c string) any { return m.row(m.view, nil, "new", c) }, nil},
		{"same-table plain struct", func(m mxModel, c string) any { return m.row(m.plain, nil, "new", c) }, nil},
	}
	multi := append(single[:0:0], single...)
	multi = append(multi,
		structDest{"slice", func(m mxModel, c string) any {
			s := reflect.New(reflect.SliceOf(m.model))
			s.Elem().Set(reflect.Append(s.Elem(), reflect.ValueOf(m.row(m.model, nil, "new", c)).Elem()))
			return s.Interface()
		}, nil},
		structDest{"pointer slice", func(m mxModel, c string) any {
			s := reflect.MakeSlice(reflect.SliceOf(reflect.PointerTo(m.model)), 0, 1)
			return reflect.Append(s, reflect.ValueOf(m.row(m.model, nil, "new", c))).Interface()
		}, nil},
	)
	on := func(d structDest, db *gorm.DB, m mxModel) *gorm.DB {
		if d.db != nil {
			return d.db(db, m)
		}
		return db
	}
	for _, d := range multi {
		add(writeCell{op: "Create", dest: d.name, insert: true, run: func(db *gorm.DB, m mxModel, _, _ any, _, c string) *gorm.DB {
			return on(d, db, m).Create(d.make(m, c))
		}})
		add(writeCell{op: "CreateInBatches", dest: d.name, insert: true, run: func(db *gorm.DB, m mxModel, _, _ any, _, c string) *gorm.DB {
			return on(d, db, m).CreateInBatches(d.make(m, c), 10)
		}})
		add(writeCell{op: "upsert UpdateAll (insert)", dest: d.name, insert: true, run: func(db *gorm.DB, m mxModel, _, _ any, _, c string) *gorm.DB {
			return on(d, db, m).Clauses(clause.OnConflict{UpdateAll: true}).Create(d.make(m, c))
		}})
	}
	for _, d := range single {
		if d.name == "value" {
			continue // GORM needs a pointer to assign the key
		}
		add(writeCell{op: "Save (insert)", dest: d.name, insert: true, run: func(db *gorm.DB, m mxModel, _, _ any, _, c string) *gorm.DB {
			return on(d, db, m).Save(d.make(m, c))
		}})
		add(writeCell{op: "FirstOrCreate", dest: d.name, insert: true, run: func(db *gorm.DB, m mxModel, _, _ any, _, c string) *gorm.DB {
			return on(d, db, m).Where("name = ?", "new").FirstOrCreate(d.make(m, c))
		}})
		add(writeCell{op: "Attrs+FirstOrCreate", dest: d.name, insert: true, run: func(db *gorm.DB, m mxModel, _, _ any, _, c string) *gorm.DB {
			v := d.make(m, "")
			attrs := reflect.New(reflect.TypeOf(v).Elem())
			attrs.Elem().FieldByName("SSN").SetString(c)
			return on(d, db, m).Where("name = ?", "new").Attrs(attrs.Elem().Interface()).FirstOrCreate(v)
		}})
		add(writeCell{op: "Assign+FirstOrCreate", dest: d.name, insert: true, run: func(db *gorm.DB, m mxModel, _, _ any, _, c string) *gorm.DB {
			v := d.make(m, "")
			return on(d, db, m).Where("name = ?", "new").Assign(map[string]any{"ssn": c}).FirstOrCreate(v)
		}})
	}
	// Inserts of maps, with a model or only a table, in each spelling.
	for _, sp := range spellings(m.table) {
		add(writeCell{op: "Create", dest: "map with Model", spelling: sp, insert: true, run: func(db *gorm.DB, m mxModel, _, _ any, col, c string) *gorm.DB {
			vals := map[string]any{"name": "new", col: c}
			if m.clientKey {
				vals["id"] = uuid.New()
			}
			return db.Model(reflect.New(m.model).Interface()).Create(vals)
		}})
		add(writeCell{op: "Create", dest: "maps with Model", spelling: sp, insert: true, run: func(db *gorm.DB, m mxModel, _, _ any, col, c string) *gorm.DB {
			vals := map[string]any{"name": "new", col: c}
			if m.clientKey {
				vals["id"] = uuid.New()
			}
			return db.Model(reflect.New(m.model).Interface()).Create(&[]map[string]any{vals})
		}})
		add(writeCell{op: "Create", dest: "map with Table", spelling: sp, insert: true, run: func(db *gorm.DB, m mxModel, _, _ any, col, c string) *gorm.DB {
			vals := map[string]any{"name": "new", col: c}
			if m.clientKey {
				vals["id"] = uuid.New().String()
			}
			return db.Table(m.table).Create(vals)
		}})
	}

	// Updates of the seed row through structs.
	type updDest struct {
		name  string
		model func(m mxModel, seed any) any // the model of the statement
		db    func(db *gorm.DB, m mxModel) *gorm.DB
	}
	asType := func(t func(mxModel) reflect.Type) func(m mxModel, seed any) any {
		return func(m mxModel, seed any) any { return m.row(t(m), idOf(seed), "seed", "") }
	}
	udests := []updDest{
		{"model", func(m mxModel, seed any) any { return seed }, nil},
		{"Table+model", func(m mxModel, seed any) any { return seed }, func(db *gorm.DB, m mxModel) *gorm.DB { return db.Table(m.table) }},
		{"same-table view", asType(func(m mxModel) reflect.Type { return m.view }), nil},
		{"same-table plain struct", asType(func(m mxModel) reflect.Type { return m.plain }), nil},
	}
	uon := func(d updDest, db *gorm.DB, m mxModel) *gorm.DB {
		if d.db != nil {
			return d.db(db, m)
		}
		return db
	}
	changes := func(model any, c string) any {
		v := reflect.New(reflect.TypeOf(model).Elem())
		v.Elem().FieldByName("SSN").SetString(c)
		return v.Interface()
	}
	for _, d := range udests {
		add(writeCell{op: "Save (update)", dest: d.name, run: func(db *gorm.DB, m mxModel, seed, _ any, _, c string) *gorm.DB {
			v := d.model(m, seed)
			reflect.ValueOf(v).Elem().FieldByName("SSN").SetString(c)
			return uon(d, db, m).Save(v)
		}})
		add(writeCell{op: "Updates struct", dest: d.name, run: func(db *gorm.DB, m mxModel, seed, _ any, _, c string) *gorm.DB {
			v := d.model(m, seed)
			return uon(d, db, m).Model(v).Updates(changes(v, c))
		}})
		add(writeCell{op: "Updates struct value", dest: d.name, run: func(db *gorm.DB, m mxModel, seed, _ any, _, c string) *gorm.DB {
			v := d.model(m, seed)
			return uon(d, db, m).Model(v).Updates(reflect.ValueOf(changes(v, c)).Elem().Interface())
		}})
		add(writeCell{op: "Select+Updates struct of another row", dest: d.name, run: func(db *gorm.DB, m mxModel, seed, other any, _, c string) *gorm.DB {
			v := d.model(m, seed)
			ch := changes(v, c)
			reflect.ValueOf(ch).Elem().FieldByName("ID").Set(reflect.ValueOf(idOf(other)))
			return uon(d, db, m).Model(v).Select("ssn").Updates(ch)
		}})
		add(writeCell{op: "upsert UpdateAll (update)", dest: d.name, run: func(db *gorm.DB, m mxModel, seed, _ any, _, c string) *gorm.DB {
			v := d.model(m, seed)
			reflect.ValueOf(v).Elem().FieldByName("SSN").SetString(c)
			return uon(d, db, m).Clauses(clause.OnConflict{UpdateAll: true}).Create(v)
		}})
	}
	// Updates of the seed row by column name, in each spelling.
	type colDest struct {
		name string
		db   func(db *gorm.DB, m mxModel, seed any) *gorm.DB
	}
	cdests := []colDest{
		{"model", func(db *gorm.DB, m mxModel, seed any) *gorm.DB { return db.Model(seed) }},
		{"Table", func(db *gorm.DB, m mxModel, seed any) *gorm.DB {
			id := idOf(seed)
			if u, ok := id.(uuid.UUID); ok {
				id = u.String()
			}
			return db.Table(m.table).Where("id = ?", id)
		}},
		{"Table+model", func(db *gorm.DB, m mxModel, seed any) *gorm.DB { return db.Table(m.table).Model(seed) }},
		{"same-table plain struct", func(db *gorm.DB, m mxModel, seed any) *gorm.DB {
			return db.Model(m.row(m.plain, idOf(seed), "seed", ""))
		}},
	}
	for _, sp := range spellings(m.table) {
		for _, d := range cdests {
			add(writeCell{op: "Update", dest: d.name, spelling: sp, run: func(db *gorm.DB, m mxModel, seed, _ any, col, c string) *gorm.DB {
				return d.db(db, m, seed).Update(col, c)
			}})
			add(writeCell{op: "UpdateColumn", dest: d.name, spelling: sp, run: func(db *gorm.DB, m mxModel, seed, _ any, col, c string) *gorm.DB {
				return d.db(db, m, seed).UpdateColumn(col, c)
			}})
			add(writeCell{op: "Updates map", dest: d.name, spelling: sp, run: func(db *gorm.DB, m mxModel, seed, _ any, col, c string) *gorm.DB {
				return d.db(db, m, seed).Updates(map[string]any{col: c})
			}})
			add(writeCell{op: "UpdateColumns map", dest: d.name, spelling: sp, run: func(db *gorm.DB, m mxModel, seed, _ any, col, c string) *gorm.DB {
				return d.db(db, m, seed).UpdateColumns(map[string]any{col: c})
			}})
			add(writeCell{op: "clause.Set", dest: d.name, spelling: sp, run: func(db *gorm.DB, m mxModel, seed, _ any, col, c string) *gorm.DB {
				return d.db(db, m, seed).Clauses(clause.Set{{Column: clause.Column{Name: col}, Value: c}}).Update("name", "seed")
			}})
		}
		add(writeCell{op: "upsert AssignmentColumns", dest: "model", spelling: sp, run: func(db *gorm.DB, m mxModel, seed, _ any, col, c string) *gorm.DB {
			v := m.row(m.model, idOf(seed), "seed", c)
			return db.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "id"}}, DoUpdates: clause.AssignmentColumns([]string{col})}).Create(v)
		}})
		add(writeCell{op: "upsert Assignments literal", dest: "model", spelling: sp, run: func(db *gorm.DB, m mxModel, seed, _ any, col, c string) *gorm.DB {
			v := m.row(m.model, idOf(seed), "seed", "x")
			return db.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "id"}}, DoUpdates: clause.Assignments(map[string]any{col: c})}).Create(v)
		}})
		add(writeCell{op: "Delete where", dest: "model", spelling: sp, run: func(db *gorm.DB, m mxModel, _, _ any, col, c string) *gorm.DB {
			return db.Where(col+" = ?", c).Delete(reflect.New(m.model).Interface())
		}})
		add(writeCell{op: "Delete where map", dest: "model", spelling: sp, run: func(db *gorm.DB, m mxModel, _, _ any, col, c string) *gorm.DB {
			return db.Where(map[string]any{col: c}).Delete(reflect.New(m.model).Interface())
		}})
		add(writeCell{op: "Delete where", dest: "Table", spelling: sp, run: func(db *gorm.DB, m mxModel, _, _ any, col, c string) *gorm.DB {
			return db.Table(m.table).Where(col+" = ?", c).Delete(map[string]any{})
		}})
	}
	return cells
}

// cellLog is a logger output shared with the statement.
type cellLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *cellLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *cellLog) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	l.b.Reset()
	return s
}

// matrixEnv is one database with gormcrypt (and maybe plugins) registered.
type matrixEnv struct {
	db    *gorm.DB
	kr    *keyring.Keyring
	log   *cellLog
	lg    logger.Interface
	spans *tracetest.SpanRecorder
}

func newMatrixEnv(t *testing.T, db *gorm.DB, plugins bool) *matrixEnv {
	t.Helper()
	e := &matrixEnv{db: db, kr: newKeyring(t), log: &cellLog{}}
	e.lg = logger.New(log.New(e.log, "", 0), logger.Config{LogLevel: logger.Info, Colorful: false})
	if plugins {
		e.spans = tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(e.spans))
		t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
		require.NoError(t, db.Use(tracing.NewPlugin(tracing.WithTracerProvider(tp), tracing.WithoutMetrics())))
		replica := dbtest.Reopen(t, db, nil)
		require.NoError(t, db.Use(dbresolver.Register(dbresolver.Config{Replicas: []gorm.Dialector{replica.Dialector}})))
	}
	// AutoMigrate before Register: the order does not matter.
	require.NoError(t, db.AutoMigrate(&MxBound{}, &MxSerial{}))
	_, err := gormcrypt.Register(db, e.kr, gormcrypt.WithModels(&MxBound{}, &MxSerial{}))
	require.NoError(t, err)
	return e
}

// leaks returns what a cell let out: plaintext in the table, the SQL log or
// span attributes, or tokens in the log or span attributes.
func (e *matrixEnv) leaks(t *testing.T, table, canary string) []string {
	var out []string
	lg := e.log.take()
	if strings.Contains(lg, canary) {
		out = append(out, "plaintext in the SQL log")
	}
	if strings.Contains(lg, "kw1.") {
		out = append(out, "a token in the SQL log")
	}
	if e.spans != nil {
		for _, s := range e.spans.Ended() {
			for _, a := range s.Attributes() {
				v := a.Value.String()
				if strings.Contains(v, canary) {
					out = append(out, "plaintext in span attribute "+string(a.Key))
				}
				if strings.Contains(v, "kw1.") {
					out = append(out, "a token in span attribute "+string(a.Key))
				}
			}
		}
		e.spans.Reset()
	}
	for _, r := range rawRows(t, e.db, table) {
		for col, v := range r {
			if strings.Contains(v, canary) {
				out = append(out, "plaintext in column "+col)
			}
		}
	}
	return out
}

// snapshot returns the table's rows as sorted text.
func snapshot(t *testing.T, db *gorm.DB, table string) string {
	rows := rawRows(t, db, table)
	lines := make([]string, len(rows))
	for i, r := range rows {
		keys := make([]string, 0, len(r))
		for k := range r {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&b, "%s=%q ", k, r[k])
		}
		lines[i] = b.String()
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// runWriteCell runs one write cell for real and as a dry run, checks it and
// returns its outcome.
func (e *matrixEnv) runWriteCell(t *testing.T, m mxModel, c writeCell, n int) string {
	db := e.db
	require.NoError(t, db.Exec("DELETE FROM "+m.table).Error)
	seed := m.row(m.model, nil, "seed", "seed-value")
	other := m.row(m.model, nil, "other", "other-value")
	require.NoError(t, db.Create(seed).Error)
	require.NoError(t, db.Create(other).Error)
	canary := fmt.Sprintf("CANARY-%d-%s", n, m.name)
	col := c.spelling
	if col == "" {
		col = "ssn"
	}
	e.log.take()
	if e.spans != nil {
		e.spans.Reset()
	}

	// The dry run: encrypts nothing, shows nothing, writes nothing.
	before := snapshot(t, db, m.table)
	encBefore := e.kr.Encryptions(e.kr.Primary())
	dry := db.Session(&gorm.Session{DryRun: true, Logger: e.lg, NewDB: true})
	_ = c.run(dry, m, seed, other, col, canary)
	assert.Empty(t, e.leaks(t, m.table, canary), "%s: dry run", c.name())
	assert.Equal(t, before, snapshot(t, db, m.table), "%s: a dry run wrote", c.name())
	assert.Equal(t, encBefore, e.kr.Encryptions(e.kr.Primary()), "%s: a dry run encrypted", c.name())

	res := c.run(db.Session(&gorm.Session{Logger: e.lg, NewDB: true}), m, seed, other, col, canary)
	assert.Empty(t, e.leaks(t, m.table, canary), "%s", c.name())
	if err := res.Error; err != nil {
		out := classify(err)
		assert.NotEmpty(t, out, "%s: failed with %v, not a keyward error", c.name(), err)
		assert.Equal(t, before, snapshot(t, db, m.table), "%s: failed with %v but wrote", c.name(), err)
		return out
	}
	// Every row still decrypts through the model, and the written value
	// reads back.
	all := reflect.New(reflect.SliceOf(m.model))
	require.NoError(t, db.Find(all.Interface()).Error, "%s: the table no longer decrypts", c.name())
	if strings.HasPrefix(c.op, "Delete") {
		return outWrites
	}
	want := "seed"
	if c.insert {
		want = "new"
	}
	found := false
	for i := range all.Elem().Len() {
		r := all.Elem().Index(i)
		if r.FieldByName("Name").String() == want && r.FieldByName("SSN").String() == canary {
			found = true
		}
	}
	assert.True(t, found, "%s: succeeded but the %s row does not read back the value", c.name(), want)
	return outWrites
}

// matrixVariants runs f on each database, without and with the tracing and
// dbresolver plugins.
func matrixVariants(t *testing.T, f func(t *testing.T, e *matrixEnv)) {
	for _, plugins := range []bool{false, true} {
		name := "plain"
		if plugins {
			name = "otel+dbresolver"
		}
		t.Run(name, func(t *testing.T) {
			dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
				f(t, newMatrixEnv(t, db, plugins))
			})
		})
	}
}

// cellKey names a cell of the matrix: the model, the statement kind, the
// destination, the source of a read, and the column spelling (writes) or
// the selection (reads).
type cellKey struct {
	model, op, dest, source, variant string
	write                            bool
}

func (k cellKey) String() string {
	return fmt.Sprintf("%s %s/%s/%s/%s", k.model, k.op, k.dest, k.source, k.variant)
}

// matrixOutcomes collects the outcome of each cell; the outcome must be the
// same on every database and variant.
type matrixOutcomes struct {
	mu  sync.Mutex
	out map[cellKey]string
}

func (o *matrixOutcomes) record(t *testing.T, key cellKey, outcome string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.out == nil {
		o.out = map[cellKey]string{}
	}
	if prev, ok := o.out[key]; ok && prev != outcome {
		t.Errorf("%s: %s here, %s on another database or variant", key, outcome, prev)
	}
	o.out[key] = outcome
}

// TestPathMatrix runs the write and read matrices, then checks their
// outcomes against the path table of the package documentation.
func TestPathMatrix(t *testing.T) {
	var writes, reads matrixOutcomes
	matrixVariants(t, func(t *testing.T, e *matrixEnv) {
		t.Run("write", func(t *testing.T) {
			n := 0
			for _, m := range mxModels {
				for _, c := range writeCells(m) {
					n++
					writes.record(t, cellKey{model: m.name, write: true, op: c.op, dest: c.dest, variant: c.spelling}, e.runWriteCell(t, m, c, n))
				}
			}
		})
		t.Run("read", func(t *testing.T) {
			for _, m := range mxModels {
				canary := "CANARY-read-" + m.name
				require.NoError(t, e.db.Exec("DELETE FROM "+m.table).Error)
				require.NoError(t, e.db.Create(m.row(m.model, nil, "seed", canary)).Error)
				require.NoError(t, e.db.Create(m.row(m.model, nil, "other", "CANARY-other-"+m.name)).Error)
				for _, c := range readCells(m) {
					reads.record(t, cellKey{model: m.name, op: c.op, dest: c.dest, source: c.source, variant: c.selection}, e.runReadCell(t, m, c, canary))
				}
			}
		})
	})
	if t.Failed() {
		return
	}
	t.Run("table", func(t *testing.T) { checkPathTable(t, writes.out, reads.out) })
}

// readCell is one read path.
type readCell struct {
	op, dest, source, selection string
	// run reads into a new destination and returns it with the error.
	run func(q *gorm.DB, m mxModel) (any, error)
}

func (c readCell) name() string {
	return c.op + "/" + c.dest + "/" + c.source + "/" + c.selection
}

// readCells generates the read matrix for model m.
func readCells(m mxModel) []readCell {
	type dest struct {
		name string
		make func(m mxModel) any // a pointer to a new destination
	}
	ptrTo := func(t func(m mxModel) reflect.Type) func(m mxModel) any {
		return func(m mxModel) any { return reflect.New(t(m)).Interface() }
	}
	sliceOf := func(t func(m mxModel) reflect.Type) func(m mxModel) any {
		return func(m mxModel) any { return reflect.New(reflect.SliceOf(t(m))).Interface() }
	}
	model := func(m mxModel) reflect.Type { return m.model }
	view := func(m mxModel) reflect.Type { return m.view }
	plain := func(m mxModel) reflect.Type { return m.plain }
	anon := func(mxModel) reflect.Type {
		return reflect.TypeFor[struct {
			Name string
			SSN  string
		}]()
	}
	mapOf := func(mxModel) any { return &map[string]any{} }
	maps := func(mxModel) any { return &[]map[string]any{} }
	strs := func(mxModel) any { return &[]string{} }
	one := []dest{{"model", ptrTo(model)}, {"map", mapOf}, {"same-table view", ptrTo(view)}, {"same-table plain struct", ptrTo(plain)}, {"struct without table", ptrTo(anon)}}
	many := []dest{{"model slice", sliceOf(model)}, {"pointer slice", sliceOf(func(m mxModel) reflect.Type { return reflect.PointerTo(m.model) })},
		{"maps", maps}, {"same-table view slice", sliceOf(view)}, {"same-table plain slice", sliceOf(plain)}, {"struct without table slice", sliceOf(anon)}, {"strings", strs}}

	type op struct {
		name  string
		dests []dest
		run   func(q *gorm.DB, d any) error
	}
	byHand := func(q *gorm.DB) error {
		rows, err := q.Rows()
		if err != nil {
			return err
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				return err
			}
			for _, v := range vals {
				if b, ok := v.([]byte); ok && bytes.Contains(b, []byte("kw1.")) || fmt.Sprint(v) != strings.ReplaceAll(fmt.Sprint(v), "kw1.", "") {
					return errTokenByHand
				}
			}
		}
		return rows.Err()
	}
	ops := []op{
		{"First", one, func(q *gorm.DB, d any) error { return q.First(d).Error }},
		{"Take", one, func(q *gorm.DB, d any) error { return q.Take(d).Error }},
		{"Last", one, func(q *gorm.DB, d any) error { return q.Last(d).Error }},
		{"Find", append(many, dest{"model", ptrTo(model)}), func(q *gorm.DB, d any) error { return q.Find(d).Error }},
		{"FindInBatches", []dest{{"model slice", sliceOf(model)}, {"maps", maps}}, func(q *gorm.DB, d any) error {
			return q.FindInBatches(d, 10, func(*gorm.DB, int) error { return nil }).Error
		}},
		{"Scan", append(many, dest{"model", ptrTo(model)}, dest{"map", mapOf}), func(q *gorm.DB, d any) error { return q.Scan(d).Error }},
		{"Pluck ssn", []dest{{"strings", strs}}, func(q *gorm.DB, d any) error { return q.Pluck("ssn", d).Error }},
		{"Row", []dest{{"by hand", strs}}, func(q *gorm.DB, _ any) error { return q.Row().Err() }},
		{"Rows", []dest{{"by hand", strs}}, func(q *gorm.DB, _ any) error { return byHand(q) }},
		{"Rows+db.ScanRows", []dest{{"model", ptrTo(model)}}, func(q *gorm.DB, d any) error {
			rows, err := q.Rows()
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				if err := q.ScanRows(rows, d); err != nil {
					return err
				}
			}
			return rows.Err()
		}},
		{"gormcrypt.Rows+ScanRows", []dest{{"model", ptrTo(model)}, {"map", mapOf}}, func(q *gorm.DB, d any) error {
			rows, err := gormcrypt.Rows(q)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				if err := gormcrypt.ScanRows(q, rows, d); err != nil {
					return err
				}
			}
			return rows.Err()
		}},
	}
	sources := []struct {
		name string
		q    func(db *gorm.DB, m mxModel) *gorm.DB
	}{
		{"Model", func(db *gorm.DB, m mxModel) *gorm.DB { return db.Model(reflect.New(m.model).Interface()) }},
		{"Table", func(db *gorm.DB, m mxModel) *gorm.DB { return db.Table(m.table) }},
		{"Table+Model", func(db *gorm.DB, m mxModel) *gorm.DB {
			return db.Table(m.table).Model(reflect.New(m.model).Interface())
		}},
		{"destination", func(db *gorm.DB, m mxModel) *gorm.DB { return db }},
	}
	selections := []struct {
		name string
		q    func(q *gorm.DB, m mxModel) *gorm.DB
	}{
		{"all", func(q *gorm.DB, m mxModel) *gorm.DB { return q }},
		{"*", func(q *gorm.DB, m mxModel) *gorm.DB { return q.Select("*") }},
		{"name", func(q *gorm.DB, m mxModel) *gorm.DB { return q.Select("name") }},
		{"name, ssn", func(q *gorm.DB, m mxModel) *gorm.DB { return q.Select("name, ssn") }},
		{"id, name, ssn", func(q *gorm.DB, m mxModel) *gorm.DB { return q.Select("id", "name", "ssn") }},
		{"upper(ssn)", func(q *gorm.DB, m mxModel) *gorm.DB { return q.Select("upper(ssn) AS ssn") }},
	}
	for _, sp := range []string{"ssn", "SSN", `"ssn"`, m.table + ".ssn"} {
		selections = append(selections, struct {
			name string
			q    func(q *gorm.DB, m mxModel) *gorm.DB
		}{sp, func(q *gorm.DB, m mxModel) *gorm.DB { return q.Select(sp) }})
	}
	var cells []readCell
	for _, o := range ops {
		for _, d := range o.dests {
			for _, src := range sources {
				for _, sel := range selections {
					if gormRefuses(o.name, d.name, src.name, sel.name) {
						continue
					}
					cells = append(cells, readCell{op: o.name, dest: d.name, source: src.name, selection: sel.name,
						run: func(db *gorm.DB, m mxModel) (any, error) {
							dst := d.make(m)
							return dst, o.run(sel.q(src.q(db, m), m).Where("name = ?", "seed"), dst)
						}})
				}
			}
		}
	}
	// Hand-written SQL is the caller's: it returns what is stored, and a
	// model's fields with the serializer decrypt it.
	for _, d := range []dest{{"model", ptrTo(model)}, {"map", mapOf}} {
		cells = append(cells, readCell{op: "Raw+Scan", dest: d.name, source: "SQL", selection: "id, name, ssn",
			run: func(db *gorm.DB, m mxModel) (any, error) {
				dst := d.make(m)
				return dst, db.Raw("SELECT id, name, ssn FROM " + m.table + " WHERE name = 'seed'").Scan(dst).Error
			}})
	}
	return cells
}

var errTokenByHand = errors.New("rows scanned by hand hold a token")

// gormRefuses reports the combinations that fail in GORM itself, with or
// without gormcrypt: a statement without a model or table; First and Last
// into a map without a model (no primary key to order by); Take into a map
// without a model (a blob column cannot be scanned into it); FindInBatches
// without a model (no primary key to page by); Row, Rows and Scan without a
// model or table.
func gormRefuses(op, dest, source, selection string) bool {
	noTable := dest == "map" || dest == "maps" || dest == "strings" || dest == "by hand" || strings.HasPrefix(dest, "struct without table")
	multi := selection == "all" || selection == "*" || strings.Contains(selection, ",")
	switch {
	case source == "destination" && (noTable || op == "Scan" || strings.HasPrefix(op, "Row") || strings.Contains(op, "Rows")):
		return true
	case dest == "strings" && multi:
		return true // several columns into strings: GORM panics
	case dest == "map" && op == "gormcrypt.Rows+ScanRows" && (selection == "all" || selection == "*"):
		return true // a blob column into a map without a model
	case dest == "map" && source == "Table" && (op == "First" || op == "Last" || op == "Take"):
		return true
	case dest == "maps" && source == "Table" && op == "FindInBatches":
		return true
	}
	return false
}

// strs returns every string (and []byte as text) reachable in v.
func strs(v reflect.Value, out []string) []string {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			out = strs(v.Elem(), out)
		}
	case reflect.String:
		out = append(out, v.String())
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			if v.Kind() == reflect.Slice {
				out = append(out, string(v.Bytes()))
			}
			return out
		}
		for i := range v.Len() {
			out = strs(v.Index(i), out)
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			out = strs(it.Value(), out)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				out = strs(v.Field(i), out)
			}
		}
	}
	return out
}

// runReadCell runs one read cell, checks it and returns its outcome.
func (e *matrixEnv) runReadCell(t *testing.T, m mxModel, c readCell, canary string) string {
	e.log.take()
	dst, err := c.run(e.db.Session(&gorm.Session{Logger: e.lg, NewDB: true}), m)
	assert.Empty(t, e.leaks(t, m.table, canary), "%s", c.name())
	if errors.Is(err, errTokenByHand) {
		t.Errorf("%s: rows scanned by hand hold a token", c.name())
		return outStored
	}
	if err != nil {
		out := classify(err)
		assert.NotEmpty(t, out, "%s: failed with %v, not a keyward error", c.name(), err)
		return out
	}
	got := strs(reflect.ValueOf(dst), nil)
	tokens, plain := false, false
	for _, s := range got {
		if strings.Contains(s, "kw1.") {
			tokens = true
		}
		if s == canary {
			plain = true
		}
	}
	switch {
	case tokens && c.source == "SQL":
		return outStored
	case tokens:
		t.Errorf("%s: returned a token as data with a nil error", c.name())
		return outStored
	case plain:
		return outDecrypts
	}
	for _, s := range got {
		assert.NotContains(t, s, "CANARY", "%s: returned another row's value", c.name())
	}
	return outEmpty
}
