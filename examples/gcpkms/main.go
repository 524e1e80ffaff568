package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	kms "cloud.google.com/go/kms/apiv1"
	"cloud.google.com/go/kms/apiv1/kmspb"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/keyward/keyward/adapters/gcpkms"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gcpkms:", err)
		os.Exit(1)
	}
}

// counting counts the Cloud KMS calls a Source makes.
type counting struct {
	gcpkms.API
	encrypts, decrypts atomic.Int64
}

func (c *counting) Encrypt(ctx context.Context, req *kmspb.EncryptRequest, opts ...gax.CallOption) (*kmspb.EncryptResponse, error) {
	c.encrypts.Add(1)
	return c.API.Encrypt(ctx, req, opts...)
}

func (c *counting) Decrypt(ctx context.Context, req *kmspb.DecryptRequest, opts ...gax.CallOption) (*kmspb.DecryptResponse, error) {
	c.decrypts.Add(1)
	return c.API.Decrypt(ctx, req, opts...)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gcpkms", flag.ContinueOnError)
	fs.SetOutput(stderr)
	key := fs.String("key", "", "CryptoKey `name`: projects/P/locations/L/keyRings/R/cryptoKeys/K (required)")
	endpoint := fs.String("endpoint", "", "Cloud KMS `host:port` (default: Google's)")
	plaintext := fs.Bool("plaintext", false, "talk plaintext gRPC to -endpoint without credentials (emulators only)")
	storePath := fs.String("store", "keyward-keys.json", "keyring store `file`")
	name := fs.String("keyring", "gcp-example", "keyring `name`")
	timeout := fs.Duration("timeout", 30*time.Second, "bound on the whole run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *key == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("-key is required and there are no arguments")
	}
	if *plaintext && *endpoint == "" {
		return errors.New("-plaintext needs -endpoint")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	var opts []option.ClientOption
	if *endpoint != "" {
		opts = append(opts, option.WithEndpoint(*endpoint))
	}
	if *plaintext {
		opts = append(opts, option.WithoutAuthentication(), option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	}
	kc, err := kms.NewKeyManagementClient(ctx, opts...)
	if err != nil {
		return err
	}
	defer kc.Close()
	client := &counting{API: kc}
	src, err := gcpkms.New(client, *key)
	if err != nil {
		return err
	}
	return demo(ctx, stdout, src, *storePath, *name, "Cloud KMS", func() (int64, int64) {
		return client.encrypts.Load(), client.decrypts.Load()
	})
}
