package proxy

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testupstream"
)

// TestInvalidHostIs400AndNeverReachesACatchAllRoute: a Host that names no
// host (a second port, an empty label, a character no host name has) is a
// 400 problem; it neither falls through to a catch-all route nor travels
// upstream in X-Forwarded-Host. Valid spellings still route.
func TestInvalidHostIs400AndNeverReachesACatchAllRoute(t *testing.T) {
	admin, public := testupstream.Start(t), testupstream.Start(t)
	g := newGateway(t)
	g.serviceRoutes(map[string]*testupstream.Upstream{"admin": admin, "public": public},
		`{"id":"admin","service_id":"admin","hosts":["admin.example.com"],"paths":["/*"]}`,
		`{"id":"any","service_id":"public","paths":["/*"]}`)
	for _, tc := range []struct {
		host string
		want int
		up   *testupstream.Upstream
	}{
		{"admin.example.com:80:80", 400, nil},
		{"admin.example.com:", 400, nil},
		{"admin.example.com:99999", 400, nil},
		{"admin.example.com:8o", 400, nil},
		{"admin..example.com", 400, nil},
		{".admin.example.com", 400, nil},
		{"admin_x.example.com", 400, nil},
		{"adm%69n.example.com", 400, nil},
		{"user@admin.example.com", 400, nil},
		{"[::1", 400, nil},
		{"admin.example.com", 200, admin},
		{"ADMIN.example.com.:8080", 200, admin},
		{"other.example.com", 200, public},
		{"[::1]:8080", 200, public},
		{"127.0.0.1", 200, public},
	} {
		t.Run(tc.host, func(t *testing.T) {
			admin.Reset()
			public.Reset()
			c := g.dial()
			c.send("GET /x HTTP/1.1\r\nHost: " + tc.host + "\r\n\r\n")
			r := c.read("GET")
			if tc.want == http.StatusBadRequest {
				assertProblem(t, r, http.StatusBadRequest)
			} else if r.status != tc.want {
				t.Fatalf("got %d; want %d", r.status, tc.want)
			}
			for _, up := range []*testupstream.Upstream{admin, public} {
				if n, want := up.Requests(), map[bool]int64{true: 1}[up == tc.up]; n != want {
					t.Fatalf("%s upstream got %d requests; want %d", map[bool]string{true: "admin", false: "public"}[up == admin], n, want)
				}
			}
		})
	}
}

// TestHTTP10RequestWithoutHostIsServed: HTTP/1.0 has no Host; an absent
// one is not an invalid one.
func TestHTTP10RequestWithoutHostIsServed(t *testing.T) {
	up := testupstream.Start(t)
	g := newGateway(t)
	g.route(up.URL, "", "")
	c := g.dial()
	c.send("GET /x HTTP/1.0\r\n\r\n")
	if r := c.read("GET"); r.status != http.StatusOK {
		t.Fatalf("got %d; want 200", r.status)
	}
}

// serviceRoutes applies a revision with a service per upstream, its id and
// name the key, and the routes given as JSON.
func (g *gateway) serviceRoutes(ups map[string]*testupstream.Upstream, routes ...string) {
	g.t.Helper()
	var services []string
	for id, up := range ups {
		services = append(services, fmt.Sprintf(`{"id":%q,"name":%q,"url":%q}`, id, id, up.URL))
	}
	g.apply(revision(g.t, 1, services, routes))
}
