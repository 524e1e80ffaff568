package telemetry

import (
	"context"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func TestBatch(t *testing.T) {
	ctx := context.Background()
	if BatchFrom(ctx) != nil {
		t.Fatal("BatchFrom(empty context) is not nil")
	}
	b := &Batch{}
	ctx = WithBatch(ctx, b)
	if BatchFrom(ctx) != b {
		t.Fatal("BatchFrom does not return the batch")
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				BatchFrom(ctx).Add(ActionDecrypt, "pii", 7, OutcomeOK, 1)
			}
			BatchFrom(ctx).Add(ActionDecrypt, "pii", 7, OutcomeError, 2)
		})
	}
	wg.Wait()
	if b.Total() != 816 || b.Count(ActionDecrypt, OutcomeOK) != 800 || b.Count(ActionDecrypt, OutcomeError) != 16 || b.Count(ActionEncrypt, OutcomeOK) != 0 {
		t.Fatalf("Total %d, ok %d, error %d", b.Total(), b.Count(ActionDecrypt, OutcomeOK), b.Count(ActionDecrypt, OutcomeError))
	}
}

func TestRecordBatch(t *testing.T) {
	s := newSDK(t)
	in, err := New("github.com/keyward/keyward/keyring", WithTracerProvider(s.tp), WithMeterProvider(s.mp))
	if err != nil {
		t.Fatal(err)
	}
	b := &Batch{}
	b.Add(ActionDecrypt, "pii", 3, OutcomeOK, 2999)
	b.Add(ActionDecrypt, "pii", 3, OutcomeError, 1)
	b.Add(ActionEncrypt, "pii", 4, OutcomeOK, 10)
	in.RecordBatch(context.Background(), b)
	got := map[string]int64{}
	for _, dp := range s.metrics(t)[MetricOperations].(metricdata.Sum[int64]).DataPoints {
		op, _ := dp.Attributes.Value(AttrOperation)
		o, _ := dp.Attributes.Value(AttrOutcome)
		k, _ := dp.Attributes.Value(AttrKeyID)
		got[op.AsString()+"/"+o.AsString()+"/"+k.String()] += dp.Value
	}
	want := map[string]int64{"decrypt/ok/3": 2999, "decrypt/error/3": 1, "encrypt/ok/4": 10}
	if len(got) != len(want) {
		t.Fatalf("data points = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d", k, got[k], v)
		}
	}
}
