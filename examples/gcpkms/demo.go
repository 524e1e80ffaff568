package main

import (
	"context"
	"fmt"
	"io"

	"github.com/keyward/keyward/keyring"
)

// callCounts reports how many Encrypt and Decrypt calls reached the KMS so
// far.
type callCounts func() (encrypts, decrypts int64)

// demo opens the keyring name in the file store at storePath over src and
// shows what it costs in KMS calls (counted by calls) to open it, to
// encrypt and decrypt two values and then a thousand more.
func demo(ctx context.Context, out io.Writer, src keyring.KeySource, storePath, name, kmsName string, calls callCounts) error {
	store, err := keyring.NewFileStore(storePath)
	if err != nil {
		return err
	}
	kr, err := keyring.New(ctx, name, src, store)
	if err != nil {
		return err
	}
	defer kr.Close()
	e, d := calls()
	fmt.Fprintf(out, "keyring %q in %s, primary key ID %d, KEK %s\n", kr.Name(), storePath, kr.Primary(), src.ID())
	fmt.Fprintf(out, "opening it cost %d Encrypt and %d Decrypt calls\n\n", e, d)

	for i, v := range []string{"123-45-6789", "4111 1111 1111 1111"} {
		aad := fmt.Appendf(nil, "customers/%d", i+1)
		tok, err := kr.EncryptText(ctx, v, aad)
		if err != nil {
			return err
		}
		back, err := kr.DecryptText(ctx, tok, aad)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s\n  token %s\n  read back %q\n", aad, tok, back)
	}

	e0, d0 := calls()
	for i := range 1000 {
		aad := fmt.Appendf(nil, "orders/%d", i)
		tok, err := kr.Encrypt(ctx, []byte("sensitive value"), aad)
		if err != nil {
			return err
		}
		if _, err := kr.Decrypt(ctx, tok, aad); err != nil {
			return err
		}
	}
	e1, d1 := calls()
	fmt.Fprintf(out, "\n1000 more values encrypted and decrypted: %d Encrypt and %d Decrypt calls to %s\n", e1-e0, d1-d0, kmsName)
	return nil
}
