//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package access

import "os"

// lockFile does nothing on this platform: the caller must make sure that
// only one AuditLog writes to a directory.
func lockFile(*os.File) error { return nil }
