package gcpkmstest

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	kms "cloud.google.com/go/kms/apiv1"
	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/keyward/keyward/internal/kmstest"
)

// Forever makes a Fault apply to every matching call until ClearFaults.
const Forever = kmstest.Forever

// Fault changes the Server's answer to matching calls.
type Fault struct {
	// Method is the RPC it applies to ("Encrypt", "Decrypt", ...); empty
	// for every method.
	Method string
	// Code, unless OK, is the status to answer with.
	Code codes.Code
	// Started, if set, receives a value (without blocking) when a call
	// takes the fault.
	Started chan<- struct{}
	// Block, if set, makes the call wait until it is closed or the call's
	// context ends.
	Block <-chan struct{}
	// CorruptChecksum makes a successful Encrypt or Decrypt answer carry a
	// wrong ciphertext or plaintext checksum.
	CorruptChecksum bool
	// Unverified makes a successful Encrypt answer claim that the request's
	// checksums were not verified.
	Unverified bool
	// Times is how many calls the fault applies to: 0 means once, Forever
	// means until ClearFaults.
	Times int
}

// Server is the in-process Cloud KMS.
type Server struct {
	kmspb.UnimplementedKeyManagementServiceServer

	// Addr is the loopback host:port it listens on.
	Addr string

	gs *grpc.Server

	mu       sync.Mutex
	keyRings map[string]bool
	keys     map[string]*cryptoKey
	faults   kmstest.Faults[Fault]
}

type cryptoKey struct {
	name     string
	primary  int // version ID, 0 for none
	versions []*keyVersion
	created  *timestamppb.Timestamp
}

type keyVersion struct {
	id      int
	state   kmspb.CryptoKeyVersion_CryptoKeyVersionState
	aead    cipher.AEAD // nil once destroyed
	created *timestamppb.Timestamp
}

// New starts a Server for t on a loopback port, stopped by t.Cleanup.
func New(t testing.TB) *Server {
	t.Helper()
	s, err := Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Start serves on addr (use a loopback address).
func Start(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: ln.Addr().String(), keyRings: map[string]bool{}, keys: map[string]*cryptoKey{}}
	s.gs = grpc.NewServer(grpc.UnaryInterceptor(s.intercept))
	kmspb.RegisterKeyManagementServiceServer(s.gs, s)
	go func() { _ = s.gs.Serve(ln) }()
	return s, nil
}

// Close stops the server; calls under way are cut off.
func (s *Server) Close() { s.gs.Stop() }

// ClientOptions are the options that point the real client at the server:
// its endpoint, no authentication, plaintext gRPC.
func (s *Server) ClientOptions() []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(s.Addr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}

// Client returns a real KeyManagementClient for the server, closed by
// t.Cleanup; opts are added to ClientOptions.
func (s *Server) Client(t testing.TB, opts ...option.ClientOption) *kms.KeyManagementClient {
	t.Helper()
	c, err := kms.NewKeyManagementClient(context.Background(), append(s.ClientOptions(), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// CreateKey creates (through the client) the key ring of keyRing
// ("projects/P/locations/L/keyRings/R") if needed, and in it an
// ENCRYPT_DECRYPT crypto key with one version; it returns the key's name.
func (s *Server) CreateKey(t testing.TB, keyRing, id string) string {
	t.Helper()
	name, err := s.createKey(context.Background(), keyRing, id)
	if err != nil {
		t.Fatal(err)
	}
	return name
}

func (s *Server) createKey(ctx context.Context, keyRing, id string) (string, error) {
	i := strings.LastIndex(keyRing, "/keyRings/")
	if i < 0 {
		return "", fmt.Errorf("gcpkmstest: %q is not a key ring name", keyRing)
	}
	if _, err := s.CreateKeyRing(ctx, &kmspb.CreateKeyRingRequest{Parent: keyRing[:i], KeyRingId: keyRing[i+len("/keyRings/"):]}); err != nil && status.Code(err) != codes.AlreadyExists {
		return "", err
	}
	k, err := s.CreateCryptoKey(ctx, &kmspb.CreateCryptoKeyRequest{Parent: keyRing, CryptoKeyId: id, CryptoKey: &kmspb.CryptoKey{Purpose: kmspb.CryptoKey_ENCRYPT_DECRYPT}})
	if err != nil {
		return "", err
	}
	return k.Name, nil
}

// StartKey is CreateKey for servers started without a test.
func (s *Server) StartKey(keyRing, id string) (string, error) {
	return s.createKey(context.Background(), keyRing, id)
}

// Inject adds a fault; faults apply in the order they were added.
func (s *Server) Inject(f Fault) { s.faults.Inject(f.Method, f.Times, f) }

// ClearFaults removes every fault.
func (s *Server) ClearFaults() { s.faults.Clear() }

// Calls returns how many calls of the method (e.g. "Decrypt") the server
// received, faults included.
func (s *Server) Calls(method string) int64 { return s.faults.Calls(method) }

// intercept counts calls and applies faults.
func (s *Server) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	method := info.FullMethod[strings.LastIndexByte(info.FullMethod, '/')+1:]
	f, ok := s.faults.Take(method)
	if !ok {
		return h(ctx, req)
	}
	if !kmstest.Hold(f.Started, f.Block, ctx.Done()) {
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	if f.Code != codes.OK {
		return nil, status.Error(f.Code, "injected fault")
	}
	resp, err := h(ctx, req)
	if err != nil {
		return resp, err
	}
	switch r := resp.(type) {
	case *kmspb.EncryptResponse:
		if f.CorruptChecksum {
			r.CiphertextCrc32C = wrapperspb.Int64(r.CiphertextCrc32C.GetValue() ^ 1)
		}
		if f.Unverified {
			r.VerifiedPlaintextCrc32C, r.VerifiedAdditionalAuthenticatedDataCrc32C = false, false
		}
	case *kmspb.DecryptResponse:
		if f.CorruptChecksum {
			r.PlaintextCrc32C = wrapperspb.Int64(r.PlaintextCrc32C.GetValue() ^ 1)
		}
	}
	return resp, nil
}

// Checksum is the CRC32C (Castagnoli) of b, as Cloud KMS computes it.
func Checksum(b []byte) int64 { return int64(crc32.Checksum(b, castagnoli)) }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Limits of Cloud KMS for SOFTWARE keys.
const (
	maxPlaintext  = 64 << 10
	maxAAD        = 64 << 10
	maxCiphertext = 64<<10 + 1024
)

func verifyChecksum(field string, data []byte, sum *wrapperspb.Int64Value) (bool, error) {
	if sum == nil {
		return false, nil
	}
	if sum.GetValue() != Checksum(data) {
		return false, status.Errorf(codes.InvalidArgument, "The checksum in field %s_crc32c did not match the data in field %s.", field, field)
	}
	return true, nil
}

// Encrypt implements kmspb.KeyManagementServiceServer.
func (s *Server) Encrypt(_ context.Context, req *kmspb.EncryptRequest) (*kmspb.EncryptResponse, error) {
	switch {
	case len(req.GetPlaintext()) == 0:
		return nil, status.Error(codes.InvalidArgument, "plaintext is required")
	case len(req.GetPlaintext()) > maxPlaintext:
		return nil, status.Errorf(codes.InvalidArgument, "plaintext must be no larger than %d bytes", maxPlaintext)
	case len(req.GetAdditionalAuthenticatedData()) > maxAAD:
		return nil, status.Errorf(codes.InvalidArgument, "additional_authenticated_data must be no larger than %d bytes", maxAAD)
	}
	ptOK, err := verifyChecksum("plaintext", req.GetPlaintext(), req.GetPlaintextCrc32C())
	if err != nil {
		return nil, err
	}
	aadOK, err := verifyChecksum("additional_authenticated_data", req.GetAdditionalAuthenticatedData(), req.GetAdditionalAuthenticatedDataCrc32C())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	keyName, versionID := req.GetName(), 0
	if i := strings.Index(keyName, "/cryptoKeyVersions/"); i >= 0 {
		n, err := strconv.Atoi(keyName[i+len("/cryptoKeyVersions/"):])
		if err != nil || n <= 0 {
			return nil, status.Errorf(codes.InvalidArgument, "invalid CryptoKeyVersion name %q", keyName)
		}
		keyName, versionID = keyName[:i], n
	}
	k, ok := s.keys[keyName]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "CryptoKey %s not found.", keyName)
	}
	if versionID == 0 {
		if versionID = k.primary; versionID == 0 {
			return nil, status.Errorf(codes.FailedPrecondition, "CryptoKey %s has no primary version.", keyName)
		}
	}
	v := k.version(versionID)
	if v == nil {
		return nil, status.Errorf(codes.NotFound, "CryptoKeyVersion %s/cryptoKeyVersions/%d not found.", keyName, versionID)
	}
	if v.state != kmspb.CryptoKeyVersion_ENABLED {
		return nil, status.Errorf(codes.FailedPrecondition, "%s/cryptoKeyVersions/%d is not enabled, current state is: %s.", keyName, v.id, v.state)
	}
	ct := make([]byte, 4+12, 4+12+len(req.GetPlaintext())+16)
	binary.BigEndian.PutUint32(ct, uint32(v.id))
	_, _ = rand.Read(ct[4:])
	ct = v.aead.Seal(ct, ct[4:16], req.GetPlaintext(), req.GetAdditionalAuthenticatedData())
	return &kmspb.EncryptResponse{
		Name:                    fmt.Sprintf("%s/cryptoKeyVersions/%d", keyName, v.id),
		Ciphertext:              ct,
		CiphertextCrc32C:        wrapperspb.Int64(Checksum(ct)),
		VerifiedPlaintextCrc32C: ptOK,
		VerifiedAdditionalAuthenticatedDataCrc32C: aadOK,
		ProtectionLevel: kmspb.ProtectionLevel_SOFTWARE,
	}, nil
}

// Decrypt implements kmspb.KeyManagementServiceServer.
func (s *Server) Decrypt(_ context.Context, req *kmspb.DecryptRequest) (*kmspb.DecryptResponse, error) {
	switch {
	case len(req.GetCiphertext()) == 0:
		return nil, status.Error(codes.InvalidArgument, "ciphertext is required")
	case len(req.GetCiphertext()) > maxCiphertext:
		return nil, status.Errorf(codes.InvalidArgument, "ciphertext must be no larger than %d bytes", maxCiphertext)
	case len(req.GetAdditionalAuthenticatedData()) > maxAAD:
		return nil, status.Errorf(codes.InvalidArgument, "additional_authenticated_data must be no larger than %d bytes", maxAAD)
	case strings.Contains(req.GetName(), "/cryptoKeyVersions/"):
		return nil, status.Error(codes.InvalidArgument, "Decrypt takes a CryptoKey name, not a CryptoKeyVersion name")
	}
	if _, err := verifyChecksum("ciphertext", req.GetCiphertext(), req.GetCiphertextCrc32C()); err != nil {
		return nil, err
	}
	if _, err := verifyChecksum("additional_authenticated_data", req.GetAdditionalAuthenticatedData(), req.GetAdditionalAuthenticatedDataCrc32C()); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[req.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "CryptoKey %s not found.", req.GetName())
	}
	invalid := status.Error(codes.InvalidArgument, "Decryption failed: the ciphertext is invalid.")
	ct := req.GetCiphertext()
	if len(ct) < 4+12+16 {
		return nil, invalid
	}
	v := k.version(int(binary.BigEndian.Uint32(ct)))
	if v == nil {
		return nil, invalid
	}
	if v.state != kmspb.CryptoKeyVersion_ENABLED {
		return nil, status.Errorf(codes.FailedPrecondition, "%s/cryptoKeyVersions/%d is not enabled, current state is: %s.", k.name, v.id, v.state)
	}
	pt, err := v.aead.Open(nil, ct[4:16], ct[16:], req.GetAdditionalAuthenticatedData())
	if err != nil {
		return nil, invalid
	}
	return &kmspb.DecryptResponse{
		Plaintext:       pt,
		PlaintextCrc32C: wrapperspb.Int64(Checksum(pt)),
		UsedPrimary:     v.id == k.primary,
		ProtectionLevel: kmspb.ProtectionLevel_SOFTWARE,
	}, nil
}

func (k *cryptoKey) version(id int) *keyVersion {
	if id <= 0 || id > len(k.versions) {
		return nil
	}
	return k.versions[id-1]
}

func (k *cryptoKey) proto() *kmspb.CryptoKey {
	p := &kmspb.CryptoKey{Name: k.name, Purpose: kmspb.CryptoKey_ENCRYPT_DECRYPT, CreateTime: k.created}
	if v := k.version(k.primary); v != nil {
		p.Primary = k.versionProto(v)
	}
	return p
}

func (k *cryptoKey) versionProto(v *keyVersion) *kmspb.CryptoKeyVersion {
	return &kmspb.CryptoKeyVersion{
		Name:            fmt.Sprintf("%s/cryptoKeyVersions/%d", k.name, v.id),
		State:           v.state,
		ProtectionLevel: kmspb.ProtectionLevel_SOFTWARE,
		Algorithm:       kmspb.CryptoKeyVersion_GOOGLE_SYMMETRIC_ENCRYPTION,
		CreateTime:      v.created,
	}
}

func (k *cryptoKey) addVersion() *keyVersion {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	b, _ := aes.NewCipher(key)
	a, _ := cipher.NewGCM(b)
	v := &keyVersion{id: len(k.versions) + 1, state: kmspb.CryptoKeyVersion_ENABLED, aead: a, created: timestamppb.Now()}
	k.versions = append(k.versions, v)
	return v
}

// validID reports whether id is a valid key ring or crypto key ID.
func validID(id string) bool {
	if id == "" || len(id) > 63 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// CreateKeyRing implements kmspb.KeyManagementServiceServer.
func (s *Server) CreateKeyRing(_ context.Context, req *kmspb.CreateKeyRingRequest) (*kmspb.KeyRing, error) {
	p := strings.Split(req.GetParent(), "/")
	if len(p) != 4 || p[0] != "projects" || p[2] != "locations" || p[1] == "" || p[3] == "" || !validID(req.GetKeyRingId()) {
		return nil, status.Errorf(codes.InvalidArgument, "invalid key ring parent %q or ID %q", req.GetParent(), req.GetKeyRingId())
	}
	name := req.GetParent() + "/keyRings/" + req.GetKeyRingId()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keyRings[name] {
		return nil, status.Errorf(codes.AlreadyExists, "KeyRing %s already exists.", name)
	}
	s.keyRings[name] = true
	return &kmspb.KeyRing{Name: name, CreateTime: timestamppb.Now()}, nil
}

// CreateCryptoKey implements kmspb.KeyManagementServiceServer. Only
// ENCRYPT_DECRYPT keys are supported.
func (s *Server) CreateCryptoKey(_ context.Context, req *kmspb.CreateCryptoKeyRequest) (*kmspb.CryptoKey, error) {
	if !validID(req.GetCryptoKeyId()) {
		return nil, status.Errorf(codes.InvalidArgument, "invalid crypto key ID %q", req.GetCryptoKeyId())
	}
	if p := req.GetCryptoKey().GetPurpose(); p != kmspb.CryptoKey_ENCRYPT_DECRYPT {
		return nil, status.Errorf(codes.Unimplemented, "gcpkmstest supports ENCRYPT_DECRYPT keys only, not %s", p)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.keyRings[req.GetParent()] {
		return nil, status.Errorf(codes.NotFound, "KeyRing %s not found.", req.GetParent())
	}
	name := req.GetParent() + "/cryptoKeys/" + req.GetCryptoKeyId()
	if _, ok := s.keys[name]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "CryptoKey %s already exists.", name)
	}
	k := &cryptoKey{name: name, created: timestamppb.Now()}
	if !req.GetSkipInitialVersionCreation() {
		k.primary = k.addVersion().id
	}
	s.keys[name] = k
	return k.proto(), nil
}

// GetCryptoKey implements kmspb.KeyManagementServiceServer.
func (s *Server) GetCryptoKey(_ context.Context, req *kmspb.GetCryptoKeyRequest) (*kmspb.CryptoKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[req.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "CryptoKey %s not found.", req.GetName())
	}
	return k.proto(), nil
}

// CreateCryptoKeyVersion implements kmspb.KeyManagementServiceServer: the
// new version is enabled but not primary.
func (s *Server) CreateCryptoKeyVersion(_ context.Context, req *kmspb.CreateCryptoKeyVersionRequest) (*kmspb.CryptoKeyVersion, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[req.GetParent()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "CryptoKey %s not found.", req.GetParent())
	}
	return k.versionProto(k.addVersion()), nil
}

// lookupVersion finds a version by its full name. s.mu must be held.
func (s *Server) lookupVersion(name string) (*cryptoKey, *keyVersion, error) {
	i := strings.Index(name, "/cryptoKeyVersions/")
	if i < 0 {
		return nil, nil, status.Errorf(codes.InvalidArgument, "invalid CryptoKeyVersion name %q", name)
	}
	k, ok := s.keys[name[:i]]
	n, err := strconv.Atoi(name[i+len("/cryptoKeyVersions/"):])
	if !ok || err != nil || k.version(n) == nil {
		return nil, nil, status.Errorf(codes.NotFound, "CryptoKeyVersion %s not found.", name)
	}
	return k, k.version(n), nil
}

// UpdateCryptoKeyPrimaryVersion implements kmspb.KeyManagementServiceServer.
func (s *Server) UpdateCryptoKeyPrimaryVersion(_ context.Context, req *kmspb.UpdateCryptoKeyPrimaryVersionRequest) (*kmspb.CryptoKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, v, err := s.lookupVersion(req.GetName() + "/cryptoKeyVersions/" + req.GetCryptoKeyVersionId())
	if err != nil {
		return nil, err
	}
	if v.state != kmspb.CryptoKeyVersion_ENABLED {
		return nil, status.Errorf(codes.FailedPrecondition, "version %d is not enabled", v.id)
	}
	k.primary = v.id
	return k.proto(), nil
}

// UpdateCryptoKeyVersion implements kmspb.KeyManagementServiceServer for the
// "state" field: ENABLED and DISABLED.
func (s *Server) UpdateCryptoKeyVersion(_ context.Context, req *kmspb.UpdateCryptoKeyVersionRequest) (*kmspb.CryptoKeyVersion, error) {
	if p := req.GetUpdateMask().GetPaths(); len(p) != 1 || p[0] != "state" {
		return nil, status.Error(codes.Unimplemented, "gcpkmstest updates the state field only")
	}
	want := req.GetCryptoKeyVersion().GetState()
	if want != kmspb.CryptoKeyVersion_ENABLED && want != kmspb.CryptoKeyVersion_DISABLED {
		return nil, status.Errorf(codes.InvalidArgument, "cannot set state %s", want)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, v, err := s.lookupVersion(req.GetCryptoKeyVersion().GetName())
	if err != nil {
		return nil, err
	}
	if v.state != kmspb.CryptoKeyVersion_ENABLED && v.state != kmspb.CryptoKeyVersion_DISABLED {
		return nil, status.Errorf(codes.FailedPrecondition, "version %d is %s", v.id, v.state)
	}
	v.state = want
	return k.versionProto(v), nil
}

// DestroyCryptoKeyVersion implements kmspb.KeyManagementServiceServer. The
// version becomes DESTROY_SCHEDULED as in Cloud KMS, but its material is
// erased at once.
func (s *Server) DestroyCryptoKeyVersion(_ context.Context, req *kmspb.DestroyCryptoKeyVersionRequest) (*kmspb.CryptoKeyVersion, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, v, err := s.lookupVersion(req.GetName())
	if err != nil {
		return nil, err
	}
	if v.state != kmspb.CryptoKeyVersion_ENABLED && v.state != kmspb.CryptoKeyVersion_DISABLED {
		return nil, status.Errorf(codes.FailedPrecondition, "version %d is %s", v.id, v.state)
	}
	v.state, v.aead = kmspb.CryptoKeyVersion_DESTROY_SCHEDULED, nil
	return k.versionProto(v), nil
}
