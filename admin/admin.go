// Package admin is gatehouse's management API under /admin/v1.
//
// Every request passes the same checks, cheapest first and all before the
// body is read, as the status-code contract orders them: method known (501),
// path known (404), method allowed (405 with Allow), credentials (401),
// permissions (403), Accept (406), Content-Type (415), declared size (413),
// and for an existing resource, its existence (404, 410) and preconditions
// (412: an item's in its handler, against its version; those of a target
// without an ETag here, for every method). Only then is 100 Continue sent and the body read.
// Handlers are functions from request to result or error behind one
// wrapper, so the mapping from error to status cannot drift between them.
package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/problem"
)

// Prefix is the root of the admin API.
const Prefix = "/admin/v1"

// Options configures the admin API. Zero values take the defaults given.
type Options struct {
	// MaxBodyBytes limits request bodies; over it is 413. Default 1 MiB.
	MaxBodyBytes int64
	// SpecMaxBytes limits the body of a spec, an OpenAPI document, instead
	// of MaxBodyBytes: real descriptions run to megabytes. Default 16 MiB.
	SpecMaxBytes int64
	// Now is the clock for token expiry; nil means time.Now.
	Now func() time.Time
	// Deployments creates deployments; nil refuses them with 503.
	Deployments Deployments
	// Nodes judges whether a node is live (deploy.Watch), so that the
	// node list agrees with what deployments wait for; nil judges by the
	// node's last heartbeat and this process's clock.
	Nodes NodeJudge
	// Ready reports whether the data plane serves a revision, for
	// /readyz; nil means always ready.
	Ready func() bool
	// Metrics, if set, serves /metrics (Prometheus), without credentials
	// like the probes: the admin listener is a private one.
	Metrics http.Handler
	// Conformance is the data plane's record of the response audit, for
	// GET /conformance; nil lists none (a node without a data plane).
	Conformance Conformance
	// NodeName is this process's node: the findings it published to the
	// store are Conformance's, which the report reads instead, and its
	// figures Stats'.
	NodeName string
	// Stats is the data plane's live figures, for GET /stats; nil lists
	// only the other nodes' (a node without a data plane).
	Stats Stats
	// ConfigMaxBytes limits the body of a configuration document (PUT and
	// POST /config) instead of MaxBodyBytes: a whole gateway's
	// configuration. Default 32 MiB.
	ConfigMaxBytes int64
	// ReadOnly is file-only mode: the configuration comes from files, and
	// every write to the API (POST, PUT, PATCH, DELETE, anywhere) answers
	// 405 with Allow: GET, HEAD.
	ReadOnly bool
	// ProbesOnly serves /healthz, /readyz and /metrics and nothing else
	// (404): the listener of a data node, which has no admin API.
	ProbesOnly bool
	// Console, if set, serves /console and everything under /console/
	// (the web console, a client of this API); it is not served with
	// ProbesOnly, where there is no API for it to use.
	Console http.Handler
}

// Traced reports whether a request to the admin listener is one a trace
// should show (serve.Options.Traced): the API's, and not the probes,
// /metrics or the console's files. Those come every few seconds from
// load balancers and scrapers, or are the same embedded bytes at every
// load, and would fill a collector with spans nobody reads; what a
// console user does is its API calls, which are traced. So are only the
// API's paths: whatever else a scanner asks for is no trace's either.
func Traced(r *http.Request) bool {
	p := r.URL.Path
	return p == Prefix || strings.HasPrefix(p, Prefix+"/")
}

// NodeJudge sets a node's State as it is read.
type NodeJudge interface {
	Judge(n *gatehouse.Node) bool
}

// Handler serves the admin API from a Store.
type Handler struct {
	store gatehouse.Store
	opts  Options
	// writeLocks queues the PUTs and PATCHes of one resource.
	writeLocks keyLocks
}

// New returns the admin API handler.
func New(store gatehouse.Store, opts Options) *Handler {
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.SpecMaxBytes == 0 {
		opts.SpecMaxBytes = 16 << 20
	}
	if opts.ConfigMaxBytes == 0 {
		opts.ConfigMaxBytes = 32 << 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Handler{store: store, opts: opts}
}

// request is what the checks established about one request.
type request struct {
	*http.Request
	ep     *endpoint
	params []string // path parameters, in pattern order
	query  url.Values
	token  *gatehouse.Token
}

// result is a handler's successful outcome.
type result struct {
	status   int
	body     any
	version  int64 // the ETag, if non-zero
	modified time.Time
	location string
	// retryAfter, in seconds, suggests when to poll a 202's Location.
	retryAfter int
	// contentType, if set, is that of raw, which is then the body as is
	// (a spec's document) instead of body as JSON.
	contentType string
	raw         []byte
	// etag, if set, is the ETag as sent (the draft's), in place of
	// version's.
	etag string
}

type handlerFunc func(h *Handler, r *request) (*result, error)

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	res, err := h.serve(w, r)
	switch {
	case err != nil:
		problem.Write(w, r, err)
	case res != nil:
		writeResult(w, r, res)
	}
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) (*result, error) {
	if !gatehouse.Implemented(r.Method) {
		return nil, gatehouse.Errorf(gatehouse.ENOTIMPLEMENTED, "The method %s is not implemented.", sanitize(r.Method))
	}
	if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
		return h.probe(w, r)
	}
	if r.URL.Path == "/metrics" && h.opts.Metrics != nil {
		if res, err := checkOutside(w, r); res != nil || err != nil {
			return res, err
		}
		h.opts.Metrics.ServeHTTP(w, r)
		return nil, nil
	}
	if h.opts.ProbesOnly {
		return nil, gatehouse.Errorf(gatehouse.ENOTFOUND, "This is a data node: it serves no admin API. Use a control node.")
	}
	if h.opts.Console != nil && (r.URL.Path == "/console" || strings.HasPrefix(r.URL.Path, "/console/")) {
		h.opts.Console.ServeHTTP(w, r)
		return nil, nil
	}
	ep, params, err := match(r.URL)
	if err != nil {
		return nil, err
	}
	r.Pattern = ep.pattern // the route template, for the trace (internal/serve)
	if h.opts.ReadOnly && writes(r.Method) {
		w.Header().Set("Allow", "GET, HEAD")
		return nil, gatehouse.Errorf(gatehouse.EMETHOD, "This node is configured from files: its admin API is read-only. Change the files instead.")
	}
	allow := ep.allow()
	if h.opts.ReadOnly {
		allow = readOnlyAllow(allow)
	}
	if r.Method != http.MethodOptions && ep.methods[r.Method] == nil {
		w.Header().Set("Allow", allow)
		return nil, gatehouse.Errorf(gatehouse.EMETHOD, "%s does not support %s; it supports %s.", ep.pattern, r.Method, allow)
	}
	req := &request{Request: r, ep: ep, params: params}
	if !ep.public {
		if req.token, err = h.authenticate(r, w); err != nil {
			return nil, err
		}
		if err := authorize(req); err != nil {
			return nil, err
		}
	}
	if r.Method == http.MethodOptions {
		// OPTIONS takes no query parameters either: one given is refused
		// as on every other method, not answered as if absent.
		if _, err := ep.checkQuery(r); err != nil {
			return nil, err
		}
		w.Header().Set("Allow", allow)
		return &result{status: http.StatusNoContent}, nil
	}
	if !ep.negotiates && !acceptsJSON(r.Header.Get("Accept")) {
		return nil, gatehouse.Errorf(gatehouse.ENOTACCEPTABLE, "This API produces application/json only; the Accept header excludes it.")
	}
	for i, id := range params {
		if !gatehouse.ValidID(id) {
			return nil, &gatehouse.Error{Code: gatehouse.EINVALID, Message: "The path holds an invalid id.",
				Fields: []gatehouse.FieldError{{Field: ep.paramNames[i], Message: gatehouse.IDRule}}}
		}
	}
	if err := h.checkBodyHeaders(w, r, ep); err != nil {
		return nil, err
	}
	if req.query, err = ep.checkQuery(r); err != nil {
		return nil, err
	}
	// The target's existence comes before its preconditions: RFC 9110
	// §13.2.1 ignores them on a request that would fail without them.
	if ep.parent != "" {
		if _, err := h.store.Get(r.Context(), ep.parent, params[0]); err != nil {
			return nil, err
		}
	}
	if ep.untagged {
		if err := checkUntaggedPreconditions(r); err != nil {
			return nil, err
		}
	}
	return ep.methods[r.Method](h, req)
}

// writes reports whether method changes what it targets.
func writes(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// readOnlyAllow is an Allow list without the methods that write.
func readOnlyAllow(allow string) string {
	var out []string
	for _, m := range strings.Split(allow, ", ") {
		if !writes(m) {
			out = append(out, m)
		}
	}
	return strings.Join(out, ", ")
}

// writeResult writes a success. HEAD gets the headers GET would.
func writeResult(w http.ResponseWriter, r *http.Request, res *result) {
	hdr := w.Header()
	if res.version != 0 {
		hdr.Set("ETag", etag(res.version))
	}
	if res.etag != "" {
		hdr.Set("ETag", res.etag)
	}
	if !res.modified.IsZero() {
		hdr.Set("Last-Modified", res.modified.UTC().Format(http.TimeFormat))
	}
	if res.location != "" {
		hdr.Set("Location", res.location)
	}
	if res.retryAfter > 0 {
		hdr.Set("Retry-After", strconv.Itoa(res.retryAfter))
	}
	if res.status == http.StatusNoContent || res.status == http.StatusNotModified || (res.body == nil && res.raw == nil) {
		w.WriteHeader(res.status)
		return
	}
	body, contentType := res.raw, res.contentType
	if contentType == "" {
		var err error
		if body, err = json.Marshal(res.body); err != nil {
			problem.Write(w, r, gatehouse.Internal(err))
			return
		}
		body, contentType = append(body, '\n'), jsonType
	}
	hdr.Set("Content-Type", contentType)
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	hdr.Set("Cache-Control", "no-store")
	w.WriteHeader(res.status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// endpoint is one path pattern of the API and the methods it supports.
type endpoint struct {
	pattern    string
	paramNames []string
	methods    map[string]handlerFunc
	public     bool // no credentials needed
	// anyToken marks an endpoint every valid token may read, whatever
	// its consumer scope: it answers about the token itself.
	anyToken bool
	kind     gatehouse.Kind
	// untagged marks a target without an ETag: a collection, or the API
	// document. Its preconditions are evaluated in serve, for every
	// method; an item evaluates its own against its version.
	untagged bool
	// parent is the kind that a nested endpoint's first path parameter
	// names; it must exist before anything happens under it.
	parent gatehouse.Kind
	// query is, by method, the query parameters the endpoint takes, each
	// with the check of its value; any other is a 400 before the handler
	// runs.
	query map[string]map[string]queryParam
	// body, if set, is what POST and PUT take instead of the API's JSON.
	body *bodyRule
	// owner is the kind whose collection or items the endpoint serves
	// (the handlers of a kind's own endpoints find it here).
	owner *kindSpec
	// undated marks a target whose ETag has no modification date (the
	// draft's): If-Unmodified-Since means nothing to it.
	undated bool
	// negotiates marks an endpoint that answers in another media type
	// than JSON (a spec's document) and judges Accept itself.
	negotiates bool
}

// queryParam says what is wrong with a query parameter's value, or "".
type queryParam func(v string) string

// checkQuery refuses, before anything happens, a malformed query string, a
// parameter the endpoint does not take (a client's ?dry_run=true must not
// become a real write), or one given twice. It returns the parameters.
func (ep *endpoint) checkQuery(r *http.Request) (url.Values, error) {
	query, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, &gatehouse.Error{Code: gatehouse.EINVALID, Message: "The query string is malformed.",
			Fields: []gatehouse.FieldError{{Field: "query", Message: err.Error()}}}
	}
	var bad []gatehouse.FieldError
	for key, vals := range query {
		field := "query." + sanitize(key)
		check, known := ep.query[r.Method][key]
		switch {
		case !known:
			msg := "is not a known query parameter"
			if len(ep.query[r.Method]) == 0 {
				msg += fmt.Sprintf("; %s %s takes none", r.Method, ep.pattern)
			}
			bad = append(bad, gatehouse.FieldError{Field: field, Message: msg})
		case len(vals) > 1:
			bad = append(bad, gatehouse.FieldError{Field: field, Message: "must appear at most once"})
		default:
			if msg := check(vals[0]); msg != "" {
				bad = append(bad, gatehouse.FieldError{Field: field, Message: msg})
			}
		}
	}
	if len(bad) > 0 {
		e := gatehouse.Invalid(bad)
		e.Message = "The query parameters are invalid."
		return nil, e
	}
	return query, nil
}

func (ep *endpoint) allow() string {
	var out []string
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
		if ep.methods[m] != nil || m == http.MethodOptions {
			out = append(out, m)
		}
	}
	return strings.Join(out, ", ")
}

// match finds the endpoint for a URL. Path segments are split before they
// are unescaped, so an id holding an escaped slash stays one segment and is
// then rejected as an invalid id rather than routed elsewhere.
func match(u *url.URL) (*endpoint, []string, error) {
	notFound := gatehouse.Errorf(gatehouse.ENOTFOUND, "No resource exists at this path.")
	rest, ok := strings.CutPrefix(u.EscapedPath(), Prefix+"/")
	if !ok {
		return nil, nil, notFound
	}
	raw := strings.Split(rest, "/")
	segs := make([]string, len(raw))
	for i, s := range raw {
		v, err := url.PathUnescape(s)
		if err != nil {
			return nil, nil, notFound
		}
		segs[i] = v
	}
	for _, ep := range endpoints {
		if params, ok := ep.match(segs); ok {
			return ep, params, nil
		}
	}
	return nil, nil, notFound
}

func (ep *endpoint) match(segs []string) ([]string, bool) {
	pat := strings.Split(strings.TrimPrefix(ep.pattern, Prefix+"/"), "/")
	if len(pat) != len(segs) {
		return nil, false
	}
	var params []string
	for i, p := range pat {
		if strings.HasPrefix(p, "{") {
			if segs[i] == "" {
				return nil, false
			}
			params = append(params, segs[i])
			continue
		}
		if p != segs[i] {
			return nil, false
		}
	}
	return params, true
}

// sanitize keeps client-supplied text printable in messages.
func sanitize(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// probe answers the load balancer's questions, without credentials:
// /healthz, is the process serving at all; /readyz, does the data plane
// serve a revision yet, and is the store undamaged.
func (h *Handler) probe(w http.ResponseWriter, r *http.Request) (*result, error) {
	if res, err := checkOutside(w, r); res != nil || err != nil {
		return res, err
	}
	if r.URL.Path == "/readyz" {
		if d, ok := h.store.(gatehouse.DamageReporter); ok {
			if err := d.Damaged(); err != nil {
				return nil, err
			}
		}
		if h.opts.Ready != nil && !h.opts.Ready() {
			return nil, gatehouse.Errorf(gatehouse.EUNAVAILABLE, "No configuration revision is loaded yet: deploy one.")
		}
	}
	return &result{status: http.StatusOK, body: map[string]string{"status": "ok"}}, nil
}

// outsideAllow is what the paths outside the API (the probes and
// /metrics) support: reads, and OPTIONS as everywhere GET works.
const outsideAllow = "GET, HEAD, OPTIONS"

// checkOutside checks a request to a path outside the API (the probes and
// /metrics): GET, HEAD or OPTIONS, and no query parameters, as on the
// API. None of them takes any, and a prober or scraper configured with
// one (a Kubernetes-style /readyz?exclude=store, a scrape's params) learns
// at once that it is not honoured instead of trusting an answer that
// ignored it. Neither Kubernetes probes nor load balancers' health checks
// add a query of their own. OPTIONS is answered here, 204 with Allow as
// on the API: a non-nil result is that answer.
func checkOutside(w http.ResponseWriter, r *http.Request) (*result, error) {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		w.Header().Set("Allow", outsideAllow)
		return nil, gatehouse.Errorf(gatehouse.EMETHOD, "%s supports GET, HEAD and OPTIONS.", r.URL.Path)
	}
	if _, err := (&endpoint{pattern: r.URL.Path}).checkQuery(r); err != nil {
		return nil, err
	}
	if r.Method == http.MethodOptions {
		w.Header().Set("Allow", outsideAllow)
		return &result{status: http.StatusNoContent}, nil
	}
	return nil, nil
}
