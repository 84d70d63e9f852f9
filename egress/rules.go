package egress

import (
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/policy"
)

// destination is where a request wants to go.
type destination struct {
	// host is lower case, without brackets or a trailing dot.
	host string
	port int
	// ip is set when host is an IP literal.
	ip netip.Addr
}

// String names a destination in messages and logs: host:port.
func (d destination) String() string {
	return net.JoinHostPort(d.host, strconv.Itoa(d.port))
}

// newDestination checks and canonicalises a target's host and port.
func newDestination(host, port string) (destination, error) {
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 || port[0] == '+' {
		return destination{}, gatehouse.Errorf(gatehouse.EINVALID, "The destination port must be a number from 1 to 65535.")
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "" {
		return destination{}, gatehouse.Errorf(gatehouse.EINVALID, "The request target has no host.")
	}
	d := destination{host: host, port: p}
	if ip, err := netip.ParseAddr(host); err == nil {
		d.ip = ip.Unmap()
	}
	return d, nil
}

// ruleSet is the egress policies of one policy.Set, compiled for
// matching.
type ruleSet struct {
	set      *policy.Set
	policies []egressPolicy
}

type egressPolicy struct {
	// consumers are ids or names (as policy.Consumers.ByIDOrName takes
	// them), groups group names; both empty: any consumer.
	consumers []string
	groups    []string
	rules     []rule
}

type rule struct {
	// host is an exact name or IP literal; suffix, for "*.domain", is
	// ".domain".
	host   string
	suffix string
	ip     netip.Addr
	ports  []int
}

func compileRules(set *policy.Set) *ruleSet {
	rs := &ruleSet{set: set}
	for _, c := range set.Egress {
		p := egressPolicy{consumers: c.Consumers, groups: c.Groups}
		for _, r := range c.Allow {
			host := strings.TrimSuffix(strings.ToLower(r.Host), ".")
			cr := rule{ports: r.Ports}
			if rest, ok := strings.CutPrefix(host, "*."); ok {
				cr.suffix = "." + rest
			} else {
				cr.host = host
				if ip, err := netip.ParseAddr(host); err == nil {
					cr.ip = ip.Unmap()
				}
			}
			p.rules = append(p.rules, cr)
		}
		rs.policies = append(rs.policies, p)
	}
	return rs
}

// allow reports whether some egress policy lets c reach d, and whether
// the rule that does names d exactly (which lets it reach this machine's
// own addresses; see the package comment). A policy pairs its consumers
// with its destinations: being allowed by one policy does not open
// another's destinations.
func (rs *ruleSet) allow(c *policy.Consumer, d destination) (exact bool, err error) {
	if len(rs.policies) == 0 {
		return false, gatehouse.Errorf(gatehouse.EFORBIDDEN, "No egress is allowed.")
	}
	allowed, consumerAllowed := false, false
	for i := range rs.policies {
		p := &rs.policies[i]
		if !p.admits(c) {
			continue
		}
		consumerAllowed = true
		for j := range p.rules {
			if ok, ex := p.rules[j].match(d); ok {
				allowed = true
				if ex {
					return true, nil
				}
			}
		}
	}
	switch {
	case allowed:
		return false, nil
	case !consumerAllowed:
		return false, gatehouse.Errorf(gatehouse.EFORBIDDEN, "The consumer %q may not use the egress proxy.", c.Name)
	}
	return false, gatehouse.Errorf(gatehouse.EFORBIDDEN, "Egress to %s is not allowed.", d)
}

// admits reports whether the policy applies to consumer c.
func (p *egressPolicy) admits(c *policy.Consumer) bool {
	if len(p.consumers) == 0 && len(p.groups) == 0 {
		return true
	}
	for _, s := range p.consumers {
		if s == c.ID || s == c.Name {
			return true
		}
	}
	return slices.ContainsFunc(p.groups, c.InGroup)
}

// match reports whether the rule allows d, and whether it names d
// exactly (not through a wildcard).
func (r *rule) match(d destination) (ok, exact bool) {
	if !slices.Contains(r.ports, d.port) {
		return false, false
	}
	switch {
	case d.ip.IsValid():
		// An address only ever matches the same address listed.
		return r.ip.IsValid() && r.ip == d.ip, true
	case r.suffix != "":
		return len(d.host) > len(r.suffix) && strings.HasSuffix(d.host, r.suffix), false
	}
	return r.host == d.host, true
}
