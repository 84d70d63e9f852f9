// Package core makes the data plane's decisions: from a request's method,
// host, path and declared length it decides which route serves it and where
// it goes upstream, or which problem answers it. It knows no HTTP engine:
// the engine reads the request, asks Decide, and does the I/O, so the same
// decisions hold whatever engine serves the connection.
//
// Checks run cheapest first and need only the request's head, so a request
// with Expect: 100-continue is refused before its body is asked for:
// method known (501), path well-formed (400), route for host and path
// (404), method allowed (405 with Allow), declared length within the
// route's limit (413).
package core

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/proxy/route"
)

// DefaultMaxBodyBytes is the body limit of routes that set none: 8 MiB.
const DefaultMaxBodyBytes = 8 << 20

// Route is a route as the data plane runs it.
type Route struct {
	ID        string
	ServiceID string
	// Template is the route's path pattern when it has exactly one, for
	// traces (http.route); "" when it has several or none, since which
	// one matched is not kept.
	Template  string
	StripPath bool
	// MaxBodyBytes limits request bodies; over it is 413.
	MaxBodyBytes int64
	// Upgrades are the protocol names (lower case) a request may switch
	// to, never h2c; an upgrade to another is not forwarded.
	Upgrades []string
}

// Upgradable reports whether the route tunnels protocol, an Upgrade
// entry (name, or name/version), compared case-insensitively by name.
func (r *Route) Upgradable(protocol string) bool {
	name, _, _ := strings.Cut(protocol, "/")
	for _, u := range r.Upgrades {
		if strings.EqualFold(u, name) {
			return true
		}
	}
	return false
}

// Config is one revision compiled for deciding. It is immutable.
type Config struct {
	Revision int64
	table    *route.Table[*Route]
}

// Options are the data plane's defaults.
type Options struct {
	// MaxBodyBytes is the body limit of a route that sets none. Zero means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
}

// Compile builds the decision structure for a revision (nil: the empty
// configuration). It fails, naming the route, when the revision cannot be
// served: a pattern that does not compile, a route whose service is not in
// the revision.
func Compile(rev *gatehouse.Revision, opts Options) (*Config, error) {
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	cfg := &Config{}
	if rev == nil {
		t, err := route.Compile[*Route](nil)
		cfg.table = t
		return cfg, err
	}
	cfg.Revision = rev.Number
	services := make(map[string]bool, len(rev.Services))
	for _, s := range rev.Services {
		services[s.ID] = true
	}
	entries := make([]route.Entry[*Route], 0, len(rev.Routes))
	for i, r := range rev.Routes {
		if !services[r.ServiceID] {
			return nil, fmt.Errorf("route %q uses service %q, which is not in the revision", r.ID, r.ServiceID)
		}
		limit := r.MaxBodyBytes
		if limit == 0 {
			limit = opts.MaxBodyBytes
		}
		entries = append(entries, route.Entry[*Route]{
			Hosts: r.Hosts, Paths: r.Paths, Methods: r.Methods,
			Priority: r.Priority, Order: i,
			Value: &Route{ID: r.ID, ServiceID: r.ServiceID, Template: template(r.Paths), StripPath: r.StripPath,
				MaxBodyBytes: limit, Upgrades: upgrades(r.Upgrades)},
		})
	}
	t, err := route.Compile(entries)
	if err != nil {
		var ee *route.EntryError
		if errors.As(err, &ee) && ee.Entry < len(rev.Routes) {
			return nil, fmt.Errorf("route %q does not compile: %s %q: %s", rev.Routes[ee.Entry].ID, ee.Field, ee.Value, ee.Reason)
		}
		return nil, err
	}
	cfg.table = t
	return cfg, nil
}

// template is Route.Template for a route's paths.
func template(paths []string) string {
	if len(paths) == 1 {
		return paths[0]
	}
	return ""
}

// upgrades are a route's upgrades as the data plane runs them: the
// default for a route stored before the field existed (nil), and never
// h2c, whatever the revision says. A tunnelled HTTP/2 connection would
// carry requests for any path past every policy; gatehouse speaks HTTP/2
// itself.
func upgrades(list []string) []string {
	if list == nil {
		list = gatehouse.DefaultUpgrades
	}
	out := make([]string, 0, len(list))
	for _, u := range list {
		if !strings.EqualFold(u, "h2c") {
			out = append(out, strings.ToLower(u))
		}
	}
	return out
}

// Request is what Decide needs of a request: its head only.
type Request struct {
	Method string
	// Host is the Host header (or :authority), port included if sent.
	Host string
	// Path is the escaped path (url.URL.EscapedPath).
	Path string
	// ContentLength is the declared body length, -1 if unknown (chunked).
	ContentLength int64
}

// Decision is Decide's answer: Err is the problem to answer, or Route is
// where to send the request.
type Decision struct {
	Err error
	// Allow lists the methods the path allows, for a 405.
	Allow string
	Route *Route
	// Path is the escaped path to send upstream (stripped if the route
	// says so), before the service's base path.
	Path   string
	Params []route.Param
}

// Decide decides what to do with a request. It allocates nothing for a
// plain route match; d.Params reuses its backing array across calls.
func (c *Config) Decide(req *Request, d *Decision) {
	*d = Decision{Params: d.Params[:0]}
	if !gatehouse.Implemented(req.Method) {
		d.Err = gatehouse.Errorf(gatehouse.ENOTIMPLEMENTED, "The request method is not implemented here.")
		return
	}
	path, ok := CleanPath(req.Path)
	if !ok {
		d.Err = gatehouse.Errorf(gatehouse.EINVALID, "The request path is malformed.")
		return
	}
	m := c.table.MatchInto(Host(req.Host), path, req.Method, d.Params)
	switch m.Outcome {
	case route.NotFound:
		d.Err = errNoRoute
		return
	case route.MethodNotAllowed:
		d.Allow = strings.Join(m.Allow, ", ")
		d.Err = gatehouse.Errorf(gatehouse.EMETHOD, "This path supports %s.", d.Allow)
		return
	}
	r := m.Value
	d.Route, d.Params, d.Path = r, m.Params, path
	if req.ContentLength > r.MaxBodyBytes {
		// Route stays set: the route's policies (credentials,
		// permissions) are checked before the declared size.
		d.Err = gatehouse.BodyTooLarge(r.MaxBodyBytes)
		return
	}
	if r.StripPath {
		rest := path[m.Matched:]
		if !strings.HasPrefix(rest, "/") {
			rest = "/" + rest
		}
		// A prefix ending mid-segment ("/api*") can leave a dot segment
		// ("/api../x" → "/../x") that would climb out of the service's
		// base path.
		if d.Path, ok = CleanPath(rest); !ok {
			d.Route = nil
			d.Err = gatehouse.Errorf(gatehouse.EINVALID, "The request path is malformed.")
			return
		}
	}
}

var errNoRoute = gatehouse.Errorf(gatehouse.ENOTFOUND, "No route matches this request.")

// Host normalises a Host header for matching: lower case, no port, no
// trailing dot, IPv6 brackets removed.
func Host(h string) string {
	// Not net.SplitHostPort: it allocates an error for the common Host
	// without a port.
	if strings.HasPrefix(h, "[") {
		if end := strings.IndexByte(h, ']'); end > 0 {
			h = h[1:end]
		}
	} else if i := strings.IndexByte(h, ':'); i >= 0 && strings.IndexByte(h[i+1:], ':') < 0 {
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	for i := 0; i < len(h); i++ {
		if c := h[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}

// CleanPath removes dot segments (RFC 3986 §5.2.4) from an escaped path,
// counting "%2e" as a dot as servers behind us may, so that "/api/../admin"
// is matched, and forwarded, as "/admin". It reports false for a path that
// is not origin-form, climbs above the root, or hides a dot segment from
// it (see dots).
func CleanPath(p string) (string, bool) {
	if p == "" || p[0] != '/' {
		return "", false
	}
	if !hasDotSegment(p) {
		return p, true
	}
	segs := strings.Split(p[1:], "/")
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		last := i == len(segs)-1
		switch dots(s) {
		case -1:
			return "", false
		case 1:
			if last {
				out = append(out, "")
			}
		case 2:
			if len(out) == 0 {
				return "", false
			}
			out = out[:len(out)-1]
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return "/" + strings.Join(out, "/"), true
}

// hasDotSegment is the fast test that spares almost every path the split.
func hasDotSegment(p string) bool {
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && i+1 < len(p) {
			j := strings.IndexByte(p[i+1:], '/')
			seg := p[i+1:]
			if j >= 0 {
				seg = seg[:j]
			}
			if dots(seg) != 0 {
				return true
			}
		}
	}
	return false
}

// dots returns 1 for a "." segment, 2 for "..", 0 otherwise, counting
// "%2e" and "%2E" as dots; and -1 for a segment that hides a dot segment
// behind a backslash or an encoded slash ("..%2Fx", "%5C.."), which an
// upstream that decodes before it normalises would climb with, or in front
// of path parameters ("..;x", ".;", "%2e%2e;jsessionid=1"), which Tomcat,
// Jetty and Spring drop before they resolve dot segments: such a path is
// refused.
func dots(seg string) int {
	if hidesDotSegment(seg) {
		return -1
	}
	return plainDots(seg)
}

// hidesDotSegment reports whether seg, split at '\\' or ';', or at an
// encoded '/', '\\' or ';', has a dot segment among its parts.
func hidesDotSegment(seg string) bool {
	if strings.IndexByte(seg, '%') < 0 && strings.IndexByte(seg, '\\') < 0 && strings.IndexByte(seg, ';') < 0 {
		return false
	}
	start := 0
	for i := 0; i < len(seg); i++ {
		width := 0
		switch {
		case seg[i] == '\\' || seg[i] == ';':
			width = 1
		case seg[i] == '%' && i+2 < len(seg):
			if enc := seg[i+1 : i+3]; strings.EqualFold(enc, "2F") || strings.EqualFold(enc, "5C") || strings.EqualFold(enc, "3B") {
				width = 3
			}
		}
		if width == 0 {
			continue
		}
		if plainDots(seg[start:i]) > 0 {
			return true
		}
		start = i + width
		i += width - 1
	}
	return start > 0 && plainDots(seg[start:]) > 0
}

func plainDots(seg string) int {
	n := 0
	for len(seg) > 0 {
		switch {
		case seg[0] == '.':
			seg = seg[1:]
		case len(seg) >= 3 && seg[0] == '%' && seg[1] == '2' && (seg[2] == 'e' || seg[2] == 'E'):
			seg = seg[3:]
		default:
			return 0
		}
		n++
		if n > 2 {
			return 0
		}
	}
	return n
}
