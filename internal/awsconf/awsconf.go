package awsconf

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// ErrRegion reports a configuration without an AWS region.
var ErrRegion = errors.New("no AWS region: give a region (--aws-region, -region), set AWS_REGION or a profile's region, or name the key by its ARN")

// ErrCredentials reports a configuration whose credentials could not be
// found or retrieved.
var ErrCredentials = errors.New("no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where an IAM role is attached")

// Complete takes the region from the key's ARN when cfg names none, and
// checks that cfg has a region and credentials it can retrieve. A missing
// region is ErrRegion; credentials that cannot be retrieved are
// ErrCredentials wrapping the SDK's error.
func Complete(ctx context.Context, cfg *aws.Config, key string) error {
	if p := strings.Split(key, ":"); cfg.Region == "" && len(p) > 3 && p[0] == "arn" {
		cfg.Region = p[3]
	}
	if cfg.Region == "" {
		return ErrRegion
	}
	if cfg.Credentials == nil {
		return ErrCredentials
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrCredentials, err)
	}
	return nil
}
