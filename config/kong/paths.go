package kong

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// A Kong route path is a prefix: "/api" matches "/api", "/apix" and
// "/api/x". Gatehouse's "/api*" matches exactly those, so a plain path p
// converts to p + "*". A regex path (format 3.0: starting with "~";
// formats 1.1 and 2.1: any path with a character outside
// [A-Za-z0-9.-_~/%], as Kong's own migration to 3.0 decides) is anchored
// at its start only. It converts when gatehouse has a pattern matching
// exactly the same paths: literal characters, whole segments of
// "[^/]+" (named or not: a {param}), a "$" at the end (an exact
// pattern) or none or ".*" (a prefix). Anything else (\d, classes,
// alternatives, repetition, a parameter that does not end its segment)
// does not convert.

// kongPlain is Kong's test for a path that is not a regex in formats 1.1
// and 2.1 (kong/db/migrations/migrate_path_280_300.lua).
var kongPlain = regexp.MustCompile(`^[a-zA-Z0-9.\-_~/%]*$`)

// namedSegment is a capture of one whole segment: (?<name>[^/]+),
// (?P<name>[^/]+) or ([^/]+).
var namedSegment = regexp.MustCompile(`^\((?:\?P?<([A-Za-z_][A-Za-z0-9_]{0,63})>)?\[\^/\]\+\)`)

// convertPath returns the gatehouse pattern for a Kong route path and
// whether the path was a regex, or why it does not convert.
func convertPath(p, version string) (pattern string, regex bool, why string) {
	switch {
	case version == "3.0" && strings.HasPrefix(p, "~"):
		pattern, why = convertRegex(p[1:])
		return pattern, true, why
	case version != "3.0" && !kongPlain.MatchString(p):
		if strings.Contains(p, "%") {
			return "", true, "is a regular expression with percent-escapes, which Kong 3 rewrites and gatehouse patterns cannot hold"
		}
		pattern, why = convertRegex(p)
		return pattern, true, why
	}
	lit, why := decodeUnreserved(p)
	if why != "" {
		return "", false, why
	}
	if strings.ContainsAny(lit, "{}*") {
		return "", false, "has '{', '}' or '*', which in a gatehouse pattern mean a parameter or a prefix"
	}
	pattern = lit + "*"
	if err := gatehouse.CheckPathPattern(pattern); err != nil {
		return "", false, "converts to " + pattern + ", which " + err.Error()
	}
	return pattern, false, ""
}

// decodeUnreserved decodes the percent-escapes of unreserved characters,
// as Kong normalizes a plain path; an escape of another character stays
// an escape in Kong, which a gatehouse pattern (written decoded) cannot
// express.
func decodeUnreserved(p string) (string, string) {
	if !strings.Contains(p, "%") {
		return p, ""
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] != '%' {
			b.WriteByte(p[i])
			continue
		}
		var v byte
		if i+2 < len(p) {
			if _, err := fmt.Sscanf(p[i+1:i+3], "%02x", &v); err == nil && unreserved(v) {
				b.WriteByte(v)
				i += 2
				continue
			}
		}
		return "", fmt.Sprintf("keeps the percent-escape %q, which gatehouse patterns (matched against decoded segments) cannot hold", p[i:min(i+3, len(p))])
	}
	return b.String(), ""
}

func unreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

// convertRegex converts a Kong path regex (anchored at its start) to the
// gatehouse pattern matching exactly the same paths, or says why there is
// none.
func convertRegex(r string) (string, string) {
	const notExact = "is a regular expression with no exact gatehouse equivalent: "
	src := strings.TrimPrefix(r, "^")
	if !strings.HasPrefix(src, "/") && !strings.HasPrefix(src, `\/`) {
		return "", notExact + "it does not start with /"
	}
	var b strings.Builder
	params := 0
	names := map[string]bool{}
	end := "" // "$" exact, "*" prefix
	for i := 0; i < len(src) && end == ""; {
		rest := src[i:]
		switch c := src[i]; {
		case rest == "$":
			end, i = "$", i+1
		case rest == ".*" || rest == ".*$":
			end, i = "*", len(src)
		case c == '\\':
			if i+1 >= len(src) {
				return "", notExact + "it ends in a lone backslash"
			}
			e := src[i+1]
			if e >= 'a' && e <= 'z' || e >= 'A' && e <= 'Z' || e >= '0' && e <= '9' {
				return "", notExact + fmt.Sprintf(`\%c is a character class or escape that no gatehouse pattern matches exactly ({param} matches any segment)`, e)
			}
			if why := literal(e); why != "" {
				return "", notExact + why
			}
			b.WriteByte(e)
			i += 2
		case c == '[' || c == '(':
			name, n := "", 0
			if strings.HasPrefix(rest, "[^/]+") {
				n = len("[^/]+")
			} else if m := namedSegment.FindStringSubmatch(rest); m != nil {
				name, n = m[1], len(m[0])
			} else {
				return "", notExact + fmt.Sprintf("%q is a group or class other than one whole segment ([^/]+)", rest[:min(len(rest), 12)])
			}
			after := src[i+n:]
			if !strings.HasSuffix(b.String(), "/") || (after != "$" && !strings.HasPrefix(after, "/") && !strings.HasPrefix(after, `\/`)) {
				return "", notExact + "a [^/]+ that is not a whole segment, or that ends the path without $, matches what no {param} does"
			}
			params++
			if name == "" || names[name] {
				name = fmt.Sprintf("p%d", params)
			}
			names[name] = true
			b.WriteString("{" + name + "}")
			i += n
		case strings.IndexByte(".^$*+?)]{}|", c) >= 0:
			return "", notExact + fmt.Sprintf("%q is a regular-expression operator", string(c))
		default:
			if why := literal(c); why != "" {
				return "", notExact + why
			}
			b.WriteByte(c)
			i++
		}
	}
	pattern := b.String()
	if end != "$" {
		// Unanchored at the end: a prefix.
		pattern += "*"
	}
	if err := gatehouse.CheckPathPattern(pattern); err != nil {
		return "", notExact + "it converts to " + pattern + ", which " + err.Error()
	}
	return pattern, ""
}

// literal says why c cannot be a literal character of a gatehouse
// pattern, or "".
func literal(c byte) string {
	switch {
	case c <= ' ' || c >= 0x7f:
		return "it has spaces, control or non-ASCII characters"
	case strings.IndexByte("?#%{}*", c) >= 0:
		return fmt.Sprintf("gatehouse patterns cannot hold a literal %q", string(c))
	}
	return ""
}
