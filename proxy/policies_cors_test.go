package proxy

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testupstream"
)

// browser calls the gateway as a page of origin does with fetch(): a
// request that is not CORS-safelisted is preflighted first, and the
// preflight's answer and the actual response are checked as the Fetch
// standard checks them (§4.8 CORS-preflight fetch, §4.10 CORS check).
type browser struct {
	g      *gateway
	origin string
	// credentials is fetch's credentials: "include".
	credentials bool
}

// fetched is what a script sees of a fetch: blocked (a network error),
// or the response.
type fetched struct {
	blocked   string // why, "" if not
	preflight *response
	resp      *response
}

// safelistedMethods and safelistedHeaders need no preflight (Fetch
// §2.2.2; Content-Type only with a form or text/plain value, which these
// tests do not send).
var safelistedMethods = []string{"GET", "HEAD", "POST"}

func (b *browser) fetch(method, path string, headers ...string) *fetched {
	b.g.t.Helper()
	var unsafe []string
	for i := 0; i+1 < len(headers); i += 2 {
		if n := strings.ToLower(headers[i]); !slices.Contains([]string{"accept", "accept-language", "content-language"}, n) {
			unsafe = append(unsafe, n)
		}
	}
	slices.Sort(unsafe)
	f := &fetched{}
	if !slices.Contains(safelistedMethods, method) || len(unsafe) > 0 {
		pf := []string{"Origin", b.origin, "Access-Control-Request-Method", method}
		if len(unsafe) > 0 {
			pf = append(pf, "Access-Control-Request-Headers", strings.Join(unsafe, ","))
		}
		f.preflight = b.g.do("OPTIONS", path, nil, pf...)
		if why := b.preflightFails(f.preflight, method, unsafe); why != "" {
			f.blocked = "preflight: " + why
			return f
		}
	}
	f.resp = b.g.do(method, path, nil, append([]string{"Origin", b.origin}, headers...)...)
	if why := b.corsCheck(f.resp); why != "" {
		f.blocked = why
	}
	return f
}

// corsCheck is Fetch's CORS check of a response: "" if it passes.
func (b *browser) corsCheck(r *response) string {
	acao := r.header.Values("Access-Control-Allow-Origin")
	switch {
	case len(acao) != 1:
		return "Access-Control-Allow-Origin " + strings.Join(acao, " | ")
	case acao[0] == "*" && !b.credentials:
		return ""
	case acao[0] != b.origin:
		return "Access-Control-Allow-Origin " + acao[0]
	case b.credentials && r.header.Get("Access-Control-Allow-Credentials") != "true":
		return "no Access-Control-Allow-Credentials: true"
	}
	return ""
}

func (b *browser) preflightFails(r *response, method string, unsafe []string) string {
	if r.status < 200 || r.status > 299 {
		return "status " + http.StatusText(r.status)
	}
	if why := b.corsCheck(r); why != "" {
		return why
	}
	list := func(k string) []string {
		var out []string
		for _, v := range r.header.Values(k) {
			for s := range strings.SplitSeq(v, ",") {
				if s = strings.TrimSpace(s); s != "" {
					out = append(out, s)
				}
			}
		}
		return out
	}
	methods, names := list("Access-Control-Allow-Methods"), list("Access-Control-Allow-Headers")
	wild := func(l []string) bool { return !b.credentials && slices.Contains(l, "*") }
	if !slices.Contains(methods, method) && !slices.Contains(safelistedMethods, method) && !wild(methods) {
		return "method " + method + " not in " + strings.Join(methods, ",")
	}
	for _, u := range unsafe {
		named := slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, u) })
		if !named && (!wild(names) || u == "authorization") {
			return "header " + u + " not in " + strings.Join(names, ",")
		}
	}
	return ""
}

// corsFixture is a gateway serving upstream url on one catch-all route
// with the cors policy cfg and the policies more.
func corsFixture(t *testing.T, url, cfg string, more ...string) *gateway {
	t.Helper()
	f := newPolicyFixture(t, url).policy(`{"name":"cors","type":"cors","config":` + cfg + `}`)
	for _, p := range more {
		f.policy(p)
	}
	g := newGateway(t)
	g.apply(f.rev)
	return g
}

const appOrigin = "https://app.example.com"

func TestCORSPreflightIsAnsweredByGatehouseAndNeverReachesTheUpstream(t *testing.T) {
	up := testupstream.Start(t)
	g := corsFixture(t, up.URL, `{"allow_origins":["https://app.example.com","https://*.example.org"],
		"allow_methods":["GET","PUT","DELETE"],"allow_headers":["Content-Type","X-Trace"],"max_age_seconds":120}`)
	for _, tc := range []struct {
		desc, origin, method string
		headers              []string
		refusal              string // what the 403 names; "" allowed
	}{
		{desc: "PUT with JSON from the app", origin: appOrigin, method: "PUT", headers: []string{"Content-Type", "application/json", "X-Trace", "1"}},
		{desc: "DELETE from a subdomain", origin: "https://admin.eu.example.org", method: "DELETE"},
		{desc: "an origin not listed", origin: "https://evil.example", method: "PUT", refusal: "origin https://evil.example"},
		{desc: "a method not listed", origin: appOrigin, method: "PATCH", refusal: "method PATCH"},
		{desc: "a header not listed", origin: appOrigin, method: "GET", headers: []string{"X-Secret", "1"}, refusal: "header x-secret"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			up.Reset()
			f := (&browser{g: g, origin: tc.origin}).fetch(tc.method, "/items/7", tc.headers...)
			pf := f.preflight
			if got := pf.header.Get("Vary"); got != "Origin, Access-Control-Request-Method, Access-Control-Request-Headers" {
				t.Errorf("preflight Vary %q", got)
			}
			if tc.refusal != "" {
				doc := assertProblem(t, pf, http.StatusForbidden)
				if detail, _ := doc["detail"].(string); !strings.Contains(detail, tc.refusal) {
					t.Errorf("detail %q; want it to name the %s", detail, tc.refusal)
				}
				if f.blocked == "" {
					t.Error("the browser went on after a refused preflight")
				}
				if n := up.Requests(); n != 0 {
					t.Fatalf("the upstream saw %d requests; want none", n)
				}
				return
			}
			if pf.status != http.StatusNoContent || len(pf.body) != 0 {
				t.Fatalf("preflight: %d with %d body bytes; want 204 without a body", pf.status, len(pf.body))
			}
			if got := pf.header.Get("Access-Control-Max-Age"); got != "120" {
				t.Errorf("Access-Control-Max-Age %q; want 120", got)
			}
			if f.blocked != "" {
				t.Fatalf("the browser blocked the call: %s", f.blocked)
			}
			if f.resp.status != http.StatusOK || up.Requests() != 1 || f.resp.echo(t).Method != tc.method {
				t.Fatalf("actual request: %d, upstream saw %d requests; want 200 and only the actual request", f.resp.status, up.Requests())
			}
		})
	}
}

// Browsers send preflights without credentials: a route that takes API
// keys answers them all the same, and its 401 to an actual request
// without a key carries the CORS fields, so that the script can read it.
func TestCORSPreflightIsAnsweredBeforeAuthentication(t *testing.T) {
	up, f := accessFixture(t)
	f.policy(`{"name":"cors","type":"cors","config":{"allow_origins":["https://app.example.com"],
		"allow_headers":["X-API-Key"],"allow_credentials":true}}`).
		policy(`{"name":"keys","type":"auth","config":{"key_auth":{}}}`)
	g := newGateway(t)
	g.apply(f.rev)
	app := &browser{g: g, origin: appOrigin, credentials: true}

	noKey := app.fetch("DELETE", "/orders/1")
	if noKey.preflight.status != http.StatusNoContent {
		t.Fatalf("preflight without a key: %d; want 204", noKey.preflight.status)
	}
	if noKey.blocked != "" {
		t.Fatalf("the browser hid the 401 from the script: %s", noKey.blocked)
	}
	assertProblem(t, noKey.resp, http.StatusUnauthorized)
	if noKey.resp.header.Get("WWW-Authenticate") == "" || noKey.resp.header.Get("Vary") != "Origin" {
		t.Fatalf("401: WWW-Authenticate %q, Vary %q", noKey.resp.header.Get("WWW-Authenticate"), noKey.resp.header.Get("Vary"))
	}

	withKey := app.fetch("DELETE", "/orders/1", "X-API-Key", aliceAPIKey)
	if withKey.blocked != "" || withKey.resp.status != http.StatusOK {
		t.Fatalf("with a key: blocked %q, status %d; want a readable 200", withKey.blocked, withKey.resp.status)
	}
	if n := up.Requests(); n != 1 {
		t.Fatalf("the upstream saw %d requests; want only the one with a key", n)
	}
}

// An actual request is never refused for its origin (the browser
// enforces CORS): it gets the fields when its origin is allowed, none
// otherwise, and Vary: Origin either way, so that no cache hands one
// origin's answer to another.
func TestCORSActualRequestGetsTheFieldsOnlyWhenItsOriginIsAllowed(t *testing.T) {
	up := testupstream.Start(t)
	g := corsFixture(t, up.URL, `{"allow_origins":["https://app.example.com"],"expose_headers":["X-Total","ETag"],"allow_credentials":true}`)
	for _, tc := range []struct {
		desc, origin string
		want         map[string]string
	}{
		{desc: "allowed origin", origin: appOrigin, want: map[string]string{"Access-Control-Allow-Origin": appOrigin,
			"Access-Control-Expose-Headers": "X-Total, ETag", "Access-Control-Allow-Credentials": "true", "Vary": "Origin"}},
		{desc: "another origin", origin: "https://evil.example", want: map[string]string{"Access-Control-Allow-Origin": "",
			"Access-Control-Expose-Headers": "", "Access-Control-Allow-Credentials": "", "Vary": "Origin"}},
		{desc: "no origin (same-origin or not a browser)", want: map[string]string{"Access-Control-Allow-Origin": "", "Vary": "Origin"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			var hdr []string
			if tc.origin != "" {
				hdr = []string{"Origin", tc.origin}
			}
			r := g.get("/items", hdr...)
			if r.status != http.StatusOK {
				t.Fatalf("status %d; want the upstream's 200 whatever the origin", r.status)
			}
			for k, v := range tc.want {
				if got := strings.Join(r.header.Values(k), ", "); got != v {
					t.Errorf("%s %q; want %q", k, got, v)
				}
			}
		})
	}
}

// On a route with cors the policy speaks for CORS: the upstream's own
// fields are replaced, and its Vary is kept with Origin added.
func TestCORSFieldsTheUpstreamSentAreReplacedByThePolicys(t *testing.T) {
	var seen atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Allow-Credentials", "true")
		h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE")
		h.Set("Vary", "Accept-Encoding")
		h.Set("Content-Type", "text/plain")
		w.Write([]byte("ok"))
	}))
	t.Cleanup(up.Close)
	g := corsFixture(t, up.URL, `{"allow_origins":["https://app.example.com"]}`)
	for _, tc := range []struct {
		desc, origin, wantACAO string
	}{
		{"allowed origin", appOrigin, appOrigin},
		{"another origin", "https://evil.example", ""},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			r := g.get("/x", "Origin", tc.origin)
			if r.status != http.StatusOK || string(r.body) != "ok" {
				t.Fatalf("status %d, body %q; want the upstream's answer", r.status, r.body)
			}
			if got := r.header.Get("Access-Control-Allow-Origin"); got != tc.wantACAO {
				t.Errorf("Access-Control-Allow-Origin %q; want %q", got, tc.wantACAO)
			}
			for _, k := range []string{"Access-Control-Allow-Credentials", "Access-Control-Allow-Methods"} {
				if v := r.header.Values(k); len(v) > 0 {
					t.Errorf("the upstream's %s %q reached the client", k, v)
				}
			}
			if got := strings.Join(r.header.Values("Vary"), ", "); got != "Accept-Encoding, Origin" {
				t.Errorf("Vary %q; want Accept-Encoding, Origin", got)
			}
		})
	}
	if seen.Load() != 2 {
		t.Fatalf("the upstream saw %d requests; want 2", seen.Load())
	}
}

// A preflight is found by the route that would serve the method it asks
// about (or, for a method no route serves, the path's cors policy); one
// to a route without cors, and an OPTIONS that is not a preflight, are
// ordinary requests: the route's 405 and Allow hold, or the upstream
// answers.
func TestOPTIONSThatIsNoPreflightOfACORSRouteIsAnOrdinaryRequest(t *testing.T) {
	up := testupstream.Start(t)
	f := newPolicyFixture(t, up.URL)
	f.rev.Routes[0].Methods = []string{"GET"}
	f.rev.Routes[0].Paths = []string{"/items/*"}
	f.policy(`{"name":"cors","type":"cors","config":{"allow_origins":["*"]}}`)
	plain := revision(t, 1, nil, []string{
		`{"id":"put","service_id":"s","paths":["/items/*"],"methods":["PUT"]}`,
		`{"id":"any","service_id":"s","paths":["/open/*"]}`,
	}).Routes
	f.rev.Routes = append(f.rev.Routes, plain...)
	g := newGateway(t)
	g.apply(f.rev)
	for _, tc := range []struct {
		desc, path string
		headers    []string
		status     int
		allow      string // for a 405
		upstream   bool
	}{
		{desc: "preflight of the cors route", path: "/items/1", status: 204,
			headers: []string{"Origin", appOrigin, "Access-Control-Request-Method", "GET"}},
		{desc: "OPTIONS without Access-Control-Request-Method", path: "/items/1", status: 405, allow: "GET, HEAD, PUT",
			headers: []string{"Origin", appOrigin}},
		{desc: "OPTIONS without Origin", path: "/items/1", status: 405, allow: "GET, HEAD, PUT",
			headers: []string{"Access-Control-Request-Method", "GET"}},
		{desc: "preflight of a route without cors", path: "/items/1", status: 405, allow: "GET, HEAD, PUT",
			headers: []string{"Origin", appOrigin, "Access-Control-Request-Method", "PUT"}},
		{desc: "preflight of a method no route serves is the path's cors policy's to refuse", path: "/items/1", status: 403,
			headers: []string{"Origin", appOrigin, "Access-Control-Request-Method", "DELETE"}},
		{desc: "preflight of a route without cors that serves OPTIONS", path: "/open/1", status: 200, upstream: true,
			headers: []string{"Origin", appOrigin, "Access-Control-Request-Method", "PUT"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			up.Reset()
			r := g.do("OPTIONS", tc.path, nil, tc.headers...)
			if r.status != tc.status {
				t.Fatalf("status %d; want %d", r.status, tc.status)
			}
			if tc.status == 405 {
				assertProblem(t, r, 405)
				if got := r.header.Get("Allow"); got != tc.allow {
					t.Errorf("Allow %q; want %q", got, tc.allow)
				}
			}
			if tc.status != 204 && r.header.Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("an ordinary OPTIONS got Access-Control-Allow-Origin %q", r.header.Get("Access-Control-Allow-Origin"))
			}
			if got := up.Requests() == 1; got != tc.upstream {
				t.Errorf("upstream contacted: %v; want %v", got, tc.upstream)
			}
		})
	}
}

// A preflight asking for a method no route on its path serves is
// answered by the path's cors policy, the one of the routes there that
// have one, with a 403 naming the method (or the origin, when it does not
// allow that): never by a route that serves OPTIONS without cors, nor
// with its 401 or the path's 405, which carry no CORS fields. Routes
// whose cors policies differ do not agree on the origin; the method is
// refused all the same, since no route serves it.
func TestCORSPreflightOfAMethodNoRouteServesIsRefusedByThePathsPolicy(t *testing.T) {
	var seen atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Allow-Credentials", "true")
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(up.Close)
	const (
		anyOrigin = `{"id":"cors-any","name":"cors-any","type":"cors","config":{"allow_origins":["*"]}}`
		appOnly   = `{"id":"cors-app","name":"cors-app","type":"cors","config":{"allow_origins":["https://app.example.com"]}}`
		keys      = `{"id":"keys","name":"keys","type":"auth","config":{"key_auth":{}}}`
		evil      = "https://evil.com"
	)
	preflight := func(origin, method string) []string {
		return []string{"Origin", origin, "Access-Control-Request-Method", method}
	}
	for _, tc := range []struct {
		desc     string
		policies []string
		routes   []string // each as JSON; policies by id
		headers  []string
		status   int
		names    string // what the 403 names
		upstream bool
	}{
		{desc: "beside an OPTIONS route without policies", policies: []string{anyOrigin},
			routes: []string{`{"id":"open","service_id":"s","paths":["/open/*"],"methods":["GET"],"policies":["cors-any"]}`,
				`{"id":"openopt","service_id":"s","paths":["/open/*"],"methods":["OPTIONS"]}`},
			headers: preflight(evil, "DELETE"), status: 403, names: "method DELETE"},
		{desc: "beside an OPTIONS route with authentication", policies: []string{anyOrigin, keys},
			routes: []string{`{"id":"open","service_id":"s","paths":["/open/*"],"methods":["GET"],"policies":["cors-any"]}`,
				`{"id":"openopt","service_id":"s","paths":["/open/*"],"methods":["OPTIONS"],"policies":["keys"]}`},
			headers: preflight(evil, "DELETE"), status: 403, names: "method DELETE"},
		{desc: "with no OPTIONS route", policies: []string{anyOrigin},
			routes:  []string{`{"id":"open","service_id":"s","paths":["/open/*"],"methods":["GET"],"policies":["cors-any"]}`},
			headers: preflight(evil, "DELETE"), status: 403, names: "method DELETE"},
		{desc: "from an origin the path's policy does not allow", policies: []string{appOnly},
			routes: []string{`{"id":"open","service_id":"s","paths":["/open/*"],"methods":["GET"],"policies":["cors-app"]}`,
				`{"id":"put","service_id":"s","paths":["/open/*"],"methods":["PUT"],"policies":["cors-app"]}`},
			headers: preflight(evil, "DELETE"), status: 403, names: "origin https://evil.com"},
		{desc: "where the routes' cors policies differ", policies: []string{anyOrigin, appOnly},
			routes: []string{`{"id":"open","service_id":"s","paths":["/open/*"],"methods":["GET"],"policies":["cors-any"]}`,
				`{"id":"put","service_id":"s","paths":["/open/*"],"methods":["PUT"],"policies":["cors-app"]}`},
			headers: preflight(evil, "DELETE"), status: 403, names: "method DELETE"},
		{desc: "an OPTIONS that is no preflight stays an ordinary request", policies: []string{anyOrigin},
			routes: []string{`{"id":"open","service_id":"s","paths":["/open/*"],"methods":["GET"],"policies":["cors-any"]}`,
				`{"id":"openopt","service_id":"s","paths":["/open/*"],"methods":["OPTIONS"]}`},
			headers: []string{"Origin", evil}, status: 200, upstream: true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			f := newPolicyFixture(t, up.URL)
			f.rev.Routes = revision(t, 1, nil, tc.routes).Routes
			own := f.rev.Routes[0].Policies
			for _, p := range tc.policies {
				f.policy(p)
			}
			// f.policy lists each on the first route; the routes' JSON
			// says which route has which.
			f.rev.Routes[0].Policies = own
			g := newGateway(t)
			g.apply(f.rev)
			seen.Store(0)
			r := g.do("OPTIONS", "/open/x", nil, tc.headers...)
			if r.status != tc.status {
				t.Fatalf("status %d %s; want %d", r.status, r.body, tc.status)
			}
			if got := seen.Load() == 1; got != tc.upstream {
				t.Errorf("upstream contacted: %v; want %v", got, tc.upstream)
			}
			if tc.status != 403 {
				return
			}
			doc := assertProblem(t, r, 403)
			if detail, _ := doc["detail"].(string); !strings.Contains(detail, tc.names) {
				t.Errorf("detail %q; want it to name the %s", detail, tc.names)
			}
			if got := r.header.Get("Vary"); got != "Origin, Access-Control-Request-Method, Access-Control-Request-Headers" {
				t.Errorf("Vary %q", got)
			}
			for _, k := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Allow-Methods", "WWW-Authenticate"} {
				if v := r.header.Values(k); len(v) > 0 {
					t.Errorf("the refusal has %s %q", k, v)
				}
			}
		})
	}
}

// BenchmarkServeHTTPWithCORS is BenchmarkServeHTTP with a cors policy on
// the route and an actual request from an allowed origin: the difference
// is the policy's cost (the fields set, the upstream's header scrubbed).
//
//	go test -run '^$' -bench 'ServeHTTP' -benchmem ./proxy/
func BenchmarkServeHTTPWithCORS(b *testing.B) {
	g := &gateway{t: b, handler: New(Options{})}
	b.Cleanup(g.handler.Close)
	g.apply(newPolicyFixture(b, testupstream.Canned(b, okKiB)).
		policy(`{"name":"cors","type":"cors","config":{"allow_origins":["https://app.example.com","https://*.example.org"],
			"expose_headers":["ETag"],"allow_credentials":true}}`).rev)
	origin := []string{"https://admin.example.org"}
	benchServeHTTP(b, g.handler, func(req *http.Request) { req.Header["Origin"] = origin })
}
