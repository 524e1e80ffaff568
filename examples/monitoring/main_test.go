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

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/keyward/keyward/telemetry"
	"github.com/keyward/keyward/telemetry/anomaly"
)

// offline analyzes an exported file as keyward analyze does.
func offline(t *testing.T, path string) []anomaly.Finding {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var events []telemetry.Event
	err = telemetry.DecodeAny(context.Background(), f, func(e telemetry.Event) error {
		events = append(events, e)
		return nil
	}, func(le *telemetry.LineError) { t.Errorf("%s: %v", path, le) })
	require.NoError(t, err)
	return anomaly.Detect(events, anomaly.Config{WorkHours: "0-24"})
}

// TestMonitoringStdout: the live alert is raised at the threshold,
// escalated as the exfiltration grows, and its final finding is what the
// offline analysis of the exported spans reports.
func TestMonitoringStdout(t *testing.T) {
	spans := filepath.Join(t.TempDir(), "spans.jsonl")
	var out bytes.Buffer
	final, err := run(context.Background(), &out, options{exporter: "stdout", spansPath: spans})
	require.NoError(t, err, "output:\n%s", out.String())
	s := out.String()
	assert.Contains(t, s, "alerts so far: 0", "no alert on ordinary traffic")
	assert.Contains(t, s, "ALERT low bulk_read user=u2077", "the alert at the threshold")
	assert.Contains(t, s, "ESCALATED high bulk_read user=u2077", "the escalation")
	assert.Contains(t, s, "FINAL high bulk_read user=u2077", "the final finding")
	require.Len(t, final, 1, "final findings: %v", final)
	assert.Equal(t, offline(t, spans), final, "offline analysis of the stdouttrace export vs the live analyzer's final findings")
}

// collector is an in-process OTLP/gRPC trace receiver that writes what it
// receives as the Collector's file exporter does: one OTLP/JSON request per
// line.
type collector struct {
	collectortrace.UnimplementedTraceServiceServer
	mu    sync.Mutex
	names map[string]int
	file  bytes.Buffer
}

func (c *collector) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	line, err := protojson.Marshal(req)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				c.names[sp.Name]++
			}
		}
	}
	c.file.Write(line)
	c.file.WriteByte('\n')
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// TestMonitoringOTLP exports over OTLP to an in-process receiver that keeps
// the Collector's file form; keyward's offline reading of that file agrees
// with the live analyzer.
func TestMonitoringOTLP(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	c := &collector{names: map[string]int{}}
	collectortrace.RegisterTraceServiceServer(srv, c)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer func() {
		srv.Stop()
		assert.NoError(t, <-served)
	}()

	var out bytes.Buffer
	final, err := run(context.Background(), &out, options{exporter: "otlp", otlpEndpoint: lis.Addr().String(), otlpInsecure: true})
	require.NoError(t, err, "output:\n%s", out.String())
	c.mu.Lock()
	defer c.mu.Unlock()
	assert.Equal(t, 72, c.names["GET /patients"], "request spans received: %v", c.names)
	assert.Positive(t, c.names[telemetry.ActionDecrypt.SpanName()], "keyring spans received: %v", c.names)
	path := filepath.Join(t.TempDir(), "collector-spans.jsonl")
	require.NoError(t, os.WriteFile(path, c.file.Bytes(), 0o600))
	assert.True(t, strings.HasPrefix(c.file.String(), `{"resourceSpans":`), "the file starts like the Collector's")
	assert.Equal(t, offline(t, path), final, "offline analysis of the OTLP/JSON file vs the live analyzer's final findings")
}

func TestUnknownExporter(t *testing.T) {
	_, err := run(context.Background(), &bytes.Buffer{}, options{exporter: "kafka"})
	assert.Error(t, err, "run with an unknown exporter")
}
