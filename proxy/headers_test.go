package proxy

import (
	"io"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/serve"
	"github.com/gatehouse/gatehouse/internal/testupstream"
	"github.com/gatehouse/gatehouse/internal/wiretest"
)

// rawGet sends a GET with header lines exactly as written and returns what
// the echo upstream received.
func rawGet(t *testing.T, g *gateway, path string, lines ...string) *testupstream.Echo {
	t.Helper()
	c := g.dial()
	c.send("GET " + path + " HTTP/1.1\r\nHost: gw.example.com\r\n" + strings.Join(lines, "\r\n") + "\r\n\r\n")
	r := c.read("GET")
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	return r.echo(t)
}

func TestClientCannotNameAwayTheHeadersGatehouseSets(t *testing.T) {
	_, f := accessFixture(t)
	g := newGateway(t)
	g.apply(f.policy(allSchemes).rev)
	e := rawGet(t, g, "/echo", "X-API-Key: "+aliceAPIKey, "X-Request-Id: req-named-away",
		"Connection: X-Consumer-Id, X-Consumer-Name, X-Consumer-Groups, X-Request-Id, X-Forwarded-For, Via, X-Secret",
		"X-Secret: hop-only")
	assertIdentity(t, e, "c-alice", "alice", "staff,ops")
	want := map[string]string{"X-Request-Id": "req-named-away", "X-Forwarded-For": "127.0.0.1", "Via": "1.1 gatehouse"}
	for k, v := range want {
		if got := strings.Join(e.Headers[k], ", "); got != v {
			t.Errorf("upstream saw %s %q; want %q", k, got, v)
		}
	}
	if v, ok := e.Headers["X-Secret"]; ok {
		t.Errorf("upstream saw X-Secret %q, which the client's Connection named", v)
	}
}

// An upstream behind a route without auth may still believe the identity
// headers: a client's never reach it, under the default names or any an
// auth policy of the revision configures, in any spelling.
func TestClientIdentityHeadersNeverReachTheUpstreamOnRoutesWithoutAuth(t *testing.T) {
	_, f := accessFixture(t)
	f.policy(`{"name":"auth","type":"auth","config":{"key_auth":{},"consumer_id_header":"X-User","groups_header":"X-Roles"}}`)
	f.rev.Routes[0].Policies = nil // the policy exists, this route does not use it
	g := newGateway(t)
	g.apply(f.rev)
	e := rawGet(t, g, "/echo", "X-Consumer-Id: c-carol", "X-Consumer-Name: carol", "X-Consumer-Groups: admins",
		"X_Consumer_Id: c-carol", "x-consumer_groups: admins", "X-User: root", "X_User: root", "X-Roles: admins",
		"X-Kept: yes")
	for k, v := range e.Headers {
		if strings.HasPrefix(strings.ToLower(k), "x-consumer") || strings.HasPrefix(strings.ToLower(k), "x_consumer") ||
			strings.EqualFold(k, "X-User") || strings.EqualFold(k, "X_User") || strings.EqualFold(k, "X-Roles") {
			t.Errorf("the upstream received %s %q", k, v)
		}
	}
	if got := strings.Join(e.Headers["X-Kept"], ","); got != "yes" {
		t.Errorf("X-Kept %q; want yes: only gatehouse's own fields go", got)
	}
}

// CGI and WSGI servers read X_Forwarded_For as X-Forwarded-For: the
// underscore spellings of a field gatehouse sets never pass, not even from
// a trusted proxy (which uses the dashed names).
func TestUnderscoreSpellingsOfForwardingHeadersNeverReachTheUpstream(t *testing.T) {
	up := testupstream.Start(t)
	spellings := []string{"X_Forwarded_For: 203.0.113.7", "X-Forwarded_For: 203.0.113.7", "X_Real_IP: 203.0.113.7",
		"X_Forwarded_Host: evil.example", "X_Forwarded_Proto: https", "x_forwarded_port: 1", "X_Forwarded_Prefix: /evil",
		"X_Request_Id: forged", "X_Custom_Thing: kept"}
	for _, tc := range []struct {
		desc    string
		trusted []netip.Prefix
	}{
		{"untrusted peer", nil},
		{"trusted peer", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			g := newGatewayWithOptions(t, Options{TrustedProxies: tc.trusted})
			g.route(up.URL, "", "")
			e := rawGet(t, g, "/echo", spellings...)
			for k, v := range e.Headers {
				if strings.Contains(k, "_") && !strings.EqualFold(k, "X_Custom_Thing") {
					t.Errorf("the upstream received %s %q", k, v)
				}
			}
			if got := strings.Join(e.Headers["X-Forwarded-For"], ","); got != "127.0.0.1" {
				t.Errorf("X-Forwarded-For %q; want the peer alone", got)
			}
			if len(e.Headers["X_custom_thing"]) != 1 {
				t.Errorf("X_Custom_Thing did not pass: %v; only gatehouse's own fields go", e.Headers)
			}
		})
	}
}

// A trusted proxy in front is the edge: the scheme and host the client
// used are the ones it reports, as its X-Forwarded-For is extended. From
// anyone else they are gatehouse's own hop.
func TestForwardedProtoAndHostFromATrustedProxyAreKept(t *testing.T) {
	up := testupstream.Start(t)
	for _, tc := range []struct {
		desc            string
		trusted         []netip.Prefix
		wantProto, host string
	}{
		{"trusted peer", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, "https", "shop.example.com"},
		{"untrusted peer", nil, "http", "gw.example.com"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			g := newGatewayWithOptions(t, Options{TrustedProxies: tc.trusted})
			g.route(up.URL, "", "")
			e := rawGet(t, g, "/echo", "X-Forwarded-Proto: https", "X-Forwarded-Host: shop.example.com")
			if got := strings.Join(e.Headers["X-Forwarded-Proto"], ","); got != tc.wantProto {
				t.Errorf("X-Forwarded-Proto %q; want %q", got, tc.wantProto)
			}
			if got := strings.Join(e.Headers["X-Forwarded-Host"], ","); got != tc.host {
				t.Errorf("X-Forwarded-Host %q; want %q", got, tc.host)
			}
		})
	}
}

// An HTTP/1.0 request may come without Host: the upstream is not told of
// an empty one (X-Forwarded-Host, Forwarded's host=), only of what is known.
func TestRequestWithoutHostForwardsNoEmptyHost(t *testing.T) {
	g := newGateway(t)
	up := testupstream.Start(t)
	g.route(up.URL, "", "")
	c := g.dial()
	c.send("GET /echo HTTP/1.0\r\n\r\n")
	r := c.read("GET")
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	e := r.echo(t)
	if v, ok := e.Headers["X-Forwarded-Host"]; ok {
		t.Errorf("upstream saw X-Forwarded-Host %q; want none", v)
	}
	if got := strings.Join(e.Headers["Forwarded"], ", "); got != "for=127.0.0.1;proto=http" {
		t.Errorf("upstream saw Forwarded %q; want for=127.0.0.1;proto=http", got)
	}
}

// A request's trailer is a second header section an upstream may merge
// into the first (Tomcat's allowedTrailerHeaders, several frameworks): the
// fields gatehouse owns, those RFC 9110 §6.5.1 keeps out of trailers and
// hop-by-hop ones never reach it there, in any spelling and from any peer,
// announced or not; an ordinary trailer still does, and the upstream is
// told to expect only what it gets.
func TestForgedRequestTrailersNeverReachTheUpstream(t *testing.T) {
	// fixture is a revision whose auth policy names X-User but is not on
	// the route; with a content policy on it if readsBody, which reads JSON
	// bodies, trailers included, before they are forwarded.
	fixture := func(readsBody bool) *gatehouse.Revision {
		_, f := accessFixture(t)
		f.policy(`{"name":"auth","type":"auth","config":{"key_auth":{},"consumer_id_header":"X-User"}}`)
		f.rev.Routes[0].Policies = nil
		if readsBody {
			f.policy(`{"name":"json","type":"content","config":{"schema":{"type":"string"}}}`)
		}
		return f.rev
	}
	forged := []string{"X-Consumer-Id: admin", "X-Consumer-Groups: admins", "X-User: root", "X_Consumer_Name: root",
		"X-Forwarded-For: 10.0.0.1", "Forwarded: for=10.0.0.1", "X_Forwarded_For: 10.0.0.1", "X-Request-Id: forged",
		"Authorization: Bearer forged", "Cookie: session=admin", "Content-Type: application/x-evil",
		"Content-Encoding: gzip", "Host: admin.internal", "Cache-Control: no-cache", "If-Match: *",
		"X-Secret: named by Connection", "Keep-Alive: timeout=1", "X-Api-Key: the-clients-own-key"}
	var announced []string
	for _, field := range forged {
		name, _, _ := strings.Cut(field, ":")
		announced = append(announced, name)
	}
	checksum := []string{"sha256=2cf24dba"}
	check := func(t *testing.T, e *testupstream.Echo, want map[string][]string) {
		t.Helper()
		if !maps.EqualFunc(e.Trailers, want, slices.Equal) {
			t.Errorf("upstream trailers %q; want %q", e.Trailers, want)
		}
		if e.BodyLen != 5 {
			t.Errorf("upstream body %d bytes; want 5", e.BodyLen)
		}
		if got := strings.Join(e.Headers["X-Forwarded-For"], ","); got != "127.0.0.1" {
			t.Errorf("X-Forwarded-For %q; want the peer alone", got)
		}
	}

	for _, tc := range []struct {
		desc      string
		trusted   []netip.Prefix
		readsBody bool
		want      map[string][]string
	}{
		{"HTTP/1.1 chunked, untrusted peer", nil, false, map[string][]string{"X-Checksum": checksum}},
		{"HTTP/1.1 chunked, trusted peer", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, false,
			map[string][]string{"X-Checksum": checksum}},
		// The body, trailer included, is read before forwarding starts: an
		// unannounced field can be announced, and is judged as the rest.
		{"HTTP/1.1 chunked, body read by a policy first", nil, true,
			map[string][]string{"X-Checksum": checksum, "X-Unannounced": {"x"}}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			g := newGatewayWithOptions(t, Options{TrustedProxies: tc.trusted})
			g.apply(fixture(tc.readsBody))
			c := g.dial()
			// net/http merges unannounced trailer fields into the
			// request's all the same.
			c.send("POST /echo HTTP/1.1\r\nHost: gw.example.com\r\nContent-Type: application/json\r\n" +
				"Transfer-Encoding: chunked\r\nConnection: X-Secret\r\n" +
				"Trailer: X-Checksum, " + strings.Join(announced, ", ") + "\r\n\r\n" +
				"5\r\n\"hel\"\r\n0\r\nX-Checksum: sha256=2cf24dba\r\n" + strings.Join(forged, "\r\n") +
				"\r\nX-Real-Ip: 10.0.0.1\r\nX-Unannounced: x\r\n\r\n")
			r := c.read("POST")
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			check(t, r.echo(t), tc.want)
		})
	}

	t.Run("HTTP/2", func(t *testing.T) {
		g := newGateway(t, func(o *serve.Options) { o.H2C = true })
		g.apply(fixture(false))
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		tr := &http.Transport{Protocols: &p}
		defer tr.CloseIdleConnections()
		// A body of unknown length: the upstream request is chunked.
		req, err := http.NewRequest("POST", g.base+"/echo", io.NopCloser(strings.NewReader(`"hel"`)))
		if err != nil {
			t.Fatal(err)
		}
		req.Trailer = http.Header{"X-Checksum": checksum}
		// net/http's HTTP/2 server resets a stream whose trailer holds
		// Authorization, Host and the like; these it takes.
		for _, field := range []string{"X-Consumer-Id: admin", "X-User: root", "X_Consumer_Name: root",
			"X-Forwarded-For: 10.0.0.1", "X_Forwarded_For: 10.0.0.1", "X-Request-Id: forged", "Cookie: session=admin"} {
			name, value, _ := strings.Cut(field, ": ")
			req.Trailer[name] = []string{value}
		}
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Proto != "HTTP/2.0" || resp.StatusCode != 200 {
			resp.Body.Close()
			t.Fatalf("got %s %d; want HTTP/2.0 200", resp.Proto, resp.StatusCode)
		}
		e, err := testupstream.DecodeEcho(resp)
		if err != nil {
			t.Fatal(err)
		}
		check(t, e, map[string][]string{"X-Checksum": checksum})
	})
}

// TestAnUpstreamsConnectionFieldsStayOutOfInterimResponsesAndTrailers: a
// 103's hop-by-hop fields and those its Connection names, and trailer
// fields RFC 9110 §6.5.1 keeps out of trailers, never reach the client;
// the 103's Link and an ordinary trailer field do.
func TestAnUpstreamsConnectionFieldsStayOutOfInterimResponsesAndTrailers(t *testing.T) {
	g := newGateway(t)
	g.route(testupstream.Canned(t, []byte("HTTP/1.1 103 Early Hints\r\nConnection: X-Secret\r\nX-Secret: s\r\nKeep-Alive: timeout=5\r\nLink: </a.css>; rel=preload\r\n\r\n"+
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum, Set-Cookie, Host\r\n\r\n"+
		"3\r\nabc\r\n0\r\nX-Checksum: 1\r\nContent-Length: 99\r\nSet-Cookie: a=b\r\nHost: evil.example\r\n\r\n")), "", "")
	c := wiretest.Dial(t, g.addr)
	c.Send("GET /x HTTP/1.1\r\nHost: gw.example.com\r\nTE: trailers\r\n\r\n")
	interim, err := http.ReadResponse(c.R, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatal(err)
	}
	if interim.StatusCode != 103 || interim.Header.Get("Link") == "" {
		t.Fatalf("got %d %v; want the 103 with its Link", interim.StatusCode, interim.Header)
	}
	for _, k := range []string{"Connection", "X-Secret", "Keep-Alive"} {
		if v, ok := interim.Header[k]; ok {
			t.Errorf("the 103 relayed %s: %q", k, v)
		}
	}
	resp, err := http.ReadResponse(c.R, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil || string(b) != "abc" {
		t.Fatalf("body %q, %v", b, err)
	}
	if got := resp.Trailer.Get("X-Checksum"); got != "1" {
		t.Errorf("trailer X-Checksum %q; want 1", got)
	}
	for _, k := range []string{"Content-Length", "Set-Cookie", "Host"} {
		if v, ok := resp.Trailer[k]; ok {
			t.Errorf("trailer %s relayed: %q", k, v)
		}
		if strings.Contains(resp.Header.Get("Trailer"), k) {
			t.Errorf("Trailer %q announces %s", resp.Header.Get("Trailer"), k)
		}
	}
}
