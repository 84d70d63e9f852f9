package policy

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"net/textproto"

	"github.com/gatehouse/gatehouse"
)

func init() { register(gatehouse.PolicyTrafficSplit, buildSplit) }

// Split is a route's compiled traffic-split policy
// (gatehouse.TrafficSplitConfig). It refuses nothing: it sets
// Request.ServiceID to the service that is to answer, and the data plane
// forwards to that service's pool. The route's own policies (this chain)
// apply whichever service answers.
type Split struct {
	// shares are the listed services with the end of each one's share:
	// a draw n in [0, SplitScale) goes to the first whose upto is over n,
	// else to the route's own service.
	shares []share
	// pins are the pin values, each with its service.
	pins      []pin
	pinHeader string // canonical; "" if none
	pinCookie string // "" if none
	sticky    string
	// draw is the unsticky draw in [0, SplitScale); tests replace it.
	draw func() uint32
}

type share struct {
	service string
	upto    uint32
}

type pin struct{ value, service string }

func buildSplit(b *Build, pols []*gatehouse.Policy) (Step, error) {
	// One answer has one upstream: two splits at one level would have to
	// share out what each already shares out.
	if len(pols) > 1 {
		return nil, fmt.Errorf("policies %q and %q are both traffic splits at one level; a route follows one", pols[0].ID, pols[1].ID)
	}
	if pols[0].Global {
		return nil, fmt.Errorf("policy %q: a traffic split cannot be global", pols[0].ID)
	}
	cfgs, err := configs[gatehouse.TrafficSplitConfig](pols)
	if err != nil {
		return nil, err
	}
	cfg := cfgs[0]
	for _, s := range cfg.Services {
		if !b.HasService(s.ServiceID) {
			return nil, fmt.Errorf("policy %q sends traffic to service %q, which is not in the revision", pols[0].ID, s.ServiceID)
		}
	}
	return NewSplit(cfg), nil
}

// NewSplit compiles a valid traffic-split config.
func NewSplit(cfg *gatehouse.TrafficSplitConfig) *Split {
	s := &Split{sticky: cfg.Sticky, pinCookie: cfg.PinCookie, draw: randomDraw}
	if cfg.PinHeader != "" {
		s.pinHeader = textproto.CanonicalMIMEHeaderKey(cfg.PinHeader)
	}
	var upto uint32
	for _, svc := range cfg.Services {
		upto += uint32(svc.BasisPoints())
		s.shares = append(s.shares, share{service: svc.ServiceID, upto: upto})
		if svc.Pin != "" {
			s.pins = append(s.pins, pin{value: svc.Pin, service: svc.ServiceID})
		}
	}
	return s
}

func randomDraw() uint32 { return rand.Uint32N(gatehouse.SplitScale) }

// Check chooses the service: the one the request pins, else the one its
// draw falls to; the route's own (Request.ServiceID as it came) if none.
func (s *Split) Check(r *Request) error {
	if svc, ok := s.pinned(r); ok {
		r.ServiceID = svc
		return nil
	}
	n := s.choose(r)
	for _, sh := range s.shares {
		if n < sh.upto {
			r.ServiceID = sh.service
			return nil
		}
	}
	return nil
}

// pinned returns the service the request's pin names, if it names one:
// the header's value first, then the cookie's. An unknown value pins
// nothing.
func (s *Split) pinned(r *Request) (string, bool) {
	if s.pinHeader != "" {
		if v := r.R.Header[s.pinHeader]; len(v) > 0 {
			if svc, ok := s.pin(v[0]); ok {
				return svc, true
			}
		}
	}
	if s.pinCookie != "" {
		if c, err := r.R.Cookie(s.pinCookie); err == nil {
			return s.pin(c.Value)
		}
	}
	return "", false
}

func (s *Split) pin(v string) (string, bool) {
	for _, p := range s.pins {
		if p.value == v {
			return p.service, true
		}
	}
	return "", false
}

// choose draws the request's place in [0, SplitScale): by chance, or a
// hash of its sticky key. The hash is FNV-1a (64 bits), the same on every
// node and every run, so a consumer lands alike wherever it is served;
// and since the shares are cut from 0 upwards, raising a share keeps the
// keys it held.
func (s *Split) choose(r *Request) uint32 {
	switch s.sticky {
	case gatehouse.StickyConsumer:
		if r.Consumer != nil {
			return StickyDraw(r.Consumer.ID)
		}
		return stickyAddr(r)
	case gatehouse.StickyClient:
		return stickyAddr(r)
	}
	return s.draw()
}

func stickyAddr(r *Request) uint32 { return DrawAddr(r.Client) }

// DrawAddr is the sticky draw of a client's address: FNV-1a of its
// 16-byte form (an IPv4 address mapped into IPv6), modulo
// gatehouse.SplitScale.
func DrawAddr(a netip.Addr) uint32 {
	b := a.Unmap().As16()
	return draw(b[:])
}

// StickyDraw is the draw of a sticky key (a consumer's id): FNV-1a of its
// bytes, modulo gatehouse.SplitScale.
func StickyDraw(key string) uint32 { return draw(key) }

// draw is FNV-1a (64 bits) of b, modulo gatehouse.SplitScale: written out
// rather than hash/fnv's, which would put a hasher on the heap per
// request, and generic so that a key string is hashed without a copy.
func draw[T string | []byte](b T) uint32 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(b); i++ {
		h ^= uint64(b[i])
		h *= prime
	}
	return uint32(h % gatehouse.SplitScale)
}

// Services returns the services the route's traffic split may send to
// besides the route's own, nil if it has none: the data plane resolves
// their metrics once.
func (c *Chain) Services() []string {
	if c == nil || c.split == nil {
		return nil
	}
	out := make([]string, 0, len(c.split.shares))
	for _, sh := range c.split.shares {
		out = append(out, sh.service)
	}
	return out
}
