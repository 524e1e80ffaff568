package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/keyring"
)

// runAudit dispatches `keyward audit SUBCOMMAND`.
func runAudit(e *env, args []string) error {
	if len(args) == 1 && isHelp(args[0]) {
		return helpRequest{}
	}
	if len(args) == 0 || args[0] != "verify" {
		return usagef("the only audit subcommand is verify")
	}
	fs := newFlags(e, "audit verify")
	kf := addKeyFlags(fs, false)
	checkpoint := fs.String("checkpoint", "", "a checkpoint (`JSON`) the log must reach: detects a cut tail")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if err := kf.check(); err != nil {
		return err
	}
	if *kf.store == "" {
		return usagef("--store PATH is required: the audit key is derived from the keyring in it")
	}
	if fs.NArg() == 0 {
		return usagef("give the audit files, oldest first")
	}
	var opts []access.VerifyOption
	if *checkpoint != "" {
		cp, err := access.ParseCheckpoint([]byte(*checkpoint))
		if err != nil {
			return err
		}
		opts = append(opts, access.ExpectCheckpoint(cp))
	}
	var auditKey []byte
	derive := func(ctx context.Context, kr *keyring.Keyring) error {
		d, err := kr.DeriveKey(ctx, access.AuditKeyLabel)
		auditKey = d.Bytes()
		return err
	}
	if err := kf.withKeyring(false, derive); err != nil {
		return err
	}
	defer clear(auditKey)
	res, err := access.Verify(context.Background(), auditKey, fs.Args(), opts...)
	var ve *access.VerifyError
	if errors.As(err, &ve) {
		return errors.New(ve.String())
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, res.String())
	return nil
}
