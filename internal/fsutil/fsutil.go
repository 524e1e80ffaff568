package fsutil

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
)

// ErrLocked is returned by TryLock when another process holds the lock.
var ErrLocked = errors.New("file is locked by another process")

// WriteFileAtomic replaces path with data: it writes a temporary file with
// mode 0600 in the same directory, syncs it, renames it over path and syncs
// the directory (best effort: not every file system syncs directories). A
// reader sees the old contents or the new ones, never a mix; on error path
// is unchanged and the temporary file is removed.
func WriteFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(0o600); err != nil {
		return err
	}
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	_ = SyncDir(dir)
	return nil
}

// SyncDir makes the creation, rename or removal of an entry in dir durable
// by syncing the directory. On Windows, where directories cannot be synced,
// it does nothing.
func SyncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
