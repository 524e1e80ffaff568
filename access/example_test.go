package access_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keyward/keyward/access"
)

func examplePolicy() *access.Policy {
	policy, err := access.NewPolicy(access.Config{Roles: []access.Role{
		{Name: "support", Permissions: []access.Permission{
			{Actions: []string{access.ActionDecrypt}, Resources: []string{"field:users.email"}},
		}},
		{Name: "admin", Inherits: []string{"support"}, Permissions: []access.Permission{
			{Actions: []string{"*"}, Resources: []string{"keyring:*"}},
		}},
	}})
	if err != nil {
		panic(err)
	}
	return policy
}

func ExamplePolicy_CheckAccess() {
	policy := examplePolicy()
	fmt.Println(policy.CheckAccess("admin", "support"))
	fmt.Println(policy.CheckAccess("support", "admin"))
	// Output:
	// true
	// false
}

func ExamplePolicy_Authorize() {
	policy := examplePolicy()
	ctx := access.WithPrincipal(context.Background(), access.Principal{UserID: "alice", Roles: []string{"support"}})

	err := policy.Authorize(ctx, access.ActionDecrypt, access.FieldResource("users", "email"))
	fmt.Println(err)
	err = policy.Authorize(ctx, access.ActionRotate, access.KeyringResource("pii"))
	fmt.Println(errors.Is(err, access.ErrAccessDenied), err)
	// Output:
	// <nil>
	// true access: access denied: "rotate" on "keyring:pii": no matching permission
}

func ExampleParsePolicy() {
	_, err := access.ParsePolicy("policy.json", []byte(`{
  "roles": [
    {"name": "support", "inherits": ["reader"]}
  ]
}`))
	fmt.Println(err)
	// Output:
	// access: invalid policy: policy.json:3:38: roles[0].inherits[0]: unknown role "reader"
}

func ExampleFieldResource() {
	fmt.Println(access.FieldResource("users", "ssn"))
	fmt.Println(access.FieldResource("public.users", "ssn"))
	fmt.Println(access.KeyringResource("pii"))
	// Output:
	// field:users.ssn
	// field:public.users.ssn
	// keyring:pii
}

func ExampleGuard() {
	// Audit to slog as JSON, with a fixed clock for the example's output.
	logger := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	auditor, err := access.NewAuditor(access.WithLogger(logger),
		access.WithClock(func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }))
	if err != nil {
		panic(err)
	}
	guard, err := access.NewGuard(examplePolicy(), auditor)
	if err != nil {
		panic(err)
	}
	ctx := access.WithPrincipal(context.Background(), access.Principal{UserID: "alice", Roles: []string{"support"}})
	_ = guard.Authorize(ctx, access.ActionDecrypt, access.FieldResource("users", "email"))
	_ = guard.Authorize(ctx, access.ActionDecrypt, access.FieldResource("users", "ssn"))
	// Output:
	// {"time":"2026-01-02T03:04:05Z","level":"INFO","msg":"access decision","user":"alice","roles":["support"],"action":"decrypt","resource":"field:users.email","decision":"allow"}
	// {"time":"2026-01-02T03:04:05Z","level":"WARN","msg":"access decision","user":"alice","roles":["support"],"action":"decrypt","resource":"field:users.ssn","decision":"deny","reason":"no matching permission"}
}

func ExampleMiddleware() {
	// The application's verified source of identity; here a fixed token.
	authenticate := func(r *http.Request) (access.Principal, error) {
		if r.Header.Get("Authorization") != "Bearer valid-token" {
			return access.Principal{}, errors.New("invalid token")
		}
		return access.Principal{UserID: "alice", Roles: []string{"support"}}, nil
	}
	handler := access.Middleware(authenticate)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := access.PrincipalFrom(r.Context())
		fmt.Fprintln(w, "hello", p.UserID)
	}))

	for _, token := range []string{"Bearer valid-token", "Bearer forged"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Authorization", token)
		handler.ServeHTTP(rec, req)
		fmt.Print(rec.Code, " ", rec.Body.String())
	}
	// Output:
	// 200 hello alice
	// 401 unauthorized
}

func ExampleVerify() {
	dir, err := os.MkdirTemp("", "audit")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	key := make([]byte, access.AuditKeySize) // in production: derived by the keyring

	// Write two records, keeping the checkpoint emitted on Close.
	var last access.Checkpoint
	log, err := access.OpenAuditLog(ctx, dir, key, access.WithCheckpointFunc(func(cp access.Checkpoint) { last = cp }))
	if err != nil {
		panic(err)
	}
	auditor, _ := access.NewAuditor(access.WithSink(log))
	_ = auditor.LogAccessAttempt(ctx, "alice", access.ActionDecrypt, true)
	_ = auditor.LogAccessAttempt(ctx, "mallory", access.ActionDecrypt, false)
	if err := log.Close(); err != nil {
		panic(err)
	}

	files, _ := access.ListAuditFiles(dir, "")
	res, err := access.Verify(ctx, key, files, access.ExpectCheckpoint(last))
	fmt.Println(res.Records, err)

	// Someone turns mallory's denial into an allow.
	data, _ := os.ReadFile(files[0])
	data = []byte(strings.Replace(string(data), `"decision":"deny"`, `"decision":"allow"`, 1))
	_ = os.WriteFile(files[0], data, 0o600)

	_, err = access.Verify(ctx, key, files, access.ExpectCheckpoint(last))
	var ve *access.VerifyError
	if errors.As(err, &ve) {
		fmt.Printf("%s:%d seq %d: %s\n", filepath.Base(ve.File), ve.Line, ve.Seq, ve.Reason)
	}
	fmt.Println(errors.Is(err, access.ErrTampered))
	// Output:
	// 2 <nil>
	// audit-00000001.jsonl:2 seq 2: mac does not verify: record edited or forged
	// true
}
