package route

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The tree is checked against bruteForce, which knows nothing of trees: it
// tries every entry's every host and path against the request, straight from
// the pattern strings, and ranks the matches by the package's precedence
// rules, written out again independently.

type bfCand struct {
	prio      int
	hostKind  int // 2 exact, 1 wildcard, 0 none
	suffix    int // wildcard suffix length
	pathClass int // 2 no "*", 1 prefix, 0 no paths
	matched   int
	shape     []bool // true for a literal segment
	method    int    // 2 named, 1 GET for HEAD, 0 any
	order     int
	index     int
	params    []Param
}

// better reports whether a wins over b.
func (a *bfCand) better(b *bfCand) bool {
	ints := func(c *bfCand) []int {
		k := []int{c.prio, c.hostKind, c.suffix, c.pathClass}
		if c.pathClass == 1 {
			k = append(k, c.matched)
		}
		for _, lit := range c.shape {
			k = append(k, map[bool]int{true: 1, false: 0}[lit])
		}
		return append(k, c.method, -c.order, -c.index)
	}
	return slices.Compare(ints(a), ints(b)) > 0
}

func bruteForce(entries []Entry[int], host, path, method string) Match[int] {
	host = strings.TrimSuffix(host, ".")
	var best *bfCand
	allow := map[string]bool{}
	for i, e := range entries {
		hostKind, suffix, ok := bfHost(e.Hosts, host)
		if !ok {
			continue
		}
		var paths []bfCand
		if len(e.Paths) == 0 {
			paths = append(paths, bfCand{})
		}
		for _, p := range e.Paths {
			if c, ok := bfPath(p, path); ok {
				paths = append(paths, c)
			}
		}
		for _, c := range paths {
			c.prio, c.hostKind, c.suffix, c.order, c.index = e.Priority, hostKind, suffix, e.Order, i
			c.method = bfMethod(e.Methods, method)
			if c.method < 0 {
				for _, m := range e.Methods {
					allow[strings.ToUpper(m)] = true
					if strings.ToUpper(m) == "GET" {
						allow["HEAD"] = true
					}
				}
				continue
			}
			if best == nil || c.better(best) {
				best = &c
			}
		}
	}
	switch {
	case best != nil:
		return Match[int]{Outcome: Found, Value: entries[best.index].Value, Params: best.params, Matched: best.matched}
	case len(allow) > 0:
		var a []string
		for m := range allow {
			a = append(a, m)
		}
		slices.Sort(a)
		return Match[int]{Outcome: MethodNotAllowed, Allow: a}
	}
	return Match[int]{Outcome: NotFound}
}

func bfHost(hosts []string, host string) (kind, suffix int, ok bool) {
	if len(hosts) == 0 {
		return 0, 0, true
	}
	for _, h := range hosts {
		h = strings.ToLower(h)
		if s, wild := strings.CutPrefix(h, "*."); wild {
			if strings.HasSuffix(host, "."+s) && len(host) > len(s)+1 && (kind < 1 || kind == 1 && len(s) > suffix) {
				kind, suffix, ok = 1, len(s), true
			}
		} else if h == host {
			return 2, 0, true
		}
	}
	return kind, suffix, ok
}

func bfPath(pattern, path string) (bfCand, bool) {
	c := bfCand{pathClass: 2}
	if !strings.HasPrefix(path, "/") {
		return c, false
	}
	pat, prefix := strings.CutSuffix(pattern[1:], "*")
	if prefix {
		c.pathClass = 1
	}
	psegs, rsegs := strings.Split(pat, "/"), strings.Split(path[1:], "/")
	if !prefix && len(rsegs) != len(psegs) || len(rsegs) < len(psegs) {
		return c, false
	}
	offset := 1
	for k, ps := range psegs {
		rs := rsegs[k]
		dec := bfDecode(rs)
		switch {
		case prefix && k == len(psegs)-1:
			if !strings.HasPrefix(dec, ps) {
				return c, false
			}
			// Count the escaped bytes that decode to ps.
			n, i := 0, 0
			for n < len(ps) {
				if _, err := strconv.ParseUint(rs[i+1:min(i+3, len(rs))], 16, 8); rs[i] == '%' && i+3 <= len(rs) && err == nil {
					i += 3
				} else {
					i++
				}
				n++
			}
			c.matched = offset + i
			c.shape = append(c.shape, true)
			return c, true
		case strings.HasPrefix(ps, "{"):
			if rs == "" {
				return c, false
			}
			c.params = append(c.params, Param{ps[1 : len(ps)-1], dec})
			c.shape = append(c.shape, false)
		default:
			if dec != ps {
				return c, false
			}
			c.shape = append(c.shape, true)
		}
		offset += len(rs) + 1
	}
	c.matched = len(path)
	return c, true
}

func bfDecode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+3 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func bfMethod(methods []string, m string) int {
	if len(methods) == 0 {
		return 0
	}
	rank := -1
	for _, x := range methods {
		switch x = strings.ToUpper(x); {
		case x == m:
			return 2
		case x == "GET" && m == "HEAD":
			rank = 1
		}
	}
	return rank
}

// gen turns fuzz bytes into choices; past the end every choice is 0.
type gen struct {
	data []byte
	i    int
}

func (g *gen) n(k int) int {
	if g.i >= len(g.data) {
		return 0
	}
	g.i++
	return int(g.data[g.i-1]) % k
}

func pick[E any](g *gen, from ...E) E { return from[g.n(len(from))] }

// Small alphabets, so that routes overlap and collide often.
var (
	genHosts    = []string{"a.x", "b.x", "*.x", "*.a.x", "x", "A.X", "*.b.a.x"}
	genSegs     = []string{"a", "b", "ab", "", "{}", "{}"}
	genMethods  = []string{"GET", "HEAD", "POST", "get"}
	reqHosts    = []string{"a.x", "b.x", "c.a.x", "x", "d.b.a.x", "", "a.x.", "q.b.a.x", ".a.x"}
	reqSegs     = []string{"a", "b", "ab", "abc", "", "%61", "%2F", "a%2Fb", "%zz", "%", "%61b"}
	reqMethods  = []string{"GET", "HEAD", "POST", "PUT"}
	genPrefixes = []string{"", "*", "/*", "", "a*"}
)

// genEntries builds up to 8 entries that Compile must accept.
func genEntries(g *gen) []Entry[int] {
	entries := make([]Entry[int], 1+g.n(8))
	for i := range entries {
		e := &entries[i]
		e.Value, e.Priority, e.Order = i, g.n(3)-1, g.n(3)
		for range g.n(3) {
			h := pick(g, genHosts...)
			if !slices.ContainsFunc(e.Hosts, func(x string) bool { return strings.EqualFold(x, h) }) {
				e.Hosts = append(e.Hosts, h)
			}
		}
		keys := map[string]bool{}
		for range g.n(4) {
			p, key := genPath(g)
			if !keys[key] {
				keys[key] = true
				e.Paths = append(e.Paths, p)
			}
		}
		for range g.n(3) {
			m := pick(g, genMethods...)
			if !slices.ContainsFunc(e.Methods, func(x string) bool { return strings.EqualFold(x, m) }) {
				e.Methods = append(e.Methods, m)
			}
		}
	}
	return entries
}

// genPath returns a pattern and its form without parameter names.
func genPath(g *gen) (pattern, key string) {
	var segs []string
	for k := range 1 + g.n(3) {
		s := pick(g, genSegs...)
		if s == "{}" {
			s = fmt.Sprintf("{%c%d}", pick(g, 'p', 'q'), k) // names differ between routes, never within one
		}
		segs = append(segs, s)
	}
	p := "/" + strings.Join(segs, "/")
	switch end := pick(g, genPrefixes...); {
	case end != "" && strings.HasSuffix(p, "}"):
		p += "/" + strings.TrimPrefix(end, "/")
	default:
		p += end
	}
	var k []string
	for s := range strings.SplitSeq(p, "/") {
		if strings.HasPrefix(s, "{") {
			s = "{}"
		}
		k = append(k, s)
	}
	return p, strings.Join(k, "/")
}

func genRequest(g *gen) (host, path, method string) {
	host, method = pick(g, reqHosts...), pick(g, reqMethods...)
	if g.n(16) == 0 {
		return host, "*", method
	}
	var segs []string
	for range 1 + g.n(4) {
		segs = append(segs, pick(g, reqSegs...))
	}
	return host, "/" + strings.Join(segs, "/"), method
}

// checkAgainstBruteForce compiles the entries data describes and compares
// the tree with bruteForce on the requests that follow.
func checkAgainstBruteForce(t *testing.T, data []byte) {
	g := &gen{data: data}
	entries := genEntries(g)
	tab, err := Compile(entries)
	if err != nil {
		t.Fatalf("Compile(%+v): %v", entries, err)
	}
	for range 1 + g.n(8) {
		host, path, method := genRequest(g)
		got, want := tab.Match(host, path, method), bruteForce(entries, host, path, method)
		if got.Outcome != want.Outcome || got.Value != want.Value || got.Matched != want.Matched ||
			!slices.Equal(got.Params, want.Params) || !slices.Equal(got.Allow, want.Allow) {
			var routes strings.Builder
			for _, e := range entries {
				fmt.Fprintf(&routes, "\n  %d: hosts %q paths %q methods %q p=%d o=%d", e.Value, e.Hosts, e.Paths, e.Methods, e.Priority, e.Order)
			}
			t.Fatalf("Match(%q, %q, %q) with routes:%s\ngot  %v %d params %v matched %d allow %v\nwant %v %d params %v matched %d allow %v",
				host, path, method, routes.String(),
				got.Outcome, got.Value, got.Params, got.Matched, got.Allow,
				want.Outcome, want.Value, want.Params, want.Matched, want.Allow)
		}
	}
}

func FuzzMatch(f *testing.F) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 32 {
		seed := make([]byte, 64+r.IntN(64))
		for i := range seed {
			seed[i] = byte(r.Uint32())
		}
		f.Add(seed)
	}
	f.Fuzz(checkAgainstBruteForce)
}

// TestTreeAgreesWithBruteForce runs the fuzz property on random inputs in
// every ordinary test run.
func TestTreeAgreesWithBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		data := make([]byte, 32+r.IntN(160))
		for i := range data {
			data[i] = byte(r.Uint32())
		}
		checkAgainstBruteForce(t, data)
	}
}
