package telemetry

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
)

// otlpReceiver is an in-process OTLP/gRPC trace receiver that writes each
// request it receives as one line of OTLP/JSON, as the Collector's file
// exporter does.
type otlpReceiver struct {
	collectortrace.UnimplementedTraceServiceServer
	mu    sync.Mutex
	lines bytes.Buffer
}

func (r *otlpReceiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	b, err := protojson.Marshal(req)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines.Write(b)
	r.lines.WriteByte('\n')
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// exportOTLP runs the span workload through the OTel Go SDK's OTLP/gRPC
// exporter into an in-process receiver and returns the receiver's lines.
func exportOTLP(t *testing.T, service string) []byte {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	recv := &otlpReceiver{}
	collectortrace.RegisterTraceServiceServer(srv, recv)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Stop()
		assert.NoError(t, <-served, "receiver")
	})

	exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(lis.Addr().String()),
		otlptracegrpc.WithDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	require.NoError(t, err)
	res := resource.NewSchemaless(semconv.ServiceName(service))
	return runWorkloadWith(t, exp, []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}, func() []byte {
		recv.mu.Lock()
		defer recv.mu.Unlock()
		return append([]byte(nil), recv.lines.Bytes()...)
	})
}

// TestDecodeOTLPRealExporter: OTLP/JSON of spans exported by the OTel Go
// SDK's OTLP exporter gives the same events as the stdouttrace export, with
// the resource's service name as the client.
func TestDecodeOTLPRealExporter(t *testing.T) {
	out := exportOTLP(t, "clinic-api")
	require.NotEmpty(t, out, "the receiver got nothing")
	var events []Event
	err := DecodeAny(context.Background(), bytes.NewReader(out), func(e Event) error {
		events = append(events, e)
		return nil
	}, func(le *LineError) { t.Errorf("line error: %v", le) })
	require.NoError(t, err)
	for i := range events {
		assert.Equal(t, "clinic-api", events[i].Client, "client of event %d", i)
		events[i].Client = ""
	}
	checkWorkloadEvents(t, events)
}

// TestDecodeOTLPCollectorForm reads lines in the form the Collector's file
// exporter writes (hex IDs, enums as numbers, integers as strings), with a
// malformed line in between.
func TestDecodeOTLPCollectorForm(t *testing.T) {
	in := strings.Join([]string{
		`{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"billing-api"}}]},"scopeSpans":[{"scope":{"name":"github.com/keyward/keyward/keyring"},"spans":[` +
			`{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"keyward.decrypt","kind":1,"startTimeUnixNano":"1793523600000000000","endTimeUnixNano":"1793523600000100000",` +
			`"attributes":[{"key":"user.id","value":{"stringValue":"svc-billing"}},{"key":"user.roles","value":{"arrayValue":{"values":[{"stringValue":"billing"}]}}},{"key":"keyward.key_id","value":{"intValue":"3"}},{"key":"client.address","value":{"stringValue":"10.2.0.7"}}],` +
			`"events":[{"timeUnixNano":"1793523600000050000","name":"keyward.decrypt","attributes":[{"key":"keyward.data_id","value":{"stringValue":"invoices/42/iban"}}]}],"status":{}},` +
			`{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b175","name":"keyward.decrypt","startTimeUnixNano":"1793523601000000000","attributes":[{"key":"user.id","value":{"stringValue":"svc-billing"}},{"key":"keyward.count","value":{"intValue":"3000"}}],"droppedEventsCount":0,"status":{"code":2}}` +
			`]}]}]}`,
		`{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"keyward.decrypt","startTimeUnixNano":"soon"}]}]}]}`,
		`{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"keyward.access","startTimeUnixNano":1793523602000000000,"attributes":[{"key":"user.id","value":{"stringValue":"u9"}},{"key":"keyward.outcome","value":{"stringValue":"denied"}}],"status":{"code":"STATUS_CODE_ERROR"}},{"name":"keyward.rotate"}]}]}]}`,
	}, "\n")
	var got []string
	var bad []*LineError
	err := DecodeAny(context.Background(), strings.NewReader(in), func(e Event) error {
		got = append(got, jsonLine(e))
		return nil
	}, func(le *LineError) { bad = append(bad, le) })
	require.NoError(t, err)
	assert.Equal(t, []string{
		`{"time":"2026-11-01T09:00:00.00005Z","action":"decrypt","user_id":"svc-billing","role":"billing","data_id":"invoices/42/iban","key_id":"3","success":true,"source":"10.2.0.7","client":"billing-api"}`,
		`{"time":"2026-11-01T09:00:01Z","action":"decrypt","user_id":"svc-billing","data_id":"","success":false,"client":"billing-api","count":3000}`,
		`{"time":"2026-11-01T09:00:02Z","action":"access","user_id":"u9","data_id":"","success":false}`,
	}, got, "events of the Collector-form lines")
	require.Len(t, bad, 2, "line errors: %v", bad)
	assert.Equal(t, 2, bad[0].Line, "the line with a bad time")
	assert.Equal(t, 3, bad[1].Line, "the line with a span without a time")
	for _, le := range bad {
		assert.ErrorIs(t, le, ErrMalformedSpan)
	}
}
