package awskms

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyward/keyward/keyring"
)

// API is the part of the AWS SDK's *kms.Client a Source calls. DescribeKey
// is called only by New, and only for a key given by alias or bare key ID.
type API interface {
	Encrypt(ctx context.Context, in *kms.EncryptInput, optFns ...func(*kms.Options)) (*kms.EncryptOutput, error)
	Decrypt(ctx context.Context, in *kms.DecryptInput, optFns ...func(*kms.Options)) (*kms.DecryptOutput, error)
	DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, optFns ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
}

var _ API = (*kms.Client)(nil)

// Limits of AWS KMS Encrypt and Decrypt.
const (
	maxPlaintext  = 4096
	maxCiphertext = 6144
)

// Source is a keyring.KeySource whose key-encryption key is an AWS KMS
// symmetric encryption key. It wraps data keys with KMS Encrypt and unwraps
// them with KMS Decrypt, always naming the key and checking that KMS
// answered for it. The associated data goes to KMS as the EncryptionContext
// (see EncryptionContext).
type Source struct {
	client API
	arn    string
	id     string
}

var _ keyring.KeySource = (*Source)(nil)

// New returns a Source over the KMS key keyID: a key ARN, or an alias
// ("alias/name" or alias ARN) or bare key ID, which New resolves once to the
// key's ARN with DescribeKey. The Source stays on that key: if the alias is
// later pointed at another key, this Source keeps using the first one, and
// a Source made afterwards has another ID, so a keyring reports its data
// keys as wrapped by another KEK (keyring.ErrWrongKEK) until it is given
// the old key with keyring.WithPreviousKeySources and rewrapped.
//
// client is usually the caller's *kms.Client, which keeps its own
// credentials, region, endpoint and retryer.
func New(ctx context.Context, client API, keyID string) (*Source, error) {
	if client == nil {
		return nil, errors.New("awskms: nil client")
	}
	if keyID == "" {
		return nil, errors.New("awskms: empty key ID")
	}
	arn := keyID
	if !isKeyARN(keyID) {
		out, err := client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyID)})
		if err != nil {
			return nil, classify(ctx, "describe key "+keyID, err)
		}
		md := out.KeyMetadata
		if md == nil || !isKeyARN(aws.ToString(md.Arn)) {
			return nil, fmt.Errorf("awskms: describe key %s: KMS answered without a key ARN", keyID)
		}
		if md.KeyUsage != types.KeyUsageTypeEncryptDecrypt || md.KeySpec != types.KeySpecSymmetricDefault {
			return nil, fmt.Errorf("awskms: key %s is %s %s, want a SYMMETRIC_DEFAULT ENCRYPT_DECRYPT key", *md.Arn, md.KeySpec, md.KeyUsage)
		}
		arn = *md.Arn
	}
	return &Source{client: client, arn: arn, id: "awskms:" + arn}, nil
}

// NewFromConfig returns a Source over a new *kms.Client made from cfg (for
// example config.LoadDefaultConfig's) and optFns; see New.
func NewFromConfig(ctx context.Context, cfg aws.Config, keyID string, optFns ...func(*kms.Options)) (*Source, error) {
	return New(ctx, kms.NewFromConfig(cfg, optFns...), keyID)
}

// isKeyARN reports whether s is the ARN of a KMS key (not of an alias).
func isKeyARN(s string) bool {
	p := strings.SplitN(s, ":", 6)
	return len(p) == 6 && p[0] == "arn" && p[1] != "" && p[2] == "kms" && p[3] != "" && p[4] != "" &&
		strings.HasPrefix(p[5], "key/") && len(p[5]) > len("key/")
}

// ID returns "awskms:" and the key's ARN.
func (s *Source) ID() string { return s.id }

// KeyARN returns the ARN of the KMS key.
func (s *Source) KeyARN() string { return s.arn }

// String describes the source; it holds no secrets.
func (s *Source) String() string { return s.id }

// Wrap implements keyring.KeySource with KMS Encrypt.
func (s *Source) Wrap(ctx context.Context, dek, aad []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(dek) == 0 || len(dek) > maxPlaintext {
		return nil, fmt.Errorf("awskms: wrap: data key of %d bytes, want 1 to %d", len(dek), maxPlaintext)
	}
	out, err := s.client.Encrypt(ctx, &kms.EncryptInput{
		KeyId:               aws.String(s.arn),
		Plaintext:           dek,
		EncryptionContext:   EncryptionContext(aad),
		EncryptionAlgorithm: types.EncryptionAlgorithmSpecSymmetricDefault,
	})
	if err != nil {
		return nil, classify(ctx, "wrap", err)
	}
	if got := aws.ToString(out.KeyId); got != s.arn {
		return nil, fmt.Errorf("awskms: wrap: KMS answered for key %q, want %q", got, s.arn)
	}
	if len(out.CiphertextBlob) == 0 {
		return nil, errors.New("awskms: wrap: KMS answered with an empty ciphertext")
	}
	return out.CiphertextBlob, nil
}

// Unwrap implements keyring.KeySource with KMS Decrypt. It names the key
// in the request and refuses (keyring.ErrUnwrap) an answer for another key.
func (s *Source) Unwrap(ctx context.Context, wrapped, aad []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(wrapped) == 0 || len(wrapped) > maxCiphertext {
		return nil, fmt.Errorf("awskms: unwrap: %w: wrapped key of %d bytes, want 1 to %d", keyring.ErrUnwrap, len(wrapped), maxCiphertext)
	}
	out, err := s.client.Decrypt(ctx, &kms.DecryptInput{
		KeyId:               aws.String(s.arn),
		CiphertextBlob:      wrapped,
		EncryptionContext:   EncryptionContext(aad),
		EncryptionAlgorithm: types.EncryptionAlgorithmSpecSymmetricDefault,
	})
	if err != nil {
		return nil, classify(ctx, "unwrap", err)
	}
	if got := aws.ToString(out.KeyId); got != s.arn {
		clear(out.Plaintext)
		return nil, fmt.Errorf("awskms: unwrap: %w: KMS answered for key %q, want %q", keyring.ErrUnwrap, got, s.arn)
	}
	if len(out.Plaintext) == 0 {
		return nil, fmt.Errorf("awskms: unwrap: %w: KMS answered with an empty plaintext", keyring.ErrUnwrap)
	}
	return out.Plaintext, nil
}
