package gatehouse

import (
	"errors"
	"fmt"
	"strings"
)

// The route pattern language (see Route) is the domain's: the admin API's
// validation and the data plane's route table (proxy/route.Compile) both
// call these checks, so what the API accepts is exactly what compiles.

// MaxPathPattern is the longest path pattern, in bytes.
const MaxPathPattern = 1024

// CheckPathPattern returns why p is not a path pattern, or nil.
//
// A pattern starts with "/" and is at most MaxPathPattern bytes. A segment is
// a literal or a whole-segment parameter "{name}" (letters, digits and _,
// starting with a letter or _, at most 64 bytes, each name once per pattern).
// A "*" may only be the last character. Spaces, control characters, '?', '#'
// and '%' are refused: literals are compared with the request's
// percent-decoded segments, so a pattern is written unescaped.
func CheckPathPattern(p string) error {
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

// CheckHostPattern returns why h is not a host pattern, or nil: a host
// name (ValidHostname: "api.example.com"), or one behind a leading "*."
// ("*.example.com"), which matches any subdomain at any depth but not the
// name itself.
func CheckHostPattern(h string) error {
	name := strings.TrimPrefix(h, "*.")
	if strings.Contains(name, "*") {
		return errors.New("may only use a wildcard as a leading \"*.\", as in *.example.com")
	}
	if !ValidHostname(name) {
		return fmt.Errorf("%q is not a valid hostname", h)
	}
	return nil
}
