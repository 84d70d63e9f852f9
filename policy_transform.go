package gatehouse

import (
	"fmt"
	"net/textproto"
	"slices"
	"sort"
	"strings"
)

// TransformConfig is a route's transform policy: it changes the request
// on its way to the upstream (its path, header fields and query
// parameters) and the upstream's response header on its way back. It runs
// once every other policy let the request on (authentication included,
// so values may name the consumer; body checks included, so that they
// judge what the client sent). Responses gatehouse itself makes (problems) are not changed.
//
// Values may hold variables, written $(name): $(consumer.id),
// $(consumer.name), $(route.id), $(client.address) and $(request.id);
// "$$" is a literal "$". The syntax cannot be read as a configuration
// file's ${{ env }}. A variable without a value (no consumer on a route
// without authentication) makes the whole value empty, and an empty
// value is never sent: add adds nothing, set removes the field (the
// client's own must not pass for the policy's). So does a value that
// would hold a control character once its variables are in (a client's
// X-Request-Id): no transform splits a header field.
type TransformConfig struct {
	Request  RequestTransform  `json:"request"`
	Response ResponseTransform `json:"response"`
}

// RequestTransform is what a transform policy changes in the request.
type RequestTransform struct {
	// Path, if set, replaces the path sent upstream (before the service's
	// base path; strip_path is then moot): literal segments and the
	// route's path parameters, "/v2/accounts/{id}" for a route
	// "/users/{id}". A parameter's value is sent as one segment, escaped.
	Path    string         `json:"path"`
	Headers FieldTransform `json:"headers"`
	Query   FieldTransform `json:"query"`
}

// ResponseTransform is what a transform policy changes in the upstream's
// response.
type ResponseTransform struct {
	Headers FieldTransform `json:"headers"`
}

// FieldTransform changes header fields (names case-insensitive) or query
// parameters (names exact), in this order: remove, rename, set (replace
// every value), add (append a value).
type FieldTransform struct {
	Remove []string          `json:"remove"`
	Rename map[string]string `json:"rename"`
	Set    map[string]string `json:"set"`
	Add    map[string]string `json:"add"`
}

func (c *TransformConfig) SetDefaults() {
	*c = TransformConfig{Request: RequestTransform{Headers: emptyFieldTransform(), Query: emptyFieldTransform()},
		Response: ResponseTransform{Headers: emptyFieldTransform()}}
}

func emptyFieldTransform() FieldTransform {
	return FieldTransform{Remove: []string{}, Rename: map[string]string{}, Set: map[string]string{}, Add: map[string]string{}}
}

// MaxTransformEntries bounds each list and map of a transform policy.
const MaxTransformEntries = 64

// MaxTransformValue bounds a value of a transform policy, in bytes.
const MaxTransformValue = 4096

// TransformVariables are the variables a transform's values may use.
var TransformVariables = []string{"consumer.id", "consumer.name", "route.id", "client.address", "request.id"}

// ProtectedHeaders are the header fields no transform may set, rename or
// remove: the hop-by-hop ones, those that frame the message, and those in
// which gatehouse tells the upstream who the client is (the auth
// policies' identity fields, by their defaults; configured ones are
// refused when the revision is compiled). Proxy-*, X-Forwarded-* and
// Access-Control-* fields are all protected too: the last are the cors
// policy's, which a transform must not undo.
var ProtectedHeaders = []string{
	"Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
	"Host", "Content-Length",
	"X-Consumer-Id", "X-Consumer-Name", "X-Consumer-Groups",
	"Forwarded", "Via", "X-Real-Ip", "X-Request-Id",
}

// ProtectedHeader reports whether a transform may not touch header name.
func ProtectedHeader(name string) bool {
	c := textproto.CanonicalMIMEHeaderKey(name)
	return slices.Contains(ProtectedHeaders, c) || strings.HasPrefix(c, "Proxy-") || strings.HasPrefix(c, "X-Forwarded-") ||
		strings.HasPrefix(c, "Access-Control-")
}

func init() {
	registerPolicyType(PolicyTransform, false, func(c *TransformConfig, bad, semantic *fields) {
		checkTransformPath("config.request.path", c.Request.Path, bad)
		checkFieldTransform("config.request.headers", &c.Request.Headers, true, bad, semantic)
		checkFieldTransform("config.request.query", &c.Request.Query, false, bad, semantic)
		checkFieldTransform("config.response.headers", &c.Response.Headers, true, bad, semantic)
	})
}

// checkTransformPath checks a path template: "/" then segments, each a
// literal or a whole "{param}".
func checkTransformPath(field, p string, bad *fields) {
	if p == "" {
		return
	}
	if strings.Contains(p, "*") {
		bad.add(field, "must not contain *: a path template is literal segments and {param}s")
		return
	}
	if err := CheckPathPattern(p); err != nil {
		bad.add(field, "%s", err.Error())
		return
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "." || seg == ".." {
			bad.add(field, "must not contain the dot segment %q", seg)
			return
		}
	}
}

// TransformPathParams returns the {param} names of a path template.
func TransformPathParams(p string) []string {
	var names []string
	for seg := range strings.SplitSeq(p, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			names = append(names, seg[1:len(seg)-1])
		}
	}
	return names
}

func checkFieldTransform(field string, t *FieldTransform, header bool, bad, semantic *fields) {
	name := func(f, n string) bool {
		switch {
		case n == "":
			bad.add(f, "must not be empty")
		case len(n) > 256:
			bad.add(f, "must be at most 256 bytes")
		case header && !IsToken(n):
			bad.add(f, "must be a header name")
		case !header && strings.ContainsAny(n, "&=#\x00\r\n"):
			bad.add(f, "must be a query parameter name, without & = # or control characters")
		case header && ProtectedHeader(n):
			semantic.add(f, "cannot be changed by a transform: %s is a hop-by-hop, framing, CORS or gatehouse identity field", textproto.CanonicalMIMEHeaderKey(n))
		default:
			return true
		}
		return false
	}
	norm := func(s string) string {
		if header {
			return textproto.CanonicalMIMEHeaderKey(s)
		}
		return s
	}
	checkList(field+".remove", t.Remove, MaxTransformEntries, norm, bad)
	for i, n := range t.Remove {
		if n != "" {
			name(fmt.Sprintf("%s.remove[%d]", field, i), n)
		}
	}
	for _, m := range []struct {
		key    string
		m      map[string]string
		values bool
	}{{"rename", t.Rename, false}, {"set", t.Set, true}, {"add", t.Add, true}} {
		if len(m.m) > MaxTransformEntries {
			bad.add(field+"."+m.key, "must have at most %d entries", MaxTransformEntries)
			continue
		}
		keys := make([]string, 0, len(m.m))
		for k := range m.m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		seen := map[string]string{}
		for _, k := range keys {
			f := field + "." + m.key + "." + k
			name(f, k)
			if prev, dup := seen[norm(k)]; dup && header {
				bad.add(f, "repeats %s (header names are case-insensitive)", prev)
			}
			seen[norm(k)] = k
			v := m.m[k]
			if !m.values {
				if name(f, v) && header {
					m.m[k] = textproto.CanonicalMIMEHeaderKey(v)
				}
				continue
			}
			if msg := checkTransformValue(v); msg != "" {
				if strings.HasPrefix(msg, "unknown") {
					semantic.add(f, "%s", msg)
				} else {
					bad.add(f, "%s", msg)
				}
			}
		}
	}
}

// checkTransformValue returns why v is not a transform value, "" if it
// is one. A message starting "unknown" is about meaning (422).
func checkTransformValue(v string) string {
	if len(v) > MaxTransformValue {
		return fmt.Sprintf("must be at most %d bytes", MaxTransformValue)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return "must not contain control characters (CR, LF, NUL...)"
		}
	}
	_, err := ParseTransformValue(v)
	if err != nil {
		return err.Error()
	}
	return ""
}

// TransformPart is a piece of a parsed transform value: a literal, or the
// variable Var names.
type TransformPart struct {
	Literal string
	Var     string
}

// ParseTransformValue splits a transform value into literals and
// variables.
func ParseTransformValue(v string) ([]TransformPart, error) {
	var parts []TransformPart
	var lit strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '$' || i+1 == len(v) {
			lit.WriteByte(v[i])
			continue
		}
		switch v[i+1] {
		case '$':
			lit.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(v[i:], ')')
			if end < 0 {
				return nil, fmt.Errorf("unknown variable: $( is not closed (write $$ for a literal $)")
			}
			name := v[i+2 : i+end]
			if !slices.Contains(TransformVariables, name) {
				return nil, fmt.Errorf("unknown variable $(%s): the variables are $(%s)", name, strings.Join(TransformVariables, "), $("))
			}
			if lit.Len() > 0 {
				parts = append(parts, TransformPart{Literal: lit.String()})
				lit.Reset()
			}
			parts = append(parts, TransformPart{Var: name})
			i += end
		default:
			lit.WriteByte('$')
		}
	}
	if lit.Len() > 0 {
		parts = append(parts, TransformPart{Literal: lit.String()})
	}
	return parts, nil
}

// checkTransformRef judges a route's reference to a transform policy:
// every path of the route must capture each parameter the policy's path
// template names, or some request would have none to send. (A service's
// routes, and a policy changed after routes listed it, are judged when
// the revision is deployed.)
func checkTransformRef(fr FieldRef, p *Policy) string {
	if fr.paths == nil {
		return ""
	}
	cfg, err := p.DecodeConfig()
	c, ok := cfg.(*TransformConfig)
	if err != nil || !ok || c.Request.Path == "" {
		return ""
	}
	for _, name := range TransformPathParams(c.Request.Path) {
		if len(fr.paths) == 0 {
			return fmt.Sprintf("refers to transform policy %q, whose path names {%s}, but the route has no path to capture it", fr.Ref.ID, name)
		}
		for _, path := range fr.paths {
			if !slices.Contains(TransformPathParams(path), name) {
				return fmt.Sprintf("refers to transform policy %q, whose path names {%s}, which the route's path %q does not capture", fr.Ref.ID, name, path)
			}
		}
	}
	return ""
}
