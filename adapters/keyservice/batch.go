package keyservice

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/keyward/keyward/adapters/keyservice/internal/keyservicepb"
)

// Item is one data key of a batch call.
type Item struct {
	// Ref is the caller's reference, returned in the item's Result.
	Ref string
	// Keyring is the keyring the key belongs to; "" takes it from AAD or
	// WithKeyring, as Wrap and Unwrap do.
	Keyring string
	// Key is the data key (WrapBatch) or the wrapped key (UnwrapBatch).
	Key []byte
	// AAD is the associated data the wrapped key is bound to.
	AAD []byte
}

// Result is the outcome of one Item: Key is the wrapped key (WrapBatch)
// or the data key (UnwrapBatch), or Err says why the item failed, with the
// keyring sentinels Wrap and Unwrap use.
type Result struct {
	Ref string
	Key []byte
	Err error
}

// String describes the item without its key (only the key's length).
func (it Item) String() string {
	return fmt.Sprintf("keyservice.Item{Ref %q, keyring %q, key %d bytes, AAD %d bytes}", it.Ref, it.Keyring, len(it.Key), len(it.AAD))
}

// GoString is String.
func (it Item) GoString() string { return it.String() }

// Format prints String under every verb: never the key.
func (it Item) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(it.String())) }

// String describes the result without its key (only the key's length).
func (r Result) String() string {
	return fmt.Sprintf("keyservice.Result{Ref %q, key %d bytes, err %v}", r.Ref, len(r.Key), r.Err)
}

// GoString is String.
func (r Result) GoString() string { return r.String() }

// Format prints String under every verb: never the key.
func (r Result) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(r.String())) }

// WrapBatch wraps several data keys in one call (at most MaxBatchItems).
// One bad item does not fail the others: each has its own Result, in the
// order of items. The error is for the call as a whole (unreachable
// service, rate limited after the retries, malformed batch).
func (s *Source) WrapBatch(ctx context.Context, items []Item) ([]Result, error) {
	req := &keyservicepb.BatchWrapRequest{}
	err := s.batchItems("wrap", items, func(it Item, name string) {
		req.Items = append(req.Items, &keyservicepb.BatchWrapRequest_Item{Ref: it.Ref, Request: &keyservicepb.WrapRequest{
			Keyring: name, Plaintext: it.Key, PlaintextCrc32C: checksum(it.Key),
			AssociatedData: it.AAD, AssociatedDataCrc32C: checksum(it.AAD),
		}})
	})
	if err != nil {
		return nil, err
	}
	var out []Result
	err = s.do(ctx, "wrap", func(ctx context.Context) error {
		resp, err := s.client.BatchWrap(ctx, req)
		if err != nil {
			return err
		}
		out, err = batchResults(ctx, s, "wrap", items, resp.GetResults(), func(r *keyservicepb.BatchWrapResponse_Result) ([]byte, uint32, *keyservicepb.ItemError, string) {
			return r.GetResponse().GetWrapped(), r.GetResponse().GetWrappedCrc32C(), r.GetError(), r.GetRef()
		})
		return err
	})
	return out, err
}

// UnwrapBatch unwraps several wrapped keys in one call (at most
// MaxBatchItems); see WrapBatch.
func (s *Source) UnwrapBatch(ctx context.Context, items []Item) ([]Result, error) {
	req := &keyservicepb.BatchUnwrapRequest{}
	err := s.batchItems("unwrap", items, func(it Item, name string) {
		req.Items = append(req.Items, &keyservicepb.BatchUnwrapRequest_Item{Ref: it.Ref, Request: &keyservicepb.UnwrapRequest{
			Keyring: name, Wrapped: it.Key, WrappedCrc32C: checksum(it.Key),
			AssociatedData: it.AAD, AssociatedDataCrc32C: checksum(it.AAD),
		}})
	})
	if err != nil {
		return nil, err
	}
	var out []Result
	err = s.do(ctx, "unwrap", func(ctx context.Context) error {
		resp, err := s.client.BatchUnwrap(ctx, req)
		if err != nil {
			return err
		}
		out, err = batchResults(ctx, s, "unwrap", items, resp.GetResults(), func(r *keyservicepb.BatchUnwrapResponse_Result) ([]byte, uint32, *keyservicepb.ItemError, string) {
			return r.GetResponse().GetPlaintext(), r.GetResponse().GetPlaintextCrc32C(), r.GetError(), r.GetRef()
		})
		return err
	})
	return out, err
}

// batchItems checks the batch's size and adds each item with its keyring.
func (s *Source) batchItems(op string, items []Item, add func(Item, string)) error {
	if len(items) == 0 || len(items) > MaxBatchItems {
		return fmt.Errorf("keyservice: %s batch of %d items, want 1 to %d", op, len(items), MaxBatchItems)
	}
	for _, it := range items {
		name := it.Keyring
		if name == "" {
			var err error
			if name, err = s.keyringFor(op, it.AAD); err != nil {
				return fmt.Errorf("%w (item %q)", err, it.Ref)
			}
		}
		add(it, name)
	}
	return nil
}

// batchResults checks an answer (one result per item, in order, with the
// items' references) and turns it into Results; an item whose payload fails
// its CRC32C gets ErrIntegrity.
func batchResults[R any](ctx context.Context, s *Source, op string, items []Item, rs []R, parts func(R) ([]byte, uint32, *keyservicepb.ItemError, string)) ([]Result, error) {
	if len(rs) != len(items) {
		return nil, fmt.Errorf("%w: %d results for %d items", errChecksum, len(rs), len(items))
	}
	out := make([]Result, len(rs))
	for i, r := range rs {
		data, sum, ierr, ref := parts(r)
		if ref != items[i].Ref {
			return nil, fmt.Errorf("%w: result %d has another reference than its item", errChecksum, i)
		}
		out[i].Ref = ref
		switch {
		case ierr != nil:
			out[i].Err = s.classify(ctx, op, status.Error(codes.Code(ierr.GetCode()), ierr.GetMessage()))
		case len(data) == 0 || checksum(data) != sum:
			clear(data)
			out[i].Err = s.classify(ctx, op, fmt.Errorf("%w: %w", ErrIntegrity, errChecksum))
		default:
			out[i].Key = data
		}
	}
	return out, nil
}
