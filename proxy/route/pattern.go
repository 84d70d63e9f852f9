package route

import (
	"errors"
	"fmt"
	"strings"
)

// The pattern syntax lives here, in the data plane, because this is where a
// pattern has to mean something: the admin API's validation should call these
// checks rather than keep its own copy that could drift from what Compile
// accepts.

// MaxPathPattern is the longest path pattern, in bytes.
const MaxPathPattern = 1024

// CheckPath returns why p does not compile as a path pattern, or nil.
//
// A pattern starts with "/" and is at most MaxPathPattern bytes. A segment is
// a literal or a whole-segment parameter "{name}" (letters, digits and _,
// starting with a letter or _, at most 64 bytes, each name once per pattern).
// A "*" may only be the last character. Spaces, control characters, '?', '#'
// and '%' are refused: literals are compared with the request's
// percent-decoded segments, so a pattern is written unescaped.
func CheckPath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return errors.New("must start with /")
	}
	if len(p) > MaxPathPattern {
		return fmt.Errorf("must be at most %d bytes", MaxPathPattern)
	}
	if i := strings.IndexByte(p, '*'); i >= 0 && i != len(p)-1 {
		return errors.New("may only use * as its last character")
	}
	var names []string
	for seg := range strings.SplitSeq(p, "/") {
		for _, c := range seg {
			if c <= ' ' || c == 0x7f || c == '?' || c == '#' || c == '%' {
				return errors.New("must not contain spaces, control characters, '?', '#' or '%'")
			}
		}
		open, close := strings.Count(seg, "{"), strings.Count(seg, "}")
		if open == 0 && close == 0 {
			continue
		}
		if open != 1 || close != 1 || seg[0] != '{' || seg[len(seg)-1] != '}' {
			return fmt.Errorf("segment %q: a parameter must be a whole segment, as in /users/{id}", seg)
		}
		name := seg[1 : len(seg)-1]
		if !validParamName(name) {
			return fmt.Errorf("segment %q: a parameter name is letters, digits and _, starting with a letter or _", seg)
		}
		for _, n := range names {
			if n == name {
				return fmt.Errorf("parameter {%s} appears twice", name)
			}
		}
		names = append(names, name)
	}
	return nil
}

// validParamName reports whether s matches ^[A-Za-z_][A-Za-z0-9_]{0,63}$.
func validParamName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// CheckHost returns why h does not compile as a host pattern, or nil: a DNS
// name ("api.example.com"), or one behind a leading "*." ("*.example.com"),
// which matches any subdomain at any depth but not the name itself.
func CheckHost(h string) error {
	name := strings.TrimPrefix(h, "*.")
	if strings.Contains(name, "*") {
		return errors.New("may only use a wildcard as a leading \"*.\", as in *.example.com")
	}
	if !validHostname(name) {
		return fmt.Errorf("%q is not a valid hostname", h)
	}
	return nil
}

// validHostname reports whether h is a DNS name of letters, digits and
// hyphens, at most 253 bytes, each label 1 to 63 bytes and not starting or
// ending with a hyphen.
func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// CheckMethod returns why m is not a method name, or nil: a method is an
// RFC 9110 token.
func CheckMethod(m string) error {
	if m == "" {
		return errors.New("must not be empty")
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return errors.New("must be an HTTP method name such as GET")
	}
	return nil
}

// pattern is a path pattern split for the tree: the segments after the
// leading "/", and for a prefix pattern the last segment is the literal that
// the request's segment must start with (the "*" removed).
type pattern struct {
	segs   []string
	names  []string // parameter names, in order
	prefix bool
	// shape has a byte per segment, '1' for a literal and '0' for a
	// parameter, so that comparing two shapes as strings finds the first
	// segment, left to right, where a literal meets a parameter.
	shape string
	// key is the pattern with parameter names dropped: two paths of one
	// entry with equal keys would be ambiguous.
	key string
}

// parsePath splits a pattern that CheckPath accepted.
func parsePath(p string) pattern {
	var pt pattern
	body := p[1:]
	if strings.HasSuffix(body, "*") {
		pt.prefix = true
		body = body[:len(body)-1]
	}
	pt.segs = strings.Split(body, "/")
	shape := make([]byte, len(pt.segs))
	key := make([]string, len(pt.segs))
	for i, s := range pt.segs {
		shape[i], key[i] = '1', s
		if isParam(s) {
			pt.names = append(pt.names, s[1:len(s)-1])
			shape[i], key[i] = '0', "{}"
		}
	}
	pt.shape = string(shape)
	pt.key = "/" + strings.Join(key, "/")
	if pt.prefix {
		pt.key += "*"
	}
	return pt
}

func isParam(seg string) bool { return strings.HasPrefix(seg, "{") }

// unescape percent-decodes s. An escape that is not "%" and two hex digits
// is kept as it is, so a malformed path still matches what it spells.
func unescape(s string) string {
	i := strings.IndexByte(s, '%')
	if i < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	b = append(b, s[:i]...)
	for ; i < len(s); i++ {
		if c, ok := escapeAt(s, i); ok {
			b = append(b, c)
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

// escapedLen returns how many bytes of the escaped s decode to its first n
// bytes.
func escapedLen(s string, n int) int {
	i := 0
	for ; n > 0 && i < len(s); n-- {
		if _, ok := escapeAt(s, i); ok {
			i += 3
		} else {
			i++
		}
	}
	return i
}

// escapeAt decodes the escape at s[i], if there is a valid one.
func escapeAt(s string, i int) (byte, bool) {
	if s[i] != '%' || i+2 >= len(s) {
		return 0, false
	}
	hi, ok1 := unhex(s[i+1])
	lo, ok2 := unhex(s[i+2])
	return hi<<4 | lo, ok1 && ok2
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
