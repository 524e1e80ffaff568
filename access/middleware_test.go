package access

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestPrincipalContext(t *testing.T) {
	if _, ok := PrincipalFrom(context.Background()); ok {
		t.Fatal("PrincipalFrom(empty context) ok = true")
	}
	roles := []string{"a", "b"}
	attrs := map[string]string{"tenant": "t1"}
	ctx := WithPrincipal(context.Background(), Principal{UserID: "alice", Roles: roles, Attributes: attrs})
	roles[0] = "root"
	attrs["tenant"] = "t2"
	p, ok := PrincipalFrom(ctx)
	if !ok || p.UserID != "alice" || p.Roles[0] != "a" || p.Attributes["tenant"] != "t1" {
		t.Fatalf("PrincipalFrom = %+v, %v; want alice [a b] tenant t1 unaffected by later changes", p, ok)
	}
	p.Roles[1] = "root"
	if q, _ := PrincipalFrom(ctx); q.Roles[1] != "b" {
		t.Fatal("PrincipalFrom returned the stored slice, not a copy")
	}
	if got, want := p.String(), "user=alice roles=[a root]"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
}

func TestMiddleware(t *testing.T) {
	errBadToken := errors.New("bad token")
	// The test's verified source: a token table standing in for a session
	// store or token verifier.
	tokens := map[string]Principal{"t-alice": {UserID: "alice", Roles: []string{"support"}}, "t-nobody": {}}
	authn := func(r *http.Request) (Principal, error) {
		p, ok := tokens[r.Header.Get("Authorization")]
		if !ok {
			return Principal{}, errBadToken
		}
		return p, nil
	}
	tests := []struct {
		name     string
		auth     string
		status   int
		wantUser string
	}{
		{"verified", "t-alice", http.StatusOK, "alice"},
		{"rejected", "forged", http.StatusUnauthorized, ""},
		{"missing", "", http.StatusUnauthorized, ""},
		{"principal without user", "t-nobody", http.StatusUnauthorized, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called := false
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				called = true
				p, ok := PrincipalFrom(r.Context())
				if !ok {
					t.Error("next handler sees no principal")
				}
				w.Write([]byte(p.UserID))
			})
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			req.Header.Set("X-User", "mallory") // never read
			Middleware(authn)(next).ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d", rec.Code, tt.status)
			}
			if called != (tt.status == http.StatusOK) {
				t.Fatalf("next called = %v, want %v", called, tt.status == http.StatusOK)
			}
			if tt.status == http.StatusOK && rec.Body.String() != tt.wantUser {
				t.Fatalf("body = %q, want %q", rec.Body.String(), tt.wantUser)
			}
		})
	}
}

func TestMiddlewareCustomHandler(t *testing.T) {
	errExpired := errors.New("session expired")
	var got error
	mw := Middleware(func(*http.Request) (Principal, error) { return Principal{}, errExpired },
		WithUnauthenticatedHandler(func(w http.ResponseWriter, _ *http.Request, err error) {
			got = err
			w.WriteHeader(http.StatusForbidden)
		}))
	rec := httptest.NewRecorder()
	mw(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusForbidden {
		t.Fatalf("status = %d, want %d", rec.Code, http.StatusForbidden)
	}
	if !errors.Is(got, ErrUnauthenticated) || !errors.Is(got, errExpired) {
		t.Fatalf("handler error = %v, want ErrUnauthenticated and the authenticator's error", got)
	}
}

func TestMiddlewareNilPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Middleware(nil) did not panic")
		}
	}()
	Middleware(nil)
}
