// Package route is the data plane's compiled route table: the routes of a
// revision, compiled once by Compile into a structure that answers "which
// route serves this host, path and method" in time that does not depend on
// how many routes there are.
//
// The package is pure: no I/O and no net/http. A Table is immutable after
// Compile and safe for concurrent use.
//
// # Matching
//
// A route matches a request when its host, path and method all match; an
// empty Hosts, Paths or Methods list matches anything.
//
//   - Host: exact ("api.example.com"), or a wildcard ("*.example.com") that
//     matches a subdomain at any depth ("a.example.com", "a.b.example.com")
//     but not "example.com". The caller lower-cases the request's host and
//     strips its port; Match ignores one trailing dot ("api.example.com.").
//   - Path: the request's escaped path (r.URL.EscapedPath()), dot segments
//     already removed by the caller. It is split on "/" before it is
//     percent-decoded, so "%2F" stays inside its segment; each segment is
//     then decoded and compared with the pattern's literals, so "/us%65rs"
//     matches "/users" (a pattern cannot contain '%'; it is written
//     decoded). A "{param}" segment matches exactly one non-empty segment,
//     and its value is reported decoded. A pattern ending in "*" matches any
//     path that starts with what comes before the "*": "/api/*" matches
//     "/api/" and "/api/x/y" but not "/api"; "/api*" matches "/api", "/apix"
//     and "/api/x". "/users" and "/users/" are different paths.
//   - Method: compared exactly (methods are case-sensitive; patterns are
//     upper-cased by Compile). A route that lists GET also matches HEAD, as
//     net/http's ServeMux does, and a route that lists HEAD itself beats it
//     for a HEAD request.
//
// # Precedence
//
// Among the routes whose host, path and method all match, the winner is
// decided by these rules, each consulted only when the ones before tie:
//
//  1. the higher Priority;
//  2. the more specific host: exact, then wildcard (the longer suffix
//     first), then a route with no hosts;
//  3. the more specific path: a path with no "*" (exact or with
//     parameters: a literal segment beats a parameter at the first segment,
//     left to right, where they differ, so "/users/me" beats "/users/{id}"
//     and "/a/{x}/c" beats "/{y}/b/c"), then a prefix pattern (the longer
//     part before the "*" first, measured in request bytes, then literal
//     beats parameter as above), then a route with no paths;
//  4. the more specific method: a route listing the request's method, then
//     (for HEAD) one listing GET, then one listing no methods;
//  5. the lower Order, then the earlier place in the entries given to
//     Compile.
//
// When no route matches, the outcome is MethodNotAllowed if some route
// matches the host and path but not the method (Allow lists the methods that
// would have matched), and NotFound otherwise.
//
// # Cost
//
// Routes are bucketed by host: a map from exact host to a tree, a map from
// wildcard suffix to a tree (looked up once per label of the request's host,
// longest suffix first), and one tree for host-less routes. A tree has a
// node per path segment, with a map of literal children, one parameter
// child, and the prefix patterns that end in that segment. Match visits only
// the nodes along the request's own segments, so its cost grows with the
// length of the host and path and with the number of routes that actually
// match, never with the size of the table.
package route

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// Entry is one route as the table sees it.
type Entry[T any] struct {
	// Hosts, Paths and Methods are patterns as described in the package
	// documentation; an empty list matches anything.
	Hosts, Paths, Methods []string
	// Priority orders overlapping routes: the higher wins.
	Priority int
	// Order breaks ties that every other rule leaves: the lower wins. The
	// caller typically uses creation order.
	Order int
	// Value is the caller's payload, returned by Match.
	Value T
}

// Param is one path parameter of a match.
type Param struct{ Name, Value string }

// Outcome is the kind of answer Match gives.
type Outcome uint8

const (
	// NotFound: no route matches the host and path. It is the zero Outcome.
	NotFound Outcome = iota
	// Found: a route matches host, path and method.
	Found
	// MethodNotAllowed: routes match the host and path, none the method.
	MethodNotAllowed
)

func (o Outcome) String() string {
	switch o {
	case NotFound:
		return "NotFound"
	case Found:
		return "Found"
	case MethodNotAllowed:
		return "MethodNotAllowed"
	}
	return fmt.Sprintf("Outcome(%d)", uint8(o))
}

// Match is the answer to a request.
type Match[T any] struct {
	Outcome Outcome
	// Value is the winning entry's Value when Outcome is Found, else the
	// zero T.
	Value T
	// Params are the winning pattern's parameters in pattern order, their
	// values percent-decoded. Nil when it has none.
	Params []Param
	// Matched is how many bytes of the request's escaped path the winning
	// pattern consumed: the whole path for a pattern without "*"; for a
	// prefix pattern, the part matched by what comes before the "*" (5 for
	// "/api/*" on "/api/x", 4 for "/api*" on "/api/x"); 0 for an entry with
	// no paths. A caller stripping the path forwards path[Matched:], and
	// adds a leading "/" when that does not start with one.
	Matched int
	// Allow is, when Outcome is MethodNotAllowed, the sorted union of the
	// methods of every route matching the host and path, with HEAD added
	// where GET is present. It may be shared with the table and with other
	// matches: the caller must not modify it.
	Allow []string
}

// Table is a compiled route table. Its zero value matches nothing.
type Table[T any] struct {
	values []T
	t      table
}

// EntryError reports a pattern of an entry that does not compile.
type EntryError struct {
	Entry  int    // index in the entries given to Compile
	Field  string // "hosts[0]", "paths[2]", "methods[1]"
	Value  string // the pattern
	Reason string
}

func (e *EntryError) Error() string {
	return fmt.Sprintf("route: entries[%d].%s %q: %s", e.Entry, e.Field, e.Value, e.Reason)
}

// Compile builds the table for entries, or returns an *EntryError naming
// the first pattern that does not compile (see gatehouse.CheckHostPattern
// and gatehouse.CheckPathPattern; a method is an RFC 9110 token,
// gatehouse.IsToken) or that repeats an earlier one of its entry. Host patterns
// are lower-cased and methods upper-cased first. The table keeps each
// entry's Value, not the entries slice.
func Compile[T any](entries []Entry[T]) (*Table[T], error) {
	b := builder{
		t: table{exact: map[string]*tree{}, wild: map[string]*tree{}},
	}
	values := make([]T, len(entries))
	for i, e := range entries {
		values[i] = e.Value
		if err := b.add(i, e.Hosts, e.Paths, e.Methods, e.Priority, e.Order); err != nil {
			return nil, err
		}
	}
	b.finish()
	return &Table[T]{values: values, t: b.t}, nil
}

// Len returns the number of entries the table was compiled from.
func (t *Table[T]) Len() int { return len(t.values) }

// Match returns the route that serves a request; see the package
// documentation for what host, path and method must be.
func (t *Table[T]) Match(host, path, method string) Match[T] {
	return t.MatchInto(host, path, method, nil)
}

// MatchInto is Match, appending the parameters to buf[:0] so that a caller
// reusing buf allocates nothing for them. Only percent-escaped segments
// allocate (for their decoded form), and a MethodNotAllowed whose Allow
// merges several patterns' methods.
func (t *Table[T]) MatchInto(host, path, method string, buf []Param) Match[T] {
	w := walker{path: path, method: method, escaped: strings.IndexByte(path, '%') >= 0}
	t.t.walk(&w, host)
	switch {
	case w.found:
		m := Match[T]{Outcome: Found, Value: t.values[w.best.ref.entry], Matched: w.best.matched}
		if len(w.best.ref.names) > 0 {
			m.Params = appendParams(buf[:0], path, w.best.leaf.shape, w.best.ref.names)
		}
		return m
	case w.misses == 1:
		return Match[T]{Outcome: MethodNotAllowed, Allow: w.miss.allow}
	case w.misses > 1:
		// Walk again to list them: a list kept on every walk would be moved
		// to the heap by escape analysis, an allocation per Match.
		w = walker{path: path, method: method, escaped: w.escaped, collect: true}
		t.t.walk(&w, host)
		return Match[T]{Outcome: MethodNotAllowed, Allow: allowOf(w.missed)}
	}
	return Match[T]{Outcome: NotFound}
}

// table is the type-independent part of a Table.
type table struct {
	exact map[string]*tree // by host
	wild  map[string]*tree // by suffix: "example.com" for "*.example.com"
	any   *tree            // routes with no hosts; nil if none
}

// tree holds the routes of one host bucket.
type tree struct {
	root    node
	anyPath *leaf // the routes with no paths; nil if none
	rank    int   // the host rank every route in the tree shares
	maxPrio int
}

// Host ranks: precedence rule 2 as a number, higher is more specific.
const (
	rankAnyHost = 0
	rankExact   = 1 << 16 // above any wildcard, whose rank is 1+len(suffix)
)

// node is the position after some segments of a pattern.
type node struct {
	// The literal next segments: in lits, or, when there are at most
	// maxFew, in few, where a scan is quicker than hashing.
	lits  map[string]*node
	few   []litChild
	param *node // a parameter next segment
	end   *leaf // patterns without "*" that end here
	// prefix holds the prefix patterns whose last segment is the next
	// one, by the literal that segment must start with; prefixLens are the
	// distinct lengths of those literals, ascending.
	prefix     map[string]*leaf
	prefixLens []int
	maxPrio    int // the highest priority in the subtree
}

type litChild struct {
	seg  string
	next *node
}

const maxFew = 8

// lit returns the child for a literal segment, or nil.
func (n *node) lit(seg string) *node {
	if n.lits != nil {
		return n.lits[seg]
	}
	for i := range n.few {
		if n.few[i].seg == seg {
			return n.few[i].next
		}
	}
	return nil
}

// Path classes: precedence rule 3's first cut, higher is more specific.
const (
	classAnyPath uint8 = iota
	classPrefix
	classFull
)

// leaf is one pattern in one tree, with the routes that use it.
type leaf struct {
	class uint8
	shape string // pattern.shape
	refs  []ref  // by priority, highest first
	allow []string
}

// ref is one entry at one leaf.
type ref struct {
	prio, order, entry int
	methods            []string // sorted; nil for any method
	names              []string // parameter names of this entry's pattern
}

// walker is the state of one Match.
type walker struct {
	path, method string
	escaped      bool // path has a '%'
	host         int  // rank of the tree being walked
	found        bool
	best         cand
	// The leaves matching host and path but not method: how many, the
	// last seen, and all of them when collect is set.
	misses  int
	miss    *leaf
	collect bool
	missed  []*leaf
}

// cand is a route that matches the request, with what ranks it.
type cand struct {
	leaf    *leaf
	ref     *ref
	host    int
	matched int
	method  int // precedence rule 4: 2 named, 1 GET for HEAD, 0 any
}

// beats reports whether a wins over b by the package's precedence rules.
func (a *cand) beats(b *cand) bool {
	if a.ref.prio != b.ref.prio {
		return a.ref.prio > b.ref.prio
	}
	if a.host != b.host {
		return a.host > b.host
	}
	if a.leaf.class != b.leaf.class {
		return a.leaf.class > b.leaf.class
	}
	// Two prefix patterns matching one path with equal lengths before the
	// "*" have as many segments; two full patterns matching one path do too.
	// So the shapes compared below always have equal lengths.
	if a.leaf.class == classPrefix && a.matched != b.matched {
		return a.matched > b.matched
	}
	if a.leaf.shape != b.leaf.shape {
		return a.leaf.shape > b.leaf.shape
	}
	if a.method != b.method {
		return a.method > b.method
	}
	if a.ref.order != b.ref.order {
		return a.ref.order < b.ref.order
	}
	return a.ref.entry < b.ref.entry
}

func (t *table) walk(w *walker, host string) {
	host = strings.TrimSuffix(host, ".")
	// Trees are walked from the most specific host to the least, which is
	// what lets w.tree skip one that cannot hold a winner.
	if tr := t.exact[host]; tr != nil {
		w.tree(tr)
	}
	if len(t.wild) > 0 {
		// Each dot after the first label starts a suffix, longest first.
		for i := strings.IndexByte(host, '.'); i >= 0; {
			if i > 0 {
				if tr := t.wild[host[i+1:]]; tr != nil {
					w.tree(tr)
				}
			}
			j := strings.IndexByte(host[i+1:], '.')
			if j < 0 {
				break
			}
			i += 1 + j
		}
	}
	if t.any != nil {
		w.tree(t.any)
	}
}

func (w *walker) tree(tr *tree) {
	// A winner found in an earlier, more specific host bucket loses only to
	// a higher priority.
	if w.found && tr.maxPrio <= w.best.ref.prio {
		return
	}
	w.host = tr.rank
	if tr.anyPath != nil {
		w.leaf(tr.anyPath, 0)
	}
	if strings.HasPrefix(w.path, "/") {
		w.node(&tr.root, 1)
	}
}

// node visits n, whose next segment starts at w.path[i].
func (w *walker) node(n *node, i int) {
	if w.found && n.maxPrio < w.best.ref.prio {
		return
	}
	j := strings.IndexByte(w.path[i:], '/')
	last := j < 0
	if last {
		j = len(w.path)
	} else {
		j += i
	}
	seg := w.path[i:j]
	key := seg
	decoded := w.escaped && strings.IndexByte(seg, '%') >= 0
	if decoded {
		key = unescape(seg)
	}
	for _, k := range n.prefixLens {
		if k > len(key) {
			break
		}
		if l := n.prefix[key[:k]]; l != nil {
			matched := i + k
			if decoded {
				matched = i + escapedLen(seg, k)
			}
			w.leaf(l, matched)
		}
	}
	if c := n.lit(key); c != nil {
		w.next(c, last, j)
	}
	if n.param != nil && seg != "" {
		w.next(n.param, last, j)
	}
}

// next continues into child c, the segment ending at w.path[j].
func (w *walker) next(c *node, last bool, j int) {
	if !last {
		w.node(c, j+1)
	} else if c.end != nil {
		w.leaf(c.end, len(w.path))
	}
}

// leaf considers the routes of a pattern that matches the request's host
// and path.
func (w *walker) leaf(l *leaf, matched int) {
	hit := false
	for i := range l.refs {
		r := &l.refs[i]
		if w.found && r.prio < w.best.ref.prio {
			break // refs are by priority: none of the rest can win
		}
		m := methodRank(r.methods, w.method)
		if m < 0 {
			continue
		}
		hit = true
		c := cand{leaf: l, ref: r, host: w.host, matched: matched, method: m}
		if !w.found || c.beats(&w.best) {
			w.best, w.found = c, true
		}
	}
	if !hit && !w.found {
		w.misses++
		w.miss = l
		if w.collect {
			w.missed = append(w.missed, l)
		}
	}
}

// methodRank returns how a route's methods match a request's method (see
// cand.method), or -1.
func methodRank(methods []string, m string) int {
	if methods == nil {
		return 0
	}
	rank := -1
	for _, x := range methods {
		if x == m {
			return 2
		}
		if x == "GET" && m == "HEAD" {
			rank = 1
		}
	}
	return rank
}

// appendParams appends the parameters of a pattern of the given shape and
// names, as path matched it.
func appendParams(dst []Param, path, shape string, names []string) []Param {
	i, k := 1, 0
	for s := 0; s < len(shape) && k < len(names); s++ {
		j := strings.IndexByte(path[i:], '/')
		if j < 0 {
			j = len(path)
		} else {
			j += i
		}
		if shape[s] == '0' {
			dst = append(dst, Param{Name: names[k], Value: unescape(path[i:j])})
			k++
		}
		i = j + 1
	}
	return dst
}

// allowOf returns the union of the leaves' methods.
func allowOf(leaves []*leaf) []string {
	var all []string
	for _, l := range leaves {
		all = append(all, l.allow...)
	}
	slices.Sort(all)
	return slices.Compact(all)
}

// builder compiles entries into a table.
type builder struct {
	t table
}

func (b *builder) add(i int, hosts, paths, methods []string, prio, order int) error {
	fail := func(field string, j int, value, reason string) error {
		return &EntryError{Entry: i, Field: fmt.Sprintf("%s[%d]", field, j), Value: value, Reason: reason}
	}
	var ms []string
	for j, m := range methods {
		switch {
		case m == "":
			return fail("methods", j, m, "must not be empty")
		case !gatehouse.IsToken(m):
			return fail("methods", j, m, "must be an HTTP method name such as GET")
		}
		m = strings.ToUpper(m)
		if slices.Contains(ms, m) {
			return fail("methods", j, m, "repeats an earlier entry")
		}
		ms = append(ms, m)
	}
	slices.Sort(ms)
	hs := make([]string, len(hosts))
	for j, h := range hosts {
		if err := gatehouse.CheckHostPattern(h); err != nil {
			return fail("hosts", j, h, err.Error())
		}
		hs[j] = strings.ToLower(h)
		if slices.Contains(hs[:j], hs[j]) {
			return fail("hosts", j, h, "repeats an earlier entry")
		}
	}
	ps := make([]pattern, len(paths))
	for j, p := range paths {
		if err := gatehouse.CheckPathPattern(p); err != nil {
			return fail("paths", j, p, err.Error())
		}
		ps[j] = parsePath(p)
		for _, q := range ps[:j] {
			if q.key == ps[j].key {
				return fail("paths", j, p, "repeats an earlier entry")
			}
		}
	}
	var trees []*tree
	for _, h := range hs {
		trees = append(trees, b.tree(h))
	}
	if len(hs) == 0 {
		trees = append(trees, b.tree(""))
	}
	for _, tr := range trees {
		if len(ps) == 0 {
			if tr.anyPath == nil {
				tr.anyPath = &leaf{class: classAnyPath}
			}
			tr.anyPath.refs = append(tr.anyPath.refs, ref{prio: prio, order: order, entry: i, methods: ms})
		}
		for _, p := range ps {
			l := tr.insert(p)
			l.refs = append(l.refs, ref{prio: prio, order: order, entry: i, methods: ms, names: p.names})
		}
	}
	return nil
}

// tree returns the tree for a host pattern, "" for none.
func (b *builder) tree(h string) *tree {
	m, key, rank := b.t.exact, h, rankExact
	switch {
	case h == "":
		if b.t.any == nil {
			b.t.any = &tree{rank: rankAnyHost}
		}
		return b.t.any
	case strings.HasPrefix(h, "*."):
		key = h[2:]
		m, rank = b.t.wild, 1+len(key)
	}
	tr := m[key]
	if tr == nil {
		tr = &tree{rank: rank}
		m[key] = tr
	}
	return tr
}

// insert returns the leaf for p, adding nodes as needed.
func (tr *tree) insert(p pattern) *leaf {
	n := &tr.root
	full := p.segs
	if p.prefix {
		full = full[:len(full)-1]
	}
	for _, s := range full {
		if isParam(s) {
			if n.param == nil {
				n.param = &node{}
			}
			n = n.param
			continue
		}
		c := n.lits[s]
		if c == nil {
			if n.lits == nil {
				n.lits = map[string]*node{}
			}
			c = &node{}
			n.lits[s] = c
		}
		n = c
	}
	if !p.prefix {
		if n.end == nil {
			n.end = &leaf{class: classFull, shape: p.shape}
		}
		return n.end
	}
	lit := p.segs[len(p.segs)-1]
	l := n.prefix[lit]
	if l == nil {
		if n.prefix == nil {
			n.prefix = map[string]*leaf{}
		}
		l = &leaf{class: classPrefix, shape: p.shape}
		n.prefix[lit] = l
		if !slices.Contains(n.prefixLens, len(lit)) {
			n.prefixLens = append(n.prefixLens, len(lit))
			slices.Sort(n.prefixLens)
		}
	}
	return l
}

// finish sorts every leaf's routes and computes what Match reads but the
// builder did not keep up to date: allowed methods and priority bounds.
func (b *builder) finish() {
	for _, tr := range b.t.exact {
		tr.finish()
	}
	for _, tr := range b.t.wild {
		tr.finish()
	}
	if b.t.any != nil {
		b.t.any.finish()
	}
}

func (tr *tree) finish() {
	tr.maxPrio = tr.root.finish()
	if tr.anyPath != nil {
		tr.maxPrio = max(tr.maxPrio, tr.anyPath.finish())
	}
}

func (n *node) finish() int {
	n.maxPrio = math.MinInt
	if n.end != nil {
		n.maxPrio = max(n.maxPrio, n.end.finish())
	}
	for _, l := range n.prefix {
		n.maxPrio = max(n.maxPrio, l.finish())
	}
	for _, c := range n.lits {
		n.maxPrio = max(n.maxPrio, c.finish())
	}
	if len(n.lits) <= maxFew {
		for seg, c := range n.lits {
			n.few = append(n.few, litChild{seg, c})
		}
		n.lits = nil
	}
	if n.param != nil {
		n.maxPrio = max(n.maxPrio, n.param.finish())
	}
	return n.maxPrio
}

// finish sorts l's routes and returns the highest priority among them.
func (l *leaf) finish() int {
	slices.SortStableFunc(l.refs, func(a, b ref) int { return cmp.Compare(b.prio, a.prio) })
	var allow []string
	for _, r := range l.refs {
		allow = append(allow, r.methods...)
		if slices.Contains(r.methods, "GET") {
			allow = append(allow, "HEAD")
		}
	}
	slices.Sort(allow)
	l.allow = slices.Compact(allow)
	return l.refs[0].prio
}
