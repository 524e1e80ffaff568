package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/glebarez/sqlite"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/telemetry/anomaly"
)

// shutdownTimeout bounds the graceful shutdown.
const shutdownTimeout = 10 * time.Second

// options are the command-line flags.
type options struct {
	addr, dir, dsn, policy, anomalyConfig, otlp string
	otlpInsecure                                bool
	seed                                        int
	keys                                        keyFlags
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "webapp:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("webapp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "`host:port` to listen on (the demo sign-in has no passwords: keep it on loopback)")
	fs.StringVar(&o.dir, "dir", "webapp-data", "`directory` for crypto.key, the SQLite database and the audit log (created 0700)")
	fs.StringVar(&o.dsn, "dsn", "", "PostgreSQL `DSN` to use instead of the embedded SQLite database")
	fs.StringVar(&o.policy, "policy", "", "access policy `file` (JSON; default: the built-in policy.json)")
	fs.StringVar(&o.anomalyConfig, "anomaly-config", "", "anomaly analyzer thresholds `file` (JSON; default: the analyzer's defaults, working hours 00-24)")
	fs.StringVar(&o.otlp, "otlp-endpoint", "", "also export spans over OTLP/gRPC to this collector `host:port`")
	fs.BoolVar(&o.otlpInsecure, "otlp-insecure", false, "talk to the OTLP collector without TLS")
	fs.IntVar(&o.seed, "seed", 120, "fictional `records` to create when the table is empty (the incident replay needs 100)")
	o.keys.register(fs)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return o, o.keys.check()
}

// run starts the application and serves until ctx is done, then shuts
// down gracefully: requests in flight finish (event streams end), the
// re-encryption job stops between batches, the analyzer reports its open
// incidents and the audit log is closed with a checkpoint. listening, when
// not nil, is told the address once the server accepts connections.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, listening func(addr string)) (err error) {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.dir, 0o700); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))

	src, keyDesc, release, err := o.keys.source(ctx, filepath.Join(o.dir, "crypto.key"))
	if err != nil {
		return err
	}
	defer release()

	db, dbDesc, err := openDB(o)
	if err != nil {
		return err
	}
	if sqlDB, err := db.DB(); err == nil {
		defer sqlDB.Close()
	}

	cfg := Config{DB: db, KeySource: src, AuditDir: filepath.Join(o.dir, "audit"), Logger: logger, Seed: o.seed}
	if o.policy != "" {
		if cfg.Policy, err = access.LoadPolicyFile(o.policy); err != nil {
			return err
		}
	}
	if o.anomalyConfig != "" {
		if cfg.Anomaly, err = loadAnomalyConfig(o.anomalyConfig); err != nil {
			return err
		}
	}
	if o.otlp != "" {
		opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(o.otlp)}
		if o.otlpInsecure {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		exp, err := otlptracegrpc.New(ctx, opts...)
		if err != nil {
			return err
		}
		cfg.SpanProcessors = append(cfg.SpanProcessors, sdktrace.NewBatchSpanProcessor(exp))
	}

	a, err := newApp(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, a.close(context.Background())) }()

	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           a.handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(a.cancel) // ends event streams and the job
	printBanner(stdout, "http://"+ln.Addr().String(), dbDesc, keyDesc, cfg.AuditDir, a.users)
	if listening != nil {
		listening(ln.Addr().String())
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	fmt.Fprintln(stdout, "shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// openDB opens the embedded SQLite database in the data directory, or
// PostgreSQL with -dsn.
func openDB(o options) (*gorm.DB, string, error) {
	cfg := &gorm.Config{Logger: logger.Discard}
	if o.dsn != "" {
		db, err := gorm.Open(postgres.Open(o.dsn), cfg)
		return db, "PostgreSQL", err
	}
	path := filepath.Join(o.dir, "webapp.db")
	// Created 0600 first: the file holds the wrapped data keys too.
	if f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600); err == nil {
		f.Close()
	}
	db, err := gorm.Open(sqlite.Open(path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"), cfg)
	return db, "SQLite " + path, err
}

func loadAnomalyConfig(path string) (anomaly.Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return anomaly.Config{}, err
	}
	defer f.Close()
	return anomaly.LoadConfig(f)
}

// printBanner prints the URL, where things are, and the demo users.
func printBanner(w io.Writer, url, db, key, audit string, users []User) {
	fmt.Fprintf(w, "keyward web app: %s\n\n", url)
	fmt.Fprintf(w, "  database   %s\n  key        %s\n  audit log  %s\n\nsign in as:\n", db, key, audit)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, u := range users {
		if !u.Scripted {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", u.ID, u.Roles, u.Description)
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
}
