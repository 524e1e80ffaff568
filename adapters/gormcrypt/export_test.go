package gormcrypt

import "strings"

// KeyEncodingForTest returns how the registry binds c's primary key values.
func KeyEncodingForTest(c Column) string { return strings.Join(c.keyEncodings, ",") }
