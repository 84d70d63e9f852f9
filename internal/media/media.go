// Package media reads media types as the data plane's checks need them
// (the content and openapi policies): a Content-Type is a media type
// whose parameters are ignored; an Accept field is a list of media ranges
// with weights (RFC 9110 §12.5.1). Both are read without allocating,
// since every request on a route with such a policy is checked.
package media

import (
	"strings"

	"github.com/gatehouse/gatehouse/internal/httpx"
)

// Range is a media type or range as a configuration declares it:
// lower-case type and subtype, "*" standing for any.
type Range struct{ Type, Sub string }

func (m Range) String() string { return m.Type + "/" + m.Sub }

// ParseRange parses a declared media type or range: "application/json",
// "text/*" or "*/*", without parameters; type and subtype come back in
// lower case.
func ParseRange(s string) (Range, bool) {
	typ, sub, found := strings.Cut(strings.Trim(s, " \t"), "/")
	if !found || !IsToken(typ) || !IsToken(sub) || typ == "*" && sub != "*" {
		return Range{}, false
	}
	return Range{strings.ToLower(typ), strings.ToLower(sub)}, true
}

// Matches reports whether the range covers the media type typ/sub.
func (m Range) Matches(typ, sub string) bool {
	return m.Type == "*" || strings.EqualFold(m.Type, typ) && (m.Sub == "*" || strings.EqualFold(m.Sub, sub))
}

// IsToken reports whether s is an RFC 9110 token: the syntax of a method,
// a header name, a media type's type and subtype.
func IsToken(s string) bool { return httpx.IsToken(s) }

// ContentType returns the media type a Content-Type field declares, its
// parameters ignored. ok is false when the field is absent, repeated, or
// not a media type (a range such as */* included).
func ContentType(values []string) (typ, sub string, ok bool) {
	if len(values) != 1 {
		return "", "", false
	}
	v := values[0]
	if i := strings.IndexByte(v, ';'); i >= 0 {
		v = v[:i]
	}
	typ, sub, ok = splitType(trimOWS(v))
	if !ok || typ == "*" || sub == "*" {
		return "", "", false
	}
	return typ, sub, true
}

// IsJSON reports whether typ/sub is application/json or a +json type
// (RFC 6839), the bodies a schema is checked against.
func IsJSON(typ, sub string) bool {
	return strings.EqualFold(sub, "json") && strings.EqualFold(typ, "application") ||
		len(sub) > len("+json") && strings.EqualFold(sub[len(sub)-len("+json"):], "+json")
}

// splitType splits "type/subtype", both tokens.
func splitType(s string) (typ, sub string, ok bool) {
	i := strings.IndexByte(s, '/')
	if i <= 0 || i == len(s)-1 {
		return "", "", false
	}
	typ, sub = s[:i], s[i+1:]
	return typ, sub, IsToken(typ) && IsToken(sub)
}

// trimOWS trims spaces and tabs.
func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// Acceptable reports whether the Accept field values admit at least one
// of the media types a route produces. A type is admitted when the most
// specific range that matches it (type/subtype, then type/*, then */*)
// has a non-zero weight; two ranges equally specific (application/json
// twice, with different parameters) count at the higher weight, since
// parameters other than the weight are not compared. A produced range
// (image/*) is admitted when some type it covers would be.
//
// No Accept field admits everything, and so does a field in which no
// element can be read: a 406 is for a client that said what it takes,
// not for one whose header is garbled. Elements that cannot be read are
// skipped; "*" is read as "*/*" and a weight such as ".5" as 0.5, as some
// old clients send them.
func Acceptable(values []string, produces []Range) bool {
	it := acceptIter{values: values}
	if _, ok := it.next(); !ok {
		return true
	}
	for _, p := range produces {
		if admits(values, p) {
			return true
		}
	}
	return false
}

// admits reports whether the Accept field values admit p.
func admits(values []string, p Range) bool {
	it := acceptIter{values: values}
	switch {
	case p.Type == "*":
		// Every element of non-zero weight is the most specific match of
		// some type: itself, or one of the types no other element names.
		for e, ok := it.next(); ok; e, ok = it.next() {
			if e.q > 0 {
				return true
			}
		}
		return false
	case p.Sub == "*":
		rangeQ, anyQ := -1, -1
		for e, ok := it.next(); ok; e, ok = it.next() {
			switch {
			case e.typ == "*":
				anyQ = max(anyQ, e.q)
			case !strings.EqualFold(e.typ, p.Type):
			case e.sub == "*":
				rangeQ = max(rangeQ, e.q)
			case e.q > 0:
				return true // a subtype named and welcome
			}
		}
		// A subtype no element names takes the weight of type/*, else
		// of */*.
		if rangeQ >= 0 {
			return rangeQ > 0
		}
		return anyQ > 0
	}
	return weight(it, p) > 0
}

// Weight is the weight, in thousandths, that Accept field values give the
// media type typ/sub (no wildcard): that of the most specific range that
// matches it, 0 if none does. A field with no readable element gives
// every type 1000, as Acceptable admits everything then.
func Weight(values []string, typ, sub string) int {
	it := acceptIter{values: values}
	if _, ok := it.next(); !ok {
		return 1000
	}
	return weight(acceptIter{values: values}, Range{typ, sub})
}

// weight is Weight for Accept elements it has not read yet.
func weight(it acceptIter, p Range) int {
	best, q := 0, 0 // specificity of the best match (0: none), its weight
	for e, ok := it.next(); ok; e, ok = it.next() {
		var spec int
		switch {
		case e.typ == "*":
			spec = 1
		case !strings.EqualFold(e.typ, p.Type):
			continue
		case e.sub == "*":
			spec = 2
		case strings.EqualFold(e.sub, p.Sub):
			spec = 3
		default:
			continue
		}
		if spec > best {
			best, q = spec, e.q
		} else if spec == best {
			q = max(q, e.q)
		}
	}
	return q
}

// acceptElem is one readable element of an Accept field: its range as
// the client wrote it, and its weight in thousandths.
type acceptElem struct {
	typ, sub string
	q        int
}

// acceptIter walks the elements of Accept field values, skipping those it
// cannot read.
type acceptIter struct {
	values []string
	rest   string
}

func (it *acceptIter) next() (acceptElem, bool) {
	for {
		if it.rest == "" {
			if len(it.values) == 0 {
				return acceptElem{}, false
			}
			it.rest, it.values = it.values[0], it.values[1:]
			continue
		}
		var s string
		s, it.rest = cutList(it.rest, ',')
		if e, ok := parseAcceptElem(s); ok {
			return e, true
		}
	}
}

// cutList cuts s at the first sep outside a quoted string.
func cutList(s string, sep byte) (elem, rest string) {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == sep:
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

// parseAcceptElem reads one element: a media range and its parameters, of
// which only the weight (q) counts. ok is false for an empty element, one
// that is not a media range, or one whose weight is malformed.
func parseAcceptElem(s string) (e acceptElem, ok bool) {
	rng, params, _ := strings.Cut(s, ";")
	rng = trimOWS(rng)
	if rng == "*" {
		e.typ, e.sub = "*", "*"
	} else if e.typ, e.sub, ok = splitType(rng); !ok || e.typ == "*" && e.sub != "*" {
		return acceptElem{}, false
	}
	e.q = 1000
	for params != "" {
		var p string
		p, params = cutList(params, ';')
		name, value, _ := strings.Cut(p, "=")
		if strings.EqualFold(trimOWS(name), "q") {
			if e.q, ok = parseQ(trimOWS(value)); !ok {
				return acceptElem{}, false
			}
			break // what follows the weight are extensions
		}
	}
	return e, true
}

// parseQ parses a qvalue ("0", "0.5", "1.000", and ".5") in thousandths.
func parseQ(s string) (int, bool) {
	q, digits := 0, 0
	if s != "" && (s[0] == '0' || s[0] == '1') {
		q, digits = int(s[0]-'0')*1000, 1
		s = s[1:]
	}
	if s != "" {
		if s[0] != '.' || len(s) > 4 {
			return 0, false
		}
		scale := 100
		for i := 1; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return 0, false
			}
			q += int(s[i]-'0') * scale
			scale /= 10
			digits++
		}
	}
	if digits == 0 || q > 1000 {
		return 0, false
	}
	return q, true
}
