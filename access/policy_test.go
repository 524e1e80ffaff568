package access

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func testConfig() Config {
	return Config{Roles: []Role{
		{Name: "base", Permissions: []Permission{{Actions: []string{ActionDecrypt}, Resources: []string{"field:users.email"}}}},
		{Name: "support", Inherits: []string{"base"}, Permissions: []Permission{{Actions: []string{ActionDecrypt}, Resources: []string{"field:users.phone"}}}},
		{Name: "analyst", Permissions: []Permission{{Actions: []string{ActionEncrypt, ActionDecrypt}, Resources: []string{"field:orders.*"}}}},
		{Name: "lead", Inherits: []string{"support", "analyst"}},
		{Name: "chief", Inherits: []string{"lead"}, Permissions: []Permission{{Actions: []string{ActionRotate}, Resources: []string{"keyring:pii"}}}},
		{Name: "keyadmin", Permissions: []Permission{{Actions: []string{"*"}, Resources: []string{"keyring:*"}}}},
		{Name: "ssnreader", Permissions: []Permission{{Actions: []string{ActionDecrypt}, Resources: []string{"field:*.ssn"}}}},
		{Name: "indexer", Permissions: []Permission{{Actions: []string{ActionDerive}, Resources: []string{"field:users.email", "keyring:audit"}}}},
		{Name: "root", Permissions: []Permission{{Actions: []string{"*"}, Resources: []string{"*"}}}},
		{Name: "empty"},
	}}
}

func mustPolicy(t testing.TB, cfg Config) *Policy {
	t.Helper()
	p, err := NewPolicy(cfg)
	if err != nil {
		t.Fatalf("NewPolicy: %v", err)
	}
	return p
}

func TestAuthorizeSemantics(t *testing.T) {
	p := mustPolicy(t, testConfig())
	tests := []struct {
		name     string
		roles    []string
		action   string
		resource string
		want     bool
	}{
		{"own permission", []string{"base"}, ActionDecrypt, "field:users.email", true},
		{"other action denied", []string{"base"}, ActionEncrypt, "field:users.email", false},
		{"other field denied", []string{"base"}, ActionDecrypt, "field:users.ssn", false},
		{"inherited one level", []string{"support"}, ActionDecrypt, "field:users.email", true},
		{"own beside inherited", []string{"support"}, ActionDecrypt, "field:users.phone", true},
		{"parent lacks child's permission", []string{"base"}, ActionDecrypt, "field:users.phone", false},
		{"multiple parents: first", []string{"lead"}, ActionDecrypt, "field:users.phone", true},
		{"multiple parents: second", []string{"lead"}, ActionEncrypt, "field:orders.total", true},
		{"depth three", []string{"chief"}, ActionDecrypt, "field:users.email", true},
		{"depth three own", []string{"chief"}, ActionRotate, "keyring:pii", true},
		{"inheritance is upward only", []string{"lead"}, ActionRotate, "keyring:pii", false},
		{"prefix wildcard", []string{"analyst"}, ActionDecrypt, "field:orders.card", true},
		{"prefix wildcard other table", []string{"analyst"}, ActionDecrypt, "field:ordersx.card", false},
		{"inner wildcard", []string{"ssnreader"}, ActionDecrypt, "field:users.ssn", true},
		{"inner wildcard schema table", []string{"ssnreader"}, ActionDecrypt, "field:public.users.ssn", true},
		{"inner wildcard no match", []string{"ssnreader"}, ActionDecrypt, "field:users.ssn2", false},
		{"action wildcard", []string{"keyadmin"}, ActionManage, "keyring:default", true},
		{"action wildcard all actions", []string{"keyadmin"}, ActionRewrap, "keyring:pii", true},
		{"keyring wildcard not fields", []string{"keyadmin"}, ActionDecrypt, "field:users.email", false},
		{"derive on field", []string{"indexer"}, ActionDerive, "field:users.email", true},
		{"derive on keyring", []string{"indexer"}, ActionDerive, "keyring:audit", true},
		{"derive is not decrypt", []string{"indexer"}, ActionDecrypt, "field:users.email", false},
		{"root everything", []string{"root"}, ActionManage, "field:a.b", true},
		{"second role grants", []string{"base", "keyadmin"}, ActionRotate, "keyring:x", true},
		{"unknown role ignored", []string{"ghost", "base"}, ActionDecrypt, "field:users.email", true},
		{"only unknown roles", []string{"ghost"}, ActionDecrypt, "field:users.email", false},
		{"no roles", nil, ActionDecrypt, "field:users.email", false},
		{"role without permissions", []string{"empty"}, ActionDecrypt, "field:users.email", false},
		{"unknown action", []string{"root"}, "delete", "keyring:pii", false},
		{"wildcard action in request", []string{"root"}, "*", "keyring:pii", false},
		{"wildcard resource in request", []string{"root"}, ActionDecrypt, "keyring:*", false},
		{"unknown resource kind", []string{"root"}, ActionDecrypt, "table:users", false},
		{"empty keyring name", []string{"root"}, ActionDecrypt, "keyring:", false},
		{"field without column", []string{"root"}, ActionDecrypt, "field:users.", false},
		{"field without table", []string{"root"}, ActionDecrypt, "field:.ssn", false},
		{"role names are exact", []string{"Base"}, ActionDecrypt, "field:users.email", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := WithPrincipal(context.Background(), Principal{UserID: "u1", Roles: tt.roles})
			err := p.Authorize(ctx, tt.action, tt.resource)
			if got := err == nil; got != tt.want {
				t.Fatalf("Authorize(%v, %q, %q) = %v, want allowed=%v", tt.roles, tt.action, tt.resource, err, tt.want)
			}
			if err != nil {
				var de *DeniedError
				if !errors.Is(err, ErrAccessDenied) || !errors.As(err, &de) || de.Reason == "" {
					t.Fatalf("Authorize error %v is not a *DeniedError wrapping ErrAccessDenied with a reason", err)
				}
			}
		})
	}
}

func TestAuthorizeReasons(t *testing.T) {
	p := mustPolicy(t, testConfig())
	withRoles := WithPrincipal(context.Background(), Principal{UserID: "u", Roles: []string{"base"}})
	tests := []struct {
		name     string
		policy   *Policy
		ctx      context.Context
		action   string
		resource string
		want     string
	}{
		{"no principal", p, context.Background(), ActionDecrypt, "field:users.email", reasonNoPrincipal},
		{"no user id", p, WithPrincipal(context.Background(), Principal{Roles: []string{"root"}}), ActionDecrypt, "field:users.email", reasonNoUser},
		{"unknown action", p, withRoles, "read", "field:users.email", reasonBadAction},
		{"bad resource", p, withRoles, ActionDecrypt, "users.email", reasonBadResource},
		{"no permission", p, withRoles, ActionDecrypt, "field:users.ssn", reasonNoPermission},
		{"nil policy", nil, withRoles, ActionDecrypt, "field:users.email", reasonNoPolicy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Authorize(tt.ctx, tt.action, tt.resource)
			var de *DeniedError
			if !errors.As(err, &de) || de.Reason != tt.want {
				t.Fatalf("Authorize = %v, want reason %q", err, tt.want)
			}
			if de.Action != tt.action || de.Resource != tt.resource {
				t.Fatalf("DeniedError = %+v, want action %q resource %q", de, tt.action, tt.resource)
			}
			if strings.Contains(err.Error(), "u1") {
				t.Fatalf("error %q names the user", err)
			}
		})
	}
}

func TestCheckAccess(t *testing.T) {
	p := mustPolicy(t, testConfig())
	tests := []struct {
		user, required string
		want           bool
	}{
		{"base", "base", true},
		{"support", "base", true},
		{"lead", "base", true},
		{"lead", "analyst", true},
		{"chief", "base", true},
		{"chief", "analyst", true},
		{"base", "support", false},
		{"analyst", "support", false},
		{"root", "base", false},
		{"ghost", "ghost", false},
		{"base", "ghost", false},
		{"", "", false},
	}
	for _, tt := range tests {
		if got := p.CheckAccess(tt.user, tt.required); got != tt.want {
			t.Errorf("CheckAccess(%q, %q) = %v, want %v", tt.user, tt.required, got, tt.want)
		}
	}
	var nilPolicy *Policy
	if nilPolicy.CheckAccess("base", "base") {
		t.Error("nil Policy CheckAccess = true, want false")
	}
}

func TestNewPolicyErrors(t *testing.T) {
	perm := []Permission{{Actions: []string{ActionDecrypt}, Resources: []string{"keyring:a"}}}
	tests := []struct {
		name  string
		roles []Role
		field string
		msg   string
	}{
		{"empty name", []Role{{Name: ""}}, "roles[0].name", "empty"},
		{"spaces in name", []Role{{Name: " a"}}, "roles[0].name", "spaces"},
		{"wildcard in name", []Role{{Name: "a*"}}, "roles[0].name", "'*'"},
		{"duplicate", []Role{{Name: "a"}, {Name: "b"}, {Name: "a"}}, "roles[2].name", "duplicate role \"a\""},
		{"unknown parent", []Role{{Name: "a", Inherits: []string{"b"}}}, "roles[0].inherits[0]", "unknown role \"b\""},
		{"parent twice", []Role{{Name: "a"}, {Name: "b", Inherits: []string{"a", "a"}}}, "roles[1].inherits[1]", "twice"},
		{"self cycle", []Role{{Name: "a", Inherits: []string{"a"}}}, "roles[0].inherits[0]", "cycle a -> a"},
		{"two cycle", []Role{{Name: "a", Inherits: []string{"b"}}, {Name: "b", Inherits: []string{"a"}}}, "roles[1].inherits[0]", "cycle a -> b -> a"},
		{"long cycle", []Role{
			{Name: "x"},
			{Name: "a", Inherits: []string{"x", "b"}},
			{Name: "b", Inherits: []string{"c"}},
			{Name: "c", Inherits: []string{"x", "a"}},
		}, "roles[3].inherits[1]", "cycle a -> b -> c -> a"},
		{"no actions", []Role{{Name: "a", Permissions: []Permission{{Resources: []string{"*"}}}}}, "roles[0].permissions[0].actions", "no actions"},
		{"unknown action", []Role{{Name: "a", Permissions: []Permission{{Actions: []string{"decrpyt"}, Resources: []string{"*"}}}}}, "roles[0].permissions[0].actions[0]", "unknown action \"decrpyt\""},
		{"action pattern", []Role{{Name: "a", Permissions: []Permission{{Actions: []string{"de*"}, Resources: []string{"*"}}}}}, "roles[0].permissions[0].actions[0]", "unknown action"},
		{"no resources", []Role{{Name: "a", Permissions: []Permission{{Actions: []string{"*"}}}}}, "roles[0].permissions[0].resources", "no resources"},
		{"unknown kind", []Role{{Name: "a", Permissions: []Permission{perm[0], {Actions: []string{"*"}, Resources: []string{"keyring:a", "table:users"}}}}}, "roles[0].permissions[1].resources[1]", "resource pattern must be"},
		{"plain name", []Role{{Name: "a", Permissions: []Permission{{Actions: []string{"*"}, Resources: []string{"pii"}}}}}, "roles[0].permissions[0].resources[0]", "resource pattern must be"},
		{"empty name pattern", []Role{{Name: "a", Permissions: []Permission{{Actions: []string{"*"}, Resources: []string{"keyring:"}}}}}, "roles[0].permissions[0].resources[0]", "empty name"},
		{"field without column", []Role{{Name: "a", Permissions: []Permission{{Actions: []string{"*"}, Resources: []string{"field:users"}}}}}, "roles[0].permissions[0].resources[0]", "TABLE.COLUMN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPolicy(Config{Roles: tt.roles})
			var pe *PolicyError
			if p != nil || !errors.As(err, &pe) || !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("NewPolicy = %v, %v, want nil and a *PolicyError", p, err)
			}
			if pe.Field != tt.field || !strings.Contains(pe.Msg, tt.msg) {
				t.Fatalf("NewPolicy error = %q (field %q), want field %q and message containing %q", err, pe.Field, tt.field, tt.msg)
			}
		})
	}
}

func TestResourceHelpers(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{KeyringResource("pii"), "keyring:pii"},
		{KeyringResource("a*b%c"), "keyring:a%2Ab%25c"},
		{KeyringResource("a.b"), "keyring:a.b"},
		{KeyringResource("x\ny"), "keyring:x%0Ay"},
		{FieldResource("users", "ssn"), "field:users.ssn"},
		{FieldResource("public.users", "ssn"), "field:public.users.ssn"},
		{FieldResource("users", "a.b"), "field:users.a%2Eb"},
		{FieldResource("us*rs", "%"), "field:us%2Ars.%25"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("resource = %q, want %q", tt.got, tt.want)
		}
	}
	// Distinct pairs give distinct resources.
	if FieldResource("a.b", "c") == FieldResource("a", "b.c") {
		t.Error("FieldResource is ambiguous for dotted names")
	}
	for _, r := range []string{KeyringResource(""), FieldResource("", "c"), FieldResource("t", "")} {
		if validResource(r) {
			t.Errorf("validResource(%q) = true, want false", r)
		}
	}
	for _, r := range []string{KeyringResource("*"), FieldResource("t*", "*")} {
		if !validResource(r) {
			t.Errorf("validResource(%q) = false, want true", r)
		}
	}
}

func TestResourceSetPrefixes(t *testing.T) {
	rs := newResourceSet([]string{"field:users.*", "field:u*", "field:users.email", "keyring:a*", "keyring:ab*", "keyring:b", "field:x*y"})
	if len(rs.prefixes) != 2 || rs.prefixes[0] != "field:u" || rs.prefixes[1] != "keyring:a" {
		t.Fatalf("prefixes = %q, want the two shortest", rs.prefixes)
	}
	if _, ok := rs.exact["field:users.email"]; ok {
		t.Fatal("exact entry covered by a prefix was kept")
	}
	for r, want := range map[string]bool{
		"field:users.email": true, "field:u": true, "field:v.x": false, "keyring:abc": true,
		"keyring:b": true, "keyring:bb": false, "field:x.zy": true, "field:x.yz": false, "keyring:": false,
	} {
		if got := rs.match(r); got != want {
			t.Errorf("match(%q) = %v, want %v", r, got, want)
		}
	}
}

func globRegexp(pattern string) *regexp.Regexp {
	parts := strings.Split(pattern, "*")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(`(?s)^` + strings.Join(parts, ".*") + `$`)
}

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"*", "abc", true},
		{"a*", "a", true},
		{"a*c", "abbbc", true},
		{"a*c", "abbbd", false},
		{"*a*b", "xaxb", true},
		{"*a*b", "xaxbx", false},
		{"a**b", "ab", true},
		{"field:*.ssn", "field:a.b.ssn", true},
		{"field:*.ssn", "field:ssn", false},
	}
	for _, tt := range tests {
		if got := globMatch(tt.pattern, tt.s); got != tt.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

func FuzzGlobMatch(f *testing.F) {
	f.Add("a*b*c", "aXbYc")
	f.Add("*x", "xxxx")
	f.Add("**", "")
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if len(pattern) > 64 || len(s) > 256 || !utf8.ValidString(pattern) || !utf8.ValidString(s) {
			return
		}
		want := globRegexp(pattern).MatchString(s)
		if got := globMatch(pattern, s); got != want {
			t.Fatalf("globMatch(%q, %q) = %v, want %v", pattern, s, got, want)
		}
	})
}

func TestPolicyRoles(t *testing.T) {
	p := mustPolicy(t, Config{Roles: []Role{{Name: "b"}, {Name: "a"}}})
	if got := strings.Join(p.Roles(), ","); got != "a,b" {
		t.Fatalf("Roles() = %q, want a,b", got)
	}
}
