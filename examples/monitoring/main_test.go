package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/keyward/keyward/telemetry"
	"github.com/keyward/keyward/telemetry/anomaly"
)

func TestMonitoringStdout(t *testing.T) {
	spans := filepath.Join(t.TempDir(), "spans.jsonl")
	var out bytes.Buffer
	if err := run(context.Background(), &out, options{exporter: "stdout", spansPath: spans}); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	s := out.String()
	if !strings.Contains(s, "alerts so far: 0") || !strings.Contains(s, "ALERT") || !strings.Contains(s, "bulk_read user=u2077") {
		t.Fatalf("output:\n%s", s)
	}
	// The exported spans tell the same story offline.
	f, err := os.Open(spans)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var events []telemetry.Event
	if err := telemetry.DecodeAny(context.Background(), f, func(e telemetry.Event) error {
		events = append(events, e)
		return nil
	}, func(le *telemetry.LineError) { t.Errorf("span file: %v", le) }); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, fd := range anomaly.Detect(events, anomaly.Config{WorkHours: "0-24"}) {
		if fd.Kind == anomaly.KindBulkRead && fd.UserID == "u2077" {
			found = true
		} else {
			t.Errorf("unexpected offline finding %+v", fd)
		}
	}
	if !found {
		t.Errorf("offline analysis of %d events found no bulk_read by u2077", len(events))
	}
}

// collector is an in-process OTLP/gRPC trace receiver.
type collector struct {
	collectortrace.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans int
	names map[string]int
}

func (c *collector) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				c.spans++
				c.names[sp.Name]++
			}
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func TestMonitoringOTLP(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	c := &collector{names: map[string]int{}}
	collectortrace.RegisterTraceServiceServer(srv, c)
	go srv.Serve(lis)
	defer srv.Stop()

	var out bytes.Buffer
	if err := run(context.Background(), &out, options{exporter: "otlp", otlpEndpoint: lis.Addr().String(), otlpInsecure: true}); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.names["GET /patients"] != 72 || c.names[telemetry.SpanDecrypt] == 0 {
		t.Errorf("collector received %d spans: %v", c.spans, c.names)
	}
}

func TestUnknownExporter(t *testing.T) {
	if err := run(context.Background(), &bytes.Buffer{}, options{exporter: "kafka"}); err == nil {
		t.Fatal("run with an unknown exporter succeeded")
	}
}
