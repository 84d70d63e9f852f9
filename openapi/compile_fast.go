package openapi

import (
	"encoding/json"
	"math/big"
	"strconv"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Most parameters, and most bodies, have schemas of a few keywords (a
// type, bounds, an enum, a pattern, a format; properties, required,
// items). The general validator spends most of a check on them (every
// number becomes a big.Rat, every step allocates), so such a schema also
// gets a fastCheck, read from the compiled schema itself and so meaning
// exactly what it means: it proves a value valid without allocating, and
// anything it cannot prove (a failure, a number out of int64) goes to
// the validator, which decides and words the violations.
type fastCheck struct {
	types              typeSet // 0: any
	enum               []string
	enumSet            map[string]bool // a long enum
	hasEnum            bool
	minLen, maxLen     int // -1: none
	pattern            jsonschema.Regexp
	format             func(any) error
	min, max, xmin, xm *int64
	items              *fastCheck // arrays
	minItems, maxItems int
	props              map[string]*fastCheck // objects
	required           []string
	// extra checks properties not in props; noExtra refuses them
	// (additionalProperties: false).
	extra   *fastCheck
	noExtra bool
}

// maxRefHops bounds a chain of schemas that are only a $ref.
const maxRefHops = 32

// maxEnumScan is the longest enum the fast check scans; a longer one is
// a set.
const maxEnumScan = 16

// newFastCheck returns the fast check of s, nil if s, or a schema it
// leads to, uses a keyword the fast check does not know.
func newFastCheck(s *jsonschema.Schema) *fastCheck {
	b := &fastBuilder{memo: map[*jsonschema.Schema]*fastCheck{}}
	f := b.build(s)
	if b.failed {
		return nil
	}
	return f
}

// fastBuilder builds the fast checks of a schema and those it leads to;
// memo makes a recursive schema (an item whose parts are items) one
// cyclic check.
type fastBuilder struct {
	memo   map[*jsonschema.Schema]*fastCheck
	failed bool
}

func (b *fastBuilder) build(s *jsonschema.Schema) *fastCheck {
	// A chain of $refs is followed a few steps: a cycle of them (A is
	// B, B is A) must not hang a deploy.
	for hops := 0; s != nil && s.Ref != nil; hops++ {
		if hops == maxRefHops || !onlyRef(s) {
			b.failed = true
			return nil
		}
		s = s.Ref
	}
	if f, ok := b.memo[s]; ok {
		return f
	}
	if s == nil || len(b.memo) > 1000 || s.Bool != nil || s.RecursiveRef != nil || s.DynamicRef != nil ||
		s.Const != nil || s.Not != nil || len(s.AllOf)+len(s.AnyOf)+len(s.OneOf) > 0 || s.If != nil ||
		s.MaxProperties != nil || s.MinProperties != nil || s.PropertyNames != nil || len(s.PatternProperties) > 0 ||
		len(s.Dependencies)+len(s.DependentRequired)+len(s.DependentSchemas) > 0 || s.UnevaluatedProperties != nil ||
		s.UniqueItems || s.Contains != nil || s.MinContains != nil || s.MaxContains != nil ||
		s.AdditionalItems != nil || len(s.PrefixItems) > 0 || s.UnevaluatedItems != nil ||
		s.ContentEncoding != nil || s.ContentMediaType != nil || s.ContentSchema != nil ||
		s.MultipleOf != nil || len(s.Extensions) > 0 {
		b.failed = true
		return nil
	}
	f := &fastCheck{minLen: intOr(s.MinLength), maxLen: intOr(s.MaxLength), pattern: s.Pattern,
		minItems: intOr(s.MinItems), maxItems: intOr(s.MaxItems), required: s.Required}
	b.memo[s] = f
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
				b.failed = true
				return nil
			}
			f.enum = append(f.enum, str)
		}
		if len(f.enum) > maxEnumScan {
			f.enumSet = make(map[string]bool, len(f.enum))
			for _, e := range f.enum {
				f.enumSet[e] = true
			}
		}
	}
	var ok [4]bool
	f.min, ok[0] = bound(s.Minimum)
	f.max, ok[1] = bound(s.Maximum)
	f.xmin, ok[2] = bound(s.ExclusiveMinimum)
	f.xm, ok[3] = bound(s.ExclusiveMaximum)
	if ok != [4]bool{true, true, true, true} {
		b.failed = true
		return nil
	}
	switch items := s.Items.(type) {
	case nil:
	case *jsonschema.Schema:
		f.items = b.build(items)
	default:
		b.failed = true
	}
	if s.Items2020 != nil {
		f.items = b.build(s.Items2020)
	}
	if len(s.Properties) > 0 {
		f.props = make(map[string]*fastCheck, len(s.Properties))
		for name, p := range s.Properties {
			f.props[name] = b.build(p)
		}
	}
	switch ap := s.AdditionalProperties.(type) {
	case nil:
	case bool:
		f.noExtra = !ap
	case *jsonschema.Schema:
		f.extra = b.build(ap)
	default:
		b.failed = true
	}
	return f
}

// onlyRef reports whether a schema with $ref has no keyword beside it
// that validates.
func onlyRef(s *jsonschema.Schema) bool {
	c := *s
	c.Ref = nil
	return (&fastBuilder{memo: map[*jsonschema.Schema]*fastCheck{}}).build(&c) != nil &&
		c.Types == nil && c.Enum == nil && c.Format == nil &&
		c.MinLength == nil && c.MaxLength == nil && c.Pattern == nil && c.MinItems == nil && c.MaxItems == nil &&
		c.Minimum == nil && c.Maximum == nil && c.ExclusiveMinimum == nil && c.ExclusiveMaximum == nil &&
		c.Items == nil && c.Items2020 == nil && len(c.Properties) == 0 && len(c.Required) == 0 && c.AdditionalProperties == nil
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
	// Bounds within ±2^53 are exact as float64s too.
	if !r.IsInt() || !r.Num().IsInt64() || r.Num().Int64() > 1<<53 || r.Num().Int64() < -(1<<53) {
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
		if f.enumSet != nil && !f.enumSet[v] {
			return false
		}
		if f.hasEnum && f.enumSet == nil {
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
		if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			if f.min != nil && n < *f.min || f.max != nil && n > *f.max ||
				f.xmin != nil && n <= *f.xmin || f.xm != nil && n >= *f.xm {
				return false
			}
			break
		}
		// A fraction, an exponent, or out of int64: a number schema
		// only. Rounding is monotonic and the bounds are exact in a
		// float64, so a rounded value strictly inside a bound is inside
		// it; one that rounds onto a bound is the validator's.
		if f.types != 0 && f.types&tNumber == 0 {
			return false
		}
		x, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return false
		}
		for _, b := range [...]*int64{f.min, f.xmin} {
			if b != nil && !(x > float64(*b)) {
				return false
			}
		}
		for _, b := range [...]*int64{f.max, f.xm} {
			if b != nil && !(x < float64(*b)) {
				return false
			}
		}
	case bool:
		if f.types != 0 && f.types&tBoolean == 0 || f.hasEnum {
			return false
		}
	case nil:
		if f.types != 0 && f.types&tNull == 0 || f.hasEnum {
			return false
		}
	case map[string]any:
		if f.types != 0 && f.types&tObject == 0 || f.hasEnum {
			return false
		}
		for _, name := range f.required {
			if _, ok := v[name]; !ok {
				return false
			}
		}
		for name, pv := range v {
			p, ok := f.props[name]
			switch {
			case ok:
				if p != nil && !p.check(pv) {
					return false
				}
			case f.noExtra:
				return false
			case f.extra != nil && !f.extra.check(pv):
				return false
			}
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
