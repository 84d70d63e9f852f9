package openapi

import (
	"fmt"
	"strings"
)

// The path matcher is a tree of the templates' segments, walked depth
// first: at each segment a literal child is tried first, then children
// whose segment mixes literals and parameters ("{name}.{ext}"), then a
// whole-segment parameter, backtracking when a branch ends without a
// template. So a literal segment beats a parameter segment at the
// leftmost place they differ, as OpenAPI asks (/pets/mine before
// /pets/{id}), and the match does not depend on the document's order.

type pathNode struct {
	literal map[string]*pathNode
	mixed   []*mixedEdge
	param   *pathNode // a segment that is one parameter
	item    *pathItem // a template ends here
}

type mixedEdge struct {
	seg  segment
	next *pathNode
}

// segment is a template segment with parameters inside: literal parts
// and parameter names, alternating, parts[0] and the last literal
// possibly "".
type segment struct {
	lits  []string // len(names)+1
	names []string
}

// pathItem is one template of the document.
type pathItem struct {
	template string
	// names are the template's parameters, in order, as the walk binds
	// their values.
	names []string
	ops   map[string]*Op
	// allow is the value of Allow for a method the template lacks.
	allow string
}

// parseTemplate splits a template into segments; ok is false for a
// template that does not start with "/" or whose braces do not pair.
func parseTemplate(t string) (segs []string, ok bool) {
	if !strings.HasPrefix(t, "/") {
		return nil, false
	}
	return strings.Split(t[1:], "/"), true
}

// baseSegments reads a base path ("" for none) as template segments; a
// segment whose braces do not pair is a literal.
func baseSegments(basePath string) []segment {
	p := strings.TrimPrefix(basePath, "/")
	if p == "" {
		return nil
	}
	var out []segment
	for _, raw := range strings.Split(p, "/") {
		seg, err := parseSegment(raw)
		if err != nil {
			seg = segment{lits: []string{raw}}
		}
		out = append(out, seg)
	}
	return out
}

// parseSegment reads a template segment: a literal (names nil), a whole
// parameter, or a mix.
func parseSegment(s string) (segment, error) {
	var seg segment
	lit := ""
	for s != "" {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			lit += s
			break
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return seg, fmt.Errorf("has a { without its }")
		}
		name := s[i+1 : i+j]
		if name == "" || strings.ContainsAny(name, "{/") {
			return seg, fmt.Errorf("has a parameter without a name")
		}
		lit += s[:i]
		if len(seg.names) > 0 && lit == "" {
			return seg, fmt.Errorf("has two parameters with nothing between them")
		}
		seg.lits = append(seg.lits, lit)
		seg.names = append(seg.names, name)
		lit = ""
		s = s[i+j+1:]
	}
	if strings.ContainsRune(lit, '}') {
		return seg, fmt.Errorf("has a } without its {")
	}
	seg.lits = append(seg.lits, lit)
	return seg, nil
}

func (s segment) whole() bool { return len(s.names) == 1 && s.lits[0] == "" && s.lits[1] == "" }

func (s segment) key() string { return strings.Join(s.lits, "{}") }

// add inserts a template; it returns the item already there if another
// template has the same shape (/a/{x} and /a/{y}), which OpenAPI forbids.
func (n *pathNode) add(template string) (*pathItem, error) {
	raw, ok := parseTemplate(template)
	if !ok {
		return nil, fmt.Errorf("does not start with /")
	}
	var names []string
	for _, r := range raw {
		seg, err := parseSegment(r)
		if err != nil {
			return nil, err
		}
		names = append(names, seg.names...)
		switch {
		case seg.names == nil:
			if n.literal == nil {
				n.literal = map[string]*pathNode{}
			}
			next := n.literal[seg.lits[0]]
			if next == nil {
				next = &pathNode{}
				n.literal[seg.lits[0]] = next
			}
			n = next
		case seg.whole():
			if n.param == nil {
				n.param = &pathNode{}
			}
			n = n.param
		default:
			var next *pathNode
			for _, e := range n.mixed {
				if e.seg.key() == seg.key() {
					next = e.next
				}
			}
			if next == nil {
				next = &pathNode{}
				n.mixed = append(n.mixed, &mixedEdge{seg, next})
			}
			n = next
		}
	}
	if n.item != nil {
		return nil, fmt.Errorf("has the shape of %s", n.item.template)
	}
	n.item = &pathItem{template: template, names: names}
	return n.item, nil
}

// match finds the template of a path's segments (still escaped), and the
// raw values of its parameters, appended to vals in the template's order.
func (n *pathNode) match(segs []string, vals []string) (*pathItem, []string) {
	if len(segs) == 0 {
		return n.item, vals
	}
	seg, rest := segs[0], segs[1:]
	if next := n.literal[unescapeLiteral(seg)]; next != nil {
		if it, v := next.match(rest, vals); it != nil {
			return it, v
		}
	}
	for _, e := range n.mixed {
		if v, ok := e.seg.match(seg, vals); ok {
			if it, v := e.next.match(rest, v); it != nil {
				return it, v
			}
		}
	}
	if n.param != nil && seg != "" {
		if it, v := n.param.match(rest, append(vals, seg)); it != nil {
			return it, v
		}
	}
	return nil, vals
}

// match binds a mixed segment's parameters, in the segment as sent
// (escaped, as whole-segment values are): each takes the shortest
// non-empty run up to the next literal part, the last one the rest
// ("a.tar.gz" against {name}.{ext}: name a, ext tar.gz).
func (s segment) match(seg string, vals []string) ([]string, bool) {
	if !strings.HasPrefix(seg, s.lits[0]) {
		return vals, false
	}
	rest := seg[len(s.lits[0]):]
	n := len(vals)
	for i := range s.names {
		lit := s.lits[i+1]
		var v string
		switch {
		case i == len(s.names)-1:
			if !strings.HasSuffix(rest, lit) {
				return vals[:n], false
			}
			v, rest = rest[:len(rest)-len(lit)], ""
		default:
			j := strings.Index(rest[min(1, len(rest)):], lit)
			if j < 0 {
				return vals[:n], false
			}
			j++
			v, rest = rest[:j], rest[j+len(lit):]
		}
		if v == "" {
			return vals[:n], false
		}
		vals = append(vals, v)
	}
	return vals, true
}

// unescapeLiteral decodes a segment to compare with a template's literal
// parts; a segment that does not decode is compared as sent.
func unescapeLiteral(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	if u, ok := unescape(s, encPath); ok {
		return u
	}
	return s
}
