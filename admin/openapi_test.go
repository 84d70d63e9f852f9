package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/config"
	"github.com/gatehouse/gatehouse/internal/strictjson"
)

// The embedded OpenAPI document is kept true in three ways:
//
//   - checkOpenAPI, run by TestMain once every test has passed, fails if any
//     test saw an endpoint answer a status the document does not list for
//     that path and method;
//   - openAPIRouteProblems (run by checkOpenAPI and by
//     TestOpenAPIDocumentListsEveryRoute) fails if the document's paths and
//     methods differ from the router's;
//   - TestOpenAPIDocumentIsWellFormed checks what makes the document usable
//     at all: valid status codes, resolving $refs, declared path parameters;
//   - TestOpenAPIExamplesWorkOnAFreshServer sends every operation's example
//     request, in document order, and wants a documented 2xx.
//
// scripts/test.sh also lints it with Redocly and Spectral.

// apiMethods are the methods an endpoint can support, in Allow order.
var apiMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// openAPIOperations maps a path item's operation keys to methods.
var openAPIOperations = map[string]string{
	"get": "GET", "head": "HEAD", "post": "POST", "put": "PUT", "patch": "PATCH",
	"delete": "DELETE", "options": "OPTIONS", "trace": "TRACE",
}

// unsupportedMethodsKey is the path item extension that lists what a method
// the path does not support can be answered (405 first of all). OpenAPI has
// no place for it: it describes operations, and these are not any.
const unsupportedMethodsKey = "x-unsupported-methods"

// parseOpenAPI parses the embedded document strictly: duplicate keys, which
// encoding/json would silently resolve, are an error.
func parseOpenAPI() (map[string]any, error) {
	tree, err := strictjson.Parse(openAPIDocument)
	if err != nil {
		return nil, fmt.Errorf("does not parse: %v", err)
	}
	doc, ok := tree.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("is not a JSON object")
	}
	return doc, nil
}

// checkOpenAPI is called by TestMain after every test passed. It reports to
// stderr, and returns 1 on any problem.
func checkOpenAPI() int {
	doc, err := parseOpenAPI()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: admin/openapi.json %v\n", err)
		return 1
	}
	problems := openAPIRouteProblems(doc)
	statusLog.Lock()
	problems = append(problems, openAPIStatusProblems(doc, statusLog.seen)...)
	statusLog.Unlock()
	if len(problems) == 0 {
		return 0
	}
	fmt.Fprintf(os.Stderr, "FAIL: admin/openapi.json does not describe the API the tests saw (%d problems):\n", len(problems))
	for _, p := range problems {
		fmt.Fprintf(os.Stderr, "\t%s\n", p)
	}
	return 1
}

func endpointFor(pattern string) *endpoint {
	for _, ep := range endpoints {
		if ep.pattern == pattern {
			return ep
		}
	}
	return nil
}

func supports(ep *endpoint, method string) bool {
	return method == http.MethodOptions || ep.methods[method] != nil
}

// openAPIRouteProblems compares the document's version, paths and methods
// with the router's, and who needs credentials with the security the
// document declares.
func openAPIRouteProblems(doc map[string]any) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		add("openapi is %q; want 3.1.x", doc["openapi"])
	}
	paths, ok := doc["paths"].(map[string]any)
	if !ok {
		add("has no paths object")
		return out
	}
	for _, pattern := range slices.Sorted(maps.Keys(paths)) {
		item, _ := paths[pattern].(map[string]any)
		ep := endpointFor(pattern)
		if ep == nil {
			add("paths[%q]: no such endpoint in buildEndpoints()", pattern)
			continue
		}
		if item == nil {
			add("paths[%q] is not an object", pattern)
			continue
		}
		for _, key := range slices.Sorted(maps.Keys(item)) {
			method, isOp := openAPIOperations[key]
			switch {
			case isOp && !supports(ep, method):
				add("paths[%q].%s: the endpoint does not support %s (it allows %s)", pattern, key, method, ep.allow())
			case isOp:
				op, _ := item[key].(map[string]any)
				if op == nil {
					add("paths[%q].%s is not an object", pattern, key)
					continue
				}
				sec, hasSec := op["security"].([]any)
				public := hasSec && len(sec) == 0
				if public != ep.public {
					add("paths[%q].%s: security [] must be given exactly when the endpoint needs no credentials (public: %v)", pattern, key, ep.public)
				}
			case key == unsupportedMethodsKey:
				if _, ok := responsesOf(doc, item[key]); !ok {
					add("paths[%q].%s has no responses object", pattern, key)
				}
			case key == "summary" || key == "description" || key == "parameters" || strings.HasPrefix(key, "x-"):
			default:
				add("paths[%q] has %q, which this check does not understand", pattern, key)
			}
		}
		if _, ok := item[unsupportedMethodsKey]; !ok {
			add("paths[%q] lacks %s: what a method it does not support is answered", pattern, unsupportedMethodsKey)
		}
	}
	for _, ep := range endpoints {
		item, ok := paths[ep.pattern].(map[string]any)
		if !ok {
			add("paths[%q] is missing; the router serves %s there", ep.pattern, ep.allow())
			continue
		}
		for _, m := range apiMethods {
			if supports(ep, m) && item[strings.ToLower(m)] == nil {
				add("paths[%q].%s is missing; the router supports %s there", ep.pattern, strings.ToLower(m), m)
			}
		}
	}
	return out
}

// openAPIStatusProblems reports every status the tests saw an endpoint
// answer (seen: pattern → method → status) that the document does not list
// for that path and method. A method the endpoint does not support is
// looked up in the path's x-unsupported-methods.
func openAPIStatusProblems(doc map[string]any, seen map[string]map[string]map[int]bool) []string {
	var out []string
	paths, _ := doc["paths"].(map[string]any)
	for _, pattern := range slices.Sorted(maps.Keys(seen)) {
		ep := endpointFor(pattern)
		item, _ := paths[pattern].(map[string]any)
		for _, method := range slices.Sorted(maps.Keys(seen[pattern])) {
			where := fmt.Sprintf("paths[%q].%s.responses", pattern, strings.ToLower(method))
			var responses map[string]any
			switch {
			case item == nil:
			case ep != nil && supports(ep, method):
				responses, _ = responsesOf(doc, item[strings.ToLower(method)])
			default:
				where = fmt.Sprintf("paths[%q].%s.responses (for %s, which the path does not support)", pattern, unsupportedMethodsKey, method)
				responses, _ = responsesOf(doc, item[unsupportedMethodsKey])
			}
			codes := make([]int, 0, len(seen[pattern][method]))
			for code := range seen[pattern][method] {
				codes = append(codes, code)
			}
			sort.Ints(codes)
			for _, code := range codes {
				if code < 200 {
					continue
				}
				if _, ok := responses[strconv.Itoa(code)]; !ok {
					out = append(out, fmt.Sprintf("%s %s answered %d %s in the tests, but %s does not list %d",
						method, pattern, code, http.StatusText(code), where, code))
				}
			}
		}
	}
	return out
}

// responsesOf returns the responses object of an operation (or of
// x-unsupported-methods, whose responses are one shared $ref).
func responsesOf(doc map[string]any, v any) (map[string]any, bool) {
	op, _ := v.(map[string]any)
	if _, ok := op["responses"].(map[string]any); !ok {
		return nil, false
	}
	r, err := resolve(doc, op["responses"])
	return r, err == nil && r != nil
}

func TestOpenAPIDocumentListsEveryRoute(t *testing.T) {
	doc, err := parseOpenAPI()
	if err != nil {
		t.Fatalf("admin/openapi.json %v", err)
	}
	for _, p := range openAPIRouteProblems(doc) {
		t.Error(p)
	}
}

func TestOpenAPIDocumentIsServedWithoutCredentials(t *testing.T) {
	api := newTestAPI(t)
	r := api.do("GET", "/admin/v1/openapi.json", "", h("Authorization", ""))
	if r.status != 200 {
		t.Fatalf("got %d; want 200 without credentials: %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("got Content-Type %q; want application/json", ct)
	}
	var served, embedded map[string]any
	if err := json.Unmarshal(r.body, &served); err != nil {
		t.Fatalf("served document does not parse: %v", err)
	}
	if _, ok := served["paths"].(map[string]any); !ok {
		t.Fatalf("served document has no paths object")
	}
	json.Unmarshal(openAPIDocument, &embedded)
	if !reflect.DeepEqual(served, embedded) {
		t.Fatal("served document differs from the embedded one")
	}
	head := api.do("HEAD", "/admin/v1/openapi.json", "", h("Authorization", ""))
	if head.status != 200 || len(head.body) != 0 || head.header.Get("Content-Length") != strconv.Itoa(len(r.body)) {
		t.Fatalf("HEAD: got %d, %d body bytes, Content-Length %q; want 200, none, %d",
			head.status, len(head.body), head.header.Get("Content-Length"), len(r.body))
	}
	opts := api.do("OPTIONS", "/admin/v1/openapi.json", "", h("Authorization", ""))
	if opts.status != 204 || opts.header.Get("Allow") != "GET, HEAD, OPTIONS" {
		t.Fatalf("OPTIONS: got %d, Allow %q; want 204, GET, HEAD, OPTIONS", opts.status, opts.header.Get("Allow"))
	}
}

// TestOpenAPIDocumentIsWellFormed checks what the route and status checks
// take for granted: every documented status is an HTTP status, every $ref
// resolves, every component is used, and path parameters match templates.
func TestOpenAPIDocumentIsWellFormed(t *testing.T) {
	doc, err := parseOpenAPI()
	if err != nil {
		t.Fatalf("admin/openapi.json %v", err)
	}
	for _, p := range openAPIWellFormedProblems(doc) {
		t.Error(p)
	}
}

func openAPIWellFormedProblems(doc map[string]any) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }

	// Every $ref resolves, and every component is the target of one.
	used := map[string]bool{}
	walkJSON(doc, "#", func(ptr string, v any) {
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return
		}
		used[ref] = true
		if _, err := resolvePointer(doc, ref); err != nil {
			add("%s: $ref %q: %v", ptr, ref, err)
		}
	})
	components, _ := doc["components"].(map[string]any)
	for _, section := range slices.Sorted(maps.Keys(components)) {
		if section == "securitySchemes" {
			continue
		}
		// An extension is referenced as a whole (the responses every
		// unsupported method can get).
		if strings.HasPrefix(section, "x-") {
			if ref := "#/components/" + escapePointer(section); !used[ref] {
				add("%s is never referenced", ref)
			}
			continue
		}
		items, _ := components[section].(map[string]any)
		for _, name := range slices.Sorted(maps.Keys(items)) {
			if ref := "#/components/" + section + "/" + escapePointer(name); !used[ref] {
				add("%s is never referenced", ref)
			}
		}
	}

	// Security requirements name declared schemes.
	schemes, _ := components["securitySchemes"].(map[string]any)
	walkJSON(doc, "#", func(ptr string, v any) {
		if !strings.HasSuffix(ptr, "/security") {
			return
		}
		reqs, _ := v.([]any)
		for _, r := range reqs {
			for name := range r.(map[string]any) {
				if schemes[name] == nil {
					add("%s names security scheme %q, which components.securitySchemes lacks", ptr, name)
				}
			}
		}
	})

	paths, _ := doc["paths"].(map[string]any)
	template := regexp.MustCompile(`\{([^}]*)\}`)
	for _, pattern := range slices.Sorted(maps.Keys(paths)) {
		item, _ := paths[pattern].(map[string]any)
		var want []string
		for _, m := range template.FindAllStringSubmatch(pattern, -1) {
			want = append(want, m[1])
		}
		sort.Strings(want)
		pathParams := func(list any) []string {
			var names []string
			params, _ := list.([]any)
			for _, p := range params {
				p, err := resolve(doc, p)
				if err != nil {
					continue // reported as an unresolved $ref
				}
				if p["in"] == "path" {
					names = append(names, fmt.Sprint(p["name"]))
					if p["required"] != true {
						add("paths[%q]: path parameter %v must be required", pattern, p["name"])
					}
				}
			}
			return names
		}
		common := pathParams(item["parameters"])
		for _, key := range slices.Sorted(maps.Keys(item)) {
			var responses map[string]any
			if _, isOp := openAPIOperations[key]; isOp {
				got := append(pathParams(item[key].(map[string]any)["parameters"]), common...)
				sort.Strings(got)
				if !slices.Equal(got, want) {
					add("paths[%q].%s declares path parameters %v; the template has %v", pattern, key, got, want)
				}
				responses, _ = responsesOf(doc, item[key])
				if len(responses) == 0 {
					add("paths[%q].%s lists no responses", pattern, key)
				}
			} else if key == unsupportedMethodsKey {
				responses, _ = responsesOf(doc, item[key])
			} else {
				continue
			}
			for _, status := range slices.Sorted(maps.Keys(responses)) {
				code, err := strconv.Atoi(status)
				if err != nil || len(status) != 3 || http.StatusText(code) == "" {
					add("paths[%q].%s.responses has %q, which is not an HTTP status code", pattern, key, status)
				}
			}
		}
	}
	return out
}

// walkJSON calls fn for every value in v, with its JSON pointer.
func walkJSON(v any, ptr string, fn func(ptr string, v any)) {
	fn(ptr, v)
	switch v := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			walkJSON(v[k], ptr+"/"+escapePointer(k), fn)
		}
	case []any:
		for i, e := range v {
			walkJSON(e, ptr+"/"+strconv.Itoa(i), fn)
		}
	}
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// resolvePointer resolves a same-document reference ("#/a/b~1c").
func resolvePointer(doc map[string]any, ref string) (any, error) {
	rest, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return nil, fmt.Errorf("is not a reference within the document")
	}
	var cur any = doc
	if rest == "" {
		return cur, nil
	}
	if !strings.HasPrefix(rest, "/") {
		return nil, fmt.Errorf("is not a JSON pointer")
	}
	for _, tok := range strings.Split(rest[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			next, ok := c[tok]
			if !ok {
				return nil, fmt.Errorf("has no %q", tok)
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil, fmt.Errorf("has no element %q", tok)
			}
			cur = c[i]
		default:
			return nil, fmt.Errorf("cannot descend into %q", tok)
		}
	}
	return cur, nil
}

// resolve follows v's $ref, if any, to an object.
func resolve(doc map[string]any, v any) (map[string]any, error) {
	m, _ := v.(map[string]any)
	for range 8 {
		ref, ok := m["$ref"].(string)
		if !ok {
			return m, nil
		}
		target, err := resolvePointer(doc, ref)
		if err != nil {
			return nil, err
		}
		m, _ = target.(map[string]any)
	}
	return nil, fmt.Errorf("$ref chain too long")
}

// TestOpenAPISchemasMatchResources checks that each resource's schema has
// exactly the JSON fields of its Go type, so that a field added to one is
// not forgotten in the other.
func TestOpenAPISchemasMatchResources(t *testing.T) {
	doc, err := parseOpenAPI()
	if err != nil {
		t.Fatalf("admin/openapi.json %v", err)
	}
	schemas, _ := doc["components"].(map[string]any)["schemas"].(map[string]any)
	for name, v := range map[string]any{
		"Service": gatehouse.Service{}, "Target": gatehouse.Target{}, "HealthCheck": gatehouse.HealthCheck{},
		"Route": gatehouse.Route{}, "Consumer": gatehouse.Consumer{}, "Credential": gatehouse.Credential{},
		"Policy": gatehouse.Policy{}, "Token": gatehouse.Token{},
		"Revision": gatehouse.Revision{}, "Deployment": gatehouse.Deployment{},
		"Node": gatehouse.Node{}, "NodeProgress": gatehouse.NodeProgress{},
		"AuthConfig": gatehouse.AuthConfig{}, "KeyAuthConfig": gatehouse.KeyAuthConfig{}, "JWTConfig": gatehouse.JWTConfig{},
		"JWTKey": gatehouse.JWTKey{}, "IPRestrictionConfig": gatehouse.IPRestrictionConfig{}, "ACLConfig": gatehouse.ACLConfig{},
		"ContentConfig": gatehouse.ContentConfig{}, "RateLimitConfig": gatehouse.RateLimitConfig{},
		"ConcurrencyLimitConfig": gatehouse.ConcurrencyLimitConfig{}, "AdaptiveConcurrencyConfig": gatehouse.AdaptiveConcurrencyConfig{},
		"CircuitBreakerConfig": gatehouse.CircuitBreakerConfig{}, "MaintenanceConfig": gatehouse.MaintenanceConfig{},
		"DeprecationConfig": gatehouse.DeprecationConfig{}, "EgressConfig": gatehouse.EgressConfig{}, "EgressRule": gatehouse.EgressRule{},
		"TrafficSplitConfig": gatehouse.TrafficSplitConfig{}, "SplitService": gatehouse.SplitService{}, "MirrorConfig": gatehouse.MirrorConfig{},
		"Spec": gatehouse.Spec{}, "RouteImport": gatehouse.RouteImport{}, "ImportRequest": importRequest{}, "ImportResult": importResult{},
		"ChangeSet": config.ChangeSet{}, "Change": config.Change{}, "FieldChange": config.FieldChange{}, "ChangeSummary": config.Summary{},
		"RevisionDiff": config.RevisionDiff{},
		"ClusterStats": gatehouse.ClusterStats{}, "ServiceHealth": gatehouse.ServiceHealthView{}, "TargetHealth": gatehouse.TargetHealthView{},
		"NodeTargetHealth": gatehouse.NodeTargetHealth{}, "TargetFailure": gatehouse.TargetFailure{}, "NodeShare": gatehouse.NodeShare{},
	} {
		schema, _ := schemas[name].(map[string]any)
		props, _ := schema["properties"].(map[string]any)
		if props == nil {
			t.Errorf("components.schemas.%s has no properties", name)
			continue
		}
		want := jsonFields(reflect.TypeOf(v))
		sort.Strings(want)
		if got := slices.Sorted(maps.Keys(props)); !slices.Equal(got, want) {
			t.Errorf("components.schemas.%s has properties %v; gatehouse.%s has JSON fields %v", name, got, reflect.TypeOf(v).Name(), want)
		}
	}
}

// jsonFields lists the JSON member names encoding/json gives a struct type,
// embedded structs' included.
func jsonFields(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	return out
}

// workflowMethods is the order in which the examples test runs a path's
// operations: creation first, reads and changes next, deletion last.
var workflowMethods = []string{"POST", "GET", "HEAD", "PUT", "PATCH", "OPTIONS", "DELETE"}

// TestOpenAPIExamplesWorkOnAFreshServer sends every operation's example
// request to a fresh server and wants one of the 2xx the operation
// documents. Paths run in document order, which is therefore the order a
// workflow generated from the document (Redocly Respect's, for one)
// must follow: the document lists creations each after what it references,
// then the items, each before what it references. So the examples must
// chain: the route example names the service the service example creates,
// a path's example id is the one its creation example chose.
func TestOpenAPIExamplesWorkOnAFreshServer(t *testing.T) {
	doc, err := parseOpenAPI()
	if err != nil {
		t.Fatalf("admin/openapi.json %v", err)
	}
	order, err := openAPIPathOrder(openAPIDocument)
	if err != nil {
		t.Fatalf("admin/openapi.json: %v", err)
	}
	api := newTestAPI(t)
	paths, _ := doc["paths"].(map[string]any)
	etags := map[string]string{} // request path → the ETag last answered for it
	linked := linkedParams{}     // what earlier responses' links bind
	for _, pattern := range order {
		item, _ := paths[pattern].(map[string]any)
		for _, method := range workflowMethods {
			op, ok := item[strings.ToLower(method)].(map[string]any)
			if !ok {
				continue
			}
			req, err := exampleRequest(doc, pattern, item, op, linked[fmt.Sprint(op["operationId"])], false)
			if err != nil {
				t.Errorf("%s %s: %v", method, pattern, err)
				continue
			}
			if pattern == Prefix+"/nodes/{id}" {
				api.registerNode(strings.TrimPrefix(req.path, Prefix+"/nodes/"))
			}
			headers := req.headers
			if etag := etags[req.path]; etag != "" && (method == "PUT" || method == "PATCH" || method == "DELETE") {
				// As a careful client does: change what it last saw.
				headers = append(headers, h("If-Match", etag))
			}
			r := api.do(method, req.path, req.body, headers...)
			responses, _ := responsesOf(doc, op)
			if s := strconv.Itoa(r.status); r.status/100 != 2 || responses[s] == nil {
				t.Errorf("%s %s, the example of %s, body %q: got %d; want a 2xx its responses list; answer %s",
					method, req.path, op["operationId"], req.body, r.status, r.body)
			}
			etags[req.path] = r.header.Get("ETag")
			if err := linked.follow(doc, responses[strconv.Itoa(r.status)], r.body); err != nil {
				t.Errorf("%s %s: links of its %d: %v", method, pattern, r.status, err)
			}
			// A read is sent once more with the examples of its optional
			// query parameters too (a revision's diff_from): each must work.
			if method != "GET" && method != "HEAD" {
				continue
			}
			full, err := exampleRequest(doc, pattern, item, op, linked[fmt.Sprint(op["operationId"])], true)
			if err != nil {
				t.Errorf("%s %s with its optional parameters: %v", method, pattern, err)
				continue
			}
			if full.path == req.path {
				continue
			}
			if r := api.do(method, full.path, full.body, full.headers...); r.status/100 != 2 || responses[strconv.Itoa(r.status)] == nil {
				t.Errorf("%s %s, the example of %s with its optional query parameters: got %d; want a 2xx its responses list; answer %s",
					method, full.path, op["operationId"], r.status, r.body)
			}
		}
	}
}

// linkedParams holds, per operationId, the parameter values that the links
// of earlier responses bind: what no example can know in advance, such as
// an id the server draws.
type linkedParams map[string]map[string]string

// follow records the values a response's links bind, reading
// "$response.body#/pointer" expressions in body.
func (l linkedParams) follow(doc map[string]any, response any, body []byte) error {
	resp, err := resolve(doc, response)
	if err != nil {
		return err
	}
	links, _ := resp["links"].(map[string]any)
	if len(links) == 0 {
		return nil
	}
	var tree any
	if err := json.Unmarshal(body, &tree); err != nil {
		return fmt.Errorf("body is not JSON: %v", err)
	}
	for _, name := range slices.Sorted(maps.Keys(links)) {
		link, err := resolve(doc, links[name])
		if err != nil {
			return err
		}
		opID := fmt.Sprint(link["operationId"])
		params, _ := link["parameters"].(map[string]any)
		for param, expr := range params {
			ptr, ok := strings.CutPrefix(fmt.Sprint(expr), "$response.body#")
			if !ok {
				return fmt.Errorf("link %s: the test reads only $response.body#/… expressions, not %v", name, expr)
			}
			v, err := resolvePointer(map[string]any{"": tree}, "#/"+ptr)
			if err != nil {
				return fmt.Errorf("link %s: %s: %v", name, expr, err)
			}
			if l[opID] == nil {
				l[opID] = map[string]string{}
			}
			if f, ok := v.(float64); ok {
				v = strconv.FormatFloat(f, 'f', -1, 64)
			}
			l[opID][param] = fmt.Sprint(v)
		}
	}
	return nil
}

// exampleRequest builds the request an operation's examples describe: path
// parameters from the links of earlier responses or else their examples,
// required query and header parameters likewise (with optional, also the
// optional query parameters that have an example), and the body from the
// request body's example.
type examplePlan struct {
	path    string
	body    string
	headers []header
}

func exampleRequest(doc map[string]any, pattern string, item, op map[string]any, linked map[string]string, optional bool) (*examplePlan, error) {
	plan := &examplePlan{path: pattern}
	var query []string
	params := map[string]map[string]any{} // in + name → parameter; the operation's override the path's
	for _, list := range []any{item["parameters"], op["parameters"]} {
		entries, _ := list.([]any)
		for _, e := range entries {
			p, err := resolve(doc, e)
			if err != nil {
				return nil, err
			}
			params[fmt.Sprint(p["in"], " ", p["name"])] = p
		}
	}
	for _, key := range slices.Sorted(maps.Keys(params)) {
		p := params[key]
		ex, ok := p["example"]
		if p["in"] != "path" && p["required"] != true && !(optional && ok && p["in"] == "query") {
			continue
		}
		if !ok {
			return nil, fmt.Errorf("parameter %s has no example", key)
		}
		v := fmt.Sprint(ex)
		if l, ok := linked[fmt.Sprint(p["name"])]; ok {
			v = l
		}
		switch p["in"] {
		case "path":
			plan.path = strings.ReplaceAll(plan.path, "{"+fmt.Sprint(p["name"])+"}", v)
		case "query":
			query = append(query, fmt.Sprint(p["name"])+"="+v)
		case "header":
			plan.headers = append(plan.headers, h(fmt.Sprint(p["name"]), v))
		default:
			return nil, fmt.Errorf("parameter %s: the test cannot send a required parameter in %v", key, p["in"])
		}
	}
	if strings.Contains(plan.path, "{") {
		return nil, fmt.Errorf("no example for a parameter of %s", plan.path)
	}
	if len(query) > 0 {
		plan.path += "?" + strings.Join(query, "&")
	}
	if op["requestBody"] == nil {
		return plan, nil
	}
	rb, err := resolve(doc, op["requestBody"])
	if err != nil {
		return nil, err
	}
	content, _ := rb["content"].(map[string]any)
	if json, ok := content["application/json"]; ok && len(content) > 1 {
		// A body taken in several media types (a spec's document): the
		// test sends the JSON example.
		content = map[string]any{"application/json": json}
	}
	if len(content) != 1 {
		return nil, fmt.Errorf("request body has %d media types; the test sends one", len(content))
	}
	for mediaType, v := range content {
		ex, ok := v.(map[string]any)["example"]
		if !ok {
			return nil, fmt.Errorf("request body %s has no example", mediaType)
		}
		b, err := json.Marshal(ex)
		if err != nil {
			return nil, err
		}
		plan.body = string(b)
		plan.headers = append(plan.headers, h("Content-Type", mediaType))
	}
	return plan, nil
}

// openAPIPathOrder returns the document's paths in the order it lists
// them, which a map does not keep.
func openAPIPathOrder(document []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(document))
	var top map[string]json.RawMessage
	if err := dec.Decode(&top); err != nil {
		return nil, err
	}
	dec = json.NewDecoder(bytes.NewReader(top["paths"]))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("paths is not an object")
	}
	var order []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		order = append(order, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// registerNode records a node named name, as a gatehouse started with
// --node-name name does on its first heartbeat, unless the test server
// already has one by that name.
func (a *testAPI) registerNode(name string) {
	a.t.Helper()
	ctx := context.Background()
	if _, err := a.db.Get(ctx, gatehouse.KindNode, name); err == nil {
		return
	}
	n := gatehouse.NewNode()
	n.ID, n.Role, n.LastSeen, n.HeartbeatMS = name, gatehouse.RoleAll, a.clock.Now(), 2000
	rec, err := gatehouse.Encode(n, nil)
	if err != nil {
		a.t.Fatal(err)
	}
	if err := a.db.Create(ctx, rec); err != nil {
		a.t.Fatal(err)
	}
}

// documentedResponse returns what the document says pattern's method
// answers with status, or nil.
func documentedResponse(doc map[string]any, pattern, method string, status int) map[string]any {
	item, _ := doc["paths"].(map[string]any)[pattern].(map[string]any)
	responses, _ := responsesOf(doc, item[strings.ToLower(method)])
	resp, err := resolve(doc, responses[strconv.Itoa(status)])
	if err != nil {
		return nil
	}
	return resp
}

// routerOperations calls fn with every path and method the router serves,
// the path's ids filled in with a valid one.
func routerOperations(fn func(pattern, method, path string)) {
	fill := regexp.MustCompile(`\{[^}]*\}`)
	for _, ep := range endpoints {
		for _, m := range apiMethods {
			if supports(ep, m) {
				fn(ep.pattern, m, fill.ReplaceAllString(ep.pattern, "x1"))
			}
		}
	}
}

// TestOpenAPIDocumentsThe400OfAQueryParameterWhereverOneIsChecked sends an
// unknown query parameter to every operation the router serves: each must
// refuse it, OPTIONS included, and the document must list that 400 and say
// that a query parameter can earn it, so that a client reading the document
// knows the operation takes none it does not list.
func TestOpenAPIDocumentsThe400OfAQueryParameterWhereverOneIsChecked(t *testing.T) {
	doc, err := parseOpenAPI()
	if err != nil {
		t.Fatalf("admin/openapi.json %v", err)
	}
	api := newTestAPI(t)
	checked := 0
	routerOperations(func(pattern, method, path string) {
		body := ""
		if method == "POST" || method == "PUT" || method == "PATCH" {
			body = "{}" // never read: the query is refused first
		}
		r := api.do(method, path+"?not_a_parameter=1", body)
		if r.status != 400 || (method != "HEAD" && fmt.Sprint(r.problemFields()) != "[query.not_a_parameter]") {
			t.Errorf("%s %s?not_a_parameter=1: got %d %s; want 400 naming query.not_a_parameter", method, pattern, r.status, r.body)
			return
		}
		checked++
		resp := documentedResponse(doc, pattern, method, 400)
		if resp == nil {
			t.Errorf("%s %s answers 400 to an unknown query parameter; the document does not list 400", method, pattern)
			return
		}
		if desc := fmt.Sprint(resp["description"]); !strings.Contains(desc, "query parameter") {
			t.Errorf("%s %s answers 400 to an unknown query parameter; its documented 400 does not say so: %q", method, pattern, desc)
		}
	})
	if checked == 0 {
		t.Fatal("no operation refused an unknown query parameter")
	}
}

// TestOpenAPIDocumentsThe415OfAContentCoding sends a body in a content
// coding to every operation that takes a body: the document's 415 must
// declare the Accept-Encoding the server answers with.
func TestOpenAPIDocumentsThe415OfAContentCoding(t *testing.T) {
	doc, err := parseOpenAPI()
	if err != nil {
		t.Fatalf("admin/openapi.json %v", err)
	}
	api := newTestAPI(t)
	routerOperations(func(pattern, method, path string) {
		if method != "POST" && method != "PUT" && method != "PATCH" {
			return
		}
		r := api.do(method, path, "{}", h("Content-Encoding", "gzip"))
		if r.status != 415 || r.header.Get("Accept-Encoding") != "identity" {
			t.Errorf("%s %s with Content-Encoding: gzip: got %d, Accept-Encoding %q; want 415, identity",
				method, pattern, r.status, r.header.Get("Accept-Encoding"))
			return
		}
		resp := documentedResponse(doc, pattern, method, 415)
		headers, _ := resp["headers"].(map[string]any)
		if headers["Accept-Encoding"] == nil {
			t.Errorf("%s %s answers a content coding 415 with Accept-Encoding; its documented 415 declares headers %v",
				method, pattern, slices.Sorted(maps.Keys(headers)))
		}
	})
}

// TestOpenAPIOperationsThatList412TakeItsPreconditions: a 412 is earned
// only by a precondition the client sent, so an operation lists it exactly
// when it declares If-Match. An item's operations take If-Unmodified-Since
// with it; those of a target without an ETag (a collection, this document)
// do not, as it has no modification date and ignores the header.
func TestOpenAPIOperationsThatList412TakeItsPreconditions(t *testing.T) {
	doc, err := parseOpenAPI()
	if err != nil {
		t.Fatalf("admin/openapi.json %v", err)
	}
	paths, _ := doc["paths"].(map[string]any)
	for _, pattern := range slices.Sorted(maps.Keys(paths)) {
		item, _ := paths[pattern].(map[string]any)
		for _, key := range slices.Sorted(maps.Keys(item)) {
			if _, isOp := openAPIOperations[key]; !isOp {
				continue
			}
			op, _ := item[key].(map[string]any)
			headers := map[string]bool{}
			for _, list := range []any{item["parameters"], op["parameters"]} {
				entries, _ := list.([]any)
				for _, e := range entries {
					if p, err := resolve(doc, e); err == nil && p["in"] == "header" {
						headers[fmt.Sprint(p["name"])] = true
					}
				}
			}
			responses, _ := responsesOf(doc, op)
			lists412 := responses["412"] != nil
			if lists412 != headers["If-Match"] {
				t.Errorf("paths[%q].%s: lists 412: %v; declares If-Match: %v; want both or neither",
					pattern, key, lists412, headers["If-Match"])
			}
			// A target without an ETag, or whose ETag has no date (the
			// draft's), takes no If-Unmodified-Since.
			untagged := endpointFor(pattern) != nil && (endpointFor(pattern).untagged || endpointFor(pattern).undated)
			if want := headers["If-Match"] && !untagged; headers["If-Unmodified-Since"] != want {
				t.Errorf("paths[%q].%s (no ETag: %v): declares If-Unmodified-Since: %v; want %v, with If-Match on an item only",
					pattern, key, untagged, headers["If-Unmodified-Since"], want)
			}
		}
	}
}

// Every policy type the domain knows is one the document names, with a
// config schema of its own, in the order the data plane runs them.
func TestOpenAPIDocumentsEveryPolicyType(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas struct {
				Policy struct {
					Description string `json:"description"`
					Properties  struct {
						Type struct {
							Enum []string `json:"enum"`
						} `json:"type"`
					} `json:"properties"`
					AllOf []struct {
						If struct {
							Properties struct {
								Type struct {
									Const string `json:"const"`
								} `json:"type"`
							} `json:"properties"`
						} `json:"if"`
					} `json:"allOf"`
				} `json:"Policy"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		t.Fatal(err)
	}
	pol := doc.Components.Schemas.Policy
	configured := map[string]bool{}
	for _, a := range pol.AllOf {
		configured[a.If.Properties.Type.Const] = true
	}
	for typ := range gatehouse.PolicyTypes {
		if !slices.Contains(pol.Properties.Type.Enum, typ) || !configured[typ] {
			t.Errorf("policy type %s: in the enum %v, with a config schema %v; want both", typ,
				slices.Contains(pol.Properties.Type.Enum, typ), configured[typ])
		}
	}
	if want := strings.Join(gatehouse.PolicyOrder, ", "); !strings.Contains(pol.Description, want) {
		t.Errorf("the Policy description does not give the order %s", want)
	}
}
