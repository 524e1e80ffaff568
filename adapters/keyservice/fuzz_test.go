package keyservice

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/adapters/keyservice/internal/keyservicepb"
)

// countSink counts audit records.
type countSink struct {
	mu sync.Mutex
	n  int
}

func (c *countSink) WriteRecord(context.Context, access.Record) error {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return nil
}

func (c *countSink) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// FuzzRequest decodes arbitrary bytes as each request message of the
// protocol, as gRPC does, and runs them through the service's handlers:
// nothing panics, every item is audited once, an answer carries a matching
// CRC32C, a wrapped key unwraps to what was wrapped, and an unwrap succeeds
// only for a request whose checksums match.
func FuzzRequest(f *testing.F) {
	key := bytes.Repeat([]byte{7}, 32)
	src, err := filekey.New(key)
	if err != nil {
		f.Fatal(err)
	}
	policy, err := access.ParsePolicy("fuzz.json", []byte(`{"roles": [{"name": "`+InsecurePrincipal+`", "permissions": [{"actions": ["*"], "resources": ["keyring:*"]}]}]}`))
	if err != nil {
		f.Fatal(err)
	}
	sink := &countSink{}
	auditor, err := access.NewAuditor(access.WithSink(sink))
	if err != nil {
		f.Fatal(err)
	}
	srv, err := NewServer(src, policy, WithServerInsecureLoopback(), WithAuditor(auditor),
		WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), WithRateLimit(1e12, 1<<30))
	if err != nil {
		f.Fatal(err)
	}
	v := &service{s: srv}
	ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000}})

	// Seeds: valid requests of each kind, and a few broken ones.
	dek, aad := bytes.Repeat([]byte{1}, 32), []byte("seed aad")
	wr := &keyservicepb.WrapRequest{Keyring: "k", Plaintext: dek, PlaintextCrc32C: checksum(dek), AssociatedData: aad, AssociatedDataCrc32C: checksum(aad)}
	resp, err := v.Wrap(ctx, wr)
	if err != nil {
		f.Fatal(err)
	}
	w := resp.GetWrapped()
	ur := &keyservicepb.UnwrapRequest{Keyring: "k", Wrapped: w, WrappedCrc32C: checksum(w), AssociatedData: aad, AssociatedDataCrc32C: checksum(aad)}
	for kind, m := range []proto.Message{
		wr, ur,
		&keyservicepb.RewrapRequest{Keyring: "k", Wrapped: w, WrappedCrc32C: checksum(w), AssociatedData: aad, AssociatedDataCrc32C: checksum(aad)},
		&keyservicepb.BatchWrapRequest{Items: []*keyservicepb.BatchWrapRequest_Item{{Ref: "a", Request: wr}, {Ref: "b"}}},
		&keyservicepb.BatchUnwrapRequest{Items: []*keyservicepb.BatchUnwrapRequest_Item{{Ref: "a", Request: ur}}},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(kind), b)
		f.Add(uint8(kind), b[:len(b)/2])
	}
	f.Add(uint8(1), []byte{0x12, 0x02, envelopeVersion, 0xff})

	f.Fuzz(func(t *testing.T, kind uint8, data []byte) {
		before := sink.count()
		items := 1
		switch kind % 5 {
		case 0:
			req := &keyservicepb.WrapRequest{}
			if proto.Unmarshal(data, req) != nil {
				return
			}
			resp, err := v.Wrap(ctx, req)
			if err != nil {
				checkStatus(t, err)
				break
			}
			w := resp.GetWrapped()
			if checksum(w) != resp.GetWrappedCrc32C() {
				t.Fatal("Wrap answered with a CRC32C that does not match")
			}
			// The wrapped key unwraps to the data key, with the same keyring
			// and associated data only.
			got, err := v.Unwrap(ctx, &keyservicepb.UnwrapRequest{Keyring: req.GetKeyring(), Wrapped: w, WrappedCrc32C: checksum(w), AssociatedData: req.GetAssociatedData(), AssociatedDataCrc32C: req.GetAssociatedDataCrc32C()})
			if err != nil || !bytes.Equal(got.GetPlaintext(), req.GetPlaintext()) {
				t.Fatalf("Unwrap(Wrap(x)) = %v, %v", got, err)
			}
			items = 2
		case 1:
			req := &keyservicepb.UnwrapRequest{}
			if proto.Unmarshal(data, req) != nil {
				return
			}
			resp, err := v.Unwrap(ctx, req)
			if err != nil {
				checkStatus(t, err)
				break
			}
			if checksum(req.GetWrapped()) != req.GetWrappedCrc32C() || checksum(req.GetAssociatedData()) != req.GetAssociatedDataCrc32C() {
				t.Fatal("Unwrap succeeded for a request whose checksums do not match")
			}
			if checksum(resp.GetPlaintext()) != resp.GetPlaintextCrc32C() {
				t.Fatal("Unwrap answered with a CRC32C that does not match")
			}
		case 2:
			req := &keyservicepb.RewrapRequest{}
			if proto.Unmarshal(data, req) != nil {
				return
			}
			if _, err := v.Rewrap(ctx, req); err != nil {
				checkStatus(t, err)
			}
		case 3:
			req := &keyservicepb.BatchWrapRequest{}
			if proto.Unmarshal(data, req) != nil {
				return
			}
			resp, err := v.BatchWrap(ctx, req)
			items = len(req.GetItems())
			if err != nil {
				checkStatus(t, err)
				items = 1 // a batch refused whole is audited once
				break
			}
			if len(resp.GetResults()) != len(req.GetItems()) {
				t.Fatalf("BatchWrap: %d results for %d items", len(resp.GetResults()), len(req.GetItems()))
			}
		case 4:
			req := &keyservicepb.BatchUnwrapRequest{}
			if proto.Unmarshal(data, req) != nil {
				return
			}
			resp, err := v.BatchUnwrap(ctx, req)
			items = len(req.GetItems())
			if err != nil {
				checkStatus(t, err)
				items = 1 // a batch refused whole is audited once
				break
			}
			for i, r := range resp.GetResults() {
				if r.GetRef() != req.GetItems()[i].GetRef() {
					t.Fatalf("BatchUnwrap result %d: reference %q, item's %q", i, r.GetRef(), req.GetItems()[i].GetRef())
				}
			}
		}
		if got := sink.count() - before; got != items {
			t.Fatalf("%d audit records for %d items", got, items)
		}
	})
}

// checkStatus fails unless err is a gRPC status with a message from this
// package.
func checkStatus(t *testing.T, err error) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || len(st.Message()) < len("keyservice: ") || st.Message()[:len("keyservice: ")] != "keyservice: " {
		t.Fatalf("error %v is not a keyservice status", err)
	}
}
