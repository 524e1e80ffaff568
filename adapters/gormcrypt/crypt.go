package gormcrypt

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/internal/instrument"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/telemetry"
	"gorm.io/gorm"
	"gorm.io/gorm/schema"
)

// SerializerName is the GORM serializer that encrypts a field:
// `gorm:"serializer:keyward"`.
const SerializerName = "keyward"

// PluginName is the name Crypt has among a *gorm.DB's plugins.
const PluginName = "keyward"

// Crypt encrypts and decrypts the encrypted fields of the *gorm.DB it is
// registered on, with one keyring. It is a gorm.Plugin: Register makes one
// and installs it; db.Use(crypt) installs it on further handles.
//
// GORM keeps serializers in one process-wide registry, so the "keyward"
// serializer carries no keyring: it finds the Crypt of the statement being
// run through the statement's context, where Crypt's callbacks put it. Two
// handles registered with different keyrings therefore never use each
// other's keys, and a handle without a registration fails with
// ErrNotRegistered instead of writing plaintext.
//
// A Crypt is safe for concurrent use.
type Crypt struct {
	kr      *keyring.Keyring
	cfg     config
	tel     *instrument.Instrumentation
	schemas sync.Map // *schema.Schema -> *schemaInfo
	auth    authority

	// schema is the database schema unqualified tables are bound to when it
	// is not the default one (PostgreSQL's current_schema() at Initialize).
	schema      string
	initMu      sync.Mutex
	initialized bool
}

var _ gorm.Plugin = (*Crypt)(nil)

// Option configures New and Register.
type Option interface {
	apply(*config) error
}

// optionFunc adapts a function to Option.
type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

type config struct {
	authz  keyring.Authorizer
	redact *string
	legacy bool
	bits   int
	models []any
	tel    []telemetry.Option
	set    map[string]bool
}

func (c *config) once(name string) error {
	if c.set[name] {
		return fmt.Errorf("gormcrypt: option %s given twice", name)
	}
	c.set[name] = true
	return nil
}

// WithAuthorizer makes Crypt ask a before it encrypts or decrypts a field,
// with the action access.ActionEncrypt or access.ActionDecrypt and the
// resource "field:<table>.<column>". The principal is whatever a carries in
// the statement's context (db.WithContext(ctx)). It is asked once per field
// per statement, not per row. A refused encryption fails the statement; a
// refused decryption fails it too, unless the field or the registration has
// a redaction value (the tag's redact: or WithRedaction), which is then
// shown instead.
func WithAuthorizer(a keyring.Authorizer) Option {
	return optionFunc(func(c *config) error {
		if a == nil {
			return errors.New("gormcrypt: nil authorizer")
		}
		c.authz = a
		return c.once("WithAuthorizer")
	})
}

// WithRedaction sets the value a string or []byte field shows when its
// decryption is refused by the Authorizer, for every field without a redact
// tag. Other field types are left at their zero value. Without it (and
// without a redact tag) a refused decryption fails the query. Writing the
// redaction value into a field fails with ErrUnsupported, so that a redacted
// row saved back does not overwrite the stored value.
func WithRedaction(value string) Option {
	return optionFunc(func(c *config) error {
		c.redact = &value
		return c.once("WithRedaction")
	})
}

// WithLegacyPlaintext turns on the migration mode: an encrypted column that
// holds a value that is not a keyward token is read as plaintext (and, like
// every value, written back encrypted on the next save). Off by default:
// such a value fails with ErrNotEncrypted. Turn it off again once the
// existing rows are encrypted.
func WithLegacyPlaintext() Option {
	return optionFunc(func(c *config) error {
		c.legacy = true
		return c.once("WithLegacyPlaintext")
	})
}

// WithBlindIndexBits sets the length of blind indexes whose tag has no
// bits: entry (default DefaultBlindBits).
func WithBlindIndexBits(bits int) Option {
	return optionFunc(func(c *config) error {
		if bits < MinBlindBits || bits > MaxBlindBits {
			return fmt.Errorf("gormcrypt: blind index bits must be from %d to %d", MinBlindBits, MaxBlindBits)
		}
		c.bits = bits
		return c.once("WithBlindIndexBits")
	})
}

// WithModels tells the Crypt about models before any statement uses them,
// so that statements without a model (db.Table(name) with a map, clause.Set)
// that write one of their encrypted columns fail with ErrUnsupported from the
// first statement on, and records their encrypted columns in the database's
// column registry (RegistryTable, created if needed), so that every other
// process registered on the database refuses such writes too, and rotation
// tools find the columns without the Go models. A column the registry holds
// with another binding or keyring fails Register with ErrTag. Without it (or
// AutoMigrate) a model becomes known when a statement first uses it (or a
// model related to it); a write into its table before that, through a path
// that names no model, is the one that gormcrypt cannot recognize. Pass
// every model with encrypted fields (the ones given to AutoMigrate).
func WithModels(models ...any) Option {
	return optionFunc(func(c *config) error {
		for _, m := range models {
			if m == nil {
				return errors.New("gormcrypt: nil model")
			}
		}
		c.models = append(c.models, models...)
		return c.once("WithModels")
	})
}

// New returns a Crypt over kr. Install it with db.Use(crypt), or use
// Register.
func New(kr *keyring.Keyring, opts ...Option) (*Crypt, error) {
	if kr == nil {
		return nil, errors.New("gormcrypt: nil keyring")
	}
	cfg := config{bits: DefaultBlindBits, set: map[string]bool{}}
	for _, o := range opts {
		if err := o.apply(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.redact != nil && cfg.authz == nil {
		return nil, errors.New("gormcrypt: WithRedaction needs WithAuthorizer")
	}
	tel, err := instrument.New(ScopeName, cfg.tel...)
	if err != nil {
		return nil, fmt.Errorf("gormcrypt: telemetry: %w", err)
	}
	return &Crypt{kr: kr, cfg: cfg, tel: tel}, nil
}

// Register makes a Crypt over kr and installs it on db: it registers the
// "keyward" serializer and the callbacks that encrypt, decrypt, maintain
// blind indexes and refuse the paths that would bypass encryption. Call it
// once per *gorm.DB, before use; it is not an init-time side effect.
func Register(db *gorm.DB, kr *keyring.Keyring, opts ...Option) (*Crypt, error) {
	c, err := New(kr, opts...)
	if err != nil {
		return nil, err
	}
	if err := db.Use(c); err != nil {
		return nil, fmt.Errorf("gormcrypt: register: %w", err)
	}
	return c, nil
}

// Keyring returns the keyring c encrypts with.
func (c *Crypt) Keyring() *keyring.Keyring { return c.kr }

// Name implements gorm.Plugin.
func (c *Crypt) Name() string { return PluginName }

// The "keyward" serializer is registered when the package is initialized:
// GORM looks serializers up in a process-wide registry while it parses a
// model, which db.AutoMigrate does before any plugin runs, so registering
// it only in Register would make AutoMigrate fail when it comes first. The
// registered value holds no keyring and no state: a statement on a handle
// without a Crypt fails with ErrNotRegistered.
func init() { schema.RegisterSerializer(SerializerName, serializer{}) }

// Initialize implements gorm.Plugin: it checks the serializer, resolves the
// schema unqualified tables are bound to, registers c's callbacks around
// GORM's own (never replacing one) and its statement guard on the clause
// builders, learns the models of WithModels and records them in the column
// registry, and learns the registry's columns.
func (c *Crypt) Initialize(db *gorm.DB) error {
	if s, ok := schema.GetSerializer(SerializerName); !ok {
		schema.RegisterSerializer(SerializerName, serializer{})
	} else if _, ours := s.(serializer); !ours {
		return fmt.Errorf("gormcrypt: another serializer is registered as %q", SerializerName)
	}
	sch, err := currentSchema(db)
	if err != nil {
		return err
	}
	c.initMu.Lock()
	if c.initialized && c.schema != sch {
		c.initMu.Unlock()
		return fmt.Errorf("gormcrypt: this Crypt binds tables to schema %q; the handle's current schema is %q: register a Crypt per schema", c.schema, sch)
	}
	c.initialized, c.schema = true, sch
	c.initMu.Unlock()

	cb := db.Callback()
	steps := []error{
		cb.Create().Before("gorm:create").Register("keyward:before_create", c.beforeCreate),
		cb.Create().After("*").Register("keyward:finish", c.finish),
		cb.Query().Before("gorm:query").Register("keyward:before_query", c.beforeQuery),
		cb.Query().After("gorm:query").Before("gorm:preload").Register("keyward:after_query", c.afterQuery),
		cb.Query().After("*").Register("keyward:finish", c.finish),
		cb.Update().Before("gorm:update").Register("keyward:before_update", c.beforeUpdate),
		cb.Update().After("*").Register("keyward:finish", c.finish),
		cb.Delete().Before("gorm:delete").Register("keyward:before_delete", c.beforeDelete),
		cb.Delete().After("*").Register("keyward:finish", c.finish),
		cb.Row().Before("gorm:row").Register("keyward:before_row", c.beforeRow),
		cb.Row().After("*").Register("keyward:finish", c.finish),
		cb.Raw().Before("gorm:raw").Register("keyward:before_raw", c.beforeRaw),
		cb.Raw().After("*").Register("keyward:finish", c.finish),
	}
	for _, err := range steps {
		if err != nil {
			return fmt.Errorf("gormcrypt: register callbacks: %w", err)
		}
	}
	c.installGuard(db)
	if err := c.record(db, c.cfg.models); err != nil {
		return err
	}
	return c.loadRegistry(db)
}

// currentSchema returns the schema PostgreSQL resolves unqualified tables
// in (current_schema(), from the connection's search_path), or "" when it
// is the default one (public) or the database has no schemas.
func currentSchema(db *gorm.DB) (string, error) {
	if db.Dialector == nil || db.Dialector.Name() != "postgres" {
		return "", nil
	}
	var s sql.NullString
	if err := db.Raw("SELECT current_schema()").Scan(&s).Error; err != nil {
		return "", fmt.Errorf("gormcrypt: read the current schema: %w", err)
	}
	if !s.Valid || defaultSchema(s.String) {
		return "", nil
	}
	return s.String, nil
}

// info returns the schema information of the statement's model, reporting
// an invalid tag as the statement's error. It returns nil when the
// statement has no model.
func (c *Crypt) info(db *gorm.DB) *schemaInfo {
	stmt := db.Statement
	if stmt.Schema == nil {
		return nil
	}
	info := c.schemaInfo(stmt.Schema)
	if info.err != nil {
		_ = db.AddError(fmt.Errorf("gormcrypt: %w", info.err))
		return nil
	}
	if stmt.Table != "" && stmt.Table != stmt.Schema.Table {
		// db.Table(name) with a model: its values are bound to the model's
		// table and stored in name, which the authority learns.
		if err := c.auth.learn(c.tableKey(stmt.Table), info.fields); err != nil {
			_ = db.AddError(fmt.Errorf("gormcrypt: %w", err))
			return nil
		}
	}
	return info
}

// fromDB returns the Crypt registered on db.
func fromDB(db *gorm.DB) (*Crypt, error) {
	if db == nil || db.Config == nil {
		return nil, ErrNotRegistered
	}
	if p, ok := db.Config.Plugins[PluginName]; ok {
		if c, ok := p.(*Crypt); ok {
			return c, nil
		}
	}
	return nil, ErrNotRegistered
}

// stateKey is the context key of the per-statement state.
type stateKey struct{}

// state is what one statement's execution knows: its Crypt, the statement,
// and caches (authorization decisions, blind index keys) so that they are
// made once per field per statement, not per row.
type state struct {
	c    *Crypt
	stmt *gorm.Statement // nil outside callbacks (ScanRows)
	kind string          // the callback chain: create, query, update, delete, row, raw

	batch *instrument.Batch // counts the keyring's operations of the statement
	start time.Time         // when the statement started, under a recording span

	// The statement's event fields, set with its first value event (mu).
	evTime         time.Time
	evUser, evRole string
	evKeyID        uint32 // the key ID of evKeyText
	evKeyText      string
	pks            pkCache
	pkAAD          pkMemo // the last row's key bytes, for its other fields

	// recent remembers the fields the statement's serializer calls looked
	// up last, so each value skips the Crypt's sync.Map and the schema's
	// map; it is replaced whole (copy on write), so readers need no lock.
	recent atomic.Pointer[recentFields]

	mu     sync.Mutex
	authz  map[authKey]error
	macs   map[*fieldInfo]*macKey
	lookup map[*fieldInfo][]*macKey

	savedWhere *savedClause
	filters    []*blindExpr
	filter     *filter   // a query whose blind index matches are checked
	maps       []mapCopy // the maps of an insert, replaced by copies

	// rowsOK: the Row statement's caller asked for rows holding tokens
	// (Rows), so a selection of encrypted columns is not refused.
	rowsOK bool
}

type authKey struct {
	fi     *fieldInfo
	action string
}

type savedClause struct {
	present bool
	value   any // clause.Clause
}

// attach installs a fresh state for db's statement in its context, unless
// the statement already has one of c. kind names the callback chain.
func (c *Crypt) attach(db *gorm.DB, kind string) *state {
	stmt := db.Statement
	ctx := stmt.Context
	if ctx == nil {
		ctx = context.Background()
	}
	if st, ok := ctx.Value(stateKey{}).(*state); ok && st.c == c && st.stmt == stmt {
		return st
	}
	st := &state{c: c, stmt: stmt, kind: kind}
	if kind == "row" {
		st.rowsOK = ctx.Value(rowsKey{}) != nil
	}
	ctx = st.startTelemetry(ctx)
	stmt.Context = context.WithValue(ctx, stateKey{}, st)
	return st
}

func stateFrom(ctx context.Context) *state {
	if ctx == nil {
		return nil
	}
	st, _ := ctx.Value(stateKey{}).(*state)
	return st
}

// recentFields is an immutable list of the fields a statement looked up
// last, the newest first.
type recentFields struct {
	n int
	f [recentMax]*schema.Field
	i [recentMax]*fieldInfo
}

// recentMax is how many fields a statement remembers: a model rarely has
// more encrypted fields than this, and a miss only costs the full lookup.
const recentMax = 8

// fieldInfo is Crypt.fieldInfo for a serializer call of this statement,
// answered from the statement's recent fields when it can be. A fieldInfo
// never changes once built (the Crypt keeps it for the schema's lifetime),
// so remembering it for one statement returns what the full lookup would.
func (st *state) fieldInfo(f *schema.Field) (*fieldInfo, error) {
	r := st.recent.Load()
	if r != nil {
		for j := range r.n {
			if r.f[j] == f {
				return r.i[j], nil
			}
		}
	}
	fi, err := st.c.fieldInfo(f)
	if err != nil {
		return nil, err
	}
	next := &recentFields{n: 1}
	next.f[0], next.i[0] = f, fi
	if r != nil {
		next.n += copy(next.f[1:], r.f[:r.n])
		copy(next.i[1:], r.i[:r.n])
	}
	st.recent.Store(next)
	return fi, nil
}

// authorize asks the Authorizer once per field and action per statement.
func (st *state) authorize(ctx context.Context, fi *fieldInfo, action string) error {
	a := st.c.cfg.authz
	if a == nil {
		return nil
	}
	k := authKey{fi, action}
	st.mu.Lock()
	err, ok := st.authz[k]
	st.mu.Unlock()
	if ok {
		return err
	}
	err = a.Authorize(ctx, action, fieldResource(fi.table, fi.column))
	if err != nil {
		err = fmt.Errorf("gormcrypt: %s %s.%s: %w", action, fi.table, fi.column, err)
	}
	st.mu.Lock()
	if st.authz == nil {
		st.authz = map[authKey]error{}
	}
	st.authz[k] = err
	st.mu.Unlock()
	return err
}

// fieldResource names a field for the Authorizer, as the access package
// does.
func fieldResource(table, column string) string {
	return access.FieldResource(table, column)
}
