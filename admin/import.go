package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/strictjson"
	"github.com/gatehouse/gatehouse/openapi"
)

// importRequest is the body of POST /specs/{id}/import.
type importRequest struct {
	ServiceID string `json:"service_id"`
	// PolicyID is an existing openapi policy of the spec; without it the
	// import uses the policy named "<spec name>-openapi", creating it.
	PolicyID string `json:"policy_id"`
	// BasePath is as an openapi policy's config.base_path; absent, the
	// policy's.
	BasePath *string  `json:"base_path"`
	Hosts    []string `json:"hosts"`
	DryRun   bool     `json:"dry_run"`
}

// importResult is the change set of an import: what it did, or on a dry
// run what it would do.
type importResult struct {
	DryRun bool `json:"dry_run"`
	// Policy is the openapi policy every imported route lists;
	// PolicyAction is "create" if the import makes it, else "unchanged".
	Policy       *gatehouse.Policy  `json:"policy"`
	PolicyAction string             `json:"policy_action"`
	Create       []*gatehouse.Route `json:"create"`
	Update       []*gatehouse.Route `json:"update"`
	Delete       []*gatehouse.Route `json:"delete"`
	Unchanged    []*gatehouse.Route `json:"unchanged"`
}

// importSpec makes the routes of a service match a spec's operations: one
// route per operation, each listing the spec's openapi policy and marked
// (Route.Import) as the spec's. Importing again updates the routes it made,
// adds what is new and removes what the document no longer declares; it
// never touches a route made by hand, and a hand-made route in the way is
// a 409 naming it. The whole plan is checked before anything is written,
// so a rejected import changes nothing.
func importSpec(h *Handler, r *request) (*result, error) {
	owner := r.ep.owner
	current, err := owner.load(h, r)
	if err != nil {
		return nil, err
	}
	if _, err := checkPreconditions(r.Request, current.Base()); err != nil {
		return nil, err
	}
	body, err := h.readBody(r)
	if err != nil {
		return nil, err
	}
	var req importRequest
	if errs := strictjson.Decode(body, &req); len(errs) > 0 {
		return nil, invalid(errs)
	}
	if err := req.check(); err != nil {
		return nil, err
	}
	// Imports of one spec take turns, so that two cannot plan against the
	// same routes and write over each other.
	unlock, err := h.writeLocks.lock(r.Context(), "import/"+current.Base().ID)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if current, err = owner.load(h, r); err != nil {
		return nil, err
	}
	if _, err := checkPreconditions(r.Request, current.Base()); err != nil {
		return nil, err
	}
	plan, err := h.planImport(r, current.(*gatehouse.Spec), &req)
	if err != nil {
		return nil, err
	}
	if !req.DryRun {
		if err := h.applyImport(r, plan); err != nil {
			return nil, err
		}
	}
	return &result{status: http.StatusOK, body: plan}, nil
}

// check is what a schema sees of an import request (400).
func (req *importRequest) check() error {
	var bad, semantic []gatehouse.FieldError
	add := func(list *[]gatehouse.FieldError, field, msg string) {
		*list = append(*list, gatehouse.FieldError{Field: field, Message: msg})
	}
	switch {
	case req.ServiceID == "":
		add(&bad, "service_id", "is required")
	case !gatehouse.ValidID(req.ServiceID):
		add(&bad, "service_id", gatehouse.IDRule)
	}
	if req.PolicyID != "" && !gatehouse.ValidID(req.PolicyID) {
		add(&bad, "policy_id", gatehouse.IDRule)
	}
	if req.BasePath != nil {
		b, s := gatehouse.CheckBasePathFields("base_path", *req.BasePath)
		bad, semantic = append(bad, b...), append(semantic, s...)
	}
	if len(req.Hosts) > gatehouse.MaxRouteHosts {
		add(&bad, "hosts", fmt.Sprintf("must have at most %d entries", gatehouse.MaxRouteHosts))
	}
	seen := map[string]bool{}
	for i, host := range req.Hosts {
		field := fmt.Sprintf("hosts[%d]", i)
		switch {
		case host == "":
			add(&bad, field, "must not be empty")
		case seen[strings.ToLower(host)]:
			add(&bad, field, "repeats an earlier entry")
		default:
			if err := gatehouse.CheckHostPattern(host); err != nil {
				add(&semantic, field, err.Error())
			}
		}
		seen[strings.ToLower(host)] = true
	}
	if len(bad) > 0 {
		return gatehouse.Invalid(bad)
	}
	if len(semantic) > 0 {
		return gatehouse.Unprocessable(semantic)
	}
	return nil
}

// planImport works out the change set, checking everything a write would:
// the service, the policy, each route as a route is checked, and clashes
// with routes the import did not make.
func (h *Handler) planImport(r *request, s *gatehouse.Spec, req *importRequest) (*importResult, error) {
	ctx := r.Context()
	doc, problems := openapi.Parse([]byte(s.Document))
	if len(problems) > 0 {
		fields := make([]gatehouse.FieldError, len(problems))
		for i, p := range problems {
			fields[i] = gatehouse.FieldError{Field: gatehouse.DocumentField(p.Pointer), Message: p.Message}
		}
		return nil, gatehouse.Unprocessable(fields)
	}
	if _, err := h.store.Get(ctx, gatehouse.KindService, req.ServiceID); err != nil {
		if gatehouse.Absent(err) {
			return nil, unprocessable("service_id", fmt.Sprintf("refers to services %q, which does not exist", req.ServiceID))
		}
		return nil, err
	}
	plan := &importResult{DryRun: req.DryRun, Create: []*gatehouse.Route{}, Update: []*gatehouse.Route{},
		Delete: []*gatehouse.Route{}, Unchanged: []*gatehouse.Route{}}
	policy, basePath, err := h.importPolicy(r, s, req, plan)
	if err != nil {
		return nil, err
	}
	plan.Policy = policy
	prefix := doc.BasePath(basePath)

	existing, err := h.allRoutes(r)
	if err != nil {
		return nil, err
	}
	owned := map[string]*gatehouse.Route{} // by operation
	var others []*gatehouse.Route
	for _, rt := range existing {
		if rt.Import != nil && rt.Import.SpecID == s.ID {
			owned[rt.Import.Operation] = rt
		} else {
			others = append(others, rt)
		}
	}

	// A route re-imported with another of the spec's openapi policies
	// lists that one instead of the one it had, never both.
	specPolicies, err := h.specPolicies(r, s.ID)
	if err != nil {
		return nil, err
	}
	ops := slicesSorted(doc.Operations)
	var semantic []gatehouse.FieldError
	names := map[string]bool{}
	keys := map[string]string{} // match key → the operation that holds it
	type planned struct {
		route *gatehouse.Route
		ptr   string
	}
	var all []planned
	for _, op := range ops {
		ptr := op.Pointer()
		pattern, err := routePattern(prefix, op.Path)
		if err != nil {
			semantic = append(semantic, gatehouse.FieldError{Field: ptr, Message: "cannot be a route: " + err.Error()})
			continue
		}
		want := gatehouse.NewRoute()
		operation := op.Method + " " + op.Path
		if cur := owned[operation]; cur != nil {
			*want = *cur // keeps what the import does not set: priority, strip_path, limits, other policies
			want.Policies = []string{}
			for _, id := range cur.Policies {
				if !specPolicies[id] || id == policy.ID {
					want.Policies = append(want.Policies, id)
				}
			}
			delete(owned, operation)
		} else {
			want.ID = gatehouse.NewID()
		}
		want.Name = uniqueName(s.Name, op, names)
		want.Hosts = append([]string{}, req.Hosts...)
		want.Paths = []string{pattern}
		want.Methods = []string{op.Method}
		want.ServiceID = req.ServiceID
		if !slices.Contains(want.Policies, policy.ID) {
			want.Policies = append(want.Policies, policy.ID)
		}
		want.Import = &gatehouse.RouteImport{SpecID: s.ID, Operation: operation, OperationID: op.OperationID}
		bad, sem := gatehouse.NormalizeAndCheck(want)
		for _, f := range append(bad, sem...) {
			semantic = append(semantic, gatehouse.FieldError{Field: ptr, Message: "makes a route whose " + f.Field + " " + f.Message})
		}
		for _, k := range want.MatchKeys() {
			if other, ok := keys[k]; ok {
				semantic = append(semantic, gatehouse.FieldError{Field: ptr, Message: fmt.Sprintf("makes a route matching what %s's matches", other)})
				break
			}
			keys[k] = operation
		}
		all = append(all, planned{want, ptr})
	}
	if len(semantic) > 0 {
		return nil, gatehouse.Unprocessable(semantic)
	}

	// A clash with a route the import did not make is a conflict: the
	// import never changes such a route, whichever is wrong.
	otherNames := map[string]*gatehouse.Route{}
	otherKeys := map[string]*gatehouse.Route{}
	for _, rt := range others {
		if rt.Name != "" {
			otherNames[rt.Name] = rt
		}
		for _, k := range rt.MatchKeys() {
			otherKeys[k] = rt
		}
	}
	var conflicts []gatehouse.FieldError
	for _, p := range all {
		if rt := otherNames[p.route.Name]; rt != nil {
			conflicts = append(conflicts, gatehouse.FieldError{Field: p.ptr,
				Message: fmt.Sprintf("makes route %q, a name route %s already has", p.route.Name, rt.ID)})
		}
		for _, k := range p.route.MatchKeys() {
			if rt := otherKeys[k]; rt != nil {
				conflicts = append(conflicts, gatehouse.FieldError{Field: p.ptr,
					Message: fmt.Sprintf("makes a route matching what route %s (%q) matches", rt.ID, rt.Name)})
				break
			}
		}
	}
	if len(conflicts) > 0 {
		sort.SliceStable(conflicts, func(i, j int) bool { return conflicts[i].Field < conflicts[j].Field })
		return nil, &gatehouse.Error{Code: gatehouse.ECONFLICT, Fields: conflicts,
			Message: "The import would clash with routes it did not make; rename, move or delete them, and import again."}
	}

	for _, p := range all {
		if p.route.Version == 0 {
			plan.Create = append(plan.Create, p.route)
			continue
		}
		if same, err := sameRoute(existingByID(existing, p.route.ID), p.route); err != nil {
			return nil, err
		} else if same {
			plan.Unchanged = append(plan.Unchanged, p.route)
		} else {
			plan.Update = append(plan.Update, p.route)
		}
	}
	for _, rt := range owned {
		plan.Delete = append(plan.Delete, rt)
	}
	sort.Slice(plan.Delete, func(i, j int) bool { return plan.Delete[i].Import.Operation < plan.Delete[j].Import.Operation })
	return plan, nil
}

// importPolicy finds the openapi policy the imported routes list, or plans
// its creation, and returns it with the base path it gives.
func (h *Handler) importPolicy(r *request, s *gatehouse.Spec, req *importRequest, plan *importResult) (*gatehouse.Policy, string, error) {
	ctx := r.Context()
	var rec *gatehouse.Record
	var err error
	if req.PolicyID != "" {
		rec, err = h.store.Get(ctx, gatehouse.KindPolicy, req.PolicyID)
		if gatehouse.Absent(err) {
			return nil, "", unprocessable("policy_id", fmt.Sprintf("refers to policies %q, which does not exist", req.PolicyID))
		}
	} else {
		rec, err = h.store.Lookup(ctx, gatehouse.KindPolicy, "name:"+importPolicyName(s))
		if gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND {
			rec, err = nil, nil
		}
	}
	if err != nil {
		return nil, "", err
	}
	if rec == nil {
		cfg := &gatehouse.OpenAPIConfig{}
		cfg.SetDefaults()
		cfg.SpecID = s.ID
		if req.BasePath != nil {
			cfg.BasePath = *req.BasePath
		}
		p := gatehouse.NewPolicy()
		p.ID, p.Name, p.Type = gatehouse.NewID(), importPolicyName(s), gatehouse.PolicyOpenAPI
		if p.Config, err = json.Marshal(cfg); err != nil {
			return nil, "", gatehouse.Internal(err)
		}
		if bad, sem := gatehouse.NormalizeAndCheck(p); len(bad)+len(sem) > 0 {
			return nil, "", gatehouse.Internal(fmt.Errorf("import policy %s does not check: %v %v", p.Name, bad, sem))
		}
		plan.PolicyAction = "create"
		return p, cfg.BasePath, nil
	}
	p := gatehouse.NewPolicy()
	if err := gatehouse.Decode(rec, p); err != nil {
		return nil, "", err
	}
	p.Hide()
	field := "policy_id"
	if req.PolicyID == "" {
		field = "body"
	}
	if p.SpecID() != s.ID {
		msg := fmt.Sprintf("policy %s (%q) is not an openapi policy of spec %s", p.ID, p.Name, s.ID)
		if req.PolicyID == "" {
			// The name the import would give its policy is taken.
			return nil, "", &gatehouse.Error{Code: gatehouse.ECONFLICT, Message: "The import's policy name is taken.",
				Fields: []gatehouse.FieldError{{Field: field, Message: msg + "; name one with policy_id"}}}
		}
		return nil, "", unprocessable(field, msg)
	}
	cfgAny, err := p.DecodeConfig()
	if err != nil {
		return nil, "", gatehouse.Internal(err)
	}
	cfg := cfgAny.(*gatehouse.OpenAPIConfig)
	if req.BasePath != nil && *req.BasePath != cfg.BasePath {
		return nil, "", unprocessable("base_path", fmt.Sprintf("differs from config.base_path %q of policy %s, which validates the routes' requests: change the policy, or leave base_path out", cfg.BasePath, p.ID))
	}
	plan.PolicyAction = "unchanged"
	return p, cfg.BasePath, nil
}

// importPolicyName is the name of the policy an import makes for a spec.
func importPolicyName(s *gatehouse.Spec) string {
	return gatehouse.SanitizeName(strings.TrimSuffix(s.Name[:min(len(s.Name), 120)], ".") + "-openapi")
}

// applyImport writes a plan: the policy first, as the routes name it, then
// deletions, which free names and matches, updates, and creations. The
// store writes one record at a time; a failure part way (the store lost,
// a concurrent writer) can leave part of the import applied, and importing
// again completes it.
func (h *Handler) applyImport(r *request, plan *importResult) error {
	ctx := r.Context()
	if plan.PolicyAction == "create" {
		if err := h.createRecord(ctx, plan.Policy); err != nil {
			return err
		}
	}
	for _, rt := range plan.Delete {
		if err := h.store.Delete(ctx, gatehouse.KindRoute, rt.ID, rt.Version); err != nil {
			return err
		}
	}
	for _, rt := range plan.Update {
		if err := h.updateRecord(ctx, rt); err != nil {
			return err
		}
	}
	for _, rt := range plan.Create {
		if err := h.createRecord(ctx, rt); err != nil {
			return err
		}
	}
	return nil
}

// specPolicies returns the ids of the openapi policies of spec specID.
func (h *Handler) specPolicies(r *request, specID string) (map[string]bool, error) {
	out := map[string]bool{}
	opts := gatehouse.ListOptions{Limit: gatehouse.MaxPageSize, Filter: gatehouse.Filter{RefID: specID, RefKind: gatehouse.KindSpec}}
	for {
		page, err := h.store.List(r.Context(), gatehouse.KindPolicy, opts)
		if err != nil {
			return nil, err
		}
		for _, rec := range page.Records {
			out[rec.ID] = true
		}
		if page.Next == 0 {
			return out, nil
		}
		opts.After = page.Next
	}
}

// allRoutes reads every route, page by page.
func (h *Handler) allRoutes(r *request) ([]*gatehouse.Route, error) {
	var out []*gatehouse.Route
	opts := gatehouse.ListOptions{Limit: gatehouse.MaxPageSize}
	for {
		page, err := h.store.List(r.Context(), gatehouse.KindRoute, opts)
		if err != nil {
			return nil, err
		}
		for _, rec := range page.Records {
			rt := gatehouse.NewRoute()
			if err := gatehouse.Decode(rec, rt); err != nil {
				return nil, err
			}
			out = append(out, rt)
		}
		if page.Next == 0 {
			return out, nil
		}
		opts.After = page.Next
	}
}

func existingByID(routes []*gatehouse.Route, id string) *gatehouse.Route {
	for _, rt := range routes {
		if rt.ID == id {
			return rt
		}
	}
	return nil
}

// sameRoute reports whether two routes store the same.
func sameRoute(a, b *gatehouse.Route) (bool, error) {
	ra, err := gatehouse.Encode(a, nil)
	if err != nil {
		return false, gatehouse.Internal(err)
	}
	rb, err := gatehouse.Encode(b, nil)
	if err != nil {
		return false, gatehouse.Internal(err)
	}
	return bytes.Equal(ra.Body, rb.Body), nil
}

func unprocessable(field, msg string) error {
	return gatehouse.Unprocessable([]gatehouse.FieldError{{Field: field, Message: msg}})
}

// slicesSorted returns the operations by path, then method: the order of
// the change set, the same whatever order the document gives.
func slicesSorted(ops []openapi.Operation) []openapi.Operation {
	out := append([]openapi.Operation(nil), ops...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Method < out[j].Method
	})
	return out
}

var templateParam = regexp.MustCompile(`\{([^{}]*)\}`)

// routePattern turns a document's path template into a route path pattern
// under prefix. A parameter is a whole segment in a route, so a segment
// holding one among other text ("/files/{name}.{ext}", "/v{version}")
// becomes one parameter matching the whole segment ("{name_ext}",
// "{version}"): the openapi policy, not the route, checks what is in it.
// Names the pattern language refuses ("{pet-id}") become ones it takes
// ("{pet_id}").
func routePattern(prefix, tmpl string) (string, error) {
	if strings.Contains(tmpl, "*") {
		// In a route a final * matches every path below: a document's
		// literal * must not widen the route.
		return "", fmt.Errorf("%q holds a *, which a route pattern reads as a prefix match", tmpl)
	}
	segs := strings.Split(tmpl, "/")
	used := map[string]bool{}
	for i, seg := range segs {
		if !strings.ContainsAny(seg, "{}") {
			continue
		}
		var parts []string
		for _, m := range templateParam.FindAllStringSubmatch(seg, -1) {
			parts = append(parts, m[1])
		}
		name := paramName(strings.Join(parts, "_"))
		for used[name] {
			name += "_"
		}
		used[name] = true
		segs[i] = "{" + name + "}"
	}
	p := prefix + strings.Join(segs, "/")
	if err := gatehouse.CheckPathPattern(p); err != nil {
		return "", err
	}
	return p, nil
}

// paramName makes s a parameter name of the route pattern language:
// letters, digits and _, starting with a letter or _, at most 64 bytes.
func paramName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	if len(b) == 0 || b[0] >= '0' && b[0] <= '9' {
		b = append([]byte{'_'}, b...)
	}
	return string(b[:min(len(b), 64)])
}

// uniqueName names the route of an operation: "<spec name>.<operationId>",
// or the method and path without one, sanitised to the name rule, with a
// number added if another operation of the document took it.
func uniqueName(spec string, op openapi.Operation, taken map[string]bool) string {
	base := op.OperationID
	if gatehouse.SanitizeName(base) == "" {
		base = strings.ToLower(op.Method) + " " + op.Path
	}
	first := gatehouse.SanitizeName(spec + "." + base)
	name := first
	for n := 2; taken[name]; n++ {
		suffix := fmt.Sprintf("-%d", n)
		name = gatehouse.SanitizeName(first[:min(len(first), 128-len(suffix))]) + suffix
	}
	taken[name] = true
	return name
}
