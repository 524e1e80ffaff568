package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// command is one subcommand.
type command struct {
	name, usage, summary string
	run                  func(env *env, args []string) error
}

// env is what a command reads and writes, so tests can run commands
// in-process as well as through the built binary.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

var commands = []command{
	{"keygen", "keygen [-o PATH] [-f]", "write a new random 32-byte key, Base64, mode 0600", runKeygen},
	{"encrypt", "encrypt (-k PATH [--store PATH] | (" + kmsUsage + " | " + keyServiceUsage + ") --store PATH) [--keyring NAME] [--aad TEXT] [PLAINTEXT]", "encrypt PLAINTEXT (or stdin, byte for byte) to a text token", runEncrypt},
	{"decrypt", "decrypt (-k PATH [--store PATH] | (" + kmsUsage + " | " + keyServiceUsage + ") --store PATH) [--keyring NAME] [--aad TEXT] [TOKEN]", "decrypt TOKEN (or stdin) and write the plaintext byte for byte", runDecrypt},
	{"inspect", "inspect [TOKEN]", "print a token's header as JSON, without any key", runInspect},
	{"analyze", "analyze [--json] [--config FILE] FILE...", "find anomalies in usage events (JSON Lines or span exports; - for stdin)", runAnalyze},
	{"serve", serveUsage, "run the key service: wrap and unwrap data keys for authenticated services", runServe},
	{"certs", certsUsage, "make a test CA and server and client certificates for the key service", runCerts},
	{"audit", "audit verify (-k PATH | " + kmsUsage + ") --store PATH [--keyring NAME] [--checkpoint JSON] FILE...", "verify hash-chained audit files (exit 1 names the first bad record)", runAudit},
	{"keys", keysUsage, "list, rotate, enable, disable, destroy and rewrap data keys; values per key (inventory)", runKeys},
	{"reencrypt", "reencrypt (-k PATH | " + kmsUsage + " | " + keyServiceUsage + ") --store S [--db D] [--table T]... [--workers N] [--batch N] [--dry-run] [--rate ROWS/S]", "re-encrypt the registered columns under the primary keys, as a job processes share; Ctrl-C stops after a batch", runReencrypt},
}

// usageError marks errors that exit with status 2.
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

func main() {
	os.Exit(runMain(&env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:]))
}

// runMain runs the command line args and returns the exit status.
func runMain(e *env, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(e.stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(e, args[1:])
		var ue usageError
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, &ue):
			fmt.Fprintf(e.stderr, "keyward %s: %s\nusage: keyward %s\n", c.name, ue.msg, c.usage)
			return 2
		default:
			fmt.Fprintf(e.stderr, "keyward %s: %s\n", c.name, oneLine(err.Error()))
			return 1
		}
	}
	fmt.Fprintf(e.stderr, "keyward: unknown command %q\n", args[0])
	printUsage(e.stderr)
	return 2
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: keyward COMMAND [ARGS]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// newFlags returns a flag set that reports errors as usage errors.
func newFlags(e *env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

// parse parses args, turning flag errors into usage errors.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	return nil
}

// input returns the single positional argument or, without one, stdin.
func input(e *env, fs *flag.FlagSet, what string) ([]byte, error) {
	switch fs.NArg() {
	case 0:
		b, err := io.ReadAll(io.LimitReader(e.stdin, 64<<20+1))
		if err != nil {
			return nil, err
		}
		if len(b) > 64<<20 {
			return nil, errors.New("input larger than 64 MiB")
		}
		return b, nil
	case 1:
		return []byte(fs.Arg(0)), nil
	}
	return nil, usagef("give at most one %s (quote it), or pipe it on stdin", what)
}
