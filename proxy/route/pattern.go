package route

import (
	"strings"

	"github.com/gatehouse/gatehouse/internal/httpx"
)

// The pattern syntax is the domain's (gatehouse.CheckPathPattern,
// gatehouse.CheckHostPattern): Compile calls those checks, as the admin
// API's validation does, so the two cannot drift apart.

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

// parsePath splits a pattern that gatehouse.CheckPathPattern accepted.
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

// unhex is httpx.Unhex as a byte and whether c was a hex digit.
func unhex(c byte) (byte, bool) {
	v := httpx.Unhex(c)
	return byte(v), v >= 0
}
