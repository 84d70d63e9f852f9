package admin

import (
	"fmt"
	"net/http"
	"testing"
)

// A transform that would forge a header gatehouse owns, or use a variable
// gatehouse does not define, is refused when written, naming the field,
// and nothing is stored.
func TestTransformPolicyForgingAProtectedFieldIsRefusedWith422(t *testing.T) {
	a := newTestAPI(t)
	for _, tc := range []struct {
		desc, config string
		status       int
		fields       []string
	}{
		{"setting the consumer's id", `{"request":{"headers":{"set":{"X-Consumer-Id":"admin"}}}}`, 422,
			[]string{"config.request.headers.set.X-Consumer-Id"}},
		{"renaming a field onto X-Forwarded-For", `{"request":{"headers":{"rename":{"X-Mine":"x-forwarded-for"}}}}`, 422,
			[]string{"config.request.headers.rename.X-Mine"}},
		{"removing Connection from a response", `{"response":{"headers":{"remove":["connection"]}}}`, 422,
			[]string{"config.response.headers.remove[0]"}},
		{"an unknown variable", `{"request":{"query":{"add":{"u":"$(consumer.email)"}}}}`, 422,
			[]string{"config.request.query.add.u"}},
		{"a CR LF in a value", `{"request":{"headers":{"add":{"X-A":"a\r\nX-Consumer-Id: admin"}}}}`, 400,
			[]string{"config.request.headers.add.X-A"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			before := a.snapshot()
			r := a.do("POST", "/admin/v1/policies", fmt.Sprintf(`{"name":"t","type":"transform","config":%s}`, tc.config))
			if r.status != tc.status || fmt.Sprint(r.problemFields()) != fmt.Sprint(tc.fields) {
				t.Fatalf("got %d %v; want %d %v (%s)", r.status, r.problemFields(), tc.status, tc.fields, r.body)
			}
			a.unchanged(before)
		})
	}
	a.must(http.StatusCreated, "POST", "/admin/v1/policies",
		`{"name":"t","type":"transform","config":{"request":{"path":"/v2/{id}","headers":{"set":{"X-Tenant":"$(consumer.id)"}}}}}`)
}

// A route listing a transform whose path template names a parameter one
// of the route's paths does not capture is refused when written.
func TestRouteListingATransformItsPathsCannotFillIsRefusedWith422(t *testing.T) {
	a := newTestAPI(t)
	svc := a.service("accounts")
	a.must(http.StatusCreated, "POST", "/admin/v1/policies",
		`{"id":"v2","name":"v2","type":"transform","config":{"request":{"path":"/v2/accounts/{id}"}}}`)
	for _, tc := range []struct {
		desc, paths string
		status      int
		fields      []string
	}{
		{"a path without the parameter", `["/users/{id}","/users"]`, 422, []string{"policies[0]"}},
		{"no path at all", `[]`, 422, []string{"policies[0]"}},
		{"every path captures it", `["/users/{id}","/people/{id}/profile"]`, 201, nil},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			r := a.do("POST", "/admin/v1/routes", fmt.Sprintf(`{"name":"r%d","service_id":%q,"hosts":["h%d.example"],"paths":%s,"policies":["v2"]}`,
				tc.status, svc, len(tc.paths), tc.paths))
			if r.status != tc.status || fmt.Sprint(r.problemFields()) != fmt.Sprint(tc.fields) {
				t.Fatalf("got %d %v; want %d %v (%s)", r.status, r.problemFields(), tc.status, tc.fields, r.body)
			}
		})
	}
}
