package kong

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse"
	"go.yaml.in/yaml/v4"
)

// fetchDefaultMaxAge is how long browsers keep a preflight's answer that
// has no Access-Control-Max-Age (Fetch: 5 seconds), as Kong's cors
// without max_age sends.
const fetchDefaultMaxAge = 5

// corsPlugin converts a cors plugin to a cors policy. Kong answers a
// preflight itself with the plugin's Access-Control-Allow-* fields and
// leaves the browser to judge them; gatehouse judges them too (403 for
// an origin, method or header it does not allow), which a browser sees
// as the same refusal. A cors plugin guards nothing, so one that does not
// convert is reported and its routes kept.
func (c *conv) corsPlugin(p *plugin, cfg *obj) {
	cp := p.path + ".config"
	creds := c.boolean(cfg, "credentials", false)
	origins, anyOrigin := c.corsOrigins(cfg, cp)
	if anyOrigin && creds {
		// Kong then echoes any Origin with Access-Control-Allow-Credentials.
		c.drop(p.o.node, p.path, p.what, "allows every origin with credentials: Kong echoed any Origin back with Access-Control-Allow-Credentials, "+
			"which lets every site act as the user, and gatehouse refuses it; list the origins in a cors policy by hand")
		return
	}
	if !anyOrigin && len(origins) == 0 {
		c.drop(p.o.node, p.path, p.what, "none of its origins converts; without a cors policy browsers refuse cross-origin reads, as they did every origin Kong did not list")
		return
	}
	cors := &gatehouse.CORSConfig{}
	cors.SetDefaults()
	cors.AllowCredentials = creds
	if anyOrigin {
		cors.AllowOrigins = []string{"*"}
	} else {
		cors.AllowOrigins = origins
	}
	if cfg.has("methods") {
		cors.AllowMethods = []string{}
		for i, n := range c.items(cfg.get("methods")) {
			n = c.deref(n)
			m := strings.ToUpper(n.Value)
			switch {
			case m == "TRACE" || m == "CONNECT":
				c.drop(n, fmt.Sprintf("%s.methods[%d]", cp, i), "method "+n.Value, "gatehouse answers 501 to this method before any route")
			case !slices.Contains(cors.AllowMethods, m):
				cors.AllowMethods = append(cors.AllowMethods, m)
			}
		}
		// Browsers take the CORS-safelisted methods whatever Kong's answer
		// listed (Fetch); gatehouse allows only those it lists.
		for _, m := range []string{"GET", "HEAD", "POST"} {
			if !slices.Contains(cors.AllowMethods, m) {
				cors.AllowMethods = append(cors.AllowMethods, m)
			}
		}
	}
	// Without headers Kong echoes Access-Control-Request-Headers: any
	// header, Authorization too, which gatehouse's "*" does not cover.
	cors.AllowHeaders = c.corsHeaders(cfg, cp, "headers", creds)
	if len(c.items(cfg.get("headers"))) == 0 {
		cors.AllowHeaders = []string{"*", "Authorization"}
	}
	cors.ExposeHeaders = c.corsHeaders(cfg, cp, "exposed_headers", creds)
	cors.MaxAgeSeconds = fetchDefaultMaxAge
	if cfg.has("max_age") {
		v, ok := c.integer(cfg, "max_age")
		switch {
		case !ok:
			c.dropField(cfg, cp, "max_age", fmt.Sprintf("is not a whole number of seconds, which browsers ignore; converted as their default, %d", fetchDefaultMaxAge))
		case v < 0 || v > 86400:
			cors.MaxAgeSeconds = min(max(v, 0), 86400)
			c.dropField(cfg, cp, "max_age", fmt.Sprintf("gatehouse's max_age_seconds is 0 to 86400; converted as %d", cors.MaxAgeSeconds))
		default:
			cors.MaxAgeSeconds = v
		}
	}
	if c.boolean(cfg, "preflight_continue", false) {
		c.dropField(cfg, cp, "preflight_continue", "gatehouse answers preflight requests itself: the upstream no longer sees them, and its answer to them no longer counts")
	}
	if c.boolean(cfg, "private_network", false) {
		c.dropField(cfg, cp, "private_network", "gatehouse does not answer Access-Control-Request-Private-Network: browsers that ask it refuse public sites' requests to this route")
	}
	c.policy(p, gatehouse.PolicyCORS, "", cors)
}

// corsOrigins converts a cors plugin's origins, reporting each that does
// not convert; any is true when Kong allowed every origin (no origins,
// or "*" among them).
func (c *conv) corsOrigins(cfg *obj, cp string) (origins []string, any bool) {
	items := c.items(cfg.get("origins"))
	if len(items) == 0 {
		return nil, true
	}
	for _, n := range items {
		if n = c.deref(n); n.Kind == yaml.ScalarNode && n.Value == "*" {
			return nil, true
		}
	}
	for i, n := range items {
		n = c.deref(n)
		if n.Kind != yaml.ScalarNode {
			continue
		}
		o, why := corsOrigin(n.Value)
		switch {
		case why != "":
			c.drop(n, fmt.Sprintf("%s.origins[%d]", cp, i), "origin "+strconv.Quote(n.Value), why)
		case !slices.Contains(origins, o):
			origins = append(origins, o)
		}
	}
	return origins, false
}

// corsOrigin converts one of Kong's origins, or says why not. Kong takes
// an entry with only letters, digits and ".:/-" as an origin, compared
// after dropping the scheme's default port; anything else as a regular
// expression anchored at both ends, matched against the whole origin if
// it holds ':', else against the host alone. A regular expression
// converts only when it spells out a single origin (https://a\.example\.com).
func corsOrigin(s string) (string, string) {
	plain := true
	for i := 0; i < len(s); i++ {
		if !isOriginChar(s[i]) {
			plain = false
			break
		}
	}
	if !plain {
		lit, ok := regexLiteral(strings.TrimSuffix(strings.TrimPrefix(s, "^"), "$"))
		if !ok {
			return "", "Kong matched it as a regular expression; gatehouse's origins are exact, or https://*.example.com for any subdomain: list the origins it stands for"
		}
		if !strings.Contains(s, ":") {
			return "", "Kong matched this regular expression against the host alone, with any scheme and port; gatehouse's origins name the scheme: list them"
		}
		s = lit
	}
	if !strings.Contains(s, "://") {
		return "", "has no scheme, so Kong matched no browser's origin with it"
	}
	o, ok := gatehouse.NormalizeOrigin(s)
	if !ok {
		return "", "is not an origin (scheme://host[:port]) gatehouse takes"
	}
	return o, ""
}

func isOriginChar(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '.' || b == ':' || b == '/' || b == '-'
}

// regexLiteral returns the text a regular expression matches when it
// matches only that: origin characters, with '.' escaped (an unescaped
// one matches any character).
func regexLiteral(re string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(re); i++ {
		ch := re[i]
		switch {
		case ch == '\\' && i+1 < len(re) && strings.IndexByte(".:/-", re[i+1]) >= 0:
			i++
			b.WriteByte(re[i])
		case ch == '.' || !isOriginChar(ch):
			return "", false
		default:
			b.WriteByte(ch)
		}
	}
	return b.String(), b.Len() > 0
}

// corsHeaders converts a cors plugin's list of header names. With
// credentials, browsers read "*" as a header's name, so that it allowed
// or exposed nothing: it is left out, and reported.
func (c *conv) corsHeaders(cfg *obj, cp, key string, creds bool) []string {
	out := []string{}
	for i, n := range c.items(cfg.get(key)) {
		n = c.deref(n)
		if n.Kind != yaml.ScalarNode {
			continue
		}
		h := strings.TrimSpace(n.Value)
		switch {
		case h == "*" && creds:
			c.drop(n, fmt.Sprintf("%s.%s[%d]", cp, key, i), "header \"*\"", "with credentials browsers read \"*\" as a header's name, so it stood for none; left out")
		case slices.ContainsFunc(out, func(x string) bool { return strings.EqualFold(x, h) }):
		default:
			out = append(out, h)
		}
	}
	if key == "exposed_headers" && slices.Contains(out, "*") {
		// Browsers read "*" as every header, the others with it adding
		// nothing; gatehouse takes it alone.
		return []string{"*"}
	}
	return out
}
