package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
)

// OTLP/JSON as the OpenTelemetry Collector's file exporter writes it: one
// ExportTraceServiceRequest per line, in the OTLP JSON encoding (field names
// in lowerCamelCase, 64-bit integers as decimal strings or numbers, enums as
// numbers or names). Only what maps to events is declared; encoding/json
// matches the names and ignores everything else.
type otlpRequest struct {
	ResourceSpans []struct {
		Resource struct {
			Attributes []otlpKV `json:"attributes"`
		} `json:"resource"`
		ScopeSpans []struct {
			Spans []otlpSpan `json:"spans"`
		} `json:"scopeSpans"`
	} `json:"resourceSpans"`
}

type otlpSpan struct {
	Name              *string  `json:"name"`
	StartTimeUnixNano otlpInt  `json:"startTimeUnixNano"`
	Attributes        []otlpKV `json:"attributes"`
	Events            []struct {
		TimeUnixNano otlpInt  `json:"timeUnixNano"`
		Name         string   `json:"name"`
		Attributes   []otlpKV `json:"attributes"`
	} `json:"events"`
	DroppedEventsCount otlpInt `json:"droppedEventsCount"`
	Status             struct {
		Code json.RawMessage `json:"code"`
	} `json:"status"`
}

type otlpKV struct {
	Key   string    `json:"key"`
	Value otlpValue `json:"value"`
}

type otlpValue struct {
	StringValue *string  `json:"stringValue"`
	IntValue    *otlpInt `json:"intValue"`
	ArrayValue  *struct {
		Values []otlpValue `json:"values"`
	} `json:"arrayValue"`
}

// otlpInt is a 64-bit integer written as a JSON string (the OTLP JSON
// encoding) or a number.
type otlpInt int64

func (n *otlpInt) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(b, `"`))
	if s == "null" {
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		u, uerr := strconv.ParseUint(s, 10, 64)
		if uerr != nil {
			return fmt.Errorf("%w: integer %q", ErrMalformedSpan, clip(s))
		}
		v = int64(u) // a fixed64 beyond int64: out of range as a time anyway
	}
	*n = otlpInt(v)
	return nil
}

// statusError is the OTLP status code of an error span: 2, or its name.
func statusError(code json.RawMessage) bool {
	s := string(bytes.Trim(code, `"`))
	return s == "2" || s == "STATUS_CODE_ERROR"
}

// decodeOTLP reads OTLP/JSON lines; see [DecodeAny].
func decodeOTLP(ctx context.Context, r io.Reader, fn func(Event) error, bad func(*LineError)) error {
	var sd SpanData
	return decodeUnits(ctx, lines{newLineReader(r, MaxObjectBytes)}, func(line []byte, dst []Event) ([]Event, error) {
		return appendOTLPEvents(dst, line, &sd)
	}, fn, bad)
}

// appendOTLPEvents converts the spans of one request line. A span with an
// unusable time is left out, and the first such problem is returned with
// the events of the other spans.
func appendOTLPEvents(dst []Event, line []byte, sd *SpanData) ([]Event, error) {
	var req otlpRequest
	if err := json.Unmarshal(line, &req); err != nil {
		return dst, fmt.Errorf("%w: %s", ErrMalformedSpan, jsonErrText(err))
	}
	var first error
	for _, rs := range req.ResourceSpans {
		service := ""
		for _, kv := range rs.Resource.Attributes {
			if kv.Key == string(serviceName) && kv.Value.StringValue != nil {
				service = *kv.Value.StringValue
			}
		}
		for _, ss := range rs.ScopeSpans {
			for i := range ss.Spans {
				err := otlpSpanData(&ss.Spans[i], service, sd)
				if err == nil {
					dst = AppendSpanEvents(dst, sd)
				} else if first == nil {
					first = err
				}
			}
		}
	}
	return dst, first
}

func otlpSpanData(sp *otlpSpan, service string, sd *SpanData) error {
	if sp.Name == nil {
		return fmt.Errorf("%w: span name missing", ErrMalformedSpan)
	}
	*sd = SpanData{Name: *sp.Name, Failed: statusError(sp.Status.Code), DroppedEvents: int(max(min(sp.DroppedEventsCount, 1<<31), 0)), Service: service}
	sd.Attributes = otlpAttrs(sp.Attributes)
	if _, isAction := actionFromSpanName(sd.Name); isAction || len(sp.Events) > 0 {
		t, err := unixNano(sp.StartTimeUnixNano)
		if err != nil {
			return err
		}
		sd.Start = t
	}
	for _, ev := range sp.Events {
		if _, ok := actionFromSpanName(ev.Name); !ok {
			continue
		}
		t, err := unixNano(ev.TimeUnixNano)
		if err != nil {
			return err
		}
		sd.Events = append(sd.Events, SpanEvent{Name: ev.Name, Time: t, Attributes: otlpAttrs(ev.Attributes)})
	}
	return nil
}

func unixNano(n otlpInt) (time.Time, error) {
	if n <= 0 {
		return time.Time{}, fmt.Errorf("%w: time missing", ErrMalformedSpan)
	}
	return time.Unix(0, int64(n)).UTC(), nil
}

// otlpAttrs converts the attributes keyward reads, as [decodeAttrs] does
// for the stdouttrace form.
func otlpAttrs(in []otlpKV) []attribute.KeyValue {
	var out []attribute.KeyValue
	for _, kv := range in {
		if !readAttr(attribute.Key(kv.Key)) {
			continue
		}
		v := kv.Value
		switch {
		case v.StringValue != nil:
			out = append(out, attribute.String(kv.Key, *v.StringValue))
		case v.IntValue != nil:
			out = append(out, attribute.Int64(kv.Key, int64(*v.IntValue)))
		case v.ArrayValue != nil:
			var ss []string
			for _, x := range v.ArrayValue.Values {
				if x.StringValue != nil {
					ss = append(ss, *x.StringValue)
				}
			}
			out = append(out, attribute.StringSlice(kv.Key, ss))
		}
	}
	return out
}
