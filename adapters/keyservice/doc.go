// Package keyservice is keyward's own key service over gRPC with mutual
// TLS, for applications that must never hold the key-encryption key (KEK):
// the Server holds the KEK (a crypto.key file or a cloud KMS key, any
// keyring.KeySource) and wraps and unwraps data keys for authenticated
// services that its policy allows; Source is the keyring.KeySource those
// services use to reach it.
//
//	application ── keyring (data keys cached) ── Source ══ mutual TLS ══> Server ── KEK
//	                                                                       │
//	                                               policy, audit log, telemetry
//
// A keyring calls its key source once per data key per cache TTL, not per
// record (keyring.WithCacheTTL), so the service sees a handful of calls per
// application instance and period; while it is unreachable the keyrings
// keep serving their cached keys for the stale window
// (keyring.WithStaleWindow). `keyward serve` (examples/keyward) runs the
// server.
//
// # Set-up in five minutes
//
// With the keyward command (go install
// github.com/keyward/keyward/examples/keyward@latest):
//
//	keyward keygen -o crypto.key                      # the KEK; only the service reads it
//	keyward certs -o certs --client spiffe://example.org/billing
//	cat > policy.json <<'EOF'
//	{"version": 1, "roles": [
//	  {"name": "spiffe://example.org/billing",
//	   "permissions": [{"actions": ["encrypt", "decrypt"], "resources": ["keyring:*"]}]}
//	]}
//	EOF
//	keyward serve --listen 127.0.0.1:7443 -k crypto.key \
//	    --tls-cert certs/server.pem --tls-key certs/server-key.pem --client-ca certs/ca.pem \
//	    --policy policy.json --audit audit --events events.jsonl
//
//	# in another shell, as the billing service:
//	keyward encrypt --create --key-service localhost:7443 --tls-cert certs/client-billing.pem \
//	    --tls-key certs/client-billing-key.pem --server-ca certs/ca.pem --store keys.json 123-45-6789
//	keyward audit verify -k crypto.key --store audit/audit-keyring.json --keyring audit audit/audit-*.jsonl
//	keyward analyze events.jsonl
//
// keyward certs makes a test CA (certs/ca.pem, certs/ca-key.pem), a server
// certificate for localhost and 127.0.0.1, and one client certificate per
// --client; run it again with more --client flags to add clients under the
// same CA. Production certificates come from the organization's CA or from
// SPIFFE/SPIRE. An openssl equivalent for one client:
//
//	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout client-key.pem \
//	    -subj /CN=billing -addext subjectAltName=URI:spiffe://example.org/billing -out client.csr
//	openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -days 365 -copy_extensions copy \
//	    -extfile <(echo extendedKeyUsage=clientAuth) -out client.pem
//
// In Go, the application side is:
//
//	src, err := keyservice.New([]string{"keys.internal:7443"},
//		keyservice.WithTLSFiles("client.pem", "client-key.pem", "ca.pem"))
//	defer src.Close()
//	kr, err := keyring.New(ctx, "pii", src, store)
//
// # Identity and policy
//
// The caller's principal is the identity in its client certificate: the
// SPIFFE ID (its one URI SAN with the spiffe scheme) or else its first DNS
// SAN (see Identity). A client without a certificate, with one the server's
// client CAs did not issue, with an expired one, or with one that names no
// identity is refused at the TLS handshake. The principal's one role is its
// identity, so a policy (access.ParsePolicy format) names principals as
// roles, which may inherit shared roles. Each call is authorized on the
// resource "keyring:NAME" of the keyring the request names, with the
// action:
//
//   - Wrap, BatchWrap: access.ActionEncrypt ("encrypt");
//   - Unwrap, BatchUnwrap: access.ActionDecrypt ("decrypt");
//   - Rewrap: access.ActionRewrap ("rewrap").
//
// Whatever the policy does not grant is denied. The keyring name is bound
// into every wrapped key, so a wrapped key of one keyring does not unwrap
// as another's: a principal allowed one keyring cannot read another's keys
// by naming its own. A keyring's calls name it from their associated data
// (the keyring's data-key binding); direct calls with other associated data take the
// Source's WithKeyring default.
//
// A server made with WithServerInsecureLoopback (`keyward serve
// --insecure-loopback`) speaks plain gRPC, on a loopback address only, with
// a loud warning; every caller is then InsecurePrincipal. It is for local
// development.
//
// # Audit
//
// Every item of every call that reaches the service, allowed or denied,
// is one access.Record: the principal (as user and role), the action, the
// keyring resource, and the decision with its reason when it was not
// granted (denied by the policy, rate limited, malformed, checksum
// mismatch, or the key source's failure, such as a wrapped key that does
// not authenticate). A call whose record cannot be written is refused
// (UNAVAILABLE), and the key it would have returned is dropped: the
// auditor fails closed unless built with access.WithFailOpen. Connections
// refused at the handshake reach no call and are not audited. `keyward
// serve --audit DIR` writes an access.AuditLog whose audit key is derived
// from the keyring "audit" in DIR/audit-keyring.json, wrapped by the
// service's KEK, so `keyward audit verify` with the KEK verifies it.
//
// # Protocol
//
// gRPC service keyward.v1.KeyService (ServiceName): Wrap, Unwrap, Rewrap,
// BatchWrap and BatchUnwrap, and the standard grpc.health.v1.Health
// service, which reports ServiceName as SERVING until Shutdown. The .proto
// is internal/keyservicepb/keyservice.proto. Every request names the
// keyring and carries the associated data; every payload (data key,
// wrapped key, associated data) travels with its CRC32C (Castagnoli) in
// both directions. The server answers a mismatched request with DATA_LOSS;
// the Source checks every answer, retries a mismatch up to
// WithIntegrityAttempts times and then fails with ErrIntegrity; a payload
// that fails its check is never used. A batch carries at most
// MaxBatchItems items, each with the caller's reference; every item has
// its own result, and one bad item does not fail the others.
//
// A wrapped key is an envelope: a version byte, the length and the ID of
// the server's key source that made it, then that source's wrapped key,
// whose associated data binds the source ID, the keyring name and the
// caller's associated data. Unwrap picks the key source by the ID, never
// by trying. Rewrap unwraps inside the service and wraps again under the
// current key source, keeping the keyring and the associated data; the
// data key never leaves the service.
//
// # Changing the service's KEK
//
// Start the service with the new KEK and the old one as a previous key
// source (WithPreviousKeySources, `keyward serve -k new.key --previous-key
// old.key`), let a principal with the rewrap permission run
// Source.RewrapKeyring on every keyring, then drop the old KEK. A cloud KMS
// rotates its own key versions; nothing is needed then.
//
// # Hardening
//
//   - Limits: a message over MaxMessageSize is refused by gRPC before it is
//     read; items over MaxDataKeySize, MaxWrappedSize, MaxAADSize or
//     MaxKeyringName, and batches over MaxBatchItems, are refused and
//     audited.
//   - Rate limits per principal (WithRateLimit; a batch counts its items,
//     at most the burst): RESOURCE_EXHAUSTED, which the Source retries with
//     backoff.
//   - Deadlines: the server bounds every call (WithCallTimeout) whatever
//     the client asks; connections must finish their handshake within 10 s;
//     at most 256 concurrent calls per connection.
//   - Shutdown lets the calls in flight finish: the health service reports
//     NOT_SERVING, so clients move to other instances, and new calls are
//     refused.
//   - No key material, payload or associated data is written to a log,
//     error, span, metric or audit record. Principals, keyring names, key
//     IDs and key source IDs are not secret and do appear.
//
// # The KEK in memory
//
// The KEK is loaded once, when the key source is made. For a crypto.key,
// filekey.Open zeroes the file's bytes and the decoded key as soon as it has
// built the AES key schedule; the schedule itself lives inside crypto/aes,
// which offers no way to zero it, and is dropped with the key source when
// the process ends (best effort, as everything of this kind in Go: the
// garbage collector may have copied buffers before they were zeroed). A
// cloud KMS key never leaves the KMS. Unwrapped data keys pass through the
// server's memory for the duration of a call; the buffers gRPC marshals
// into are not zeroed.
//
// # Several instances
//
// The service keeps no state besides its audit log: any number of
// instances with the same KEK and policy serve the same keyrings (each with
// its own audit directory). Give New every address, or one DNS name that
// resolves to all of them: the Source spreads calls over the instances
// (round robin), skips one whose health is not SERVING, and retries a call
// that failed because an instance went away on another. The Source's ID is
// "keyservice:" and the service's name (WithServerName, default the host of
// the first address); it is stored with every wrapped data key, so give
// every client the same name, ideally the DNS name in the service's
// certificate.
//
// # Performance
//
// Measured with Go benchmarks over loopback with mutual TLS, client and
// server in one process on a 2-core virtual machine that other work kept
// busy (load average about 10), so the ranges are wide:
//
//	go test -run '^$' -bench BenchmarkUnwrap -benchtime 3s -count 2 ./adapters/keyservice/
//	go test -run '^$' -bench BenchmarkKeyring -count 6 ./adapters/keyservice/
//
//	Unwrap, audit records to a discarded logger   p50        p99         unwraps/s
//	  1 client                                    66-90 µs   1.7-5 ms    3,300-6,500
//	  64 clients, 64 connections                  12-26 ms   100-220 ms  1,600-3,200
//	  64 callers, 1 connection                    4-11 ms    18-110 ms   3,000-13,000
//	Unwrap, hash-chained audit file (fsync)
//	  1 client                                    0.7-1.1 ms 7-24 ms     500-1,000
//	  64 clients, 64 connections                  13-19 ms   50-80 ms    2,700-4,100
//	  64 callers, 1 connection                    8.6-9.3 ms 47-50 ms    5,300-6,000
//
// With 64 callers the two cores are the limit: the figures are queueing,
// not the service's own work. The audit file syncs each record, and
// concurrent calls share one fsync, so it costs a single caller most.
// BenchmarkKeyring puts a warm keyring over the key service next to one
// over a file key, 64-byte Encrypt and Decrypt interleaved in one run
// (internal/benchbase.Interleave): the ratio (key service over file key)
// had a median of 0.99 for both over six runs (Encrypt 0.96-1.25, Decrypt
// 0.87-1.03), as the cached data key keeps the service off the hot path.
//
// # Errors
//
// The Source wraps the keyring sentinels, and status.Code
// (google.golang.org/grpc/status) still reads the gRPC code:
//
//   - keyring.ErrKEKAccessDenied: PERMISSION_DENIED (the policy does not
//     allow this principal the action on the keyring), UNAUTHENTICATED;
//   - keyring.ErrUnwrap: INVALID_ARGUMENT on Unwrap and Rewrap (the wrapped
//     key does not authenticate with this keyring and associated data, or
//     its KEK is not held by the service);
//   - keyring.ErrKEKNotFound: NOT_FOUND; keyring.ErrKEKDisabled:
//     FAILED_PRECONDITION (the service's KEK is missing, disabled or refuses
//     the service);
//   - keyring.ErrKEKUnavailable: UNAVAILABLE (also a refused handshake or
//     an unreachable service), RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED,
//     INTERNAL, DATA_LOSS, and ErrIntegrity.
//
// UNAVAILABLE and RESOURCE_EXHAUSTED are retried with exponential backoff
// and jitter (WithRetry), never past the caller's deadline. A cancelled
// context gives an error matching context.Canceled.
//
// # Concurrency
//
// Server and Source are safe for concurrent use.
package keyservice
