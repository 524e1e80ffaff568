package gormcrypt_test

import (
	"context"
	mrand "math/rand/v2"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"gorm.io/gorm"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/adapters/gormcrypt"
	"github.com/keyward/keyward/internal/dbtest"
	"github.com/keyward/keyward/telemetry"
	"github.com/keyward/keyward/telemetry/anomaly"
)

// BenchmarkTelemetryRatio reads 1000 rows x 3 encrypted fields with
// telemetry off (global no-op providers) and on: the OpenTelemetry SDK
// recording every span (always sampled, batch processor into a discarding
// exporter) and metrics (a manual reader), with the anomaly analyzer
// attached either as a span processor ("processor") or as the event sink
// that sees every value with its data ID ("sink"). Each Find runs under a
// request span. Rounds interleave the variants; it reports the median ratio
// to "off":
//
//	go test -run '^$' -bench TelemetryRatio -benchtime 40x ./adapters/gormcrypt/
func BenchmarkTelemetryRatio(b *testing.B) {
	dbtest.EachB(b, func(b *testing.B, db *gorm.DB) {
		kr := newKeyring(b)
		off := dbtest.Reopen(b, db, nil)
		if _, err := gormcrypt.Register(off, kr); err != nil {
			b.Fatal(err)
		}
		if err := off.AutoMigrate(&benchKeyward{}); err != nil {
			b.Fatal(err)
		}
		rows := variants()[1].rows()
		if err := off.CreateInBatches(rows, 250).Error; err != nil {
			b.Fatal(err)
		}
		type variant struct {
			name string
			db   *gorm.DB
			tp   *sdktrace.TracerProvider
		}
		vs := []variant{{name: "off", db: off}}
		for _, mode := range []string{"processor", "sink"} {
			an, err := anomaly.NewAnalyzer(anomaly.Config{}, anomaly.WithReport(func(anomaly.Finding) {}))
			if err != nil {
				b.Fatal(err)
			}
			tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithSampler(sdktrace.AlwaysSample()),
				sdktrace.WithBatcher(tracetest.NewNoopExporter())}
			telOpts := []telemetry.Option{telemetry.WithSinks()}
			if mode == "processor" {
				p, err := anomaly.NewProcessor(anomaly.Config{})
				if err != nil {
					b.Fatal(err)
				}
				tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(p))
			} else {
				telOpts = []telemetry.Option{telemetry.WithSinks(an)}
			}
			tp := sdktrace.NewTracerProvider(tpOpts...)
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			b.Cleanup(func() { tp.Shutdown(context.Background()); mp.Shutdown(context.Background()) })
			h := dbtest.Reopen(b, db, nil)
			if _, err := gormcrypt.Register(h, kr, gormcrypt.WithTelemetry(telemetry.WithTracerProvider(tp)), gormcrypt.WithTelemetry(telemetry.WithMeterProvider(mp)),
				gormcrypt.WithTelemetry(telOpts...)); err != nil {
				b.Fatal(err)
			}
			vs = append(vs, variant{name: mode, db: h, tp: tp})
		}
		ctx := access.WithPrincipal(context.Background(), access.Principal{UserID: "u1", Roles: []string{"analyst"}})
		times := make([][]time.Duration, len(vs))
		for b.Loop() {
			for _, i := range mrand.Perm(len(vs)) {
				v := vs[i]
				rctx := ctx
				var end func()
				if v.tp != nil {
					c, s := v.tp.Tracer("bench").Start(ctx, "request")
					rctx, end = c, func() { s.End() }
				}
				var got []benchKeyward
				start := time.Now()
				if err := v.db.WithContext(rctx).Find(&got).Error; err != nil {
					b.Fatal(err)
				}
				if end != nil {
					end()
				}
				times[i] = append(times[i], time.Since(start))
				if len(got) != benchRows {
					b.Fatalf("%s: Find read %d rows", v.name, len(got))
				}
			}
		}
		for i, v := range vs {
			b.ReportMetric(float64(median(times[i]))/1e6, v.name+"-ms")
			if i > 0 {
				var r []float64
				for j := range times[i] {
					r = append(r, float64(times[i][j])/float64(times[0][j]))
				}
				b.ReportMetric(medianF(r), v.name+"/off")
			}
		}
	})
}
