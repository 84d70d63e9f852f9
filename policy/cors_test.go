package policy

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// compileCORS is a cors policy from its config, as a route would run it.
func compileCORS(t *testing.T, cfg string) *CORS {
	t.Helper()
	c, err := testPolicy(t, `{"type":"cors","config":`+cfg+`}`, "cors").DecodeConfig()
	if err != nil {
		t.Fatal(err)
	}
	return NewCORS(c.(*gatehouse.CORSConfig))
}

// preflight is a browser's preflight header: origin, method, and the
// request headers it asks for (lower case and sorted, as browsers send
// them), omitted when "".
func preflight(origin, method, headers string) http.Header {
	h := http.Header{"Origin": {origin}, "Access-Control-Request-Method": {method}}
	if headers != "" {
		h["Access-Control-Request-Headers"] = []string{headers}
	}
	return h
}

func TestCORSPreflightAllowedOrRefusedNamingWhat(t *testing.T) {
	const cfg = `{"allow_origins":["https://app.example.com","https://*.example.org","http://localhost:3000"],
		"allow_methods":["GET","PUT"],"allow_headers":["Content-Type","X-Trace"],"max_age_seconds":300}`
	c := compileCORS(t, cfg)
	for _, tc := range []struct {
		desc     string
		req      http.Header
		refusal  string // "" for allowed
		wantHdrs string // Access-Control-Allow-Headers when allowed
	}{
		{desc: "exact origin, simple method", req: preflight("https://app.example.com", "GET", ""), wantHdrs: "Content-Type, X-Trace"},
		{desc: "listed method and headers in any case", req: preflight("https://app.example.com", "PUT", "content-type,x-trace"), wantHdrs: "Content-Type, X-Trace"},
		{desc: "subdomain", req: preflight("https://api.eu.example.org", "PUT", ""), wantHdrs: "Content-Type, X-Trace"},
		{desc: "origin with its port", req: preflight("http://localhost:3000", "GET", ""), wantHdrs: "Content-Type, X-Trace"},
		{desc: "unknown origin", req: preflight("https://evil.example", "GET", ""), refusal: "origin https://evil.example"},
		{desc: "the pattern's own domain", req: preflight("https://example.org", "GET", ""), refusal: "origin https://example.org"},
		{desc: "a look-alike domain", req: preflight("https://evilexample.org", "GET", ""), refusal: "origin https://evilexample.org"},
		{desc: "a subdomain on another scheme", req: preflight("http://api.example.org", "GET", ""), refusal: "origin http://api.example.org"},
		{desc: "a subdomain on another port", req: preflight("https://api.example.org:8443", "GET", ""), refusal: "origin https://api.example.org:8443"},
		{desc: "a subdomain with user information", req: preflight("https://x@api.example.org", "GET", ""), refusal: "origin https://x@api.example.org"},
		{desc: "origin on another port", req: preflight("http://localhost:3001", "GET", ""), refusal: "origin http://localhost:3001"},
		{desc: "origin with a trailing slash", req: preflight("https://app.example.com/", "GET", ""), refusal: "origin https://app.example.com/"},
		{desc: "origin null", req: preflight("null", "GET", ""), refusal: "origin null"},
		{desc: "method not listed", req: preflight("https://app.example.com", "DELETE", ""), refusal: "method DELETE"},
		{desc: "header not listed", req: preflight("https://app.example.com", "PUT", "content-type,x-secret"), refusal: "header x-secret"},
		{desc: "authorization not listed", req: preflight("https://app.example.com", "GET", "authorization"), refusal: "header authorization"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			h := http.Header{}
			err := c.Preflight(h, tc.req)
			if got := h.Get("Vary"); got != "Origin, Access-Control-Request-Method, Access-Control-Request-Headers" {
				t.Errorf("Vary %q; want Origin and the request fields", got)
			}
			if tc.refusal != "" {
				var e *gatehouse.Error
				if !errors.As(err, &e) || e.Code != gatehouse.EFORBIDDEN || !strings.Contains(e.Message, tc.refusal) {
					t.Fatalf("got %v; want a 403 naming the %s", err, tc.refusal)
				}
				if v, ok := h["Access-Control-Allow-Origin"]; ok {
					t.Errorf("refused, yet Access-Control-Allow-Origin %q", v)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			want := map[string]string{
				"Access-Control-Allow-Origin":  tc.req.Get("Origin"),
				"Access-Control-Allow-Methods": "GET, PUT",
				"Access-Control-Allow-Headers": tc.wantHdrs,
				"Access-Control-Max-Age":       "300",
			}
			for k, v := range want {
				if got := h.Get(k); got != v {
					t.Errorf("%s %q; want %q", k, got, v)
				}
			}
			if v, ok := h["Access-Control-Allow-Credentials"]; ok {
				t.Errorf("Access-Control-Allow-Credentials %q without credentials", v)
			}
		})
	}
}

// "*" means to the policy what it would mean to a browser, and is
// answered so that it holds with credentials too.
func TestCORSWildcardsAreAnsweredAsBrowsersReadThem(t *testing.T) {
	for _, tc := range []struct {
		desc, cfg  string
		req        http.Header
		refused    bool
		wantOrigin string
		wantMethod string
		wantHdrs   string
		wantCreds  string
	}{
		{desc: "any origin without credentials is *", cfg: `{"allow_origins":["*"]}`,
			req: preflight("https://anyone.example", "DELETE", ""), wantOrigin: "*", wantMethod: "DELETE"},
		{desc: "any header is answered by name", cfg: `{"allow_origins":["*"],"allow_headers":["*"]}`,
			req: preflight("https://anyone.example", "PATCH", "content-type,x-a"), wantOrigin: "*", wantMethod: "PATCH", wantHdrs: "content-type,x-a"},
		{desc: "any header does not cover authorization", cfg: `{"allow_origins":["*"],"allow_headers":["*"]}`,
			req: preflight("https://anyone.example", "GET", "authorization,x-a"), refused: true},
		{desc: "authorization listed beside any header", cfg: `{"allow_origins":["*"],"allow_headers":["*","Authorization"]}`,
			req: preflight("https://anyone.example", "GET", "authorization,x-a"), wantOrigin: "*", wantMethod: "GET", wantHdrs: "authorization,x-a"},
		{desc: "credentials echo a listed origin", cfg: `{"allow_origins":["https://a.example"],"allow_headers":["*"],"allow_credentials":true}`,
			req: preflight("https://a.example", "PUT", "x-a"), wantOrigin: "https://a.example", wantMethod: "PUT", wantHdrs: "x-a", wantCreds: "true"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			h := http.Header{}
			err := compileCORS(t, tc.cfg).Preflight(h, tc.req)
			if tc.refused {
				if gatehouse.ErrorCode(err) != gatehouse.EFORBIDDEN {
					t.Fatalf("got %v; want 403", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range map[string]string{"Access-Control-Allow-Origin": tc.wantOrigin, "Access-Control-Allow-Methods": tc.wantMethod,
				"Access-Control-Allow-Headers": tc.wantHdrs, "Access-Control-Allow-Credentials": tc.wantCreds} {
				if got := h.Get(k); got != v {
					t.Errorf("%s %q; want %q", k, got, v)
				}
			}
		})
	}
}

func TestCORSActualRequestGetsTheFieldsOnlyFromAnAllowedOrigin(t *testing.T) {
	for _, tc := range []struct {
		desc, cfg, origin string
		want              http.Header
	}{
		{desc: "allowed origin", cfg: `{"allow_origins":["https://a.example"],"expose_headers":["ETag","X-Total"]}`, origin: "https://a.example",
			want: http.Header{"Vary": {"Origin"}, "Access-Control-Allow-Origin": {"https://a.example"}, "Access-Control-Expose-Headers": {"ETag, X-Total"}}},
		{desc: "allowed origin with credentials", cfg: `{"allow_origins":["https://*.a.example"],"allow_credentials":true}`, origin: "https://x.a.example",
			want: http.Header{"Vary": {"Origin"}, "Access-Control-Allow-Origin": {"https://x.a.example"}, "Access-Control-Allow-Credentials": {"true"}}},
		{desc: "any origin", cfg: `{"allow_origins":["*"]}`, origin: "https://b.example",
			want: http.Header{"Vary": {"Origin"}, "Access-Control-Allow-Origin": {"*"}}},
		{desc: "origin not allowed", cfg: `{"allow_origins":["https://a.example"],"expose_headers":["ETag"],"allow_credentials":true}`, origin: "https://b.example",
			want: http.Header{"Vary": {"Origin"}}},
		{desc: "no origin", cfg: `{"allow_origins":["*"]}`,
			want: http.Header{"Vary": {"Origin"}}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/", nil)
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			w := httptest.NewRecorder()
			if err := compileCORS(t, tc.cfg).Check(&Request{W: w, R: req}); err != nil {
				t.Fatalf("an actual request refused: %v", err)
			}
			if got := w.Header(); !equalHeader(got, tc.want) {
				t.Fatalf("header %v; want %v", got, tc.want)
			}
		})
	}
}

func TestCORSScrubReplacesTheUpstreamsFieldsAndKeepsItsVary(t *testing.T) {
	for _, tc := range []struct {
		desc     string
		up, want http.Header
	}{
		{desc: "upstream CORS fields go",
			up:   http.Header{"Access-Control-Allow-Origin": {"*"}, "Access-Control-Allow-Credentials": {"true"}, "Access-Control-Max-Age": {"1"}, "Etag": {`"1"`}},
			want: http.Header{"Etag": {`"1"`}}},
		{desc: "Origin joins the upstream's Vary",
			up:   http.Header{"Vary": {"Accept-Encoding"}},
			want: http.Header{"Vary": {"Accept-Encoding", "Origin"}}},
		{desc: "a Vary naming Origin stays",
			up:   http.Header{"Vary": {"accept, origin"}},
			want: http.Header{"Vary": {"accept, origin"}}},
		{desc: "Vary * stays",
			up:   http.Header{"Vary": {"*"}},
			want: http.Header{"Vary": {"*"}}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			compileCORS(t, `{"allow_origins":["*"]}`).Scrub(tc.up)
			if !equalHeader(tc.up, tc.want) {
				t.Fatalf("header %v; want %v", tc.up, tc.want)
			}
		})
	}
}

// An actual request through a cors policy costs nothing: the fields are
// made once per revision, or are the request's own.
func TestCORSActualRequestAllocatesNothing(t *testing.T) {
	c := compileCORS(t, `{"allow_origins":["https://a.example","https://*.b.example"],"expose_headers":["ETag"],"allow_credentials":true}`)
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Origin", "https://x.b.example")
	w := httptest.NewRecorder()
	r := &Request{W: w, R: req}
	c.Check(r) // the header map grows once
	if n := testing.AllocsPerRun(100, func() {
		clear(w.Header())
		c.Check(r)
	}); n != 0 {
		t.Fatalf("%v allocations per actual request; want 0", n)
	}
}

func TestCORSIsARoutesFirstStepAndFoundByItsChain(t *testing.T) {
	o := newOverloadRev(t, "r1:s1", "r2:s1")
	o.policy(`{"name":"m","type":"maintenance","config":{}}`, "r1")
	o.policy(`{"name":"c","type":"cors","config":{"allow_origins":["*"]}}`, "r1")
	set := o.compile(NewState(), newOverloadClock())
	if !set.Preflights() {
		t.Fatal("a revision with a cors policy: Preflights false")
	}
	chain := set.Chain("r1")
	if chain.CORS() == nil || len(chain.Types) != 2 || chain.Types[0] != gatehouse.PolicyCORS {
		t.Fatalf("r1's chain: types %v, cors %v; want cors first", chain.Types, chain.CORS())
	}
	if set.Chain("r2").CORS() != nil {
		t.Fatal("r2, without cors, has a cors policy")
	}
	// The refusal of a later step carries cors's fields.
	q := runOverload(t, set, "r1")
	if gatehouse.ErrorCode(q.err) != gatehouse.EUNAVAILABLE || q.w.Header().Get("Vary") != "Origin" {
		t.Fatalf("maintenance after cors: err %v, header %v; want 503 with Vary: Origin", q.err, q.w.Header())
	}
	if (&Set{}).Preflights() {
		t.Fatal("a revision without cors: Preflights true")
	}
}

func equalHeader(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if strings.Join(v, "\n") != strings.Join(b[k], "\n") {
			return false
		}
	}
	return true
}
