package fsutil

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "store.json")
	for _, data := range []string{"first\n", "second, longer\n", ""} {
		require.NoError(t, WriteFileAtomic(path, []byte(data)), "WriteFileAtomic(%q)", data)
		got, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.Equal(t, data, string(got), "contents after WriteFileAtomic(%q)", data)
		if runtime.GOOS != "windows" {
			st, err := os.Stat(path)
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "mode after WriteFileAtomic(%q)", data)
		}
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "WriteFileAtomic left files behind: %v", entries)
	assert.Equal(t, "store.json", entries[0].Name())
}

func TestWriteFileAtomicFailureKeepsTheOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "store.json")
	require.NoError(t, os.WriteFile(path, []byte("old"), 0o600))
	// A directory where the file should go makes the rename fail after the
	// temporary file was written.
	blocked := filepath.Join(dir, "sub")
	require.NoError(t, os.Mkdir(blocked, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(blocked, "x"), nil, 0o600))
	assert.Error(t, WriteFileAtomic(blocked, []byte("new")), "WriteFileAtomic over a non-empty directory")
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "old", string(got))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 2, "a failed WriteFileAtomic left its temporary file: %v", entries)

	assert.Error(t, WriteFileAtomic(filepath.Join(dir, "missing", "f"), []byte("x")), "WriteFileAtomic into a missing directory")
}

func TestSyncDir(t *testing.T) {
	assert.NoError(t, SyncDir(t.TempDir()), "SyncDir(existing directory)")
	if runtime.GOOS != "windows" {
		assert.Error(t, SyncDir(filepath.Join(t.TempDir(), "missing")), "SyncDir(missing directory)")
	}
}

func TestTryLock(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "solaris" || runtime.GOOS == "illumos" || runtime.GOOS == "aix" {
		t.Skip("TryLock does nothing on " + runtime.GOOS)
	}
	path := filepath.Join(t.TempDir(), "log")
	open := func() *os.File {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		require.NoError(t, err)
		t.Cleanup(func() { f.Close() })
		return f
	}
	a, b := open(), open()
	require.NoError(t, TryLock(a), "TryLock of a free file")
	assert.ErrorIs(t, TryLock(b), ErrLocked, "TryLock of a file another descriptor holds")
	require.NoError(t, a.Close())
	assert.NoError(t, TryLock(b), "TryLock after the holder closed the file")
}

func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.lock")
	unlock, err := Lock(context.Background(), path)
	require.NoError(t, err, "Lock of a free lock")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = Lock(ctx, path)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "Lock of a held lock until the context ends")

	// A waiter gets the lock once the holder releases it.
	got := make(chan error, 1)
	waiting := make(chan struct{})
	go func() {
		close(waiting)
		u, err := Lock(context.Background(), path)
		if err == nil {
			u()
		}
		got <- err
	}()
	<-waiting
	unlock()
	assert.NoError(t, <-got, "Lock after the holder released it")
}
