package access

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadPolicyFile(t *testing.T) {
	p, err := LoadPolicyFile(filepath.Join("testdata", "policy.json"))
	require.NoError(t, err, "LoadPolicyFile(testdata/policy.json)")
	tests := []struct {
		role, action, resource string
		want                   bool
	}{
		{"support", ActionDecrypt, FieldResource("users", "email"), true},
		{"support", ActionDecrypt, FieldResource("users", "ssn"), false},
		{"lead", ActionEncrypt, FieldResource("payments", "iban"), true},
		{"lead", ActionDerive, FieldResource("payments", "card_number"), true},
		{"lead", ActionRotate, KeyringResource("pii"), false},
		{"key-admin", ActionManage, KeyringResource("pii"), true},
		{"key-admin", ActionDecrypt, KeyringResource("pii"), false},
		{"service", ActionDecrypt, KeyringResource("pii"), true},
		{"service", ActionRotate, KeyringResource("pii"), false},
	}
	for _, tt := range tests {
		ctx := WithPrincipal(context.Background(), Principal{UserID: "u", Roles: []string{tt.role}})
		got := p.Authorize(ctx, tt.action, tt.resource) == nil
		assert.Equal(t, tt.want, got, "Authorize(%s, %s, %s) allowed", tt.role, tt.action, tt.resource)
	}
	assert.True(t, p.CheckAccess("lead", "billing"), "CheckAccess(lead, billing): lead inherits billing in the file")
	assert.False(t, p.CheckAccess("billing", "lead"), "CheckAccess(billing, lead)")
}

func TestParsePolicyErrors(t *testing.T) {
	tests := []struct {
		name      string
		doc       string
		line, col int
		field     string
		msg       string
	}{
		{"empty", "", 0, 0, "", "empty document"},
		{"blank", " \n ", 0, 0, "", "empty document"},
		{"not an object", `[]`, 1, 1, "", "want an object"},
		{"syntax error", "{\n  \"roles\": [\n    {\"name\": \"a\",}\n  ]\n}", 3, 18, "", "invalid JSON"},
		{"unterminated", "{\"roles\": [", 1, 12, "", "unexpected end"},
		{"trailing data", "{\"roles\": []}\n{}", 2, 1, "", "after the document"},
		{"unknown top field", "{\n  \"roles\": [],\n  \"rolez\": []\n}", 3, 3, "rolez", "unknown field \"rolez\""},
		{"missing roles", `{"version": 1}`, 1, 1, "roles", "missing field"},
		{"bad version", `{"version": 2, "roles": []}`, 1, 13, "version", "unsupported version 2"},
		{"version string", `{"version": "1", "roles": []}`, 1, 13, "version", "want a number"},
		{"roles not array", `{"roles": {}}`, 1, 11, "roles", "want an array"},
		{"unknown role field", "{\"roles\": [\n  {\"name\": \"a\", \"inherit\": [\"b\"]}\n]}", 2, 17, "roles[0].inherit", "unknown field \"inherit\""},
		{"duplicate field", "{\"roles\": [\n  {\"name\": \"a\", \"name\": \"b\"}\n]}", 2, 17, "", "duplicate field \"name\""},
		{"missing name", "{\"roles\": [\n  {}\n]}", 2, 3, "roles[0].name", "missing field"},
		{"name not string", "{\"roles\": [\n  {\"name\": 5}\n]}", 2, 12, "roles[0].name", "want a string"},
		{"unknown inherited role", "{\"roles\": [\n  {\"name\": \"a\"},\n  {\"name\": \"b\",\n   \"inherits\": [\"a\", \"c\"]}\n]}", 4, 22, "roles[1].inherits[1]", "unknown role \"c\""},
		{"cycle", "{\"roles\": [\n  {\"name\": \"a\", \"inherits\": [\"b\"]},\n  {\"name\": \"b\", \"inherits\": [\"a\"]}\n]}", 3, 30, "roles[1].inherits[0]", "inheritance cycle a -> b -> a"},
		{"inherits not strings", `{"roles": [{"name": "a", "inherits": [1]}]}`, 1, 39, "roles[0].inherits[0]", "want a string"},
		{"unknown permission field", "{\"roles\": [{\"name\": \"a\", \"permissions\": [\n  {\"actions\": [\"decrypt\"], \"resource\": [\"*\"]}]}]}", 2, 28, "roles[0].permissions[0].resource", "unknown field"},
		{"missing resources", "{\"roles\": [{\"name\": \"a\", \"permissions\": [\n  {\"actions\": [\"decrypt\"]}]}]}", 2, 3, "roles[0].permissions[0].resources", "missing field"},
		{"unknown action", "{\"roles\": [{\"name\": \"a\", \"permissions\": [\n  {\"actions\": [\"decrypt\", \"peek\"], \"resources\": [\"*\"]}]}]}", 2, 27, "roles[0].permissions[0].actions[1]", "unknown action \"peek\""},
		{"bad resource", "{\"roles\": [{\"name\": \"a\", \"permissions\": [\n  {\"actions\": [\"decrypt\"],\n   \"resources\": [\"users.ssn\"]}]}]}", 3, 18, "roles[0].permissions[0].resources[0]", "resource pattern must be"},
		// Nesting is bounded by the document's shape: the first level too
		// many is a type error.
		{"too deep", `{"roles": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`, 1, 12, "roles[0]", "want an object, got an array"},
		{"key case matters", `{"roles": [{"Name": "a"}]}`, 1, 13, "roles[0].Name", "unknown field \"Name\""},
		{"null name", `{"roles": [{"name": null}]}`, 1, 21, "roles[0].name", "want a string, got null"},
		{"version not an integer", `{"version": 1.0, "roles": []}`, 1, 13, "version", "unsupported version 1.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePolicy("p.json", []byte(tt.doc))
			assert.Nil(t, p, "ParsePolicy(%q) policy", tt.doc)
			var pe *PolicyError
			require.ErrorAs(t, err, &pe, "ParsePolicy(%q)", tt.doc)
			assert.ErrorIs(t, err, ErrInvalidPolicy, "ParsePolicy(%q)", tt.doc)
			assert.Contains(t, pe.Msg, tt.msg, "ParsePolicy(%q) message", tt.doc)
			assert.Equal(t, tt.field, pe.Field, "ParsePolicy(%q) field", tt.doc)
			assert.Equal(t, "p.json", pe.Source, "ParsePolicy(%q) source", tt.doc)
			if tt.line != 0 {
				assert.Equal(t, [2]int{tt.line, tt.col}, [2]int{pe.Line, pe.Column}, "ParsePolicy(%q) line:column (%v)", tt.doc, err)
			}
		})
	}
}

func TestPolicyErrorString(t *testing.T) {
	_, err := ParsePolicy("p.json", []byte("{\"roles\": [\n  {\"name\": \"a\", \"inherits\": [\"zz\"]}\n]}"))
	require.Error(t, err, "ParsePolicy with an unknown inherited role")
	assert.Equal(t, `access: invalid policy: p.json:2:30: roles[0].inherits[0]: unknown role "zz"`, err.Error(), "ParsePolicy error text")
	_, err = NewPolicy(Config{Roles: []Role{{Name: "a", Inherits: []string{"zz"}}}})
	require.Error(t, err, "NewPolicy with an unknown inherited role")
	assert.Equal(t, `access: invalid policy: roles[0].inherits[0]: unknown role "zz"`, err.Error(), "NewPolicy error text (no position)")
}

func TestLoadPolicyFileErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := LoadPolicyFile(filepath.Join(dir, "missing.json"))
	assert.ErrorIs(t, err, os.ErrNotExist, "LoadPolicyFile(missing file)")
	big := filepath.Join(dir, "big.json")
	require.NoError(t, os.WriteFile(big, []byte(`{"roles": []}`+strings.Repeat(" ", MaxPolicySize)), 0o600))
	_, err = LoadPolicyFile(big)
	assert.ErrorIs(t, err, ErrInvalidPolicy, "LoadPolicyFile(file over MaxPolicySize)")
	assert.ErrorContains(t, err, "larger than", "LoadPolicyFile(file over MaxPolicySize)")
}

func FuzzParsePolicy(f *testing.F) {
	seed, err := os.ReadFile(filepath.Join("testdata", "policy.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"roles": [{"name": "a", "inherits": ["a"]}]}`))
	f.Add([]byte(`{"roles": [{"name": "a", "permissions": [{"actions": ["*"], "resources": ["field:*.x"]}]}]}`))
	f.Add([]byte(`{"version": 1, "roles": []} x`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePolicy("fuzz.json", data)
		if (p == nil) == (err == nil) {
			t.Fatalf("ParsePolicy = %v, %v: want exactly one of policy and error", p, err)
		}
		if err != nil {
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("ParsePolicy error %T %v is not a *PolicyError", err, err)
			}
			if pe.Line < 0 || pe.Column < 0 {
				t.Fatalf("negative position in %v", err)
			}
			return
		}
		// A parsed policy answers without panicking, and every role has
		// itself as an ancestor.
		ctx := WithPrincipal(context.Background(), Principal{UserID: "u", Roles: p.Roles()})
		_ = p.Authorize(ctx, ActionDecrypt, FieldResource("users", "ssn"))
		for _, r := range p.Roles() {
			if !p.CheckAccess(r, r) {
				t.Fatalf("CheckAccess(%q, %q) = false", r, r)
			}
		}
	})
}
