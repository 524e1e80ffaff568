package gcpkms_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/keyward/keyward/adapters/gcpkms"
	"github.com/keyward/keyward/internal/gcpkmstest"
	"github.com/keyward/keyward/keyring"
)

var (
	ctx = context.Background()
	aad = []byte("keyring default, key 1")
)

func testDEK() []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

// recorder is a gcpkms.API that records the names the KMS answered with and
// can alter them.
type recorder struct {
	gcpkms.API
	mu       sync.Mutex
	names    []string
	answerAs string
}

func (r *recorder) Encrypt(ctx context.Context, req *kmspb.EncryptRequest, opts ...gax.CallOption) (*kmspb.EncryptResponse, error) {
	resp, err := r.API.Encrypt(ctx, req, opts...)
	if err == nil {
		r.mu.Lock()
		r.names = append(r.names, resp.GetName())
		r.mu.Unlock()
		if r.answerAs != "" {
			resp.Name = r.answerAs
		}
	}
	return resp, err
}

type fixture struct {
	srv    *gcpkmstest.Server
	client interface {
		gcpkms.API
		CreateCryptoKeyVersion(context.Context, *kmspb.CreateCryptoKeyVersionRequest, ...gax.CallOption) (*kmspb.CryptoKeyVersion, error)
		UpdateCryptoKeyPrimaryVersion(context.Context, *kmspb.UpdateCryptoKeyPrimaryVersionRequest, ...gax.CallOption) (*kmspb.CryptoKey, error)
		UpdateCryptoKeyVersion(context.Context, *kmspb.UpdateCryptoKeyVersionRequest, ...gax.CallOption) (*kmspb.CryptoKeyVersion, error)
		DestroyCryptoKeyVersion(context.Context, *kmspb.DestroyCryptoKeyVersionRequest, ...gax.CallOption) (*kmspb.CryptoKeyVersion, error)
	}
	rec  *recorder
	name string
	src  *gcpkms.Source
}

func newFixture(t *testing.T, opts ...gcpkms.Option) *fixture {
	t.Helper()
	srv := gcpkmstest.New(t)
	c := srv.Client(t)
	f := &fixture{srv: srv, client: c, rec: &recorder{API: c}, name: srv.CreateKey(t, keyRing, "k")}
	s, err := gcpkms.New(f.rec, f.name, append([]gcpkms.Option{fastRetry}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	f.src = s
	return f
}

func (f *fixture) setState(t *testing.T, version string, st kmspb.CryptoKeyVersion_CryptoKeyVersionState) {
	t.Helper()
	_, err := f.client.UpdateCryptoKeyVersion(ctx, &kmspb.UpdateCryptoKeyVersionRequest{
		CryptoKeyVersion: &kmspb.CryptoKeyVersion{Name: version, State: st},
		UpdateMask:       &fieldmaskpb.FieldMask{Paths: []string{"state"}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestNew(t *testing.T) {
	srv := gcpkmstest.New(t)
	c := srv.Client(t)
	name := keyRing + "/cryptoKeys/k"
	s, err := gcpkms.New(c, name)
	if err != nil {
		t.Fatal(err)
	}
	if s.ID() != "gcpkms:"+name || s.Name() != name || s.String() != s.ID() {
		t.Errorf("ID() = %q, Name() = %q, String() = %q", s.ID(), s.Name(), s.String())
	}
	bo := gax.Backoff{Initial: time.Millisecond, Max: time.Second, Multiplier: 2}
	for _, tc := range []struct {
		name   string
		client gcpkms.API
		key    string
		opts   []gcpkms.Option
	}{
		{"NilClient", nil, name, nil},
		{"Empty", c, "", nil},
		{"KeyRing", c, keyRing, nil},
		{"Version", c, name + "/cryptoKeyVersions/1", nil},
		{"Relative", c, "keyRings/r/cryptoKeys/k", nil},
		{"RetryTwice", c, name, []gcpkms.Option{gcpkms.WithRetry(2, bo), gcpkms.WithRetry(3, bo)}},
		{"NoAttempts", c, name, []gcpkms.Option{gcpkms.WithRetry(0, bo)}},
		{"BadBackoff", c, name, []gcpkms.Option{gcpkms.WithRetry(2, gax.Backoff{})}},
		{"NoIntegrityAttempts", c, name, []gcpkms.Option{gcpkms.WithIntegrityAttempts(0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s, err := gcpkms.New(tc.client, tc.key, tc.opts...); err == nil {
				t.Errorf("New(%q) = %v, nil, want an error", tc.key, s)
			}
		})
	}
}

func TestServerRotation(t *testing.T) {
	f := newFixture(t)
	dek := testDEK()
	w1, err := f.src.Wrap(ctx, dek, aad)
	if err != nil {
		t.Fatal(err)
	}
	store := keyring.NewMemoryStore()
	kr, err := keyring.New(ctx, "rotating", f.src, store)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := kr.EncryptString(ctx, "made before the KMS rotated")
	if err != nil {
		t.Fatal(err)
	}
	kr.Close()

	v2, err := f.client.CreateCryptoKeyVersion(ctx, &kmspb.CreateCryptoKeyVersionRequest{Parent: f.name})
	if err != nil {
		t.Fatal(err)
	}
	id := v2.Name[strings.LastIndexByte(v2.Name, '/')+1:]
	if _, err := f.client.UpdateCryptoKeyPrimaryVersion(ctx, &kmspb.UpdateCryptoKeyPrimaryVersionRequest{Name: f.name, CryptoKeyVersionId: id}); err != nil {
		t.Fatal(err)
	}
	w2, err := f.src.Wrap(ctx, dek, aad)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.rec.names[len(f.rec.names)-1]; got != v2.Name {
		t.Fatalf("Encrypt after rotation used %s, want %s", got, v2.Name)
	}
	for _, w := range [][]byte{w1, w2} {
		if got, err := f.src.Unwrap(ctx, w, aad); err != nil || !bytes.Equal(got, dek) {
			t.Fatalf("Unwrap after rotation = %x, %v", got, err)
		}
	}
	kr, err = keyring.New(ctx, "rotating", f.src, store)
	if err != nil {
		t.Fatalf("keyring.New after the KMS rotated: %v", err)
	}
	if got, err := kr.DecryptString(ctx, tok); err != nil || got != "made before the KMS rotated" {
		t.Fatalf("DecryptString after the KMS rotated = %q, %v", got, err)
	}
	kr.Close()

	// Disabling version 1 refuses what it wrapped, not what version 2 did.
	v1 := f.name + "/cryptoKeyVersions/1"
	f.setState(t, v1, kmspb.CryptoKeyVersion_DISABLED)
	if _, err := f.src.Unwrap(ctx, w1, aad); !errors.Is(err, keyring.ErrKEKDisabled) || status.Code(err) != codes.FailedPrecondition {
		t.Errorf("Unwrap under a disabled version = %v, want ErrKEKDisabled (FAILED_PRECONDITION)", err)
	}
	if _, err := f.src.Unwrap(ctx, w2, aad); err != nil {
		t.Errorf("Unwrap under the primary version: %v", err)
	}
	if _, err := keyring.New(ctx, "rotating", f.src, store); !errors.Is(err, keyring.ErrKEKDisabled) {
		t.Errorf("keyring.New with its data key under a disabled version = %v, want ErrKEKDisabled", err)
	}
	f.setState(t, v1, kmspb.CryptoKeyVersion_ENABLED)
	if _, err := f.src.Unwrap(ctx, w1, aad); err != nil {
		t.Errorf("Unwrap under a re-enabled version: %v", err)
	}
	if _, err := f.client.DestroyCryptoKeyVersion(ctx, &kmspb.DestroyCryptoKeyVersionRequest{Name: v1}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.src.Unwrap(ctx, w1, aad); !errors.Is(err, keyring.ErrKEKDisabled) {
		t.Errorf("Unwrap under a destroyed version = %v, want ErrKEKDisabled", err)
	}
	// A disabled primary refuses to wrap.
	f.setState(t, v2.Name, kmspb.CryptoKeyVersion_DISABLED)
	if _, err := f.src.Wrap(ctx, dek, aad); !errors.Is(err, keyring.ErrKEKDisabled) {
		t.Errorf("Wrap under a disabled primary = %v, want ErrKEKDisabled", err)
	}
}

func TestErrors(t *testing.T) {
	f := newFixture(t)
	w, err := f.src.Wrap(ctx, testDEK(), aad)
	if err != nil {
		t.Fatal(err)
	}
	missing, err := gcpkms.New(f.rec, keyRing+"/cryptoKeys/missing")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := missing.Wrap(ctx, testDEK(), aad); !errors.Is(err, keyring.ErrKEKNotFound) || status.Code(err) != codes.NotFound {
		t.Errorf("Wrap under a missing key = %v, want ErrKEKNotFound (NOT_FOUND)", err)
	}
	if _, err := missing.Unwrap(ctx, w, aad); !errors.Is(err, keyring.ErrKEKNotFound) {
		t.Errorf("Unwrap under a missing key = %v, want ErrKEKNotFound", err)
	}
	for _, tc := range []struct {
		code codes.Code
		want error
	}{
		{codes.PermissionDenied, keyring.ErrKEKAccessDenied},
		{codes.Unauthenticated, keyring.ErrKEKAccessDenied},
		{codes.Unavailable, keyring.ErrKEKUnavailable},
		{codes.ResourceExhausted, keyring.ErrKEKUnavailable},
		{codes.Internal, keyring.ErrKEKUnavailable},
	} {
		t.Run(tc.code.String(), func(t *testing.T) {
			f.srv.Inject(gcpkmstest.Fault{Code: tc.code, Times: gcpkmstest.Forever})
			defer f.srv.ClearFaults()
			if _, err := f.src.Unwrap(ctx, w, aad); !errors.Is(err, tc.want) || status.Code(err) != tc.code {
				t.Errorf("Unwrap = %v, want %v with code %v", err, tc.want, tc.code)
			}
			if _, err := f.src.Wrap(ctx, testDEK(), aad); !errors.Is(err, tc.want) {
				t.Errorf("Wrap = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestIntegrity(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault gcpkmstest.Fault
		op    string
	}{
		{"CiphertextChecksum", gcpkmstest.Fault{Method: "Encrypt", CorruptChecksum: true}, "Encrypt"},
		{"Unverified", gcpkmstest.Fault{Method: "Encrypt", Unverified: true}, "Encrypt"},
		{"PlaintextChecksum", gcpkmstest.Fault{Method: "Decrypt", CorruptChecksum: true}, "Decrypt"},
	} {
		t.Run(tc.name+"/Once", func(t *testing.T) {
			f := newFixture(t)
			dek := testDEK()
			f.srv.Inject(tc.fault)
			w, err := f.src.Wrap(ctx, dek, aad)
			if err != nil {
				t.Fatalf("Wrap: %v", err)
			}
			got, err := f.src.Unwrap(ctx, w, aad)
			if err != nil || !bytes.Equal(got, dek) {
				t.Fatalf("Unwrap = %x, %v", got, err)
			}
			if n := f.srv.Calls(tc.op); n != 2 {
				t.Errorf("%s calls = %d, want 2 (the corrupted answer discarded, then retried)", tc.op, n)
			}
		})
		t.Run(tc.name+"/Always", func(t *testing.T) {
			f := newFixture(t)
			w, err := f.src.Wrap(ctx, testDEK(), aad)
			if err != nil {
				t.Fatal(err)
			}
			fault := tc.fault
			fault.Times = gcpkmstest.Forever
			f.srv.Inject(fault)
			before := f.srv.Calls(tc.op)
			var got []byte
			if tc.op == "Encrypt" {
				got, err = f.src.Wrap(ctx, testDEK(), aad)
			} else {
				got, err = f.src.Unwrap(ctx, w, aad)
			}
			if !errors.Is(err, gcpkms.ErrIntegrity) || !errors.Is(err, keyring.ErrKEKUnavailable) || got != nil {
				t.Errorf("%s with a corrupted answer every time = %x, %v, want ErrIntegrity", tc.op, got, err)
			}
			if n := f.srv.Calls(tc.op) - before; n != gcpkms.DefaultIntegrityAttempts {
				t.Errorf("%s calls = %d, want %d", tc.op, n, gcpkms.DefaultIntegrityAttempts)
			}
		})
	}

	t.Run("WrongVersionName", func(t *testing.T) {
		f := newFixture(t)
		f.rec.answerAs = keyRing + "/cryptoKeys/other/cryptoKeyVersions/1"
		if got, err := f.src.Wrap(ctx, testDEK(), aad); err == nil || got != nil {
			t.Errorf("Wrap answered by another key's version = %x, %v, want an error", got, err)
		}
	})
}

// TestServerChecksums checks that the emulator verifies request checksums
// as Cloud KMS does, so that the adapter's tests mean something.
func TestServerChecksums(t *testing.T) {
	f := newFixture(t)
	c := f.client
	pt := []byte("plaintext")
	if _, err := c.Encrypt(ctx, &kmspb.EncryptRequest{Name: f.name, Plaintext: pt, PlaintextCrc32C: wrapperspb.Int64(gcpkmstest.Checksum(pt) + 1)}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Encrypt with a wrong plaintext checksum = %v, want INVALID_ARGUMENT", err)
	}
	if _, err := c.Encrypt(ctx, &kmspb.EncryptRequest{Name: f.name, Plaintext: pt, AdditionalAuthenticatedData: aad, AdditionalAuthenticatedDataCrc32C: wrapperspb.Int64(1)}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Encrypt with a wrong AAD checksum = %v, want INVALID_ARGUMENT", err)
	}
	resp, err := c.Encrypt(ctx, &kmspb.EncryptRequest{Name: f.name, Plaintext: pt})
	if err != nil {
		t.Fatal(err)
	}
	if resp.VerifiedPlaintextCrc32C || resp.VerifiedAdditionalAuthenticatedDataCrc32C {
		t.Error("Encrypt without checksums claims it verified them")
	}
	if resp.GetCiphertextCrc32C().GetValue() != gcpkmstest.Checksum(resp.Ciphertext) {
		t.Error("Encrypt answered a wrong ciphertext checksum")
	}
	if _, err := c.Decrypt(ctx, &kmspb.DecryptRequest{Name: f.name, Ciphertext: resp.Ciphertext, CiphertextCrc32C: wrapperspb.Int64(gcpkmstest.Checksum(resp.Ciphertext) ^ 1)}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Decrypt with a wrong ciphertext checksum = %v, want INVALID_ARGUMENT", err)
	}
	d, err := c.Decrypt(ctx, &kmspb.DecryptRequest{Name: f.name, Ciphertext: resp.Ciphertext})
	if err != nil || !bytes.Equal(d.Plaintext, pt) || d.GetPlaintextCrc32C().GetValue() != gcpkmstest.Checksum(pt) {
		t.Errorf("Decrypt = %v, %v", d, err)
	}
}

func TestThrottlingRetried(t *testing.T) {
	// The default retryer, not the tests' fast one.
	srv := gcpkmstest.New(t)
	s, err := gcpkms.New(srv.Client(t), srv.CreateKey(t, keyRing, "k"))
	if err != nil {
		t.Fatal(err)
	}
	srv.Inject(gcpkmstest.Fault{Method: "Encrypt", Code: codes.ResourceExhausted, Times: 2})
	w, err := s.Wrap(ctx, testDEK(), aad)
	if err != nil {
		t.Fatalf("Wrap throttled twice: %v", err)
	}
	if n := srv.Calls("Encrypt"); n != 3 {
		t.Errorf("Encrypt calls = %d, want 3", n)
	}
	srv.Inject(gcpkmstest.Fault{Method: "Decrypt", Code: codes.ResourceExhausted, Times: gcpkms.DefaultAttempts})
	if _, err := s.Unwrap(ctx, w, aad); !errors.Is(err, keyring.ErrKEKUnavailable) || status.Code(err) != codes.ResourceExhausted {
		t.Errorf("Unwrap throttled %d times = %v, want ErrKEKUnavailable", gcpkms.DefaultAttempts, err)
	}
	if n := srv.Calls("Decrypt"); n != gcpkms.DefaultAttempts {
		t.Errorf("Decrypt calls = %d, want %d", n, gcpkms.DefaultAttempts)
	}
}
