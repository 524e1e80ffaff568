package gormcrypt

import (
	"fmt"
	"strconv"
	"strings"
)

// TagName is the struct tag that configures an encrypted field beyond
// GORM's `gorm:"serializer:keyward"`.
const TagName = "keyward"

// Limits of a blind index's length in bits.
const (
	MinBlindBits     = 8
	MaxBlindBits     = 256
	DefaultBlindBits = 32
)

// tagOptions is a parsed keyward tag.
type tagOptions struct {
	blind     string  // field or column name of the blind index; "" = none
	bits      int     // 0 = the registration's default
	lower     bool    // normalize to lower case before indexing
	trim      bool    // trim white space before indexing
	redact    *string // value shown instead of a refused decryption
	hasRedact bool
}

// parseTag parses the keyward tag: entries separated by ';', each "key" or
// "key:value", keys case-insensitive:
//
//	blind:<field or column>   the []byte field that holds the blind index
//	bits:<n>                  blind index length in bits (8-256)
//	normalize:lower,trim      normalization before indexing
//	redact:<text>             value shown when decryption is refused
func parseTag(tag string) (tagOptions, error) {
	var o tagOptions
	seen := map[string]bool{}
	for entry := range strings.SplitSeq(tag, ";") {
		if strings.TrimSpace(entry) == "" {
			continue
		}
		key, value, hasValue := strings.Cut(entry, ":")
		key = strings.ToLower(strings.TrimSpace(key))
		if seen[key] {
			return tagOptions{}, fmt.Errorf("%w: %q given twice", ErrTag, key)
		}
		seen[key] = true
		switch key {
		case "blind":
			o.blind = strings.TrimSpace(value)
			if o.blind == "" {
				return tagOptions{}, fmt.Errorf("%w: blind needs the name of the index field (blind:email_idx)", ErrTag)
			}
		case "bits":
			n, err := strconv.Atoi(strings.TrimSpace(value))
			if err != nil || n < MinBlindBits || n > MaxBlindBits {
				return tagOptions{}, fmt.Errorf("%w: bits must be a number from %d to %d", ErrTag, MinBlindBits, MaxBlindBits)
			}
			o.bits = n
		case "normalize":
			if !hasValue || strings.TrimSpace(value) == "" {
				return tagOptions{}, fmt.Errorf("%w: normalize needs lower and/or trim", ErrTag)
			}
			for n := range strings.SplitSeq(value, ",") {
				switch strings.ToLower(strings.TrimSpace(n)) {
				case "lower":
					o.lower = true
				case "trim":
					o.trim = true
				default:
					return tagOptions{}, fmt.Errorf("%w: unknown normalization %q (lower, trim)", ErrTag, strings.TrimSpace(n))
				}
			}
		case "redact":
			if !hasValue {
				return tagOptions{}, fmt.Errorf("%w: redact needs a value (redact:***)", ErrTag)
			}
			v := value
			o.redact, o.hasRedact = &v, true
		default:
			return tagOptions{}, fmt.Errorf("%w: unknown key %q (blind, bits, normalize, redact)", ErrTag, key)
		}
	}
	if (o.bits != 0 || o.lower || o.trim) && o.blind == "" {
		return tagOptions{}, fmt.Errorf("%w: bits and normalize need a blind index (blind:<field>)", ErrTag)
	}
	return o, nil
}
