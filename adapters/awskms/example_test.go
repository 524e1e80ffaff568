package awskms_test

import (
	"context"
	"fmt"
	"log"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyward/keyward/adapters/awskms"
	"github.com/keyward/keyward/cipher"
	"github.com/keyward/keyward/internal/awskmstest"
	"github.com/keyward/keyward/keyring"
)

func Example() {
	ctx := context.Background()

	// local-kms, served in-process, stands in for AWS KMS here. Against AWS,
	// make the client with config.LoadDefaultConfig and kms.NewFromConfig
	// (or call awskms.NewFromConfig).
	srv, err := awskmstest.Start("127.0.0.1:0", "")
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	client := srv.Client()
	key, err := client.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		log.Fatal(err)
	}
	_, err = client.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/keyward-example"), TargetKeyId: key.KeyMetadata.KeyId})
	if err != nil {
		log.Fatal(err)
	}

	src, err := awskms.New(ctx, client, "alias/keyward-example")
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
	fmt.Println(src.ID() == "awskms:"+*key.KeyMetadata.Arn)
	// Output:
	// true 123-45-6789
	// true
}

func ExampleEncryptionContext() {
	// The associated data a keyring gives for its data key 305419896: a
	// label, the keyring, the key ID, the purpose and the algorithm.
	aad := cipher.AppendAAD(nil, "keyward.dek/v1", "pii", "305419896", "data", cipher.AES256GCM.String())
	ec := awskms.EncryptionContext(aad)
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range ec {
			if !yield(k) {
				return
			}
		}
	}) {
		fmt.Printf("%s=%s\n", k, ec[k])
	}
	// Output:
	// keyward:aad=DmtleXdhcmQuZGVrL3YxA3BpaQkzMDU0MTk4OTYEZGF0YQtBRVMtMjU2LUdDTQ
	// keyward:algorithm=AES-256-GCM
	// keyward:key-id=305419896
	// keyward:key-purpose=data
	// keyward:keyring=pii
	// keyward:purpose=dek/v1
}
