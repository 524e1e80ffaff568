package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go/logging"

	"github.com/keyward/keyward/adapters/awskms"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "awskms:", err)
		os.Exit(1)
	}
}

// counting counts the KMS calls a Source makes.
type counting struct {
	awskms.API
	encrypts, decrypts atomic.Int64
}

func (c *counting) Encrypt(ctx context.Context, in *kms.EncryptInput, opts ...func(*kms.Options)) (*kms.EncryptOutput, error) {
	c.encrypts.Add(1)
	return c.API.Encrypt(ctx, in, opts...)
}

func (c *counting) Decrypt(ctx context.Context, in *kms.DecryptInput, opts ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	c.decrypts.Add(1)
	return c.API.Decrypt(ctx, in, opts...)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("awskms", flag.ContinueOnError)
	fs.SetOutput(stderr)
	key := fs.String("key", "", "KMS `key`: key ARN, alias/NAME, alias ARN or key ID (required)")
	region := fs.String("region", "", "AWS `region` (default: the SDK's configuration, else the key ARN's region)")
	endpoint := fs.String("endpoint", "", "KMS endpoint `URL`, e.g. http://127.0.0.1:4599 for an emulator (default: AWS)")
	storePath := fs.String("store", "keyward-keys.json", "keyring store `file`")
	name := fs.String("keyring", "aws-example", "keyring `name`")
	timeout := fs.Duration("timeout", 30*time.Second, "bound on the whole run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *key == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("-key is required and there are no arguments")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	// The SDK's own warnings (such as its IMDS fallback) would garble the
	// output; what went wrong is in the error.
	opts := []func(*config.LoadOptions) error{config.WithLogger(logging.Nop{})}
	if *region != "" {
		opts = append(opts, config.WithRegion(*region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return fmt.Errorf("configuration error: %w", err)
	}
	if p := strings.Split(*key, ":"); cfg.Region == "" && len(p) > 3 && p[0] == "arn" {
		cfg.Region = p[3]
	}
	// A missing region or missing credentials is the configuration's
	// problem: say so before any KMS call.
	if cfg.Region == "" {
		return errors.New("configuration error: no AWS region: give -region, set AWS_REGION, or name the key by its ARN")
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return fmt.Errorf("configuration error: no AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or an IAM role): %w", err)
	}
	client := &counting{API: kms.NewFromConfig(cfg, func(o *kms.Options) {
		if *endpoint != "" {
			o.BaseEndpoint = aws.String(*endpoint)
		}
	})}
	src, err := awskms.New(ctx, client, *key)
	if err != nil {
		return err
	}
	return demo(ctx, stdout, src, *storePath, *name, "KMS", func() (int64, int64) {
		return client.encrypts.Load(), client.decrypts.Load()
	})
}
