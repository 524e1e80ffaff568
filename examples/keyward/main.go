package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
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
	{"encrypt", "encrypt (-k PATH [--store PATH] | (" + kmsUsage + " | " + keyServiceUsage + ") --store PATH) [--create] [--keyring NAME] [--aad TEXT] [PLAINTEXT]", "encrypt PLAINTEXT (or stdin, byte for byte) to a text token; --create makes a new store", runEncrypt},
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

// configError marks a configuration the tool cannot work with, such as no
// AWS region or no credentials: the environment needs fixing, not the key
// source.
type configError struct{ err error }

func (c configError) Error() string { return "configuration error: " + c.err.Error() }
func (c configError) Unwrap() error { return c.err }

// helpRequest is the error parse returns for -h: runMain prints the
// command's usage and the flags of fs (none when fs is nil).
type helpRequest struct{ fs *flag.FlagSet }

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

func (helpRequest) Error() string        { return "help requested" }
func (helpRequest) Is(target error) bool { return target == flag.ErrHelp }

func main() {
	os.Exit(runMain(&env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:]))
}

// runMain runs the command line args and returns the exit status.
func runMain(e *env, args []string) int {
	if len(args) == 1 && (args[0] == "--version" || args[0] == "-version" || args[0] == "version") {
		fmt.Fprintln(e.stdout, version())
		return 0
	}
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
		var help helpRequest
		switch {
		case err == nil:
			return 0
		case errors.As(err, &help):
			usage := c.usage
			if help.fs != nil && subUsage[help.fs.Name()] != "" {
				usage = subUsage[help.fs.Name()]
			}
			fmt.Fprintf(e.stdout, "usage: keyward %s\n\n%s\n", usage, c.summary)
			if help.fs != nil {
				fmt.Fprintf(e.stdout, "\nflags of %s:\n", help.fs.Name())
				help.fs.SetOutput(e.stdout)
				help.fs.PrintDefaults()
			}
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

// version is the module version and VCS revision the binary was built
// from, as the Go toolchain recorded them.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "keyward (no build information)"
	}
	v := "keyward " + bi.Main.Version
	var rev, when string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev != "" {
		v += " revision " + rev
		if when != "" {
			v += " (" + when + ")"
		}
		if modified {
			v += " with local changes"
		}
	}
	return v + ", " + bi.GoVersion
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: keyward COMMAND [ARGS]   (keyward COMMAND -h lists its flags; keyward --version)\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// newFlags returns a flag set that prints nothing itself: runMain prints
// a usage error once, and -h lists the flags.
func newFlags(_ *env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parse parses args, turning flag errors into usage errors and -h into a
// helpRequest.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return helpRequest{fs}
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
