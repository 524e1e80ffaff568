package access

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Config is a policy written in Go. NewPolicy checks and compiles it; the
// policy file format (see ParsePolicy) decodes into the same shape.
type Config struct {
	Roles []Role `json:"roles"` // the roles, in any order; names are unique
}

// Role is a named set of permissions that may inherit other roles. A role
// holds its own permissions plus those of every role it inherits, directly
// or transitively.
type Role struct {
	Name        string       `json:"name"`                  // unique, non-empty; no '*', control characters or surrounding spaces
	Description string       `json:"description,omitempty"` // free text, for people
	Inherits    []string     `json:"inherits,omitempty"`    // names of roles defined in the same Config
	Permissions []Permission `json:"permissions,omitempty"` // what the role may do
}

// Permission grants every action in Actions on every resource matching a
// pattern in Resources. An action is one of the Action constants or "*"
// (all). A resource pattern is "*" (everything), "keyring:NAME" or
// "field:TABLE.COLUMN", where '*' matches any run of characters: for example
// "keyring:*", "field:users.*" or "field:*.ssn".
type Permission struct {
	Actions   []string `json:"actions"`   // e.g. ActionDecrypt, or "*"
	Resources []string `json:"resources"` // resource patterns, e.g. "keyring:pii", "field:users.*"
}

// Policy is a compiled, immutable role-based access policy. Everything not
// granted is denied. A Policy is safe for concurrent use.
type Policy struct {
	roles map[string]*role
}

type role struct {
	ancestors map[string]struct{} // the role itself and every role it inherits
	grants    [numActions]resourceSet
}

// locator maps a field path to a position in a source file.
type locator struct {
	source string
	data   []byte
	offs   map[string]int
}

func (l *locator) errorf(field, format string, args ...any) *PolicyError {
	e := &PolicyError{Field: field, Msg: fmt.Sprintf(format, args...)}
	if l == nil {
		return e
	}
	e.Source = l.source
	// Report the closest located ancestor of the field.
	for f := field; ; f = parentPath(f) {
		if off, ok := l.offs[f]; ok {
			e.Line, e.Column = lineCol(l.data, off)
			break
		}
		if f == "" {
			break
		}
	}
	return e
}

func parentPath(f string) string {
	i := strings.LastIndexAny(f, ".[")
	if i < 0 {
		return ""
	}
	return f[:i]
}

// NewPolicy checks cfg and compiles it into a Policy. It returns a
// *PolicyError (wrapping ErrInvalidPolicy) for an invalid or duplicate role
// name, an unknown inherited role, an inheritance cycle, an unknown action or
// a malformed resource pattern.
func NewPolicy(cfg Config) (*Policy, error) {
	p, err := compile(cfg, nil)
	if err != nil {
		return nil, err
	}
	return p, nil
}

func compile(cfg Config, loc *locator) (*Policy, error) {
	index := make(map[string]int, len(cfg.Roles))
	for i, r := range cfg.Roles {
		field := "roles[" + strconv.Itoa(i) + "]"
		if msg := checkRoleName(r.Name); msg != "" {
			return nil, loc.errorf(field+".name", "%s", msg)
		}
		if j, dup := index[r.Name]; dup {
			return nil, loc.errorf(field+".name", "duplicate role %q (also roles[%d])", r.Name, j)
		}
		index[r.Name] = i
	}
	for i, r := range cfg.Roles {
		field := "roles[" + strconv.Itoa(i) + "]"
		seen := make(map[string]bool, len(r.Inherits))
		for k, parent := range r.Inherits {
			f := field + ".inherits[" + strconv.Itoa(k) + "]"
			if _, ok := index[parent]; !ok {
				return nil, loc.errorf(f, "unknown role %q", parent)
			}
			if seen[parent] {
				return nil, loc.errorf(f, "role %q inherited twice", parent)
			}
			seen[parent] = true
		}
		for j, perm := range r.Permissions {
			pf := field + ".permissions[" + strconv.Itoa(j) + "]"
			if len(perm.Actions) == 0 {
				return nil, loc.errorf(pf+".actions", "no actions")
			}
			for k, a := range perm.Actions {
				if a != wildcard && actionIndex(a) < 0 {
					return nil, loc.errorf(pf+".actions["+strconv.Itoa(k)+"]",
						"unknown action %q (want one of %s or \"*\")", a, strings.Join(actions(), ", "))
				}
			}
			if len(perm.Resources) == 0 {
				return nil, loc.errorf(pf+".resources", "no resources")
			}
			for k, res := range perm.Resources {
				if msg := checkPattern(res); msg != "" {
					return nil, loc.errorf(pf+".resources["+strconv.Itoa(k)+"]", "%s: %q", msg, res)
				}
			}
		}
	}
	if err := findCycle(cfg, index, loc); err != nil {
		return nil, err
	}

	p := &Policy{roles: make(map[string]*role, len(cfg.Roles))}
	for i, r := range cfg.Roles {
		anc := ancestors(cfg, index, i)
		var patterns [numActions][]string
		for name := range anc {
			for _, perm := range cfg.Roles[index[name]].Permissions {
				for _, a := range perm.Actions {
					if a == wildcard {
						for ai := range patterns {
							patterns[ai] = append(patterns[ai], perm.Resources...)
						}
						continue
					}
					ai := actionIndex(a)
					patterns[ai] = append(patterns[ai], perm.Resources...)
				}
			}
		}
		cr := &role{ancestors: anc}
		for ai := range patterns {
			cr.grants[ai] = newResourceSet(patterns[ai])
		}
		p.roles[r.Name] = cr
	}
	return p, nil
}

func checkRoleName(name string) string {
	if name == "" {
		return "role name is empty"
	}
	if strings.TrimSpace(name) != name {
		return fmt.Sprintf("role name %q has surrounding spaces", name)
	}
	if len(name) > 256 {
		return "role name is longer than 256 bytes"
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x20 || c == 0x7f || c == '*' {
			return fmt.Sprintf("role name %q contains '*' or a control character", name)
		}
	}
	return ""
}

// findCycle reports the first inheritance cycle, at the inherits entry that
// closes it.
func findCycle(cfg Config, index map[string]int, loc *locator) error {
	const (
		white = iota
		grey
		black
	)
	color := make([]int, len(cfg.Roles))
	var stack []int
	var visit func(i int) error
	visit = func(i int) error {
		color[i] = grey
		stack = append(stack, i)
		for k, parent := range cfg.Roles[i].Inherits {
			j := index[parent]
			switch color[j] {
			case grey:
				// The stack runs from j to i, each role inheriting the next;
				// i inherits j again.
				s := len(stack) - 1
				for stack[s] != j {
					s--
				}
				var path []string
				for _, x := range stack[s:] {
					path = append(path, cfg.Roles[x].Name)
				}
				path = append(path, parent)
				return loc.errorf("roles["+strconv.Itoa(i)+"].inherits["+strconv.Itoa(k)+"]",
					"inheritance cycle %s", strings.Join(path, " -> "))
			case white:
				if err := visit(j); err != nil {
					return err
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[i] = black
		return nil
	}
	for i := range cfg.Roles {
		if color[i] == white {
			if err := visit(i); err != nil {
				return err
			}
		}
	}
	return nil
}

// ancestors returns the role at i and every role it inherits.
func ancestors(cfg Config, index map[string]int, i int) map[string]struct{} {
	anc := map[string]struct{}{}
	stack := []int{i}
	for len(stack) > 0 {
		j := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		name := cfg.Roles[j].Name
		if _, ok := anc[name]; ok {
			continue
		}
		anc[name] = struct{}{}
		for _, parent := range cfg.Roles[j].Inherits {
			stack = append(stack, index[parent])
		}
	}
	return anc
}

// Roles returns the names of the policy's roles, sorted.
func (p *Policy) Roles() []string {
	if p == nil {
		return nil
	}
	names := make([]string, 0, len(p.roles))
	for n := range p.roles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// CheckAccess reports whether userRole is requiredRole or inherits it,
// directly or transitively. It is false when either role is not in the
// policy, and for a nil Policy.
func (p *Policy) CheckAccess(userRole, requiredRole string) bool {
	if p == nil {
		return false
	}
	r, ok := p.roles[userRole]
	if !ok {
		return false
	}
	_, ok = r.ancestors[requiredRole]
	return ok
}

// Authorize reports whether the principal in ctx (see WithPrincipal) may do
// action on resource: it returns nil when one of the principal's roles
// grants it, and otherwise a *DeniedError wrapping ErrAccessDenied. It denies
// when ctx carries no principal, when the principal has no user ID, for an
// unknown action, and for a malformed resource (see KeyringResource and
// FieldResource). Authorize does not audit; Guard does.
func (p *Policy) Authorize(ctx context.Context, action, resource string) error {
	pr := principalFrom(ctx)
	if reason := p.decide(pr, action, resource); reason != "" {
		return &DeniedError{Action: action, Resource: resource, Reason: reason}
	}
	return nil
}

// Reasons for a denial.
const (
	reasonNoPolicy     = "no policy"
	reasonNoPrincipal  = "no principal in context"
	reasonNoUser       = "principal has no user ID"
	reasonBadAction    = "unknown action"
	reasonBadResource  = "malformed resource"
	reasonNoPermission = "no matching permission"
)

// decide returns "" when pr may do action on resource, else the reason.
func (p *Policy) decide(pr *Principal, action, resource string) string {
	switch {
	case p == nil:
		return reasonNoPolicy
	case pr == nil:
		return reasonNoPrincipal
	case pr.UserID == "":
		return reasonNoUser
	}
	ai := actionIndex(action)
	if ai < 0 {
		return reasonBadAction
	}
	if !validResource(resource) {
		return reasonBadResource
	}
	for _, name := range pr.Roles {
		if r, ok := p.roles[name]; ok && r.grants[ai].match(resource) {
			return ""
		}
	}
	return reasonNoPermission
}
