package rotation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
	"unicode/utf8"

	"github.com/keyward/keyward/internal/fsutil"
)

// checkpointFormat names the layout of a checkpoint file. Files of the
// earlier layout (v1) carry no MAC and are refused.
const checkpointFormat = "keyward.rotation.checkpoint/v2"

// maxCheckpointBytes bounds what FileCheckpoint.Load reads.
const maxCheckpointBytes = 64 << 10

// FileCheckpoint is a Checkpoint in one JSON file, replaced atomically
// (temporary file, fsync, rename, fsync of the directory) with mode 0600.
// The file holds the run identity, the target's cursor (for a GORM target,
// the last primary key done) and the MAC that authenticates them: no
// values, no keys. One FileCheckpoint serves one run at a time.
type FileCheckpoint struct {
	path string
}

var _ Checkpoint = (*FileCheckpoint)(nil)

// checkpointFile is the file's JSON.
type checkpointFile struct {
	Format string    `json:"format"`
	Run    string    `json:"run"`
	Cursor string    `json:"cursor"`
	MAC    string    `json:"mac"`
	Saved  time.Time `json:"saved"`
}

// NewFileCheckpoint returns a FileCheckpoint at path. The file need not
// exist; its directory must.
func NewFileCheckpoint(path string) (*FileCheckpoint, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: empty path", ErrCheckpoint)
	}
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a directory", ErrCheckpoint, dir)
	}
	return &FileCheckpoint{path: path}, nil
}

// Path returns the file's path.
func (f *FileCheckpoint) Path() string { return f.path }

// Load reads the file; ok is false when it does not exist. A malformed
// file is an error wrapping ErrCheckpoint, never a fresh start.
func (f *FileCheckpoint) Load(ctx context.Context) (Progress, bool, error) {
	if err := ctx.Err(); err != nil {
		return Progress{}, false, err
	}
	file, err := os.Open(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return Progress{}, false, nil
	}
	if err != nil {
		return Progress{}, false, fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	defer file.Close()
	data, err := io.ReadAll(io.LimitReader(file, maxCheckpointBytes+1))
	if err != nil {
		return Progress{}, false, fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	p, err := ParseProgress(data)
	if err != nil {
		return Progress{}, false, err
	}
	return p, true, nil
}

// ParseProgress decodes the contents of a checkpoint file into the Progress
// it saved (access.ParseCheckpoint is another thing: an audit log
// checkpoint). It rejects
// anything but one JSON object of the expected format with a clear error
// wrapping ErrCheckpoint.
func ParseProgress(data []byte) (Progress, error) {
	if len(data) > maxCheckpointBytes {
		return Progress{}, fmt.Errorf("%w: file larger than %d bytes", ErrCheckpoint, maxCheckpointBytes)
	}
	if !utf8.Valid(data) {
		return Progress{}, fmt.Errorf("%w: not UTF-8", ErrCheckpoint)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c checkpointFile
	if err := dec.Decode(&c); err != nil {
		return Progress{}, fmt.Errorf("%w: invalid JSON: %s", ErrCheckpoint, jsonProblem(err))
	}
	if dec.More() {
		return Progress{}, fmt.Errorf("%w: data after the JSON object", ErrCheckpoint)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Progress{}, fmt.Errorf("%w: data after the JSON object", ErrCheckpoint)
	}
	switch {
	case c.Format == "keyward.rotation.checkpoint/v1":
		return Progress{}, fmt.Errorf("%w: format v1 carries no MAC; remove the file to start the run over", ErrCheckpointAuth)
	case c.Format != checkpointFormat:
		return Progress{}, fmt.Errorf("%w: format is not %q", ErrCheckpoint, checkpointFormat)
	case c.Run == "":
		return Progress{}, fmt.Errorf("%w: no run", ErrCheckpoint)
	case c.Cursor == "":
		return Progress{}, fmt.Errorf("%w: no cursor", ErrCheckpoint)
	case c.MAC == "":
		return Progress{}, fmt.Errorf("%w: no MAC", ErrCheckpointAuth)
	}
	return Progress{Run: c.Run, Cursor: c.Cursor, MAC: c.MAC}, nil
}

// jsonProblem describes a JSON error without quoting the input.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at offset %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q holds a JSON %s", te.Field, te.Value)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated"
	}
	return "not a checkpoint object"
}

// Save writes p atomically.
func (f *FileCheckpoint) Save(ctx context.Context, p Progress) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if p.Run == "" || p.Cursor == "" || p.MAC == "" {
		return fmt.Errorf("%w: progress without run, cursor or MAC", ErrCheckpoint)
	}
	data, err := json.Marshal(checkpointFile{Format: checkpointFormat, Run: p.Run, Cursor: p.Cursor, MAC: p.MAC, Saved: time.Now().UTC()})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	if len(data) > maxCheckpointBytes {
		return fmt.Errorf("%w: cursor too long", ErrCheckpoint)
	}
	if err := fsutil.WriteFileAtomic(f.path, append(data, '\n')); err != nil {
		return fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	return nil
}

// Clear removes the file.
func (f *FileCheckpoint) Clear(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Remove(f.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	_ = fsutil.SyncDir(filepath.Dir(f.path)) // best effort: the removal is done
	return nil
}
