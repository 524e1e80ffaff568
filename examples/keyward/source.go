package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"

	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/cipher"
	"github.com/keyward/keyward/keyring"
)

// sourceFlags are the key-source flags: -k PATH, a cloud KMS key, or, for
// the commands that take it, the key service.
type sourceFlags struct {
	keyPath *string
	kms     kmsFlags
	keySvc  *keyServiceFlags // nil for a command that takes no key service
}

func addSourceFlags(fs *flag.FlagSet, keyService bool) sourceFlags {
	s := sourceFlags{
		keyPath: fs.String("k", "", "`path` of the key file (crypto.key) wrapping the keyring's data keys"),
		kms:     addKMSFlags(fs),
	}
	if keyService {
		ks := addKeyServiceFlags(fs)
		s.keySvc = &ks
	}
	return s
}

// keyService reports whether --key-service was given.
func (s sourceFlags) keyService() bool { return s.keySvc != nil && s.keySvc.set() }

// given reports whether any key source was given.
func (s sourceFlags) given() bool { return *s.keyPath != "" || s.kms.set() || s.keyService() }

// remote reports whether the key source is a KMS key or the key service.
func (s sourceFlags) remote() bool { return s.kms.set() || s.keyService() }

// check reports a missing key source and contradictory flags as usage
// errors.
func (s sourceFlags) check() error {
	switch {
	case s.kms.set() && s.keyService():
		return usagef("give a KMS key (--aws-kms, --gcp-kms) or --key-service, not both")
	case *s.keyPath != "" && s.remote():
		return usagef("give -k or a remote key source (--aws-kms, --gcp-kms, --key-service), not both")
	case !s.given() && s.keySvc != nil:
		return usagef("a key source is required: -k PATH, --aws-kms KEY, --gcp-kms NAME or --key-service ADDR")
	case !s.given():
		return usagef("a key source is required: -k PATH, --aws-kms KEY or --gcp-kms NAME")
	}
	if err := s.kms.checkAlone(); err != nil {
		return err
	}
	if s.keySvc != nil {
		return s.keySvc.checkTLS()
	}
	return nil
}

// source returns the key source of the flags and a function that releases
// it. A key file's bytes are zeroed once its AES key schedule is built.
func (s sourceFlags) source(ctx context.Context) (keyring.KeySource, func(), error) {
	switch {
	case s.keyService():
		return s.keySvc.source(ctx)
	case s.kms.set():
		return s.kms.source(ctx)
	}
	src, err := filekey.Open(*s.keyPath)
	if err != nil {
		return nil, nil, err
	}
	return src, func() {}, nil
}

// keyFlags are the flags of encrypt, decrypt and audit verify: a key
// source and, optionally for a key file, a keyring store file.
type keyFlags struct {
	sourceFlags
	store, keyringName *string
}

func addKeyFlags(fs *flag.FlagSet, keyService bool) keyFlags {
	return keyFlags{
		sourceFlags: addSourceFlags(fs, keyService),
		store:       fs.String("store", "", "keyring store `file` (keys.json) of versioned data keys the key source wraps"),
		keyringName: fs.String("keyring", "default", "keyring `name` in the store"),
	}
}

// check reports missing and contradictory flags as usage errors; a remote
// key source needs a store.
func (f keyFlags) check() error {
	if err := f.sourceFlags.check(); err != nil {
		return err
	}
	if f.remote() && *f.store == "" {
		return usagef("a KMS key or the key service needs --store PATH: the keyring store holds the data keys it wraps")
	}
	return nil
}

// withKeyring opens the keyring of the flags (--store, --keyring) and
// calls use with it. Only with create does it make a missing store or
// keyring; otherwise a missing one is an error and nothing is written.
func (f keyFlags) withKeyring(create bool, use func(context.Context, *keyring.Keyring) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), kmsTimeout)
	defer cancel()
	store, err := openFileStore(*f.store, create)
	if err != nil {
		return err
	}
	src, release, err := f.source(ctx)
	if err != nil {
		return err
	}
	defer release()
	var opts []keyring.Option
	if !create {
		opts = append(opts, keyring.WithoutCreate())
	}
	kr, err := keyring.New(ctx, *f.keyringName, src, store, opts...)
	if err != nil {
		return explainKeyring(err, *f.store, *f.keyringName)
	}
	defer kr.Close()
	return explainKeyring(use(ctx, kr), *f.store, *f.keyringName)
}

// openFileStore opens the keyring store file path. Unless create, the file
// must exist: a read-only command never makes one.
func openFileStore(path string, create bool) (keyring.Store, error) {
	if !create {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("keyring store %s does not exist: check --store (only encrypt --create makes a store)", path)
		} else if err != nil {
			return nil, err
		}
	}
	return keyring.NewFileStore(path)
}

// errAuth is the one message of every authentication failure, with a key
// file or a keyring, so the user reads the causes in one place.
var errAuth = errors.New("the token does not authenticate: the wrong key file or key source, the wrong --aad, or an edited or truncated token")

// explainKeyring rewords the keyring errors a user can act on: an
// authentication failure, a missing keyring, and a store made with
// another key-encryption key (a lost or replaced key file).
func explainKeyring(err error, store, name string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, keyring.ErrDecrypt), errors.Is(err, cipher.ErrDecrypt):
		return errAuth
	case errors.Is(err, cipher.ErrMalformedToken):
		return fmt.Errorf("%w (an edited or truncated token, or not a keyward token)", err)
	case errors.Is(err, keyring.ErrKeyringNotFound):
		return fmt.Errorf("keyring %q is not in %s: check --store and --keyring (only encrypt --create makes a keyring)", name, store)
	case errors.Is(err, keyring.ErrWrongKEK), errors.Is(err, keyring.ErrStaleKEK):
		startOver := "deleting " + store
		if isDB, _ := databaseDSN(store); isDB {
			store, startOver = "the database", "dropping its keyring tables (keyward_keysets, keyward_keys, keyward_key_counts)"
		}
		return fmt.Errorf("the keyring in %s was made with another key-encryption key: give the key file or KMS key it was made with "+
			"(restore the key file from its backup), or start over by %s (what was encrypted under it becomes unreadable)", store, startOver)
	}
	return err
}
