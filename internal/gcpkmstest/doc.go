// Package gcpkmstest is an in-process Cloud KMS: a gRPC server implementing
// the part of kmspb.KeyManagementServiceServer that symmetric encryption
// uses, so that tests drive the real cloud.google.com/go/kms client over
// loopback gRPC. No Cloud KMS emulator exists to run instead.
//
// It implements key rings, ENCRYPT_DECRYPT crypto keys with versions
// (create, make primary, enable, disable, destroy), Encrypt and Decrypt with
// CRC32C verification of requests and checksums in responses as Cloud KMS
// documents them, and the status codes Cloud KMS answers with. Tests count
// calls per method and inject faults: an error status, a hang, a corrupted
// response checksum, or an Encrypt answer whose checksums were not
// verified.
//
// It is test support: only tests and the internal emulator command import
// it.
package gcpkmstest
