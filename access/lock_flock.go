//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package access

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockFile takes an exclusive, non-blocking advisory lock on f, so that two
// processes never append to the same audit log.
func lockFile(f *os.File) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return ErrLocked
	}
	if err != nil {
		return fmt.Errorf("access: audit log: lock: %w", err)
	}
	return nil
}
