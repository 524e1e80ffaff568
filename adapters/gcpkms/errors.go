package gcpkms

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/keyward/keyward/keyring"
)

// ErrIntegrity reports a Cloud KMS answer that failed its CRC32C check (or
// did not confirm it checked the request's) on every attempt: the data was
// corrupted in transit. It comes with keyring.ErrKEKUnavailable, and the
// answer is never returned as data.
var ErrIntegrity = errors.New("gcpkms: integrity check failed")

// classify wraps err, an error of the client's call for op, with the
// keyring sentinel its status code stands for. status.Code still reads the
// code from the result.
func classify(ctx context.Context, op string, err error) error {
	var class error
	switch status.Code(err) {
	case codes.NotFound:
		class = keyring.ErrKEKNotFound
	case codes.FailedPrecondition:
		class = keyring.ErrKEKDisabled
	case codes.PermissionDenied, codes.Unauthenticated:
		class = keyring.ErrKEKAccessDenied
	case codes.InvalidArgument:
		if op == "unwrap" {
			class = keyring.ErrUnwrap
		}
	case codes.Unavailable, codes.ResourceExhausted, codes.DeadlineExceeded, codes.Internal, codes.Aborted, codes.Unknown:
		class = keyring.ErrKEKUnavailable
	}
	// A definitive answer stands even if the context ended meanwhile;
	// otherwise the context's end is the cause.
	if ctxErr := ctx.Err(); ctxErr != nil && (class == nil || class == keyring.ErrKEKUnavailable) {
		if !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w: %w", ctxErr, err)
		}
		class = nil
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			class = keyring.ErrKEKUnavailable
		}
	}
	if class == nil {
		return fmt.Errorf("gcpkms: %s: %w", op, err)
	}
	return fmt.Errorf("gcpkms: %s: %w: %w", op, class, err)
}
