package access

import (
	"errors"
	"fmt"
	"net/http"
)

// Authenticator returns the principal of a request from a source the
// application has verified: a validated session, a checked token, a client
// certificate. It must not trust unauthenticated input such as a plain
// request header.
type Authenticator func(*http.Request) (Principal, error)

// MiddlewareOption configures Middleware.
type MiddlewareOption interface {
	apply(*middlewareConfig)
}

// middlewareOptionFunc adapts a function to MiddlewareOption.
type middlewareOptionFunc func(*middlewareConfig)

func (f middlewareOptionFunc) apply(c *middlewareConfig) { f(c) }

type middlewareConfig struct {
	unauthenticated func(http.ResponseWriter, *http.Request, error)
}

// WithUnauthenticatedHandler replaces the default answer to a request the
// Authenticator rejects (status 401 with the body "unauthorized"). The error
// passed to h wraps ErrUnauthenticated and the Authenticator's error; do not
// send it to the client.
func WithUnauthenticatedHandler(h func(w http.ResponseWriter, r *http.Request, err error)) MiddlewareOption {
	return middlewareOptionFunc(func(c *middlewareConfig) { c.unauthenticated = h })
}

// Middleware returns net/http middleware that calls authenticate for each
// request and, on success, serves next with the principal in the request's
// context (see PrincipalFrom). When authenticate fails, or returns a
// principal without a user ID, it answers 401 Unauthorized and does not call
// next. The middleware reads nothing from the request itself; everything
// comes from authenticate. It panics if authenticate is nil.
func Middleware(authenticate Authenticator, opts ...MiddlewareOption) func(http.Handler) http.Handler {
	if authenticate == nil {
		panic("access: Middleware called with a nil Authenticator")
	}
	cfg := middlewareConfig{unauthenticated: func(w http.ResponseWriter, _ *http.Request, _ error) {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
	}}
	for _, o := range opts {
		o.apply(&cfg)
	}
	if cfg.unauthenticated == nil {
		panic("access: WithUnauthenticatedHandler called with a nil handler")
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, err := authenticate(r)
			if err == nil && p.UserID == "" {
				err = errors.New("principal has no user ID")
			}
			if err != nil {
				cfg.unauthenticated(w, r, fmt.Errorf("%w: %w", ErrUnauthenticated, err))
				return
			}
			next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
		})
	}
}
