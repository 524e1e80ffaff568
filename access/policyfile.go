package access

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
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
	if len(data) > MaxPolicySize {
		return nil, &PolicyError{Source: name, Msg: fmt.Sprintf("file larger than %d bytes", MaxPolicySize)}
	}
	loc := &locator{source: name, data: data, offs: map[string]int{}}
	if err := checkShape(loc); err != nil {
		return nil, err
	}
	// The document has the shape of policyFile, so encoding/json decodes
	// it; checkShape has recorded where each value is.
	var doc policyFile
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, &PolicyError{Source: name, Msg: "invalid JSON: " + err.Error()}
	}
	if doc.Version != "" && doc.Version != json.Number(strconv.Itoa(PolicyFileVersion)) {
		return nil, loc.errorf("version", "unsupported version %s (want %d)", doc.Version, PolicyFileVersion)
	}
	return compile(Config{Roles: doc.Roles}, loc)
}

// policyFile is the document ParsePolicy reads.
type policyFile struct {
	Version json.Number `json:"version"`
	Roles   []Role      `json:"roles"`
}

// requiredFields lists, per object type of the document, the members it
// must have.
var requiredFields = map[reflect.Type][]string{
	reflect.TypeFor[policyFile](): {"roles"},
	reflect.TypeFor[Role]():       {"name"},
	reflect.TypeFor[Permission](): {"actions", "resources"},
}

// checkShape reads the document in loc with a json.Decoder and checks it
// against the Go type it decodes into (policyFile): every value has the
// JSON type of its Go field, object members are known (by their json tag,
// exactly), not repeated and present where requiredFields says so, and
// nothing follows the document. It records the offset of every value by
// field path ("roles[1].inherits[0]") in loc, so that errors found later
// (by NewPolicy's checks) have a position. Errors are *PolicyError with the
// line and column. Nesting is bounded by the type, so a deeply nested
// document fails at the first level the type does not have.
func checkShape(loc *locator) error {
	s := &shape{loc: loc, dec: json.NewDecoder(bytes.NewReader(loc.data))}
	s.dec.UseNumber()
	if s.start() == len(loc.data) {
		return &PolicyError{Source: loc.source, Msg: "empty document"}
	}
	if err := s.value("", reflect.TypeFor[policyFile]()); err != nil {
		return err
	}
	if off := s.start(); off < len(loc.data) {
		return s.errorAt(off, "unexpected data after the document")
	}
	return nil
}

type shape struct {
	loc *locator
	dec *json.Decoder
}

// start returns the offset of the next token: the decoder's offset past any
// white space and separators.
func (s *shape) start() int {
	off := int(s.dec.InputOffset())
	for off < len(s.loc.data) {
		switch s.loc.data[off] {
		case ' ', '\t', '\r', '\n', ',', ':':
			off++
			continue
		}
		break
	}
	return off
}

func (s *shape) errorAt(off int, msg string) *PolicyError {
	line, col := lineCol(s.loc.data, off)
	return &PolicyError{Source: s.loc.source, Line: line, Column: col, Msg: msg}
}

// fieldErr is an error about the value at path, which starts at off.
func (s *shape) fieldErr(path string, off int, format string, args ...any) *PolicyError {
	s.loc.offs[path] = off
	return s.loc.errorf(path, format, args...)
}

func (s *shape) token() (json.Token, error) {
	tok, err := s.dec.Token()
	if err == nil {
		return tok, nil
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return nil, s.errorAt(int(se.Offset), "invalid JSON: "+se.Error())
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return nil, s.errorAt(len(s.loc.data), "invalid JSON: unexpected end of document")
	}
	return nil, s.errorAt(s.start(), "invalid JSON: "+err.Error())
}

// value checks the next value, at path, against t.
func (s *shape) value(path string, t reflect.Type) error {
	off := s.start()
	tok, err := s.token()
	if err != nil {
		return err
	}
	s.loc.offs[path] = off
	if got, want := jsonType(tok), jsonTypeOf(t); got != want {
		return s.fieldErr(path, off, "want %s, got %s", describe(t), got)
	}
	switch tok {
	case json.Delim('['):
		for i := 0; s.dec.More(); i++ {
			if err := s.value(path+"["+strconv.Itoa(i)+"]", t.Elem()); err != nil {
				return err
			}
		}
	case json.Delim('{'):
		seen := map[string]bool{}
		for s.dec.More() {
			koff := s.start()
			ktok, err := s.token()
			if err != nil {
				return err
			}
			key, _ := ktok.(string) // the decoder returns object keys as strings
			sub := joinPath(path, key)
			f, ok := fieldByTag(t, key)
			switch {
			case !ok:
				return s.fieldErr(sub, koff, "unknown field %q", key)
			case seen[key]:
				return s.errorAt(koff, fmt.Sprintf("duplicate field %q", key))
			}
			seen[key] = true
			if err := s.value(sub, f.Type); err != nil {
				return err
			}
		}
		for _, key := range requiredFields[t] {
			if !seen[key] {
				return s.fieldErr(joinPath(path, key), off, "missing field %q", key)
			}
		}
	default:
		return nil
	}
	_, err = s.token() // the closing delimiter
	return err
}

// fieldByTag returns the field of struct type t whose json tag names key.
func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for f := range t.Fields() {
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// jsonType names the JSON type of a token.
func jsonType(tok json.Token) string {
	switch tok.(type) {
	case json.Delim:
		if tok == json.Delim('{') {
			return "an object"
		}
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "null"
}

// jsonTypeOf names the JSON type that encodes Go type t.
func jsonTypeOf(t reflect.Type) string {
	switch {
	case t == reflect.TypeFor[json.Number]():
		return "a number"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Slice:
		return "an array"
	}
	return "an object"
}

// describe names what a value of Go type t must be, for errors.
func describe(t reflect.Type) string {
	if t.Kind() == reflect.Slice {
		return "an array of " + strings.ToLower(t.Elem().Name()) + "s"
	}
	return jsonTypeOf(t)
}

// lineCol converts a byte offset into a 1-based line and byte column.
func lineCol(data []byte, off int) (line, col int) {
	off = min(max(off, 0), len(data))
	before := data[:off]
	line = 1 + bytes.Count(before, []byte{'\n'})
	col = off - bytes.LastIndexByte(before, '\n')
	return line, col
}

func joinPath(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}
