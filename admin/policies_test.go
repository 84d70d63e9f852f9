package admin

import (
	"strings"
	"testing"
)

func TestPolicyIsReadBackWithEveryDefaultFilledIn(t *testing.T) {
	api := newTestAPI(t)
	r := api.must(201, "POST", "/admin/v1/policies", `{"id":"rl","name":"rl","type":"rate-limit","config":{"requests":10,"per":"minute"}}`)
	cfg := r.json()["config"].(map[string]any)
	want := map[string]any{"requests": 10.0, "per": "minute", "burst": 10.0, "by": "consumer", "store": "local", "fallback": "local"}
	for k, v := range want {
		if cfg[k] != v {
			t.Errorf("config.%s = %v; want %v (config %v)", k, cfg[k], v, cfg)
		}
	}
	if got := api.must(200, "GET", "/admin/v1/policies/rl", "").json()["config"]; len(got.(map[string]any)) != len(want) {
		t.Errorf("GET config %v; want the same defaults as the creation answered", got)
	}
}

func TestRoutesAndServicesListingPoliciesThatCannotApplyReturn422(t *testing.T) {
	api := newTestAPI(t)
	svc := api.service("s")
	api.must(201, "POST", "/admin/v1/policies", `{"id":"out","name":"out","type":"egress","global":true,"config":{"allow":[{"host":"example.com"}]}}`)
	before := api.snapshot()
	for _, tc := range []struct {
		desc, method, path, body, field, detail string
	}{
		{"route listing a missing policy", "POST", "/admin/v1/routes",
			`{"paths":["/a"],"service_id":"` + svc + `","policies":["nope"]}`, "policies[0]", "does not exist"},
		{"service listing a missing policy", "PATCH", "/admin/v1/services/" + svc, `{"policies":["nope"]}`, "policies[0]", "does not exist"},
		{"route listing a global-only policy", "POST", "/admin/v1/routes",
			`{"paths":["/a"],"service_id":"` + svc + `","policies":["out"]}`, "policies[0]", "applies only globally"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			var headers []header
			if tc.method == "PATCH" {
				headers = append(headers, h("Content-Type", "application/merge-patch+json"))
			}
			p := assertProblem(t, api.do(tc.method, tc.path, tc.body, headers...), 422)
			errs, _ := p["errors"].([]any)
			if len(errs) != 1 || errs[0].(map[string]any)["field"] != tc.field ||
				!strings.Contains(errs[0].(map[string]any)["message"].(string), tc.detail) {
				t.Fatalf("errors %v; want one on %s saying %q", p["errors"], tc.field, tc.detail)
			}
		})
	}
	api.unchanged(before)
}

func TestDeletingAPolicyARouteUsesReturns409(t *testing.T) {
	api := newTestAPI(t)
	svc := api.service("s")
	api.must(201, "POST", "/admin/v1/policies", `{"id":"down","name":"down","type":"maintenance","config":{}}`)
	api.must(201, "POST", "/admin/v1/routes", `{"id":"r","paths":["/a"],"service_id":"`+svc+`","policies":["down"]}`)
	before := api.snapshot()
	p := assertProblem(t, api.do("DELETE", "/admin/v1/policies/down", ""), 409)
	if !strings.Contains(p["detail"].(string), "r") {
		t.Fatalf("detail %q does not name the route using the policy", p["detail"])
	}
	api.unchanged(before)
	// Once the route lets go of it, it can go.
	api.must(200, "PATCH", "/admin/v1/routes/r", `{"policies":[]}`, h("Content-Type", "application/merge-patch+json"))
	api.must(204, "DELETE", "/admin/v1/policies/down", "")
}
