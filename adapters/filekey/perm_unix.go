//go:build unix

package filekey

import (
	"fmt"
	"io/fs"
)

func checkPermissions(path string, fi fs.FileInfo) error {
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%w: %s has mode %s; run: chmod 600 %s", ErrPermissions, path, permString(fi.Mode()), path)
	}
	return nil
}
