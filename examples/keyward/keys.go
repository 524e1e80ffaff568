package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/cipher"
	"github.com/keyward/keyward/keyring"
)

func runKeygen(e *env, args []string) error {
	fs := newFlags(e, "keygen")
	out := fs.String("o", "crypto.key", "`path` of the new key file")
	force := fs.Bool("f", false, "replace an existing key file (data encrypted under it becomes unreadable)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *force {
		if err := removeForReplace(*out); err != nil {
			return err
		}
	}
	if err := filekey.Generate(*out); err != nil {
		if strings.Contains(err.Error(), "already exists") {
			return fmt.Errorf("%s already exists; use -f to replace it (data encrypted under the old key becomes unreadable)", *out)
		}
		return err
	}
	fmt.Fprintf(e.stderr, "wrote a new key to %s (mode 0600)\n", *out)
	return nil
}

// loadKey reads the key file of -k.
func loadKey(path string) ([]byte, error) { return filekey.Load(path) }

// keyFlags are the key-source flags of encrypt and decrypt.
type keyFlags struct {
	keyPath, aad, store, keyringName *string
}

func addKeyFlags(fs interface {
	String(name, value, usage string) *string
}) keyFlags {
	return keyFlags{
		keyPath:     fs.String("k", "", "`path` of the key file (crypto.key)"),
		aad:         fs.String("aad", "", "associated `text` the token is bound to (needed again to decrypt)"),
		store:       fs.String("store", "", "keyring store `file`: use versioned data keys wrapped by the key instead of the key itself"),
		keyringName: fs.String("keyring", "default", "keyring `name` in the store"),
	}
}

// withKeyring opens the keyring of the flags (--store, --keyring) over the
// file key and calls f with it.
func (f keyFlags) withKeyring(key []byte, use func(context.Context, *keyring.Keyring) error) error {
	ctx := context.Background()
	src, err := filekey.New(key)
	if err != nil {
		return err
	}
	store, err := keyring.NewFileStore(*f.store)
	if err != nil {
		return err
	}
	kr, err := keyring.New(ctx, *f.keyringName, src, store)
	if err != nil {
		return err
	}
	defer kr.Close()
	return use(ctx, kr)
}

func runEncrypt(e *env, args []string) error {
	fs := newFlags(e, "encrypt")
	kf := addKeyFlags(fs)
	km := addKMSFlags(fs)
	ks := addKeyServiceFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	r, err := pickRemote(km, ks)
	if err != nil {
		return err
	}
	if r != nil {
		return encryptKMS(e, fs, kf, r)
	}
	if *kf.keyPath == "" {
		return usagef("-k PATH is required (or --aws-kms KEY, --gcp-kms NAME or --key-service ADDR with --store PATH)")
	}
	pt, err := input(e, fs, "plaintext")
	if err != nil {
		return err
	}
	defer clear(pt)
	key, err := loadKey(*kf.keyPath)
	if err != nil {
		return err
	}
	defer clear(key)
	var tok string
	if *kf.store == "" {
		tok, err = cipher.EncryptData(string(pt), key, cipher.WithAAD([]byte(*kf.aad)))
	} else {
		err = kf.withKeyring(key, func(ctx context.Context, kr *keyring.Keyring) (err error) {
			tok, err = kr.EncryptText(ctx, string(pt), []byte(*kf.aad))
			return err
		})
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(e.stdout, tok)
	return err
}

func runDecrypt(e *env, args []string) error {
	fs := newFlags(e, "decrypt")
	kf := addKeyFlags(fs)
	km := addKMSFlags(fs)
	ks := addKeyServiceFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	r, err := pickRemote(km, ks)
	if err != nil {
		return err
	}
	if r != nil {
		return decryptKMS(e, fs, kf, r)
	}
	if *kf.keyPath == "" {
		return usagef("-k PATH is required (or --aws-kms KEY, --gcp-kms NAME or --key-service ADDR with --store PATH)")
	}
	in, err := input(e, fs, "token")
	if err != nil {
		return err
	}
	tok := strings.TrimSpace(string(in))
	h, err := cipher.ParseHeader(tok)
	if err != nil {
		return err
	}
	key, err := loadKey(*kf.keyPath)
	if err != nil {
		return err
	}
	defer clear(key)
	var pt string
	switch {
	case h.KeyID == 0:
		pt, err = cipher.DecryptData(tok, key, cipher.WithAAD([]byte(*kf.aad)))
	case *kf.store == "":
		return fmt.Errorf("the token was made by a keyring (key ID %d); pass --store with its keyring store", h.KeyID)
	default:
		err = kf.withKeyring(key, func(ctx context.Context, kr *keyring.Keyring) (err error) {
			pt, err = kr.DecryptText(ctx, tok, []byte(*kf.aad))
			return err
		})
	}
	if err != nil {
		return err
	}
	_, err = e.stdout.Write([]byte(pt))
	return err
}

// header is the JSON form inspect prints. ciphertext_bytes counts the
// ciphertext without its 16-byte tag (the plaintext length).
type header struct {
	Version         int    `json:"version"`
	Algorithm       string `json:"algorithm"`
	KeyID           uint32 `json:"key_id"`
	NonceBytes      int    `json:"nonce_bytes"`
	CiphertextBytes int    `json:"ciphertext_bytes"`
}

func runInspect(e *env, args []string) error {
	fs := newFlags(e, "inspect")
	if err := parse(fs, args); err != nil {
		return err
	}
	in, err := input(e, fs, "token")
	if err != nil {
		return err
	}
	t, err := cipher.ParseText(strings.TrimSpace(string(in)))
	if err != nil {
		return err
	}
	if t.Version != cipher.Version {
		return errors.New("unexpected version")
	}
	b, err := json.Marshal(header{
		Version: int(t.Version), Algorithm: t.Algorithm.String(), KeyID: t.KeyID,
		NonceBytes: len(t.Nonce), CiphertextBytes: len(t.Ciphertext) - cipher.TagSize,
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(e.stdout, string(b))
	return err
}
