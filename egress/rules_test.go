package egress

import (
	"net/netip"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/policy"
)

func TestRuleMatching(t *testing.T) {
	set := &policy.Set{Egress: []*gatehouse.EgressConfig{{Allow: []gatehouse.EgressRule{
		{Host: "api.example.com", Ports: []int{443}},
		{Host: "*.svc.example.com", Ports: []int{80, 443}},
		{Host: "10.0.0.7", Ports: []int{8080}},
		{Host: "*.0.0.10", Ports: []int{8080}},
	}}}}
	rs := compileRules(set)
	anyone := &policy.Consumer{ID: "c", Name: "c"}
	for _, tc := range []struct {
		host, port string
		allowed    bool
		exact      bool
	}{
		{"api.example.com", "443", true, true},
		{"API.Example.COM.", "443", true, true}, // case and a trailing dot do not matter
		{"api.example.com", "80", false, false},
		{"example.com", "443", false, false},
		{"a.svc.example.com", "80", true, false},
		{"a.b.svc.example.com", "443", true, false}, // any depth below the domain
		{"svc.example.com", "443", false, false},    // not the domain itself
		{"evilsvc.example.com", "443", false, false},
		{"10.0.0.7", "8080", true, true},
		{"::ffff:10.0.0.7", "8080", true, true}, // the same address, mapped
		{"10.0.0.7", "80", false, false},
		{"10.0.0.8", "8080", false, false},
		{"10.0.0.10", "8080", false, false}, // a wildcard never matches an address
	} {
		d, err := newDestination(tc.host, tc.port)
		if err != nil {
			t.Fatalf("%s:%s: %v", tc.host, tc.port, err)
		}
		exact, err := rs.allow(anyone, d)
		if allowed := err == nil; allowed != tc.allowed || exact != tc.exact {
			t.Errorf("%s:%s: got allowed %v, exact %v (%v); want %v, %v", tc.host, tc.port, allowed, exact, err, tc.allowed, tc.exact)
		}
	}
}

func TestGuardedAddressesAreThisMachines(t *testing.T) {
	h, err := New(func() *policy.Set { return nil }, Options{Self: []string{"192.0.2.1:9080", ":8080", "0.0.0.0:8443", "127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	// An interface address, as New would have read it.
	h.self.local[netip.MustParseAddr("198.51.100.5")] = true
	for _, tc := range []struct {
		addr    string
		port    int
		guarded bool
	}{
		{"127.0.0.1", 80, true},
		{"127.8.9.10", 80, true},
		{"::1", 443, true},
		{"::ffff:127.0.0.1", 443, true},
		{"0.0.0.0", 80, true},
		{"169.254.169.254", 80, true}, // cloud metadata
		{"fe80::1", 80, true},
		{"192.0.2.1", 9080, true}, // a listener's own address
		{"192.0.2.1", 9081, false},
		{"198.51.100.5", 8080, true}, // a listener on every address
		{"198.51.100.5", 8443, true},
		{"198.51.100.5", 443, false},
		{"198.51.100.6", 8080, false},
		{"10.0.0.1", 8080, true},      // private
		{"fd00:ec2::254", 80, true},   // AWS's IPv6 metadata endpoint (unique-local)
		{"100.100.100.200", 80, true}, // Alibaba's metadata endpoint (shared space)
		{"203.0.113.7", 8080, false},  // anywhere else
	} {
		if got := h.guarded(netip.MustParseAddr(tc.addr), tc.port); got != tc.guarded {
			t.Errorf("%s port %d: guarded %v; want %v", tc.addr, tc.port, got, tc.guarded)
		}
	}
	if _, err := New(func() *policy.Set { return nil }, Options{Self: []string{"8080"}}); err == nil {
		t.Error("New accepted an own address without a port")
	}
}
