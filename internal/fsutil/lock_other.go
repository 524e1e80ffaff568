//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package fsutil

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// TryLock does nothing on this platform: the caller must make sure that only
// one process uses the file.
func TryLock(*os.File) error { return nil }

// Lock creates path exclusively as a lock, waiting until it can or ctx is
// done; unlock removes it. A lock left by a crashed process must be removed
// by hand; the error says so.
func Lock(ctx context.Context, path string) (unlock func(), err error) {
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			f.Close()
			return func() { os.Remove(path) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("lock %s is held (remove it if no process holds it): %w", path, err)
		}
	}
}
