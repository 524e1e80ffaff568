package gormcrypt

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/keyward/keyward/cipher"
	"github.com/keyward/keyward/keyring"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Store is a keyring.Store in database tables, so that every instance of
// an application shares its keyrings: "<prefix>keysets" has one row per
// keyring with the compare-and-swap version and the KEK the keyset
// requires, "<prefix>keys" one row per key version (ID, purpose,
// algorithm, state, the KEK's ID, the wrapped key, created, updated,
// retired and disabled times), and "<prefix>key_counts" the encryptions of
// each key summed over every process (keyring.CountStore). The default
// prefix is "keyward_". A Save runs
// in one transaction whose first statement moves the version (an INSERT ...
// ON CONFLICT DO NOTHING for a new keyring, an UPDATE ... WHERE version = ?
// otherwise), so concurrent saves from any number of processes serialize on
// that row and all but one fail with keyring.ErrConflict. Load reads in one
// statement, so it never sees half a save.
//
// The tables hold wrapped keys only. A Store is safe for concurrent use.
type Store struct {
	db                 *gorm.DB
	sets, keys, counts string
}

var (
	_ keyring.Store      = (*Store)(nil)
	_ keyring.CountStore = (*Store)(nil)
)

// StoreOption configures NewStore.
type StoreOption interface {
	apply(*storeConfig) error
}

// storeOptionFunc adapts a function to StoreOption.
type storeOptionFunc func(*storeConfig) error

func (f storeOptionFunc) apply(c *storeConfig) error { return f(c) }

type storeConfig struct {
	prefix  string
	migrate bool
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,40}$`)

// WithTablePrefix names the store's tables "<prefix>keysets" and
// "<prefix>keys" (default prefix "keyward_"). The prefix is letters,
// digits and '_'.
func WithTablePrefix(prefix string) StoreOption {
	return storeOptionFunc(func(c *storeConfig) error {
		if !identRE.MatchString(prefix) {
			return fmt.Errorf("gormcrypt: invalid table prefix %q", prefix)
		}
		c.prefix = prefix
		return nil
	})
}

// WithoutMigrate makes NewStore use the tables as they are instead of
// creating or migrating them.
func WithoutMigrate() StoreOption {
	return storeOptionFunc(func(c *storeConfig) error {
		c.migrate = false
		return nil
	})
}

// keysetRow is a row of the keysets table.
type keysetRow struct {
	Name    string    `gorm:"primaryKey;size:64"`
	Version int64     `gorm:"not null"`
	Updated time.Time `gorm:"not null"`
	KEK     string    `gorm:"column:kek;size:1024;not null;default:''"`
}

// keyRow is a row of the keys table.
type keyRow struct {
	Keyring   string    `gorm:"primaryKey;size:64"`
	KeyID     int64     `gorm:"primaryKey;autoIncrement:false"`
	Position  int       `gorm:"not null"`
	Purpose   string    `gorm:"size:16;not null"`
	Algorithm string    `gorm:"size:32;not null"`
	State     string    `gorm:"size:16;not null"`
	KEK       string    `gorm:"column:kek;size:1024;not null"`
	Wrapped   []byte    `gorm:""`
	Created   time.Time `gorm:"not null"`
	Updated   time.Time `gorm:"not null"`
	Retired   sql.NullTime
	Disabled  sql.NullTime
}

// countRow is a row of the counts table: the encryptions of one key,
// summed over every process (keyring.CountStore).
type countRow struct {
	Keyring     string `gorm:"primaryKey;size:64"`
	KeyID       int64  `gorm:"primaryKey;autoIncrement:false"`
	Encryptions int64  `gorm:"not null"`
}

// NewStore returns a Store on db, creating its tables if they do not exist
// (unless WithoutMigrate).
func NewStore(ctx context.Context, db *gorm.DB, opts ...StoreOption) (*Store, error) {
	if db == nil {
		return nil, errors.New("gormcrypt: NewStore needs a *gorm.DB")
	}
	cfg := storeConfig{prefix: "keyward_", migrate: true}
	for _, o := range opts {
		if err := o.apply(&cfg); err != nil {
			return nil, err
		}
	}
	s := &Store{db: db, sets: cfg.prefix + "keysets", keys: cfg.prefix + "keys", counts: cfg.prefix + "key_counts"}
	if cfg.migrate {
		if err := s.migrate(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// migrate creates or updates the tables. Processes starting together may
// race to create them; a loser tries again and finds them (up to once per
// table).
func (s *Store) migrate(ctx context.Context) error {
	var err error
	for range 3 {
		tx := s.db.WithContext(ctx)
		if err = tx.Table(s.sets).AutoMigrate(&keysetRow{}); err != nil {
			err = fmt.Errorf("gormcrypt: create table %s: %w", s.sets, err)
			continue
		}
		if err = tx.Table(s.keys).AutoMigrate(&keyRow{}); err != nil {
			err = fmt.Errorf("gormcrypt: create table %s: %w", s.keys, err)
			continue
		}
		if err = tx.Table(s.counts).AutoMigrate(&countRow{}); err != nil {
			err = fmt.Errorf("gormcrypt: create table %s: %w", s.counts, err)
			continue
		}
		return nil
	}
	return err
}

// Load implements keyring.Store.
func (s *Store) Load(ctx context.Context, name string) (keyring.Keyset, error) {
	if err := ctx.Err(); err != nil {
		return keyring.Keyset{}, err
	}
	q := "SELECT s.version, s.kek, k.key_id, k.purpose, k.algorithm, k.state, k.kek, k.wrapped, k.created, k.updated, k.retired, k.disabled FROM " +
		s.sets + " s LEFT JOIN " + s.keys + " k ON k.keyring = s.name WHERE s.name = ? ORDER BY k.position"
	rows, err := s.db.WithContext(ctx).Raw(q, name).Rows()
	if err != nil {
		return keyring.Keyset{}, s.wrap(ctx, "load", err)
	}
	defer rows.Close()
	ks := keyring.Keyset{Name: name}
	found := false
	for rows.Next() {
		var (
			version                            int64
			setKEK                             string
			id                                 sql.NullInt64
			purpose, alg, state, kek           sql.NullString
			wrapped                            []byte
			created, updated, retired, disable sql.NullTime
		)
		if err := rows.Scan(&version, &setKEK, &id, &purpose, &alg, &state, &kek, &wrapped, &created, &updated, &retired, &disable); err != nil {
			return keyring.Keyset{}, s.wrap(ctx, "load", err)
		}
		found = true
		if version < 0 {
			return keyring.Keyset{}, fmt.Errorf("gormcrypt: keyset %q has a negative version", name)
		}
		ks.Version, ks.KEK = uint64(version), setKEK
		if !id.Valid {
			continue // a keyset with no keys
		}
		if id.Int64 <= 0 || id.Int64 > 0xffffffff {
			return keyring.Keyset{}, fmt.Errorf("gormcrypt: keyset %q has an invalid key ID", name)
		}
		a, err := cipher.ParseAlgorithm(alg.String)
		if err != nil {
			return keyring.Keyset{}, fmt.Errorf("gormcrypt: keyset %q key %d: %w", name, id.Int64, err)
		}
		ks.Keys = append(ks.Keys, keyring.Key{
			ID: uint32(id.Int64), Purpose: keyring.Purpose(purpose.String), Algorithm: a,
			State: keyring.State(state.String), KEK: kek.String, Wrapped: wrapped,
			Created: created.Time.UTC(), Updated: updated.Time.UTC(),
			Retired: nullTime(retired), Disabled: nullTime(disable),
		})
	}
	if err := rows.Err(); err != nil {
		return keyring.Keyset{}, s.wrap(ctx, "load", err)
	}
	if !found {
		return keyring.Keyset{}, fmt.Errorf("%w: %q", keyring.ErrKeyringNotFound, name)
	}
	if err := ks.Validate(); err != nil {
		return keyring.Keyset{}, fmt.Errorf("gormcrypt: stored keyset is invalid: %w", err)
	}
	return ks, nil
}

// Save implements keyring.Store.
func (s *Store) Save(ctx context.Context, ks keyring.Keyset) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := ks.Validate(); err != nil {
		return err
	}
	if ks.Version >= 1<<62 {
		return fmt.Errorf("gormcrypt: keyset %q version out of range", ks.Name)
	}
	now := time.Now().UTC()
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if ks.Version == 0 {
			res := tx.Table(s.sets).Clauses(clause.OnConflict{DoNothing: true}).
				Create(&keysetRow{Name: ks.Name, Version: 1, Updated: now, KEK: ks.KEK})
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected == 0 {
				return errConflict
			}
		} else {
			res := tx.Table(s.sets).Where("name = ? AND version = ?", ks.Name, int64(ks.Version)).
				Updates(map[string]any{"version": int64(ks.Version) + 1, "updated": now, "kek": ks.KEK})
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected == 0 {
				return errConflict
			}
		}
		if err := tx.Table(s.keys).Where("keyring = ?", ks.Name).Delete(&keyRow{}).Error; err != nil {
			return err
		}
		if len(ks.Keys) == 0 {
			return nil
		}
		rows := make([]keyRow, len(ks.Keys))
		for i, k := range ks.Keys {
			rows[i] = keyRow{
				Keyring: ks.Name, KeyID: int64(k.ID), Position: i, Purpose: string(k.Purpose),
				Algorithm: k.Algorithm.String(), State: string(k.State), KEK: k.KEK, Wrapped: k.Wrapped,
				Created: k.Created.UTC(), Updated: k.Updated.UTC(),
				Retired: sqlTime(k.Retired), Disabled: sqlTime(k.Disabled),
			}
		}
		return tx.Table(s.keys).Create(&rows).Error
	})
	if errors.Is(err, errConflict) {
		return fmt.Errorf("%w: keyset %q is no longer at version %d", keyring.ErrConflict, ks.Name, ks.Version)
	}
	if err != nil {
		return s.wrap(ctx, "save", err)
	}
	return nil
}

// Names returns the names of the keyrings in the store, sorted.
func (s *Store) Names(ctx context.Context) ([]string, error) {
	var names []string
	err := s.db.WithContext(ctx).Table(s.sets).Order("name").Pluck("name", &names).Error
	if err != nil {
		return nil, s.wrap(ctx, "list", err)
	}
	return names, nil
}

// AddEncryptions implements keyring.CountStore with the table
// "<prefix>key_counts": one upsert per key that adds to its count, then one
// read of the keyring's counts.
func (s *Store) AddEncryptions(ctx context.Context, name string, n map[uint32]uint64) (map[uint32]uint64, error) {
	db := s.db.WithContext(ctx)
	for id, d := range n {
		if d == 0 {
			continue
		}
		if d > 1<<62 {
			return nil, fmt.Errorf("gormcrypt: encryption count of key %d out of range", id)
		}
		err := db.Exec("INSERT INTO "+s.counts+" (keyring, key_id, encryptions) VALUES (?, ?, ?) ON CONFLICT (keyring, key_id) DO UPDATE SET encryptions = "+
			s.counts+".encryptions + excluded.encryptions", name, int64(id), int64(d)).Error
		if err != nil {
			return nil, s.wrap(ctx, "count", err)
		}
	}
	var rows []countRow
	if err := db.Table(s.counts).Where("keyring = ?", name).Find(&rows).Error; err != nil {
		return nil, s.wrap(ctx, "count", err)
	}
	out := make(map[uint32]uint64, len(rows))
	for _, r := range rows {
		if r.KeyID > 0 && r.KeyID <= 0xffffffff && r.Encryptions >= 0 {
			out[uint32(r.KeyID)] = uint64(r.Encryptions)
		}
	}
	return out, nil
}

var errConflict = errors.New("conflict")

// sqlTime stores a zero time as NULL.
func sqlTime(t time.Time) sql.NullTime {
	if t.IsZero() {
		return sql.NullTime{}
	}
	return sql.NullTime{Time: t.UTC(), Valid: true}
}

// nullTime reads NULL as the zero time.
func nullTime(t sql.NullTime) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

// wrap reports a database error, preferring the context's error when the
// context ended.
func (s *Store) wrap(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("gormcrypt: store %s: %w (%w)", op, cerr, err)
	}
	return fmt.Errorf("gormcrypt: store %s: %w", op, err)
}
