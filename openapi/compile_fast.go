package openapi

import (
	"encoding/json"
	"math/big"
	"strconv"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Most parameters have schemas of a few keywords (a type, bounds, an
// enum, a pattern, a format). The general validator spends most of a
// parameter's check on them (every number becomes a big.Rat), so such a
// schema also gets a fastCheck, read from the compiled schema itself and
// so meaning exactly what it means: it proves a value valid without
// allocating, and anything it cannot prove (a failure, a number out of
// int64) goes to the validator, which decides and words the violations.
type fastCheck struct {
	types              typeSet // 0: any
	enum               []string
	hasEnum            bool
	minLen, maxLen     int // -1: none
	pattern            jsonschema.Regexp
	format             func(any) error
	min, max, xmin, xm *int64
	items              *fastCheck // arrays
	minItems, maxItems int
}

// maxFastDepth bounds the $ref chain and nesting a fastCheck follows.
const maxFastDepth = 8

// newFastCheck returns the fast check of s, nil if s uses a keyword it
// does not know.
func newFastCheck(s *jsonschema.Schema, depth int) *fastCheck {
	for s != nil && s.Ref != nil {
		if depth > maxFastDepth || !onlyRef(s) {
			return nil
		}
		s, depth = s.Ref, depth+1
	}
	if s == nil || depth > maxFastDepth || s.Bool != nil || s.RecursiveRef != nil || s.DynamicRef != nil ||
		s.Const != nil || s.Not != nil || len(s.AllOf)+len(s.AnyOf)+len(s.OneOf) > 0 || s.If != nil ||
		s.MaxProperties != nil || s.MinProperties != nil || len(s.Required) > 0 || s.PropertyNames != nil ||
		len(s.Properties) > 0 || len(s.PatternProperties) > 0 || s.AdditionalProperties != nil ||
		len(s.Dependencies)+len(s.DependentRequired)+len(s.DependentSchemas) > 0 || s.UnevaluatedProperties != nil ||
		s.UniqueItems || s.Contains != nil || s.MinContains != nil || s.MaxContains != nil ||
		s.AdditionalItems != nil || len(s.PrefixItems) > 0 || s.UnevaluatedItems != nil ||
		s.ContentEncoding != nil || s.ContentMediaType != nil || s.ContentSchema != nil ||
		s.MultipleOf != nil || len(s.Extensions) > 0 {
		return nil
	}
	f := &fastCheck{minLen: intOr(s.MinLength), maxLen: intOr(s.MaxLength), pattern: s.Pattern,
		minItems: intOr(s.MinItems), maxItems: intOr(s.MaxItems)}
	if s.Types != nil {
		for _, name := range s.Types.ToStrings() {
			f.types |= typeBits[name]
		}
	}
	if s.Format != nil {
		f.format = s.Format.Validate
	}
	if s.Enum != nil {
		f.hasEnum = true
		for _, v := range s.Enum.Values {
			str, ok := v.(string)
			if !ok {
				return nil
			}
			f.enum = append(f.enum, str)
		}
	}
	var ok bool
	if f.min, ok = bound(s.Minimum); !ok {
		return nil
	}
	if f.max, ok = bound(s.Maximum); !ok {
		return nil
	}
	if f.xmin, ok = bound(s.ExclusiveMinimum); !ok {
		return nil
	}
	if f.xm, ok = bound(s.ExclusiveMaximum); !ok {
		return nil
	}
	switch items := s.Items.(type) {
	case nil:
	case *jsonschema.Schema:
		if f.items = newFastCheck(items, depth+1); f.items == nil {
			return nil
		}
	default:
		return nil
	}
	if s.Items2020 != nil {
		if f.items = newFastCheck(s.Items2020, depth+1); f.items == nil {
			return nil
		}
	}
	return f
}

// onlyRef reports whether a schema with $ref has no keyword beside it
// that validates.
func onlyRef(s *jsonschema.Schema) bool {
	c := *s
	c.Ref = nil
	return newFastCheck(&c, maxFastDepth) != nil && c.Types == nil && c.Enum == nil && c.Format == nil &&
		c.MinLength == nil && c.MaxLength == nil && c.Pattern == nil && c.MinItems == nil && c.MaxItems == nil &&
		c.Minimum == nil && c.Maximum == nil && c.ExclusiveMinimum == nil && c.ExclusiveMaximum == nil &&
		c.Items == nil && c.Items2020 == nil
}

func intOr(p *int) int {
	if p == nil {
		return -1
	}
	return *p
}

// bound reads a numeric bound as an int64; ok is false for one that is
// not an integer in range (the fast check then does not apply).
func bound(r *big.Rat) (*int64, bool) {
	if r == nil {
		return nil, true
	}
	if !r.IsInt() || !r.Num().IsInt64() {
		return nil, false
	}
	n := r.Num().Int64()
	return &n, true
}

// check reports whether v is valid for sure.
func (f *fastCheck) check(v any) bool {
	switch v := v.(type) {
	case string:
		if f.types != 0 && f.types&tString == 0 {
			return false
		}
		if f.minLen >= 0 || f.maxLen >= 0 {
			n := utf8.RuneCountInString(v)
			if f.minLen >= 0 && n < f.minLen || f.maxLen >= 0 && n > f.maxLen {
				return false
			}
		}
		if f.pattern != nil && !f.pattern.MatchString(v) {
			return false
		}
		if f.hasEnum {
			found := false
			for _, e := range f.enum {
				if e == v {
					found = true
					break
				}
			}
			if !found {
				return false
			}
		}
	case json.Number:
		if f.types != 0 && f.types&(tInteger|tNumber) == 0 || f.hasEnum {
			return false
		}
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return false // a fraction, an exponent, or out of int64
		}
		if f.min != nil && n < *f.min || f.max != nil && n > *f.max ||
			f.xmin != nil && n <= *f.xmin || f.xm != nil && n >= *f.xm {
			return false
		}
	case bool:
		if f.types != 0 && f.types&tBoolean == 0 || f.hasEnum {
			return false
		}
	case nil:
		if f.types != 0 && f.types&tNull == 0 || f.hasEnum {
			return false
		}
	case []any:
		if f.types != 0 && f.types&tArray == 0 || f.hasEnum ||
			f.minItems >= 0 && len(v) < f.minItems || f.maxItems >= 0 && len(v) > f.maxItems {
			return false
		}
		if f.items != nil {
			for _, it := range v {
				if !f.items.check(it) {
					return false
				}
			}
		}
	default:
		return false
	}
	return f.format == nil || f.format(v) == nil
}
