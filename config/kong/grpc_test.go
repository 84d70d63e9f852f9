package kong

import (
	"testing"

	"github.com/gatehouse/gatehouse"
)

// TestConvertMapsGRPCServicesToHTTP2: Kong's grpc and grpcs services
// become http and https services speaking HTTP/2, and routes serving
// grpc or grpcs are kept, as the http and https listeners those come in
// on.
func TestConvertMapsGRPCServicesToHTTP2(t *testing.T) {
	in := `_format_version: "3.0"
services:
- name: greeter
  url: grpc://greeter.internal:9000
  routes:
  - name: greet
    protocols: [grpc, grpcs]
    paths: [/helloworld.Greeter]
- name: billing
  protocol: grpcs
  host: billing.internal
  port: 443
  routes:
  - name: bill
    protocols: [grpcs]
    paths: [/billing.Billing]
- name: web
  url: http://web.internal
  routes:
  - name: site
    paths: [/]
`
	doc, dropped := convert(t, in)
	want := map[string]struct{ url, protocol string }{
		"greeter": {"http://greeter.internal:9000", gatehouse.ProtocolHTTP2},
		"billing": {"https://billing.internal", gatehouse.ProtocolHTTP2},
		"web":     {"http://web.internal", gatehouse.ProtocolHTTP1},
	}
	for _, s := range doc.Services {
		w, ok := want[s.Name]
		if !ok {
			t.Errorf("unexpected service %q", s.Name)
			continue
		}
		if s.URL != w.url || s.Protocol != w.protocol {
			t.Errorf("service %s: url %q protocol %q; want %q %q", s.Name, s.URL, s.Protocol, w.url, w.protocol)
		}
		delete(want, s.Name)
	}
	if len(want) > 0 {
		t.Errorf("services missing: %v", want)
	}
	if got := routeNames(doc); len(got) != 3 {
		t.Errorf("routes %v; want greet, bill and site", got)
	}
	// A gRPC method's path reaches the upstream whole, as in Kong, whose
	// grpc routes default strip_path to false; an http route keeps
	// Kong's default, true.
	for _, r := range doc.Routes {
		if want := r.Name == "site"; r.StripPath != want {
			t.Errorf("route %s: strip_path %v; want %v", r.Name, r.StripPath, want)
		}
	}
	// grpcs alone is https alone: the one drop is the listener note.
	if len(dropped) != 1 || dropped[0].Path != "services[1].routes[0].protocols" {
		t.Errorf("dropped %+v; want only services[1].routes[0].protocols", dropped)
	}
}
