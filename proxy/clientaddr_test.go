package proxy

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestClientAddressIsTheNearestHopNotATrustedProxy(t *testing.T) {
	h := New(Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	defer h.Close()
	for _, tc := range []struct {
		desc, peer, xff, want string
	}{
		{"untrusted peer: the peer, whatever it claims", "192.0.2.1:5000", "198.51.100.7", "192.0.2.1"},
		{"trusted peer: the hop it names", "10.0.0.1:5000", "198.51.100.7", "198.51.100.7"},
		{"trusted chain: the nearest untrusted hop", "10.0.0.1:5000", "203.0.113.9, 198.51.100.7, 10.0.0.2", "198.51.100.7"},
		{"a hop with a port", "10.0.0.1:5000", "198.51.100.7:4711", "198.51.100.7"},
		{"an IPv6 hop with a port", "10.0.0.1:5000", "[2001:db8::1]:4711", "2001:db8::1"},
		{"an unreadable hop: unknown, not the trusted proxy", "10.0.0.1:5000", "unknown", "invalid IP"},
		{"trusted peer without the header: the peer", "10.0.0.1:5000", "", "10.0.0.1"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tc.peer, Header: http.Header{}}
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			if got := h.clientAddr(r).String(); got != tc.want {
				t.Fatalf("client %s; want %s", got, tc.want)
			}
		})
	}
}
