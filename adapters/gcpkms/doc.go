// Package gcpkms is a keyring.KeySource over a Cloud KMS symmetric
// CryptoKey (cloud.google.com/go/kms/apiv1): the key-encryption key stays in
// Cloud KMS, and the keyring's data keys are wrapped with Encrypt (under the
// key's primary version) and unwrapped with Decrypt.
//
//	client, err := kms.NewKeyManagementClient(ctx)
//	defer client.Close()
//	src, err := gcpkms.New(client, "projects/P/locations/L/keyRings/R/cryptoKeys/K")
//	kr, err := keyring.New(ctx, "pii", src, store)
//	token, err := kr.EncryptString(ctx, "123-45-6789")
//
// The keyring calls Cloud KMS once per data key version per cache TTL (see
// keyring.WithCacheTTL), not per record. Rotating the CryptoKey in Cloud KMS
// needs nothing here: new data keys are wrapped under the new primary
// version, and Cloud KMS finds the version of older ones in their
// ciphertext.
//
// # What is sent to Cloud KMS
//
// Encrypt receives the CryptoKey name, the 32-byte data key and, as
// AdditionalAuthenticatedData, the keyring's associated data (keyring name,
// key ID, purpose and algorithm, length-prefixed), which binds each wrapped
// key to its place; Decrypt receives the name, the wrapped key (the Cloud
// KMS ciphertext, stored as is) and the same associated data. Nothing else
// of the data reaches Cloud KMS.
//
// # Integrity
//
// Every call is checked with CRC32C as Google documents: requests carry
// PlaintextCrc32C or CiphertextCrc32C and AdditionalAuthenticatedDataCrc32C;
// an Encrypt answer must report VerifiedPlaintextCrc32C and
// VerifiedAdditionalAuthenticatedDataCrc32C, its ciphertext must match
// CiphertextCrc32C, and its Name must be a version of the CryptoKey; a
// Decrypt answer's plaintext must match PlaintextCrc32C. An answer that
// fails is discarded and the call tried again, up to WithIntegrityAttempts
// times; then the call fails with ErrIntegrity. It never returns the data.
//
// # Permissions
//
// cloudkms.cryptoKeyVersions.useToEncrypt and
// cloudkms.cryptoKeyVersions.useToDecrypt on the CryptoKey (the role
// roles/cloudkms.cryptoKeyEncrypterDecrypter has both).
//
// # Retries
//
// Calls answered UNAVAILABLE, RESOURCE_EXHAUSTED (throttling) or
// DEADLINE_EXCEEDED are retried with exponential backoff and jitter, up to
// DefaultAttempts tries in all, within the call's context (WithRetry). The
// Source passes this gax retryer with each call in place of the client's
// default, which retries UNAVAILABLE and DEADLINE_EXCEEDED but not
// RESOURCE_EXHAUSTED.
//
// # Errors
//
// Errors wrap the keyring sentinels; status.Code (google.golang.org/grpc/status)
// still reads the gRPC code from them:
//
//   - keyring.ErrUnwrap: INVALID_ARGUMENT on Decrypt (the wrapped key or
//     its associated data does not authenticate);
//   - keyring.ErrKEKNotFound: NOT_FOUND;
//   - keyring.ErrKEKDisabled: FAILED_PRECONDITION (the version is disabled
//     or destroyed, or the key has no enabled primary);
//   - keyring.ErrKEKAccessDenied: PERMISSION_DENIED, UNAUTHENTICATED;
//   - keyring.ErrKEKUnavailable: UNAVAILABLE, RESOURCE_EXHAUSTED,
//     DEADLINE_EXCEEDED, INTERNAL, ABORTED, UNKNOWN, a passed deadline
//     (with context.DeadlineExceeded), and ErrIntegrity.
//
// A cancelled context gives an error matching context.Canceled.
//
// # Concurrency
//
// A Source is safe for concurrent use, as is *kms.KeyManagementClient.
package gcpkms
