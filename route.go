package gatehouse

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/gatehouse/gatehouse/internal/media"
)

// Route sends matching requests to a service.
//
// A request matches when its host matches one of Hosts (exact, or a
// "*.example.com" wildcard for any subdomain), its path matches one of Paths,
// and its method is one of Methods; an empty list matches anything. A path
// is exact ("/users"), has "{param}" segments matching one non-empty
// segment each ("/users/{id}"), or ends in "*" to match any path that starts
// with what comes before it ("/api/*").
type Route struct {
	Meta
	Tagged
	Name      string   `json:"name"`
	Hosts     []string `json:"hosts"`
	Paths     []string `json:"paths"`
	Methods   []string `json:"methods"`
	ServiceID string   `json:"service_id"`
	// StripPath removes the matched path prefix before forwarding.
	StripPath bool `json:"strip_path"`
	// Priority orders overlapping routes: the higher wins. Default 0.
	Priority int `json:"priority"`
	// MaxBodyBytes limits request bodies on this route; over it is 413.
	// Zero means the data plane's default (--proxy-max-body-bytes).
	MaxBodyBytes int64 `json:"max_body_bytes"`
	// Policies are the ids of the policies that apply to the route.
	Policies []string `json:"policies"`
	// Upgrades are the protocols (Upgrade tokens, case-insensitive) a
	// client may switch to on this route; the connection is then tunnelled
	// to the upstream, past every policy. A request asking for another is
	// forwarded as an ordinary request, without its Upgrade. Default
	// ["websocket"]; empty allows none. h2c is never allowed: gatehouse
	// speaks HTTP/2 itself, and a tunnelled HTTP/2 connection would carry
	// requests for any path to the upstream unchecked.
	Upgrades []string `json:"upgrades"`
	// Import marks a route that an import generated from a spec (nil for
	// one made by hand), so that importing again updates and removes only
	// the routes it made. Only the server sets it (KeepServerSet).
	Import *RouteImport `json:"import,omitempty"`
}

// RouteImport says which spec and operation a route was imported from.
type RouteImport struct {
	SpecID string `json:"spec_id"`
	// Operation is the operation's method and path template as the
	// document writes them ("GET /pets/{petId}"): what identifies it
	// across imports, whatever its operationId.
	Operation   string `json:"operation"`
	OperationID string `json:"operation_id,omitempty"`
}

// KeepServerSet gives the route the import marker of current (none for a
// new route), whatever the client sent: a client echoing back what it
// read changes nothing, and cannot mark its own route as imported.
func (r *Route) KeepServerSet(current Resource) {
	r.Import = nil
	if c, ok := current.(*Route); ok && c.Import != nil {
		imp := *c.Import
		r.Import = &imp
	}
}

// Limits of a route's match.
const (
	MaxRouteHosts   = 64
	MaxRoutePaths   = 64
	MaxRouteMethods = 16
	// MaxMatchKeys bounds hosts × paths × methods, which the store indexes
	// to reject a route that duplicates another's match.
	MaxMatchKeys = 1024
	MaxPriority  = 1_000_000
	// MaxBodyLimit is the largest body limit a route may set: 1 TiB.
	MaxBodyLimit = 1 << 40
	// MaxRouteUpgrades bounds the protocols a route may tunnel.
	MaxRouteUpgrades = 16
)

// DefaultUpgrades are the upgrades of a route that sets none: WebSocket.
// A route stored before the field existed has none set (nil) and gets
// them too.
var DefaultUpgrades = []string{"websocket"}

// NewRoute returns a route with every default set.
func NewRoute() *Route {
	return &Route{Hosts: []string{}, Paths: []string{}, Methods: []string{}, Policies: []string{},
		Upgrades: slices.Clone(DefaultUpgrades)}
}

func (r *Route) Kind() Kind  { return KindRoute }
func (r *Route) Base() *Meta { return &r.Meta }

// Index makes the store refuse a second route with the same name, or one
// that would match some request exactly as this one does at the same
// priority (which of the two served it would be arbitrary).
func (r *Route) Index() Index {
	keys := r.MatchKeys()
	unique := make([]string, 0, len(keys)+1)
	if r.Name != "" {
		unique = append(unique, "name:"+r.Name)
	}
	unique = append(unique, keys...)
	return Index{Name: r.Name, Refs: append([]Ref{{KindService, r.ServiceID}}, policyRefs(r.Policies)...), Unique: unique}
}

// MatchKeys returns one key per host × path × method the route matches,
// normalised so that equal matches have equal keys: hosts lowercased,
// parameter names dropped, methods uppercased, "*" for an empty list.
func (r *Route) MatchKeys() []string {
	hosts := orAny(r.Hosts, strings.ToLower)
	paths := orAny(r.Paths, normalizePathPattern)
	methods := orAny(r.Methods, strings.ToUpper)
	keys := make([]string, 0, len(hosts)*len(paths)*len(methods))
	for _, h := range hosts {
		for _, p := range paths {
			for _, m := range methods {
				keys = append(keys, fmt.Sprintf("match:%d %s %s %s", r.Priority, m, h, p))
			}
		}
	}
	sort.Strings(keys)
	return keys
}

func orAny(list []string, norm func(string) string) []string {
	if len(list) == 0 {
		return []string{"*"}
	}
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = norm(s)
	}
	return out
}

func normalizePathPattern(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			segs[i] = "{}"
		}
	}
	return strings.Join(segs, "/")
}

func (r *Route) Check() (invalid, unprocessable []FieldError) {
	var bad, semantic fields
	checkMeta(&r.Meta, &bad)
	checkTags("tags", r.Tags, &bad)
	checkName(r.Name, false, &bad)
	if r.ServiceID == "" {
		bad.add("service_id", "is required")
	} else if !ValidID(r.ServiceID) {
		bad.add("service_id", IDRule)
	}
	if len(r.Hosts) == 0 && len(r.Paths) == 0 {
		bad.add("paths", "is required unless hosts are given")
	}
	checkList("hosts", r.Hosts, MaxRouteHosts, strings.ToLower, &bad)
	checkList("paths", r.Paths, MaxRoutePaths, normalizePathPattern, &bad)
	checkList("methods", r.Methods, MaxRouteMethods, strings.ToUpper, &bad)
	for i, h := range r.Hosts {
		if h == "" {
			continue // reported by checkList
		}
		if err := CheckHostPattern(h); err != nil {
			semantic.add(fmt.Sprintf("hosts[%d]", i), "%v", err)
		}
	}
	for i, p := range r.Paths {
		if p == "" {
			continue
		}
		if err := CheckPathPattern(p); err != nil {
			semantic.add(fmt.Sprintf("paths[%d]", i), "%v", err)
		}
	}
	for i, m := range r.Methods {
		if len(r.Methods) > MaxRouteMethods {
			break // reported by checkList
		}
		switch {
		case m == "":
		case !IsToken(m):
			bad.add(fmt.Sprintf("methods[%d]", i), "must be an HTTP method name such as GET")
		case !Implemented(strings.ToUpper(m)):
			// The data plane answers 501 to methods it does not know
			// before it looks for a route: such a route never matches.
			semantic.add(fmt.Sprintf("methods[%d]", i), "%q is not a method gatehouse serves (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE)", m)
		}
	}
	checkList("upgrades", r.Upgrades, MaxRouteUpgrades, strings.ToLower, &bad)
	for i, u := range r.Upgrades {
		switch {
		case u == "" || len(r.Upgrades) > MaxRouteUpgrades:
			// reported by checkList
		case !IsToken(u):
			bad.add(fmt.Sprintf("upgrades[%d]", i), "must be a protocol name such as websocket")
		case strings.EqualFold(u, "h2c"):
			semantic.add(fmt.Sprintf("upgrades[%d]", i), "h2c cannot be tunnelled: gatehouse speaks HTTP/2 itself, and a tunnel would take every request on the connection past the route's policies")
		}
	}
	checkRange("priority", r.Priority, -MaxPriority, MaxPriority, &bad)
	checkPolicyIDs(r.Policies, &bad)
	if r.MaxBodyBytes < 0 || r.MaxBodyBytes > MaxBodyLimit {
		bad.add("max_body_bytes", "must be between 0 (the default) and %d", int64(MaxBodyLimit))
	}
	if len(bad) == 0 && max(len(r.Hosts), 1)*max(len(r.Paths), 1)*max(len(r.Methods), 1) > MaxMatchKeys {
		semantic.add("paths", "hosts × paths × methods must be at most %d combinations; split the route", MaxMatchKeys)
	}
	return bad, semantic
}

// Normalize puts methods in upper case and hosts and upgrades in lower
// case, the form the data plane compares against.
func (r *Route) Normalize() {
	for i := range r.Upgrades {
		r.Upgrades[i] = strings.ToLower(r.Upgrades[i])
	}
	for i := range r.Methods {
		r.Methods[i] = strings.ToUpper(r.Methods[i])
	}
	for i := range r.Hosts {
		r.Hosts[i] = strings.ToLower(r.Hosts[i])
	}
}

func checkList(field string, list []string, limit int, norm func(string) string, f *fields) {
	if len(list) > limit {
		f.add(field, "must have at most %d entries", limit)
		return
	}
	seen := map[string]bool{}
	for i, s := range list {
		if s == "" {
			f.add(fmt.Sprintf("%s[%d]", field, i), "must not be empty")
			continue
		}
		if seen[norm(s)] {
			f.add(fmt.Sprintf("%s[%d]", field, i), "repeats an earlier entry")
		}
		seen[norm(s)] = true
	}
}

// IsToken reports whether s is an RFC 9110 token: the syntax of a method,
// a header name, a media type's type and subtype.
func IsToken(s string) bool { return media.IsToken(s) }
