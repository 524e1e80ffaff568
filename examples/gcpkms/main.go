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
	"github.com/keyward/keyward/keyring"
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
	fmt.Fprintf(stdout, "\n1000 more values encrypted and decrypted: %d Encrypt and %d Decrypt calls to Cloud KMS\n",
		client.encrypts.Load()-e0, client.decrypts.Load()-d0)
	return nil
}
