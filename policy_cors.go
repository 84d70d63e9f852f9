package gatehouse

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// CORSConfig is a route's CORS policy. Gatehouse answers a preflight
// (OPTIONS with Origin and Access-Control-Request-Method) itself, before
// any other policy and without the upstream: 204 with the
// Access-Control-Allow-* fields when the origin, the method and every
// requested header are allowed, else 403 naming which is not. An actual
// request from an allowed origin gets Access-Control-Allow-Origin (and
// Expose-Headers, Allow-Credentials) on whatever answers it, the
// upstream or a policy's problem; from another origin, none. Every
// response of the route has Vary: Origin. CORS fields the upstream sends
// are replaced by the policy's.
type CORSConfig struct {
	// AllowOrigins are origins as browsers send them (scheme://host[:port],
	// without a path), "https://*.example.com" for any subdomain of
	// example.com (not example.com itself), or "*" alone for any origin.
	// Read back as browsers serialise them: lower case, without the
	// scheme's default port.
	AllowOrigins []string `json:"allow_origins"`
	// AllowMethods a preflight may ask for; "*" (default) is any method
	// the route serves (the answer names the method asked for).
	AllowMethods []string `json:"allow_methods"`
	// AllowHeaders are the request header names a preflight may ask for,
	// case-insensitive; "*" is any but Authorization, which a wildcard
	// never covers (Fetch), so it is listed by name. Default none: only
	// the CORS-safelisted headers, which browsers send without asking.
	AllowHeaders []string `json:"allow_headers"`
	// ExposeHeaders are the response header names scripts may read beyond
	// the safelisted ones; "*" is all of them (not with credentials,
	// where browsers read it as a name).
	ExposeHeaders []string `json:"expose_headers"`
	// AllowCredentials lets browsers send cookies and HTTP authentication
	// and scripts read the answer. Not with the origin "*": browsers
	// refuse a wildcard on a credentialed request, and echoing any origin
	// instead would let every site act as the user.
	AllowCredentials bool `json:"allow_credentials"`
	// MaxAgeSeconds is how long a browser may reuse a preflight's answer
	// (Access-Control-Max-Age); default 600, at most 86400 (browsers cap
	// it lower: Chromium at 7200).
	MaxAgeSeconds int `json:"max_age_seconds"`
}

func (c *CORSConfig) SetDefaults() {
	*c = CORSConfig{AllowOrigins: []string{}, AllowMethods: []string{"*"}, AllowHeaders: []string{},
		ExposeHeaders: []string{}, MaxAgeSeconds: 600}
}

// MaxCORSEntries bounds each list of a cors policy.
const MaxCORSEntries = 64

// corsMethods are the methods a cors policy may allow: those gatehouse
// serves (Implemented) but TRACE, which browsers never send.
var corsMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

func init() {
	registerPolicyType(PolicyCORS, false, func(c *CORSConfig, bad, semantic *fields) {
		checkOrigins(c, bad, semantic)
		if len(c.AllowMethods) == 0 {
			bad.add("config.allow_methods", "must list at least one method, or \"*\"")
		}
		checkList("config.allow_methods", c.AllowMethods, MaxCORSEntries, func(s string) string { return s }, bad)
		for i, m := range c.AllowMethods {
			switch {
			case m == "":
			case m == "*":
				if len(c.AllowMethods) > 1 {
					bad.add(fmt.Sprintf("config.allow_methods[%d]", i), "\"*\" allows every method: list it alone")
				}
			case !slices.Contains(corsMethods, m):
				bad.add(fmt.Sprintf("config.allow_methods[%d]", i), "must be one of %s, or \"*\"", strings.Join(corsMethods, ", "))
			}
		}
		checkHeaderNames("config.allow_headers", c.AllowHeaders, bad)
		checkHeaderNames("config.expose_headers", c.ExposeHeaders, bad)
		if c.AllowCredentials && slices.Contains(c.ExposeHeaders, "*") {
			semantic.add("config.expose_headers", "cannot hold \"*\" with allow_credentials: browsers read it as a header's name; list the headers")
		}
		checkRange("config.max_age_seconds", c.MaxAgeSeconds, 0, 86400, bad)
	})
}

// checkOrigins checks allow_origins and rewrites each valid origin as
// NormalizeOrigin does.
func checkOrigins(c *CORSConfig, bad, semantic *fields) {
	switch {
	case len(c.AllowOrigins) == 0:
		bad.add("config.allow_origins", "must list at least one origin, or \"*\"")
		return
	case len(c.AllowOrigins) > MaxCORSEntries:
		bad.add("config.allow_origins", "must have at most %d entries", MaxCORSEntries)
		return
	}
	for i, o := range c.AllowOrigins {
		field := fmt.Sprintf("config.allow_origins[%d]", i)
		switch {
		case o == "":
		case o == "*":
			if len(c.AllowOrigins) > 1 {
				bad.add(field, "\"*\" allows every origin: list it alone")
			}
			if c.AllowCredentials {
				semantic.add(field, "cannot be \"*\" with allow_credentials: browsers refuse a wildcard on credentialed requests; list the origins")
			}
		default:
			norm, ok := NormalizeOrigin(o)
			if !ok {
				bad.add(field, "must be an origin, scheme://host[:port] without a path (the host may start with \"*.\" for any subdomain), or \"*\"")
				continue
			}
			c.AllowOrigins[i] = norm
		}
	}
	// Repeats are judged as browsers send origins: "https://a:443"
	// repeats "https://a".
	checkList("config.allow_origins", c.AllowOrigins, MaxCORSEntries, func(s string) string { return s }, bad)
}

// checkHeaderNames checks a cors list of header names, or "*" alone.
func checkHeaderNames(field string, list []string, f *fields) {
	checkList(field, list, MaxCORSEntries, strings.ToLower, f)
	for i, h := range list {
		switch {
		case h == "":
		case h == "*":
			if len(list) > 1 && field == "config.expose_headers" {
				f.add(fmt.Sprintf("%s[%d]", field, i), "\"*\" exposes every header: list it alone")
			}
		case !IsToken(h):
			f.add(fmt.Sprintf("%s[%d]", field, i), "must be a header name")
		}
	}
}

// NormalizeOrigin returns an allowed origin of a cors policy as browsers
// serialise origins (RFC 6454 §6.2): scheme "://" host, and ":" port
// unless it is the scheme's default, in lower case. The host may start
// with "*." (a subdomain pattern), which must leave at least two labels
// ("*.example.com", not "*.com"). It reports false for anything else:
// a path, a query, user information, "null".
func NormalizeOrigin(s string) (string, bool) {
	scheme, rest, ok := strings.Cut(strings.ToLower(s), "://")
	if !ok || !validScheme(scheme) || rest == "" {
		return "", false
	}
	host, port := rest, ""
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && !strings.HasSuffix(rest, "]") {
		host, port = rest[:i], rest[i+1:]
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '0' || port[0] == '+' {
			return "", false
		}
		if scheme == "http" && n == 80 || scheme == "https" && n == 443 {
			port = ""
		}
	}
	switch {
	case strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]"):
		a, err := netip.ParseAddr(host[1 : len(host)-1])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", false
		}
		host = "[" + a.String() + "]"
	case strings.HasPrefix(host, "*."):
		domain := host[2:]
		if !ValidHostname(domain) || !strings.Contains(domain, ".") {
			return "", false
		}
	default:
		if a, err := netip.ParseAddr(host); err == nil {
			if !a.Is4() {
				return "", false
			}
		} else if !ValidHostname(host) {
			return "", false
		}
	}
	if port != "" {
		return scheme + "://" + host + ":" + port, true
	}
	return scheme + "://" + host, true
}

// validScheme reports whether s is a URI scheme (RFC 3986 §3.1), lower
// case: http and https, and the custom schemes of app shells
// (capacitor://localhost), which send origins too.
func validScheme(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
