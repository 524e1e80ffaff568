package awskms_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/keyward/keyward/adapters/awskms"
	"github.com/keyward/keyward/internal/awskmstest"
	"github.com/keyward/keyward/keyring"
)

var aad = []byte("keyring default, key 1")

func testDEK() []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

func TestNew(t *testing.T) {
	srv := awskmstest.New(t)
	arn := srv.CreateKey(t)
	srv.CreateAlias(t, "alias/keyward-test", arn)
	keyID := arn[strings.LastIndex(arn, "/")+1:]
	aliasARN := arn[:strings.LastIndex(arn, ":")+1] + "alias/keyward-test"

	for _, tc := range []struct {
		name, keyID string
		describes   int64
	}{
		{"KeyARN", arn, 0},
		{"Alias", "alias/keyward-test", 1},
		{"AliasARN", aliasARN, 1},
		{"KeyID", keyID, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := srv.Calls("DescribeKey")
			s, err := awskms.New(ctx, srv.Client(), tc.keyID)
			if err != nil {
				t.Fatalf("New(%q): %v", tc.keyID, err)
			}
			if got, want := s.ID(), "awskms:"+arn; got != want {
				t.Errorf("ID() = %q, want %q", got, want)
			}
			if s.KeyARN() != arn || s.String() != s.ID() {
				t.Errorf("KeyARN() = %q, String() = %q", s.KeyARN(), s.String())
			}
			if got := srv.Calls("DescribeKey") - before; got != tc.describes {
				t.Errorf("New made %d DescribeKey calls, want %d", got, tc.describes)
			}
		})
	}

	t.Run("Invalid", func(t *testing.T) {
		if _, err := awskms.New(ctx, nil, arn); err == nil {
			t.Error("New(nil client) succeeded")
		}
		if _, err := awskms.New(ctx, srv.Client(), ""); err == nil {
			t.Error("New(empty key) succeeded")
		}
		_, err := awskms.New(ctx, srv.Client(), "alias/missing")
		var nf *types.NotFoundException
		if !errors.Is(err, keyring.ErrKEKNotFound) || !errors.As(err, &nf) {
			t.Errorf("New(missing alias) = %v, want ErrKEKNotFound and *types.NotFoundException", err)
		}
	})

	t.Run("NotSymmetric", func(t *testing.T) {
		out, err := srv.Client().CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeEncryptDecrypt})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := awskms.New(ctx, srv.Client(), aws.ToString(out.KeyMetadata.KeyId)); err == nil || !strings.Contains(err.Error(), "SYMMETRIC_DEFAULT") {
			t.Errorf("New(RSA key) = %v, want a refusal", err)
		}
	})
}

func TestServerRotation(t *testing.T) {
	srv := awskmstest.New(t)
	s := newSource(t, srv)
	dek := testDEK()
	before, err := s.Wrap(ctx, dek, aad)
	if err != nil {
		t.Fatal(err)
	}
	// A keyring made before the rotation.
	store := keyring.NewMemoryStore()
	kr, err := keyring.New(ctx, "rotating", s, store)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := kr.EncryptString(ctx, "made before the KMS rotated")
	if err != nil {
		t.Fatal(err)
	}
	kr.Close()

	srv.Rotate(t, s.KeyARN())
	if v := srv.Versions(t, s.KeyARN()); v != 2 {
		t.Fatalf("key has %d backing keys after rotation, want 2", v)
	}
	after, err := s.Wrap(ctx, dek, aad)
	if err != nil {
		t.Fatal(err)
	}
	vb, _ := awskmstest.BlobVersion(before)
	va, _ := awskmstest.BlobVersion(after)
	if vb != 0 || va != 1 {
		t.Fatalf("blob versions before/after rotation = %d/%d, want 0/1", vb, va)
	}
	for _, w := range [][]byte{before, after} {
		if got, err := s.Unwrap(ctx, w, aad); err != nil || !bytes.Equal(got, dek) {
			t.Fatalf("Unwrap after rotation = %x, %v", got, err)
		}
	}
	kr, err = keyring.New(ctx, "rotating", s, store)
	if err != nil {
		t.Fatalf("keyring.New after the KMS rotated: %v", err)
	}
	defer kr.Close()
	if got, err := kr.DecryptString(ctx, tok); err != nil || got != "made before the KMS rotated" {
		t.Fatalf("DecryptString after the KMS rotated = %q, %v", got, err)
	}
}

// recorder is an awskms.API that records the inputs a Source sends and can
// alter the KMS's answers.
type recorder struct {
	awskms.API
	mu       sync.Mutex
	encrypts []*kms.EncryptInput
	decrypts []*kms.DecryptInput
	answerAs string // if set, the KeyId of every answer
}

func (r *recorder) Encrypt(ctx context.Context, in *kms.EncryptInput, opts ...func(*kms.Options)) (*kms.EncryptOutput, error) {
	r.mu.Lock()
	r.encrypts = append(r.encrypts, in)
	r.mu.Unlock()
	out, err := r.API.Encrypt(ctx, in, opts...)
	if err == nil && r.answerAs != "" {
		out.KeyId = aws.String(r.answerAs)
	}
	return out, err
}

func (r *recorder) Decrypt(ctx context.Context, in *kms.DecryptInput, opts ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	r.mu.Lock()
	r.decrypts = append(r.decrypts, in)
	r.mu.Unlock()
	out, err := r.API.Decrypt(ctx, in, opts...)
	if err == nil && r.answerAs != "" {
		out.KeyId = aws.String(r.answerAs)
	}
	return out, err
}

func TestEncryptionContextSent(t *testing.T) {
	srv := awskmstest.New(t)
	rec := &recorder{API: srv.Client()}
	s, err := awskms.New(ctx, rec, srv.CreateKey(t))
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.New(ctx, "pii", s, keyring.NewMemoryStore())
	if err != nil {
		t.Fatal(err)
	}
	defer kr.Close()
	if len(rec.encrypts) != 1 {
		t.Fatalf("creating a keyring made %d Encrypt calls, want 1", len(rec.encrypts))
	}
	in := rec.encrypts[0]
	if aws.ToString(in.KeyId) != s.KeyARN() || in.EncryptionAlgorithm != types.EncryptionAlgorithmSpecSymmetricDefault {
		t.Errorf("Encrypt KeyId = %q, algorithm %q", aws.ToString(in.KeyId), in.EncryptionAlgorithm)
	}
	ec := in.EncryptionContext
	want := map[string]string{
		awskms.ContextPurpose:    awskms.PurposeDEK,
		awskms.ContextKeyring:    "pii",
		awskms.ContextKeyID:      strconv.FormatUint(uint64(kr.Primary()), 10),
		awskms.ContextKeyPurpose: "data",
		awskms.ContextAlgorithm:  kr.Keys()[0].Algorithm.String(),
	}
	for k, v := range want {
		if ec[k] != v {
			t.Errorf("EncryptionContext[%q] = %q, want %q", k, ec[k], v)
		}
	}
	if _, err := base64.RawURLEncoding.DecodeString(ec[awskms.ContextAAD]); err != nil || ec[awskms.ContextAAD] == "" {
		t.Errorf("EncryptionContext[%q] = %q: %v", awskms.ContextAAD, ec[awskms.ContextAAD], err)
	}
	if len(ec) != 6 {
		t.Errorf("EncryptionContext has %d keys, want 6: %v", len(ec), ec)
	}

	// The documented context decrypts with the plain SDK, as an operator
	// would with the AWS CLI; without it, KMS refuses.
	dek := testDEK()
	w, err := s.Wrap(ctx, dek, aad)
	if err != nil {
		t.Fatal(err)
	}
	out, err := srv.Client().Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: w, EncryptionContext: awskms.EncryptionContext(aad)})
	if err != nil || !bytes.Equal(out.Plaintext, dek) {
		t.Fatalf("Decrypt with EncryptionContext(aad) = %v", err)
	}
	var ic *types.InvalidCiphertextException
	if _, err := srv.Client().Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: w}); !errors.As(err, &ic) {
		t.Errorf("Decrypt without the context = %v, want InvalidCiphertextException", err)
	}
	if d := rec.decrypts; len(d) > 0 {
		t.Errorf("the keyring made %d Decrypt calls for a key it made", len(d))
	}
}

func TestEncryptionContext(t *testing.T) {
	if got := awskms.EncryptionContext(nil); len(got) != 1 || got[awskms.ContextPurpose] != awskms.PurposeDEK {
		t.Errorf("EncryptionContext(nil) = %v, want only the purpose", got)
	}
	got := awskms.EncryptionContext([]byte("free-form associated data"))
	if len(got) != 2 || got[awskms.ContextAAD] != base64.RawURLEncoding.EncodeToString([]byte("free-form associated data")) {
		t.Errorf("EncryptionContext(free form) = %v, want the purpose and the AAD", got)
	}
}

func TestAnsweredKeyChecked(t *testing.T) {
	srv := awskmstest.New(t)
	other := srv.CreateKey(t)
	rec := &recorder{API: srv.Client()}
	s, err := awskms.New(ctx, rec, srv.CreateKey(t))
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.Wrap(ctx, testDEK(), aad)
	if err != nil {
		t.Fatal(err)
	}
	rec.answerAs = other
	if got, err := s.Unwrap(ctx, w, aad); !errors.Is(err, keyring.ErrUnwrap) || got != nil {
		t.Errorf("Unwrap answered for another key = %x, %v, want ErrUnwrap", got, err)
	}
	if got, err := s.Wrap(ctx, testDEK(), aad); err == nil || got != nil {
		t.Errorf("Wrap answered for another key = %x, %v, want an error", got, err)
	}
	if aws.ToString(rec.decrypts[0].KeyId) != s.KeyARN() {
		t.Errorf("Decrypt sent KeyId %q, want %q", aws.ToString(rec.decrypts[0].KeyId), s.KeyARN())
	}
}

func TestKeyStates(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, srv *awskmstest.Server, arn string)
		want   error
		vendor func(error) bool
	}{
		{
			"Disabled",
			func(t *testing.T, srv *awskmstest.Server, arn string) {
				if _, err := srv.Client().DisableKey(ctx, &kms.DisableKeyInput{KeyId: &arn}); err != nil {
					t.Fatal(err)
				}
			},
			keyring.ErrKEKDisabled,
			func(err error) bool { var e *types.DisabledException; return errors.As(err, &e) },
		},
		{
			"PendingDeletion",
			func(t *testing.T, srv *awskmstest.Server, arn string) {
				if _, err := srv.Client().ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: &arn, PendingWindowInDays: aws.Int32(7)}); err != nil {
					t.Fatal(err)
				}
			},
			keyring.ErrKEKDisabled,
			func(err error) bool { var e *types.KMSInvalidStateException; return errors.As(err, &e) },
		},
		{
			"Deleted",
			func(t *testing.T, srv *awskmstest.Server, arn string) { srv.Delete(t, arn) },
			keyring.ErrKEKNotFound,
			func(err error) bool { var e *types.NotFoundException; return errors.As(err, &e) },
		},
		{
			"AccessDenied",
			func(t *testing.T, srv *awskmstest.Server, arn string) {
				srv.Inject(awskmstest.Fault{Code: "AccessDeniedException", Times: awskmstest.Forever})
			},
			keyring.ErrKEKAccessDenied,
			func(err error) bool {
				var e smithy.APIError
				return errors.As(err, &e) && e.ErrorCode() == "AccessDeniedException"
			},
		},
		{
			"Throttled",
			func(t *testing.T, srv *awskmstest.Server, arn string) {
				srv.Inject(awskmstest.Fault{Code: "ThrottlingException", Times: awskmstest.Forever})
			},
			keyring.ErrKEKUnavailable,
			func(err error) bool {
				var e smithy.APIError
				return errors.As(err, &e) && e.ErrorCode() == "ThrottlingException"
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := awskmstest.New(t)
			s := newSource(t, srv)
			store := keyring.NewMemoryStore()
			kr, err := keyring.New(ctx, "states", s, store)
			if err != nil {
				t.Fatal(err)
			}
			kr.Close()
			w, err := s.Wrap(ctx, testDEK(), aad)
			if err != nil {
				t.Fatal(err)
			}
			tc.change(t, srv, s.KeyARN())
			if _, err := s.Wrap(ctx, testDEK(), aad); !errors.Is(err, tc.want) || !tc.vendor(err) {
				t.Errorf("Wrap = %v, want %v and the vendor error", err, tc.want)
			}
			if got, err := s.Unwrap(ctx, w, aad); !errors.Is(err, tc.want) || !tc.vendor(err) || got != nil {
				t.Errorf("Unwrap = %x, %v, want %v and the vendor error", got, err, tc.want)
			}
			if kr, err := keyring.New(ctx, "states", s, store); !errors.Is(err, tc.want) {
				if err == nil {
					kr.Close()
				}
				t.Errorf("keyring.New = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestThrottlingRetried(t *testing.T) {
	srv := awskmstest.New(t)
	s := newSource(t, srv)
	srv.Inject(awskmstest.Fault{Op: "Encrypt", Code: "ThrottlingException", Times: 2})
	w, err := s.Wrap(ctx, testDEK(), aad)
	if err != nil {
		t.Fatalf("Wrap throttled twice: %v", err)
	}
	if got := srv.Calls("Encrypt"); got != 3 {
		t.Errorf("Encrypt requests = %d, want 3 (the SDK's standard retryer)", got)
	}
	srv.Inject(awskmstest.Fault{Op: "Decrypt", Code: "ThrottlingException", Times: 1})
	if _, err := s.Unwrap(ctx, w, aad); err != nil {
		t.Fatalf("Unwrap throttled once: %v", err)
	}
	if got := srv.Calls("Decrypt"); got != 2 {
		t.Errorf("Decrypt requests = %d, want 2", got)
	}
	srv.Inject(awskmstest.Fault{Code: "ThrottlingException", Times: awskmstest.Forever})
	if _, err := s.Unwrap(ctx, w, aad); !errors.Is(err, keyring.ErrKEKUnavailable) {
		t.Errorf("Unwrap always throttled = %v, want ErrKEKUnavailable", err)
	}
	if got := srv.Calls("Decrypt"); got != 5 {
		t.Errorf("Decrypt requests = %d, want 5 (3 attempts for the last call)", got)
	}
}
