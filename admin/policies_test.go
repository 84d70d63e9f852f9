package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
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

// TestHS256SecretsOfAuthPoliciesAreWriteOnly proves that no read shows an
// auth policy's HS256 secret (not the write's own answer, GET, a list or
// a revision), and that an update omitting it keeps the stored one.
func TestHS256SecretsOfAuthPoliciesAreWriteOnly(t *testing.T) {
	api := newTestAPI(t)
	const secret1 = "first-secret-of-32-bytes-or-more"
	const secret2 = "second-secret-of-32-bytes-or-mor"
	stored := func() string {
		t.Helper()
		rec, err := api.store.Get(context.Background(), gatehouse.KindPolicy, "jwt")
		if err != nil {
			t.Fatal(err)
		}
		return string(rec.Body)
	}
	shown := func(step string, r *response) {
		t.Helper()
		for _, s := range []string{secret1, secret2} {
			if strings.Contains(string(r.body), s) {
				t.Fatalf("%s: the secret is in the answer: %s", step, r.body)
			}
		}
	}
	keys := func(r *response) []any {
		return r.json()["config"].(map[string]any)["jwt"].(map[string]any)["keys"].([]any)
	}
	shown("POST", api.must(201, "POST", "/admin/v1/policies",
		`{"id":"jwt","name":"jwt","type":"auth","config":{"jwt":{"keys":[{"kid":"a","alg":"HS256","secret":"`+secret1+`"}]}}}`))
	get := api.must(200, "GET", "/admin/v1/policies/jwt", "")
	shown("GET", get)
	if k := keys(get); len(k) != 1 || k[0].(map[string]any)["kid"] != "a" {
		t.Fatalf("GET keys %v; want the key, without its secret", k)
	}
	shown("list", api.must(200, "GET", "/admin/v1/policies", ""))

	// PATCH and PUT of what a client read back keep the secret.
	shown("PATCH", api.must(200, "PATCH", "/admin/v1/policies/jwt", `{"config":{"realm":"shop"}}`))
	shown("PUT", api.must(200, "PUT", "/admin/v1/policies/jwt", string(get.body)))
	if !strings.Contains(stored(), secret1) {
		t.Fatalf("stored %s; want the secret kept", stored())
	}
	// A key the stored policy has no secret for needs one: 400.
	p := assertProblem(t, api.do("PUT", "/admin/v1/policies/jwt",
		`{"name":"jwt","type":"auth","config":{"jwt":{"keys":[{"kid":"a","alg":"HS256"},{"kid":"b","alg":"HS256"}]}}}`), 400)
	if fields := fmt.Sprint(p["errors"]); !strings.Contains(fields, "config.jwt.keys[1].secret") {
		t.Fatalf("errors %s; want config.jwt.keys[1].secret", fields)
	}
	// A secret given replaces the stored one.
	shown("PUT with a new secret", api.must(200, "PUT", "/admin/v1/policies/jwt",
		`{"name":"jwt","type":"auth","config":{"jwt":{"keys":[{"kid":"a","alg":"HS256","secret":"`+secret2+`"}]}}}`))
	if s := stored(); !strings.Contains(s, secret2) || strings.Contains(s, secret1) {
		t.Fatalf("stored %s; want only the new secret", s)
	}

	api.deployAndWait(`{}`)
	shown("revision", api.must(200, "GET", "/admin/v1/revisions/1", ""))
	rev, _ := api.applier.last()
	if rev == nil || len(rev.Policies) != 1 || !strings.Contains(string(rev.Policies[0].Config), secret2) {
		t.Fatalf("applied %+v; want the policy with its secret (the data plane verifies with it)", rev)
	}
}

// TestUpdateRemovingAKidlessHS256KeyWithoutSecretsIs422AndChangesNothing:
// of two HS256 keys without kid, which one a PUT without secrets keeps
// cannot be told (keeping the wrong secret would leave the removed key
// working): 422 naming the key and why, and the policy stays as it was.
// A PATCH of another member keeps both keys' own secrets.
func TestUpdateRemovingAKidlessHS256KeyWithoutSecretsIs422AndChangesNothing(t *testing.T) {
	api := newTestAPI(t)
	const secret1 = "first-secret-of-32-bytes-or-more"
	const secret2 = "second-secret-of-32-bytes-or-mor"
	api.must(201, "POST", "/admin/v1/policies", `{"id":"jwt","name":"jwt","type":"auth","config":{"jwt":{"keys":[`+
		`{"alg":"HS256","secret":"`+secret1+`"},{"alg":"HS256","secret":"`+secret2+`"}]}}}`)
	before := api.snapshot()
	p := assertProblem(t, api.do("PUT", "/admin/v1/policies/jwt",
		`{"name":"jwt","type":"auth","config":{"jwt":{"keys":[{"alg":"HS256"}]}}}`), 422)
	if got := fmt.Sprint(p["errors"]); !strings.Contains(got, "config.jwt.keys[0].secret") || !strings.Contains(got, "give each HS256 key a distinct kid, or send its secret") {
		t.Fatalf("errors %s; want config.jwt.keys[0].secret saying to give each key a distinct kid", got)
	}
	api.unchanged(before)

	api.must(200, "PATCH", "/admin/v1/policies/jwt", `{"config":{"realm":"shop"}}`, h("Content-Type", "application/merge-patch+json"))
	rec, err := api.store.Get(context.Background(), gatehouse.KindPolicy, "jwt")
	if err != nil {
		t.Fatal(err)
	}
	if body := string(rec.Body); !strings.Contains(body, secret1) || strings.Index(body, secret2) < strings.Index(body, secret1) {
		t.Fatalf("stored %s; want both secrets kept, in order", body)
	}
}

// TestConfigSyncRemovingAKidlessHS256KeyFromItsDumpIs422: the review's
// case through a configuration document. A dump hides both kid-less
// secrets; applying it unchanged keeps both, but removing keys[0] from it
// cannot say which secret the remaining key keeps: 422 at its pointer,
// nothing written.
func TestConfigSyncRemovingAKidlessHS256KeyFromItsDumpIs422(t *testing.T) {
	a := newTestAPI(t)
	const secret1 = "first-secret-of-32-bytes-or-more"
	const secret2 = "second-secret-of-32-bytes-or-mor"
	a.must(200, "PUT", configPath, `{"format_version": "1", "policies": [{"id": "jwt", "name": "jwt", "type": "auth",
	  "config": {"jwt": {"keys": [{"alg": "HS256", "secret": "`+secret1+`"}, {"alg": "HS256", "secret": "`+secret2+`"}]}}}]}`)
	dump := a.must(200, "GET", configPath, "")
	if cs := configChanges(t, a.must(200, "PUT", configPath, string(dump.body))); len(cs.Changes) != 0 {
		t.Fatalf("applying the dump changed %v; want nothing", actions(cs))
	}
	doc := dump.json()
	cfg := doc["policies"].([]any)[0].(map[string]any)["config"].(map[string]any)["jwt"].(map[string]any)
	cfg["keys"] = cfg["keys"].([]any)[1:]
	body, _ := json.Marshal(doc)
	before := a.snapshot()
	r := a.do("PUT", configPath, string(body))
	assertProblem(t, r, 422)
	if got := fmt.Sprint(r.problemFields()); got != "[/policies/0/config/jwt/keys/0/secret]" || !strings.Contains(string(r.body), "distinct kid") {
		t.Fatalf("got fields %s, body %s; want keys/0/secret saying to give each HS256 key a distinct kid", got, r.body)
	}
	a.unchanged(before)
}
