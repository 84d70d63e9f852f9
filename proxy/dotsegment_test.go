package proxy

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/testupstream"
)

// TestDotSegmentWithPathParametersCannotWalkPastARoute: Tomcat, Jetty and
// Spring drop path parameters before they resolve dot segments, so
// "/public/..;/private/x" is "/private/x" to them. Such a path is refused
// as the dot segments hidden behind encoded slashes are: 400, and neither
// upstream sees it.
func TestDotSegmentWithPathParametersCannotWalkPastARoute(t *testing.T) {
	public, private := testupstream.Start(t), testupstream.Start(t)
	g := newGateway(t)
	g.serviceRoutes(map[string]*testupstream.Upstream{"public": public, "private": private},
		`{"id":"public","service_id":"public","paths":["/public/*"]}`,
		`{"id":"private","service_id":"private","paths":["/private/*"]}`)
	for _, path := range []string{
		"/public/..;/private/x",
		"/public/..;x/private/x",
		"/public/%2e%2e;/private/x",
		"/public/%2E.;jsessionid=1/private/x",
		"/public/..%3B/private/x",
		"/public/a/.;/../..;/private/x",
	} {
		t.Run(path, func(t *testing.T) {
			c := g.dial()
			c.send("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n")
			assertProblem(t, c.read("GET"), 400)
			if n, m := public.Requests(), private.Requests(); n+m != 0 {
				t.Fatalf("upstreams got %d and %d requests; want none", n, m)
			}
		})
	}
	// A parameter on an ordinary segment is an ordinary character.
	if r := g.get("/public/x;v=1/y"); r.status != 200 || r.echo(t).RequestURI != "/public/x;v=1/y" {
		t.Fatalf("path parameter on a plain segment: got %d %s", r.status, r.body)
	}
}
