package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/telemetry"
	"github.com/keyward/keyward/telemetry/anomaly"
)

type options struct {
	exporter     string // stdout, otlp or none
	spansPath    string // stdout exporter's file
	otlpEndpoint string
	otlpInsecure bool
}

func main() {
	var o options
	flag.StringVar(&o.exporter, "exporter", "stdout", "span exporter: stdout (to -spans), otlp or none")
	flag.StringVar(&o.spansPath, "spans", "monitoring-spans.jsonl", "`file` the stdout exporter writes")
	flag.StringVar(&o.otlpEndpoint, "otlp-endpoint", "localhost:4317", "OTLP/gRPC `host:port` of the collector")
	flag.BoolVar(&o.otlpInsecure, "otlp-insecure", false, "talk to the collector without TLS")
	flag.Parse()
	if _, err := run(context.Background(), os.Stdout, o); err != nil {
		fmt.Fprintln(os.Stderr, "monitoring:", err)
		os.Exit(1)
	}
}

func exporter(ctx context.Context, o options) (sdktrace.SpanExporter, func() error, error) {
	switch o.exporter {
	case "stdout":
		f, err := os.OpenFile(o.spansPath, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, nil, err
		}
		exp, err := stdouttrace.New(stdouttrace.WithWriter(f))
		if err != nil {
			f.Close()
			return nil, nil, err
		}
		return exp, f.Close, nil
	case "otlp":
		opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(o.otlpEndpoint)}
		if o.otlpInsecure {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		exp, err := otlptracegrpc.New(ctx, opts...)
		return exp, func() error { return nil }, err
	case "none":
		return nil, func() error { return nil }, nil
	}
	return nil, nil, fmt.Errorf("unknown exporter %q (want stdout, otlp or none)", o.exporter)
}

// run runs the demo and returns the final findings of the live analyzer.
func run(ctx context.Context, out io.Writer, o options) (final []anomaly.Finding, err error) {
	exp, closeExp, err := exporter(ctx, o)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, closeExp()) }()

	// The live analyzer raises an alert when an incident crosses its
	// threshold, escalates it (same ID) when its severity rises, and hands
	// over the final finding when the incident closes or at shutdown.
	var mu sync.Mutex
	alerted := map[string]bool{}
	cfg := anomaly.Config{WorkHours: "0-24"} // a demo runs at any hour
	proc, err := anomaly.NewProcessor(cfg,
		anomaly.WithAlert(func(f anomaly.Finding) {
			mu.Lock()
			defer mu.Unlock()
			what := "ALERT"
			if alerted[f.ID] {
				what = "ESCALATED"
			}
			alerted[f.ID] = true
			fmt.Fprintf(out, "%s %s %s user=%s events=%d score=%.2f: %s\n", what, f.Severity, f.Kind, f.UserID, f.Events, f.Score, f.Detail)
		}),
		anomaly.WithReport(func(f anomaly.Finding) {
			mu.Lock()
			defer mu.Unlock()
			final = append(final, f)
			fmt.Fprintf(out, "FINAL %s %s user=%s events=%d score=%.2f: %s\n", f.Severity, f.Kind, f.UserID, f.Events, f.Score, f.Detail)
		}))
	if err != nil {
		return nil, err
	}
	tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithSpanProcessor(proc)}
	if exp != nil {
		tpOpts = append(tpOpts, sdktrace.WithBatcher(exp))
	}
	tp := sdktrace.NewTracerProvider(tpOpts...)
	shutdown := sync.OnceValue(func() error { return tp.Shutdown(context.Background()) })
	defer func() { err = errors.Join(err, shutdown()) }()

	// The keyring, instrumented with this tracer provider.
	key := make([]byte, filekey.KeySize)
	_, _ = rand.Read(key)
	src, err := filekey.New(key)
	if err != nil {
		return nil, err
	}
	kr, err := keyring.New(ctx, "patients", src, keyring.NewMemoryStore(), keyring.WithTelemetry(telemetry.WithTracerProvider(tp)))
	if err != nil {
		return nil, err
	}
	defer kr.Close()
	// The application records which record each decryption was for.
	app, err := telemetry.New("example.com/clinic", telemetry.WithTracerProvider(tp), telemetry.WithSinks())
	if err != nil {
		return nil, err
	}
	tracer := tp.Tracer("example.com/clinic")

	records := make([]string, 2000)
	for i := range records {
		if records[i], err = kr.EncryptText(ctx, fmt.Sprintf("%03d-45-%04d", i%1000, i), []byte(dataID(i))); err != nil {
			return nil, err
		}
	}
	// request serves one HTTP request of user that reads the records ids.
	request := func(user string, ids []int) error {
		rctx := access.WithPrincipal(ctx, access.Principal{UserID: user, Roles: []string{"clinician"}})
		rctx, span := tracer.Start(rctx, "GET /patients", trace.WithAttributes(telemetry.AttrUserID.String(user)))
		defer span.End()
		for _, i := range ids {
			if _, err := kr.DecryptText(rctx, records[i], []byte(dataID(i))); err != nil {
				return err
			}
			app.LogDecryptionEvent(rctx, dataID(i), user)
		}
		return nil
	}

	fmt.Fprintln(out, "ordinary traffic: 5 clinicians, 60 requests of 1-3 records each")
	for r := range 60 {
		user := fmt.Sprintf("u10%02d", r%5)
		ids := []int{(r * 37) % 50}
		for extra := range r % 3 {
			ids = append(ids, (r*37+extra+1)%50)
		}
		if err := request(user, ids); err != nil {
			return nil, err
		}
	}
	// The processor holds events a few seconds to observe them in time
	// order (a request span ends after the keyring spans inside it);
	// ForceFlush hands them over now.
	if err := tp.ForceFlush(ctx); err != nil {
		return nil, err
	}
	mu.Lock()
	fmt.Fprintf(out, "alerts so far: %d\n", len(alerted))
	mu.Unlock()

	fmt.Fprintln(out, "exfiltration: u2077 pages through 1200 records in 12 requests")
	for page := range 12 {
		ids := make([]int, 100)
		for j := range ids {
			ids[j] = 500 + page*100 + j
		}
		if err := request("u2077", ids); err != nil {
			return nil, err
		}
	}
	if err := tp.ForceFlush(ctx); err != nil {
		return nil, err
	}
	mu.Lock()
	n := len(alerted)
	mu.Unlock()
	if n == 0 {
		return nil, errors.New("the exfiltration raised no alert")
	}
	fmt.Fprintf(out, "incidents alerted: %d; shutting down closes them:\n", n)
	if err := shutdown(); err != nil {
		return nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	return final, nil
}

func dataID(i int) string { return fmt.Sprintf("patients/%d/ssn", i) }
