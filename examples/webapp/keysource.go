package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"strings"

	gcpkmsapi "cloud.google.com/go/kms/apiv1"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	awskmsapi "github.com/aws/aws-sdk-go-v2/service/kms"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/keyward/keyward/adapters/awskms"
	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/adapters/gcpkms"
	"github.com/keyward/keyward/keyring"
)

// keyFlags choose the key-encryption key: the crypto.key file (created if
// missing), an AWS KMS key or a Cloud KMS CryptoKey. The data keys are kept
// in the database, wrapped by it.
type keyFlags struct {
	file, aws, gcp, region, endpoint string
	plaintext                        bool
}

func (k *keyFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&k.file, "key", "", "`path` of the crypto.key file, created (0600) if missing (default DIR/crypto.key)")
	fs.StringVar(&k.aws, "aws-kms", "", "AWS KMS `key` (key ARN, alias/NAME, alias ARN or key ID) wrapping the data keys, instead of -key")
	fs.StringVar(&k.gcp, "gcp-kms", "", "Cloud KMS CryptoKey `name` (projects/P/locations/L/keyRings/R/cryptoKeys/K) wrapping the data keys, instead of -key")
	fs.StringVar(&k.region, "aws-region", "", "AWS `region` for -aws-kms (default: the SDK's configuration, else the key ARN's region)")
	fs.StringVar(&k.endpoint, "kms-endpoint", "", "KMS endpoint, for emulators: a `URL` for -aws-kms, host:port for -gcp-kms")
	fs.BoolVar(&k.plaintext, "kms-plaintext", false, "reach -kms-endpoint over plaintext gRPC without credentials (Cloud KMS emulators only)")
}

// check reports contradictory flags.
func (k *keyFlags) check() error {
	switch {
	case k.aws != "" && k.gcp != "":
		return errors.New("give -aws-kms or -gcp-kms, not both")
	case k.file != "" && (k.aws != "" || k.gcp != ""):
		return errors.New("give -key or a KMS key (-aws-kms, -gcp-kms), not both")
	case k.region != "" && k.aws == "":
		return errors.New("-aws-region goes with -aws-kms")
	case k.endpoint != "" && k.aws == "" && k.gcp == "":
		return errors.New("-kms-endpoint goes with -aws-kms or -gcp-kms")
	case k.plaintext && (k.gcp == "" || k.endpoint == ""):
		return errors.New("-kms-plaintext goes with -gcp-kms and -kms-endpoint")
	}
	return nil
}

// source opens the key source. It returns a description for the start-up
// message and a function that releases the source.
func (k *keyFlags) source(ctx context.Context, defaultFile string) (keyring.KeySource, string, func(), error) {
	switch {
	case k.gcp != "":
		var opts []option.ClientOption
		if k.endpoint != "" {
			opts = append(opts, option.WithEndpoint(k.endpoint))
		}
		if k.plaintext {
			opts = append(opts, option.WithoutAuthentication(), option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
		}
		client, err := gcpkmsapi.NewKeyManagementClient(ctx, opts...)
		if err != nil {
			return nil, "", nil, err
		}
		src, err := gcpkms.New(client, k.gcp)
		if err != nil {
			_ = client.Close()
			return nil, "", nil, err
		}
		return src, "Cloud KMS " + k.gcp, func() { _ = client.Close() }, nil
	case k.aws != "":
		var opts []func(*config.LoadOptions) error
		if k.region != "" {
			opts = append(opts, config.WithRegion(k.region))
		}
		cfg, err := config.LoadDefaultConfig(ctx, opts...)
		if err != nil {
			return nil, "", nil, err
		}
		if p := strings.Split(k.aws, ":"); cfg.Region == "" && len(p) > 3 && p[0] == "arn" {
			cfg.Region = p[3]
		}
		src, err := awskms.NewFromConfig(ctx, cfg, k.aws, func(o *awskmsapi.Options) {
			if k.endpoint != "" {
				o.BaseEndpoint = aws.String(k.endpoint)
			}
		})
		if err != nil {
			return nil, "", nil, err
		}
		return src, "AWS KMS " + k.aws, func() {}, nil
	}
	path := k.file
	if path == "" {
		path = defaultFile
	}
	desc := path
	switch _, err := os.Stat(path); {
	case errors.Is(err, fs.ErrNotExist):
		if err := filekey.Generate(path); err != nil {
			return nil, "", nil, err
		}
		desc += " (created, mode 0600: keep it secret, keep it safe)"
	case err != nil:
		return nil, "", nil, err
	}
	src, err := filekey.Open(path)
	if err != nil {
		return nil, "", nil, fmt.Errorf("%s: %w", path, err)
	}
	return src, desc, func() {}, nil
}
