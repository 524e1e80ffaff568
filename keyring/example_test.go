package keyring_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/keyring"
)

func Example() {
	dir, _ := os.MkdirTemp("", "keyward-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	keyPath := filepath.Join(dir, "crypto.key")
	if err := filekey.Generate(keyPath); err != nil {
		panic(err)
	}
	src, err := filekey.Open(keyPath)
	if err != nil {
		panic(err)
	}
	store, err := keyring.NewFileStore(filepath.Join(dir, "keyward-keys.json"))
	if err != nil {
		panic(err)
	}
	kr, err := keyring.New(ctx, "default", src, store)
	if err != nil {
		panic(err)
	}
	defer kr.Close()

	token, _ := kr.EncryptString(ctx, "123-45-6789")
	plain, err := kr.DecryptString(ctx, token)
	fmt.Println(plain, err)

	// Rotation: new data is encrypted under a new key, old data still reads.
	if _, err := kr.Rotate(ctx); err != nil {
		panic(err)
	}
	plain, err = kr.DecryptString(ctx, token)
	fmt.Println(plain, err)
	// Output:
	// 123-45-6789 <nil>
	// 123-45-6789 <nil>
}

func ExampleKeyring_EncryptText() {
	ctx := context.Background()
	src, _ := filekey.New(make([]byte, 32)) // a real key comes from filekey.Load
	kr, _ := keyring.New(ctx, "pii", src, keyring.NewMemoryStore())
	defer kr.Close()

	// Bind the value to its place: a copy in another row does not decrypt.
	token, _ := kr.EncryptText(ctx, "jane@example.com", []byte("users/42/email"))
	_, err := kr.DecryptText(ctx, token, []byte("users/43/email"))
	fmt.Println(errors.Is(err, keyring.ErrDecrypt))
	plain, _ := kr.DecryptText(ctx, token, []byte("users/42/email"))
	fmt.Println(plain)
	// Output:
	// true
	// jane@example.com
}
