//go:build unix

package filekey

import (
	"fmt"
	"io/fs"
	"syscall"
)

func checkPermissions(path string, fi fs.FileInfo) error {
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%w: %s has mode %s; run: chmod 600 %s", ErrPermissions, path, permString(fi.Mode()), path)
	}
	return nil
}

// openNonBlocking makes opening a FIFO return at once instead of waiting
// for a writer; Load then refuses it as not a regular file. On a regular
// file it changes nothing.
const openNonBlocking = syscall.O_NONBLOCK
