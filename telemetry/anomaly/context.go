package anomaly

import (
	"fmt"
	"net/netip"
	"path"
	"strings"
	"time"
)

// Context is what an organisation knows that the events do not tell: who is
// on leave, on call or travelling, and which findings it has decided to
// accept. Each part hides exactly the findings listed with it, and only for
// the identities and dates it names; everything else is still reported.
//
// Its JSON form is the "context" object of the configuration:
//
//	"context": {
//	  "leave":    [{"identities": ["u1042"], "from": "2026-11-02", "to": "2026-11-27"}],
//	  "on_call":  [{"identities": ["u1007", "u1013"], "from": "2026-11-14", "to": "2026-11-15"}],
//	  "travel":   [{"identities": ["u1020"], "from": "2026-11-09", "to": "2026-11-13"}],
//	  "suppress": [{"kinds": ["new_source"], "identities": ["svc-*"], "sources": ["10.8.0.0/16"], "reason": "batch hosts move"}]
//	}
//
// Dates are days in the configured time zone, inclusive.
type Context struct {
	// Leave: a dormant_account finding of the identity is hidden when its
	// idle gap overlaps the leave period and it comes back within a week
	// after the period ends.
	Leave []Period `json:"leave,omitempty"`
	// OnCall: weekend_activity and off_hours findings of the identity
	// during the period are hidden.
	OnCall []Period `json:"on_call,omitempty"`
	// Travel: off_hours, weekend_activity and new_source findings of the
	// identity during the period (and the day after it) are hidden.
	Travel []Period `json:"travel,omitempty"`
	// Suppress rules hide every finding they match.
	Suppress []Rule `json:"suppress,omitempty"`
}

// Period is a span of days for some identities.
type Period struct {
	// Identities are user IDs or patterns with "*" (path.Match syntax).
	Identities []string `json:"identities"`
	// From and To are the first and the last day, "YYYY-MM-DD".
	From string `json:"from"`
	To   string `json:"to"`
}

// Rule hides the findings it matches: a finding matches when every list
// that is given has an entry matching it (an empty list matches anything),
// and it starts within From..To when those are given.
type Rule struct {
	// Kinds of findings.
	Kinds []Kind `json:"kinds,omitempty"`
	// Identities: user IDs or patterns with "*" (path.Match syntax); a
	// coordinated_access finding matches when all its identities do.
	Identities []string `json:"identities,omitempty"`
	// Resources: resources (table/column) or patterns, matched against
	// the resource of the event that raised the finding.
	Resources []string `json:"resources,omitempty"`
	// Sources: CIDR prefixes matched against the source address of the
	// event that raised the finding.
	Sources []string `json:"sources,omitempty"`
	// From and To bound the days the rule applies, "YYYY-MM-DD".
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Reason is free text for the people who maintain the rules.
	Reason string `json:"reason,omitempty"`
}

// ctxRules is a resolved Context: days as local day numbers.
type ctxRules struct {
	leave, onCall, travel []period
	rules                 []rule
}

type period struct {
	ids      []string
	from, to int64 // local day numbers, inclusive
}

type rule struct {
	kinds    []Kind
	ids, res []string
	nets     []netip.Prefix
	from, to int64
}

func parseDay(field, s string) (int64, error) {
	d, err := time.ParseInLocation(time.DateOnly, strings.TrimSpace(s), time.UTC)
	if err != nil {
		return 0, fmt.Errorf("%w: context %s %q is not a date YYYY-MM-DD", ErrInvalidConfig, field, clip(s))
	}
	return floorDiv(d.Unix(), 86400), nil
}

func checkPatterns(field string, ps []string) error {
	for _, p := range ps {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			return fmt.Errorf("%w: context %s pattern %q is malformed", ErrInvalidConfig, field, clip(p))
		}
	}
	return nil
}

func (c *Context) resolve() (*ctxRules, error) {
	if c == nil {
		return nil, nil
	}
	r := &ctxRules{}
	periods := func(field string, in []Period) ([]period, error) {
		var out []period
		for _, p := range in {
			if len(p.Identities) == 0 {
				return nil, fmt.Errorf("%w: context %s entry names no identities", ErrInvalidConfig, field)
			}
			if err := checkPatterns(field, p.Identities); err != nil {
				return nil, err
			}
			from, err := parseDay(field+" from", p.From)
			if err != nil {
				return nil, err
			}
			to, err := parseDay(field+" to", p.To)
			if err != nil {
				return nil, err
			}
			if to < from {
				return nil, fmt.Errorf("%w: context %s entry ends before it starts", ErrInvalidConfig, field)
			}
			out = append(out, period{ids: p.Identities, from: from, to: to})
		}
		return out, nil
	}
	var err error
	if r.leave, err = periods("leave", c.Leave); err != nil {
		return nil, err
	}
	if r.onCall, err = periods("on_call", c.OnCall); err != nil {
		return nil, err
	}
	if r.travel, err = periods("travel", c.Travel); err != nil {
		return nil, err
	}
	for _, s := range c.Suppress {
		ru := rule{kinds: s.Kinds, ids: s.Identities, res: s.Resources, from: minDay, to: maxDay}
		for _, k := range s.Kinds {
			if kindIndex(k) < 0 {
				return nil, fmt.Errorf("%w: context suppress kind %q is unknown", ErrInvalidConfig, clip(string(k)))
			}
		}
		if err := checkPatterns("suppress identities", s.Identities); err != nil {
			return nil, err
		}
		if err := checkPatterns("suppress resources", s.Resources); err != nil {
			return nil, err
		}
		for _, n := range s.Sources {
			p, err := netip.ParsePrefix(strings.TrimSpace(n))
			if err != nil {
				return nil, fmt.Errorf("%w: context suppress source %q is not a CIDR prefix", ErrInvalidConfig, clip(n))
			}
			ru.nets = append(ru.nets, p.Masked())
		}
		if s.From != "" {
			if ru.from, err = parseDay("suppress from", s.From); err != nil {
				return nil, err
			}
		}
		if s.To != "" {
			if ru.to, err = parseDay("suppress to", s.To); err != nil {
				return nil, err
			}
		}
		r.rules = append(r.rules, ru)
	}
	return r, nil
}

const (
	minDay = -1 << 40
	maxDay = 1 << 40
)

func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, s); ok {
			return true
		}
	}
	return false
}

// in reports whether id has a period in ps covering local day d, with the
// period extended by after days.
func in(ps []period, id string, d, after int64) bool {
	for _, p := range ps {
		if d >= p.from && d <= p.to+after && matchAny(p.ids, id) {
			return true
		}
	}
	return false
}

// hides reports whether the context hides a finding of kind k for user id
// raised on local day d by an event with resource res and source address
// src (either may be empty); since is, for dormant_account, the local day
// the identity was last active.
func (c *ctxRules) hides(k int, id string, d, since int64, res, src string) bool {
	if c == nil {
		return false
	}
	switch k {
	case kDormant:
		for _, p := range c.leave {
			if p.to >= since && d <= p.to+7 && p.from <= d && matchAny(p.ids, id) {
				return true
			}
		}
	case kWeekend, kOffHours:
		if in(c.onCall, id, d, 0) || in(c.travel, id, d, 1) {
			return true
		}
	case kNewSource:
		if in(c.travel, id, d, 1) {
			return true
		}
	}
	for _, r := range c.rules {
		if r.matches(k, id, d, res, src) {
			return true
		}
	}
	return false
}

func (r *rule) matches(k int, id string, d int64, res, src string) bool {
	if d < r.from || d > r.to {
		return false
	}
	if len(r.kinds) > 0 && !containsKind(r.kinds, kindList[k]) {
		return false
	}
	if len(r.ids) > 0 && !matchAny(r.ids, id) {
		return false
	}
	if len(r.res) > 0 && !matchAny(r.res, res) {
		return false
	}
	if len(r.nets) > 0 {
		a, err := netip.ParseAddr(src)
		if err != nil || !containsAddr(r.nets, a) {
			return false
		}
	}
	return true
}

func containsKind(ks []Kind, k Kind) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

func containsAddr(ps []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
