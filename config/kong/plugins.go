package kong

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/config"
	"go.yaml.in/yaml/v4"
)

// scope is where a plugin applies: everything (all nil), a service, a
// route, or a consumer.
type scope struct {
	service  *service
	route    *route
	consumer *consumer
}

// plugin is a Kong plugin instance being converted.
type plugin struct {
	name  string
	o     *obj
	path  string
	what  string
	scope scope
	// policies are what it converted to; maxBody is a
	// request-size-limiting plugin's limit, which gatehouse sets on
	// routes.
	policies []*gatehouse.Policy
	maxBody  int64
	// failed says why a plugin that guards its routes did not convert:
	// its routes are left out rather than served unguarded.
	failed string
}

// guards are the Kong plugins without which a route would let through
// requests Kong refused: a route they apply to is left out when they do
// not convert.
var guards = map[string]bool{
	"key-auth": true, "basic-auth": true, "jwt": true, "acl": true, "ip-restriction": true,
	"request-termination": true, "hmac-auth": true, "oauth2": true, "ldap-auth": true,
	"ldap-auth-advanced": true, "openid-connect": true, "mtls-auth": true, "key-auth-enc": true,
	"oauth2-introspection": true, "vault-auth": true, "bot-detection": true, "opa": true,
	"request-validator": true, "jwt-signer": true, "session": true,
}

// converters convert a plugin's config; those not listed have no
// gatehouse equivalent.
var converters = map[string]func(c *conv, p *plugin, cfg *obj){
	"key-auth":              (*conv).keyAuthPlugin,
	"basic-auth":            (*conv).basicAuthPlugin,
	"jwt":                   (*conv).jwtPlugin,
	"acl":                   (*conv).aclPlugin,
	"ip-restriction":        (*conv).ipRestrictionPlugin,
	"rate-limiting":         (*conv).rateLimitPlugin,
	"request-size-limiting": (*conv).sizeLimitPlugin,
	"request-termination":   (*conv).terminationPlugin,
	"cors":                  (*conv).corsPlugin,
}

// noEquivalent explains the plugins commonly found in Kong files that
// gatehouse has no policy for.
var noEquivalent = map[string]string{
	"correlation-id":       "gatehouse gives every request an id of its own (X-Request-Id)",
	"prometheus":           "gatehouse exports Prometheus metrics itself, for every route",
	"proxy-cache":          "gatehouse does not cache responses",
	"response-transformer": "gatehouse does not rewrite responses",
	"request-transformer":  "gatehouse does not rewrite requests",
}

func (c *conv) readPlugin(n *yaml.Node, path string, sc scope) {
	o := c.object(n)
	if o == nil {
		c.drop(n, path, "plugin", "is not a mapping")
		return
	}
	name, _ := c.str(o, "name")
	p := &plugin{name: name, o: o, path: path, what: c.describe("plugin", o, "name")}
	for _, key := range []string{"service", "route", "consumer"} {
		ref, ok := c.ref(o, key)
		if !ok {
			continue
		}
		switch key {
		case "service":
			if sc.service = c.serviceBy[ref]; sc.service == nil {
				c.drop(o.node, path, p.what, fmt.Sprintf("names service %q, which this file does not hold", ref))
				return
			}
		case "route":
			if sc.route = c.routeBy[ref]; sc.route == nil {
				c.drop(o.node, path, p.what, fmt.Sprintf("names route %q, which this file does not hold", ref))
				return
			}
		case "consumer":
			if sc.consumer = c.consumerBy[ref]; sc.consumer == nil {
				c.drop(o.node, path, p.what, fmt.Sprintf("names consumer %q, which this file does not hold", ref))
				return
			}
		}
	}
	switch {
	case !c.boolean(o, "enabled", true):
		c.drop(o.node, path, p.what, "is disabled (enabled: false)")
		return
	case sc.consumer != nil:
		c.drop(o.node, path, p.what, "applies to one consumer; gatehouse policies apply to routes, services or every route")
		return
	case sc.route != nil && sc.service != nil && sc.route.svc != sc.service:
		c.drop(o.node, path, p.what, "names a route and a service the route does not belong to, so it never applies")
		return
	case sc.route != nil:
		sc.service = nil
		if sc.route.gh == nil {
			return // the route was left out, and said so
		}
	case sc.service != nil && sc.service.gh == nil:
		return
	}
	p.scope = sc
	c.plugins = append(c.plugins, p)
}

// finishPlugins converts the plugins, attaches their policies where Kong
// applied them, and leaves out the routes whose guards did not convert.
func (c *conv) finishPlugins() {
	for _, p := range c.plugins {
		conv, ok := converters[p.name]
		switch {
		case ok:
			cfg := c.object(p.o.get("config"))
			if cfg == nil {
				cfg = &obj{node: p.o.node, m: map[string]field{}}
			}
			conv(c, p, cfg)
		case guards[p.name]:
			p.failed = "gatehouse has no equivalent of it"
		default:
			why, known := noEquivalent[p.name]
			if !known {
				why = "gatehouse has no equivalent of it"
			}
			c.drop(p.o.node, p.path, p.what, why)
		}
		if p.failed != "" {
			c.drop(p.o.node, p.path, p.what, p.failed+"; the routes it guards are left out, rather than served unguarded")
		}
		for _, pol := range p.policies {
			c.doc.Policies = append(c.doc.Policies, pol)
			switch {
			case p.scope.route != nil:
				p.scope.route.gh.Policies = append(p.scope.route.gh.Policies, pol.ID)
			case p.scope.service != nil:
				p.scope.service.gh.Policies = append(p.scope.service.gh.Policies, pol.ID)
			}
		}
	}
	for _, r := range c.routes {
		if r.gh != nil {
			c.resolve(r)
		}
	}
}

// resolve gives a route what Kong applied to it. Kong picks each plugin
// by name from the most specific level that has it (route, service,
// global); gatehouse picks each policy type from the most specific level
// that has one. Where the two disagree (a service's key-auth beside a
// route's jwt: both auth policies), the route lists every policy of the
// type itself.
func (c *conv) resolve(r *route) {
	effective := c.effective(r)
	var limit int64
	for _, p := range effective {
		if p.failed != "" && r.guarded == "" {
			r.guarded = fmt.Sprintf("its %s plugin (%s) did not convert, and without it the route would let through what Kong refused", p.name, p.path)
		}
		if p.maxBody > 0 && (limit == 0 || p.maxBody < limit) {
			limit = p.maxBody
		}
	}
	if limit > 0 {
		r.gh.MaxBodyBytes = limit
	}
	byType := func(pols []*gatehouse.Policy, typ string) []string {
		var ids []string
		for _, p := range pols {
			if p.Type == typ {
				ids = append(ids, p.ID)
			}
		}
		return ids
	}
	var want, own, inherited, global []*gatehouse.Policy
	for _, p := range effective {
		want = append(want, p.policies...)
	}
	for _, p := range c.pluginsOf(scope{route: r}) {
		own = append(own, p.policies...)
	}
	for _, p := range c.pluginsOf(scope{service: r.svc}) {
		inherited = append(inherited, p.policies...)
	}
	for _, p := range c.pluginsOf(scope{}) {
		global = append(global, p.policies...)
	}
	for _, typ := range gatehouse.PolicyOrder {
		w := byType(want, typ)
		got := byType(own, typ)
		if len(got) == 0 {
			got = byType(inherited, typ)
		}
		if len(got) == 0 {
			got = byType(global, typ)
		}
		if sameSet(w, got) {
			continue
		}
		if len(w) == 0 {
			// The route's own plugin of the name did not convert, and in
			// Kong it shadowed the less specific one; a gatehouse route
			// cannot list "none", so the less specific one applies.
			c.drop(r.node, r.path, r.what, fmt.Sprintf("gatehouse applies %s to it, which Kong did not: Kong ran the route's (or its service's) own plugin of that name instead, which did not convert",
				strings.Join(got, ", ")))
			continue
		}
		// Only the route's own policies of the type are in its list.
		ownIDs := byType(own, typ)
		kept := r.gh.Policies[:0:0]
		for _, id := range r.gh.Policies {
			if !slices.Contains(ownIDs, id) {
				kept = append(kept, id)
			}
		}
		r.gh.Policies = append(kept, w...)
	}
}

// effective returns the plugins Kong ran for r: of each name, those of
// the most specific level that has it.
func (c *conv) effective(r *route) []*plugin {
	var out []*plugin
	names := map[string]bool{}
	for _, level := range [][]*plugin{c.pluginsOf(scope{route: r}), c.pluginsOf(scope{service: r.svc}), c.pluginsOf(scope{})} {
		here := map[string]bool{}
		for _, p := range level {
			if !names[p.name] {
				out = append(out, p)
				here[p.name] = true
			}
		}
		for n := range here {
			names[n] = true
		}
	}
	return out
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// pluginsOf returns the plugins of exactly one level: a route's, a
// service's, or the global ones (empty scope).
func (c *conv) pluginsOf(sc scope) []*plugin {
	var out []*plugin
	for _, p := range c.plugins {
		if p.scope.route == sc.route && p.scope.service == sc.service {
			out = append(out, p)
		}
	}
	return out
}

// policy makes the gatehouse policy of p with config cfg; suffix tells
// apart the policies of a plugin that converts to several. It returns
// nil, after marking p failed or reporting it, if gatehouse refuses it.
func (c *conv) policy(p *plugin, typ, suffix string, cfg any) *gatehouse.Policy {
	raw, err := json.Marshal(cfg)
	if err != nil {
		p.failed = "its config does not convert: " + err.Error()
		return nil
	}
	base, _ := c.str(p.o, "instance_name")
	if base == "" {
		base = p.name
		switch {
		case p.scope.route != nil:
			base += "-" + cmpOr(p.scope.route.gh.Name, p.scope.route.gh.ID)
		case p.scope.service != nil:
			base += "-" + p.scope.service.gh.Name
		}
	}
	kid, _ := c.str(p.o, "id")
	if suffix != "" {
		base += "-" + suffix
		if kid != "" {
			kid += "-" + suffix
		}
	}
	pol := gatehouse.NewPolicy()
	pol.Type, pol.Config = typ, raw
	pol.Global = p.scope.route == nil && p.scope.service == nil
	pol.Name = c.newName(gatehouse.KindPolicy, base)
	pol.ID = c.newID(gatehouse.KindPolicy, kid, pol.Name)
	pol.Tags = c.tags(p.o, p.path)
	if inv, unp := gatehouse.NormalizeAndCheck(pol); len(inv)+len(unp) > 0 {
		all := append(inv, unp...)
		why := fmt.Sprintf("converts to a %s policy gatehouse refuses: %s %s", typ, all[0].Field, all[0].Message)
		if guards[p.name] {
			p.failed = why
		} else {
			c.drop(p.o.node, p.path, p.what, why)
		}
		return nil
	}
	p.policies = append(p.policies, pol)
	return pol
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// authConfig returns an auth policy config with Kong's identity headers,
// so that an upstream reading them keeps working (X-Consumer-ID holds the
// gatehouse consumer id: Kong's id where it was a UUID).
func authConfig(realm string) *gatehouse.AuthConfig {
	a := &gatehouse.AuthConfig{}
	a.SetDefaults()
	a.ConsumerIDHeader, a.ConsumerNameHeader = "X-Consumer-ID", "X-Consumer-Username"
	if realm != "" && quotable(realm) {
		a.Realm = realm
	}
	return a
}

func quotable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// authCommon reports what Kong's authentication plugins share and
// gatehouse has not.
func (c *conv) authCommon(p *plugin, cfg *obj) {
	cp := p.path + ".config"
	if cfg.has("anonymous") {
		if s, _ := c.str(cfg, "anonymous"); s != "" {
			c.dropField(cfg, cp, "anonymous", "gatehouse has no anonymous consumer: a request without valid credentials is refused (401)")
		}
	}
	if !c.boolean(cfg, "run_on_preflight", true) {
		c.dropField(cfg, cp, "run_on_preflight", "gatehouse asks OPTIONS requests for credentials too")
	}
}

func (c *conv) keyAuthPlugin(p *plugin, cfg *obj) {
	cp := p.path + ".config"
	c.authCommon(p, cfg)
	names := c.strs(cfg, "key_names")
	if !cfg.has("key_names") {
		names = []string{"apikey"}
	}
	if len(names) == 0 {
		p.failed = "it names no key_names"
		return
	}
	if len(names) > 1 {
		c.dropField(cfg, cp, "key_names", fmt.Sprintf("gatehouse reads a key from one header and one query parameter: converted as %q, and keys sent as %s are refused", names[0], strings.Join(names[1:], ", ")))
	}
	if c.boolean(cfg, "key_in_body", false) {
		c.dropField(cfg, cp, "key_in_body", "gatehouse does not read keys from the body: such requests are refused")
	}
	ka := &gatehouse.KeyAuthConfig{}
	if c.boolean(cfg, "key_in_header", true) {
		ka.Header = names[0]
	}
	if c.boolean(cfg, "key_in_query", true) {
		ka.Query = names[0]
	}
	if ka.Header == "" && ka.Query == "" {
		p.failed = "it reads keys from the body only, which gatehouse does not"
		return
	}
	realm, _ := c.str(cfg, "realm")
	a := authConfig(realm)
	a.KeyAuth = ka
	c.policy(p, gatehouse.PolicyAuth, "", a)
}

func (c *conv) basicAuthPlugin(p *plugin, cfg *obj) {
	c.authCommon(p, cfg)
	realm := "service" // Kong's default
	if s, ok := c.str(cfg, "realm"); ok {
		realm = s
	}
	a := authConfig(realm)
	a.BasicAuth = &gatehouse.BasicAuthConfig{}
	c.policy(p, gatehouse.PolicyAuth, "", a)
}

// jwtPlugin converts a jwt plugin to an auth policy whose keys are the
// file's jwt secrets, each with the Kong credential's key as its kid (a
// kid unique among the policy's keys is what lets an update that omits
// the hidden secrets keep each key's own). Kong verified a token with the
// secret of the credential its key claim names, binding each secret to
// its consumer; a gatehouse key verifies tokens naming any consumer. With
// one consumer holding the secrets that is the same check; with several,
// one consumer's secret would sign tokens naming another, so the plugin
// does not convert and the routes it guards are left out.
func (c *conv) jwtPlugin(p *plugin, cfg *obj) {
	cp := p.path + ".config"
	c.authCommon(p, cfg)
	b64 := c.boolean(cfg, "secret_is_base64", false)
	var keys []gatehouse.JWTKey
	var holders []*consumer
	for _, j := range c.jwtSecrets {
		k := gatehouse.JWTKey{KeyID: j.key, Alg: j.alg, PublicKey: j.publicKey, Secret: j.secret}
		if b64 && j.alg == "HS256" {
			raw, err := base64.StdEncoding.DecodeString(j.secret)
			if err != nil || !utf8.Valid(raw) {
				c.drop(j.node, j.path+".secret", "jwt secret "+strconv.Quote(j.key), "with "+p.path+"'s secret_is_base64 it is not base64 of text; gatehouse holds HS256 secrets as text")
				continue
			}
			k.Secret = string(raw)
		}
		if j.alg == "HS256" && len(k.Secret) < gatehouse.MinHMACSecret {
			c.drop(j.node, j.path+".secret", "jwt secret "+strconv.Quote(j.key), fmt.Sprintf("gatehouse requires HS256 secrets of at least %d bytes; issue a longer one", gatehouse.MinHMACSecret))
			continue
		}
		keys = append(keys, k)
		if !slices.Contains(holders, j.consumer) {
			holders = append(holders, j.consumer)
		}
	}
	if len(keys) == 0 {
		p.failed = "no jwt secret of this file converts, so gatehouse could verify no token"
		return
	}
	if len(holders) > 1 {
		names := make([]string, len(holders))
		for i, h := range holders {
			names[i] = strconv.Quote(h.gh.Name)
		}
		p.failed = fmt.Sprintf("consumers %s hold jwt secrets: Kong verified a token only with the secret of the credential its claim names, "+
			"gatehouse verifies it with any of the policy's keys and takes the consumer from the claim, so one consumer's secret would sign tokens naming another",
			strings.Join(names, ", "))
		return
	}
	j := &gatehouse.JWTConfig{}
	j.SetDefaults()
	j.Keys = keys
	j.ConsumerClaim = "iss"
	if s, ok := c.str(cfg, "key_claim_name"); ok && s != "" {
		j.ConsumerClaim = s
		if s == "kid" {
			c.dropField(cfg, cp, "key_claim_name", "Kong also read this claim from the token's header, where kid usually is; gatehouse reads the consumer claim from the payload only")
		}
	}
	if !slices.Contains(c.strs(cfg, "claims_to_verify"), "exp") {
		c.drop(cfg.node, cp+".claims_to_verify", "claims_to_verify without exp", "gatehouse refuses tokens without exp (require_exp), which Kong accepted, and always refuses expired ones")
	}
	if v, ok := c.integer(cfg, "maximum_expiration"); ok && v > 0 {
		c.dropField(cfg, cp, "maximum_expiration", "gatehouse does not bound how far ahead a token's exp may be")
	}
	if cfg.has("uri_param_names") && len(c.strs(cfg, "uri_param_names")) > 0 {
		c.dropField(cfg, cp, "uri_param_names", "gatehouse reads tokens from Authorization: Bearer only")
	}
	if len(c.strs(cfg, "cookie_names")) > 0 {
		c.dropField(cfg, cp, "cookie_names", "gatehouse reads tokens from Authorization: Bearer only")
	}
	if h := c.strs(cfg, "header_names"); cfg.has("header_names") && !(len(h) == 1 && strings.EqualFold(h[0], "authorization")) {
		c.dropField(cfg, cp, "header_names", "gatehouse reads tokens from Authorization: Bearer only")
	}
	realm, _ := c.str(cfg, "realm")
	a := authConfig(realm)
	a.JWT = j
	pol := c.policy(p, gatehouse.PolicyAuth, "", a)
	if pol == nil {
		return
	}
	// An HS256 secret cannot be hashed: the data plane signs with it to
	// verify. The admin API never shows it, but the converted file holds
	// it as Kong's did, and the operator should know before committing it.
	for _, k := range keys {
		if k.Alg == "HS256" {
			c.drop(p.o.node, p.path, p.what, fmt.Sprintf("policy %s holds the HS256 secret of jwt secret %q (kid %s) in the clear, as the data plane needs it to verify: "+
				"move it out of the file, to ${{ env \"%s%s\" }}", pol.ID, k.KeyID, k.KeyID, config.EnvPrefix, envName(k.KeyID)))
		}
	}
}

// envName makes a jwt secret's key (a valid id) the tail of an
// environment variable's name.
func envName(key string) string {
	return "JWT_" + strings.ToUpper(strings.ReplaceAll(key, "-", "_"))
}

// allowDeny reads Kong's allow and deny lists, under their names before
// Kong 2 (whitelist, blacklist) too.
func (c *conv) allowDeny(cfg *obj) (allow, deny []string) {
	allow = append(c.strs(cfg, "allow"), c.strs(cfg, "whitelist")...)
	deny = append(c.strs(cfg, "deny"), c.strs(cfg, "blacklist")...)
	return allow, deny
}

func (c *conv) aclPlugin(p *plugin, cfg *obj) {
	cp := p.path + ".config"
	allow, deny := c.allowDeny(cfg)
	acl := &gatehouse.ACLConfig{Allow: []string{}, Deny: []string{}, AllowConsumers: []string{}, DenyConsumers: []string{}}
	for _, g := range allow {
		// A group that is no gatehouse name was dropped from every
		// consumer, so allowing it allows no one: leaving it out changes
		// nothing.
		if gatehouse.ValidName(g) && !containsFold(acl.Allow, g) {
			acl.Allow = append(acl.Allow, g)
		}
	}
	for _, g := range deny {
		if !gatehouse.ValidName(g) {
			p.failed = fmt.Sprintf("it denies group %q, which is no gatehouse group name, so its members would no longer be denied", g)
			return
		}
		if !containsFold(acl.Deny, g) {
			acl.Deny = append(acl.Deny, g)
		}
	}
	if len(acl.Allow) == 0 && len(acl.Deny) == 0 {
		p.failed = "none of its groups is a gatehouse group name"
		return
	}
	if c.boolean(cfg, "hide_groups_header", false) {
		c.dropField(cfg, cp, "hide_groups_header", "gatehouse's auth policy sends the consumer's groups (groups_header, X-Consumer-Groups) unless set empty there")
	}
	for _, k := range []string{"always_use_authenticated_groups", "include_consumer_groups"} {
		if c.boolean(cfg, k, false) {
			c.dropField(cfg, cp, k, "gatehouse judges the groups of the consumer the credentials name")
		}
	}
	c.policy(p, gatehouse.PolicyACL, "", acl)
}

func (c *conv) ipRestrictionPlugin(p *plugin, cfg *obj) {
	cp := p.path + ".config"
	allow, deny := c.allowDeny(cfg)
	for _, a := range slices.Concat(allow, deny) {
		if _, err := gatehouse.ParsePrefix(a); err != nil {
			p.failed = fmt.Sprintf("%q is not an address or CIDR prefix gatehouse reads", a)
			return
		}
	}
	if v, ok := c.integer(cfg, "status"); ok && v != 403 {
		c.dropField(cfg, cp, "status", "gatehouse answers a denied address with 403")
	}
	if cfg.has("message") {
		c.dropField(cfg, cp, "message", "gatehouse answers with its own problem document")
	}
	if allow == nil {
		allow = []string{}
	}
	if deny == nil {
		deny = []string{}
	}
	c.policy(p, gatehouse.PolicyIPRestriction, "", &gatehouse.IPRestrictionConfig{Allow: allow, Deny: deny})
}

// rateWindows are Kong's rate-limiting windows gatehouse has.
var rateWindows = []string{"second", "minute", "hour"}

// rateLimitPlugin converts each of the plugin's second, minute and hour
// limits to a rate-limit policy. Gatehouse applies every rate-limit
// policy of a level, so the route keeps all of Kong's limits rather than
// only the tightest. Gatehouse counts by GCRA (a period's requests may
// come at once, then evenly), Kong by fixed windows.
func (c *conv) rateLimitPlugin(p *plugin, cfg *obj) {
	cp := p.path + ".config"
	by := gatehouse.RateByConsumer
	switch s, _ := c.str(cfg, "limit_by"); s {
	case "", "consumer":
	case "credential":
		c.dropField(cfg, cp, "limit_by", "gatehouse counts per consumer, so a consumer's credentials share one count")
	case "ip":
		by = gatehouse.RateByIP
	case "service":
		by = gatehouse.RateByRoute
		c.dropField(cfg, cp, "limit_by", "gatehouse counts per route: the service's routes no longer share one count")
	default:
		c.drop(p.o.node, p.path, p.what, fmt.Sprintf("limits by %s; gatehouse limits by consumer, route or client address", s))
		return
	}
	store, fallback := gatehouse.StoreLocal, gatehouse.StoreLocal
	switch s, _ := c.str(cfg, "policy"); s {
	case "", "local":
	case "redis":
		store = gatehouse.StoreRedis
		if c.boolean(cfg, "fault_tolerant", true) {
			fallback = gatehouse.FallbackAllow
		}
		for _, k := range []string{"redis", "redis_host"} {
			if cfg.has(k) {
				c.dropField(cfg, cp, k, "gatehouse's Redis is the one its --redis-url names")
			}
		}
	default:
		c.dropField(cfg, cp, "policy", "gatehouse counts in each node (local) or in Redis; converted as local")
	}
	if v, ok := c.number(cfg, "error_code"); ok && v != 429 {
		c.dropField(cfg, cp, "error_code", "gatehouse answers a spent limit with 429")
	}
	if s, ok := c.str(cfg, "error_message"); ok && s != "API rate limit exceeded" {
		c.dropField(cfg, cp, "error_message", "gatehouse answers with its own problem document")
	}
	if c.boolean(cfg, "hide_client_headers", false) {
		c.dropField(cfg, cp, "hide_client_headers", "gatehouse always sends RateLimit and RateLimit-Policy")
	}
	for _, w := range []string{"day", "month", "year"} {
		if cfg.has(w) {
			c.dropField(cfg, cp, w, "gatehouse limits per second, minute or hour")
		}
	}
	made := 0
	for _, w := range rateWindows {
		if !cfg.has(w) {
			continue
		}
		n, ok := c.integer(cfg, w)
		if !ok || n < 1 {
			c.dropField(cfg, cp, w, "gatehouse limits by a whole number of requests, at least 1")
			continue
		}
		rl := &gatehouse.RateLimitConfig{}
		rl.SetDefaults()
		rl.Requests, rl.Per, rl.By, rl.Store, rl.Fallback = n, w, by, store, fallback
		if c.policy(p, gatehouse.PolicyRateLimit, w, rl) != nil {
			made++
		}
	}
	if made == 0 {
		c.drop(p.o.node, p.path, p.what, "none of its limits converts")
	}
}

func (c *conv) sizeLimitPlugin(p *plugin, cfg *obj) {
	cp := p.path + ".config"
	size := int64(128)
	if v, ok := c.integer(cfg, "allowed_payload_size"); ok {
		size = int64(v)
	}
	unit := map[string]int64{"megabytes": 1 << 20, "kilobytes": 1 << 10, "bytes": 1}
	u, ok := c.str(cfg, "size_unit")
	if !ok {
		u = "megabytes"
	}
	if unit[u] == 0 || size < 0 {
		c.drop(p.o.node, p.path, p.what, "its size_unit or allowed_payload_size is not one Kong takes")
		return
	}
	if c.boolean(cfg, "require_content_length", false) {
		c.dropField(cfg, cp, "require_content_length", "gatehouse counts a chunked body as it arrives")
	}
	// A limit of 0 is a route refusing every body; gatehouse's 0 means
	// the default, so 1 byte is the nearest it has.
	p.maxBody = min(max(size*unit[u], 1), gatehouse.MaxBodyLimit)
}

func (c *conv) terminationPlugin(p *plugin, cfg *obj) {
	cp := p.path + ".config"
	if cfg.has("trigger") || c.boolean(cfg, "echo", false) {
		c.drop(p.o.node, p.path, p.what, "terminates only requests carrying its trigger, or echoes them: a debugging aid gatehouse has not")
		return
	}
	status := 503
	if v, ok := c.integer(cfg, "status_code"); ok {
		status = v
	}
	if status != 503 {
		p.failed = fmt.Sprintf("it answers %d; gatehouse's maintenance policy answers 503", status)
		return
	}
	m := &gatehouse.MaintenanceConfig{}
	m.SetDefaults()
	if s, ok := c.str(cfg, "message"); ok && s != "" && len(s) <= 1024 {
		m.Message = s
	}
	for _, k := range []string{"body", "content_type"} {
		if cfg.has(k) {
			c.dropField(cfg, cp, k, "gatehouse answers with a problem document whose detail is the message")
		}
	}
	c.policy(p, gatehouse.PolicyMaintenance, "", m)
}
