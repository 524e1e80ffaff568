package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/adapters/keyservice"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/telemetry"
)

// Names of what `keyward serve --audit DIR` keeps in DIR besides the audit
// files: the keyring store whose derive root gives the audit key.
const (
	auditStoreFile = "audit-keyring.json"
	auditKeyring   = "audit"
)

// serveUsage is the usage line of serve.
const serveUsage = "serve [--listen ADDR] (-k PATH [--previous-key PATH]... | " + kmsUsage + ") " +
	"(--tls-cert C --tls-key K --client-ca CA | --insecure-loopback) --policy FILE [--audit DIR] [--events FILE] [--rate N --burst N] [--shutdown-timeout D]"

// runServe is `keyward serve`: the key service over the KEK of -k or a
// cloud KMS key, until SIGINT or SIGTERM.
func runServe(e *env, args []string) error {
	fs := newFlags(e, "serve")
	listen := fs.String("listen", "127.0.0.1:7443", "`address` to listen on (host:port; port 0 picks a free one)")
	keyPath := fs.String("k", "", "`path` of the key file (crypto.key) whose key the service guards")
	var previous []string
	fs.Func("previous-key", "`path` of an earlier key file, to unwrap and rewrap data keys wrapped under it (repeatable)", func(p string) error {
		previous = append(previous, p)
		return nil
	})
	km := addKMSFlags(fs)
	cert := fs.String("tls-cert", "", "the server's certificate chain, PEM `file`")
	key := fs.String("tls-key", "", "the server's private key, PEM `file`")
	clientCA := fs.String("client-ca", "", "PEM `file` of the CA(s) that issue client certificates")
	insecure := fs.Bool("insecure-loopback", false, "serve plain gRPC without TLS on a loopback address, for local development ONLY")
	policyPath := fs.String("policy", "", "access policy `file` (JSON): which principal may wrap (encrypt), unwrap (decrypt) or rewrap for which keyring; everything else is denied")
	auditDir := fs.String("audit", "", "`directory` of the hash-chained audit log (verify with `keyward audit verify`); without it audit records go to stderr")
	eventsPath := fs.String("events", "", "JSON Lines `file` of usage events, for `keyward analyze`")
	rate := fs.Float64("rate", keyservice.DefaultRate, "per-principal rate limit, data keys per `second`")
	burst := fs.Int("burst", keyservice.DefaultBurst, "per-principal burst: data keys at once")
	grace := fs.Duration("shutdown-timeout", 30*time.Second, "on SIGINT or SIGTERM, how long calls in flight may take to finish")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case *policyPath == "":
		return usagef("--policy FILE is required: the service denies everything no policy grants")
	case *keyPath == "" && !km.set():
		return usagef("give the key the service guards: -k PATH, --aws-kms KEY or --gcp-kms NAME")
	case *keyPath != "" && km.set():
		return usagef("give -k or a KMS key (--aws-kms, --gcp-kms), not both")
	case len(previous) > 0 && *keyPath == "":
		return usagef("--previous-key goes with -k (a KMS keeps its own key versions)")
	case *insecure && (*cert != "" || *key != "" || *clientCA != ""):
		return usagef("--insecure-loopback serves without TLS: leave out --tls-cert, --tls-key and --client-ca")
	case !*insecure && (*cert == "" || *key == "" || *clientCA == ""):
		return usagef("mutual TLS needs --tls-cert, --tls-key and --client-ca (or, for local development on 127.0.0.1 only, --insecure-loopback)")
	}
	if km.set() {
		if err := km.checkAlone(); err != nil {
			return err
		}
	}
	logger := slog.New(slog.NewTextHandler(e.stderr, nil))
	policy, err := access.LoadPolicyFile(*policyPath)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	src, prev, release, err := serveSources(ctx, *keyPath, previous, km)
	if err != nil {
		return err
	}
	defer release()

	opts := []keyservice.ServerOption{keyservice.WithLogger(logger), keyservice.WithRateLimit(*rate, *burst)}
	if len(prev) > 0 {
		opts = append(opts, keyservice.WithPreviousKeySources(prev...))
	}
	if *insecure {
		opts = append(opts, keyservice.WithServerInsecureLoopback())
		fmt.Fprintln(e.stderr, "keyward serve: WARNING: --insecure-loopback: no TLS, no client identity; every caller is "+keyservice.InsecurePrincipal+". For local development only.")
	} else {
		opts = append(opts, keyservice.WithServerTLSFiles(*cert, *key, *clientCA))
	}
	auditorOpts := []access.AuditorOption{access.WithLogger(logger)}
	if *auditDir != "" {
		log, err := openAuditLog(ctx, *auditDir, src, prev, logger)
		if err != nil {
			return err
		}
		defer func() {
			if err := log.Close(); err != nil {
				logger.Error("keyward serve: closing the audit log", slog.String("error", err.Error()))
			}
		}()
		auditorOpts = []access.AuditorOption{access.WithSink(log)}
	}
	auditor, err := access.NewAuditor(auditorOpts...)
	if err != nil {
		return err
	}
	opts = append(opts, keyservice.WithAuditor(auditor))
	if *eventsPath != "" {
		sink, err := telemetry.NewFileSink(*eventsPath)
		if err != nil {
			return err
		}
		defer sink.Close()
		opts = append(opts, keyservice.WithTelemetry(telemetry.WithSinks(sink)))
	}
	srv, err := keyservice.NewServer(src, policy, opts...)
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	mode := "mutual TLS"
	if *insecure {
		mode = "INSECURE plain gRPC"
	}
	fmt.Fprintf(e.stderr, "keyward serve: listening on %s (%s); SIGHUP reloads --policy, SIGINT or SIGTERM stops\n", lis.Addr(), mode)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case err := <-served:
			return err
		case <-hup:
			p, err := access.LoadPolicyFile(*policyPath)
			if err != nil {
				logger.Error("keyward serve: policy not reloaded", slog.String("error", err.Error()))
				continue
			}
			_ = srv.SetPolicy(p)
			logger.Info("keyward serve: policy reloaded", slog.String("file", *policyPath))
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), *grace)
			err := srv.Shutdown(sctx)
			cancel()
			if serr := <-served; serr != nil && err == nil {
				err = serr
			}
			return err
		}
	}
}

// serveSources loads the key the service guards, once: a key file (and
// earlier ones) or a cloud KMS key. A key file's bytes are zeroed as soon
// as the AES key schedule is built (filekey.Open); what stays in memory is
// that schedule, dropped on exit.
func serveSources(ctx context.Context, keyPath string, previous []string, km kmsFlags) (keyring.KeySource, []keyring.KeySource, func(), error) {
	if keyPath == "" {
		src, release, err := km.source(ctx)
		return src, nil, release, err
	}
	src, err := filekey.Open(keyPath)
	if err != nil {
		return nil, nil, nil, err
	}
	var prev []keyring.KeySource
	for _, p := range previous {
		s, err := filekey.Open(p)
		if err != nil {
			return nil, nil, nil, err
		}
		prev = append(prev, s)
	}
	return src, prev, func() {}, nil
}

// openAuditLog opens the hash-chained audit log in dir. Its audit key is
// derived from the keyring "audit" in dir/audit-keyring.json, whose derive
// root the service's KEK wraps: whoever holds the KEK can verify the log
// (`keyward audit verify -k KEY --store DIR/audit-keyring.json --keyring
// audit DIR/audit-*.jsonl`); whoever can only edit the files cannot forge it.
func openAuditLog(ctx context.Context, dir string, src keyring.KeySource, prev []keyring.KeySource, logger *slog.Logger) (*access.AuditLog, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	store, err := keyring.NewFileStore(filepath.Join(dir, auditStoreFile))
	if err != nil {
		return nil, err
	}
	var opts []keyring.Option
	if len(prev) > 0 {
		opts = append(opts, keyring.WithPreviousKeySources(prev...))
	}
	kr, err := keyring.New(ctx, auditKeyring, src, store, opts...)
	if err != nil {
		return nil, fmt.Errorf("audit keyring: %w", err)
	}
	d, err := kr.DeriveKey(ctx, access.AuditKeyLabel)
	kr.Close()
	if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	key := d.Bytes()
	defer clear(key)
	return access.OpenAuditLog(ctx, dir, key, access.WithRepairTornTail(), access.WithCheckpointFunc(func(cp access.Checkpoint) {
		logger.Info("keyward serve: audit checkpoint", slog.Uint64("count", cp.Count), slog.String("checkpoint", cp.String()))
	}))
}

// keyServiceFlags are the flags of encrypt and decrypt that use the key
// service as the key source: the keyring's data keys are wrapped by the
// KEK the service guards.
type keyServiceFlags struct {
	addrs, cert, key, ca, name *string
	insecure                   *bool
}

func addKeyServiceFlags(fs *flag.FlagSet) keyServiceFlags {
	return keyServiceFlags{
		addrs:    fs.String("key-service", "", "key service `address`es (host:port, comma-separated instances of one service) wrapping the keyring's data keys, instead of -k; needs --store"),
		cert:     fs.String("tls-cert", "", "this client's certificate, PEM `file` (its SPIFFE ID or DNS name is the identity the service's policy names)"),
		key:      fs.String("tls-key", "", "this client's private key, PEM `file`"),
		ca:       fs.String("server-ca", "", "PEM `file` of the CA that issued the key service's certificate"),
		name:     fs.String("server-name", "", "the `name` in the key service's certificate (default: the host of the first address)"),
		insecure: fs.Bool("insecure-loopback", false, "talk plain gRPC to a key service started with --insecure-loopback (127.0.0.1 only)"),
	}
}

func (k keyServiceFlags) set() bool { return *k.addrs != "" }

// checkTLS reports contradictory or missing TLS flags as usage errors.
func (k keyServiceFlags) checkTLS() error {
	switch {
	case !k.set() && (*k.insecure || *k.cert != "" || *k.key != "" || *k.ca != "" || *k.name != ""):
		return usagef("--tls-cert, --tls-key, --server-ca, --server-name and --insecure-loopback go with --key-service")
	case !k.set():
		return nil
	case *k.insecure && (*k.cert != "" || *k.key != "" || *k.ca != ""):
		return usagef("--insecure-loopback talks without TLS: leave out --tls-cert, --tls-key and --server-ca")
	case !*k.insecure && (*k.cert == "" || *k.key == "" || *k.ca == ""):
		return usagef("--key-service needs --tls-cert, --tls-key and --server-ca (mutual TLS), or --insecure-loopback")
	}
	return nil
}

func (k keyServiceFlags) source(context.Context) (keyring.KeySource, func(), error) {
	var opts []keyservice.Option
	if *k.insecure {
		opts = append(opts, keyservice.WithInsecureLoopback())
	} else {
		opts = append(opts, keyservice.WithTLSFiles(*k.cert, *k.key, *k.ca))
	}
	if *k.name != "" {
		opts = append(opts, keyservice.WithServerName(*k.name))
	}
	src, err := keyservice.New(strings.Split(*k.addrs, ","), opts...)
	if err != nil {
		return nil, nil, err
	}
	return src, func() { _ = src.Close() }, nil
}

// keyServiceUsage is the key-service part of the usage of encrypt and
// decrypt.
const keyServiceUsage = "--key-service ADDR[,ADDR] (--tls-cert C --tls-key K --server-ca CA [--server-name N] | --insecure-loopback)"
