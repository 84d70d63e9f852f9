package gatehouse

import (
	"encoding/json"
	"fmt"
	"math"
)

// Policy types that choose, or copy to, another service than the route's.
const (
	PolicyTrafficSplit = "traffic-split"
	PolicyMirror       = "mirror"
)

// TrafficSplitConfig sends a share of a route's requests to other
// services than the route's own (a canary): on a route, or on a service
// for every route of it. The route's policies are the route's whichever
// service answers; the chosen service's own policies do not apply. It
// refuses nothing, and is never global: it names services, which only
// routes have.
//
// A request goes to the listed service whose pin equals the request's
// pin_header or pin_cookie value (testers pin themselves); else to the
// service whose share its draw falls in, the listed ones in order, the
// route's own service taking what they leave.
type TrafficSplitConfig struct {
	// Services are the services that take a share, in order; at most
	// MaxSplitServices, each once. The route's own may be among them, so
	// that a pin can name it.
	Services []SplitService `json:"services"`
	// PinHeader and PinCookie name the request header field and the
	// cookie whose value may pin a request to a service; "" (default):
	// not read. A pin needs at least one of them.
	PinHeader string `json:"pin_header"`
	PinCookie string `json:"pin_cookie"`
	// Sticky is what the draw follows: "none" (default), a new draw per
	// request; "consumer", the authenticated consumer's id (the client's
	// address for a request without one); "client", the client's address
	// as the trusted proxies let it be seen. A sticky draw is a hash of
	// the key that every node computes alike, so that raising a share
	// keeps the keys the smaller share held.
	Sticky string `json:"sticky"`
}

// SplitService is one service's share of a traffic-split policy.
type SplitService struct {
	ServiceID string `json:"service_id"`
	// Percent is the share of requests, over 0 and at most 100, with at
	// most two decimals (0.05 is one request in 2000). The shares sum to
	// at most 100.
	Percent float64 `json:"percent"`
	// Pin, if set, is the pin_header or pin_cookie value that sends a
	// request to this service whatever the shares: 1 to 64 letters,
	// digits, '.', '-' or '_'.
	Pin string `json:"pin"`
}

// Sticky choices of a traffic-split policy.
const (
	StickyNone     = "none"
	StickyConsumer = "consumer"
	StickyClient   = "client"
)

// SplitScale is the resolution of traffic-split shares: a share is a
// number of parts in SplitScale (basis points, 1/10000).
const SplitScale = 10000

// MaxSplitServices bounds the services of a traffic-split policy.
const MaxSplitServices = 16

// BasisPoints is the share in parts of SplitScale (a valid Percent has
// at most two decimals).
func (s SplitService) BasisPoints() int { return int(math.Round(s.Percent * 100)) }

func (c *TrafficSplitConfig) SetDefaults() {
	*c = TrafficSplitConfig{Services: []SplitService{}, Sticky: StickyNone}
}

// MirrorConfig copies a share of a route's requests to a shadow service,
// once every other policy let them on and as the upstream gets them
// (path, query and header after a transform, the body within
// max_body_bytes). The shadow's answer is read and thrown away; its
// failures and slowness never reach the client's answer, which the
// primary exchange alone decides. Several mirror policies at one level
// all copy. It may be global (copy everything to a recorder).
type MirrorConfig struct {
	ServiceID string `json:"service_id"`
	// Percent is the share of requests copied, over 0 and at most 100,
	// with at most two decimals; default 100 (all).
	Percent float64 `json:"percent"`
	// MaxBodyBytes bounds the request body copied, in bytes: a request
	// with a longer body is not mirrored (and is counted so). Default
	// 65536, at most 16 MiB; 0 mirrors only requests without a body.
	MaxBodyBytes int64 `json:"max_body_bytes"`
	// MaxConcurrent bounds the shadow requests in flight for this policy
	// on one route; more are dropped (and counted). Default 32, at most
	// 1024.
	MaxConcurrent int `json:"max_concurrent"`
}

func (c *MirrorConfig) SetDefaults() {
	*c = MirrorConfig{Percent: 100, MaxBodyBytes: 64 << 10, MaxConcurrent: 32}
}

// BasisPoints is the share copied in parts of SplitScale.
func (c *MirrorConfig) BasisPoints() int { return int(math.Round(c.Percent * 100)) }

// MaxMirrorBodyBytes bounds a mirror's max_body_bytes: each copied body
// is held in memory until the primary's has been read.
const MaxMirrorBodyBytes = 16 << 20

func init() {
	registerPolicyType(PolicyTrafficSplit, false, func(c *TrafficSplitConfig, bad, semantic *fields) {
		switch {
		case len(c.Services) == 0:
			bad.add("config.services", "must list at least one service")
		case len(c.Services) > MaxSplitServices:
			bad.add("config.services", "must have at most %d entries", MaxSplitServices)
		}
		seen, pins, total, pinned := map[string]bool{}, map[string]bool{}, 0, false
		for i, s := range c.Services {
			field := fmt.Sprintf("config.services[%d]", i)
			switch {
			case s.ServiceID == "":
				bad.add(field+".service_id", "is required")
			case !ValidID(s.ServiceID):
				bad.add(field+".service_id", IDRule)
			case seen[s.ServiceID]:
				bad.add(field+".service_id", "repeats an earlier entry")
			}
			seen[s.ServiceID] = true
			if checkPercent(field+".percent", s.Percent, bad) {
				total += s.BasisPoints()
			}
			if s.Pin != "" {
				pinned = true
				switch {
				case !validPin(s.Pin):
					bad.add(field+".pin", "must be 1 to 64 letters, digits, '.', '-' or '_'")
				case pins[s.Pin]:
					bad.add(field+".pin", "repeats an earlier service's pin")
				}
				pins[s.Pin] = true
			}
		}
		if total > SplitScale {
			semantic.add("config.services", "shares sum to %s%%, over 100%%", formatBasisPoints(total))
		}
		if c.PinHeader != "" && !IsToken(c.PinHeader) {
			bad.add("config.pin_header", "must be a header name")
		}
		if c.PinCookie != "" && !IsToken(c.PinCookie) {
			bad.add("config.pin_cookie", "must be a cookie name")
		}
		if pinned && c.PinHeader == "" && c.PinCookie == "" {
			semantic.add("config.pin_header", "is required (or pin_cookie) when a service has a pin: nothing else could carry it")
		}
		switch c.Sticky {
		case StickyNone, StickyConsumer, StickyClient:
		default:
			bad.add("config.sticky", "must be one of none, consumer, client")
		}
	})
	notGlobal(PolicyTrafficSplit, "a traffic split names services, which only routes have: list it on routes or services")
	registerPolicyType(PolicyMirror, false, func(c *MirrorConfig, bad, semantic *fields) {
		switch {
		case c.ServiceID == "":
			bad.add("config.service_id", "is required")
		case !ValidID(c.ServiceID):
			bad.add("config.service_id", IDRule)
		}
		checkPercent("config.percent", c.Percent, bad)
		if c.MaxBodyBytes < 0 || c.MaxBodyBytes > MaxMirrorBodyBytes {
			bad.add("config.max_body_bytes", "must be between 0 and %d", MaxMirrorBodyBytes)
		}
		checkRange("config.max_concurrent", c.MaxConcurrent, 1, 1024, bad)
	})
}

// checkPercent checks a share: over 0, at most 100, at most two decimals
// (a whole number of basis points). It reports whether the share is
// valid.
func checkPercent(field string, p float64, bad *fields) bool {
	switch {
	case math.IsNaN(p) || p <= 0 || p > 100:
		bad.add(field, "must be over 0 and at most 100")
	case math.Abs(p*100-math.Round(p*100)) > 1e-6:
		bad.add(field, "must have at most two decimals")
	default:
		return true
	}
	return false
}

func formatBasisPoints(bp int) string {
	if bp%100 == 0 {
		return fmt.Sprint(bp / 100)
	}
	return fmt.Sprintf("%d.%02d", bp/100, bp%100)
}

// validPin reports whether s may be a traffic-split pin: safe in a header
// value and a cookie value alike.
func validPin(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// serviceFieldRefs are the services a traffic-split or mirror policy
// names, each with its field; nil for another type. The config need not
// be valid: what it names is referenced as written.
func (p *Policy) serviceFieldRefs() []FieldRef {
	switch p.Type {
	case PolicyTrafficSplit:
		var c struct {
			Services []struct {
				ServiceID string `json:"service_id"`
			} `json:"services"`
		}
		if json.Unmarshal(p.Config, &c) != nil {
			return nil
		}
		refs := make([]FieldRef, 0, len(c.Services))
		for i, s := range c.Services {
			if s.ServiceID != "" {
				refs = append(refs, FieldRef{Field: fmt.Sprintf("config.services[%d].service_id", i), Ref: Ref{KindService, s.ServiceID}})
			}
		}
		return refs
	case PolicyMirror:
		var c struct {
			ServiceID string `json:"service_id"`
		}
		if json.Unmarshal(p.Config, &c) != nil || c.ServiceID == "" {
			return nil
		}
		return []FieldRef{{Field: "config.service_id", Ref: Ref{KindService, c.ServiceID}}}
	}
	return nil
}
