package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// removeForReplace removes an existing key file for keygen -f, refusing
// anything that is not a regular file.
func removeForReplace(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file; not replacing it", path)
	}
	return os.Remove(path)
}
