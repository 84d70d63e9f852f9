package proxy

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testupstream"
)

// transformFixture is an upstream, alice with an API key, an auth policy
// (default identity headers) and the transform policy cfg, on one
// catch-all route "r".
func transformFixture(t *testing.T, cfg string, auth bool) (*gateway, *policyFixture) {
	t.Helper()
	up := testupstream.Start(t)
	f := newPolicyFixture(t, up.URL).consumer("c-alice", "alice", "staff").key("c-alice", aliceAPIKey)
	if auth {
		f.policy(`{"name":"auth","type":"auth","config":{"key_auth":{}}}`)
	}
	f.policy(`{"name":"transform","type":"transform","config":` + cfg + `}`)
	g := newGateway(t)
	g.apply(f.rev)
	return g, f
}

func TestTransformChangesTheRequestHeadersTheUpstreamSees(t *testing.T) {
	g, _ := transformFixture(t, `{"request":{"headers":{
		"remove":["X-Internal"],
		"rename":{"X-Old":"X-New"},
		"set":{"X-Tenant":"tenant-$(consumer.id)","X-Route":"$(route.id)","X-Price":"$$5"},
		"add":{"X-Who":"$(consumer.name)","X-Req":"$(request.id)","X-Client":"$(client.address)"}}}}`, true)
	e := g.get("/echo", "X-API-Key", aliceAPIKey, "X-Request-Id", "req-7",
		"X-Internal", "secret", "X-Old", "renamed", "X-Tenant", "forged", "X-Who", "client's").echo(t)
	for _, tc := range []struct {
		desc, name string
		want       []string // nil: absent
	}{
		{"a removed field is not sent", "X-Internal", nil},
		{"a renamed field leaves its old name", "X-Old", nil},
		{"a renamed field keeps its value", "X-New", []string{"renamed"}},
		{"set replaces the client's value", "X-Tenant", []string{"tenant-c-alice"}},
		{"the route's id", "X-Route", []string{"r"}},
		{"$$ is a literal $", "X-Price", []string{"$5"}},
		{"add appends to the client's value", "X-Who", []string{"client's", "alice"}},
		{"the request id", "X-Req", []string{"req-7"}},
		{"the client's address", "X-Client", []string{"127.0.0.1"}},
		{"auth's identity field stands", "X-Consumer-Id", []string{"c-alice"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			if got := e.Headers[tc.name]; fmt.Sprint(got) != fmt.Sprint(tc.want) || (tc.want == nil) != (got == nil) {
				t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
			}
		})
	}
}

func TestTransformWithoutAConsumerSendsNoValueAndDropsTheClientsOwn(t *testing.T) {
	g, _ := transformFixture(t, `{"request":{"headers":{
		"set":{"X-Tenant":"tenant-$(consumer.id)"},"add":{"X-Who":"$(consumer.name)"}},
		"query":{"set":{"tenant":"$(consumer.id)"}}}}`, false)
	e := g.get("/echo?tenant=forged&a=1", "X-Tenant", "forged").echo(t)
	if v, ok := e.Headers["X-Tenant"]; ok {
		t.Errorf("X-Tenant reached the upstream: %q", v)
	}
	if v, ok := e.Headers["X-Who"]; ok {
		t.Errorf("X-Who was added without a consumer: %q", v)
	}
	if e.RawQuery != "a=1" {
		t.Errorf("query %q, want a=1 (the client's tenant dropped, none added)", e.RawQuery)
	}
}

func TestTransformChangesQueryParametersKeepingTheOthersAsSent(t *testing.T) {
	g, _ := transformFixture(t, `{"request":{"query":{
		"remove":["debug"],"rename":{"q":"search"},
		"set":{"page":"1"},"add":{"who":"$(consumer.name) & co"}}}}`, true)
	for _, tc := range []struct {
		desc, query, want string
	}{
		{"each operation", "?q=go%20lang&debug=1&page=9&x=%2F", "search=go%20lang&x=%2F&page=1&who=alice+%26+co"},
		{"no query at all", "", "page=1&who=alice+%26+co"},
		{"a parameter without a value renamed", "?q&z=1", "search&z=1&page=1&who=alice+%26+co"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			e := g.get("/echo"+tc.query, "X-API-Key", aliceAPIKey).echo(t)
			if e.RawQuery != tc.want {
				t.Errorf("upstream query %q, want %q", e.RawQuery, tc.want)
			}
		})
	}
}

func TestTransformRewritesThePathWithTheRoutesParameters(t *testing.T) {
	up := testupstream.Start(t)
	rev := revision(t, 1, []string{fmt.Sprintf(`{"id":"s","name":"s","url":%q}`, up.URL+"/base")},
		[]string{`{"id":"r","service_id":"s","paths":["/users/{id}","/people/{id}/profile"]}`})
	f := (&policyFixture{t: t, rev: rev}).policy(`{"name":"t","type":"transform","config":{"request":{"path":"/v2/accounts/{id}"}}}`)
	g := newGateway(t)
	g.apply(f.rev)
	for _, tc := range []struct {
		desc, path, want string
	}{
		{"a plain capture", "/users/42?x=1", "/base/v2/accounts/42?x=1"},
		{"the route's other path", "/people/7/profile", "/base/v2/accounts/7"},
		{"an escaped slash stays in its segment", "/users/a%2Fb", "/base/v2/accounts/a%2Fb"},
		{"a space is escaped", "/users/a%20b", "/base/v2/accounts/a%20b"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			r := g.get(tc.path)
			if r.status != http.StatusOK {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if got := r.echo(t).RequestURI; got != tc.want {
				t.Errorf("upstream request URI %q, want %q", got, tc.want)
			}
		})
	}
}

func TestTransformPathNamingAParameterTheRouteDoesNotCaptureIsRefusedOnApply(t *testing.T) {
	up := testupstream.Start(t)
	rev := revision(t, 1, []string{fmt.Sprintf(`{"id":"s","name":"s","url":%q}`, up.URL)},
		[]string{`{"id":"r","service_id":"s","paths":["/users/{id}","/all"]}`})
	f := (&policyFixture{t: t, rev: rev}).policy(`{"name":"t","type":"transform","config":{"request":{"path":"/v2/{id}"}}}`)
	g := newGateway(t)
	err := g.handler.Apply(context.Background(), f.rev)
	if err == nil || !strings.Contains(err.Error(), `"/all" does not capture`) {
		t.Fatalf("Apply: %v; want the route's path named", err)
	}
}

func TestTransformOfAConfiguredIdentityFieldIsRefusedOnApply(t *testing.T) {
	up := testupstream.Start(t)
	f := newPolicyFixture(t, up.URL).
		policy(`{"name":"auth","type":"auth","config":{"key_auth":{},"consumer_id_header":"X-User"}}`).
		policy(`{"name":"t","type":"transform","config":{"request":{"headers":{"set":{"x-user":"admin"}}}}}`)
	err := newGateway(t).handler.Apply(context.Background(), f.rev)
	if err == nil || !strings.Contains(err.Error(), "X-User") {
		t.Fatalf("Apply: %v; want X-User refused", err)
	}
}

func TestTransformChangesTheUpstreamsResponseHeaders(t *testing.T) {
	g, _ := transformFixture(t, `{"response":{"headers":{
		"remove":["X-Powered-By"],"rename":{"Server-Timing":"X-Upstream-Timing"},
		"set":{"X-Served-For":"$(consumer.id)","Cache-Control":"no-store"},"add":{"Link":"</help>; rel=help"}}}}`, true)
	r := g.get("/headers?set=X-Powered-By:php&set=Server-Timing:db%3Bdur=3&set=Cache-Control:public&set=Link:</next>%3B+rel%3Dnext",
		"X-API-Key", aliceAPIKey)
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"X-Powered-By", nil},
		{"Server-Timing", nil},
		{"X-Upstream-Timing", []string{"db;dur=3"}},
		{"X-Served-For", []string{"c-alice"}},
		{"Cache-Control", []string{"no-store"}},
		{"Link", []string{"</next>; rel=next", "</help>; rel=help"}},
		{"Via", []string{"1.1 gatehouse"}},
	} {
		if got := r.header.Values(tc.name); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestTransformLeavesGatehousesOwnProblemsAlone(t *testing.T) {
	g, _ := transformFixture(t, `{"response":{"headers":{"set":{"X-Transformed":"yes"}}}}`, true)
	r := g.get("/echo") // no key: auth's 401
	assertProblem(t, r, http.StatusUnauthorized)
	if v := r.header.Get("X-Transformed"); v != "" {
		t.Errorf("a refusal carries the transform's field: %q", v)
	}
}

// BenchmarkServeHTTPWithTransform is BenchmarkServeHTTP with a transform
// on the route: a field removed, one set from variables, a query
// parameter added, a response field set. The difference is the policy's
// cost.
//
//	go test -run '^$' -bench 'ServeHTTP' -benchmem ./proxy/
func BenchmarkServeHTTPWithTransform(b *testing.B) {
	g := &gateway{t: b, handler: New(Options{})}
	b.Cleanup(g.handler.Close)
	g.apply(newPolicyFixture(b, testupstream.Canned(b, okKiB)).
		policy(`{"name":"t","type":"transform","config":{
			"request":{"headers":{"remove":["Cookie"],"set":{"X-Trace":"$(route.id)/$(request.id)"}},"query":{"add":{"v":"2"}}},
			"response":{"headers":{"set":{"Cache-Control":"no-store"}}}}}`).rev)
	benchServeHTTP(b, g.handler, func(req *http.Request) { req.URL.RawQuery = "" })
}

func TestTransformRunsAfterTheBodyIsJudgedAsTheClientSentIt(t *testing.T) {
	up := testupstream.Start(t)
	f := newPolicyFixture(t, up.URL).
		policy(`{"name":"json","type":"content","config":{"accepts":["application/json"],"schema":{"type":"object"}}}`).
		policy(`{"name":"t","type":"transform","config":{"request":{"headers":{"set":{"Content-Type":"application/vnd.legacy"}}}}}`)
	g := newGateway(t)
	g.apply(f.rev)
	r := g.do("POST", "/echo", strings.NewReader(`{"a":1}`), "Content-Type", "application/json")
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if got := r.echo(t).Headers["Content-Type"]; fmt.Sprint(got) != "[application/vnd.legacy]" {
		t.Errorf("upstream Content-Type %q", got)
	}
	assertProblem(t, g.do("POST", "/echo", strings.NewReader(`[1]`), "Content-Type", "application/json"), http.StatusUnprocessableEntity)
}
