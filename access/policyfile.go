package access

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
)

// MaxPolicySize is the largest policy file ParsePolicy and LoadPolicyFile
// accept.
const MaxPolicySize = 4 << 20

// PolicyFileVersion is the policy file format version this package reads.
const PolicyFileVersion = 1

// LoadPolicyFile reads a JSON policy file (see ParsePolicy) and compiles it.
func LoadPolicyFile(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("access: load policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxPolicySize+1))
	if err != nil {
		return nil, fmt.Errorf("access: load policy: %w", err)
	}
	return ParsePolicy(path, data)
}

// ParsePolicy decodes a JSON policy document and compiles it. name is used in
// error messages only (typically the file name). The document is an object:
//
//	{
//	  "version": 1,
//	  "roles": [
//	    {"name": "support", "description": "reads contact data",
//	     "permissions": [{"actions": ["decrypt"], "resources": ["field:users.email"]}]},
//	    {"name": "admin", "inherits": ["support"],
//	     "permissions": [{"actions": ["*"], "resources": ["keyring:*", "field:*"]}]}
//	  ]
//	}
//
// "version" is optional and must be 1 when present; "roles" is required;
// "description", "inherits" and "permissions" are optional. Unknown fields,
// duplicate fields, values of the wrong type, trailing data and every error
// NewPolicy reports are returned as a *PolicyError with the line and column.
func ParsePolicy(name string, data []byte) (*Policy, error) {
	cfg, loc, err := decodePolicy(name, data)
	if err != nil {
		return nil, err
	}
	return compile(cfg, loc)
}

// decodePolicy decodes a policy document into a Config and the positions of
// its fields.
func decodePolicy(name string, data []byte) (Config, *locator, error) {
	loc := &locator{source: name, data: data, offs: map[string]int{}}
	if len(data) > MaxPolicySize {
		return Config{}, nil, &PolicyError{Source: name, Msg: fmt.Sprintf("file larger than %d bytes", MaxPolicySize)}
	}
	root, err := parseJSON(data)
	if err != nil {
		var pe *PolicyError
		if errors.As(err, &pe) {
			pe.Source = name
		}
		return Config{}, nil, err
	}
	d := &schemaDecoder{loc: loc}
	cfg, err := d.config(root)
	if err != nil {
		return Config{}, nil, err
	}
	return cfg, loc, nil
}

// A jnode is a JSON value with the byte offset where it starts.
type jnode struct {
	kind    byte // '{', '[', '"', '0' (number), 'b' (bool), 'n' (null)
	off     int
	str     string // string value or number text
	members []jmember
	elems   []*jnode
}

type jmember struct {
	key string
	off int
	val *jnode
}

func (n *jnode) typeName() string {
	switch n.kind {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case 'b':
		return "a boolean"
	}
	return "null"
}

// maxJSONDepth bounds nesting; a policy needs 5 levels.
const maxJSONDepth = 32

type jparser struct {
	data  []byte
	dec   *json.Decoder
	depth int
}

// parseJSON parses one JSON value, keeping the start offset of every value
// and object key.
func parseJSON(data []byte) (*jnode, error) {
	p := &jparser{data: data, dec: json.NewDecoder(bytes.NewReader(data))}
	p.dec.UseNumber()
	if p.start() == len(data) {
		return nil, &PolicyError{Msg: "empty document"}
	}
	root, err := p.value()
	if err != nil {
		return nil, err
	}
	if off := p.start(); off < len(data) {
		return nil, p.errorAt(off, "unexpected data after the document")
	}
	return root, nil
}

// start returns the offset of the next token: the decoder's offset past any
// white space and separators.
func (p *jparser) start() int {
	off := int(p.dec.InputOffset())
	for off < len(p.data) {
		switch p.data[off] {
		case ' ', '\t', '\r', '\n', ',', ':':
			off++
			continue
		}
		break
	}
	return off
}

func (p *jparser) errorAt(off int, msg string) *PolicyError {
	line, col := lineCol(p.data, off)
	return &PolicyError{Line: line, Column: col, Msg: msg}
}

func (p *jparser) token() (json.Token, error) {
	tok, err := p.dec.Token()
	if err == nil {
		return tok, nil
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return nil, p.errorAt(int(se.Offset), "invalid JSON: "+se.Error())
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return nil, p.errorAt(len(p.data), "invalid JSON: unexpected end of document")
	}
	return nil, p.errorAt(p.start(), "invalid JSON: "+err.Error())
}

func (p *jparser) value() (*jnode, error) {
	off := p.start()
	tok, err := p.token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		if t != '{' && t != '[' {
			return nil, p.errorAt(off, "invalid JSON: unexpected "+t.String())
		}
		p.depth++
		if p.depth > maxJSONDepth {
			return nil, p.errorAt(off, "document nested too deeply")
		}
		n := &jnode{kind: byte(t), off: off}
		for p.dec.More() {
			if t == '[' {
				v, err := p.value()
				if err != nil {
					return nil, err
				}
				n.elems = append(n.elems, v)
				continue
			}
			koff := p.start()
			ktok, err := p.token()
			if err != nil {
				return nil, err
			}
			key, ok := ktok.(string)
			if !ok {
				return nil, p.errorAt(koff, "invalid JSON: object key is not a string")
			}
			for _, m := range n.members {
				if m.key == key {
					return nil, p.errorAt(koff, fmt.Sprintf("duplicate field %q", key))
				}
			}
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			n.members = append(n.members, jmember{key: key, off: koff, val: v})
		}
		if _, err := p.token(); err != nil { // the closing delimiter
			return nil, err
		}
		p.depth--
		return n, nil
	case string:
		return &jnode{kind: '"', off: off, str: t}, nil
	case json.Number:
		return &jnode{kind: '0', off: off, str: string(t)}, nil
	case bool:
		return &jnode{kind: 'b', off: off}, nil
	case nil:
		return &jnode{kind: 'n', off: off}, nil
	}
	return nil, p.errorAt(off, "invalid JSON")
}

// lineCol converts a byte offset into a 1-based line and byte column.
func lineCol(data []byte, off int) (line, col int) {
	off = min(max(off, 0), len(data))
	before := data[:off]
	line = 1 + bytes.Count(before, []byte{'\n'})
	col = off - bytes.LastIndexByte(before, '\n')
	return line, col
}

// schemaDecoder maps a parsed document onto Config, recording the offset of
// every field it decodes.
type schemaDecoder struct {
	loc *locator
}

func (d *schemaDecoder) errAt(field string, off int, format string, args ...any) *PolicyError {
	d.loc.offs[field] = off
	return d.loc.errorf(field, format, args...)
}

// object checks that n is an object whose keys are all in fields, and
// returns its members by key.
func (d *schemaDecoder) object(field string, n *jnode, fields ...string) (map[string]*jnode, error) {
	d.loc.offs[field] = n.off
	if n.kind != '{' {
		return nil, d.errAt(field, n.off, "want an object, got %s", n.typeName())
	}
	out := make(map[string]*jnode, len(n.members))
	for _, m := range n.members {
		known := false
		for _, f := range fields {
			known = known || f == m.key
		}
		sub := joinPath(field, m.key)
		if !known {
			return nil, d.errAt(sub, m.off, "unknown field %q", m.key)
		}
		d.loc.offs[sub] = m.val.off
		out[m.key] = m.val
	}
	return out, nil
}

func joinPath(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

func (d *schemaDecoder) str(field string, n *jnode) (string, error) {
	if n.kind != '"' {
		return "", d.errAt(field, n.off, "want a string, got %s", n.typeName())
	}
	return n.str, nil
}

func (d *schemaDecoder) strings(field string, n *jnode) ([]string, error) {
	if n.kind != '[' {
		return nil, d.errAt(field, n.off, "want an array of strings, got %s", n.typeName())
	}
	out := make([]string, 0, len(n.elems))
	for i, e := range n.elems {
		f := field + "[" + strconv.Itoa(i) + "]"
		d.loc.offs[f] = e.off
		s, err := d.str(f, e)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (d *schemaDecoder) config(root *jnode) (Config, error) {
	top, err := d.object("", root, "version", "roles")
	if err != nil {
		return Config{}, err
	}
	if v, ok := top["version"]; ok {
		if v.kind != '0' {
			return Config{}, d.errAt("version", v.off, "want a number, got %s", v.typeName())
		}
		if v.str != strconv.Itoa(PolicyFileVersion) {
			return Config{}, d.errAt("version", v.off, "unsupported version %s (want %d)", v.str, PolicyFileVersion)
		}
	}
	rn, ok := top["roles"]
	if !ok {
		return Config{}, d.errAt("roles", root.off, "missing field \"roles\"")
	}
	if rn.kind != '[' {
		return Config{}, d.errAt("roles", rn.off, "want an array of roles, got %s", rn.typeName())
	}
	var cfg Config
	for i, e := range rn.elems {
		field := "roles[" + strconv.Itoa(i) + "]"
		r, err := d.role(field, e)
		if err != nil {
			return Config{}, err
		}
		cfg.Roles = append(cfg.Roles, r)
	}
	return cfg, nil
}

func (d *schemaDecoder) role(field string, n *jnode) (Role, error) {
	m, err := d.object(field, n, "name", "description", "inherits", "permissions")
	if err != nil {
		return Role{}, err
	}
	var r Role
	nn, ok := m["name"]
	if !ok {
		return Role{}, d.errAt(field+".name", n.off, "missing field \"name\"")
	}
	if r.Name, err = d.str(field+".name", nn); err != nil {
		return Role{}, err
	}
	if dn, ok := m["description"]; ok {
		if r.Description, err = d.str(field+".description", dn); err != nil {
			return Role{}, err
		}
	}
	if in, ok := m["inherits"]; ok {
		if r.Inherits, err = d.strings(field+".inherits", in); err != nil {
			return Role{}, err
		}
	}
	if pn, ok := m["permissions"]; ok {
		pf := field + ".permissions"
		if pn.kind != '[' {
			return Role{}, d.errAt(pf, pn.off, "want an array of permissions, got %s", pn.typeName())
		}
		for j, e := range pn.elems {
			f := pf + "[" + strconv.Itoa(j) + "]"
			pm, err := d.object(f, e, "actions", "resources")
			if err != nil {
				return Role{}, err
			}
			var perm Permission
			for _, k := range []string{"actions", "resources"} {
				v, ok := pm[k]
				if !ok {
					return Role{}, d.errAt(f+"."+k, e.off, "missing field %q", k)
				}
				list, err := d.strings(f+"."+k, v)
				if err != nil {
					return Role{}, err
				}
				if k == "actions" {
					perm.Actions = list
				} else {
					perm.Resources = list
				}
			}
			r.Permissions = append(r.Permissions, perm)
		}
	}
	return r, nil
}
