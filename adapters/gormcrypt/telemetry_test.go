package gormcrypt_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/adapters/gormcrypt"
	"github.com/keyward/keyward/internal/dbtest"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/telemetry"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"gorm.io/gorm"
)

type eventLog struct {
	mu     sync.Mutex
	events []telemetry.Event
}

func (l *eventLog) WriteEvent(_ context.Context, e telemetry.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
	return nil
}

func (l *eventLog) all() []telemetry.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]telemetry.Event(nil), l.events...)
}

// TestTelemetry checks that a statement is one span with a count and one
// metric record per action and outcome, not one per value, and that its
// usage events carry the count and the principal.
func TestTelemetry(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		spans := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		t.Cleanup(func() { tp.Shutdown(context.Background()); mp.Shutdown(context.Background()) })
		events := &eventLog{}
		kr := newKeyring(t)
		_, err := gormcrypt.Register(db, kr, gormcrypt.WithTelemetry(telemetry.WithTracerProvider(tp)), gormcrypt.WithTelemetry(telemetry.WithMeterProvider(mp)),
			gormcrypt.WithTelemetry(telemetry.WithSinks(events)))
		if err != nil {
			t.Fatal(err)
		}
		if err := db.AutoMigrate(&Company{}, &Patient{}, &Visit{}); err != nil {
			t.Fatal(err)
		}
		ctx, parent := tp.Tracer("test").Start(t.Context(), "request")
		ctx = access.WithPrincipal(ctx, access.Principal{UserID: "alice", Roles: []string{"doctor"}})
		ps := []*Patient{newPatient("tel"), newPatient("tel"), newPatient("tel")}
		if err := db.WithContext(ctx).Create(ps).Error; err != nil {
			t.Fatal(err)
		}
		var got []Patient
		if err := db.WithContext(ctx).Where("name = ?", "tel").Find(&got).Error; err != nil || len(got) != 3 {
			t.Fatalf("Find = %d, %v", len(got), err)
		}
		// A tampered value: the failure is an event.
		if err := db.Exec("UPDATE patients SET ssn = ? WHERE id = ?", "kw1.AQEAAAAB"+"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", ps[0].ID.String()).Error; err != nil {
			t.Fatal(err)
		}
		err = db.WithContext(ctx).First(&Patient{}, "id = ?", ps[0].ID).Error
		if !errors.Is(err, keyring.ErrKeyNotFound) && !errors.Is(err, keyring.ErrDecrypt) {
			t.Fatalf("tampered row = %v", err)
		}
		parent.End()

		counts := map[string]int64{}
		for _, s := range spans.Ended() {
			switch s.Name() {
			case telemetry.ActionEncrypt.SpanName(), telemetry.ActionDecrypt.SpanName():
				t.Errorf("a per-value span %s inside a statement", s.Name())
			case gormcrypt.SpanStatement + "create", gormcrypt.SpanStatement + "query":
				for _, a := range s.Attributes() {
					if a.Key == telemetry.AttrCount {
						counts[s.Name()] += a.Value.AsInt64()
					}
				}
				if s.Parent().SpanID() != parent.SpanContext().SpanID() {
					t.Errorf("span %s is not a child of the request", s.Name())
				}
			}
		}
		if counts[gormcrypt.SpanStatement+"create"] != 18 || counts[gormcrypt.SpanStatement+"query"] < 18 {
			t.Errorf("statement span counts = %v, want 18 encryptions and at least 18 decryptions", counts)
		}

		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		ops := map[string]int64{}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == telemetry.MetricOperations {
					for _, dp := range sum.DataPoints {
						op, _ := dp.Attributes.Value(telemetry.AttrOperation)
						oc, _ := dp.Attributes.Value(telemetry.AttrOutcome)
						ops[op.AsString()+"/"+oc.AsString()] += dp.Value
					}
				}
			}
		}
		if ops["encrypt/ok"] != 18 || ops["decrypt/ok"] < 18 {
			t.Errorf("keyward.operations = %v", ops)
		}

		// Every value is an event naming it (the analyzer counts distinct
		// data IDs); the failure is one event for the statement.
		decrypted, encrypted := map[string]bool{}, map[string]bool{}
		sawFailure := false
		for _, e := range events.all() {
			if e.UserID != "alice" || e.Role != "doctor" || !strings.HasPrefix(e.DataID, "patients") {
				t.Errorf("event %+v lacks the principal or table", e)
			}
			switch {
			case e.Action == telemetry.ActionDecrypt && !e.Success:
				sawFailure = e.Count == 1 && e.DataID == "patients"
			case e.KeyID == "" || strings.Count(e.DataID, "/") != 2:
				t.Errorf("value event %+v lacks its key ID or table/key/column data ID", e)
			case e.Action == telemetry.ActionDecrypt:
				decrypted[e.DataID] = true
			case e.Action == telemetry.ActionEncrypt:
				encrypted[e.DataID] = true
			}
		}
		want := ps[1].ID.String()
		if len(encrypted) != 18 || len(decrypted) != 18 || !decrypted["patients/"+want+"/ssn"] || !sawFailure {
			t.Errorf("%d distinct encrypted and %d decrypted data IDs, failure %v; want 18, 18, true", len(encrypted), len(decrypted), sawFailure)
		}
	})
}
