package keyservice

import "errors"

// ErrIntegrity reports a payload whose CRC32C did not match, in a request
// the service received or an answer the Source received, on every attempt
// (WithIntegrityAttempts): the data was corrupted on the way. It comes with
// keyring.ErrKEKUnavailable, and the payload is never used.
var ErrIntegrity = errors.New("keyservice: integrity check failed")

// ErrServerClosed is returned by Server.Serve when it is called after
// Shutdown began.
var ErrServerClosed = errors.New("keyservice: server closed")
