// Package awskmstest serves github.com/nsmithuk/local-kms in-process, so
// that tests drive the real aws-sdk-go-v2 KMS client over HTTP against a
// real protocol server, with no network and no Docker.
//
// Around local-kms the Server adds what tests need: request counts per
// operation, injected faults (error answers, hangs), forced server-side key
// rotation, key deletion, and two fixes where local-kms answers otherwise
// than AWS KMS does:
//
//   - Decrypt under a disabled, pending-deletion or deleted key: local-kms
//     answers AccessDeniedException to all three; AWS answers
//     DisabledException, KMSInvalidStateException and NotFoundException. The
//     Server answers as AWS does.
//   - Decrypt naming a key other than the one in the ciphertext blob:
//     local-kms decrypts with the key named and never checks the key ARN
//     in the blob, so a blob whose ARN bytes were altered still decrypts.
//     AWS authenticates the whole blob and answers IncorrectKeyException
//     for a blob of another key; so does the Server.
//   - Some malformed ciphertexts (shorter than a nonce, or with a key-name
//     length byte that overflows) make local-kms panic; AWS answers
//     InvalidCiphertextException, and so does the Server.
//
// It is test support: only tests and the internal emulator command import
// it.
package awskmstest
