package egress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"syscall"

	"github.com/gatehouse/gatehouse"
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

// dialError marks a failure to connect (resolving included): nothing
// was sent.
type dialError struct{ err error }

func (e *dialError) Error() string { return "dial: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

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
			return nil, &dialError{err}
		}
		if len(addrs) == 0 {
			return nil, &dialError{&net.DNSError{Err: "no addresses", Name: d.host, IsNotFound: true}}
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
	return nil, &dialError{first}
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

// classify turns a failure to reach d into the contract's error: 504 for
// a timeout (connecting or awaiting the response head), 502 for anything
// else. It reports gone, and no error, when the client went away: no
// answer is owed. An error that is a *gatehouse.Error already (the
// address guard's 403) is returned as it is.
func (h *Handler) classify(ctx context.Context, d destination, err error) (gerr error, gone bool) {
	if errors.Is(ctx.Err(), context.Canceled) {
		return nil, true
	}
	var ge *gatehouse.Error
	if errors.As(err, &ge) {
		return ge, false
	}
	var de *dialError
	var ne net.Error
	var dns *net.DNSError
	dialing := errors.As(err, &de)
	timeout := errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
	e := &gatehouse.Error{Code: gatehouse.EBADGATEWAY, Err: err}
	switch {
	case timeout && dialing:
		e.Code, e.Message = gatehouse.EGATEWAYTIMEOUT, fmt.Sprintf("%s could not be connected to within %v.", d, h.opts.DialTimeout)
	case timeout:
		e.Code, e.Message = gatehouse.EGATEWAYTIMEOUT, fmt.Sprintf("%s did not answer within %v.", d, h.opts.ResponseHeaderTimeout)
	case errors.As(err, &dns):
		e.Message = fmt.Sprintf("The host %s could not be resolved.", d.host)
	case errors.Is(err, syscall.ECONNREFUSED):
		e.Message = fmt.Sprintf("%s refused the connection.", d)
	case dialing:
		e.Message = fmt.Sprintf("%s could not be connected to.", d)
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF):
		e.Message = fmt.Sprintf("%s closed the connection without answering.", d)
	default:
		e.Message = fmt.Sprintf("%s did not answer with valid HTTP.", d)
	}
	h.opts.Logger.DebugContext(ctx, "egress destination failed", "destination", d.String(), "error", err)
	return e, false
}
