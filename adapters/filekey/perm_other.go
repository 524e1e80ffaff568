//go:build !unix

package filekey

import "io/fs"

// checkPermissions has no mode bits to check off Unix; protect the file with
// the platform's access control lists.
func checkPermissions(string, fs.FileInfo) error { return nil }
