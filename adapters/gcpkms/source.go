package gcpkms

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"regexp"
	"strings"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/keyward/keyward/keyring"
)

// API is the part of *kms.KeyManagementClient (cloud.google.com/go/kms/apiv1)
// a Source calls.
type API interface {
	Encrypt(ctx context.Context, req *kmspb.EncryptRequest, opts ...gax.CallOption) (*kmspb.EncryptResponse, error)
	Decrypt(ctx context.Context, req *kmspb.DecryptRequest, opts ...gax.CallOption) (*kmspb.DecryptResponse, error)
}

// Source is a keyring.KeySource whose key-encryption key is a Cloud KMS
// symmetric CryptoKey. It wraps data keys with Encrypt (under the key's
// primary version) and unwraps them with Decrypt, sending the associated
// data as AdditionalAuthenticatedData, and checks every request and answer
// with CRC32C as Cloud KMS documents it.
type Source struct {
	client    API
	name      string
	id        string
	integrity int // tries when a checksum does not match
	callOpts  []gax.CallOption
}

var _ keyring.KeySource = (*Source)(nil)

var cryptoKeyName = regexp.MustCompile(`^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$`)

// New returns a Source over the CryptoKey name
// ("projects/P/locations/L/keyRings/R/cryptoKeys/K"). client is usually
// the caller's *kms.KeyManagementClient; it keeps its own credentials and
// endpoint. New makes no call.
func New(client API, name string, opts ...Option) (*Source, error) {
	if client == nil {
		return nil, errors.New("gcpkms: nil client")
	}
	if !cryptoKeyName.MatchString(name) {
		return nil, fmt.Errorf("gcpkms: %q is not a CryptoKey name (projects/P/locations/L/keyRings/R/cryptoKeys/K)", name)
	}
	c := defaults()
	for _, o := range opts {
		if err := o.apply(&c); err != nil {
			return nil, err
		}
	}
	callOpts := append([]gax.CallOption{gax.WithRetry(c.retryer)}, c.callOpts...)
	return &Source{client: client, name: name, id: "gcpkms:" + name, integrity: c.integrity, callOpts: callOpts}, nil
}

// ID returns "gcpkms:" and the CryptoKey name.
func (s *Source) ID() string { return s.id }

// Name returns the CryptoKey name.
func (s *Source) Name() string { return s.name }

// String describes the source; it holds no secrets.
func (s *Source) String() string { return s.id }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func checksum(b []byte) *wrapperspb.Int64Value {
	return wrapperspb.Int64(int64(crc32.Checksum(b, castagnoli)))
}

func matches(b []byte, sum *wrapperspb.Int64Value) bool {
	return sum != nil && sum.GetValue() == int64(crc32.Checksum(b, castagnoli))
}

// Limits of Cloud KMS Encrypt and Decrypt for SOFTWARE keys.
const (
	maxPlaintext = 64 << 10
	maxAAD       = 64 << 10
)

// Wrap implements keyring.KeySource with Cloud KMS Encrypt.
func (s *Source) Wrap(ctx context.Context, dek, aad []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(dek) == 0 || len(dek) > maxPlaintext {
		return nil, fmt.Errorf("gcpkms: wrap: data key of %d bytes, want 1 to %d", len(dek), maxPlaintext)
	}
	if len(aad) > maxAAD {
		return nil, fmt.Errorf("gcpkms: wrap: associated data of %d bytes, want at most %d", len(aad), maxAAD)
	}
	req := &kmspb.EncryptRequest{
		Name:                              s.name,
		Plaintext:                         dek,
		PlaintextCrc32C:                   checksum(dek),
		AdditionalAuthenticatedData:       aad,
		AdditionalAuthenticatedDataCrc32C: checksum(aad),
	}
	var last error
	for range s.integrity {
		resp, err := s.client.Encrypt(ctx, req, s.callOpts...)
		if err != nil {
			return nil, classify(ctx, "wrap", err)
		}
		switch {
		case !resp.GetVerifiedPlaintextCrc32C():
			last = errors.New("KMS did not verify the plaintext checksum")
		case !resp.GetVerifiedAdditionalAuthenticatedDataCrc32C():
			last = errors.New("KMS did not verify the associated data checksum")
		case !matches(resp.GetCiphertext(), resp.GetCiphertextCrc32C()):
			last = errors.New("the ciphertext does not match its checksum")
		case !strings.HasPrefix(resp.GetName(), s.name+"/cryptoKeyVersions/"):
			return nil, fmt.Errorf("gcpkms: wrap: KMS answered with key version %q, not a version of %s", resp.GetName(), s.name)
		case len(resp.GetCiphertext()) == 0:
			return nil, errors.New("gcpkms: wrap: KMS answered with an empty ciphertext")
		default:
			return resp.GetCiphertext(), nil
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("gcpkms: wrap: %w", err)
		}
	}
	return nil, fmt.Errorf("gcpkms: wrap: %w: %w: %w", keyring.ErrKEKUnavailable, ErrIntegrity, last)
}

// Unwrap implements keyring.KeySource with Cloud KMS Decrypt.
func (s *Source) Unwrap(ctx context.Context, wrapped, aad []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(wrapped) == 0 {
		return nil, fmt.Errorf("gcpkms: unwrap: %w: empty wrapped key", keyring.ErrUnwrap)
	}
	if len(aad) > maxAAD {
		return nil, fmt.Errorf("gcpkms: unwrap: %w: associated data of %d bytes, want at most %d", keyring.ErrUnwrap, len(aad), maxAAD)
	}
	req := &kmspb.DecryptRequest{
		Name:                              s.name,
		Ciphertext:                        wrapped,
		CiphertextCrc32C:                  checksum(wrapped),
		AdditionalAuthenticatedData:       aad,
		AdditionalAuthenticatedDataCrc32C: checksum(aad),
	}
	for range s.integrity {
		resp, err := s.client.Decrypt(ctx, req, s.callOpts...)
		if err != nil {
			return nil, classify(ctx, "unwrap", err)
		}
		pt := resp.GetPlaintext()
		if matches(pt, resp.GetPlaintextCrc32C()) {
			if len(pt) == 0 {
				return nil, fmt.Errorf("gcpkms: unwrap: %w: KMS answered with an empty plaintext", keyring.ErrUnwrap)
			}
			return pt, nil
		}
		clear(pt)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("gcpkms: unwrap: %w", err)
		}
	}
	return nil, fmt.Errorf("gcpkms: unwrap: %w: %w: the plaintext does not match its checksum", keyring.ErrKEKUnavailable, ErrIntegrity)
}
