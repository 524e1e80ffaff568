package access

import (
	"sort"
	"strings"
)

// Actions a permission can grant. A policy names them, or "*" for all.
const (
	ActionEncrypt = "encrypt" // encrypt with a keyring's primary key or for a field
	ActionDecrypt = "decrypt" // decrypt a token of a keyring or a field
	ActionRotate  = "rotate"  // make a new primary key version of a keyring
	ActionRewrap  = "rewrap"  // re-encrypt data or re-wrap data keys under a newer key
	ActionManage  = "manage"  // change key states, destroy keys, administer a keyring
	ActionDerive  = "derive"  // compute a derived key, e.g. a blind index or the audit key
	// ActionForce overrides a safety check, such as destroying a key that
	// data may still use or that was disabled too recently. It is asked in
	// addition to the action it overrides, so that a Guard audits every
	// override as a decision of its own.
	ActionForce = "force"
)

// Resource kinds. A resource string is "kind:name"; KeyringResource and
// FieldResource build them.
const (
	kindKeyring = "keyring" // "keyring:NAME"
	kindField   = "field"   // "field:TABLE.COLUMN"
)

// wildcard matches any run of characters, including none, in a policy's
// resource pattern. As a whole action it means every action.
const wildcard = "*"

const numActions = 7

// actions returns the actions a policy may grant, in a fixed order.
func actions() []string {
	return []string{ActionEncrypt, ActionDecrypt, ActionRotate, ActionRewrap, ActionManage, ActionDerive, ActionForce}
}

// actionIndex returns the index of a known action, or -1.
func actionIndex(a string) int {
	switch a {
	case ActionEncrypt:
		return 0
	case ActionDecrypt:
		return 1
	case ActionRotate:
		return 2
	case ActionRewrap:
		return 3
	case ActionManage:
		return 4
	case ActionDerive:
		return 5
	case ActionForce:
		return 6
	}
	return -1
}

// KeyringResource returns the resource string of the keyring name:
// "keyring:" followed by the name, with '%', '*' and control characters
// percent-encoded (%25, %2A, ...) so that the string cannot contain a
// wildcard. An empty name gives a resource that is always denied.
func KeyringResource(name string) string {
	return kindKeyring + ":" + escape(name, 0)
}

// FieldResource returns the resource string of a column of a table:
// "field:TABLE.COLUMN". The column is what follows the last '.', so a table
// may be schema-qualified ("public.users") while a '.' in the column is
// percent-encoded (%2E), as are '%', '*' and control characters in both
// parts. Distinct (table, column) pairs thus give distinct strings. An empty
// table or column gives a resource that is always denied.
func FieldResource(table, column string) string {
	return kindField + ":" + escape(table, 0) + "." + escape(column, '.')
}

// escape percent-encodes '%', '*', control characters and the byte extra
// (when non-zero) in s.
func escape(s string, extra byte) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if needsEscape(s[i], extra) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hexdigits = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if needsEscape(c, extra) {
			b = append(b, '%', hexdigits[c>>4], hexdigits[c&15])
			continue
		}
		b = append(b, c)
	}
	return string(b)
}

func needsEscape(c, extra byte) bool {
	return c == '%' || c == '*' || c < 0x20 || c == 0x7f || (extra != 0 && c == extra)
}

// validResource reports whether r is a resource Authorize accepts: a known
// kind, a non-empty name, no wildcard; a field has a non-empty table and
// column.
func validResource(r string) bool {
	if strings.IndexByte(r, '*') >= 0 {
		return false
	}
	if name, ok := strings.CutPrefix(r, kindKeyring+":"); ok {
		return name != ""
	}
	if name, ok := strings.CutPrefix(r, kindField+":"); ok {
		i := strings.LastIndexByte(name, '.')
		return i > 0 && i < len(name)-1
	}
	return false
}

// checkPattern returns "" when p is a valid resource pattern, else what is
// wrong with it.
func checkPattern(p string) string {
	if p == wildcard {
		return ""
	}
	kind, name, ok := strings.Cut(p, ":")
	if !ok || (kind != kindKeyring && kind != kindField) {
		return "resource pattern must be \"*\", \"keyring:NAME\" or \"field:TABLE.COLUMN\""
	}
	if name == "" {
		return "resource pattern has an empty name"
	}
	for i := 0; i < len(name); i++ {
		if name[i] < 0x20 || name[i] == 0x7f {
			return "resource pattern contains a control character"
		}
	}
	if kind == kindField && strings.IndexByte(name, '*') < 0 {
		i := strings.LastIndexByte(name, '.')
		if i <= 0 || i == len(name)-1 {
			return "field pattern must be TABLE.COLUMN"
		}
	}
	return ""
}

// globMatch reports whether s matches pattern, where '*' matches any run of
// bytes (including none) and every other byte matches itself. It runs in
// O(len(pattern)*len(s)) at worst and allocates nothing.
func globMatch(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && pattern[p] == s[i]:
			p++
			i++
		case star >= 0:
			mark++
			p, i = star+1, mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// resourceSet is a compiled set of resource patterns for one action.
type resourceSet struct {
	all      bool                // "*" is in the set
	exact    map[string]struct{} // patterns without a wildcard
	prefixes []string            // patterns "X*" (as "X"), sorted, prefix-free
	globs    []string            // other patterns with wildcards
}

func newResourceSet(patterns []string) resourceSet {
	var rs resourceSet
	var prefixes []string
	for _, p := range patterns {
		switch i := strings.IndexByte(p, '*'); {
		case p == wildcard:
			return resourceSet{all: true}
		case i < 0:
			if rs.exact == nil {
				rs.exact = make(map[string]struct{})
			}
			rs.exact[p] = struct{}{}
		case i == len(p)-1:
			prefixes = append(prefixes, p[:i])
		default:
			rs.globs = append(rs.globs, p)
		}
	}
	// Keep only prefixes that no shorter kept prefix covers: in sorted order
	// everything a prefix covers follows it directly.
	sort.Strings(prefixes)
	for _, p := range prefixes {
		if n := len(rs.prefixes); n > 0 && strings.HasPrefix(p, rs.prefixes[n-1]) {
			continue
		}
		rs.prefixes = append(rs.prefixes, p)
	}
	for e := range rs.exact {
		if rs.hasPrefixOf(e) {
			delete(rs.exact, e)
		}
	}
	sort.Strings(rs.globs)
	rs.globs = compactStrings(rs.globs)
	return rs
}

func compactStrings(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// hasPrefixOf reports whether some prefix in the set is a prefix of r. The
// prefixes are sorted and prefix-free, so the only candidate is the greatest
// one not above r.
func (rs *resourceSet) hasPrefixOf(r string) bool {
	ps := rs.prefixes
	lo, hi := 0, len(ps)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if ps[m] <= r {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo > 0 && strings.HasPrefix(r, ps[lo-1])
}

func (rs *resourceSet) match(r string) bool {
	if rs.all {
		return true
	}
	if _, ok := rs.exact[r]; ok {
		return true
	}
	if len(rs.prefixes) > 0 && rs.hasPrefixOf(r) {
		return true
	}
	for _, g := range rs.globs {
		if globMatch(g, r) {
			return true
		}
	}
	return false
}
