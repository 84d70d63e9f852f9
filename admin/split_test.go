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
