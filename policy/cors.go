package policy

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/httpx"
)

func init() { register(gatehouse.PolicyCORS, buildCORS) }

// CORS is a route's compiled cors policy (gatehouse.CORSConfig). As a
// Step it refuses nothing: it puts the CORS fields of an actual request
// on the response to come, so that they reach the browser on whatever
// answers, a later policy's refusal included. The data plane answers
// preflights with Preflight, before any Step runs, and hands the
// upstream's header to Scrub before it is copied.
//
// Every field value is made here, once per revision, or is the request's
// own slice (an echoed origin or method): header maps only ever replace
// a value slice, never append to it, so sharing them is safe, and an
// actual request costs no allocation.
type CORS struct {
	anyOrigin  bool
	exact      []string    // origins, as NormalizeOrigin writes them
	subdomains []subdomain // "scheme://*.domain[:port]" patterns
	anyMethod  bool
	methods    []string
	anyHeader  bool     // any request header but Authorization
	headers    []string // allowed request headers, as configured

	// The fields' values; nil: the field is not sent.
	star, allowMethods, allowHeaders, expose, credentials, maxAge []string
}

// subdomain matches the origins scheme "://" one or more labels "."
// domain, and ":" port if the pattern has one: prefix is "scheme://",
// suffix ".domain" or ".domain:port".
type subdomain struct{ prefix, suffix string }

// Shared field values; never written to.
var (
	varyOrigin    = []string{"Origin"}
	varyPreflight = []string{"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"}
)

func buildCORS(b *Build, pols []*gatehouse.Policy) (Step, error) {
	cfgs, err := configs[gatehouse.CORSConfig](pols)
	if err != nil {
		return nil, err
	}
	// Several at one level: the first one listed speaks, as one answer
	// cannot follow two policies.
	return NewCORS(cfgs[0]), nil
}

// NewCORS compiles a valid cors config (gatehouse.Policy.DecodeConfig
// checked it).
func NewCORS(cfg *gatehouse.CORSConfig) *CORS {
	c := &CORS{star: []string{"*"}, maxAge: []string{strconv.Itoa(cfg.MaxAgeSeconds)}}
	for _, o := range cfg.AllowOrigins {
		switch {
		case o == "*":
			c.anyOrigin = true
		case strings.Contains(o, "://*."):
			scheme, rest, _ := strings.Cut(o, "://*")
			c.subdomains = append(c.subdomains, subdomain{prefix: scheme + "://", suffix: rest})
		default:
			c.exact = append(c.exact, o)
		}
	}
	for _, m := range cfg.AllowMethods {
		if m == "*" {
			c.anyMethod = true
		} else {
			c.methods = append(c.methods, m)
		}
	}
	if !c.anyMethod && len(c.methods) > 0 {
		c.allowMethods = []string{strings.Join(c.methods, ", ")}
	}
	for _, h := range cfg.AllowHeaders {
		if h == "*" {
			c.anyHeader = true
		} else {
			c.headers = append(c.headers, h)
		}
	}
	if len(c.headers) > 0 {
		c.allowHeaders = []string{strings.Join(c.headers, ", ")}
	}
	if len(cfg.ExposeHeaders) > 0 {
		c.expose = []string{strings.Join(cfg.ExposeHeaders, ", ")}
	}
	if cfg.AllowCredentials {
		c.credentials = []string{"true"}
	}
	return c
}

// CORS returns the route's cors policy, nil if it has none (or c is nil).
func (c *Chain) CORS() *CORS {
	if c == nil {
		return nil
	}
	return c.cors
}

// Preflights reports whether any route of the revision has a cors
// policy: only then can an OPTIONS request be a preflight gatehouse
// answers.
func (s *Set) Preflights() bool { return s != nil && s.preflights }

// Check sets the fields of an actual request's answer: Vary: Origin
// always (the answer depends on it, and a cache must not hand one
// origin's answer to another), and, for an allowed origin,
// Access-Control-Allow-Origin, -Expose-Headers and -Allow-Credentials.
// A disallowed origin is not refused: the browser withholds the answer
// from the script, and a client that is not a browser is not CORS's
// concern.
func (c *CORS) Check(r *Request) error {
	h := r.W.Header()
	addVary(h, varyOrigin)
	if origin := r.R.Header["Origin"]; len(origin) == 1 && c.allowsOrigin(origin[0]) {
		c.allow(h, origin)
	}
	return nil
}

// allow sets the fields every answer to an allowed origin has.
func (c *CORS) allow(h http.Header, origin []string) {
	if c.anyOrigin && c.credentials == nil {
		h["Access-Control-Allow-Origin"] = c.star
	} else {
		h["Access-Control-Allow-Origin"] = origin
	}
	if c.credentials != nil {
		h["Access-Control-Allow-Credentials"] = c.credentials
	}
	if c.expose != nil {
		h["Access-Control-Expose-Headers"] = c.expose
	}
}

// Preflight judges a preflight, whose request header is req, and sets the
// answer's fields on h: nil to answer 204 (Access-Control-Allow-Origin,
// -Allow-Methods, -Allow-Headers, -Max-Age, -Allow-Credentials), or the
// 403 naming the origin, method or header the policy does not allow. A
// method or header the policy allows by "*" is answered by name, which
// browsers read alike with and without credentials.
func (c *CORS) Preflight(h, req http.Header) error {
	addVary(h, varyPreflight)
	origin := req["Origin"]
	if len(origin) != 1 || !c.allowsOrigin(origin[0]) {
		return refuseOrigin(origin)
	}
	method := req["Access-Control-Request-Method"]
	if len(method) != 1 || !c.anyMethod && !slices.Contains(c.methods, method[0]) {
		return gatehouse.Errorf(gatehouse.EFORBIDDEN, "The method %s is not allowed from origin %s (CORS); allowed: %s.",
			strings.Join(method, ", "), origin[0], strings.Join(c.methods, ", "))
	}
	asked := req["Access-Control-Request-Headers"]
	for name := range httpx.FieldList(asked) {
		if !c.allowsHeader(name) {
			return gatehouse.Errorf(gatehouse.EFORBIDDEN, "The request header %s is not allowed from origin %s (CORS).", name, origin[0])
		}
	}
	c.allow(h, origin)
	if c.anyMethod {
		h["Access-Control-Allow-Methods"] = method
	} else {
		h["Access-Control-Allow-Methods"] = c.allowMethods
	}
	switch {
	case c.anyHeader && len(asked) > 0:
		h["Access-Control-Allow-Headers"] = asked
	case c.allowHeaders != nil:
		h["Access-Control-Allow-Headers"] = c.allowHeaders
	}
	h["Access-Control-Max-Age"] = c.maxAge
	return nil
}

// RefuseMethod judges a preflight, whose request header is req, asking
// for a method no route on its path serves (the path serves allow), and
// sets the refusal's Vary on h: the 403 naming the origin c does not
// allow, or else the method. c is the path's cors policy, nil if its
// routes' policies differ: then the method alone is judged.
func RefuseMethod(h, req http.Header, c *CORS, allow string) error {
	addVary(h, varyPreflight)
	origin := req["Origin"]
	if c != nil && (len(origin) != 1 || !c.allowsOrigin(origin[0])) {
		return refuseOrigin(origin)
	}
	return gatehouse.Errorf(gatehouse.EFORBIDDEN, "The method %s is not allowed from origin %s (CORS): this path serves %s.",
		strings.Join(req["Access-Control-Request-Method"], ", "), strings.Join(origin, ", "), allow)
}

func refuseOrigin(origin []string) error {
	return gatehouse.Errorf(gatehouse.EFORBIDDEN, "The origin %s is not allowed to call this route (CORS).", strings.Join(origin, ", "))
}

// Equal reports whether c and o answer alike: compiled from the same
// config, as each route compiles its own.
func (c *CORS) Equal(o *CORS) bool {
	return c.anyOrigin == o.anyOrigin && slices.Equal(c.exact, o.exact) && slices.Equal(c.subdomains, o.subdomains) &&
		c.anyMethod == o.anyMethod && slices.Equal(c.methods, o.methods) &&
		c.anyHeader == o.anyHeader && slices.Equal(c.headers, o.headers) &&
		slices.Equal(c.expose, o.expose) && slices.Equal(c.credentials, o.credentials) && slices.Equal(c.maxAge, o.maxAge)
}

// Scrub makes the upstream's header, before it is copied to the client,
// one the policy's fields stand in: without the Access-Control-* fields
// the upstream sent, and with Origin in its Vary.
func (c *CORS) Scrub(up http.Header) {
	for k := range up {
		if strings.HasPrefix(k, "Access-Control-") {
			delete(up, k)
		}
	}
	if vary, ok := up["Vary"]; ok && !varies(vary, "Origin") {
		up["Vary"] = append(vary[:len(vary):len(vary)], "Origin")
	}
}

func (c *CORS) allowsOrigin(o string) bool {
	if c.anyOrigin {
		return true
	}
	if slices.Contains(c.exact, o) {
		return true
	}
	for _, s := range c.subdomains {
		if len(o) > len(s.prefix)+len(s.suffix) && strings.HasPrefix(o, s.prefix) && strings.HasSuffix(o, s.suffix) &&
			labels(o[len(s.prefix):len(o)-len(s.suffix)]) {
			return true
		}
	}
	return false
}

// labels reports whether s is one or more DNS labels, dot-separated, in
// lower case (browsers serialise hosts so): what a subdomain pattern's
// "*" stands for, and never a port, path or user information.
func labels(s string) bool {
	if s == "" || s[0] == '.' || s[0] == '-' || s[len(s)-1] == '.' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
		case c == '.':
			if s[i-1] == '.' || s[i-1] == '-' || s[i+1] == '-' {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func (c *CORS) allowsHeader(name string) bool {
	for _, h := range c.headers {
		if strings.EqualFold(h, name) {
			return true
		}
	}
	// Fetch: a wildcard in Access-Control-Allow-Headers never covers
	// Authorization; "*" here means what it would mean to a browser.
	return c.anyHeader && !strings.EqualFold(name, "Authorization") && gatehouse.IsToken(name)
}

// addVary adds v to h's Vary unless it is there.
func addVary(h http.Header, v []string) {
	have, ok := h["Vary"]
	if !ok {
		h["Vary"] = v
		return
	}
	if !varies(have, v[0]) {
		h["Vary"] = append(have[:len(have):len(have)], v...)
	}
}

// varies reports whether a Vary field names field (its first, for a
// list) or "*".
func varies(vary []string, field string) bool {
	field, _, _ = strings.Cut(field, ",")
	return httpx.HasToken(vary, field) || httpx.HasToken(vary, "*")
}
