package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/keyring"
)

func main() {
	dir := flag.String("dir", ".", "directory for crypto.key and keyward-keys.json")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer, dir string) error {
	keyPath := filepath.Join(dir, "crypto.key")
	switch _, err := os.Stat(keyPath); {
	case errors.Is(err, fs.ErrNotExist):
		if err := filekey.Generate(keyPath); err != nil {
			return err
		}
		fmt.Fprintf(out, "created %s (mode 0600): keep it secret, keep it safe\n", keyPath)
	case err != nil:
		return err
	default:
		fmt.Fprintf(out, "using %s\n", keyPath)
	}
	src, err := filekey.Open(keyPath)
	if err != nil {
		return err
	}
	store, err := keyring.NewFileStore(filepath.Join(dir, "keyward-keys.json"))
	if err != nil {
		return err
	}
	kr, err := keyring.New(ctx, "default", src, store)
	if err != nil {
		return err
	}
	defer kr.Close()
	fmt.Fprintf(out, "keyring %q, primary key ID %d, KEK %s\n\n", kr.Name(), kr.Primary(), src.ID())

	records := []struct{ field, value string }{
		{"patients/1/ssn", "123-45-6789"},
		{"patients/1/diagnosis", "hypertension"},
		{"payments/7/card", "4111 1111 1111 1111"},
	}
	tokens := make([]string, len(records))
	for i, r := range records {
		// The associated data binds each token to its place.
		tok, err := kr.EncryptText(ctx, r.value, []byte(r.field))
		if err != nil {
			return err
		}
		tokens[i] = tok
		fmt.Fprintf(out, "stored   %-22s %s\n", r.field, tok)
	}
	fmt.Fprintln(out)
	for i, r := range records {
		plain, err := kr.DecryptText(ctx, tokens[i], []byte(r.field))
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "read     %-22s %s\n", r.field, plain)
	}

	fmt.Fprintln(out)
	tampered := []byte(tokens[0])
	tampered[len(tampered)-5] ^= 1 // one character of the ciphertext changed
	_, err = kr.DecryptText(ctx, string(tampered), []byte(records[0].field))
	fmt.Fprintf(out, "tampered token:          refused (%v)\n", err)
	if !errors.Is(err, keyring.ErrDecrypt) && !errors.Is(err, keyring.ErrMalformedToken) {
		return fmt.Errorf("a tampered token was not refused: %v", err)
	}
	_, err = kr.DecryptText(ctx, tokens[0], []byte("patients/2/ssn"))
	fmt.Fprintf(out, "token moved to another row: refused (%v)\n", err)
	if !errors.Is(err, keyring.ErrDecrypt) {
		return fmt.Errorf("a moved token was not refused: %v", err)
	}
	return nil
}
