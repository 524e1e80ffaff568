//go:build !unix

package filekey

import "io/fs"

// checkPermissions has no mode bits to check off Unix; protect the file with
// the platform's access control lists.
func checkPermissions(string, fs.FileInfo) error { return nil }

// openNonBlocking has no equivalent off Unix, where opening a file does not
// wait for a writer; the regular-file check after opening still refuses
// anything but a file.
const openNonBlocking = 0
