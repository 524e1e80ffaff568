package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/keyward/keyward/adapters/gormcrypt"
	"github.com/keyward/keyward/keyring"
)

// keysUsage lists the key subcommands.
const keysUsage = "keys list|inventory [--json] | rotate | enable ID | disable ID | destroy ID [--force] | rewrap --to KEY-SOURCE-FLAGS (with --store S [--db D] [--keyring NAME] and -k PATH or a KMS key)"

// subUsage are the usage lines of the subcommands, by flag set name.
var subUsage = map[string]string{
	"keys list":      "keys list [--json] --store S [--db D] [--keyring NAME]",
	"keys inventory": "keys inventory [--json] --store S [--db D]",
	"keys rotate":    "keys rotate KEY-SOURCE --store S [--db D] [--keyring NAME]",
	"keys enable":    "keys enable ID KEY-SOURCE --store S [--db D] [--keyring NAME]",
	"keys disable":   "keys disable ID KEY-SOURCE --store S [--db D] [--keyring NAME]",
	"keys destroy":   "keys destroy ID [--force] KEY-SOURCE --store S [--db D] [--keyring NAME]",
	"keys rewrap":    "keys rewrap KEY-SOURCE --store S [--db D] [--keyring NAME] --to NEW-KEY-SOURCE",
}

// runKeys dispatches `keyward keys SUBCOMMAND`.
func runKeys(e *env, args []string) error {
	if len(args) == 1 && isHelp(args[0]) {
		return helpRequest{}
	}
	if len(args) == 0 {
		return usagef("give a subcommand: list, inventory, rotate, enable, disable, destroy, rewrap")
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "list":
		return keysList(e, args)
	case "inventory":
		return keysInventory(e, args)
	case "rotate":
		return keysChange(e, "rotate", args, false)
	case "enable", "disable", "destroy":
		return keysChange(e, sub, args, true)
	case "rewrap":
		return keysRewrap(e, args)
	}
	return usagef("unknown keys subcommand %q", sub)
}

// keyInfo is a key as keys list shows it.
type keyInfo struct {
	ID          uint32    `json:"id"`
	Purpose     string    `json:"purpose"`
	State       string    `json:"state"`
	Algorithm   string    `json:"algorithm"`
	Created     time.Time `json:"created"`
	Disabled    *string   `json:"disabled"`
	Encryptions *uint64   `json:"encryptions"`
	Values      *int64    `json:"values"`
}

// openReadOnly parses the flags of the read-only key command name (the
// store flags, --keyring when withKeyring, and --json) and opens the store
// read-only.
func openReadOnly(ctx context.Context, e *env, name string, args []string, withKeyring bool) (fleetFlags, *fleet, bool, error) {
	fs := newFlags(e, name)
	ff := addFleetFlags(fs, false, withKeyring)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return ff, nil, false, err
	}
	if fs.NArg() != 0 {
		return ff, nil, false, usagef("unexpected argument %q", fs.Arg(0))
	}
	fl, err := ff.open(ctx, true)
	return ff, fl, *asJSON, err
}

// keysList prints the keys of a keyring with their use. It only reads.
func keysList(e *env, args []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), fleetTimeout)
	defer cancel()
	ff, fl, asJSON, err := openReadOnly(ctx, e, "keys list", args, true)
	if err != nil {
		return err
	}
	defer fl.close()
	ks, err := fl.store.Load(ctx, *ff.keyringName)
	if err != nil {
		return err
	}
	var counts map[uint32]uint64
	if cs, ok := fl.store.(keyring.CountStore); ok {
		counts, _ = cs.AddEncryptions(ctx, ks.Name, nil) // an older store without counts shows none
	}
	var values map[uint32]int64
	if fl.db != nil {
		inv, err := gormcrypt.Inventory(ctx, fl.db)
		if err != nil && !errors.Is(err, gormcrypt.ErrNoRegistry) {
			return err
		}
		if err == nil {
			values = map[uint32]int64{}
			for _, h := range inv {
				if h.Keyring == ks.Name && h.KeyID != 0 {
					values[h.KeyID] += h.Values
				}
			}
		}
	}
	infos := make([]keyInfo, 0, len(ks.Keys))
	for _, k := range ks.Keys {
		in := keyInfo{ID: k.ID, Purpose: string(k.Purpose), State: string(k.State), Algorithm: k.Algorithm.String(), Created: k.Created}
		if d := disabledAt(k); !d.IsZero() {
			s := d.UTC().Format(time.RFC3339)
			in.Disabled = &s
		}
		if counts != nil {
			n := counts[k.ID]
			in.Encryptions = &n
		}
		if values != nil && k.Purpose == keyring.PurposeData {
			n := values[k.ID]
			in.Values = &n
		}
		infos = append(infos, in)
	}
	if asJSON {
		return writeJSON(e, infos)
	}
	tw := tabwriter.NewWriter(e.stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPURPOSE\tSTATE\tALGORITHM\tCREATED\tDISABLED\tENCRYPTIONS\tVALUES")
	for _, in := range infos {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", in.ID, in.Purpose, in.State, in.Algorithm,
			in.Created.UTC().Format(time.RFC3339), orDash(in.Disabled), orDash(in.Encryptions), orDash(in.Values))
	}
	return tw.Flush()
}

func orDash[T any](p *T) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprint(*p)
}

func writeJSON(e *env, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(e.stdout, string(b))
	return err
}

// holding is a row of keys inventory.
type holding struct {
	Table   string `json:"table"`
	Column  string `json:"column"`
	Keyring string `json:"keyring"`
	KeyID   uint32 `json:"key_id"`
	State   string `json:"state"`
	Values  int64  `json:"values"`
}

// keysInventory prints the values per key ID per table.column. It only
// reads.
func keysInventory(e *env, args []string) error {
	ctx := context.Background()
	_, fl, asJSON, err := openReadOnly(ctx, e, "keys inventory", args, false)
	if err != nil {
		return err
	}
	defer fl.close()
	if fl.db == nil {
		return usagef("the inventory reads the column registry: give --db (or a database --store)")
	}
	inv, err := gormcrypt.Inventory(ctx, fl.db)
	if err != nil {
		return err
	}
	states := map[string]map[uint32]string{}
	out := make([]holding, 0, len(inv))
	for _, h := range inv {
		if states[h.Keyring] == nil {
			states[h.Keyring] = map[uint32]string{}
			if ks, err := fl.store.Load(ctx, h.Keyring); err == nil {
				for _, k := range ks.Keys {
					states[h.Keyring][k.ID] = string(k.State)
				}
			}
		}
		st := states[h.Keyring][h.KeyID]
		switch {
		case h.KeyID == 0:
			st = "not a keyring token"
		case st == "":
			st = "unknown key"
		}
		out = append(out, holding{h.Table, h.Column, h.Keyring, h.KeyID, st, h.Values})
	}
	if asJSON {
		return writeJSON(e, out)
	}
	tw := tabwriter.NewWriter(e.stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE.COLUMN\tKEYRING\tKEY ID\tSTATE\tVALUES")
	for _, h := range out {
		fmt.Fprintf(tw, "%s.%s\t%s\t%d\t%s\t%d\n", h.Table, h.Column, h.Keyring, h.KeyID, h.State, h.Values)
	}
	return tw.Flush()
}

// keysChange is rotate, enable ID, disable ID and destroy ID. destroy is
// refused while the inventory finds values under the key, unless --force.
func keysChange(e *env, what string, args []string, needID bool) error {
	fs := newFlags(e, "keys "+what)
	ff := addFleetFlags(fs, true, true)
	force := new(bool)
	if what == "destroy" {
		force = fs.Bool("force", false, "destroy even when stored values still use the key (they become unreadable for good); audited with their count")
	}
	pos, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	id, err := keyArg(pos, needID)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), fleetTimeout)
	defer cancel()
	fl, err := ff.open(ctx, false)
	if err != nil {
		return err
	}
	defer fl.close()
	var usage *gormcrypt.Usage
	var opts []keyring.Option
	if what == "destroy" {
		if fl.db == nil && !*force {
			return errors.New("no column registry to check whether values still use the key: give --db (or a database --store), or --force")
		}
		if fl.db != nil {
			usage = gormcrypt.NewUsage(fl.db)
		}
		opts = destroyOptions(usage, *force)
	}
	kr, release, err := ff.keyringOf(ctx, fl, *ff.keyringName, opts...)
	if err != nil {
		return err
	}
	defer release()
	switch what {
	case "rotate":
		old := kr.Primary()
		n, err := kr.Rotate(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "rotated keyring %s: new primary key ID %d (key ID %d still decrypts; run keyward reencrypt)\n", kr.Name(), n, old)
		return nil
	case "destroy":
		n, err := destroy(ctx, kr, id, usage, *force)
		if err != nil {
			return err
		}
		if *force && n > 0 {
			fmt.Fprintf(e.stdout, "destroyed key ID %d of keyring %s by force: %d stored values can no longer be read\n", id, kr.Name(), n)
			return nil
		}
		fmt.Fprintf(e.stdout, "destroyed key ID %d of keyring %s\n", id, kr.Name())
		return nil
	case "enable":
		err = kr.Enable(ctx, id)
	case "disable":
		err = kr.Disable(ctx, id)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "key ID %d of keyring %s: %sd\n", id, kr.Name(), what)
	return nil
}

// parseWithArgs parses flags given before or after the positional
// arguments (keys disable ID -k PATH) and returns the positional ones.
func parseWithArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parse(fs, args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// keyArg parses the one positional key ID.
func keyArg(pos []string, need bool) (uint32, error) {
	if !need {
		if len(pos) != 0 {
			return 0, usagef("unexpected argument %q", pos[0])
		}
		return 0, nil
	}
	if len(pos) != 1 {
		return 0, usagef("give one key ID (see keyward keys list)")
	}
	n, err := strconv.ParseUint(pos[0], 10, 32)
	if err != nil || n == 0 {
		return 0, usagef("key ID %q is not a number from 1 to 4294967295", pos[0])
	}
	return uint32(n), nil
}

// keysRewrap re-wraps every data key with the key source given after --to.
func keysRewrap(e *env, args []string) error {
	i := slices.Index(args, "--to")
	if i < 0 {
		return usagef("give the new key source after --to: --to -k PATH, or --to --aws-kms KEY, or --to --gcp-kms NAME")
	}
	fs := newFlags(e, "keys rewrap")
	ff := addFleetFlags(fs, true, true)
	if err := parse(fs, args[:i]); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	tfs := newFlags(e, "keys rewrap --to")
	to := addSourceFlags(tfs, true)
	if err := parse(tfs, args[i+1:]); err != nil {
		return err
	}
	if tfs.NArg() != 0 {
		return usagef("after --to give only the new key source's flags")
	}
	if err := ff.check(); err != nil {
		return err
	}
	if err := to.check(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), fleetTimeout)
	defer cancel()
	fl, err := ff.open(ctx, false)
	if err != nil {
		return err
	}
	defer fl.close()
	old, releaseOld, err := ff.source(ctx)
	if err != nil {
		return err
	}
	defer releaseOld()
	newSrc, releaseNew, err := to.source(ctx)
	if err != nil {
		return err
	}
	defer releaseNew()
	if old.ID() == newSrc.ID() {
		return usagef("--to names the current key source (%s)", old.ID())
	}
	kr, err := keyring.New(ctx, *ff.keyringName, newSrc, fl.store, keyring.WithoutCreate(), keyring.WithPreviousKeySources(old))
	if err != nil {
		return err
	}
	defer kr.Close()
	n, err := kr.Rewrap(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "re-wrapped %d data keys of keyring %s with %s\n", n, kr.Name(), newSrc.ID())
	return nil
}
