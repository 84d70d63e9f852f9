package policy

import (
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/gatehouse/gatehouse"
)

func init() { register(gatehouse.PolicyTransform, buildTransform) }

// Transform is a route's compiled transform policies
// (gatehouse.TransformConfig). It refuses nothing: its Late step, run
// once every other check let the request on, changes the request's
// header and query, and sets Request.Path if the path is rewritten; the
// data plane hands the upstream's response header to Respond before it
// is copied. Several transform policies at one level
// all apply, in the order listed.
type Transform struct {
	list []*transform
}

type transform struct {
	// path is the path template, nil if the path is kept: each part an
	// escaped literal ("/v2/accounts/") or a parameter's name.
	path                   []pathPart
	request, query, answer fieldOps
}

type pathPart struct {
	literal, param string
}

// fieldOps are a FieldTransform's operations, in the order they run;
// header names canonical.
type fieldOps struct {
	remove   []string
	rename   []rename
	set, add []valued
}

type rename struct{ from, to string }

type valued struct {
	name  string
	parts []gatehouse.TransformPart
	// fixed is the field value of a value without variables, made once
	// and shared: header maps only ever replace a value slice (append
	// to a full one copies it), so no request writes into it.
	fixed []string
}

func (o *fieldOps) empty() bool {
	return len(o.remove)+len(o.rename)+len(o.set)+len(o.add) == 0
}

func buildTransform(b *Build, pols []*gatehouse.Policy) (Step, error) {
	cfgs, err := configs[gatehouse.TransformConfig](pols)
	if err != nil {
		return nil, err
	}
	t := &Transform{}
	for i, c := range cfgs {
		for _, ft := range []*gatehouse.FieldTransform{&c.Request.Headers, &c.Response.Headers} {
			if h := touchesIdentity(ft, b.identity); h != "" {
				return nil, fmt.Errorf("policy %q changes %s, which an auth policy of the revision sends as the consumer's identity", pols[i].ID, h)
			}
		}
		ct, err := compileTransform(c, b.Route)
		if err != nil {
			return nil, fmt.Errorf("policy %q: %w", pols[i].ID, err)
		}
		t.list = append(t.list, ct)
	}
	return t, nil
}

// touchesIdentity returns the first of identity (canonical names of the
// auth policies' identity fields) that ft names, "" if none.
func touchesIdentity(ft *gatehouse.FieldTransform, identity []string) string {
	names := slices.Clone(ft.Remove)
	for _, m := range []map[string]string{ft.Set, ft.Add} {
		for k := range m {
			names = append(names, k)
		}
	}
	for k, v := range ft.Rename {
		names = append(names, k, v)
	}
	for _, n := range names {
		if c := textproto.CanonicalMIMEHeaderKey(n); slices.Contains(identity, c) {
			return c
		}
	}
	return ""
}

func compileTransform(c *gatehouse.TransformConfig, route *gatehouse.Route) (*transform, error) {
	t := &transform{
		request: compileOps(&c.Request.Headers, true),
		query:   compileOps(&c.Request.Query, false),
		answer:  compileOps(&c.Response.Headers, true),
	}
	if c.Request.Path == "" {
		return t, nil
	}
	// Every path of the route must capture each parameter the template
	// names, or some request would have none to send.
	for _, name := range gatehouse.TransformPathParams(c.Request.Path) {
		if route == nil || len(route.Paths) == 0 {
			return nil, fmt.Errorf("the path template names {%s}, but the route has no path to capture it", name)
		}
		for _, p := range route.Paths {
			if !slices.Contains(gatehouse.TransformPathParams(p), name) {
				return nil, fmt.Errorf("the path template names {%s}, which the route's path %q does not capture", name, p)
			}
		}
	}
	var lit strings.Builder
	for i, seg := range strings.Split(c.Request.Path, "/") {
		if i > 0 {
			lit.WriteByte('/')
		}
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			t.path = append(t.path, pathPart{literal: lit.String()}, pathPart{param: seg[1 : len(seg)-1]})
			lit.Reset()
			continue
		}
		lit.WriteString(url.PathEscape(seg))
	}
	if lit.Len() > 0 {
		t.path = append(t.path, pathPart{literal: lit.String()})
	}
	return t, nil
}

func compileOps(ft *gatehouse.FieldTransform, header bool) fieldOps {
	norm := func(s string) string {
		if header {
			return textproto.CanonicalMIMEHeaderKey(s)
		}
		return s
	}
	var o fieldOps
	for _, n := range ft.Remove {
		o.remove = append(o.remove, norm(n))
	}
	for _, k := range sortedKeys(ft.Rename) {
		o.rename = append(o.rename, rename{norm(k), norm(ft.Rename[k])})
	}
	valuedOps := func(m map[string]string) []valued {
		var out []valued
		for _, k := range sortedKeys(m) {
			parts, _ := gatehouse.ParseTransformValue(m[k]) // checked on write
			v := valued{name: norm(k), parts: parts}
			if len(parts) == 1 && parts[0].Var == "" {
				v.fixed = []string{parts[0].Literal}
			}
			out = append(out, v)
		}
		return out
	}
	o.set, o.add = valuedOps(ft.Set), valuedOps(ft.Add)
	return o
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Check does nothing: the request is changed by Late's step, after every
// check, those that read the body included (a content schema judges the
// client's Content-Type, not one a transform set).
func (t *Transform) Check(*Request) error { return nil }

// Late returns the step that changes the request.
func (t *Transform) Late() Step { return transformRequest{t} }

// transformRequest applies the request side of the transforms to r.R and
// sets r.Path if the path is rewritten.
type transformRequest struct{ t *Transform }

func (tr transformRequest) Check(r *Request) error { return tr.t.apply(r) }

func (t *Transform) apply(r *Request) error {
	for _, tr := range t.list {
		if !tr.request.empty() {
			applyHeader(r.R.Header, &tr.request, r)
		}
		if !tr.query.empty() {
			r.R.URL.RawQuery = applyQuery(r.R.URL.RawQuery, &tr.query, r)
		}
		if tr.path != nil {
			r.Path = tr.rewritePath(r)
		}
	}
	return nil
}

// Respond applies the response side of the transforms to the upstream's
// header h.
func (t *Transform) Respond(h http.Header, r *Request) {
	for _, tr := range t.list {
		if !tr.answer.empty() {
			applyHeader(h, &tr.answer, r)
		}
	}
}

// Transform returns the route's transforms, nil if it has none (or c is
// nil).
func (c *Chain) Transform() *Transform {
	if c == nil {
		return nil
	}
	return c.transform
}

func applyHeader(h http.Header, o *fieldOps, r *Request) {
	for _, n := range o.remove {
		delete(h, n)
	}
	for _, rn := range o.rename {
		if vs, ok := h[rn.from]; ok {
			delete(h, rn.from)
			h[rn.to] = vs
		}
	}
	for _, s := range o.set {
		if s.fixed != nil {
			h[s.name] = s.fixed
			continue
		}
		// A value that comes out empty removes the field: the client's
		// own must not stand in for the value the policy meant to send.
		if v := r.expand(s.parts); v != "" {
			h[s.name] = []string{v}
		} else {
			delete(h, s.name)
		}
	}
	for _, a := range o.add {
		if v := r.expand(a.parts); v != "" {
			h[a.name] = append(h[a.name], v)
		}
	}
}

// applyQuery changes the raw query pair by pair, keeping the order and
// the escaping of the pairs it does not touch.
func applyQuery(raw string, o *fieldOps, r *Request) string {
	if len(o.remove)+len(o.rename)+len(o.set) == 0 {
		// Only additions: the query as sent, the pairs after it.
		for _, a := range o.add {
			if v := r.expand(a.parts); v != "" {
				if raw != "" {
					raw += "&"
				}
				raw += url.QueryEscape(a.name) + "=" + url.QueryEscape(v)
			}
		}
		return raw
	}
	var pairs []string
	if raw != "" {
		pairs = strings.Split(raw, "&")
	}
	key := func(p string) string {
		k, _, _ := strings.Cut(p, "=")
		if u, err := url.QueryUnescape(k); err == nil {
			return u
		}
		return k
	}
	drop := func(name string) {
		pairs = slices.DeleteFunc(pairs, func(p string) bool { return key(p) == name })
	}
	for _, n := range o.remove {
		drop(n)
	}
	for _, rn := range o.rename {
		for i, p := range pairs {
			if key(p) == rn.from {
				_, v, hasValue := strings.Cut(p, "=")
				pairs[i] = url.QueryEscape(rn.to)
				if hasValue {
					pairs[i] += "=" + v
				}
			}
		}
	}
	for _, s := range o.set {
		drop(s.name)
		if v := r.expand(s.parts); v != "" {
			pairs = append(pairs, url.QueryEscape(s.name)+"="+url.QueryEscape(v))
		}
	}
	for _, a := range o.add {
		if v := r.expand(a.parts); v != "" {
			pairs = append(pairs, url.QueryEscape(a.name)+"="+url.QueryEscape(v))
		}
	}
	return strings.Join(pairs, "&")
}

func (t *transform) rewritePath(r *Request) string {
	var b strings.Builder
	for _, p := range t.path {
		if p.param == "" {
			b.WriteString(p.literal)
			continue
		}
		v := ""
		for _, have := range r.Params {
			if have.Name == p.param {
				v = have.Value
				break
			}
		}
		switch v {
		case ".", "..":
			// Escaped, a captured dot segment stays a segment's name
			// rather than climbing out of the service's base path.
			b.WriteString(strings.Repeat("%2E", len(v)))
		default:
			b.WriteString(url.PathEscape(v))
		}
	}
	return b.String()
}

// expand is a value with its variables replaced; empty if a variable has
// no value (a prefix alone, "tenant-", would say something false). A
// value that would hold a control character (a client's X-Request-Id,
// say) is empty too: it must never split or forge a header field.
func (r *Request) expand(parts []gatehouse.TransformPart) string {
	if len(parts) == 1 && parts[0].Var == "" {
		return parts[0].Literal
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Var == "" {
			b.WriteString(p.Literal)
			continue
		}
		v := r.variable(p.Var)
		if v == "" {
			return ""
		}
		b.WriteString(v)
	}
	v := b.String()
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return ""
		}
	}
	return v
}

func (r *Request) variable(name string) string {
	switch name {
	case "consumer.id":
		if r.Consumer != nil {
			return r.Consumer.ID
		}
	case "consumer.name":
		if r.Consumer != nil {
			return r.Consumer.Name
		}
	case "route.id":
		return r.RouteID
	case "client.address":
		if r.Client.IsValid() {
			return r.Client.String()
		}
	case "request.id":
		if r.R != nil {
			if v := r.R.Header["X-Request-Id"]; len(v) > 0 {
				return v[0]
			}
		}
	}
	return ""
}
