//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package fsutil

import (
	"context"
	"errors"
	"os"
	"syscall"
	"time"
)

// TryLock takes an exclusive advisory lock on f without waiting. It returns
// ErrLocked when another open file description holds the lock. The lock is
// released when f is closed.
func TryLock(f *os.File) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return ErrLocked
	}
	return err
}

// Lock takes an exclusive lock on the file path (created with mode 0600 if
// missing), waiting until it is free or ctx is done. unlock releases it.
func Lock(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		err := TryLock(f)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if err != ErrLocked && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, err
		}
		if err := sleep(ctx, wait); err != nil {
			f.Close()
			return nil, err
		}
	}
}
