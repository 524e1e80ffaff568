package keyring

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/keyward/keyward/internal/fsutil"
)

// fileFormat names the layout of a FileStore file.
const fileFormat = "keyward.keyring/v1"

// FileStore is a Store in one JSON file holding any number of keysets. Every
// Save takes an exclusive lock on a sibling ".lock" file (flock on Unix), so
// processes on one machine sharing the file serialize their changes; it then
// writes a temporary file, fsyncs it, renames it over the store and fsyncs
// the directory, so a crash leaves either the old or the new file, never a
// torn one. The file and its lock are created with mode 0600. Load reads
// without locking: rename is atomic.
//
// The file holds wrapped data keys only; without the key-encryption key they
// reveal nothing. Still, FileStore refuses a file that group or others may
// write, since whoever can replace it can disable every key.
type FileStore struct {
	path string
}

var (
	_ Store      = (*FileStore)(nil)
	_ CountStore = (*FileStore)(nil)
)

type fileContents struct {
	Format   string            `json:"format"`
	Keyrings map[string]Keyset `json:"keyrings"`
	// Counts holds the encryptions of every key, by keyring (CountStore).
	Counts map[string]map[uint32]uint64 `json:"counts,omitempty"`
}

// NewFileStore returns a FileStore over path. The file need not exist (the
// first Save creates it) but its directory must.
func NewFileStore(path string) (*FileStore, error) {
	if path == "" {
		return nil, errors.New("keyring: file store path is empty")
	}
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("keyring: file store directory: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("keyring: file store directory %s is not a directory", dir)
	}
	s := &FileStore{path: path}
	if _, err := s.read(); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return s, nil
}

// Path returns the store's file path.
func (s *FileStore) Path() string { return s.path }

// Load implements Store.
func (s *FileStore) Load(ctx context.Context, name string) (Keyset, error) {
	if err := ctx.Err(); err != nil {
		return Keyset{}, err
	}
	c, err := s.read()
	if errors.Is(err, fs.ErrNotExist) {
		return Keyset{}, fmt.Errorf("%w: %q", ErrKeyringNotFound, name)
	}
	if err != nil {
		return Keyset{}, err
	}
	ks, ok := c.Keyrings[name]
	if !ok {
		return Keyset{}, fmt.Errorf("%w: %q", ErrKeyringNotFound, name)
	}
	return ks, nil
}

// Names returns the names of the keysets in the store, sorted.
func (s *FileStore) Names(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := s.read()
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(c.Keyrings))
	for n := range c.Keyrings {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// Save implements Store.
func (s *FileStore) Save(ctx context.Context, ks Keyset) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := ks.Validate(); err != nil {
		return err
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()

	c, err := s.read()
	if errors.Is(err, fs.ErrNotExist) {
		c, err = fileContents{Format: fileFormat, Keyrings: map[string]Keyset{}}, nil
	}
	if err != nil {
		return err
	}
	if cur := c.Keyrings[ks.Name]; cur.Version != ks.Version {
		return fmt.Errorf("%w: keyset %q is at version %d, not %d", ErrConflict, ks.Name, cur.Version, ks.Version)
	}
	ks = ks.Clone()
	ks.Version++
	c.Keyrings[ks.Name] = ks
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("keyring: encode file store: %w", err)
	}
	return s.writeFile(append(b, '\n'))
}

// AddEncryptions implements CountStore: under the file's lock, like Save,
// without changing any keyset's version.
func (s *FileStore) AddEncryptions(ctx context.Context, name string, n map[uint32]uint64) (map[uint32]uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(n) == 0 {
		c, err := s.read()
		if errors.Is(err, fs.ErrNotExist) {
			return map[uint32]uint64{}, nil
		}
		if err != nil {
			return nil, err
		}
		return copyCounts(c.Counts[name]), nil
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	c, err := s.read()
	if errors.Is(err, fs.ErrNotExist) {
		c, err = fileContents{Format: fileFormat, Keyrings: map[string]Keyset{}}, nil
	}
	if err != nil {
		return nil, err
	}
	if c.Counts == nil {
		c.Counts = map[string]map[uint32]uint64{}
	}
	if c.Counts[name] == nil {
		c.Counts[name] = map[uint32]uint64{}
	}
	for id, d := range n {
		c.Counts[name][id] += d
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("keyring: encode file store: %w", err)
	}
	if err := s.writeFile(append(b, '\n')); err != nil {
		return nil, err
	}
	return copyCounts(c.Counts[name]), nil
}

func copyCounts(c map[uint32]uint64) map[uint32]uint64 {
	out := make(map[uint32]uint64, len(c))
	for id, v := range c {
		out[id] = v
	}
	return out
}

func (s *FileStore) read() (fileContents, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return fileContents{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fileContents{}, fmt.Errorf("keyring: file store: %w", err)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fileContents{}, fmt.Errorf("keyring: file store %s has mode %04o: group or others may write it (run: chmod 600 %s)", s.path, fi.Mode().Perm(), s.path)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		return fileContents{}, fmt.Errorf("keyring: file store: %w", err)
	}
	var c fileContents
	if err := unmarshalJSON(buf.Bytes(), &c); err != nil {
		return fileContents{}, fmt.Errorf("keyring: file store %s is not valid: %w", s.path, err)
	}
	if c.Format != fileFormat {
		return fileContents{}, fmt.Errorf("keyring: file store %s has format %q, want %q", s.path, c.Format, fileFormat)
	}
	if c.Keyrings == nil {
		c.Keyrings = map[string]Keyset{}
	}
	for name, ks := range c.Keyrings {
		if ks.Name != name {
			return fileContents{}, fmt.Errorf("keyring: file store %s: keyset under %q is named %q", s.path, name, ks.Name)
		}
		if err := ks.Validate(); err != nil {
			return fileContents{}, fmt.Errorf("keyring: file store %s: %w", s.path, err)
		}
	}
	return c, nil
}

// writeFile replaces the store's file atomically.
func (s *FileStore) writeFile(data []byte) error {
	if err := fsutil.WriteFileAtomic(s.path, data); err != nil {
		return fmt.Errorf("keyring: file store: %w", err)
	}
	return nil
}

// lock takes the store's inter-process lock, waiting until ctx is done.
func (s *FileStore) lock(ctx context.Context) (unlock func(), err error) {
	unlock, err = fsutil.Lock(ctx, s.path+".lock")
	if err != nil {
		return nil, fmt.Errorf("keyring: file store lock: %w", err)
	}
	return unlock, nil
}
