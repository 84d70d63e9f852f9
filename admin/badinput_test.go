package admin

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
)

// Bad input gets the right 4xx with a problem naming what is wrong, and the
// store is exactly as it was before.

func TestBadBodiesReturn400NamingEveryBadFieldAndChangeNothing(t *testing.T) {
	api := newTestAPI(t)
	svc := api.service("existing")
	tests := []struct {
		desc, method, path, body string
		fields                   []string
	}{
		{"malformed JSON", "POST", "/admin/v1/services", `{"name":"x",}`, []string{"body"}},
		{"truncated JSON", "POST", "/admin/v1/services", `{"name":"x","url":"http://a`, []string{"body"}},
		{"not an object", "POST", "/admin/v1/services", `["name"]`, []string{"body"}},
		{"trailing data", "POST", "/admin/v1/services", `{"name":"x","url":"http://a:1"} {}`, []string{"body"}},
		{"duplicate keys", "POST", "/admin/v1/services", `{"name":"x","name":"y","url":"http://a:1"}`, []string{"body"}},
		{"invalid UTF-8", "POST", "/admin/v1/consumers", "{\"name\":\"\xff\xfe\"}", []string{"body"}},
		{"deeply nested", "POST", "/admin/v1/consumers", strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100), []string{"body"}},
		{"wrong types everywhere", "POST", "/admin/v1/services",
			`{"name":7,"url":"http://a:1","retries":"3","connect_timeout_ms":1.5,"read_timeout_ms":true}`,
			[]string{"connect_timeout_ms", "name", "read_timeout_ms", "retries"}},
		{"unknown fields", "POST", "/admin/v1/services", `{"name":"x","url":"http://a:1","hots":["a"],"timeout":3}`, []string{"hots", "timeout"}},
		{"unknown nested field", "POST", "/admin/v1/services", `{"name":"x","targets":[{"url":"http://a:1","wieght":3}]}`, []string{"targets[0].wieght"}},
		{"missing required", "POST", "/admin/v1/services", `{}`, []string{"name", "url"}},
		{"out of range", "POST", "/admin/v1/services", `{"name":"x","url":"http://a:1","retries":99,"connect_timeout_ms":0}`, []string{"connect_timeout_ms", "retries"}},
		{"gRPC health check with a path", "POST", "/admin/v1/services", `{"name":"x","url":"http://a:1","protocol":"http2","health_check":{"type":"grpc","path":"/health"}}`, []string{"health_check.path"}},
		{"id with a slash", "POST", "/admin/v1/consumers", `{"id":"a/b","name":"x"}`, []string{"id"}},
		{"id with dots", "POST", "/admin/v1/consumers", `{"id":"..","name":"x"}`, []string{"id"}},
		{"id with a control character", "POST", "/admin/v1/consumers", `{"id":"a\u0007b","name":"x"}`, []string{"id"}},
		{"name with a space", "POST", "/admin/v1/consumers", `{"name":"a b"}`, []string{"name"}},
		{"huge number", "POST", "/admin/v1/services", `{"name":"x","url":"http://a:1","retries":1e400}`, []string{"retries"}},
		{"policy type unknown", "POST", "/admin/v1/policies", `{"name":"p","type":"magic","config":{}}`, []string{"type"}},
		{"policy config wrong", "POST", "/admin/v1/policies", `{"name":"p","type":"rate-limit","config":{"requests":0,"per":"day","bursts":2}}`, []string{"config.bursts"}},
		{"policy config out of range", "POST", "/admin/v1/policies", `{"name":"p","type":"rate-limit","config":{"requests":0,"per":"day"}}`, []string{"config.per", "config.requests"}},
		{"credential type missing", "POST", "/admin/v1/consumers/c1/credentials", `{"key":"short"}`, []string{"type"}},
		{"route without match", "POST", "/admin/v1/routes", `{"service_id":"` + svc + `"}`, []string{"paths"}},
		{"token secret chosen by client", "POST", "/admin/v1/tokens", `{"token":"mine","role":"root"}`, []string{"role", "token"}},
		{"PUT id differs from path", "PUT", "/admin/v1/services/" + svc, `{"id":"other","name":"x","url":"http://a:1"}`, []string{"id"}},
		{"PATCH not an object", "PATCH", "/admin/v1/services/" + svc, `[1,2]`, []string{"body"}},
		{"PATCH wrong type", "PATCH", "/admin/v1/services/" + svc, `{"retries":"many"}`, []string{"retries"}},
		{"empty body", "POST", "/admin/v1/consumers", ` `, []string{"body"}},
	}
	api.must(201, "POST", "/admin/v1/consumers", `{"id":"c1","name":"c1"}`)
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			before := api.snapshot()
			r := api.do(tc.method, tc.path, tc.body)
			assertProblem(t, r, 400)
			if got := r.problemFields(); fmt.Sprint(got) != fmt.Sprint(tc.fields) {
				t.Fatalf("got fields %v; want %v; body %s", got, tc.fields, r.body)
			}
			api.unchanged(before)
		})
	}
}

func TestBadPathIDsReturn400(t *testing.T) {
	api := newTestAPI(t)
	for _, id := range []string{"a%2Fb", "a.b", "%2E%2E", "a%00b", "a%0Ab", strings.Repeat("x", 65), "%C3%A9"} {
		t.Run(id, func(t *testing.T) {
			r := api.do("GET", "/admin/v1/services/"+id, "")
			assertProblem(t, r, 400)
			if got := r.problemFields(); fmt.Sprint(got) != "[id]" {
				t.Fatalf("got fields %v; want [id]", got)
			}
		})
	}
}

func TestBadQueryParametersReturn400(t *testing.T) {
	api := newTestAPI(t)
	tests := []struct {
		query  string
		fields []string
	}{
		{"limit=0", []string{"query.limit"}},
		{"limit=501", []string{"query.limit"}},
		{"limit=-1", []string{"query.limit"}},
		{"limit=ten", []string{"query.limit"}},
		{"limit=99999999999999999999999", []string{"query.limit"}},
		{"limit=1&limit=2", []string{"query.limit"}},
		{"cursor=nonsense", []string{"query.cursor"}},
		{"cursor=" + url.QueryEscape(encodeCursor(1)) + "x", []string{"query.cursor"}},
		{"sort=name", []string{"query.sort"}},
		{"service_id=x", []string{"query.service_id"}}, // a filter of routes, not services
		{"name=" + strings.Repeat("n", 200), []string{"query.name"}},
		{"name=%ZZ", []string{"query"}},
		{"name=a%00b", []string{"query"}},
		{"limit=0&bogus=1", []string{"query.bogus", "query.limit"}},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			r := api.do("GET", "/admin/v1/services?"+tc.query, "")
			assertProblem(t, r, 400)
			if got := r.problemFields(); fmt.Sprint(got) != fmt.Sprint(tc.fields) {
				t.Fatalf("got fields %v; want %v; body %s", got, tc.fields, r.body)
			}
		})
	}
}

func TestListPaginatesWithOpaqueCursorAndFilters(t *testing.T) {
	api := newTestAPI(t)
	svcA, svcB := api.service("a"), api.service("b")
	for i := range 7 {
		svc := svcA
		if i%2 == 1 {
			svc = svcB
		}
		api.must(201, "POST", "/admin/v1/routes", fmt.Sprintf(`{"id":"r%d","name":"route-%d","paths":["/p%d"],"service_id":%q}`, i, i, i, svc))
	}
	var ids []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		path := "/admin/v1/routes?limit=3"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		page := api.must(200, "GET", path, "").json()
		for _, item := range page["data"].([]any) {
			ids = append(ids, item.(map[string]any)["id"].(string))
		}
		next, _ := page["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	if fmt.Sprint(ids) != "[r0 r1 r2 r3 r4 r5 r6]" {
		t.Fatalf("got %v; want all seven routes in creation order", ids)
	}
	bySvc := api.must(200, "GET", "/admin/v1/routes?service_id="+svcB, "").json()["data"].([]any)
	if len(bySvc) != 3 {
		t.Fatalf("service_id filter: got %d routes; want 3", len(bySvc))
	}
	byName := api.must(200, "GET", "/admin/v1/routes?name=route-4", "").json()["data"].([]any)
	if len(byName) != 1 || byName[0].(map[string]any)["id"] != "r4" {
		t.Fatalf("name filter: got %v; want r4 only", byName)
	}
	empty := api.must(200, "GET", "/admin/v1/routes?name=none", "")
	if !strings.Contains(string(empty.body), `"data":[]`) {
		t.Fatalf("empty list: got %s; want data: []", empty.body)
	}
}
