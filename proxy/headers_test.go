package proxy

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testupstream"
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
