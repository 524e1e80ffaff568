package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
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

// addAAD adds --aad, the associated data of encrypt and decrypt.
func addAAD(fs *flag.FlagSet) *string {
	return fs.String("aad", "", "associated `text` the token is bound to (needed again to decrypt)")
}

// keyOnly reports whether the flags name a key file without a store: the
// token is made with the key itself (key ID 0), not a keyring.
func (f keyFlags) keyOnly() bool { return *f.keyPath != "" && *f.store == "" }

func runEncrypt(e *env, args []string) error {
	fs := newFlags(e, "encrypt")
	kf := addKeyFlags(fs, true)
	aad := addAAD(fs)
	create := fs.Bool("create", false, "make the --store file and the keyring in it when they do not exist yet")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := kf.check(); err != nil {
		return err
	}
	if *create && *kf.store == "" {
		return usagef("--create makes a keyring store: give --store PATH")
	}
	pt, err := input(e, fs, "plaintext")
	if err != nil {
		return err
	}
	defer clear(pt)
	var tok string
	if kf.keyOnly() {
		key, err := filekey.Load(*kf.keyPath)
		if err != nil {
			return err
		}
		defer clear(key)
		tok, err = cipher.EncryptData(string(pt), key, cipher.WithAAD([]byte(*aad)))
		if err != nil {
			return err
		}
	} else {
		err = kf.withKeyring(*create, func(ctx context.Context, kr *keyring.Keyring) (err error) {
			tok, err = kr.EncryptText(ctx, string(pt), []byte(*aad))
			return err
		})
		if err != nil {
			return err
		}
	}
	_, err = fmt.Fprintln(e.stdout, tok)
	return err
}

func runDecrypt(e *env, args []string) error {
	fs := newFlags(e, "decrypt")
	kf := addKeyFlags(fs, true)
	aad := addAAD(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := kf.check(); err != nil {
		return err
	}
	in, err := input(e, fs, "token")
	if err != nil {
		return err
	}
	tok := strings.TrimSpace(string(in))
	h, err := cipher.ParseHeader(tok)
	if err != nil {
		return explainKeyring(err, "", "")
	}
	var pt string
	switch {
	case h.KeyID == 0 && kf.remote():
		return errors.New("the token was made with a key file (key ID 0), not a keyring; decrypt it with -k PATH")
	case h.KeyID == 0:
		key, err := filekey.Load(*kf.keyPath)
		if err != nil {
			return err
		}
		defer clear(key)
		if pt, err = cipher.DecryptData(tok, key, cipher.WithAAD([]byte(*aad))); err != nil {
			return explainKeyring(err, "", "")
		}
	case *kf.store == "":
		return fmt.Errorf("the token was made by a keyring (key ID %d); pass --store with its keyring store", h.KeyID)
	default:
		err = kf.withKeyring(false, func(ctx context.Context, kr *keyring.Keyring) (err error) {
			pt, err = kr.DecryptText(ctx, tok, []byte(*aad))
			return err
		})
		if err != nil {
			return err
		}
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
