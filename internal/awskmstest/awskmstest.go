package awskmstest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/nsmithuk/local-kms/src/cmk"
	"github.com/nsmithuk/local-kms/src/config"
	"github.com/nsmithuk/local-kms/src/data"
	"github.com/nsmithuk/local-kms/src/handler"
	"github.com/nsmithuk/local-kms/src/service"
	"github.com/sirupsen/logrus"

	"github.com/keyward/keyward/internal/kmstest"
)

// The region and account of every Server. local-kms keeps them in package
// variables, so all Servers of a process share them.
const (
	Region    = "eu-west-1"
	AccountID = "111122223333"
)

var configure sync.Once

// Forever makes a Fault apply to every matching request until ClearFaults.
const Forever = kmstest.Forever

// Fault changes the Server's answer to matching requests.
type Fault struct {
	// Op is the KMS operation it applies to ("Encrypt", "Decrypt",
	// "DescribeKey", ...); empty for every operation.
	Op string
	// Code is the error type to answer with (the "__type" of an AWS JSON
	// error, e.g. "ThrottlingException"); empty to answer normally after
	// Block.
	Code string
	// Status is the HTTP status of the error answer; 0 means 400.
	Status int
	// Started, if set, receives a value (without blocking) when a request
	// takes the fault.
	Started chan<- struct{}
	// Block, if set, makes the request wait until it is closed or the
	// client goes away.
	Block <-chan struct{}
	// Times is how many requests the fault applies to: 0 means once,
	// Forever means until ClearFaults.
	Times int
}

// Server is local-kms served over loopback HTTP.
type Server struct {
	// URL is the endpoint to give the SDK (kms.Options.BaseEndpoint).
	URL string

	db   *data.Database
	log  *logrus.Logger
	hs   *http.Server
	ln   net.Listener
	dir  string
	temp bool // dir is ours to remove

	faults kmstest.Faults[Fault]
}

// IsolateEnv gives the AWS SDK's default configuration, for the rest of
// the test, static credentials, no region, no shared config or credentials
// files and no instance metadata, so that it resolves without a network or
// the machine's own AWS set-up. extra sets more variables (e.g.
// AWS_MAX_ATTEMPTS).
func IsolateEnv(t testing.TB, extra ...string) {
	t.Helper()
	dir := t.TempDir()
	env := []string{
		"AWS_ACCESS_KEY_ID", "AKIDEXAMPLE",
		"AWS_SECRET_ACCESS_KEY", "test-secret",
		"AWS_SESSION_TOKEN", "",
		"AWS_PROFILE", "",
		"AWS_REGION", "",
		"AWS_DEFAULT_REGION", "",
		"AWS_CONFIG_FILE", filepath.Join(dir, "no-config"),
		"AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "no-credentials"),
		"AWS_EC2_METADATA_DISABLED", "true",
	}
	env = append(env, extra...)
	for i := 0; i+1 < len(env); i += 2 {
		t.Setenv(env[i], env[i+1])
	}
}

// New starts a Server for t, with its data in t.TempDir(), stopped by
// t.Cleanup.
func New(t testing.TB) *Server {
	t.Helper()
	s, err := Start("127.0.0.1:0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Start serves local-kms on addr (use a loopback address) with its data in
// dir; an empty dir means a new temporary directory removed by Close.
func Start(addr, dir string) (*Server, error) {
	configure.Do(func() {
		config.AWSRegion = Region
		config.AWSAccountId = AccountID
	})
	s := &Server{dir: dir, log: newLogger()}
	if dir == "" {
		d, err := os.MkdirTemp("", "awskmstest-")
		if err != nil {
			return nil, err
		}
		s.dir, s.temp = d, true
	}
	db, err := openDatabase(s.dir)
	if err != nil {
		s.removeDir()
		return nil, err
	}
	s.db = db
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		db.Close()
		s.removeDir()
		return nil, err
	}
	s.ln = ln
	s.URL = "http://" + ln.Addr().String()
	s.hs = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.hs.Serve(ln) }()
	return s, nil
}

func openDatabase(dir string) (db *data.Database, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("awskmstest: open database: %v", r)
		}
	}()
	return data.NewDatabase(dir), nil
}

func (s *Server) removeDir() {
	if s.temp {
		_ = os.RemoveAll(s.dir)
	}
}

// Close stops the server: from then on connections are refused. Requests
// blocked by a fault are cut off.
func (s *Server) Close() {
	_ = s.hs.Close()
	s.db.Close()
	s.removeDir()
}

// Client returns a KMS client of the real SDK for the server, with static
// credentials and the SDK's standard retryer with a 10 ms maximum backoff
// (so that retries in tests are quick). optFns adjust it further.
func (s *Server) Client(optFns ...func(*kms.Options)) *kms.Client {
	o := kms.Options{
		Region:       Region,
		BaseEndpoint: aws.String(s.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "test-secret", ""),
		Retryer:      retry.NewStandard(func(o *retry.StandardOptions) { o.MaxBackoff = 10 * time.Millisecond }),
	}
	return kms.New(o, optFns...)
}

// CreateKey creates a symmetric encryption key and returns its ARN.
func (s *Server) CreateKey(t testing.TB) string {
	t.Helper()
	out, err := s.Client().CreateKey(context.Background(), &kms.CreateKeyInput{})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	return aws.ToString(out.KeyMetadata.Arn)
}

// CreateAlias points alias ("alias/...") at the key.
func (s *Server) CreateAlias(t testing.TB, alias, keyARN string) {
	t.Helper()
	_, err := s.Client().CreateAlias(context.Background(), &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: aws.String(keyARN)})
	if err != nil {
		t.Fatalf("CreateAlias: %v", err)
	}
}

// Rotate rotates the key's material on the server: later encryptions use a
// new backing key, earlier ciphertexts still decrypt. (local-kms has no
// RotateKeyOnDemand; its rotation runs when a key is loaded after its
// NextKeyRotation.)
func (s *Server) Rotate(t testing.TB, keyARN string) {
	t.Helper()
	if err := s.rotate(keyARN); err != nil {
		t.Fatal(err)
	}
}

func (s *Server) rotate(keyARN string) error {
	k, err := s.aesKey(keyARN)
	if err != nil {
		return err
	}
	before := len(k.BackingKeys)
	k.NextKeyRotation = time.Now().Add(-time.Minute)
	if err := s.db.SaveKey(k); err != nil {
		return err
	}
	if k, err = s.aesKey(keyARN); err != nil { // loading rotates it
		return err
	}
	if len(k.BackingKeys) != before+1 {
		return fmt.Errorf("awskmstest: key did not rotate: %d backing keys, want %d", len(k.BackingKeys), before+1)
	}
	return nil
}

// Versions returns how many backing keys (rotations + 1) the key has.
func (s *Server) Versions(t testing.TB, keyARN string) int {
	t.Helper()
	k, err := s.aesKey(keyARN)
	if err != nil {
		t.Fatal(err)
	}
	return len(k.BackingKeys)
}

func (s *Server) aesKey(keyARN string) (*cmk.AesKey, error) {
	k, err := s.db.LoadKey(keyARN)
	if err != nil {
		return nil, fmt.Errorf("awskmstest: load %s: %w", keyARN, err)
	}
	a, ok := k.(*cmk.AesKey)
	if !ok {
		return nil, fmt.Errorf("awskmstest: %s is not a symmetric key", keyARN)
	}
	return a, nil
}

// BlobVersion returns the index of the backing key a local-kms ciphertext
// blob was made with.
func BlobVersion(blob []byte) (uint32, bool) {
	_, v, _, ok := service.UnpackCiphertextBlob(blob)
	return v, ok
}

// Delete removes the key as if its deletion window had passed.
func (s *Server) Delete(t testing.TB, keyARN string) {
	t.Helper()
	if err := s.db.DeleteObject(keyARN); err != nil {
		t.Fatal(err)
	}
}

// Inject adds a fault; faults apply in the order they were added.
func (s *Server) Inject(f Fault) { s.faults.Inject(f.Op, f.Times, f) }

// ClearFaults removes every fault.
func (s *Server) ClearFaults() { s.faults.Clear() }

// Calls returns how many requests of the operation (e.g. "Decrypt") the
// server received, faults included.
func (s *Server) Calls(op string) int64 { return s.faults.Calls(op) }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	op := r.Header.Get("X-Amz-Target")
	if i := strings.LastIndexByte(op, '.'); i >= 0 {
		op = op[i+1:]
	}
	if f, ok := s.faults.Take(op); ok {
		if !kmstest.Hold(f.Started, f.Block, r.Context().Done()) {
			return
		}
		if f.Code != "" {
			status := f.Status
			if status == 0 {
				status = http.StatusBadRequest
			}
			writeError(w, status, f.Code, "injected fault")
			return
		}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	defer func() {
		if p := recover(); p != nil { // local-kms's ciphertext parsing panicked
			writeError(w, http.StatusBadRequest, "InvalidCiphertextException", "")
		}
	}()
	if op == "Decrypt" && s.decryptKeyState(w, body) {
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	s.handle(w, r, op)
}

// handle answers a KMS request with local-kms's handler for op, logging
// to s.log. (local-kms's own HTTP entry point logs with forced ANSI
// colour codes, which garble logs that are not a terminal.)
func (s *Server) handle(w http.ResponseWriter, r *http.Request, op string) {
	m := reflect.ValueOf(handler.NewRequestHandler(r, s.log, s.db)).MethodByName(op)
	if op == "" || !m.IsValid() || m.Type().NumIn() != 0 || m.Type().NumOut() != 1 {
		writeError(w, http.StatusNotImplemented, "UnsupportedOperationException", "the emulator does not implement "+op)
		return
	}
	res, ok := m.Call(nil)[0].Interface().(handler.Response)
	if !ok {
		writeError(w, http.StatusNotImplemented, "UnsupportedOperationException", "the emulator does not implement "+op)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(res.Code)
	_, _ = io.WriteString(w, res.Body)
}

// newLogger returns the logger of local-kms's handlers: text lines on
// stderr, coloured only when stderr is a terminal.
func newLogger() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(os.Stderr)
	l.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, TimestampFormat: "2006-01-02 15:04:05.000"})
	return l
}

// decryptKeyState answers, as AWS KMS does, a Decrypt naming a key that
// cannot decrypt or that is not the blob's key, and reports whether it
// answered.
func (s *Server) decryptKeyState(w http.ResponseWriter, body []byte) bool {
	var in struct {
		KeyId          *string
		CiphertextBlob []byte
	}
	if json.Unmarshal(body, &in) != nil || in.KeyId == nil || strings.Contains(*in.KeyId, "alias/") {
		return false
	}
	arn := config.EnsureArn("key/", *in.KeyId)
	k, err := s.db.LoadKey(arn)
	blobARN, _, _, ok := service.UnpackCiphertextBlob(in.CiphertextBlob)
	switch {
	case err != nil || k == nil:
		writeError(w, http.StatusBadRequest, "NotFoundException", fmt.Sprintf("Key '%s' does not exist", arn))
	case k.GetMetadata().DeletionDate != 0:
		writeError(w, http.StatusBadRequest, "KMSInvalidStateException", arn+" is pending deletion.")
	case !k.GetMetadata().Enabled:
		writeError(w, http.StatusBadRequest, "DisabledException", arn+" is disabled.")
	case ok && blobARN != k.GetArn():
		writeError(w, http.StatusBadRequest, "IncorrectKeyException", "The key ID in the request does not identify a KMS key that can perform this operation.")
	default:
		return false
	}
	return true
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]string{"__type": code, "message": msg})
	_, _ = w.Write(b)
}
