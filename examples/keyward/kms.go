package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	gcpkmsapi "cloud.google.com/go/kms/apiv1"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	awskmsapi "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go/logging"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/keyward/keyward/adapters/awskms"
	"github.com/keyward/keyward/adapters/gcpkms"
	"github.com/keyward/keyward/keyring"
)

// kmsTimeout bounds an encrypt or decrypt that uses a cloud KMS or the key
// service.
const kmsTimeout = time.Minute

// kmsFlags are the cloud KMS key-source flags of encrypt and decrypt: the
// keyring's data keys are wrapped by an AWS KMS key or a Cloud KMS
// CryptoKey instead of a key file.
type kmsFlags struct {
	aws, gcp, region, endpoint *string
	plaintext                  *bool
}

func addKMSFlags(fs *flag.FlagSet) kmsFlags {
	return kmsFlags{
		aws:       fs.String("aws-kms", "", "AWS KMS `key` (key ARN, alias/NAME, alias ARN or key ID) wrapping the keyring's data keys, instead of -k; needs --store"),
		gcp:       fs.String("gcp-kms", "", "Cloud KMS CryptoKey `name` (projects/P/locations/L/keyRings/R/cryptoKeys/K) wrapping the keyring's data keys, instead of -k; needs --store"),
		region:    fs.String("aws-region", "", "AWS `region` for --aws-kms (default: the SDK's configuration, else the key ARN's region)"),
		endpoint:  fs.String("kms-endpoint", "", "KMS endpoint, for emulators: a `URL` for --aws-kms, host:port for --gcp-kms (default: the cloud's)"),
		plaintext: fs.Bool("kms-plaintext", false, "reach --kms-endpoint over plaintext gRPC without credentials (Cloud KMS emulators only)"),
	}
}

// set reports whether a cloud KMS key was given.
func (k kmsFlags) set() bool { return *k.aws != "" || *k.gcp != "" }

// checkAlone reports contradictory KMS flags as usage errors.
func (k kmsFlags) checkAlone() error {
	switch {
	case *k.aws != "" && *k.gcp != "":
		return usagef("give --aws-kms or --gcp-kms, not both")
	case *k.region != "" && *k.aws == "":
		return usagef("--aws-region goes with --aws-kms")
	case *k.plaintext && (*k.gcp == "" || *k.endpoint == ""):
		return usagef("--kms-plaintext goes with --gcp-kms and --kms-endpoint")
	}
	return nil
}

// source returns the key source of the flags and a function that releases
// it.
func (k kmsFlags) source(ctx context.Context) (keyring.KeySource, func(), error) {
	if *k.gcp != "" {
		var opts []option.ClientOption
		if *k.endpoint != "" {
			opts = append(opts, option.WithEndpoint(*k.endpoint))
		}
		if *k.plaintext {
			opts = append(opts, option.WithoutAuthentication(), option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
		}
		client, err := gcpkmsapi.NewKeyManagementClient(ctx, opts...)
		if err != nil {
			return nil, nil, configError{fmt.Errorf("the Cloud KMS client: %w (set up Application Default Credentials: "+
				"`gcloud auth application-default login` or GOOGLE_APPLICATION_CREDENTIALS)", err)}
		}
		src, err := gcpkms.New(client, *k.gcp)
		if err != nil {
			_ = client.Close()
			return nil, nil, err
		}
		return src, func() { _ = client.Close() }, nil
	}
	// The SDK's own log lines (such as its IMDS fallback warning) would
	// break the one-line error; what went wrong is in the error.
	opts := []func(*config.LoadOptions) error{config.WithLogger(logging.Nop{})}
	if *k.region != "" {
		opts = append(opts, config.WithRegion(*k.region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, nil, configError{fmt.Errorf("AWS configuration: %w", err)}
	}
	if err := completeAWSConfig(ctx, &cfg, *k.aws); err != nil {
		return nil, nil, configError{err}
	}
	src, err := awskms.NewFromConfig(ctx, cfg, *k.aws, func(o *awskmsapi.Options) {
		if *k.endpoint != "" {
			o.BaseEndpoint = aws.String(*k.endpoint)
		}
	})
	if err != nil {
		return nil, nil, err
	}
	return src, func() {}, nil
}

// kmsUsage is the cloud key-source part of the usage of encrypt and decrypt.
const kmsUsage = "(--aws-kms KEY [--aws-region R] | --gcp-kms NAME) [--kms-endpoint E [--kms-plaintext]]"

// errRegion reports a configuration without an AWS region.
var errRegion = errors.New("no AWS region: give --aws-region, set AWS_REGION or a profile's region, or name the key by its ARN")

// errCredentials reports a configuration whose credentials could not be
// found or retrieved.
var errCredentials = errors.New("no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where an IAM role is attached")

// completeAWSConfig takes the region from the key's ARN when cfg names none, and
// checks that cfg has a region and credentials it can retrieve. A missing
// region is errRegion; credentials that cannot be retrieved are
// errCredentials wrapping the SDK's error.
func completeAWSConfig(ctx context.Context, cfg *aws.Config, key string) error {
	if p := strings.Split(key, ":"); cfg.Region == "" && len(p) > 3 && p[0] == "arn" {
		cfg.Region = p[3]
	}
	if cfg.Region == "" {
		return errRegion
	}
	if cfg.Credentials == nil {
		return errCredentials
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return fmt.Errorf("%w: %w", errCredentials, err)
	}
	return nil
}
