//go:build unix

package filekey_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/adapters/filekey"
)

// TestLoadRefusesSpecialFilesWithoutBlocking: a FIFO nobody writes to (the
// open would wait for a writer forever), a device and a directory are
// refused at once as not regular files, as is a link to a FIFO.
func TestLoadRefusesSpecialFilesWithoutBlocking(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "crypto.key")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600), "mkfifo %s", fifo)
	link := filepath.Join(dir, "link.key")
	require.NoError(t, os.Symlink(fifo, link))

	for _, tc := range []struct{ name, path string }{
		{"fifo", fifo},
		{"symlink to a fifo", link},
		{"character device", os.DevNull},
		{"directory", dir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			type result struct {
				key []byte
				err error
			}
			done := make(chan result, 1)
			go func() {
				k, err := filekey.Load(tc.path)
				done <- result{k, err}
			}()
			select {
			case r := <-done:
				assert.ErrorIs(t, r.err, filekey.ErrInvalidKey, "Load(%s) should refuse a non-regular file", tc.path)
				assert.ErrorContains(t, r.err, "not a regular file", "Load(%s)", tc.path)
				assert.Nil(t, r.key, "Load(%s) returned a key", tc.path)
			case <-time.After(10 * time.Second):
				// Unblock the goroutine so the test binary can end.
				if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					w.Close()
				}
				t.Fatalf("Load(%s) blocked for 10s; it must refuse a %s at once", tc.path, tc.name)
			}
		})
	}
}
