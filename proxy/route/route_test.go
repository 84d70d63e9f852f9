package route

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// rt builds an entry from a spec of space-separated tokens, so that tables
// read like route listings: a token starting with "/" is a path, one in
// upper case a method, "p=N" the priority, "o=N" the order, and anything
// else a host. rt("a", "GET api.example.com /users/{id} p=1").
func rt(value, spec string) Entry[string] {
	e := Entry[string]{Value: value}
	for _, tok := range strings.Fields(spec) {
		switch {
		case strings.HasPrefix(tok, "/"):
			e.Paths = append(e.Paths, tok)
		case strings.HasPrefix(tok, "p="):
			e.Priority, _ = strconv.Atoi(tok[2:])
		case strings.HasPrefix(tok, "o="):
			e.Order, _ = strconv.Atoi(tok[2:])
		case tok == strings.ToUpper(tok) && !strings.Contains(tok, "."):
			e.Methods = append(e.Methods, tok)
		default:
			e.Hosts = append(e.Hosts, tok)
		}
	}
	return e
}

func mustCompile(t testing.TB, entries ...Entry[string]) *Table[string] {
	t.Helper()
	tab, err := Compile(entries)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return tab
}

// req is "METHOD host path", host "-" for none.
func splitReq(t testing.TB, req string) (host, path, method string) {
	t.Helper()
	f := strings.Fields(req)
	if len(f) != 3 {
		t.Fatalf("bad request %q", req)
	}
	if f[1] == "-" {
		f[1] = ""
	}
	return f[1], f[2], f[0]
}

func TestPrecedence(t *testing.T) {
	tests := []struct {
		desc   string
		routes []Entry[string]
		req    string
		want   string
	}{
		// 1. Priority.
		{"higher priority beats an exact host and path", []Entry[string]{
			rt("specific", "api.x.com /users/1 GET"), rt("catchall", "/* p=1"),
		}, "GET api.x.com /users/1", "catchall"},
		{"negative priority loses to the default", []Entry[string]{
			rt("low", "api.x.com /users/1 p=-1"), rt("default", "/*"),
		}, "GET api.x.com /users/1", "default"},
		{"priority beats method specificity", []Entry[string]{
			rt("named", "/u GET"), rt("any", "/u p=1"),
		}, "GET - /u", "any"},

		// 2. Host.
		{"exact host beats wildcard", []Entry[string]{
			rt("wild", "*.x.com /u"), rt("exact", "api.x.com /u"),
		}, "GET api.x.com /u", "exact"},
		{"longer wildcard suffix beats shorter", []Entry[string]{
			rt("short", "*.x.com /u"), rt("long", "*.api.x.com /u"),
		}, "GET v1.api.x.com /u", "long"},
		{"wildcard beats no host", []Entry[string]{
			rt("none", "/u"), rt("wild", "*.x.com /u"),
		}, "GET api.x.com /u", "wild"},
		{"host beats path specificity", []Entry[string]{
			rt("exactpath", "/u"), rt("hosted", "*.x.com /*"),
		}, "GET api.x.com /u", "hosted"},
		{"a route ranks by its best host", []Entry[string]{
			rt("wild", "*.x.com api.x.com /*"), rt("exact", "api.x.com /*"),
		}, "GET api.x.com /u", "wild"}, // both exact on this host: order decides

		// 3. Path.
		{"exact path beats param", []Entry[string]{
			rt("param", "/users/{id}"), rt("exact", "/users/me"),
		}, "GET - /users/me", "exact"},
		{"first literal from the left beats param", []Entry[string]{
			rt("late", "/{y}/b/c"), rt("early", "/a/{x}/c"),
		}, "GET - /a/b/c", "early"},
		{"literal first segment beats literal later", []Entry[string]{
			rt("second", "/{x}/b"), rt("first", "/a/{y}"),
		}, "GET - /a/b", "first"},
		{"param beats prefix", []Entry[string]{
			rt("prefix", "/users/*"), rt("param", "/users/{id}"),
		}, "GET - /users/1", "param"},
		{"exact beats prefix covering it", []Entry[string]{
			rt("prefix", "/api*"), rt("exact", "/api"),
		}, "GET - /api", "exact"},
		{"longer prefix beats shorter", []Entry[string]{
			rt("short", "/api/*"), rt("long", "/api/v1/*"),
		}, "GET - /api/v1/x", "long"},
		{"prefix with slash beats the one without", []Entry[string]{
			rt("bare", "/api*"), rt("slash", "/api/*"),
		}, "GET - /api/x", "slash"},
		{"longer prefix wins even through a param", []Entry[string]{
			rt("literal", "/a/*"), rt("param", "/{x}/b*"),
		}, "GET - /a/bc", "param"},
		{"equal prefix lengths: literal beats param", []Entry[string]{
			rt("param", "/{x}/*"), rt("literal", "/a/*"),
		}, "GET - /a/b", "literal"},
		{"any prefix beats no paths", []Entry[string]{
			rt("nopath", "api.x.com"), rt("root", "api.x.com /*"),
		}, "GET api.x.com /u", "root"},
		{"best path of a route with several", []Entry[string]{
			rt("two", "/api* /api/v1/*"), rt("one", "/api/*"),
		}, "GET - /api/v1/x", "two"},

		// 4. Method.
		{"named method beats any method", []Entry[string]{
			rt("any", "/u"), rt("named", "/u GET"),
		}, "GET - /u", "named"},
		{"any method serves the others", []Entry[string]{
			rt("any", "/u"), rt("named", "/u GET"),
		}, "POST - /u", "any"},
		{"HEAD route beats GET route for HEAD", []Entry[string]{
			rt("get", "/u GET"), rt("head", "/u HEAD"),
		}, "HEAD - /u", "head"},
		{"GET route beats any method for HEAD", []Entry[string]{
			rt("any", "/u"), rt("get", "/u GET"),
		}, "HEAD - /u", "get"},

		// 5. Order, then place.
		{"lower order wins", []Entry[string]{
			rt("later", "/u o=2"), rt("earlier", "/u o=1"),
		}, "GET - /u", "earlier"},
		{"equal order: first entry wins", []Entry[string]{
			rt("first", "/u o=1"), rt("second", "/u o=1"),
		}, "GET - /u", "first"},
		{"order only after everything else", []Entry[string]{
			rt("early", "/u* o=0"), rt("late", "/u o=9"),
		}, "GET - /u", "late"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			host, path, method := splitReq(t, tt.req)
			m := mustCompile(t, tt.routes...).Match(host, path, method)
			if m.Outcome != Found || m.Value != tt.want {
				t.Errorf("Match(%q) = %v %q; want Found %q", tt.req, m.Outcome, m.Value, tt.want)
			}
		})
	}
}

func TestMatchPaths(t *testing.T) {
	tests := []struct {
		desc, pattern, path string
		match               bool
		matched             int
	}{
		{"exact", "/users", "/users", true, 6},
		{"exact refuses trailing slash", "/users", "/users/", false, 0},
		{"trailing slash refuses none", "/users/", "/users", false, 0},
		{"trailing slash", "/users/", "/users/", true, 7},
		{"root", "/", "/", true, 1},
		{"root only", "/", "/x", false, 0},
		{"param", "/users/{id}", "/users/1", true, 8},
		{"param refuses empty segment", "/users/{id}", "/users/", false, 0},
		{"param refuses empty segment inside", "/users/{id}/x", "/users//x", false, 0},
		{"param is one segment", "/users/{id}", "/users/1/2", false, 0},
		{"param refuses trailing slash", "/users/{id}", "/users/1/", false, 0},
		{"empty literal segment", "/a//b", "/a//b", true, 5},
		{"prefix with slash refuses bare", "/api/*", "/api", false, 0},
		{"prefix with slash takes slash", "/api/*", "/api/", true, 5},
		{"prefix with slash takes deep", "/api/*", "/api/x/y", true, 5},
		{"prefix with slash refuses longer name", "/api/*", "/apix", false, 0},
		{"prefix without slash takes bare", "/api*", "/api", true, 4},
		{"prefix without slash takes longer name", "/api*", "/apix", true, 4},
		{"prefix without slash takes deep", "/api*", "/api/x", true, 4},
		{"prefix without slash refuses shorter", "/api*", "/ap", false, 0},
		{"root prefix takes root", "/*", "/", true, 1},
		{"root prefix takes all", "/*", "/a/b", true, 1},
		{"prefix after param", "/t/{tenant}/*", "/t/acme/x", true, 8},
		{"prefix after param needs the segment", "/t/{tenant}/*", "/t//x", false, 0},
		{"escaped slash is no separator", "/api/*", "/api%2Fx", false, 0},
		{"escaped slash in prefix tail", "/api*", "/api%2Fx", true, 4},
		{"literal compared decoded", "/users", "/us%65rs", true, 8},
		{"UTF-8 literal", "/café", "/caf%C3%A9", true, 10},
		{"prefix compared decoded", "/ap*", "/a%70i", true, 5},
		{"escaped slash never equals a literal", "/a/b", "/a%2Fb", false, 0},
		{"malformed escape kept as is", "/users/{id}", "/users/%zz", true, 10},
		{"no leading slash", "/*", "*", false, 0},
		{"empty path", "/*", "", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			m := mustCompile(t, rt("r", tt.pattern)).Match("", tt.path, "GET")
			if got := m.Outcome == Found; got != tt.match {
				t.Fatalf("%q on %q: got found=%v; want %v", tt.pattern, tt.path, got, tt.match)
			}
			if m.Matched != tt.matched {
				t.Errorf("%q on %q: got Matched %d; want %d", tt.pattern, tt.path, m.Matched, tt.matched)
			}
		})
	}
}

func TestMatchParams(t *testing.T) {
	tests := []struct {
		desc   string
		routes []Entry[string]
		req    string
		want   []Param
	}{
		{"one", []Entry[string]{rt("r", "/users/{id}")}, "GET - /users/42",
			[]Param{{"id", "42"}}},
		{"in pattern order", []Entry[string]{rt("r", "/o/{org}/r/{repo}/{n}")}, "GET - /o/go/r/x/7",
			[]Param{{"org", "go"}, {"repo", "x"}, {"n", "7"}}},
		{"decoded", []Entry[string]{rt("r", "/users/{id}")}, "GET - /users/a%20b%C3%A9",
			[]Param{{"id", "a bé"}}},
		{"escaped slash stays in the segment", []Entry[string]{rt("r", "/files/{name}")}, "GET - /files/a%2Fb",
			[]Param{{"name", "a/b"}}},
		{"plus is not a space", []Entry[string]{rt("r", "/q/{s}")}, "GET - /q/a+b",
			[]Param{{"s", "a+b"}}},
		{"malformed escape kept", []Entry[string]{rt("r", "/q/{s}")}, "GET - /q/100%",
			[]Param{{"s", "100%"}}},
		{"before a prefix", []Entry[string]{rt("r", "/t/{tenant}/*")}, "GET - /t/acme/x/y",
			[]Param{{"tenant", "acme"}}},
		{"names are the winner's", []Entry[string]{rt("get", "GET /u/{id}"), rt("post", "POST /u/{uid}")}, "POST - /u/1",
			[]Param{{"uid", "1"}}},
		{"none", []Entry[string]{rt("r", "/users/*")}, "GET - /users/1", nil},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			host, path, method := splitReq(t, tt.req)
			m := mustCompile(t, tt.routes...).Match(host, path, method)
			if m.Outcome != Found {
				t.Fatalf("Match(%q): got %v; want Found", tt.req, m.Outcome)
			}
			if !slices.Equal(m.Params, tt.want) {
				t.Errorf("Match(%q): got params %v; want %v", tt.req, m.Params, tt.want)
			}
		})
	}
}

func TestMatchHosts(t *testing.T) {
	tests := []struct {
		desc, pattern, host string
		match               bool
	}{
		{"exact", "api.example.com", "api.example.com", true},
		{"exact refuses other", "api.example.com", "web.example.com", false},
		{"exact refuses subdomain", "api.example.com", "v1.api.example.com", false},
		{"exact compiled lower-case", "API.Example.com", "api.example.com", true},
		{"exact with a trailing dot", "api.example.com", "api.example.com.", true},
		{"wildcard takes subdomain", "*.example.com", "a.example.com", true},
		{"wildcard takes depth", "*.example.com", "a.b.c.example.com", true},
		{"wildcard refuses the name itself", "*.example.com", "example.com", false},
		{"wildcard refuses a name ending alike", "*.example.com", "badexample.com", false},
		{"wildcard refuses an empty label", "*.example.com", ".example.com", false},
		{"wildcard with a trailing dot", "*.example.com", "a.example.com.", true},
		{"deep wildcard", "*.a.example.com", "x.a.example.com", true},
		{"deep wildcard refuses sibling", "*.a.example.com", "x.b.example.com", false},
		{"single-label wildcard", "*.localhost", "app.localhost", true},
		{"hosted route refuses no host", "api.example.com", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			m := mustCompile(t, rt("r", tt.pattern+" /")).Match(tt.host, "/", "GET")
			if got := m.Outcome == Found; got != tt.match {
				t.Errorf("%q on host %q: got found=%v; want %v", tt.pattern, tt.host, got, tt.match)
			}
		})
	}
}

func TestHostlessRoutesMatchAnyHost(t *testing.T) {
	tab := mustCompile(t, rt("pathonly", "/u"), rt("everything", "p=-1"))
	for _, host := range []string{"", "a.example.com", "localhost", "10.0.0.1"} {
		if m := tab.Match(host, "/u", "GET"); m.Value != "pathonly" {
			t.Errorf("host %q /u: got %q; want pathonly", host, m.Value)
		}
		if m := tab.Match(host, "*", "OPTIONS"); m.Value != "everything" || m.Matched != 0 {
			t.Errorf("host %q *: got %q Matched %d; want everything Matched 0", host, m.Value, m.Matched)
		}
	}
}

func TestMethodNotAllowed(t *testing.T) {
	tests := []struct {
		desc    string
		routes  []Entry[string]
		req     string
		outcome Outcome
		allow   []string
	}{
		{"one route", []Entry[string]{rt("r", "/u POST")}, "GET - /u",
			MethodNotAllowed, []string{"POST"}},
		{"HEAD refused where GET is not listed", []Entry[string]{rt("r", "/u POST")}, "HEAD - /u",
			MethodNotAllowed, []string{"POST"}},
		{"GET brings HEAD", []Entry[string]{rt("r", "/u GET PUT")}, "POST - /u",
			MethodNotAllowed, []string{"GET", "HEAD", "PUT"}},
		{"union across routes sharing the path", []Entry[string]{
			rt("a", "/u GET"), rt("b", "/u POST"), rt("c", "/u/{id} DELETE"),
		}, "PUT - /u", MethodNotAllowed, []string{"GET", "HEAD", "POST"}},
		{"union across patterns matching the path", []Entry[string]{
			rt("a", "/u/{id} GET"), rt("b", "/u/* DELETE"), rt("c", "/u/me PATCH"), rt("d", "/v/* PUT"),
		}, "POST - /u/me", MethodNotAllowed, []string{"DELETE", "GET", "HEAD", "PATCH"}},
		{"union across matching hosts only", []Entry[string]{
			rt("exact", "api.x.com /u GET"), rt("wild", "*.x.com /u PUT"),
			rt("none", "/u PATCH"), rt("other", "other.com /u POST"),
		}, "DELETE api.x.com /u", MethodNotAllowed, []string{"GET", "HEAD", "PATCH", "PUT"}},
		{"a lower priority match beats 405", []Entry[string]{
			rt("post", "/u POST p=5"), rt("any", "/* GET"),
		}, "GET - /u", Found, nil},
		{"a route with no methods never refuses", []Entry[string]{
			rt("post", "/u POST"), rt("any", "/*"),
		}, "GET - /u", Found, nil},
		{"no path match is NotFound", []Entry[string]{rt("r", "/u POST")}, "GET - /v",
			NotFound, nil},
		{"no host match is NotFound", []Entry[string]{rt("r", "api.x.com /u POST")}, "GET web.x.com /u",
			NotFound, nil},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			host, path, method := splitReq(t, tt.req)
			m := mustCompile(t, tt.routes...).Match(host, path, method)
			if m.Outcome != tt.outcome {
				t.Fatalf("Match(%q): got %v; want %v", tt.req, m.Outcome, tt.outcome)
			}
			if !slices.Equal(m.Allow, tt.allow) {
				t.Errorf("Match(%q): got Allow %v; want %v", tt.req, m.Allow, tt.allow)
			}
			if m.Outcome != Found && m.Value != "" {
				t.Errorf("Match(%q): got Value %q; want the zero value", tt.req, m.Value)
			}
		})
	}
}

func TestCompileRejectsBadPatterns(t *testing.T) {
	tests := []struct {
		desc   string
		entry  Entry[string]
		field  string
		reason string
	}{
		{"path without slash", Entry[string]{Paths: []string{"users"}}, "paths[0]", "must start with /"},
		{"star inside", Entry[string]{Paths: []string{"/", "/a*b"}}, "paths[1]", "* as its last character"},
		{"star after param", Entry[string]{Paths: []string{"/{id}*"}}, "paths[0]", "whole segment"},
		{"partial param", Entry[string]{Paths: []string{"/u-{id}"}}, "paths[0]", "whole segment"},
		{"unclosed param", Entry[string]{Paths: []string{"/{id"}}, "paths[0]", "whole segment"},
		{"bad param name", Entry[string]{Paths: []string{"/{1d}"}}, "paths[0]", "parameter name"},
		{"empty param name", Entry[string]{Paths: []string{"/{}"}}, "paths[0]", "parameter name"},
		{"param twice", Entry[string]{Paths: []string{"/{id}/{id}"}}, "paths[0]", "appears twice"},
		{"percent", Entry[string]{Paths: []string{"/a%20b"}}, "paths[0]", "'%'"},
		{"query", Entry[string]{Paths: []string{"/a?b"}}, "paths[0]", "'?'"},
		{"space", Entry[string]{Paths: []string{"/a b"}}, "paths[0]", "spaces"},
		{"too long", Entry[string]{Paths: []string{"/" + strings.Repeat("a", 1024)}}, "paths[0]", "at most 1024"},
		{"paths equal but for names", Entry[string]{Paths: []string{"/u/{id}", "/u/{uid}"}}, "paths[1]", "repeats"},
		{"star host", Entry[string]{Hosts: []string{"*"}}, "hosts[0]", "wildcard"},
		{"inner wildcard", Entry[string]{Hosts: []string{"a.*.com"}}, "hosts[0]", "wildcard"},
		{"bad host", Entry[string]{Hosts: []string{"a_b.com"}}, "hosts[0]", "not a valid hostname"},
		{"empty label", Entry[string]{Hosts: []string{"a..com"}}, "hosts[0]", "not a valid hostname"},
		{"host with port", Entry[string]{Hosts: []string{"a.com:80"}}, "hosts[0]", "not a valid hostname"},
		{"hosts equal but for case", Entry[string]{Hosts: []string{"a.com", "A.com"}}, "hosts[1]", "repeats"},
		{"bad method", Entry[string]{Methods: []string{"GET", "GE T"}}, "methods[1]", "HTTP method"},
		{"empty method", Entry[string]{Methods: []string{""}}, "methods[0]", "empty"},
		{"methods equal but for case", Entry[string]{Methods: []string{"get", "GET"}}, "methods[1]", "repeats"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			_, err := Compile([]Entry[string]{rt("fine", "/ok"), tt.entry})
			var ee *EntryError
			if !errors.As(err, &ee) {
				t.Fatalf("got error %v; want an *EntryError", err)
			}
			if ee.Entry != 1 || ee.Field != tt.field || !strings.Contains(ee.Reason, tt.reason) {
				t.Errorf("got entries[%d].%s %q; want entries[1].%s containing %q", ee.Entry, ee.Field, ee.Reason, tt.field, tt.reason)
			}
		})
	}
}

func TestCompileAcceptsWhatTheDomainAccepts(t *testing.T) {
	_, err := Compile([]Entry[string]{
		{Paths: []string{"/", "/*", "/a//b", "/users/{id}", "/t/{t_1}/x*", "/café"},
			Hosts: []string{"API.example.com", "*.example.com", "localhost"}, Methods: []string{"get", "PURGE"}},
		{Value: "everything"},
	})
	if err != nil {
		t.Errorf("got %v; want nil", err)
	}
}

func TestZeroTableMatchesNothing(t *testing.T) {
	var tab Table[int]
	if m := tab.Match("a.com", "/", "GET"); m.Outcome != NotFound || tab.Len() != 0 {
		t.Errorf("got %v, Len %d; want NotFound, 0", m.Outcome, tab.Len())
	}
	empty, err := Compile[int](nil)
	if err != nil {
		t.Fatal(err)
	}
	if m := empty.Match("a.com", "/", "GET"); m.Outcome != NotFound {
		t.Errorf("got %v; want NotFound", m.Outcome)
	}
}

func TestLenCountsEntries(t *testing.T) {
	tab := mustCompile(t, rt("a", "/a /b a.com b.com"), rt("b", "/c"))
	if tab.Len() != 2 {
		t.Errorf("got Len %d; want 2", tab.Len())
	}
}

func TestMatchIntoReusesBuffer(t *testing.T) {
	tab := mustCompile(t, rt("r", "/o/{org}/r/{repo}"))
	buf := make([]Param, 0, 4)
	m := tab.MatchInto("", "/o/go/r/x", "GET", buf)
	if want := []Param{{"org", "go"}, {"repo", "x"}}; !slices.Equal(m.Params, want) {
		t.Fatalf("got %v; want %v", m.Params, want)
	}
	if &m.Params[0] != &buf[:1][0] {
		t.Errorf("got params in a new array; want them in buf")
	}
	old := []Param{{"stale", "x"}}
	if m := tab.MatchInto("", "/o/a/r/b", "GET", old); len(m.Params) != 2 || m.Params[0].Name != "org" {
		t.Errorf("got %v; want buf's contents replaced", m.Params)
	}
}

func TestMatchAllocations(t *testing.T) {
	var entries []Entry[string]
	for i := range 100 {
		entries = append(entries,
			rt("exact", fmt.Sprintf("svc%d.example.com /svc%d/users GET", i, i)),
			rt("param", fmt.Sprintf("svc%d.example.com /svc%d/users/{id} GET", i, i)),
			rt("prefix", fmt.Sprintf("/svc%d/static/* GET", i)),
		)
	}
	tab := mustCompile(t, entries...)
	buf := make([]Param, 0, 4)
	tests := []struct {
		desc, host, path string
		into             bool
		want             float64
	}{
		{"exact", "svc7.example.com", "/svc7/users", false, 0},
		{"prefix", "svc7.example.com", "/svc7/static/app.css", false, 0},
		{"param into a buffer", "svc7.example.com", "/svc7/users/42", true, 0},
		{"param", "svc7.example.com", "/svc7/users/42", false, 1},
		{"not found", "svc7.example.com", "/nope", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			got := testing.AllocsPerRun(100, func() {
				if tt.into {
					tab.MatchInto(tt.host, tt.path, "GET", buf)
				} else {
					tab.Match(tt.host, tt.path, "GET")
				}
			})
			if got != tt.want {
				t.Errorf("got %v allocs; want %v", got, tt.want)
			}
		})
	}
}

func TestConcurrentMatch(t *testing.T) {
	var entries []Entry[int]
	for i := range 50 {
		entries = append(entries,
			Entry[int]{Hosts: []string{fmt.Sprintf("s%d.x.com", i)}, Paths: []string{"/u/{id}"}, Methods: []string{"GET"}, Value: i},
			Entry[int]{Hosts: []string{"*.x.com"}, Paths: []string{fmt.Sprintf("/w%d/*", i)}, Value: 1000 + i},
		)
	}
	tab, err := Compile(entries)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for g := range 16 {
		wg.Go(func() {
			buf := make([]Param, 0, 2)
			for k := range 500 {
				i := (g*31 + k) % 50
				m := tab.MatchInto(fmt.Sprintf("s%d.x.com", i), "/u/"+strconv.Itoa(k), "GET", buf)
				if m.Value != i || len(m.Params) != 1 || m.Params[0].Value != strconv.Itoa(k) {
					errs <- fmt.Sprintf("got %d %v; want %d [id %d]", m.Value, m.Params, i, k)
					return
				}
				if m := tab.Match("a.b.x.com", fmt.Sprintf("/w%d/x", i), "POST"); m.Value != 1000+i {
					errs <- fmt.Sprintf("got %d; want %d", m.Value, 1000+i)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
