// Webapp is keyward's reference web application: the specification's whole
// data flow in one small program a team can copy as the start of its own.
// People use a frontend, which sends sensitive data to the backend, which
// stores it encrypted in a database, decrypts it on request for those
// allowed, rotates keys, logs every access and watches key usage for
// anomalies.
//
//	go run ./examples/webapp                 # http://127.0.0.1:8080, SQLite in ./webapp-data
//	go run ./examples/webapp -dsn postgres://...
//	go run ./examples/webapp -aws-kms alias/records -aws-region eu-west-1
//
// It prints the URL and the demo users: alice (clerk), bob (doctor) and
// carol (admin). Sign-in is a choice of user, without a password: keep the
// default loopback address.
//
// # Flags
//
//	-addr host:port       where to listen (default 127.0.0.1:8080)
//	-dir DIR              crypto.key, webapp.db and audit/ (default webapp-data, 0700)
//	-dsn DSN              PostgreSQL instead of the embedded SQLite file
//	-key PATH             the crypto.key file, created (0600) if missing (default DIR/crypto.key)
//	-aws-kms KEY          an AWS KMS key instead (-aws-region, -kms-endpoint)
//	-gcp-kms NAME         a Cloud KMS CryptoKey instead (-kms-endpoint, -kms-plaintext)
//	-policy FILE          the access policy (default: the built-in policy.json)
//	-anomaly-config FILE  the analyzer's thresholds (default: its defaults, working hours 00-24)
//	-otlp-endpoint H:P    also export spans to an OpenTelemetry Collector (-otlp-insecure)
//	-seed N               fictional records created when the table is empty (default 120)
//
// # What is wired to what
//
// The key-encryption key (crypto.key or a cloud KMS key) wraps the data
// keys of the keyring "records", kept in the same database
// (gormcrypt.NewStore). The model Record has its SSN, e-mail address and
// notes tagged for gormcrypt; the e-mail address has a blind index for
// search. gormcrypt asks an access.Guard before each field is encrypted or
// decrypted, as the signed-in user, and the guard writes every decision to
// the hash-chained audit log (audit/, under a key derived from the keyring)
// and, through access/otelaccess, to the request's span. An OpenTelemetry
// tracer provider runs the anomaly analyzer (telemetry/anomaly) as a span
// processor; the GORM layer hands it each value as an event.
//
// The policy (policy.json) has three roles: clerk (create records, read and
// search e-mail addresses), doctor (a clerk who also reads SSN and notes)
// and admin (keys, audit and monitoring, no record data). Pages and lists
// ask the policy, without auditing, what to show; every decryption, blind
// index computation and key operation is decided and audited by the guard.
//
// # Pages
//
//   - Records: create; a list that decrypts only what the role may read and
//     masks the rest; reveal (SSN and notes of one record, audited); search
//     by e-mail address through the blind index.
//   - What the database stores: the raw row, read with hand-written SQL,
//     next to what the user sees, with each token's key ID.
//   - Keys: versions with state, age and encryptions; rotate; re-encrypt
//     with a progress bar fed by server-sent events; the inventory of
//     stored values per key ID, read from the tokens' headers.
//   - Audit: the latest entries filtered by user and result, the chain's
//     verification against a fresh checkpoint, and the verification of a
//     tampered copy of the log.
//   - Monitoring: the analyzer's findings and a per-user activity chart
//     (inline SVG) with the findings marked; a button replays a scripted
//     incident (a clerk account pages through every e-mail address, then
//     tries one SSN after another) through the application's own code
//     paths.
//
// # Web security
//
// The session is a cookie signed with HMAC-SHA256 under a key derived from
// the keyring (HttpOnly, SameSite=Strict, Secure behind HTTPS); the access
// middleware puts its principal into the request context. State-changing
// requests need the session's CSRF token (an HMAC of the session ID), a
// JSON body and a same-origin fetch (net/http's CrossOriginProtection). A
// strict Content-Security-Policy allows only the page's own script and
// style; the frontend puts every value into the page as text. Values travel
// in request bodies, never in URLs; the request log holds the route, status,
// duration, user and trace ID, never a query, header or body; error
// responses name the problem, never the input. Bodies are limited to 16 KiB;
// the server has read and write timeouts and shuts down gracefully on
// SIGINT or SIGTERM.
//
// # Tests
//
// The API tests (httptest, SQLite and PostgreSQL) make every call as every
// role and check the status and that the audit log gained exactly the
// call's decisions; they check CSRF refusals, forged cookies, the security
// headers, rotation with re-encryption, the incident replay, and that no
// value reaches the request log, the audit log or a span. The browser test
// drives Debian's chromium headless through the whole flow and saves
// screenshots; `go test -run TestBrowser ./examples/webapp
// -update-screenshots` writes them to assets/ for the README. Without
// chromium it skips (and fails when CI is set).
package main
