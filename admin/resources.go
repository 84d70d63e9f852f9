package admin

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/strictjson"
)

// kindSpec is what differs between resource kinds; the handlers below are
// shared by all of them.
type kindSpec struct {
	kind    gatehouse.Kind
	newRes  func() gatehouse.Resource
	mutable bool // supports PUT and PATCH
	// readOnly kinds are written by the server only: no POST, no DELETE.
	readOnly bool
	// createFn replaces the generic create (deployments answer 202).
	createFn handlerFunc
	// getFn replaces the generic GET and HEAD of an item, and itemQuery
	// is the query parameters they take (a revision's diff_from).
	getFn     handlerFunc
	itemQuery map[string]queryParam
	// putFn offers PUT alone, without PATCH, in place of mutable's (a
	// spec, whose body is its document).
	putFn handlerFunc
	// body is what POST and PUT take, if not the API's JSON.
	body *bodyRule
	// filters are the query parameters, besides limit and cursor, that
	// narrow a list.
	filters map[string]func(*gatehouse.Filter, string)
	// nested kinds live under a parent's path; the parent id is params[0].
	nested bool
	// present, if set, completes a resource read from the store, or just
	// written, before it is answered (a node's derived state; hiding a
	// policy's write-only secrets).
	present func(h *Handler, res gatehouse.Resource)
	// summarize, if set, shortens a resource for a list (leaving out
	// documents that can be megabytes each), after present.
	summarize func(res gatehouse.Resource)
}

func byName(f *gatehouse.Filter, v string) { f.Name = v }

var (
	services = &kindSpec{
		kind: gatehouse.KindService, newRes: func() gatehouse.Resource { return gatehouse.NewService() },
		mutable: true, filters: map[string]func(*gatehouse.Filter, string){"name": byName},
		present: func(h *Handler, res gatehouse.Resource) {
			s := res.(*gatehouse.Service)
			s.Hide()
			s.Warn()
		},
	}
	routes = &kindSpec{
		kind: gatehouse.KindRoute, newRes: func() gatehouse.Resource { return gatehouse.NewRoute() },
		mutable: true, filters: map[string]func(*gatehouse.Filter, string){
			"name":       byName,
			"service_id": func(f *gatehouse.Filter, v string) { f.RefID, f.RefKind = v, gatehouse.KindService },
		},
	}
	consumers = &kindSpec{
		kind: gatehouse.KindConsumer, newRes: func() gatehouse.Resource { return gatehouse.NewConsumer() },
		mutable: true, filters: map[string]func(*gatehouse.Filter, string){"name": byName},
	}
	credentials = &kindSpec{
		kind: gatehouse.KindCredential, newRes: func() gatehouse.Resource { return gatehouse.NewCredential() },
		nested: true, filters: map[string]func(*gatehouse.Filter, string){"username": byName},
	}
	policies = &kindSpec{
		kind: gatehouse.KindPolicy, newRes: func() gatehouse.Resource { return gatehouse.NewPolicy() },
		mutable: true, filters: map[string]func(*gatehouse.Filter, string){"name": byName},
		present: func(h *Handler, res gatehouse.Resource) { res.(*gatehouse.Policy).Hide() },
	}
	revisions = &kindSpec{
		kind: gatehouse.KindRevision, newRes: func() gatehouse.Resource { return gatehouse.NewRevision() },
		readOnly: true, filters: map[string]func(*gatehouse.Filter, string){},
		getFn: getRevision, itemQuery: map[string]queryParam{"diff_from": diffFrom},
		present: func(h *Handler, res gatehouse.Resource) { res.(*gatehouse.Revision).Redact() },
		summarize: func(res gatehouse.Resource) {
			for _, s := range res.(*gatehouse.Revision).Specs {
				s.Document = ""
			}
		},
	}
	nodes = &kindSpec{
		kind: gatehouse.KindNode, newRes: func() gatehouse.Resource { return gatehouse.NewNode() },
		readOnly: true, filters: map[string]func(*gatehouse.Filter, string){},
		present: func(h *Handler, res gatehouse.Resource) {
			h.judge(res.(*gatehouse.Node))
		},
	}
	deployments = &kindSpec{
		kind: gatehouse.KindDeployment, newRes: func() gatehouse.Resource { return gatehouse.NewDeployment() },
		readOnly: true, createFn: createDeployment, filters: map[string]func(*gatehouse.Filter, string){},
	}
	tokens = &kindSpec{
		kind: gatehouse.KindToken, newRes: func() gatehouse.Resource { return gatehouse.NewToken() },
		filters: map[string]func(*gatehouse.Filter, string){
			"name":        byName,
			"consumer_id": func(f *gatehouse.Filter, v string) { f.RefID, f.RefKind = v, gatehouse.KindConsumer },
		},
	}
)

// endpoints is the admin API's routing table.
var endpoints = buildEndpoints()

func buildEndpoints() []*endpoint {
	eps := []*endpoint{{
		pattern: Prefix + "/openapi.json", public: true, untagged: true,
		methods: map[string]handlerFunc{http.MethodGet: serveOpenAPI, http.MethodHead: serveOpenAPI},
	}}
	for _, spec := range []*kindSpec{services, routes, consumers, policies, tokens, credentials, revisions, deployments, nodes, specs} {
		collection := Prefix + "/" + string(spec.kind)
		var names []string
		if spec.nested {
			collection = Prefix + "/consumers/{consumer_id}/credentials"
			names = []string{"consumer_id"}
		}
		var parent gatehouse.Kind
		if spec.nested {
			parent = gatehouse.KindConsumer
		}
		item := &endpoint{pattern: collection + "/{id}", paramNames: append(names, "id"), kind: spec.kind, parent: parent,
			methods: map[string]handlerFunc{http.MethodGet: spec.get, http.MethodHead: spec.get}}
		listQuery := spec.listQuery()
		coll := &endpoint{pattern: collection, paramNames: names, kind: spec.kind, parent: parent, untagged: true,
			methods: map[string]handlerFunc{http.MethodGet: spec.list, http.MethodHead: spec.list},
			query:   map[string]map[string]queryParam{http.MethodGet: listQuery, http.MethodHead: listQuery}}
		if !spec.readOnly {
			item.methods[http.MethodDelete] = spec.delete
			coll.methods[http.MethodPost] = spec.create
		}
		if spec.createFn != nil {
			coll.methods[http.MethodPost] = spec.createFn
		}
		if spec.mutable {
			item.methods[http.MethodPut] = spec.put
			item.methods[http.MethodPatch] = spec.patch
		}
		if spec.putFn != nil {
			item.methods[http.MethodPut] = spec.putFn
		}
		if spec.body != nil {
			// The body is not JSON: what JSON would carry in it, the id
			// and name, comes in the query.
			coll.query[http.MethodPost] = specWriteQuery(true)
			item.query = map[string]map[string]queryParam{http.MethodPut: specWriteQuery(false)}
		}
		if spec.getFn != nil {
			item.methods[http.MethodGet], item.methods[http.MethodHead] = spec.getFn, spec.getFn
		}
		if spec.itemQuery != nil {
			if item.query == nil {
				item.query = map[string]map[string]queryParam{}
			}
			item.query[http.MethodGet], item.query[http.MethodHead] = spec.itemQuery, spec.itemQuery
		}
		coll.body, item.body = spec.body, spec.body
		coll.owner, item.owner = spec, spec
		eps = append(eps, coll, item)
	}
	return append(append(eps, specEndpoints(specs)...), configEndpoint())
}

// parentID is a nested kind's parent, whose existence serve has checked.
func (spec *kindSpec) parentID(r *request) string {
	if !spec.nested {
		return ""
	}
	return r.params[0]
}

func (spec *kindSpec) location(r *request, id string) string {
	if spec.nested {
		return fmt.Sprintf("%s/consumers/%s/credentials/%s", Prefix, r.params[0], id)
	}
	return fmt.Sprintf("%s/%s/%s", Prefix, spec.kind, id)
}

// load fetches the item at the request's path, as a typed resource.
func (spec *kindSpec) load(h *Handler, r *request) (gatehouse.Resource, error) {
	parentID := spec.parentID(r)
	id := r.params[len(r.params)-1]
	rec, err := h.store.Get(r.Context(), spec.kind, id)
	if err != nil {
		return nil, err
	}
	if spec.nested && (rec.Parent == nil || rec.Parent.ID != parentID) {
		return nil, gatehouse.Errorf(gatehouse.ENOTFOUND, "%s %q does not exist under this consumer.", spec.kind, id)
	}
	res := spec.newRes()
	if err := gatehouse.Decode(rec, res); err != nil {
		return nil, err
	}
	if spec.present != nil {
		spec.present(h, res)
	}
	return res, nil
}

func (spec *kindSpec) get(h *Handler, r *request) (*result, error) {
	res, err := spec.load(h, r)
	if err != nil {
		return nil, err
	}
	m := res.Base()
	// RFC 9110 §13.1.1 applies If-Match to every method, and §13.2.2
	// evaluates it (or If-Unmodified-Since) before If-None-Match.
	if _, err := checkPreconditions(r.Request, m); err != nil {
		return nil, err
	}
	if noneMatch(r.Header.Get("If-None-Match"), m.Version) {
		return &result{status: http.StatusNotModified, version: m.Version, modified: m.UpdatedAt}, nil
	}
	return &result{status: http.StatusOK, body: res, version: m.Version, modified: m.UpdatedAt}, nil
}

// listPage is the body of a collection GET.
type listPage struct {
	Data []gatehouse.Resource `json:"data"`
	// NextCursor continues the listing; absent on the last page.
	NextCursor string `json:"next_cursor,omitempty"`
}

func (spec *kindSpec) list(h *Handler, r *request) (*result, error) {
	opts := spec.listOptions(r)
	parentID := spec.parentID(r)
	if spec.nested {
		opts.Filter.ParentID = parentID
	}
	page, err := h.store.List(r.Context(), spec.kind, opts)
	if err != nil {
		return nil, err
	}
	out := listPage{Data: make([]gatehouse.Resource, 0, len(page.Records))}
	for _, rec := range page.Records {
		res := spec.newRes()
		if err := gatehouse.Decode(rec, res); err != nil {
			return nil, err
		}
		if spec.present != nil {
			spec.present(h, res)
		}
		if spec.summarize != nil {
			spec.summarize(res)
		}
		out.Data = append(out.Data, res)
	}
	if page.Next != 0 {
		out.NextCursor = encodeCursor(page.Next)
	}
	return &result{status: http.StatusOK, body: out}, nil
}

// listOptions interprets limit, cursor and filters, which serve has
// already checked (listQuery).
func (spec *kindSpec) listOptions(r *request) gatehouse.ListOptions {
	opts := gatehouse.ListOptions{Limit: gatehouse.DefaultPageSize}
	for key, vals := range r.query {
		switch v := vals[0]; key {
		case "limit":
			opts.Limit, _ = strconv.Atoi(v)
		case "cursor":
			opts.After, _ = decodeCursor(v)
		default:
			spec.filters[key](&opts.Filter, v)
		}
	}
	return opts
}

// listQuery is the query parameters a list takes: limit, cursor and the
// kind's filters.
func (spec *kindSpec) listQuery() map[string]queryParam {
	filters := make(map[string]queryParam, len(spec.filters))
	for name := range spec.filters {
		filters[name] = textFilter
	}
	return pagedQuery(filters)
}

// pagedQuery is the query parameters of a list, store-backed or not:
// limit, cursor and the filters given.
func pagedQuery(filters map[string]queryParam) map[string]queryParam {
	q := map[string]queryParam{
		"limit": func(v string) string {
			if n, err := strconv.Atoi(v); err != nil || n < 1 || n > gatehouse.MaxPageSize {
				return fmt.Sprintf("must be an integer from 1 to %d", gatehouse.MaxPageSize)
			}
			return ""
		},
		"cursor": func(v string) string {
			if _, ok := decodeCursor(v); !ok {
				return "is not a cursor this API issued"
			}
			return ""
		},
	}
	maps.Copy(q, filters)
	return q
}

// textFilter checks a filter that matches text.
func textFilter(v string) string {
	if v == "" || len(v) > 128 {
		return "must be 1 to 128 characters"
	}
	return ""
}

// Cursors are opaque to clients: a versioned, encoded position.
func encodeCursor(after int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("v1:" + strconv.FormatInt(after, 10)))
}

func decodeCursor(s string) (int64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimPrefix(string(b), "v1:"), 10, 64)
	if err != nil || !strings.HasPrefix(string(b), "v1:") || n < 1 {
		return 0, false
	}
	return n, true
}

// createRecord stores res as a new record (no secret) and takes back
// what the store assigned: version and times.
func (h *Handler) createRecord(ctx context.Context, res gatehouse.Resource) error {
	rec, err := gatehouse.Encode(res, nil)
	if err != nil {
		return gatehouse.Internal(err)
	}
	if err := h.store.Create(ctx, rec); err != nil {
		return err
	}
	gatehouse.Sync(res, rec)
	return nil
}

// updateRecord stores res (no secret) over the version it was read at
// and takes back what the store assigned.
func (h *Handler) updateRecord(ctx context.Context, res gatehouse.Resource) error {
	rec, err := gatehouse.Encode(res, nil)
	if err != nil {
		return gatehouse.Internal(err)
	}
	if err := h.store.Update(ctx, rec, res.Base().Version); err != nil {
		return err
	}
	gatehouse.Sync(res, rec)
	return nil
}

func (spec *kindSpec) create(h *Handler, r *request) (*result, error) {
	parentID := spec.parentID(r)
	body, err := h.readBody(r)
	if err != nil {
		return nil, err
	}
	res := spec.newRes()
	if errs := strictjson.Decode(body, res); len(errs) > 0 {
		return nil, invalid(errs)
	}
	if spec.nested {
		cred := res.(*gatehouse.Credential)
		if cred.ConsumerID != "" && cred.ConsumerID != parentID {
			return nil, gatehouse.Invalid([]gatehouse.FieldError{{Field: "consumer_id", Message: "must be absent or match the consumer in the path"}})
		}
		cred.ConsumerID = parentID
	}
	gatehouse.KeepServerSet(res, nil)
	if err := h.validate(r, spec, res); err != nil {
		return nil, err
	}
	m := res.Base()
	if m.ID == "" {
		m.ID = gatehouse.NewID()
	}
	var secret []byte
	restore := func() {}
	if s, ok := res.(gatehouse.Sealer); ok {
		secret = s.Seal()
		restore = s.Redact()
	}
	rec, err := gatehouse.Encode(res, secret)
	restore()
	if err != nil {
		return nil, gatehouse.Internal(err)
	}
	if err := h.store.Create(r.Context(), rec); err != nil {
		return nil, err
	}
	gatehouse.Sync(res, rec)
	if spec.present != nil {
		spec.present(h, res)
	}
	return &result{status: http.StatusCreated, body: res, version: rec.Version, modified: rec.UpdatedAt,
		location: spec.location(r, rec.ID)}, nil
}

// validate runs the resource's own checks, then the references, so that a
// 400 lists every malformed field before any 422 is considered.
func (h *Handler) validate(r *request, spec *kindSpec, res gatehouse.Resource) error {
	bad, semantic := gatehouse.NormalizeAndCheck(res)
	if len(bad) > 0 {
		return gatehouse.Invalid(bad)
	}
	if tok, ok := res.(*gatehouse.Token); ok && tok.Expired(h.opts.Now()) {
		semantic = append(semantic, gatehouse.FieldError{Field: "expires_at", Message: "is in the past"})
	}
	refs := gatehouse.FieldRefs(res)
	targets := make([]gatehouse.Resource, len(refs))
	for i, fr := range refs {
		target, err := h.loadRef(r.Context(), fr.Ref)
		if err != nil {
			return err
		}
		targets[i] = target
		if msg := gatehouse.CheckRef(fr, target); msg != "" {
			semantic = append(semantic, gatehouse.FieldError{Field: fr.Field, Message: msg})
		}
	}
	semantic = append(semantic, gatehouse.CheckRefsTogether(refs, targets)...)
	if len(semantic) > 0 {
		return gatehouse.Unprocessable(semantic)
	}
	return nil
}

// loadRef loads the target of a reference, or nil if it does not exist.
func (h *Handler) loadRef(ctx context.Context, ref gatehouse.Ref) (gatehouse.Resource, error) {
	rec, err := h.store.Get(ctx, ref.Kind, ref.ID)
	if gatehouse.Absent(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	res := gatehouse.New(ref.Kind)
	if res == nil {
		return nil, gatehouse.Internal(fmt.Errorf("no resource type for kind %s", ref.Kind))
	}
	if err := gatehouse.Decode(rec, res); err != nil {
		return nil, err
	}
	return res, nil
}

// writeRetryBudget bounds how long a PUT or PATCH without a precondition
// keeps re-applying itself after losing a race with a writer in another
// process (writers in this one queue on writeLocks instead). Past it the
// answer is 503 with Retry-After: never 412, which only a precondition the
// client sent can earn.
const writeRetryBudget = 3 * time.Second

func (spec *kindSpec) put(h *Handler, r *request) (*result, error) {
	return spec.replace(h, r, jsonBuilder(func(current gatehouse.Resource, body map[string]any) (gatehouse.Resource, []strictjson.FieldError) {
		res := spec.newRes()
		return res, strictjson.Assign(body, res)
	}))
}

// patch applies an RFC 7396 merge patch to the current representation.
func (spec *kindSpec) patch(h *Handler, r *request) (*result, error) {
	return spec.replace(h, r, jsonBuilder(func(current gatehouse.Resource, patch map[string]any) (gatehouse.Resource, []strictjson.FieldError) {
		tree, err := strictjson.ToTree(current)
		if err != nil {
			return nil, []strictjson.FieldError{{Field: "body", Message: "cannot be applied"}}
		}
		res := spec.newRes()
		return res, strictjson.Assign(strictjson.Merge(tree, patch), res)
	}))
}

// builder makes the next version of a resource from the current one.
type builder func(current gatehouse.Resource) (gatehouse.Resource, error)

// jsonBuilder parses a body that must be a JSON object (400 if not) into
// the builder build makes of it.
func jsonBuilder(build func(current gatehouse.Resource, body map[string]any) (gatehouse.Resource, []strictjson.FieldError)) func(raw []byte) (builder, error) {
	return func(raw []byte) (builder, error) {
		tree, perr := strictjson.ParseObject(raw)
		if perr != nil {
			var fe strictjson.FieldError
			errors.As(perr, &fe)
			return nil, invalid([]strictjson.FieldError{fe})
		}
		return func(current gatehouse.Resource) (gatehouse.Resource, error) {
			next, errs := build(current, tree)
			if len(errs) > 0 {
				return nil, invalid(errs)
			}
			return next, nil
		}, nil
	}
}

// replace is PUT and PATCH: existence and preconditions are checked before
// the body is read; the write is conditional on the version it was built
// from, so a concurrent writer is never overwritten unseen. Once the body
// is in, writes of one resource queue in this process (a slow client does
// not hold the queue), so a write without a precondition does not lose a
// race to its neighbours; one that loses to another process is built
// again on the version that won.
func (spec *kindSpec) replace(h *Handler, r *request, parse func(raw []byte) (builder, error)) (*result, error) {
	current, err := spec.load(h, r)
	if err != nil {
		return nil, err
	}
	if _, err := checkPreconditions(r.Request, current.Base()); err != nil {
		return nil, err
	}
	raw, err := h.readBody(r)
	if err != nil {
		return nil, err
	}
	build, err := parse(raw)
	if err != nil {
		return nil, err
	}
	unlock, err := h.writeLocks.lock(r.Context(), string(spec.kind)+"/"+current.Base().ID)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// The version to build on is the one current once this write's turn
	// has come; a precondition is judged against it again.
	if current, err = spec.load(h, r); err != nil {
		return nil, err
	}
	conditional, err := checkPreconditions(r.Request, current.Base())
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(writeRetryBudget)
	for attempt := 0; ; attempt++ {
		m := current.Base()
		next, err := build(current)
		if err != nil {
			return nil, err
		}
		nm := next.Base()
		if nm.ID != "" && nm.ID != m.ID {
			return nil, gatehouse.Invalid([]gatehouse.FieldError{{Field: "id", Message: "must match the id in the path"}})
		}
		// The rest of Meta is the server's: a client echoing back what it
		// read must not be refused for it, nor have it taken as input.
		*nm = gatehouse.Meta{ID: m.ID}
		gatehouse.KeepHidden(next, current)
		gatehouse.KeepServerSet(next, current)
		if err := h.validate(r, spec, next); err != nil {
			return nil, err
		}
		rec, err := gatehouse.Encode(next, nil)
		if err != nil {
			return nil, gatehouse.Internal(err)
		}
		err = h.store.Update(r.Context(), rec, m.Version)
		if err == nil {
			gatehouse.Sync(next, rec)
			if spec.present != nil {
				spec.present(h, next)
			}
			return &result{status: http.StatusOK, body: next, version: rec.Version, modified: rec.UpdatedAt}, nil
		}
		if gatehouse.ErrorCode(err) != gatehouse.EPRECONDITION || conditional {
			return nil, err
		}
		if err := backoff(r.Context(), attempt, deadline); err != nil {
			return nil, err
		}
		if current, err = spec.load(h, r); err != nil {
			return nil, err
		}
	}
}

// backoff waits before the next attempt of a write that lost a race: a
// random time up to an exponentially growing cap (10 ms doubling to
// 160 ms), so that writers in different processes stop colliding. It fails
// with 503 once the deadline would pass.
func backoff(ctx context.Context, attempt int, deadline time.Time) error {
	wait := time.Duration(rand.Int64N(int64(10*time.Millisecond) << min(attempt, 4)))
	if time.Now().Add(wait).After(deadline) {
		return gatehouse.Errorf(gatehouse.EUNAVAILABLE, "The resource is being changed by other writers faster than this change could be applied; retry.")
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return gatehouse.Unavailable(ctx.Err())
	}
}

// keyLocks queues callers per key: a mutex for each key in use, which
// waiting callers can leave when their context ends.
type keyLocks struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	held chan struct{} // holds one token while locked
	refs int           // holders and waiters; the entry goes at zero
}

func (l *keyLocks) lock(ctx context.Context, key string) (unlock func(), err error) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*keyLock{}
	}
	k := l.locks[key]
	if k == nil {
		k = &keyLock{held: make(chan struct{}, 1)}
		l.locks[key] = k
	}
	k.refs++
	l.mu.Unlock()
	release := func() {
		l.mu.Lock()
		if k.refs--; k.refs == 0 {
			delete(l.locks, key)
		}
		l.mu.Unlock()
	}
	select {
	case k.held <- struct{}{}:
		return func() { <-k.held; release() }, nil
	case <-ctx.Done():
		release()
		return nil, gatehouse.Unavailable(ctx.Err())
	}
}

func (spec *kindSpec) delete(h *Handler, r *request) (*result, error) {
	current, err := spec.load(h, r)
	if err != nil {
		return nil, err
	}
	conditional, err := checkPreconditions(r.Request, current.Base())
	if err != nil {
		return nil, err
	}
	var ifVersion int64
	if conditional {
		ifVersion = current.Base().Version
	}
	if err := h.store.Delete(r.Context(), spec.kind, current.Base().ID, ifVersion); err != nil {
		return nil, err
	}
	return &result{status: http.StatusNoContent}, nil
}

func invalid(errs []strictjson.FieldError) error {
	out := make([]gatehouse.FieldError, len(errs))
	for i, e := range errs {
		out[i] = gatehouse.FieldError(e)
	}
	return gatehouse.Invalid(out)
}
