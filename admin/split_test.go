package admin

import (
	"fmt"
	"testing"
)

// The services a traffic split or a mirror names are references, as a
// route's service is: a write naming one that does not exist is 422 at
// the field naming it, and a service a policy names cannot be deleted
// (409) until the policy lets it go.
func TestSplitAndMirrorServicesAreReferences(t *testing.T) {
	for _, tc := range []struct {
		desc, config, typ, field string
	}{
		{"split", `{"services":[{"service_id":"%s","percent":5}]}`, "traffic-split", "config.services[0].service_id"},
		{"mirror", `{"service_id":"%s"}`, "mirror", "config.service_id"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			api := newTestAPI(t)
			before := api.snapshot()
			r := api.do("POST", "/admin/v1/policies", fmt.Sprintf(`{"id":"p","name":"p","type":%q,"config":`+tc.config+`}`, tc.typ, "missing"))
			assertProblem(t, r, 422)
			if got := fmt.Sprint(r.problemFields()); got != "["+tc.field+"]" {
				t.Fatalf("a policy naming a missing service: fields %v; want [%s]", got, tc.field)
			}
			api.unchanged(before)
			svc := api.service("canary")
			api.must(201, "POST", "/admin/v1/policies", fmt.Sprintf(`{"id":"p","name":"p","type":%q,"config":`+tc.config+`}`, tc.typ, svc))
			before = api.snapshot()
			assertProblem(t, api.do("DELETE", "/admin/v1/services/"+svc, ""), 409)
			api.unchanged(before)
			api.must(204, "DELETE", "/admin/v1/policies/p", "")
			api.must(204, "DELETE", "/admin/v1/services/"+svc, "")
		})
	}
}

// One level holds one traffic split: a route or a service listing two is
// 422 at the second, and nothing is written.
func TestTwoTrafficSplitsAtOneLevelAreRefused(t *testing.T) {
	api := newTestAPI(t)
	svc := api.service("stable")
	canary := api.service("canary")
	for _, id := range []string{"a", "b"} {
		api.must(201, "POST", "/admin/v1/policies", fmt.Sprintf(`{"id":%q,"name":%q,"type":"traffic-split","config":{"services":[{"service_id":%q,"percent":5}]}}`, id, id, canary))
	}
	api.must(201, "POST", "/admin/v1/policies", `{"id":"m","name":"m","type":"maintenance","config":{}}`)
	for _, tc := range []struct {
		desc, method, path, body string
	}{
		{"a route", "POST", "/admin/v1/routes", `{"id":"r","paths":["/a"],"service_id":"` + svc + `","policies":["a","m","b"]}`},
		{"a service", "PATCH", "/admin/v1/services/" + svc, `{"policies":["a","m","b"]}`},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			before := api.snapshot()
			r := api.do(tc.method, tc.path, tc.body, h("Content-Type", map[string]string{"POST": "application/json", "PATCH": "application/merge-patch+json"}[tc.method]))
			assertProblem(t, r, 422)
			if got := fmt.Sprint(r.problemFields()); got != "[policies[2]]" {
				t.Fatalf("fields %v; want [policies[2]]", got)
			}
			api.unchanged(before)
		})
	}
	// A route's own split beside its service's: two levels, the route's wins.
	api.must(200, "PATCH", "/admin/v1/services/"+svc, `{"policies":["a"]}`, h("Content-Type", "application/merge-patch+json"))
	api.must(201, "POST", "/admin/v1/routes", `{"id":"r","paths":["/a"],"service_id":"`+svc+`","policies":["b"]}`)
}
