//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package access

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tests below stand two writers (two AuditLogs, each with its own open
// file descriptions, as two processes have) on one log directory.

// TestAuditLogOneWriter: whatever happens to the files around the log, a
// second writer is refused while the first one holds the log.
func TestAuditLogOneWriter(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		opts   []LogOption
		before func(t *testing.T, dir string) // runs while the first writer holds the log
	}{
		{name: "plain"},
		{
			// The case: deleting a lock file beside the log must
			// not let a second writer in. The log uses no such file.
			name: "lock files deleted",
			before: func(t *testing.T, dir string) {
				for _, name := range []string{"audit.lock", ".audit.lock"} {
					if err := os.Remove(filepath.Join(dir, name)); err != nil {
						require.ErrorIs(t, err, os.ErrNotExist, "remove %s", name)
					}
				}
				entries, err := os.ReadDir(dir)
				require.NoError(t, err)
				for _, e := range entries {
					_, ok := segmentNumber(e.Name(), DefaultFilePrefix)
					assert.True(t, ok, "the log directory holds %s, which is not a log file: nothing but the log files may guard it", e.Name())
				}
			},
		},
		{
			name: "after rotations",
			opts: []LogOption{WithMaxFileSize(1024)},
			before: func(t *testing.T, dir string) {
				files, err := ListAuditFiles(dir, "")
				require.NoError(t, err)
				require.Greater(t, len(files), 2, "the first writer should have rotated")
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			a, _ := openTestLog(t, dir, tc.opts...)
			for i := 1; i <= 20; i++ {
				require.NoError(t, a.WriteRecord(ctx, testRecord(i)), "first writer, record %d", i)
			}
			if tc.before != nil {
				tc.before(t, dir)
			}
			b, err := OpenAuditLog(ctx, dir, testKey, tc.opts...)
			if b != nil {
				b.Close()
			}
			require.ErrorIs(t, err, ErrLocked, "second OpenAuditLog while the first writer holds %s", dir)

			for i := 21; i <= 30; i++ {
				require.NoError(t, a.WriteRecord(ctx, testRecord(i)), "first writer, record %d", i)
			}
			require.NoError(t, a.Close())
			files, err := ListAuditFiles(dir, "")
			require.NoError(t, err)
			res, err := Verify(ctx, testKey, files)
			require.NoError(t, err, "Verify after the second writer was refused")
			assert.Equal(t, uint64(30), res.Records, "records in the log")

			// Once the first writer has closed, the second one gets in and
			// continues the chain.
			b, err = OpenAuditLog(ctx, dir, testKey, append([]LogOption{WithCheckpointFunc(func(Checkpoint) {})}, tc.opts...)...)
			require.NoError(t, err, "OpenAuditLog after the first writer closed")
			require.NoError(t, b.WriteRecord(ctx, testRecord(31)))
			require.NoError(t, b.Close())
			files, err = ListAuditFiles(dir, "")
			require.NoError(t, err)
			res, err = Verify(ctx, testKey, files)
			require.NoError(t, err, "Verify after the second writer continued the log")
			assert.Equal(t, uint64(31), res.Records, "records in the log")
		})
	}
}

// TestAuditLogActiveFileReplaced: the active file replaced by a copy (which
// a second writer can lock) stops the first writer at its next write, so
// the two never both extend the log.
func TestAuditLogActiveFileReplaced(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, _ := openTestLog(t, dir)
	for i := 1; i <= 3; i++ {
		require.NoError(t, a.WriteRecord(ctx, testRecord(i)))
	}
	active := filepath.Join(dir, segmentName(DefaultFilePrefix, 1))
	copyFile(t, active, active+".copy")
	require.NoError(t, os.Rename(active+".copy", active), "replace the active file by a copy")

	b, err := OpenAuditLog(ctx, dir, testKey, WithCheckpointFunc(func(Checkpoint) {}))
	require.NoError(t, err, "a second writer may take over a replaced file")
	err = a.WriteRecord(ctx, testRecord(4))
	require.ErrorIs(t, err, ErrLocked, "a write of the first writer after its file was replaced")
	assert.ErrorContains(t, err, "replaced")
	require.NoError(t, b.WriteRecord(ctx, testRecord(4)))
	require.NoError(t, b.Close())
	require.Error(t, a.Close(), "Close reports the lost file")

	files, err := ListAuditFiles(dir, "")
	require.NoError(t, err)
	res, err := Verify(ctx, testKey, files)
	require.NoError(t, err, "the log stays one chain")
	assert.Equal(t, uint64(4), res.Records, "records in the log")
}

// TestAuditLogWritersRace: a writer rotating often and a second one trying
// to open the log at the same time never fork it: every write that
// succeeded is in the one chain Verify accepts.
func TestAuditLogWritersRace(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opts := []LogOption{WithMaxFileSize(600), WithCheckpointFunc(func(Checkpoint) {})}
	a, err := OpenAuditLog(ctx, dir, testKey, opts...)
	require.NoError(t, err)

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		written  int
		openErrs = map[string]int{}
		stop     = make(chan struct{})
	)
	wg.Go(func() {
		defer close(stop)
		for i := 1; i <= 300; i++ {
			if a.WriteRecord(ctx, testRecord(i)) != nil {
				return // the second writer got the log: this one must stop
			}
			mu.Lock()
			written++
			mu.Unlock()
		}
	})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			b, err := OpenAuditLog(ctx, dir, testKey, opts...)
			if err != nil {
				mu.Lock()
				openErrs[errKind(err)]++
				mu.Unlock()
				continue
			}
			werr := b.WriteRecord(ctx, testRecord(1000))
			mu.Lock()
			if werr == nil {
				written++
			}
			mu.Unlock()
			b.Close()
			return
		}
	})
	wg.Wait()
	a.Close()
	for kind := range openErrs {
		assert.Equal(t, "locked", kind, "a second OpenAuditLog failed with an error other than ErrLocked")
	}
	files, err := ListAuditFiles(dir, "")
	require.NoError(t, err)
	res, err := Verify(ctx, testKey, files)
	require.NoError(t, err, "Verify after two writers raced")
	assert.Equal(t, uint64(written), res.Records, "every acknowledged write is in the one chain")
}

func errKind(err error) string {
	if errors.Is(err, ErrLocked) {
		return "locked"
	}
	return fmt.Sprint(err)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	require.NoError(t, err)
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	require.NoError(t, err)
	_, err = io.Copy(dst, src)
	require.NoError(t, err)
	require.NoError(t, dst.Close())
}

// TestAuditLogRotationWindow: a second writer that opens the log between
// the first one creating its next file and locking it gets the file; the
// first one then stops if the other wrote to it, and goes on if it did not.
func TestAuditLogRotationWindow(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name        string
		secondWrite bool
	}{
		{"second writer writes", true},
		{"second writer only opens", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := []LogOption{WithMaxFileSize(600), WithCheckpointFunc(func(Checkpoint) {})}
			a, err := OpenAuditLog(ctx, dir, testKey, opts...)
			require.NoError(t, err)
			defer a.Close()
			require.NoError(t, a.WriteRecord(ctx, testRecord(1)))
			var openErr error
			a.created = func(name string) {
				a.created = nil
				b, err := OpenAuditLog(ctx, dir, testKey, opts...)
				if openErr = err; err != nil {
					return
				}
				if tc.secondWrite {
					openErr = b.WriteRecord(ctx, testRecord(1000))
				}
				b.Close()
			}
			err = a.WriteRecord(ctx, testRecord(2)) // rotates: the file is too small for two
			require.NoError(t, openErr, "the second writer opening in the rotation window")
			if tc.secondWrite {
				require.ErrorIs(t, err, ErrLocked, "the first writer after the second one wrote to its new file")
				require.ErrorIs(t, a.Close(), ErrLocked, "Close reports the lost file")
			} else {
				require.NoError(t, err, "the first writer after the second one only opened its new file")
				require.NoError(t, a.Close())
			}
			files, err := ListAuditFiles(dir, "")
			require.NoError(t, err)
			res, err := Verify(ctx, testKey, files)
			require.NoError(t, err, "the log stays one chain")
			// Record 1, then record 2 of the first writer or the second
			// writer's record.
			assert.Equal(t, uint64(2), res.Records, "records in the log")
		})
	}
}
