package kong

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse"
	"go.yaml.in/yaml/v4"
)

// upstream is a Kong upstream: a name services use as their host, and
// its targets.
type upstream struct {
	name    string
	node    *yaml.Node
	path    string
	targets []target
}

type target struct {
	hostPort string
	weight   int
}

// Kong's defaults.
const (
	kongTimeoutMS    = 60_000
	kongTargetPort   = 8000
	kongTargetWeight = 100
)

func (c *conv) readUpstream(n *yaml.Node, path string) {
	o := c.object(n)
	if o == nil {
		return
	}
	name, _ := c.str(o, "name")
	u := &upstream{name: name, node: o.get("name"), path: path}
	if u.node == nil {
		u.node = o.node
	}
	for _, k := range o.keys {
		switch k {
		case "healthchecks":
			c.dropField(o, path, k, "gatehouse's health check is the service's health_check (one GET path, interval and thresholds); set it by hand")
		case "algorithm":
			if s, _ := c.str(o, k); s != "" && s != "round-robin" {
				c.dropField(o, path, k, "gatehouse balances by weighted round robin only")
			}
		case "hash_on", "hash_fallback":
			if s, _ := c.str(o, k); s != "" && s != "none" {
				c.dropField(o, path, k, "gatehouse has no consistent hashing")
			}
		}
	}
	for i, t := range c.items(o.get("targets")) {
		c.readTarget(u, t, fmt.Sprintf("%s.targets[%d]", path, i))
	}
	if name != "" {
		c.upstreams[name] = u
	}
	if id, ok := c.str(o, "id"); ok {
		c.upstreams[id] = u
	}
}

func (c *conv) readTopTarget(n *yaml.Node, path string) {
	o := c.object(n)
	if o == nil {
		return
	}
	ref, _ := c.ref(o, "upstream")
	u := c.upstreams[ref]
	if u == nil {
		c.drop(o.node, path, "target", "names no upstream of this file")
		return
	}
	c.readTarget(u, n, path)
}

func (c *conv) readTarget(u *upstream, n *yaml.Node, path string) {
	o := c.object(n)
	if o == nil {
		return
	}
	t, _ := c.str(o, "target")
	w := kongTargetWeight
	if o.has("weight") {
		w, _ = c.integer(o, "weight")
	}
	host, port, err := net.SplitHostPort(t)
	if err != nil {
		host, port = t, strconv.Itoa(kongTargetPort)
	}
	if host == "" {
		c.drop(o.node, path, "target "+strconv.Quote(t), "is not host:port")
		return
	}
	u.targets = append(u.targets, target{hostPort: net.JoinHostPort(host, port), weight: w})
}

// service is a Kong service being converted; gh is nil when it was left
// out.
type service struct {
	gh     *gatehouse.Service
	node   *yaml.Node
	path   string
	routes []*route
}

func (c *conv) readService(n *yaml.Node, path string) {
	o := c.object(n)
	if o == nil {
		c.drop(n, path, "service", "is not a mapping")
		return
	}
	s := &service{node: o.node, path: path}
	kname, _ := c.str(o, "name")
	kid, _ := c.str(o, "id")
	for _, k := range []string{kid, kname} {
		if k != "" {
			c.serviceBy[k] = s
		}
	}
	what := c.describe("service", o, "name", "id")
	gh, why := c.convertService(o, path)
	if gh != nil {
		gh.ID = c.newID(gatehouse.KindService, kid, kname, gh.Name)
		s.gh = gh
		c.doc.Services = append(c.doc.Services, gh)
	} else {
		c.drop(o.node, path, what, why+"; its routes and plugins are left out with it")
	}
	c.services = append(c.services, s)
	for i, r := range c.items(o.get("routes")) {
		c.readRoute(r, fmt.Sprintf("%s.routes[%d]", path, i), s)
	}
	for i, p := range c.items(o.get("plugins")) {
		c.readPlugin(p, fmt.Sprintf("%s.plugins[%d]", path, i), scope{service: s})
	}
}

// convertService returns the gatehouse service, or nil and why not.
func (c *conv) convertService(o *obj, path string) (*gatehouse.Service, string) {
	if !c.boolean(o, "enabled", true) {
		return nil, "is disabled (enabled: false)"
	}
	protocol, host, port, basePath := "http", "", "", ""
	if u, ok := c.str(o, "url"); ok {
		p, err := url.Parse(u)
		if err != nil || p.Host == "" {
			return nil, fmt.Sprintf("has url %q, which is not a URL with a host", u)
		}
		protocol, host, port, basePath = p.Scheme, p.Hostname(), p.Port(), p.EscapedPath()
		if protocol == "" {
			protocol = "http"
		}
		if p.RawQuery != "" || p.Fragment != "" {
			c.dropField(o, path, "url", "its query or fragment: Kong ignores them too, and gatehouse refuses them")
		}
	} else {
		if s, ok := c.str(o, "protocol"); ok {
			protocol = s
		}
		host, _ = c.str(o, "host")
		port = "80" // Kong's default whatever the protocol, unlike url's
		if p, ok := c.integer(o, "port"); ok {
			port = strconv.Itoa(p)
		}
		basePath, _ = c.str(o, "path")
	}
	// gRPC is HTTP/2 to the upstream: grpc over cleartext (h2c), grpcs
	// over TLS.
	h2 := false
	switch protocol {
	case "grpc":
		protocol, h2 = "http", true
	case "grpcs":
		protocol, h2 = "https", true
	case "http", "https":
	default:
		return nil, fmt.Sprintf("has protocol %s; gatehouse proxies http, https, grpc and grpcs only", protocol)
	}
	if (protocol == "http" && port == "80") || (protocol == "https" && port == "443") {
		port = ""
	}
	s := gatehouse.NewService()
	kname, _ := c.str(o, "name")
	s.Name = c.newName(gatehouse.KindService, kname, host)
	s.Tags = c.tags(o, path)
	if u := c.upstreams[host]; u != nil {
		if len(u.targets) == 0 {
			return nil, fmt.Sprintf("names upstream %q, which has no targets", host)
		}
		s.Targets = c.targets(u, protocol, basePath)
	} else {
		hp := host
		if port != "" {
			hp = net.JoinHostPort(host, port)
		} else if strings.Contains(host, ":") {
			hp = "[" + host + "]"
		}
		s.URL = protocol + "://" + hp + basePath
	}
	c.timeouts(o, path, s)
	if h2 {
		s.Protocol = gatehouse.ProtocolHTTP2
	}
	if protocol == "https" {
		// Kong uses its TLS settings for https upstreams only.
		s.TLS = c.serviceTLS(o, path, s.Name)
	}
	if inv, unp := s.Check(); len(inv)+len(unp) > 0 {
		all := append(inv, unp...)
		return nil, fmt.Sprintf("converts to a service gatehouse refuses: %s %s", all[0].Field, all[0].Message)
	}
	return s, ""
}

// targets converts an upstream's targets, scaling weights into
// gatehouse's range if they exceed it.
func (c *conv) targets(u *upstream, protocol, basePath string) []gatehouse.Target {
	top := 0
	for _, t := range u.targets {
		top = max(top, t.weight)
	}
	scaled := false
	var out []gatehouse.Target
	for _, t := range u.targets {
		w := t.weight
		if top > gatehouse.MaxWeight && w > 0 {
			w, scaled = max(1, w*gatehouse.MaxWeight/top), true
		}
		out = append(out, gatehouse.Target{URL: protocol + "://" + t.hostPort + basePath, Weight: w})
	}
	if scaled {
		c.drop(u.node, u.path, "upstream "+strconv.Quote(u.name)+" weights",
			fmt.Sprintf("scaled to gatehouse's 0 to %d, keeping their proportions as nearly as whole numbers can", gatehouse.MaxWeight))
	}
	return out
}

// timeouts converts retries and timeouts, reporting what gatehouse
// cannot hold.
func (c *conv) timeouts(o *obj, path string, s *gatehouse.Service) {
	s.ConnectTimeoutMS, s.ReadTimeoutMS, s.Retries = kongTimeoutMS, kongTimeoutMS, 5
	if v, ok := c.integer(o, "connect_timeout"); ok {
		s.ConnectTimeoutMS = v
	}
	if s.ConnectTimeoutMS > gatehouse.MaxConnectTimeoutMS || s.ConnectTimeoutMS < 1 {
		s.ConnectTimeoutMS = min(max(s.ConnectTimeoutMS, 1), gatehouse.MaxConnectTimeoutMS)
		c.dropField(o, path, "connect_timeout", fmt.Sprintf("gatehouse's connect_timeout_ms is 1 to %d; converted as %d", gatehouse.MaxConnectTimeoutMS, s.ConnectTimeoutMS))
	}
	if v, ok := c.integer(o, "read_timeout"); ok {
		s.ReadTimeoutMS = v
	}
	if s.ReadTimeoutMS > gatehouse.MaxReadTimeoutMS || s.ReadTimeoutMS < 1 {
		s.ReadTimeoutMS = min(max(s.ReadTimeoutMS, 1), gatehouse.MaxReadTimeoutMS)
		c.dropField(o, path, "read_timeout", fmt.Sprintf("gatehouse's read_timeout_ms is 1 to %d; converted as %d", gatehouse.MaxReadTimeoutMS, s.ReadTimeoutMS))
	}
	if v, ok := c.integer(o, "write_timeout"); ok && v != kongTimeoutMS {
		c.dropField(o, path, "write_timeout", "gatehouse has no timeout between two writes to the upstream")
	}
	if v, ok := c.integer(o, "retries"); ok {
		s.Retries = v
	}
	if s.Retries > gatehouse.MaxRetries || s.Retries < 0 {
		s.Retries = min(max(s.Retries, 0), gatehouse.MaxRetries)
		c.dropField(o, path, "retries", fmt.Sprintf("gatehouse retries at most %d times; converted as %d", gatehouse.MaxRetries, s.Retries))
	}
}

// route is a Kong route being converted; gh is nil when it was left out.
type route struct {
	gh   *gatehouse.Route
	svc  *service
	node *yaml.Node
	path string
	what string
	// guarded: a plugin that guards the route could not be converted, so
	// the route is left out (set while finishing plugins).
	guarded string
}

// routeProtocols are the route protocols gatehouse serves, each as the
// listener it comes in on: gRPC is HTTP/2 over one or the other.
var routeProtocols = map[string]string{"http": "http", "https": "https", "grpc": "http", "grpcs": "https"}

func (c *conv) readRoute(n *yaml.Node, path string, parent *service) {
	o := c.object(n)
	if o == nil {
		c.drop(n, path, "route", "is not a mapping")
		return
	}
	r := &route{svc: parent, node: o.node, path: path, what: c.describe("route", o, "name", "id")}
	kname, _ := c.str(o, "name")
	kid, _ := c.str(o, "id")
	for _, k := range []string{kid, kname} {
		if k != "" {
			c.routeBy[k] = r
		}
	}
	if parent == nil {
		if ref, ok := c.ref(o, "service"); ok {
			r.svc = c.serviceBy[ref]
			if r.svc == nil {
				c.drop(o.node, path, r.what, fmt.Sprintf("names service %q, which this file does not hold", ref))
			}
		} else {
			c.drop(o.node, path, r.what, "has no service; a gatehouse route always forwards to one")
		}
	}
	if r.svc != nil {
		r.svc.routes = append(r.svc.routes, r)
		if r.svc.gh != nil {
			gh, why := c.convertRoute(o, path, r.svc)
			if gh != nil {
				gh.ID = c.newID(gatehouse.KindRoute, kid, kname, gh.Name, r.svc.gh.Name+"-route")
				r.gh = gh
			} else {
				c.drop(o.node, path, r.what, why+"; its plugins are left out with it")
			}
		}
	}
	c.routes = append(c.routes, r)
	for i, p := range c.items(o.get("plugins")) {
		c.readPlugin(p, fmt.Sprintf("%s.plugins[%d]", path, i), scope{route: r})
	}
}

// routeConditions are Kong route match conditions gatehouse has no
// equivalent of: a route using one is left out, since without it the
// route would take requests Kong did not send to it.
var routeConditions = map[string]string{
	"headers":      "gatehouse routes do not match on headers",
	"snis":         "gatehouse routes do not match on the TLS server name",
	"sources":      "gatehouse routes do not match on the client's address",
	"destinations": "gatehouse routes do not match on the local address",
	"expression":   "gatehouse routes do not take Kong router expressions",
}

func (c *conv) convertRoute(o *obj, path string, svc *service) (*gatehouse.Route, string) {
	for _, k := range []string{"headers", "snis", "sources", "destinations", "expression"} {
		if n := c.deref(o.get(k)); n != nil && !(n.Kind != yaml.ScalarNode && len(n.Content) == 0) {
			return nil, fmt.Sprintf("matches on %s: %s, and without it would take requests Kong does not send to it", k, routeConditions[k])
		}
	}
	if o.has("protocols") {
		var ps []string
		for _, p := range c.strs(o, "protocols") {
			listener, ok := routeProtocols[p]
			if !ok {
				return nil, fmt.Sprintf("serves protocol %s; gatehouse routes serve http, https, grpc and grpcs", p)
			}
			if !slices.Contains(ps, listener) {
				ps = append(ps, listener)
			}
		}
		if len(ps) == 1 {
			c.dropField(o, path, "protocols", fmt.Sprintf("a gatehouse route serves every listener a request comes in on; Kong refused %s requests on this route with a redirect or 426",
				map[string]string{"http": "https", "https": "plain-http"}[ps[0]]))
		}
	}
	r := gatehouse.NewRoute()
	kname, _ := c.str(o, "name")
	if kname != "" {
		r.Name = c.newName(gatehouse.KindRoute, kname)
	}
	r.ServiceID = svc.gh.ID
	r.Tags = c.tags(o, path)
	// A gRPC method's path is the upstream's too: Kong's routes serving
	// grpc or grpcs default strip_path to false and refuse true.
	grpc := slices.ContainsFunc(c.strs(o, "protocols"), func(p string) bool { return p == "grpc" || p == "grpcs" })
	r.StripPath = c.boolean(o, "strip_path", !grpc)
	if grpc && r.StripPath {
		r.StripPath = false
		c.dropField(o, path, "strip_path", "Kong refuses strip_path on a route serving grpc or grpcs: the method's path must reach the upstream whole")
	}
	regex, why := c.routeMatch(o, path, r)
	if why != "" {
		return nil, why
	}
	if v, ok := c.integer(o, "regex_priority"); ok && v != 0 && regex {
		// Kong ranks regex routes by regex_priority only among routes
		// with as many match conditions; gatehouse's priority outranks
		// everything, hosts included, so carrying it over would let this
		// route win requests Kong gave a route with hosts. Without it,
		// gatehouse ranks the converted patterns by specificity, which is
		// what regex_priority usually spells out.
		c.dropField(o, path, "regex_priority", "gatehouse ranks overlapping routes by specificity (an exact path over a prefix, a literal segment over a {param}); its priority would also outrank routes with hosts, which Kong's regex_priority does not")
	}
	if c.boolean(o, "preserve_host", false) {
		c.dropField(o, path, "preserve_host", "gatehouse sends the upstream's own host in Host")
	}
	if s, _ := c.str(o, "path_handling"); s == "v1" {
		c.dropField(o, path, "path_handling", "gatehouse joins the service's path and the request's as Kong's v0 does (one slash between them)")
	}
	if inv, unp := gatehouse.NormalizeAndCheck(r); len(inv)+len(unp) > 0 {
		all := append(inv, unp...)
		return nil, fmt.Sprintf("converts to a route gatehouse refuses: %s %s", all[0].Field, all[0].Message)
	}
	return r, ""
}

// routeMatch converts a route's hosts, paths and methods into r,
// reporting each that does not convert, and says whether a regex path
// converted, or why the route cannot be converted at all.
func (c *conv) routeMatch(o *obj, path string, r *gatehouse.Route) (regex bool, why string) {
	hadHosts, hadPaths, hadMethods := false, false, false
	for i, n := range c.items(o.get("hosts")) {
		hadHosts = true
		n = c.deref(n)
		h := strings.ToLower(n.Value)
		p := fmt.Sprintf("%s.hosts[%d]", path, i)
		switch {
		case strings.HasSuffix(h, ".*"):
			c.drop(n, p, "host "+strconv.Quote(n.Value), "gatehouse has no trailing wildcard (example.*)")
		case strings.Contains(h, ":"):
			c.drop(n, p, "host "+strconv.Quote(n.Value), "gatehouse matches hosts without their port")
		case gatehouse.CheckHostPattern(h) != nil:
			c.drop(n, p, "host "+strconv.Quote(n.Value), gatehouse.CheckHostPattern(h).Error())
		case slices.Contains(r.Hosts, h):
		default:
			r.Hosts = append(r.Hosts, h)
		}
	}
	for i, n := range c.items(o.get("paths")) {
		hadPaths = true
		n = c.deref(n)
		p := fmt.Sprintf("%s.paths[%d]", path, i)
		pattern, isRegex, why := convertPath(n.Value, c.version)
		switch {
		case why != "":
			c.drop(n, p, "path "+strconv.Quote(n.Value), why)
		case slices.Contains(r.Paths, pattern):
		default:
			r.Paths = append(r.Paths, pattern)
			regex = regex || isRegex
		}
	}
	for i, n := range c.items(o.get("methods")) {
		hadMethods = true
		n = c.deref(n)
		m := strings.ToUpper(n.Value)
		switch {
		case !gatehouse.Implemented(m):
			c.drop(n, fmt.Sprintf("%s.methods[%d]", path, i), "method "+n.Value, "gatehouse answers 501 to this method before any route")
		case slices.Contains(r.Methods, m):
		default:
			r.Methods = append(r.Methods, m)
		}
	}
	// A list emptied by what was dropped would match anything: the route
	// would take requests Kong never sent to it.
	switch {
	case hadHosts && len(r.Hosts) == 0:
		return false, "none of its hosts converts"
	case hadPaths && len(r.Paths) == 0:
		return false, "none of its paths converts"
	case hadMethods && len(r.Methods) == 0:
		return false, "none of its methods converts"
	case len(r.Hosts) == 0 && len(r.Paths) == 0:
		// Kong routes with only methods match any host and path.
		r.Paths = []string{"/*"}
	}
	return regex, ""
}

// finishRoutes adds the routes that survived their plugins to the
// document, leaving out one whose match repeats an earlier route's
// (Kong allows it; gatehouse refuses it, since which of the two serves a
// request would be arbitrary).
func (c *conv) finishRoutes() {
	owner := map[string]*route{}
	for _, r := range c.routes {
		if r.gh == nil {
			continue
		}
		if r.guarded != "" {
			c.drop(r.node, r.path, r.what, r.guarded)
			continue
		}
		clash := ""
		for _, k := range r.gh.MatchKeys() {
			if o := owner[k]; o != nil {
				clash = o.path
				break
			}
		}
		if clash != "" {
			c.drop(r.node, r.path, r.what, "matches exactly the requests of "+clash+" as converted; gatehouse refuses two routes with one match")
			continue
		}
		for _, k := range r.gh.MatchKeys() {
			owner[k] = r
		}
		c.doc.Routes = append(c.doc.Routes, r.gh)
	}
}
