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

	"github.com/keyward/keyward/adapters/awskms"
	"github.com/keyward/keyward/keyring"
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

	var opts []func(*config.LoadOptions) error
	if *region != "" {
		opts = append(opts, config.WithRegion(*region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return err
	}
	if p := strings.Split(*key, ":"); cfg.Region == "" && len(p) > 3 && p[0] == "arn" {
		cfg.Region = p[3]
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
	store, err := keyring.NewFileStore(*storePath)
	if err != nil {
		return err
	}
	kr, err := keyring.New(ctx, *name, src, store)
	if err != nil {
		return err
	}
	defer kr.Close()
	fmt.Fprintf(stdout, "keyring %q in %s, primary key ID %d, KEK %s\n", kr.Name(), *storePath, kr.Primary(), src.ID())
	fmt.Fprintf(stdout, "opening it cost %d Encrypt and %d Decrypt calls\n\n", client.encrypts.Load(), client.decrypts.Load())

	for i, v := range []string{"123-45-6789", "4111 1111 1111 1111"} {
		aad := fmt.Appendf(nil, "customers/%d", i+1)
		tok, err := kr.EncryptText(ctx, v, aad)
		if err != nil {
			return err
		}
		back, err := kr.DecryptText(ctx, tok, aad)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n  token %s\n  read back %q\n", aad, tok, back)
	}

	e0, d0 := client.encrypts.Load(), client.decrypts.Load()
	for i := range 1000 {
		aad := fmt.Appendf(nil, "orders/%d", i)
		tok, err := kr.Encrypt(ctx, []byte("sensitive value"), aad)
		if err != nil {
			return err
		}
		if _, err := kr.Decrypt(ctx, tok, aad); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "\n1000 more values encrypted and decrypted: %d Encrypt and %d Decrypt calls to KMS\n",
		client.encrypts.Load()-e0, client.decrypts.Load()-d0)
	return nil
}
