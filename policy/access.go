package policy

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"github.com/gatehouse/gatehouse"
)

func init() {
	register(gatehouse.PolicyIPRestriction, buildIPRestriction)
	register(gatehouse.PolicyACL, buildACL)
}

var (
	errAddressDenied  = gatehouse.Errorf(gatehouse.EFORBIDDEN, "Requests from this address are not allowed.")
	errNotIdentified  = gatehouse.Errorf(gatehouse.EFORBIDDEN, "This route admits only identified consumers.")
	errConsumerDenied = gatehouse.Errorf(gatehouse.EFORBIDDEN, "This consumer is not allowed on this route.")
)

// ipRestriction allows or denies client addresses. With several policies
// at one level all apply: an address any of them denies is refused, and
// an address must be in the allow list of each that has one.
type ipRestriction struct {
	deny   addrSet
	allows []addrSet
}

// addrSet is a list of prefixes, single addresses looked up by map.
type addrSet struct {
	addrs    map[netip.Addr]struct{}
	prefixes []netip.Prefix
}

func newAddrSet(list []string) (addrSet, error) {
	s := addrSet{addrs: map[netip.Addr]struct{}{}}
	for _, item := range list {
		if err := s.add(item); err != nil {
			return s, err
		}
	}
	return s, nil
}

func (s *addrSet) add(item string) error {
	p, err := gatehouse.ParsePrefix(item)
	if err != nil {
		return fmt.Errorf("%q is not an address or prefix", item)
	}
	// An IPv4-mapped IPv6 prefix (::ffff:10.0.0.0/104) is the IPv4 prefix
	// it maps: client addresses are judged unmapped.
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	if p.Bits() == p.Addr().BitLen() {
		s.addrs[p.Addr()] = struct{}{}
	} else {
		s.prefixes = append(s.prefixes, p)
	}
	return nil
}

func (s *addrSet) contains(a netip.Addr) bool {
	if _, ok := s.addrs[a]; ok {
		return true
	}
	for _, p := range s.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func buildIPRestriction(b *Build, pols []*gatehouse.Policy) (Step, error) {
	cfgs, err := configs[gatehouse.IPRestrictionConfig](pols)
	if err != nil {
		return nil, err
	}
	ip := &ipRestriction{deny: addrSet{addrs: map[netip.Addr]struct{}{}}}
	for i, c := range cfgs {
		for _, d := range c.Deny {
			if err := ip.deny.add(d); err != nil {
				return nil, fmt.Errorf("policy %q: deny: %v", pols[i].ID, err)
			}
		}
		if len(c.Allow) > 0 {
			allow, err := newAddrSet(c.Allow)
			if err != nil {
				return nil, fmt.Errorf("policy %q: allow: %v", pols[i].ID, err)
			}
			ip.allows = append(ip.allows, allow)
		}
	}
	return ip, nil
}

func (ip *ipRestriction) Check(r *Request) error {
	// Addresses are judged unmapped and without a zone, as the lists
	// hold them; an address that could not be read is refused.
	a := r.Client.Unmap().WithZone("")
	if !a.IsValid() || ip.deny.contains(a) {
		return errAddressDenied
	}
	for i := range ip.allows {
		if !ip.allows[i].contains(a) {
			return errAddressDenied
		}
	}
	return nil
}

// acl allows or denies consumers by group or name. The lists are
// compiled into sets; each consumer's verdict is remembered once reached,
// so that a request usually costs one lookup. (Judging every consumer of
// the revision up front would cost consumers × routes at each deploy.)
//
// A request reaching an acl without a consumer is 403, not 401: the acl
// runs after auth, so no consumer means the route has an acl and no auth
// policy, a configuration in which no request can ever be admitted and
// no credential the client could add would help.
type acl struct {
	rules    []aclRule
	verdicts sync.Map // *Consumer → bool
}

// aclRule is one acl policy with its group names lower-cased.
type aclRule struct {
	allow, deny                   map[string]bool // groups
	allowConsumers, denyConsumers map[string]bool
}

func exactSet(list []string) map[string]bool {
	m := make(map[string]bool, len(list))
	for _, s := range list {
		m[s] = true
	}
	return m
}

func lowerSet(list []string) map[string]bool {
	m := make(map[string]bool, len(list))
	for _, s := range list {
		m[strings.ToLower(s)] = true
	}
	return m
}

// admits applies the rule: deny wins; with an allow list set, the
// consumer must be in one.
func (rule *aclRule) admits(c *Consumer) bool {
	// Consumer names are exact, as the store keeps them unique ("alice"
	// and "Alice" are two consumers); groups are not.
	name := c.Name
	if rule.denyConsumers[name] {
		return false
	}
	for _, g := range c.Groups {
		if rule.deny[strings.ToLower(g)] {
			return false
		}
	}
	if len(rule.allow) == 0 && len(rule.allowConsumers) == 0 {
		return true
	}
	if rule.allowConsumers[name] {
		return true
	}
	for _, g := range c.Groups {
		if rule.allow[strings.ToLower(g)] {
			return true
		}
	}
	return false
}

func buildACL(b *Build, pols []*gatehouse.Policy) (Step, error) {
	cfgs, err := configs[gatehouse.ACLConfig](pols)
	if err != nil {
		return nil, err
	}
	rules := make([]aclRule, len(cfgs))
	for i, c := range cfgs {
		rules[i] = aclRule{allow: lowerSet(c.Allow), deny: lowerSet(c.Deny),
			allowConsumers: exactSet(c.AllowConsumers), denyConsumers: exactSet(c.DenyConsumers)}
	}
	return &acl{rules: rules}, nil
}

func (a *acl) Check(r *Request) error {
	c := r.Consumer
	if c == nil {
		return errNotIdentified
	}
	if v, ok := a.verdicts.Load(c); ok {
		if v.(bool) {
			return nil
		}
		return errConsumerDenied
	}
	ok := true
	for i := range a.rules {
		ok = ok && a.rules[i].admits(c)
	}
	a.verdicts.Store(c, ok)
	if !ok {
		return errConsumerDenied
	}
	return nil
}
