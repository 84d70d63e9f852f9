package policy

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// splitRevision is services stable, canary and beta, a route r on stable
// and the policies given, listed on the route (onRoute) or on stable.
func splitRevision(t *testing.T, onRoute bool, policies ...string) *gatehouse.Revision {
	t.Helper()
	rev := &gatehouse.Revision{Number: 1}
	for _, id := range []string{"stable", "canary", "beta"} {
		s := gatehouse.NewService()
		s.ID, s.Name, s.URL = id, id, "http://127.0.0.1:1"
		rev.Services = append(rev.Services, s)
	}
	r := gatehouse.NewRoute()
	r.ID, r.ServiceID, r.Paths = "r", "stable", []string{"/*"}
	rev.Routes = append(rev.Routes, r)
	for i, js := range policies {
		p := testPolicy(t, js, "p"+string(rune('0'+i)))
		rev.Policies = append(rev.Policies, p)
		if onRoute {
			r.Policies = append(r.Policies, p.ID)
		} else {
			rev.Services[0].Policies = append(rev.Services[0].Policies, p.ID)
		}
	}
	return rev
}

// A deploy refuses what a write could not see: a split or a mirror
// naming a service the revision lacks (a configuration file's), and two
// splits at one level (one answer has one upstream).
func TestCompileRefusesSplitsItCannotFollow(t *testing.T) {
	for _, tc := range []struct {
		desc     string
		onRoute  bool
		policies []string
		want     string
	}{
		{"a split to a missing service", true, []string{`{"type":"traffic-split","config":{"services":[{"service_id":"gone","percent":5}]}}`},
			`service "gone", which is not in the revision`},
		{"a mirror to a missing service", true, []string{`{"type":"mirror","config":{"service_id":"gone"}}`},
			`service "gone", which is not in the revision`},
		{"two splits on a route", true, []string{`{"type":"traffic-split","config":{"services":[{"service_id":"canary","percent":5}]}}`,
			`{"type":"traffic-split","config":{"services":[{"service_id":"beta","percent":5}]}}`}, "both traffic splits at one level"},
		{"two splits on a service", false, []string{`{"type":"traffic-split","config":{"services":[{"service_id":"canary","percent":5}]}}`,
			`{"type":"traffic-split","config":{"services":[{"service_id":"beta","percent":5}]}}`}, "both traffic splits at one level"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := Compile(splitRevision(t, tc.onRoute, tc.policies...), &Env{State: NewState()})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v; want an error saying %q", err, tc.want)
			}
		})
	}
}

// A route's own split wins over its service's, as for every type; two
// mirrors at one level both copy.
func TestSplitAndMirrorFollowThePolicyLevels(t *testing.T) {
	rev := splitRevision(t, false, `{"type":"traffic-split","config":{"services":[{"service_id":"canary","percent":100}]}}`,
		`{"type":"mirror","config":{"service_id":"beta"}}`, `{"type":"mirror","config":{"service_id":"canary"}}`)
	own := testPolicy(t, `{"type":"traffic-split","config":{"services":[{"service_id":"beta","percent":100}]}}`, "own")
	rev.Policies = append(rev.Policies, own)
	set, err := Compile(rev, &Env{State: NewState()})
	if err != nil {
		t.Fatal(err)
	}
	pr := runSplit(t, set.Chain("r"), httptest.NewRequest("GET", "/", nil))
	if pr.ServiceID != "canary" || len(pr.Mirrors) != 2 {
		t.Fatalf("service's split: service %q, %d mirrors; want canary and 2", pr.ServiceID, len(pr.Mirrors))
	}
	rev.Routes[0].Policies = []string{"own"}
	if set, err = Compile(rev, &Env{State: NewState()}); err != nil {
		t.Fatal(err)
	}
	// Levels are per type: the route has no mirror, so its service's hold.
	if pr := runSplit(t, set.Chain("r"), httptest.NewRequest("GET", "/", nil)); pr.ServiceID != "beta" || len(pr.Mirrors) != 2 {
		t.Fatalf("route's own split: service %q, %d mirrors; want beta and the service's 2", pr.ServiceID, len(pr.Mirrors))
	}
}

func runSplit(t *testing.T, chain *Chain, r *http.Request) *Request {
	t.Helper()
	pr := &Request{W: httptest.NewRecorder(), R: r, RouteID: "r", ServiceID: "stable", Client: netip.MustParseAddr("192.0.2.1")}
	if err := chain.Run(pr); err != nil {
		t.Fatal(err)
	}
	return pr
}

// The shares are cut from 0 upwards in the order listed, the route's own
// service taking the rest; a pin by header, then by cookie, wins.
func TestSplitChoosesByPinThenDraw(t *testing.T) {
	s := NewSplit(&gatehouse.TrafficSplitConfig{Services: []gatehouse.SplitService{
		{ServiceID: "canary", Percent: 5, Pin: "c"}, {ServiceID: "beta", Percent: 10.5}, {ServiceID: "stable", Percent: 0.01, Pin: "s"}},
		PinHeader: "x-pin", PinCookie: "pin", Sticky: gatehouse.StickyNone})
	for _, tc := range []struct {
		desc   string
		draw   uint32
		header []string // field, value pairs
		want   string
	}{
		{"first share's start", 0, nil, "canary"},
		{"first share's end", 499, nil, "canary"},
		{"second share", 500, nil, "beta"},
		{"second share's end", 1549, nil, "beta"},
		{"a listed route's own service", 1550, nil, "stable"},
		{"the rest", 1551, nil, "stable"},
		{"the last draw", 9999, nil, "stable"},
		{"a pin in the header", 9999, []string{"X-Pin", "c"}, "canary"},
		{"a pin back to the route's own", 0, []string{"X-Pin", "s"}, "stable"},
		{"a pin in a cookie", 9999, []string{"Cookie", "a=1; pin=c"}, "canary"},
		{"the header's pin before the cookie's", 9999, []string{"X-Pin", "s", "Cookie", "pin=c"}, "stable"},
		{"an unknown pin draws", 0, []string{"X-Pin", "nobody", "Cookie", "pin=other"}, "canary"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			s.draw = func() uint32 { return tc.draw }
			r := httptest.NewRequest("GET", "/", nil)
			for i := 0; i+1 < len(tc.header); i += 2 {
				r.Header.Add(tc.header[i], tc.header[i+1])
			}
			pr := &Request{R: r, ServiceID: "stable"}
			if err := s.Check(pr); err != nil {
				t.Fatal(err)
			}
			if pr.ServiceID != tc.want {
				t.Fatalf("got %q; want %q", pr.ServiceID, tc.want)
			}
		})
	}
}

// A sticky draw is FNV-1a (64 bits) of the key: fixed values, so that
// every node, and every release, chooses alike.
func TestStickyDrawsAreFNV1a(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want uint32
	}{
		// FNV-1a-64("") = 0xcbf29ce484222325; ("a") = 0xaf63dc4c8601ec8c.
		{"", uint32(0xcbf29ce484222325 % 10000)},
		{"a", uint32(0xaf63dc4c8601ec8c % 10000)},
	} {
		if got := StickyDraw(tc.key); got != tc.want {
			t.Errorf("StickyDraw(%q) = %d; want %d", tc.key, got, tc.want)
		}
	}
	v4, mapped := DrawAddr(netip.MustParseAddr("192.0.2.1")), DrawAddr(netip.MustParseAddr("::ffff:192.0.2.1"))
	if v4 != mapped {
		t.Errorf("an IPv4 address draws %d, its IPv6-mapped form %d; want one draw", v4, mapped)
	}
}
