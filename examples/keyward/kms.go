package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	gcpkmsapi "cloud.google.com/go/kms/apiv1"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	awskmsapi "github.com/aws/aws-sdk-go-v2/service/kms"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/keyward/keyward/adapters/awskms"
	"github.com/keyward/keyward/adapters/gcpkms"
	"github.com/keyward/keyward/cipher"
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

// check reports contradictory or incomplete flags as usage errors.
func (k kmsFlags) check(kf keyFlags) error {
	switch {
	case *kf.keyPath != "":
		return usagef("give -k or a KMS key (--aws-kms, --gcp-kms), not both")
	case *kf.store == "":
		return usagef("--aws-kms and --gcp-kms need --store PATH: the keyring store holds the data keys the KMS key wraps")
	}
	return k.checkAlone()
}

// remote is a key source other than a key file: a cloud KMS key
// (kmsFlags) or the key service (keyServiceFlags).
type remote interface {
	// check reports contradictory or incomplete flags as usage errors.
	check(kf keyFlags) error
	// source returns the key source and a function that releases it.
	source(ctx context.Context) (keyring.KeySource, func(), error)
}

// pickRemote returns the remote key source the flags give, or nil for
// none.
func pickRemote(km kmsFlags, ks keyServiceFlags) (remote, error) {
	switch {
	case km.set() && ks.set():
		return nil, usagef("give a KMS key (--aws-kms, --gcp-kms) or --key-service, not both")
	case km.set():
		return km, nil
	case ks.set():
		return ks, nil
	}
	return nil, nil
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
			return nil, nil, err
		}
		src, err := gcpkms.New(client, *k.gcp)
		if err != nil {
			_ = client.Close()
			return nil, nil, err
		}
		return src, func() { _ = client.Close() }, nil
	}
	var opts []func(*config.LoadOptions) error
	if *k.region != "" {
		opts = append(opts, config.WithRegion(*k.region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, nil, err
	}
	if p := strings.Split(*k.aws, ":"); cfg.Region == "" && len(p) > 3 && p[0] == "arn" {
		cfg.Region = p[3]
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

// withRemoteKeyring opens the keyring of the flags (--store, --keyring)
// over the remote key source and calls use with it.
func withRemoteKeyring(kf keyFlags, k remote, use func(context.Context, *keyring.Keyring) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), kmsTimeout)
	defer cancel()
	src, release, err := k.source(ctx)
	if err != nil {
		return err
	}
	defer release()
	store, err := keyring.NewFileStore(*kf.store)
	if err != nil {
		return err
	}
	kr, err := keyring.New(ctx, *kf.keyringName, src, store)
	if err != nil {
		return err
	}
	defer kr.Close()
	return use(ctx, kr)
}

// encryptKMS is encrypt with --aws-kms, --gcp-kms or --key-service.
func encryptKMS(e *env, fs *flag.FlagSet, kf keyFlags, k remote) error {
	if err := k.check(kf); err != nil {
		return err
	}
	pt, err := input(e, fs, "plaintext")
	if err != nil {
		return err
	}
	defer clear(pt)
	var tok string
	err = withRemoteKeyring(kf, k, func(ctx context.Context, kr *keyring.Keyring) (err error) {
		tok, err = kr.EncryptText(ctx, string(pt), []byte(*kf.aad))
		return err
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(e.stdout, tok)
	return err
}

// decryptKMS is decrypt with --aws-kms, --gcp-kms or --key-service.
func decryptKMS(e *env, fs *flag.FlagSet, kf keyFlags, k remote) error {
	if err := k.check(kf); err != nil {
		return err
	}
	in, err := input(e, fs, "token")
	if err != nil {
		return err
	}
	tok := strings.TrimSpace(string(in))
	h, err := cipher.ParseHeader(tok)
	if err != nil {
		return err
	}
	if h.KeyID == 0 {
		return fmt.Errorf("the token was made with a raw key (key ID 0), not a keyring; decrypt it with -k PATH")
	}
	var pt string
	err = withRemoteKeyring(kf, k, func(ctx context.Context, kr *keyring.Keyring) (err error) {
		pt, err = kr.DecryptText(ctx, tok, []byte(*kf.aad))
		return err
	})
	if err != nil {
		return err
	}
	_, err = e.stdout.Write([]byte(pt))
	return err
}

// kmsUsage is the cloud key-source part of the usage of encrypt and decrypt.
const kmsUsage = "(--aws-kms KEY [--aws-region R] | --gcp-kms NAME) [--kms-endpoint E [--kms-plaintext]]"
