package main

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"gorm.io/gorm"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/access/otelaccess"
	"github.com/keyward/keyward/adapters/gormcrypt"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/telemetry"
	"github.com/keyward/keyward/telemetry/anomaly"
)

// keyringName is the keyring of the records' data keys.
const keyringName = "records"

// sessionKeyLabel is the label of the key that signs session cookies,
// derived from the keyring: sessions survive a restart and every instance
// on one database accepts them.
const sessionKeyLabel = "keyward.example.webapp.session/v1"

// scopeName names the application's tracer.
const scopeName = "github.com/keyward/keyward/examples/webapp"

//go:embed policy.json
var defaultPolicy []byte

// Config configures the application.
type Config struct {
	DB        *gorm.DB          // the database (required); the keyring is kept in it too
	KeySource keyring.KeySource // the key-encryption key (required)
	AuditDir  string            // the hash-chained audit log's directory (required)

	Policy *access.Policy // default: policy.json
	Users  []User         // default: demoUsers
	Logger *slog.Logger   // the request log; default slog.Default()
	// Anomaly holds the analyzer's thresholds; the zero Config means the
	// defaults, except that working hours default to the whole day
	// ("00-24"): the demo is used at any hour, and its incident is a bulk
	// read and a burst of denials, not the time of day.
	Anomaly anomaly.Config
	// Seed is how many fictional records to create when the table is empty.
	Seed int
	// SpanProcessors are added to the tracer provider, for example an
	// exporter to an OpenTelemetry Collector.
	SpanProcessors []sdktrace.SpanProcessor
	// SecureCookies marks the session cookie Secure (serve over HTTPS).
	SecureCookies bool
}

// app is the running application: every part of keyward wired together.
type app struct {
	db       *gorm.DB
	kr       *keyring.Keyring
	guard    *access.Guard
	auditor  *access.Auditor
	audit    *auditTrail
	tp       *sdktrace.TracerProvider
	tracer   trace.Tracer
	monitor  *monitor
	analyzer *anomaly.Processor // the live analyzer (span processor)
	sessions *sessions
	users    []User
	log      *slog.Logger
	job      *reencryptJob

	// ctx lives as long as the app: background jobs run under it.
	ctx    context.Context
	cancel context.CancelFunc
	closer []func() error // run in reverse order by close
}

// newApp wires the application: tracer provider with the live anomaly
// analyzer, keyring in the database, audit log, access guard, GORM
// registration, schema and demo data. On error it releases what it opened.
func newApp(ctx context.Context, cfg Config) (_ *app, err error) {
	if cfg.DB == nil || cfg.KeySource == nil || cfg.AuditDir == "" {
		return nil, errors.New("webapp: DB, KeySource and AuditDir are required")
	}
	a := &app{db: cfg.DB, users: cfg.Users, log: cfg.Logger}
	if a.users == nil {
		a.users = demoUsers
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			err = errors.Join(err, a.close(context.Background()))
		}
	}()
	policy := cfg.Policy
	if policy == nil {
		if policy, err = access.ParsePolicy("policy.json", defaultPolicy); err != nil {
			return nil, err
		}
	}

	// Telemetry: the anomaly analyzer runs live as a span processor (it sees
	// access decisions and keyring operations as spans) and as the event
	// sink of the GORM layer (which reports each value, not a span per
	// value). The monitor draws the same events.
	a.monitor = newMonitor(a.users)
	if cfg.Anomaly.WorkHours == "" {
		cfg.Anomaly.WorkHours = "00-24"
	}
	proc, err := anomaly.NewProcessor(cfg.Anomaly, anomaly.WithAlert(a.monitor.alert), anomaly.WithReport(a.monitor.report))
	if err != nil {
		return nil, err
	}
	a.analyzer = proc
	tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithSpanProcessor(proc), sdktrace.WithSpanProcessor(a.monitor)}
	for _, p := range cfg.SpanProcessors {
		tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(p))
	}
	a.tp = sdktrace.NewTracerProvider(tpOpts...)
	a.closer = append(a.closer, func() error { return a.tp.Shutdown(context.Background()) })
	a.tracer = a.tp.Tracer(scopeName)
	sinks := telemetry.WithSinks(proc.Analyzer(), a.monitor)

	// The keyring, kept in the same database as the records.
	store, err := gormcrypt.NewStore(ctx, a.db)
	if err != nil {
		return nil, err
	}
	if a.kr, err = keyring.New(ctx, keyringName, cfg.KeySource, store, keyring.WithTelemetry(telemetry.WithTracerProvider(a.tp))); err != nil {
		return nil, err
	}
	a.closer = append(a.closer, a.kr.Close)

	// The audit log, under a key derived from the keyring, and the guard
	// that decides and audits every access.
	if a.audit, err = openAuditTrail(ctx, a.kr, cfg.AuditDir, a.log); err != nil {
		return nil, err
	}
	a.closer = append(a.closer, a.audit.close)
	otelSink, err := otelaccess.NewSink(telemetry.WithTracerProvider(a.tp), telemetry.WithSinks())
	if err != nil {
		return nil, err
	}
	if a.auditor, err = access.NewAuditor(access.WithSink(a.audit), access.WithSink(otelSink),
		access.WithTraceIDFunc(otelaccess.TraceID)); err != nil {
		return nil, err
	}
	if a.guard, err = access.NewGuard(policy, a.auditor); err != nil {
		return nil, err
	}

	// GORM: tagged fields are encrypted and every decryption is authorized
	// and audited as the request's user. The schema is migrated first: the
	// migrator reads a row of an existing table to learn its column types,
	// which the registration (knowing the model) would refuse as a read
	// that bypasses decryption.
	if err = a.db.WithContext(ctx).AutoMigrate(&Record{}); err != nil {
		return nil, err
	}
	if _, err = gormcrypt.Register(a.db, a.kr, gormcrypt.WithModels(&Record{}), gormcrypt.WithAuthorizer(a.guard),
		gormcrypt.WithTelemetry(telemetry.WithTracerProvider(a.tp), sinks)); err != nil {
		return nil, err
	}

	sk, err := a.kr.DeriveKey(ctx, sessionKeyLabel)
	if err != nil {
		return nil, err
	}
	a.sessions = newSessions(sk.Bytes(), cfg.SecureCookies)
	a.job = newReencryptJob()
	a.closer = append(a.closer, func() error { a.job.wait(); return nil })

	if err = a.seed(ctx, cfg.Seed); err != nil {
		return nil, fmt.Errorf("webapp: demo data (created as a clerk; -seed 0 skips it): %w", err)
	}
	return a, nil
}

// close stops background jobs and releases everything, newest first: the
// tracer provider goes last, so the analyzer reports the findings still
// open.
func (a *app) close(ctx context.Context) error {
	a.cancel()
	var errs []error
	for i := len(a.closer) - 1; i >= 0; i-- {
		errs = append(errs, a.closer[i]())
	}
	a.closer = nil
	return errors.Join(errs...)
}

// user returns the configured user with the ID id.
func (a *app) user(id string) (User, bool) {
	for _, u := range a.users {
		if u.ID == id {
			return u, true
		}
	}
	return User{}, false
}

// principal is the access principal of a user.
func (u User) principal() access.Principal {
	return access.Principal{UserID: u.ID, Roles: u.Roles}
}

// may reports, without auditing, whether the principal in ctx may do
// action on resource. The application uses it only to decide what to
// attempt and what to show; the attempt itself is decided and audited by
// the guard.
func (a *app) may(ctx context.Context, action, resource string) bool {
	return a.guard.Policy().Authorize(ctx, action, resource) == nil
}

// startSpan starts a server span as the handler of a request would.
func (a *app) startSpan(ctx context.Context, name string) (context.Context, trace.Span) {
	ctx, span := a.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer))
	if p, ok := access.PrincipalFrom(ctx); ok {
		span.SetAttributes(telemetry.AttrUserID.String(p.UserID))
	}
	return ctx, span
}

// age is how long ago t was, in whole seconds.
func age(t time.Time) int64 { return int64(time.Since(t) / time.Second) }
