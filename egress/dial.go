package egress

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/proxy/forward"
)

// permit travels in a forwarded request's context to the transport's
// dialer: the destination the checks allowed, and how.
type permit struct {
	d     destination
	exact bool
}

type permitKey struct{}

// dialPermitted is the http.Transport's DialContext: it dials only what a
// permit allows (the transport passes the request context's values on),
// never addr as such. A kept-alive connection serves later requests to
// the same host and port permitted by the same kind of rule (exact or
// not: Handler.transports).
func (h *Handler) dialPermitted(ctx context.Context, network, addr string) (net.Conn, error) {
	p, _ := ctx.Value(permitKey{}).(*permit)
	if p == nil {
		return nil, gatehouse.Internal(fmt.Errorf("egress dial of %s without a permit", addr))
	}
	return h.dial(ctx, p.d, p.exact)
}

// dial resolves d and connects to the first of its addresses that
// answers, within the dial timeout. Unless exact, an address of this
// machine is refused (403) before anything is dialed.
func (h *Handler) dial(ctx context.Context, d destination, exact bool) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, h.opts.DialTimeout)
	defer cancel()
	addrs := []netip.Addr{d.ip}
	if !d.ip.IsValid() {
		var err error
		if addrs, err = h.lookup(ctx, d.host); err != nil {
			return nil, forward.DialError(err)
		}
		if len(addrs) == 0 {
			return nil, forward.DialError(&net.DNSError{Err: "no addresses", Name: d.host, IsNotFound: true})
		}
	}
	if !exact {
		for _, a := range addrs {
			if h.guarded(a, d.port) {
				return nil, gatehouse.Errorf(gatehouse.EFORBIDDEN,
					"Egress to %s is not allowed: it leads to this gateway's own or loopback addresses, which only a rule naming the host exactly opens.", d)
			}
		}
	}
	var first error
	for _, a := range addrs {
		c, err := h.dialer.DialContext(ctx, "tcp", netip.AddrPortFrom(a.Unmap(), uint16(d.port)).String())
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, forward.DialError(first)
}

// guarded reports whether dialing a:port would reach this machine or its
// private surroundings: loopback, unspecified, link-local, private
// (RFC 1918, IPv6 unique-local, where AWS's IPv6 metadata endpoint is) and
// shared (100.64.0.0/10, where Alibaba's is) addresses, and the gateway's
// own listeners. A wildcard rule is for the outside world.
func (h *Handler) guarded(a netip.Addr, port int) bool {
	a = a.Unmap().WithZone("")
	if a.IsLoopback() || a.IsUnspecified() || a.IsLinkLocalUnicast() || a.IsPrivate() || sharedSpace.Contains(a) {
		return true
	}
	return h.self.has(a, port)
}

// sharedSpace is RFC 6598's carrier-grade NAT range.
var sharedSpace = netip.MustParsePrefix("100.64.0.0/10")

// selfAddrs are the gateway's own listening addresses.
type selfAddrs struct {
	exact map[netip.AddrPort]bool
	// anyPorts are the ports listened on at every local address, local
	// those addresses (read once, at New).
	anyPorts map[int]bool
	local    map[netip.Addr]bool
}

func (s *selfAddrs) has(a netip.Addr, port int) bool {
	return s.exact[netip.AddrPortFrom(a, uint16(port))] || s.anyPorts[port] && s.local[a]
}

func parseSelf(list []string) (selfAddrs, error) {
	s := selfAddrs{exact: map[netip.AddrPort]bool{}, anyPorts: map[int]bool{}, local: map[netip.Addr]bool{}}
	for _, addr := range list {
		host, port, err := net.SplitHostPort(addr)
		p, perr := strconv.Atoi(port)
		if err != nil || perr != nil || p < 0 || p > 65535 {
			return s, fmt.Errorf("egress: own listener address %q is not host:port", addr)
		}
		if p == 0 {
			continue
		}
		if host == "" {
			s.anyPorts[p] = true
			continue
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			// A name ("localhost:9080"): what it resolves to now.
			ips, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip", host)
			if err != nil {
				return s, fmt.Errorf("egress: own listener address %q: %w", addr, err)
			}
			for _, ip := range ips {
				s.exact[netip.AddrPortFrom(ip.Unmap(), uint16(p))] = true
			}
			continue
		}
		if ip.IsUnspecified() {
			s.anyPorts[p] = true
			continue
		}
		s.exact[netip.AddrPortFrom(ip.Unmap(), uint16(p))] = true
	}
	if len(s.anyPorts) > 0 {
		ifaddrs, err := net.InterfaceAddrs()
		if err != nil {
			return s, fmt.Errorf("egress: listing this machine's addresses: %w", err)
		}
		for _, ia := range ifaddrs {
			if pfx, err := netip.ParsePrefix(ia.String()); err == nil {
				s.local[pfx.Addr().Unmap()] = true
			}
		}
	}
	return s, nil
}

// classify turns a failure to reach d into the contract's error, by the
// data plane's one classifier (504 for a timeout, connecting or awaiting
// the response head; 502 for anything else). It reports gone, and no
// error, when the client went away: no answer is owed. An error that is
// a *gatehouse.Error already (the address guard's 403) is returned as it
// is.
func (h *Handler) classify(ctx context.Context, d destination, err error) (gerr error, gone bool) {
	gerr, gone = forward.ClassifyPeer(ctx, err, forward.Peer{Name: d.String(), Connect: h.opts.DialTimeout, Read: h.opts.ResponseHeaderTimeout})
	if !gone {
		h.opts.Logger.DebugContext(ctx, "egress destination failed", "destination", d.String(), "error", err)
	}
	return gerr, gone
}
