package awskms

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/keyward/keyward/keyring"
)

// classify wraps err, an error of the SDK's call for op, with the keyring
// sentinel it stands for, keeping the SDK's error reachable with errors.As.
func classify(ctx context.Context, op string, err error) error {
	var (
		invalidCiphertext *types.InvalidCiphertextException
		incorrectKey      *types.IncorrectKeyException
		notFound          *types.NotFoundException
		disabled          *types.DisabledException
		invalidState      *types.KMSInvalidStateException
		invalidUsage      *types.InvalidKeyUsageException
		apiErr            smithy.APIError
	)
	var class error
	switch {
	case errors.As(err, &invalidCiphertext), errors.As(err, &incorrectKey):
		class = keyring.ErrUnwrap
	case errors.As(err, &notFound):
		class = keyring.ErrKEKNotFound
	case errors.As(err, &disabled), errors.As(err, &invalidState), errors.As(err, &invalidUsage):
		class = keyring.ErrKEKDisabled
	case errors.As(err, &apiErr) && accessDenied[apiErr.ErrorCode()]:
		class = keyring.ErrKEKAccessDenied
	case ctx.Err() != nil:
		if !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("%w: %w", ctx.Err(), err)
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			class = keyring.ErrKEKUnavailable
		}
	case transient(err):
		class = keyring.ErrKEKUnavailable
	}
	if class == nil {
		return fmt.Errorf("awskms: %s: %w", op, err)
	}
	return fmt.Errorf("awskms: %s: %w: %w", op, class, err)
}

// accessDenied are the error codes of refused credentials or permissions.
var accessDenied = map[string]bool{
	"AccessDeniedException":       true,
	"UnrecognizedClientException": true,
	"InvalidSignatureException":   true,
}

// transientCodes are KMS error codes that may pass; throttling codes are
// the SDK's retry.DefaultThrottleErrorCodes.
var transientCodes = map[string]bool{
	"KeyUnavailableException":    true,
	"DependencyTimeoutException": true,
	"KMSInternalException":       true,
	"RequestTimeout":             true,
	"RequestTimeoutException":    true,
}

// transient reports whether err may pass: no answer from KMS at all
// (network, timeout), throttling, a server-side fault or a 5xx status.
func transient(err error) bool {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return true
	}
	code := apiErr.ErrorCode()
	if _, ok := retry.DefaultThrottleErrorCodes[code]; ok || transientCodes[code] {
		return true
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && (re.HTTPStatusCode() >= 500 || re.HTTPStatusCode() == http.StatusTooManyRequests) {
		return true
	}
	return apiErr.ErrorFault() == smithy.FaultServer
}
