package gcpkms_test

import (
	"context"
	"fmt"
	"log"
	"strings"

	kms "cloud.google.com/go/kms/apiv1"

	"github.com/keyward/keyward/adapters/gcpkms"
	"github.com/keyward/keyward/internal/gcpkmstest"
	"github.com/keyward/keyward/keyring"
)

func Example() {
	ctx := context.Background()

	// An in-process Cloud KMS stands in for Google's here. Against Cloud
	// KMS, call kms.NewKeyManagementClient(ctx) with no options: it uses
	// the Application Default Credentials.
	srv, err := gcpkmstest.Start("127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	name, err := srv.StartKey("projects/example/locations/global/keyRings/keyward", "pii")
	if err != nil {
		log.Fatal(err)
	}
	client, err := kms.NewKeyManagementClient(ctx, srv.ClientOptions()...)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	src, err := gcpkms.New(client, name)
	if err != nil {
		log.Fatal(err)
	}
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
	fmt.Println(strings.HasPrefix(token, "kw1."), ssn)
	fmt.Println(src.ID())
	// Output:
	// true 123-45-6789
	// gcpkms:projects/example/locations/global/keyRings/keyward/cryptoKeys/pii
}
