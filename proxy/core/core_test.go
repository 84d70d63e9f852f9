package core

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/problem"
)

func compile(t testing.TB, routes ...string) *Config {
	t.Helper()
	rev := &gatehouse.Revision{Number: 3, Services: []*gatehouse.Service{{Meta: gatehouse.Meta{ID: "s"}}}}
	for _, r := range routes {
		rt := gatehouse.NewRoute()
		if err := json.Unmarshal([]byte(r), rt); err != nil {
			t.Fatal(err)
		}
		rt.ServiceID = "s"
		rev.Routes = append(rev.Routes, rt)
	}
	cfg, err := Compile(rev, Options{MaxBodyBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestDecideAnswersFromTheRequestHeadAlone(t *testing.T) {
	cfg := compile(t,
		`{"id":"items","paths":["/items/{id}"],"methods":["GET","PUT"]}`,
		`{"id":"api","paths":["/api/*"],"strip_path":true,"max_body_bytes":10}`,
		`{"id":"host","hosts":["*.example.com"],"paths":["/"]}`,
	)
	tests := []struct {
		desc          string
		req           Request
		status        int
		route, path   string
		allow, params string
	}{
		{desc: "unknown method", req: Request{Method: "BREW", Path: "/items/1"}, status: 501},
		{desc: "path climbing above the root", req: Request{Method: "GET", Path: "/../etc"}, status: 400},
		{desc: "path not in origin form", req: Request{Method: "GET", Path: "*"}, status: 400},
		{desc: "no route", req: Request{Method: "GET", Path: "/nothing"}, status: 404},
		{desc: "method not allowed", req: Request{Method: "DELETE", Path: "/items/1"}, status: 405, allow: "GET, HEAD, PUT"},
		{desc: "declared body over the route's limit", req: Request{Method: "POST", Path: "/api/x", ContentLength: 11}, status: 413},
		{desc: "declared body over the default limit", req: Request{Method: "PUT", Path: "/items/1", ContentLength: 101}, status: 413},
		{desc: "unknown length is checked while streaming", req: Request{Method: "PUT", Path: "/items/1", ContentLength: -1}, route: "items", path: "/items/1", params: "[{id 1}]"},
		{desc: "params", req: Request{Method: "GET", Path: "/items/a%2Fb"}, route: "items", path: "/items/a%2Fb", params: "[{id a/b}]"},
		{desc: "strip path", req: Request{Method: "GET", Path: "/api/v1/x"}, route: "api", path: "/v1/x"},
		{desc: "strip path to the root", req: Request{Method: "GET", Path: "/api/"}, route: "api", path: "/"},
		{desc: "CONNECT is not for a reverse proxy", req: Request{Method: "CONNECT", Path: ""}, status: 501},
		{desc: "dot segments resolved before matching", req: Request{Method: "GET", Path: "/api/../items/7"}, route: "items", path: "/items/7", params: "[{id 7}]"},
		{desc: "host with port and case", req: Request{Method: "GET", Host: "Shop.Example.COM:8443", Path: "/"}, route: "host", path: "/"},
	}
	var d Decision
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			cfg.Decide(&tc.req, &d)
			if tc.status != 0 {
				if got := problem.Status(gatehouse.ErrorCode(d.Err)); d.Err == nil || got != tc.status {
					t.Fatalf("got %v (status %d); want %d", d.Err, got, tc.status)
				}
				if d.Allow != tc.allow {
					t.Fatalf("got Allow %q; want %q", d.Allow, tc.allow)
				}
				return
			}
			if d.Err != nil {
				t.Fatalf("got %v; want route %s", d.Err, tc.route)
			}
			if d.Route.ID != tc.route || d.Path != tc.path {
				t.Fatalf("got route %s path %q; want %s %q", d.Route.ID, d.Path, tc.route, tc.path)
			}
			if tc.params != "" && fmt.Sprint(d.Params) != tc.params {
				t.Fatalf("got params %v; want %s", d.Params, tc.params)
			}
		})
	}
}

func TestCompileRefusesWhatCannotBeServed(t *testing.T) {
	rev := &gatehouse.Revision{Number: 1, Routes: []*gatehouse.Route{{Meta: gatehouse.Meta{ID: "r"}, ServiceID: "gone", Paths: []string{"/"}}}}
	if _, err := Compile(rev, Options{}); err == nil || !strings.Contains(err.Error(), `"gone"`) {
		t.Fatalf("route with a missing service: got %v; want an error naming it", err)
	}
	rev = &gatehouse.Revision{Number: 1, Services: []*gatehouse.Service{{Meta: gatehouse.Meta{ID: "s"}}},
		Routes: []*gatehouse.Route{{Meta: gatehouse.Meta{ID: "bad"}, ServiceID: "s", Paths: []string{"/a/{id"}}}}
	if _, err := Compile(rev, Options{}); err == nil || !strings.Contains(err.Error(), `route "bad"`) {
		t.Fatalf("pattern that does not compile: got %v; want an error naming the route", err)
	}
}

func TestCleanPath(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"/", "/", true},
		{"/a/b", "/a/b", true},
		{"/a/./b", "/a/b", true},
		{"/a/../b", "/b", true},
		{"/a/b/..", "/a/", true},
		{"/a/b/.", "/a/b/", true},
		{"/a/%2e%2E/b", "/b", true},
		{"/a/%2e/b", "/a/b", true},
		{"/a/...", "/a/...", true},
		{"/a/.b", "/a/.b", true},
		{"/a/..%2Fsecret", "", false},
		{"/a/..%5csecret", "", false},
		{"/a/%2e%2e%2Fsecret", "", false},
		{"/a/x%2F..", "", false},
		{"/a/..\\secret", "", false},
		{"/a/x%2Fy", "/a/x%2Fy", true},
		{"/public/..;/private/x", "", false},
		{"/a/..;x/b", "", false},
		{"/a/.;/b", "", false},
		{"/a/%2e%2e;/b", "", false},
		{"/a/%2E.;jsessionid=1/b", "", false},
		{"/a/..%3B/b", "", false},
		{"/a/.%3bx", "", false},
		{"/a/x;..", "", false},
		{"/a/x;y/b", "/a/x;y/b", true},
		{"/a/...;x", "/a/...;x", true},
		{"/a/;/b", "/a/;/b", true},
		{"/a/...%2Fx", "/a/...%2Fx", true},
		{"/..", "", false},
		{"/a/../../b", "", false},
		{"", "", false},
		{"a/b", "", false},
	} {
		got, ok := CleanPath(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("CleanPath(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzCleanPath: a path CleanPath accepts comes out rooted, with no
// segment that any server behind us could take for a dot segment, and
// cleaning it again changes nothing.
func FuzzCleanPath(f *testing.F) {
	for _, seed := range []string{"/a/../b", "/public/..;/private/x", "/a/%2E.;jsessionid=1/b",
		"/a/..%2Fx", "/a/x%5C..", "/a/.%3bx", "/a/x;y/./b", "/a/..\\b", "/%2e%2e/x"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, p string) {
		out, ok := CleanPath(p)
		if !ok {
			return
		}
		if !strings.HasPrefix(out, "/") {
			t.Fatalf("CleanPath(%q) = %q: not rooted", p, out)
		}
		for seg := range strings.SplitSeq(out[1:], "/") {
			if dots(seg) != 0 {
				t.Fatalf("CleanPath(%q) = %q keeps the dot segment %q", p, out, seg)
			}
			lower := strings.ToLower(seg)
			for _, sep := range []string{";", "\\", "%2f", "%5c", "%3b"} {
				lower = strings.ReplaceAll(lower, sep, "/")
			}
			for part := range strings.SplitSeq(strings.ReplaceAll(lower, "%2e", "."), "/") {
				if part == "." || part == ".." {
					t.Fatalf("CleanPath(%q) = %q hides the dot segment %q in %q", p, out, part, seg)
				}
			}
		}
		if again, ok := CleanPath(out); !ok || again != out {
			t.Fatalf("CleanPath(%q) = %q, but cleaning that gives %q, %v", p, out, again, ok)
		}
	})
}

func TestHost(t *testing.T) {
	for in, want := range map[string]string{
		"example.com":        "example.com",
		"Example.COM:8080":   "example.com",
		"example.com.":       "example.com",
		"[::1]:443":          "::1",
		"[2001:db8::1]":      "2001:db8::1",
		"127.0.0.1:80":       "127.0.0.1",
		"":                   "",
		"API.example.com.:1": "api.example.com",
	} {
		if got := Host(in); got != want {
			t.Errorf("Host(%q) = %q; want %q", in, got, want)
		}
	}
}

// BenchmarkDecide is the decision alone, per request: it must not
// allocate for a plain match.
func BenchmarkDecide(b *testing.B) {
	cfg := compile(b, `{"id":"api","paths":["/api/*"]}`, `{"id":"items","paths":["/items/{id}"]}`)
	req := Request{Method: "GET", Host: "gw.example.com", Path: "/api/v1/users", ContentLength: 0}
	var d Decision
	b.ReportAllocs()
	for b.Loop() {
		cfg.Decide(&req, &d)
	}
	if d.Err != nil || d.Route.ID != "api" {
		b.Fatalf("got %v", d.Err)
	}
}
