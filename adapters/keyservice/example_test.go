package keyservice_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"strings"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/adapters/keyservice"
	"github.com/keyward/keyward/keyring"
)

// The service and an application in one program, over plain gRPC on the
// loopback address for brevity. A real service uses WithServerTLSFiles and
// its clients WithTLSFiles (see the package documentation).
func Example() {
	ctx := context.Background()

	// The service side: the KEK, the policy, the server.
	kekBytes := make([]byte, filekey.KeySize)
	_, _ = rand.Read(kekBytes)
	kek, err := filekey.New(kekBytes)
	if err != nil {
		log.Fatal(err)
	}
	clear(kekBytes)
	policy, err := access.ParsePolicy("policy.json", []byte(`{"roles": [
		{"name": "`+keyservice.InsecurePrincipal+`", "permissions": [{"actions": ["encrypt", "decrypt"], "resources": ["keyring:pii"]}]}
	]}`))
	if err != nil {
		log.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	auditor, err := access.NewAuditor(access.WithLogger(quiet))
	if err != nil {
		log.Fatal(err)
	}
	srv, err := keyservice.NewServer(kek, policy, keyservice.WithServerInsecureLoopback(),
		keyservice.WithAuditor(auditor), keyservice.WithLogger(quiet))
	if err != nil {
		log.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(lis)
	defer srv.Shutdown(ctx)

	// The application side: a keyring whose data keys the service wraps.
	src, err := keyservice.New([]string{lis.Addr().String()}, keyservice.WithInsecureLoopback(), keyservice.WithServerName("keys.example"))
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	kr, err := keyring.New(ctx, "pii", src, keyring.NewMemoryStore())
	if err != nil {
		log.Fatal(err)
	}
	defer kr.Close()
	token, err := kr.EncryptString(ctx, "123-45-6789")
	if err != nil {
		log.Fatal(err)
	}
	ssn, err := kr.DecryptString(ctx, token)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(strings.HasPrefix(token, "kw1."), ssn, src.ID())

	// The policy grants nothing on other keyrings.
	_, err = keyring.New(ctx, "payroll", src, keyring.NewMemoryStore())
	fmt.Println(err != nil)
	// Output:
	// true 123-45-6789 keyservice:keys.example
	// true
}
