package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyward/keyward/internal/awskmstest"
	"github.com/keyward/keyward/internal/gcpkmstest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kmsemulator:", err)
		os.Exit(1)
	}
}

// Names of the keys the emulators start with.
const (
	awsAlias = "alias/keyward"
	gcpRing  = "projects/local/locations/global/keyRings/keyward"
	gcpKey   = "keyward"
)

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("kmsemulator", flag.ContinueOnError)
	awsAddr := fs.String("aws", "127.0.0.1:4599", "loopback `host:port` of the AWS KMS emulator (local-kms)")
	gcpAddr := fs.String("gcp", "127.0.0.1:4600", "loopback `host:port` of the Cloud KMS emulator")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, a := range []string{*awsAddr, *gcpAddr} {
		if err := loopback(a); err != nil {
			return err
		}
	}

	a, err := awskmstest.Start(*awsAddr, "")
	if err != nil {
		return err
	}
	defer a.Close()
	client := a.Client()
	key, err := client.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("keyward emulator key")})
	if err != nil {
		return err
	}
	if _, err := client.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(awsAlias), TargetKeyId: key.KeyMetadata.KeyId}); err != nil {
		return err
	}

	g, err := gcpkmstest.Start(*gcpAddr)
	if err != nil {
		return err
	}
	defer g.Close()
	name, err := g.StartKey(gcpRing, gcpKey)
	if err != nil {
		return err
	}

	fmt.Fprintf(out, "AWS KMS (local-kms)\n  endpoint  %s\n  region    %s\n  key       %s\n  alias     %s\n", a.URL, awskmstest.Region, aws.ToString(key.KeyMetadata.Arn), awsAlias)
	fmt.Fprintf(out, "  any credentials do, e.g. AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local\n")
	fmt.Fprintf(out, "Cloud KMS\n  endpoint  %s (plaintext gRPC, no credentials)\n  key       %s\n", g.Addr, name)
	fmt.Fprintf(out, "serving until interrupted\n")
	<-ctx.Done()
	return nil
}

// loopback refuses addresses other than loopback ones: the emulators'
// keys are not protected.
func loopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%s is not a loopback address; the emulators serve loopback only", addr)
	}
	return nil
}
