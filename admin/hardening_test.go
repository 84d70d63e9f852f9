package admin

import (
	"fmt"
	"testing"
)

// Requests an outside attack found the API taking wrongly: each is refused
// before anything changes.

func TestBodyThatIsNotAJSONObjectReturns400OnEveryEndpoint(t *testing.T) {
	api := newTestAPI(t)
	api.must(201, "POST", "/admin/v1/consumers", `{"id":"c1","name":"c1"}`)
	api.must(201, "POST", "/admin/v1/services", `{"id":"s1","name":"s1","url":"http://a:1"}`)
	targets := []struct{ method, path string }{
		{"POST", "/admin/v1/services"},
		{"POST", "/admin/v1/routes"},
		{"POST", "/admin/v1/consumers"},
		{"POST", "/admin/v1/policies"},
		{"POST", "/admin/v1/tokens"},
		{"POST", "/admin/v1/consumers/c1/credentials"},
		{"POST", "/admin/v1/deployments"},
		{"PUT", "/admin/v1/services/s1"},
		{"PATCH", "/admin/v1/services/s1"},
		{"PUT", "/admin/v1/consumers/c1"},
		{"PATCH", "/admin/v1/consumers/c1"},
	}
	for _, tg := range targets {
		for _, body := range []string{`null`, ` null `, `[]`, `[{}]`, `"x"`, `0`, `true`} {
			t.Run(tg.method+" "+tg.path+" "+body, func(t *testing.T) {
				before := api.snapshot()
				r := api.do(tg.method, tg.path, body)
				assertProblem(t, r, 400)
				if got := r.problemFields(); fmt.Sprint(got) != "[body]" {
					t.Fatalf("got fields %v; want [body]; body %s", got, r.body)
				}
				api.unchanged(before)
			})
		}
	}
}

func TestUnknownQueryParameterReturns400OnEveryEndpointAndChangesNothing(t *testing.T) {
	api := newTestAPI(t)
	api.must(201, "POST", "/admin/v1/consumers", `{"id":"c1","name":"c1"}`)
	targets := []struct{ method, path, body string }{
		{"POST", "/admin/v1/consumers", `{"name":"dry"}`},
		{"GET", "/admin/v1/consumers", ""},
		{"HEAD", "/admin/v1/consumers", ""},
		{"GET", "/admin/v1/consumers/c1", ""},
		{"HEAD", "/admin/v1/consumers/c1", ""},
		{"PUT", "/admin/v1/consumers/c1", `{"name":"renamed"}`},
		{"PATCH", "/admin/v1/consumers/c1", `{"name":"renamed"}`},
		{"DELETE", "/admin/v1/consumers/c1", ""},
		{"POST", "/admin/v1/consumers/c1/credentials", `{"type":"key-auth"}`},
		{"POST", "/admin/v1/deployments", `{}`},
		{"GET", "/admin/v1/openapi.json", ""},
	}
	for _, tg := range targets {
		t.Run(tg.method+" "+tg.path, func(t *testing.T) {
			before := api.snapshot()
			r := api.do(tg.method, tg.path+"?dry_run=true", tg.body)
			if tg.method == "HEAD" {
				if r.status != 400 || len(r.body) != 0 {
					t.Fatalf("got %d with %d body bytes; want 400 without a body", r.status, len(r.body))
				}
				return
			}
			assertProblem(t, r, 400)
			if got := r.problemFields(); fmt.Sprint(got) != "[query.dry_run]" {
				t.Fatalf("got fields %v; want [query.dry_run]; body %s", got, r.body)
			}
			api.unchanged(before)
		})
	}
}
