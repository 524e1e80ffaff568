package main

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"gorm.io/gorm"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/telemetry"
)

//go:embed web
var webFS embed.FS

// maxBody is the largest request body accepted.
const maxBody = 16 << 10

// contentSecurityPolicy allows the page's own scripts, styles and requests
// and nothing else: no inline script or style, no other origin, no frames.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// handler returns the application's HTTP handler: the embedded frontend
// and the JSON API, behind the security headers, the request log and
// span, the body limit and cross-origin protection. API routes other than
// sign-in need a session; state-changing ones also its CSRF token.
func (a *app) handler() http.Handler {
	api := http.NewServeMux()
	api.HandleFunc("GET /api/session", a.api(a.getSession))
	api.HandleFunc("POST /api/signout", a.api(a.signOut))
	api.HandleFunc("GET /api/records", a.api(a.listRecords))
	api.HandleFunc("POST /api/records", a.api(a.createRecord))
	api.HandleFunc("POST /api/records/search", a.api(a.searchRecords))
	api.HandleFunc("POST /api/records/{id}/reveal", a.api(a.revealRecord))
	api.HandleFunc("GET /api/records/{id}/stored", a.api(a.storedRecord))
	api.HandleFunc("GET /api/keys", a.api(a.listKeys))
	api.HandleFunc("POST /api/keys/rotate", a.api(a.rotateKey))
	api.HandleFunc("POST /api/keys/reencrypt", a.api(a.startReencrypt))
	api.HandleFunc("GET /api/keys/reencrypt/events", a.reencryptEvents)
	api.HandleFunc("GET /api/audit", a.api(a.listAudit))
	api.HandleFunc("GET /api/audit/tamper", a.api(a.tamperAudit))
	api.HandleFunc("GET /api/monitoring", a.api(a.getMonitoring))
	api.HandleFunc("POST /api/monitoring/replay", a.api(a.replayIncident))
	api.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "no such API route"})
	})
	authed := access.Middleware(a.authenticate, access.WithUnauthenticatedHandler(
		func(w http.ResponseWriter, _ *http.Request, _ error) {
			writeJSON(w, http.StatusUnauthorized, errorBody{Error: "sign in first"})
		}))(a.csrf(api))

	mux := http.NewServeMux()
	web, err := fs.Sub(webFS, "web")
	if err != nil {
		panic(err) // the embedded tree always has web/
	}
	static := http.FileServerFS(web)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		static.ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /api/users", a.api(a.listUsers))
	mux.HandleFunc("POST /api/signin", a.api(a.signIn))
	mux.Handle("/api/", authed)

	return a.observe(securityHeaders(limitBody(http.NewCrossOriginProtection().Handler(requireJSON(mux)))))
}

// securityHeaders sets the headers every response carries.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		if strings.HasPrefix(r.URL.Path, "/api/") {
			h.Set("Cache-Control", "no-store")
		} else {
			h.Set("Cache-Control", "no-cache")
		}
		next.ServeHTTP(w, r)
	})
}

// limitBody caps request bodies at maxBody bytes.
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		next.ServeHTTP(w, r)
	})
}

// requireJSON refuses state-changing requests whose body is not declared
// JSON: an HTML form on another site cannot send that without a CORS
// preflight, which this server never grants.
func requireJSON(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !safeMethod(r.Method) {
			mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || mt != "application/json" {
				writeJSON(w, http.StatusUnsupportedMediaType, errorBody{Error: "send application/json"})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// csrfHeader carries the session's CSRF token on state-changing requests.
const csrfHeader = "X-CSRF-Token"

// csrf refuses state-changing requests of a session that do not carry its
// CSRF token. It runs after authentication.
func (a *app) csrf(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !safeMethod(r.Method) {
			p, _ := access.PrincipalFrom(r.Context())
			if !a.sessions.checkCSRF(p.Attributes[attrSession], r.Header.Get(csrfHeader)) {
				writeJSON(w, http.StatusForbidden, errorBody{Error: "missing or wrong CSRF token"})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// attrSession is the principal attribute holding the session ID (never
// audited or printed).
const attrSession = "session"

// authenticate is the access middleware's Authenticator: the principal is
// the configured user named by a valid session cookie.
func (a *app) authenticate(r *http.Request) (access.Principal, error) {
	s, err := a.sessions.read(r)
	if err != nil {
		return access.Principal{}, err
	}
	u, ok := a.user(s.user)
	if !ok || u.Scripted {
		return access.Principal{}, errNoSession
	}
	p := u.principal()
	p.Attributes = map[string]string{attrSession: s.id}
	if info := infoFrom(r.Context()); info != nil {
		info.user = u.ID
	}
	trace.SpanFromContext(r.Context()).SetAttributes(telemetry.AttrUserID.String(u.ID))
	return p, nil
}

// requestInfo is what the request log learns while a request is served.
type requestInfo struct {
	user  string
	route string
}

type infoKey struct{}

func infoFrom(ctx context.Context) *requestInfo {
	i, _ := ctx.Value(infoKey{}).(*requestInfo)
	return i
}

// observe serves each request in a server span and writes one log line
// per request: method, route pattern, status, duration and user. It never
// logs the URL's query, a header or a body.
func (a *app) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &requestInfo{}
		ctx, span := a.tracer.Start(context.WithValue(r.Context(), infoKey{}, info), "HTTP "+r.Method,
			trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		r = r.WithContext(ctx)
		next.ServeHTTP(sw, r)
		route := info.route
		if route == "" {
			route = r.Pattern
		}
		if route == "" {
			route = "unmatched"
		}
		span.SetName(route)
		span.SetAttributes(attribute.Int("http.response.status_code", sw.status))
		if sw.status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(sw.status))
		}
		a.log.LogAttrs(ctx, slog.LevelInfo, "request", slog.String("route", route), slog.Int("status", sw.status),
			slog.Duration("took", time.Since(start)), slog.String("user", info.user),
			slog.String("trace", span.SpanContext().TraceID().String()))
	})
}

// setRoute tells the request log the matched route pattern.
func setRoute(r *http.Request) {
	if info := infoFrom(r.Context()); info != nil {
		info.route = r.Pattern
	}
}

// statusWriter remembers the status code; Unwrap lets
// http.ResponseController reach the connection (flushes for the event
// stream).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// errorBody is the JSON of every error response.
type errorBody struct {
	Error string `json:"error"`
	// Audited is true when the refusal was written to the audit log.
	Audited bool   `json:"audited,omitempty"`
	Trace   string `json:"trace,omitempty"`
}

// badRequest is an error whose message the client may see: it names what
// is wrong with the input, never the input itself.
type badRequest string

func (e badRequest) Error() string { return string(e) }

// apiFunc serves one API route: it returns the response value or an error.
type apiFunc func(w http.ResponseWriter, r *http.Request) (any, error)

// api adapts f to net/http: the value as JSON, or the error as a status
// and a message that holds no value from the request. Unexpected errors are
// logged (keyward's errors never contain plaintext or key material) and
// answered with the trace ID only.
func (a *app) api(f apiFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		setRoute(r)
		v, err := f(w, r)
		if err == nil {
			if v == nil {
				w.WriteHeader(http.StatusNoContent)
				return
			}
			writeJSON(w, http.StatusOK, v)
			return
		}
		var bad badRequest
		var denied *access.DeniedError
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &denied):
			writeJSON(w, http.StatusForbidden, errorBody{Error: denied.Error(), Audited: true})
		case errors.Is(err, access.ErrAccessDenied):
			writeJSON(w, http.StatusForbidden, errorBody{Error: "access denied", Audited: true})
		case errors.As(err, &tooBig):
			writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{Error: fmt.Sprintf("request body larger than %d bytes", maxBody)})
		case errors.As(err, &bad):
			writeJSON(w, http.StatusBadRequest, errorBody{Error: bad.Error()})
		case errors.Is(err, gorm.ErrRecordNotFound):
			writeJSON(w, http.StatusNotFound, errorBody{Error: "no such record"})
		case errors.Is(err, errConflict):
			writeJSON(w, http.StatusConflict, errorBody{Error: err.Error()})
		default:
			span := trace.SpanFromContext(r.Context())
			span.RecordError(err)
			a.log.LogAttrs(r.Context(), slog.LevelError, "request failed", slog.String("error", err.Error()),
				slog.String("trace", span.SpanContext().TraceID().String()))
			writeJSON(w, http.StatusInternalServerError, errorBody{Error: "internal error", Trace: span.SpanContext().TraceID().String()})
		}
	}
}

// errConflict is a request that cannot run now (a job already running).
var errConflict = errors.New("webapp: conflict")

// decode reads the JSON body into v; unknown fields are an error.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
		return badRequest("the body is not the expected JSON object")
	}
	if dec.More() {
		return badRequest("the body has more than one JSON value")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// principal returns the request's principal (the access middleware put it
// there).
func principal(r *http.Request) access.Principal {
	p, _ := access.PrincipalFrom(r.Context())
	return p
}
