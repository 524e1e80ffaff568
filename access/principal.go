package access

import (
	"context"
	"maps"
	"slices"
	"strings"
)

// Principal is the authenticated caller: a user ID, the roles the
// application's identity source granted, and optional attributes (for
// example a tenant). Attributes are never written to audit records or
// errors.
type Principal struct {
	UserID     string            // stable identifier of the user or service; required
	Roles      []string          // role names, matched against the policy's roles
	Attributes map[string]string // optional extra facts; never audited or printed
}

// String returns the user ID and roles; it omits the attributes.
func (p Principal) String() string {
	return "user=" + p.UserID + " roles=[" + strings.Join(p.Roles, " ") + "]"
}

func (p Principal) clone() Principal {
	p.Roles = slices.Clone(p.Roles)
	p.Attributes = maps.Clone(p.Attributes)
	return p
}

type principalKey struct{}

// WithPrincipal returns a copy of ctx that carries a copy of p. Later changes
// to p's slice or map do not affect the stored principal.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	c := p.clone()
	return context.WithValue(ctx, principalKey{}, &c)
}

// PrincipalFrom returns a copy of the principal in ctx, and whether there is
// one.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p := principalFrom(ctx)
	if p == nil {
		return Principal{}, false
	}
	return p.clone(), true
}

// principalFrom returns the stored principal without copying; callers must
// not modify it.
func principalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}
