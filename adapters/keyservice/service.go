package keyservice

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/adapters/keyservice/internal/keyservicepb"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/telemetry"
)

// op is what a call does to each of its items.
type op int

const (
	opWrap op = iota
	opUnwrap
	opRewrap
)

func (o op) String() string { return [...]string{"wrap", "unwrap", "rewrap"}[o] }

// action is the access action a policy grants for o: wrapping is
// encrypting with the keyring's KEK, unwrapping is decrypting.
func (o op) action() string {
	return [...]string{access.ActionEncrypt, access.ActionDecrypt, access.ActionRewrap}[o]
}

// tel is the telemetry action of o.
func (o op) tel() telemetry.Action {
	return [...]telemetry.Action{telemetry.ActionEncrypt, telemetry.ActionDecrypt, telemetry.ActionRewrap}[o]
}

// item is one data key of a call, decoded from any of the request messages.
type item struct {
	keyring string
	data    []byte // the data key (wrap) or the wrapped key (unwrap, rewrap)
	dataCRC uint32
	aad     []byte
	aadCRC  uint32
}

// result is the outcome of one item: data, or a gRPC status error.
type result struct {
	data []byte
	err  error
}

func wrapItem(r *keyservicepb.WrapRequest) item {
	return item{r.GetKeyring(), r.GetPlaintext(), r.GetPlaintextCrc32C(), r.GetAssociatedData(), r.GetAssociatedDataCrc32C()}
}

func unwrapItem(r *keyservicepb.UnwrapRequest) item {
	return item{r.GetKeyring(), r.GetWrapped(), r.GetWrappedCrc32C(), r.GetAssociatedData(), r.GetAssociatedDataCrc32C()}
}

func rewrapItem(r *keyservicepb.RewrapRequest) item {
	return item{r.GetKeyring(), r.GetWrapped(), r.GetWrappedCrc32C(), r.GetAssociatedData(), r.GetAssociatedDataCrc32C()}
}

// validName reports whether the item's keyring name may appear in audit
// records, spans and events: not empty, not too long, UTF-8.
func (it *item) validName() bool {
	return it.keyring != "" && len(it.keyring) <= MaxKeyringName && utf8.ValidString(it.keyring)
}

// resource is the access resource of the item's keyring, or "" for a name
// that is not valid.
func (it *item) resource() string {
	if !it.validName() {
		return ""
	}
	return access.KeyringResource(it.keyring)
}

// check validates an item's sizes and checksums. It returns the status code
// and the reason (for the audit record) of the first problem, or OK.
func (it *item) check(o op) (codes.Code, string) {
	maxData, what := MaxWrappedSize, "wrapped key"
	if o == opWrap {
		maxData, what = MaxDataKeySize, "data key"
	}
	switch {
	case it.keyring == "":
		return codes.InvalidArgument, "malformed request: no keyring name"
	case len(it.keyring) > MaxKeyringName:
		return codes.InvalidArgument, fmt.Sprintf("malformed request: keyring name longer than %d bytes", MaxKeyringName)
	case !utf8.ValidString(it.keyring):
		return codes.InvalidArgument, "malformed request: keyring name is not UTF-8"
	case len(it.data) == 0 || len(it.data) > maxData:
		return codes.InvalidArgument, fmt.Sprintf("malformed request: %s of %d bytes, want 1 to %d", what, len(it.data), maxData)
	case len(it.aad) > MaxAADSize:
		return codes.InvalidArgument, fmt.Sprintf("malformed request: associated data of %d bytes, more than %d", len(it.aad), MaxAADSize)
	case checksum(it.data) != it.dataCRC:
		return codes.DataLoss, "checksum mismatch: " + what
	case checksum(it.aad) != it.aadCRC:
		return codes.DataLoss, "checksum mismatch: associated data"
	}
	return codes.OK, ""
}

// service implements keyservicepb.KeyServiceServer for a Server; it is kept
// apart so that the Server's method set is its public API only.
type service struct {
	keyservicepb.UnimplementedKeyServiceServer
	s *Server
}

func (v *service) Wrap(ctx context.Context, req *keyservicepb.WrapRequest) (*keyservicepb.WrapResponse, error) {
	r, err := v.s.handle(ctx, opWrap, false, []item{wrapItem(req)})
	if err != nil {
		return nil, err
	}
	return &keyservicepb.WrapResponse{Wrapped: r[0].data, WrappedCrc32C: checksum(r[0].data)}, nil
}

func (v *service) Unwrap(ctx context.Context, req *keyservicepb.UnwrapRequest) (*keyservicepb.UnwrapResponse, error) {
	r, err := v.s.handle(ctx, opUnwrap, false, []item{unwrapItem(req)})
	if err != nil {
		return nil, err
	}
	return &keyservicepb.UnwrapResponse{Plaintext: r[0].data, PlaintextCrc32C: checksum(r[0].data)}, nil
}

func (v *service) Rewrap(ctx context.Context, req *keyservicepb.RewrapRequest) (*keyservicepb.RewrapResponse, error) {
	r, err := v.s.handle(ctx, opRewrap, false, []item{rewrapItem(req)})
	if err != nil {
		return nil, err
	}
	return &keyservicepb.RewrapResponse{Wrapped: r[0].data, WrappedCrc32C: checksum(r[0].data)}, nil
}

func (v *service) BatchWrap(ctx context.Context, req *keyservicepb.BatchWrapRequest) (*keyservicepb.BatchWrapResponse, error) {
	in := req.GetItems()
	items, refs := make([]item, len(in)), make([]string, len(in))
	for i, x := range in {
		items[i], refs[i] = wrapItem(x.GetRequest()), x.GetRef()
	}
	rs, err := v.s.handleBatch(ctx, opWrap, items, refs)
	if err != nil {
		return nil, err
	}
	out := &keyservicepb.BatchWrapResponse{Results: make([]*keyservicepb.BatchWrapResponse_Result, len(rs))}
	for i, r := range rs {
		res := &keyservicepb.BatchWrapResponse_Result{Ref: refs[i], Error: itemError(r.err)}
		if r.err == nil {
			res.Response = &keyservicepb.WrapResponse{Wrapped: r.data, WrappedCrc32C: checksum(r.data)}
		}
		out.Results[i] = res
	}
	return out, nil
}

func (v *service) BatchUnwrap(ctx context.Context, req *keyservicepb.BatchUnwrapRequest) (*keyservicepb.BatchUnwrapResponse, error) {
	in := req.GetItems()
	items, refs := make([]item, len(in)), make([]string, len(in))
	for i, x := range in {
		items[i], refs[i] = unwrapItem(x.GetRequest()), x.GetRef()
	}
	rs, err := v.s.handleBatch(ctx, opUnwrap, items, refs)
	if err != nil {
		return nil, err
	}
	out := &keyservicepb.BatchUnwrapResponse{Results: make([]*keyservicepb.BatchUnwrapResponse_Result, len(rs))}
	for i, r := range rs {
		res := &keyservicepb.BatchUnwrapResponse_Result{Ref: refs[i], Error: itemError(r.err)}
		if r.err == nil {
			res.Response = &keyservicepb.UnwrapResponse{Plaintext: r.data, PlaintextCrc32C: checksum(r.data)}
		}
		out.Results[i] = res
	}
	return out, nil
}

// itemError is the wire form of an item's status error (nil for none).
func itemError(err error) *keyservicepb.ItemError {
	if err == nil {
		return nil
	}
	st := status.Convert(err)
	return &keyservicepb.ItemError{Code: uint32(st.Code()), Message: st.Message()}
}

// handleBatch checks what only a batch has (item count, references) and
// runs its items. A batch over MaxBatchItems or with no item is refused
// whole, with one audit record.
func (s *Server) handleBatch(ctx context.Context, o op, items []item, refs []string) ([]result, error) {
	reason := ""
	switch {
	case len(items) == 0:
		reason = "malformed request: empty batch"
	case len(items) > MaxBatchItems:
		reason = fmt.Sprintf("malformed request: batch of %d items, more than %d", len(items), MaxBatchItems)
	}
	for _, r := range refs {
		if len(r) > MaxRefSize && reason == "" {
			reason = fmt.Sprintf("malformed request: item reference longer than %d bytes", MaxRefSize)
		}
	}
	if reason == "" {
		return s.handle(ctx, o, true, items)
	}
	c, err := callerFrom(ctx, s.cfg.insecure)
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, "keyservice: "+err.Error())
	}
	rec := access.Record{UserID: c.principal, Roles: []string{c.principal}, Action: o.action(), Decision: access.DecisionDeny, Reason: reason}
	if err := s.auditor.Record(context.WithoutCancel(ctx), rec); err != nil {
		return nil, s.auditFailed(err)
	}
	return nil, status.Error(codes.InvalidArgument, "keyservice: "+reason)
}

// handle runs the items of one call. Every item of every call passes
// through here: the caller's identity, the server's deadline, the rate
// limit, one span per call, and per item the checks, the policy, the key
// source, the audit record and the usage event (see one). A single call
// (batch false) returns its item's error as the call's error; a batch that
// the rate limit refuses is refused whole.
func (s *Server) handle(ctx context.Context, o op, batch bool, items []item) ([]result, error) {
	c, err := callerFrom(ctx, s.cfg.insecure)
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, "keyservice: "+err.Error())
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.callTimeout)
	defer cancel()
	ctx = access.WithPrincipal(ctx, access.Principal{UserID: c.principal, Roles: []string{c.principal}})

	attrs := []attribute.KeyValue{s.in.UserID(c.principal)}
	if c.source != "" {
		attrs = append(attrs, telemetry.AttrSource.String(c.source))
	}
	if !batch && items[0].validName() {
		attrs = append(attrs, telemetry.AttrKeyring.String(items[0].keyring))
	}
	ctx, span := s.in.Start(ctx, o.tel(), attrs...)

	limited := !s.limits.allow(c.principal, len(items))
	results := make([]result, len(items))
	var failed, denied int
	for i := range items {
		r, wasDenied := s.one(ctx, c, o, &items[i], limited, batch)
		results[i] = r
		if r.err != nil {
			failed++
		}
		if wasDenied {
			denied++
		}
	}
	outcome := telemetry.OutcomeOK
	switch {
	case denied == len(items):
		outcome = telemetry.OutcomeDenied
	case failed > 0:
		outcome = telemetry.OutcomeError
	}
	s.in.End(span, outcome, len(items), nil)

	switch {
	case !batch && results[0].err != nil:
		return nil, results[0].err
	case batch && limited:
		return nil, results[0].err
	}
	return results, nil
}

// one runs one item: check, authorize, apply, audit, record. It reports
// whether the policy denied it.
func (s *Server) one(ctx context.Context, c caller, o op, it *item, limited, batch bool) (r result, denied bool) {
	code, reason := codes.OK, ""
	msg := ""
	authorized := false
	switch {
	case limited:
		code, reason = codes.ResourceExhausted, "rate limited"
		msg = "keyservice: rate limit exceeded for " + c.principal
	default:
		if code, reason = it.check(o); code != codes.OK {
			msg = "keyservice: " + reason
			break
		}
		if err := s.policy.Load().Authorize(ctx, o.action(), it.resource()); err != nil {
			denied = true
			code, reason = codes.PermissionDenied, "no matching permission"
			var de *access.DeniedError
			if errors.As(err, &de) {
				reason = de.Reason
			}
			msg = fmt.Sprintf("keyservice: %s may not %s data keys of keyring %q (%s)", c.principal, o, it.keyring, reason)
			break
		}
		authorized = true
		start := time.Now()
		data, err := s.apply(ctx, o, it)
		kmsOutcome := telemetry.OutcomeOK
		if err != nil {
			kmsOutcome = telemetry.OutcomeError
			code, reason, msg = s.classify(o, err)
		}
		s.in.RecordKMS(ctx, time.Since(start), kmsOutcome)
		r.data = data
	}
	rec := access.Record{
		UserID: c.principal, Roles: []string{c.principal}, Action: o.action(),
		Resource: it.resource(), Decision: access.DecisionAllow,
	}
	if code != codes.OK {
		rec.Decision, rec.Reason = access.DecisionDeny, reason
	}
	if err := s.auditor.Record(context.WithoutCancel(ctx), rec); err != nil {
		clear(r.data)
		r.data = nil
		r.err = s.auditFailed(err)
	} else if code != codes.OK {
		r.err = status.Error(code, msg)
	}
	s.record(ctx, c, o, it, r.err == nil, denied, authorized, batch)
	return r, denied
}

// auditFailed logs an audit record the auditor could not write and returns
// the error of the call it refuses.
func (s *Server) auditFailed(err error) error {
	s.log.Error("keyservice: audit record not written; call refused", slog.String("error", err.Error()))
	return status.Error(codes.Unavailable, "keyservice: the call could not be audited and is refused")
}

// unknownKEKError reports a wrapped key whose envelope names a key source
// the server does not hold.
type unknownKEKError struct{ id string }

func (e *unknownKEKError) Error() string {
	return fmt.Sprintf("wrapped under key-encryption key %q, which this service does not hold", e.id)
}

// apply does the item's operation with the key sources.
func (s *Server) apply(ctx context.Context, o op, it *item) ([]byte, error) {
	if o == opWrap {
		return s.wrap(ctx, it.keyring, it.data, it.aad)
	}
	kekID, inner, err := openEnvelope(it.data)
	if err != nil {
		return nil, err
	}
	src, ok := s.sources[kekID]
	if !ok {
		return nil, &unknownKEKError{kekID}
	}
	dek, err := src.Unwrap(ctx, inner, innerAAD(kekID, it.keyring, it.aad))
	if err != nil || o == opUnwrap {
		return dek, err
	}
	defer clear(dek)
	return s.wrap(ctx, it.keyring, dek, it.aad)
}

func (s *Server) wrap(ctx context.Context, keyringName string, dek, aad []byte) ([]byte, error) {
	id := s.src.ID()
	inner, err := s.src.Wrap(ctx, dek, innerAAD(id, keyringName, aad))
	if err != nil {
		return nil, err
	}
	return sealEnvelope(id, inner), nil
}

// classify maps an error of the key sources to the call's status code, the
// audit reason and the message. Failures of the service's own KEK are
// logged; a caller's bad wrapped key is not.
func (s *Server) classify(o op, err error) (codes.Code, string, string) {
	var uk *unknownKEKError
	code, reason := codes.Internal, "key source failed"
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		code, reason = codes.DeadlineExceeded, "deadline exceeded"
	case errors.Is(err, context.Canceled):
		code, reason = codes.Canceled, "cancelled"
	case errors.As(err, &uk):
		return codes.InvalidArgument, "unknown key-encryption key", "keyservice: " + o.String() + ": " + uk.Error()
	case errors.Is(err, errEnvelope), errors.Is(err, keyring.ErrUnwrap):
		return codes.InvalidArgument, "wrapped key does not authenticate",
			"keyservice: " + o.String() + ": the wrapped key does not authenticate (modified, or given with another keyring or associated data)"
	case errors.Is(err, keyring.ErrKEKUnavailable):
		code, reason = codes.Unavailable, "key-encryption key unavailable"
	case errors.Is(err, keyring.ErrKEKNotFound):
		code, reason = codes.NotFound, "key-encryption key not found"
	case errors.Is(err, keyring.ErrKEKDisabled), errors.Is(err, keyring.ErrKEKAccessDenied):
		code, reason = codes.FailedPrecondition, "key-encryption key disabled or refused"
	}
	if code != codes.Canceled && code != codes.DeadlineExceeded {
		s.log.Warn("keyservice: key source failed", slog.String("op", o.String()), slog.String("error", err.Error()))
	}
	return code, reason, "keyservice: " + o.String() + ": " + reason
}

// record counts the item in the operations metric and emits its usage
// event: the principal as user, the keyring and data key ID (read from the
// keyring's associated data when it is a data-key binding) as data ID, the
// peer address as source. A policy denial is an access event. Metrics
// carry the keyring only for authorized items, so that callers cannot
// inflate their cardinality.
func (s *Server) record(ctx context.Context, c caller, o op, it *item, ok, denied, authorized, batch bool) {
	outcome := telemetry.OutcomeOK
	switch {
	case denied:
		outcome = telemetry.OutcomeDenied
	case !ok:
		outcome = telemetry.OutcomeError
	}
	metricKeyring, dataID := "", ""
	if authorized {
		metricKeyring = it.keyring
	}
	if it.validName() {
		dataID = it.keyring
	}
	s.in.RecordOp(ctx, o.tel(), metricKeyring, 0, outcome, 1)

	e := telemetry.Event{Action: o.tel(), UserID: c.principal, DataID: dataID, Success: ok, Source: c.source}
	if _, id, isDEK := dekBinding(it.aad); isDEK && dataID != "" {
		e.KeyID = strconv.FormatUint(uint64(id), 10)
		e.DataID = it.keyring + "/" + e.KeyID
	}
	if denied {
		e.Action, e.Attempted = telemetry.ActionAccess, o.tel()
	}
	if batch {
		s.in.Emit(ctx, e)
	} else {
		s.in.Record(ctx, e)
	}
}
