package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/console"
	"github.com/gatehouse/gatehouse/internal/serve"
)

// Each test here proves one row of ../shared/CONTRACT.md, admin side, over a
// real socket.

func TestCreateReturns201WithLocationETagAndResource(t *testing.T) {
	api := newTestAPI(t)
	r := api.must(201, "POST", "/admin/v1/services", `{"id":"users","name":"users","url":"https://users.internal:8443/v1"}`)
	if got := r.header.Get("Location"); got != "/admin/v1/services/users" {
		t.Fatalf("got Location %q; want /admin/v1/services/users", got)
	}
	body := r.json()
	if want := fmt.Sprintf(`"%v"`, body["version"]); r.header.Get("ETag") != want {
		t.Fatalf("got ETag %q; want %s", r.header.Get("ETag"), want)
	}
	for field, want := range map[string]any{"id": "users", "name": "users", "url": "https://users.internal:8443/v1",
		"connect_timeout_ms": 5000.0, "read_timeout_ms": 60000.0, "retries": 1.0} {
		if body[field] != want {
			t.Errorf("got %s %v; want %v", field, body[field], want)
		}
	}
	if body["created_at"] == nil || body["created_at"] != body["updated_at"] {
		t.Errorf("got created_at %v updated_at %v; want equal and set", body["created_at"], body["updated_at"])
	}
	got := api.must(200, "GET", "/admin/v1/services/users", "")
	if string(got.body) != string(r.body) {
		t.Fatalf("GET after create:\ngot  %s\nwant %s", got.body, r.body)
	}
}

func TestEveryKindCanBeCreatedReadAndListed(t *testing.T) {
	api := newTestAPI(t)
	svc := api.service("billing")
	cons := api.must(201, "POST", "/admin/v1/consumers", `{"name":"acme","groups":["gold"]}`).json()["id"].(string)
	tests := []struct {
		desc, collection, body string
	}{
		{"route", "/admin/v1/routes", `{"name":"r","paths":["/billing/*"],"methods":["get","POST"],"service_id":"` + svc + `"}`},
		{"policy", "/admin/v1/policies", `{"id":"ten-per-second","name":"tps","type":"rate-limit","config":{"requests":10,"per":"second"}}`},
		{"acl policy", "/admin/v1/policies", `{"name":"gold-only","type":"acl","config":{"allow":["gold"]}}`},
		{"maintenance policy", "/admin/v1/policies", `{"name":"down","type":"maintenance","config":{"message":"Back soon."}}`},
		{"key credential", "/admin/v1/consumers/" + cons + "/credentials", `{"type":"key-auth"}`},
		{"basic credential", "/admin/v1/consumers/" + cons + "/credentials", `{"type":"basic-auth","username":"acme","password":"s3cret-pass"}`},
		{"token", "/admin/v1/tokens", `{"name":"ci","role":"read-only"}`},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			r := api.must(201, "POST", tc.collection, tc.body)
			loc := r.header.Get("Location")
			if !strings.HasPrefix(loc, tc.collection+"/") {
				t.Fatalf("got Location %q; want under %s", loc, tc.collection)
			}
			api.must(200, "GET", loc, "")
			list := api.must(200, "GET", tc.collection, "").json()
			if len(list["data"].([]any)) == 0 {
				t.Fatalf("list of %s is empty after create", tc.collection)
			}
		})
	}
}

func TestRouteMethodsAndHostsAreNormalized(t *testing.T) {
	api := newTestAPI(t)
	svc := api.service("s")
	r := api.must(201, "POST", "/admin/v1/routes", `{"hosts":["API.Example.com"],"methods":["get"],"service_id":"`+svc+`"}`).json()
	if fmt.Sprint(r["methods"], r["hosts"]) != "[GET] [api.example.com]" {
		t.Fatalf("got methods %v hosts %v; want [GET] [api.example.com]", r["methods"], r["hosts"])
	}
}

func TestSecretsAreShownOnlyAtCreation(t *testing.T) {
	api := newTestAPI(t)
	cons := api.must(201, "POST", "/admin/v1/consumers", `{"name":"acme"}`).json()["id"].(string)
	cred := api.must(201, "POST", "/admin/v1/consumers/"+cons+"/credentials", `{"type":"key-auth"}`)
	key, _ := cred.json()["key"].(string)
	if !strings.HasPrefix(key, "ghk_") {
		t.Fatalf("got key %q; want a generated ghk_ key", key)
	}
	again := api.must(200, "GET", cred.header.Get("Location"), "")
	if strings.Contains(string(again.body), key) || again.json()["key"] != nil {
		t.Fatalf("GET shows the key: %s", again.body)
	}
	tok := api.must(201, "POST", "/admin/v1/tokens", `{"role":"admin"}`)
	secret, _ := tok.json()["token"].(string)
	if secret == "" {
		t.Fatalf("token creation shows no token: %s", tok.body)
	}
	if r := api.must(200, "GET", tok.header.Get("Location"), ""); r.json()["token"] != nil {
		t.Fatalf("GET shows the token: %s", r.body)
	}
	if strings.Contains(api.snapshot(), key) || strings.Contains(api.snapshot(), secret) {
		t.Fatal("the store holds a plaintext secret")
	}
	// The new token works.
	api.must(200, "GET", "/admin/v1/services", "", h("Authorization", "Bearer "+secret))
}

func TestPutReplacesWholeResource(t *testing.T) {
	api := newTestAPI(t)
	api.must(201, "POST", "/admin/v1/services", `{"id":"s","name":"s","url":"http://a:1","retries":3}`)
	r := api.must(200, "PUT", "/admin/v1/services/s", `{"name":"s2","url":"http://b:2"}`).json()
	if r["retries"] != 1.0 || r["url"] != "http://b:2" || r["name"] != "s2" {
		t.Fatalf("PUT did not replace the whole resource: %v", r)
	}
}

func TestPutEchoingServerFieldsIsAccepted(t *testing.T) {
	api := newTestAPI(t)
	created := api.must(201, "POST", "/admin/v1/consumers", `{"id":"c","name":"c"}`)
	body := strings.Replace(string(created.body), `"name":"c"`, `"name":"c2"`, 1)
	r := api.must(200, "PUT", "/admin/v1/consumers/c", body).json()
	if r["name"] != "c2" || r["created_at"] != created.json()["created_at"] {
		t.Fatalf("got %v", r)
	}
}

func TestPatchAppliesMergePatch(t *testing.T) {
	api := newTestAPI(t)
	api.must(201, "POST", "/admin/v1/services", `{"id":"s","name":"s","url":"http://a:1","retries":3}`)
	r := api.must(200, "PATCH", "/admin/v1/services/s", `{"retries":null,"read_timeout_ms":5}`).json()
	if r["retries"] != 1.0 || r["read_timeout_ms"] != 5.0 || r["url"] != "http://a:1" {
		t.Fatalf("merge patch gave %v; want retries reset to 1, read_timeout_ms 5, url kept", r)
	}
	// Switching from url to targets needs the null that merge patch uses
	// for removal.
	r = api.must(200, "PATCH", "/admin/v1/services/s", `{"url":null,"targets":[{"url":"http://b:2"}]}`).json()
	if r["url"] != nil || r["targets"].([]any)[0].(map[string]any)["weight"] != 100.0 {
		t.Fatalf("got %v", r)
	}
}

func TestHeadReturnsHeadersWithoutBody(t *testing.T) {
	api := newTestAPI(t)
	api.service("s")
	r := api.must(200, "HEAD", "/admin/v1/services", "")
	if len(r.body) != 0 || r.header.Get("Content-Length") == "0" {
		t.Fatalf("HEAD: body %q, Content-Length %q", r.body, r.header.Get("Content-Length"))
	}
}

func TestIfNoneMatchCurrentETagReturns304(t *testing.T) {
	api := newTestAPI(t)
	tag := api.must(201, "POST", "/admin/v1/services", `{"id":"s","name":"s","url":"http://a:1"}`).header.Get("ETag")
	r := api.must(304, "GET", "/admin/v1/services/s", "", h("If-None-Match", tag))
	if len(r.body) != 0 || r.header.Get("ETag") != tag {
		t.Fatalf("304: body %q ETag %q", r.body, r.header.Get("ETag"))
	}
	api.must(304, "GET", "/admin/v1/services/s", "", h("If-None-Match", `"0", W/`+tag))
	api.must(200, "GET", "/admin/v1/services/s", "", h("If-None-Match", `"999999"`))
}

func TestDeleteReturns204(t *testing.T) {
	api := newTestAPI(t)
	api.service("s")
	id := api.must(200, "GET", "/admin/v1/services?name=s", "").json()["data"].([]any)[0].(map[string]any)["id"].(string)
	r := api.must(204, "DELETE", "/admin/v1/services/"+id, "")
	if len(r.body) != 0 {
		t.Fatalf("204 with body %q", r.body)
	}
}

func TestNeverExistingIDReturns404ForEveryMethod(t *testing.T) {
	api := newTestAPI(t)
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/admin/v1/services/nope", ""},
		{"PUT", "/admin/v1/services/nope", `{"name":"n","url":"http://a:1"}`},
		{"PATCH", "/admin/v1/services/nope", `{"retries":2}`},
		{"DELETE", "/admin/v1/services/nope", ""},
		{"GET", "/admin/v1/consumers/nope/credentials", ""},
		{"GET", "/admin/v1/no-such-collection", ""},
		{"GET", "/admin/v2/services", ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			before := api.snapshot()
			assertProblem(t, api.do(tc.method, tc.path, tc.body), 404)
			api.unchanged(before)
		})
	}
}

func TestPutNeverCreates(t *testing.T) {
	api := newTestAPI(t)
	api.must(404, "PUT", "/admin/v1/services/fresh", `{"name":"fresh","url":"http://a:1"}`)
	api.must(404, "GET", "/admin/v1/services/fresh", "")
}

func TestDeletedIDIsGoneWithinRetentionThenNotFound(t *testing.T) {
	api := newTestAPI(t)
	api.must(201, "POST", "/admin/v1/services", `{"id":"s","name":"s","url":"http://a:1"}`)
	api.must(204, "DELETE", "/admin/v1/services/s", "")
	for _, m := range []string{"GET", "PUT", "PATCH", "DELETE"} {
		body := ""
		if m == "PUT" || m == "PATCH" {
			body = `{"name":"s","url":"http://a:1"}`
		}
		assertProblem(t, api.do(m, "/admin/v1/services/s", body), 410)
	}
	api.clock.Advance(testRetention + time.Second)
	assertProblem(t, api.do("GET", "/admin/v1/services/s", ""), 404)
}

func TestUnknownMethodOnKnownPathReturns405WithAllow(t *testing.T) {
	api := newTestAPI(t)
	tests := []struct{ method, path, allow string }{
		{"PUT", "/admin/v1/services", "GET, HEAD, POST, OPTIONS"},
		{"POST", "/admin/v1/services/x", "GET, HEAD, PUT, PATCH, DELETE, OPTIONS"},
		{"PATCH", "/admin/v1/tokens/x", "GET, HEAD, DELETE, OPTIONS"},
		{"PUT", "/admin/v1/consumers/c/credentials/x", "GET, HEAD, DELETE, OPTIONS"},
		{"DELETE", "/admin/v1/openapi.json", "GET, HEAD, OPTIONS"},
		{"TRACE", "/admin/v1/services", "GET, HEAD, POST, OPTIONS"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := api.do(tc.method, tc.path, "")
			assertProblem(t, r, 405)
			if got := r.header.Get("Allow"); got != tc.allow {
				t.Fatalf("got Allow %q; want %q", got, tc.allow)
			}
		})
	}
}

func TestOptionsListsAllowedMethods(t *testing.T) {
	api := newTestAPI(t)
	r := api.must(204, "OPTIONS", "/admin/v1/routes/x", "")
	if got := r.header.Get("Allow"); got != "GET, HEAD, PUT, PATCH, DELETE, OPTIONS" {
		t.Fatalf("got Allow %q", got)
	}
}

// TestOptionsWorksWhereverGetDoesOutsideTheAPI: the probes, /metrics and
// the console answer OPTIONS as the API does, 204 with Allow, without
// credentials as their GET; a query is refused as on GET; a data node's
// listener, probes only, answers alike.
func TestOptionsWorksWhereverGetDoesOutsideTheAPI(t *testing.T) {
	for _, tc := range []struct {
		desc, path string
		probesOnly bool
		status     int
	}{
		{desc: "liveness probe", path: "/healthz", status: 204},
		{desc: "readiness probe before any revision", path: "/readyz", status: 204},
		{desc: "metrics", path: "/metrics", status: 204},
		{desc: "console", path: "/console/", status: 204},
		{desc: "console without its slash", path: "/console", status: 204},
		{desc: "probe on a data node", path: "/healthz", probesOnly: true, status: 204},
		{desc: "metrics on a data node", path: "/metrics", probesOnly: true, status: 204},
		{desc: "probe with a query", path: "/healthz?verbose=1", status: 400},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			api := newTestAPI(t, withAdminOptions(func(o *Options) { o.Console, o.ProbesOnly = console.New(), tc.probesOnly }))
			r := api.do("OPTIONS", tc.path, "", h("Authorization", ""))
			if r.status != tc.status {
				t.Fatalf("OPTIONS %s: got %d; want %d; body %s", tc.path, r.status, tc.status, r.body)
			}
			if tc.status == 204 && r.header.Get("Allow") != "GET, HEAD, OPTIONS" {
				t.Errorf("OPTIONS %s: Allow %q; want GET, HEAD, OPTIONS", tc.path, r.header.Get("Allow"))
			}
		})
	}
}

func TestAcceptExcludingJSONReturns406(t *testing.T) {
	api := newTestAPI(t)
	for _, accept := range []string{"application/xml", "text/html", "application/json;q=0"} {
		assertProblem(t, api.do("GET", "/admin/v1/services", "", h("Accept", accept)), 406)
	}
	for _, accept := range []string{"application/json", "*/*", "application/*;q=0.2, text/html", "application/problem+json"} {
		api.must(200, "GET", "/admin/v1/services", "", h("Accept", accept))
	}
}

func TestMissingOrBadCredentialsReturn401WithWWWAuthenticate(t *testing.T) {
	api := newTestAPI(t)
	expiring := api.must(201, "POST", "/admin/v1/tokens", `{"expires_at":"2026-01-02T04:00:00Z"}`)
	expired := expiring.json()["token"].(string)
	revoked := api.must(201, "POST", "/admin/v1/tokens", `{}`)
	api.must(204, "DELETE", revoked.header.Get("Location"), "")
	api.clock.Advance(2 * time.Hour)
	for _, tc := range []struct{ desc, auth string }{
		{"none", ""},
		{"wrong scheme", "Basic YWRtaW46YWRtaW4="},
		{"empty bearer", "Bearer "},
		{"unknown token", "Bearer gha_not-a-real-token"},
		{"revoked token", "Bearer " + revoked.json()["token"].(string)},
		{"expired token", "Bearer " + expired},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			before := api.snapshot()
			r := api.do("POST", "/admin/v1/services", `{"name":"x","url":"http://a:1"}`, h("Authorization", tc.auth))
			assertProblem(t, r, 401)
			if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer ") {
				t.Fatalf("got WWW-Authenticate %q; want a Bearer challenge", r.header.Get("WWW-Authenticate"))
			}
			api.unchanged(before)
		})
	}
}

func TestReadOnlyTokenWritingReturns403(t *testing.T) {
	api := newTestAPI(t)
	api.service("s")
	ro := "Bearer " + api.makeToken(gatehouse.RoleReadOnly, "")
	api.must(200, "GET", "/admin/v1/services", "", h("Authorization", ro))
	before := api.snapshot()
	for _, m := range []string{"POST", "DELETE"} {
		path := "/admin/v1/services"
		if m == "DELETE" {
			path += "/x"
		}
		assertProblem(t, api.do(m, path, `{"name":"x","url":"http://a:1"}`, h("Authorization", ro)), 403)
	}
	api.unchanged(before)
}

func TestScopedTokenReachesOnlyItsConsumer(t *testing.T) {
	api := newTestAPI(t)
	api.must(201, "POST", "/admin/v1/consumers", `{"id":"mine","name":"mine"}`)
	api.must(201, "POST", "/admin/v1/consumers", `{"id":"theirs","name":"theirs"}`)
	scoped := "Bearer " + api.makeToken(gatehouse.RoleAdmin, "mine")
	api.must(200, "GET", "/admin/v1/consumers/mine", "", h("Authorization", scoped))
	api.must(201, "POST", "/admin/v1/consumers/mine/credentials", `{"type":"key-auth"}`, h("Authorization", scoped))
	before := api.snapshot()
	for _, tc := range []struct{ method, path string }{
		{"GET", "/admin/v1/consumers/theirs"},
		{"POST", "/admin/v1/consumers/theirs/credentials"},
		{"GET", "/admin/v1/consumers"},
		{"GET", "/admin/v1/services"},
		{"POST", "/admin/v1/tokens"},
	} {
		body := ""
		if tc.method == "POST" {
			body = `{"type":"key-auth"}`
		}
		assertProblem(t, api.do(tc.method, tc.path, body, h("Authorization", scoped)), 403)
	}
	api.unchanged(before)
}

func TestCreateWithExistingIDReturns409(t *testing.T) {
	api := newTestAPI(t)
	api.must(201, "POST", "/admin/v1/policies", `{"id":"p1","name":"one","type":"rate-limit","config":{"requests":5,"per":"minute"}}`)
	before := api.snapshot()
	assertProblem(t, api.do("POST", "/admin/v1/policies", `{"id":"p1","name":"two","type":"rate-limit","config":{"requests":5,"per":"minute"}}`), 409)
	assertProblem(t, api.do("POST", "/admin/v1/policies", `{"id":"p2","name":"one","type":"rate-limit","config":{"requests":5,"per":"minute"}}`), 409)
	api.unchanged(before)
}

func TestDeleteServiceThatRoutesUseReturns409(t *testing.T) {
	api := newTestAPI(t)
	svc := api.service("s")
	api.must(201, "POST", "/admin/v1/routes", `{"id":"r","paths":["/a"],"service_id":"`+svc+`"}`)
	before := api.snapshot()
	p := assertProblem(t, api.do("DELETE", "/admin/v1/services/"+svc, ""), 409)
	if !strings.Contains(p["detail"].(string), "r") {
		t.Fatalf("detail does not name the route: %v", p["detail"])
	}
	api.unchanged(before)
	api.must(204, "DELETE", "/admin/v1/routes/r", "")
	api.must(204, "DELETE", "/admin/v1/services/"+svc, "")
}

func TestRouteDuplicatingAnotherMatchReturns409(t *testing.T) {
	api := newTestAPI(t)
	svc := api.service("s")
	api.must(201, "POST", "/admin/v1/routes", `{"hosts":["a.example"],"paths":["/users/{id}"],"methods":["GET"],"service_id":"`+svc+`"}`)
	before := api.snapshot()
	// Same match, other parameter name and case: still a duplicate.
	assertProblem(t, api.do("POST", "/admin/v1/routes", `{"hosts":["A.example"],"paths":["/x","/users/{uid}"],"methods":["get","POST"],"service_id":"`+svc+`"}`), 409)
	api.unchanged(before)
	// Another priority or another method is not a duplicate.
	api.must(201, "POST", "/admin/v1/routes", `{"hosts":["a.example"],"paths":["/users/{id}"],"methods":["GET"],"priority":1,"service_id":"`+svc+`"}`)
	api.must(201, "POST", "/admin/v1/routes", `{"hosts":["a.example"],"paths":["/users/{id}"],"methods":["PUT"],"service_id":"`+svc+`"}`)
}

func TestStaleIfMatchReturns412AndChangesNothing(t *testing.T) {
	api := newTestAPI(t)
	first := api.must(201, "POST", "/admin/v1/services", `{"id":"s","name":"s","url":"http://a:1"}`).header.Get("ETag")
	second := api.must(200, "PATCH", "/admin/v1/services/s", `{"retries":2}`, h("If-Match", first)).header.Get("ETag")
	before := api.snapshot()
	for _, tc := range []struct{ method, body string }{
		{"PATCH", `{"retries":5}`},
		{"PUT", `{"name":"s","url":"http://z:1"}`},
		{"DELETE", ""},
	} {
		assertProblem(t, api.do(tc.method, "/admin/v1/services/s", tc.body, h("If-Match", first)), 412)
		// A weak tag never matches If-Match, even the current one.
		assertProblem(t, api.do(tc.method, "/admin/v1/services/s", tc.body, h("If-Match", "W/"+second)), 412)
	}
	past := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Format(http.TimeFormat)
	assertProblem(t, api.do("PATCH", "/admin/v1/services/s", `{"retries":5}`, h("If-Unmodified-Since", past)), 412)
	api.unchanged(before)
	api.must(200, "PATCH", "/admin/v1/services/s", `{"retries":5}`, h("If-Match", second))
}

func TestConcurrentConditionalUpdatesExactlyOneWins(t *testing.T) {
	api := newTestAPI(t)
	tag := api.must(201, "POST", "/admin/v1/services", `{"id":"s","name":"s","url":"http://a:1"}`).header.Get("ETag")
	const writers = 8
	codes := make(chan int, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- api.do("PATCH", "/admin/v1/services/s", fmt.Sprintf(`{"retries":%d}`, i+2), h("If-Match", tag)).status
		}()
	}
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	if count[200] != 1 || count[412] != writers-1 {
		t.Fatalf("got %v; want one 200 and %d 412", count, writers-1)
	}
}

func TestBodyOverLimitReturns413(t *testing.T) {
	api := newTestAPI(t)
	big := `{"name":"` + strings.Repeat("a", 1<<20) + `"}`
	before := api.snapshot()
	assertProblem(t, api.do("POST", "/admin/v1/consumers", big), 413)
	// Without Content-Length, the limit is found while reading.
	req, _ := http.NewRequest("POST", api.base+"/admin/v1/consumers", struct{ *strings.Reader }{strings.NewReader(big)})
	req.Header.Set("Authorization", "Bearer "+api.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := api.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 || resp.ContentLength == 0 {
		t.Fatalf("chunked: got %d; want 413 with a body", resp.StatusCode)
	}
	api.unchanged(before)
}

func TestWrongContentTypeReturns415WithAcceptPostOrPatch(t *testing.T) {
	api := newTestAPI(t)
	api.service("s")
	tests := []struct{ method, path, ct, header, want string }{
		{"POST", "/admin/v1/consumers", "text/plain", "Accept-Post", "application/json"},
		{"POST", "/admin/v1/consumers", "application/json; charset=latin1", "Accept-Post", "application/json"},
		{"POST", "/admin/v1/consumers", "", "Accept-Post", "application/json"},
		{"PATCH", "/admin/v1/consumers/c", "application/json", "Accept-Patch", "application/merge-patch+json"},
		{"PUT", "/admin/v1/consumers/c", "application/xml", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.ct, func(t *testing.T) {
			before := api.snapshot()
			r := api.do(tc.method, tc.path, `{"name":"c"}`, h("Content-Type", tc.ct))
			assertProblem(t, r, 415)
			if tc.header != "" && r.header.Get(tc.header) != tc.want {
				t.Fatalf("got %s %q; want %q", tc.header, r.header.Get(tc.header), tc.want)
			}
			api.unchanged(before)
		})
	}
}

func TestSemanticallyWrongReturns422NamingFields(t *testing.T) {
	api := newTestAPI(t)
	svc := api.service("s")
	tests := []struct {
		desc, path, body string
		fields           []string
	}{
		{"route naming a missing service", "/admin/v1/routes", `{"paths":["/a"],"service_id":"missing"}`, []string{"service_id"}},
		{"bad upstream scheme", "/admin/v1/services", `{"name":"x","url":"ftp://files:21"}`, []string{"url"}},
		{"port out of range", "/admin/v1/services", `{"name":"x","url":"http://a:70000"}`, []string{"url"}},
		{"target port zero", "/admin/v1/services", `{"name":"x","targets":[{"url":"http://a:1"},{"url":"http://b:0"}]}`, []string{"targets[1].url"}},
		{"path pattern that does not compile", "/admin/v1/routes", `{"paths":["/a/{id","/b/*/c"],"service_id":"` + svc + `"}`, []string{"paths[0]", "paths[1]"}},
		{"token for a missing consumer", "/admin/v1/tokens", `{"consumer_id":"ghost"}`, []string{"consumer_id"}},
		{"gRPC health check of an HTTP/1.1 service", "/admin/v1/services", `{"name":"x","url":"http://a:1","health_check":{"type":"grpc"}}`, []string{"health_check.type"}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			before := api.snapshot()
			r := api.do("POST", tc.path, tc.body)
			assertProblem(t, r, 422)
			if got := r.problemFields(); fmt.Sprint(got) != fmt.Sprint(tc.fields) {
				t.Fatalf("got fields %v; want %v", got, tc.fields)
			}
			api.unchanged(before)
		})
	}
}

func TestHeadersOverLimitReturn431(t *testing.T) {
	api := newTestAPI(t, withServeOptions(serve.Options{MaxHeaderBytes: 8 << 10}))
	// Just over the limit: found by the handler chain.
	assertProblem(t, api.do("GET", "/admin/v1/services", "", h("X-Big", strings.Repeat("a", 9<<10))), 431)
	// Far over it: net/http stops reading, and the problem still comes.
	c := api.dial()
	c.send("GET /admin/v1/services HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 64<<10) + "\r\n\r\n")
	assertProblem(t, c.readResponse("GET"), 431)
}

// failingStore fails the way a bug would: with an error no one classified.
type failingStore struct {
	gatehouse.Store
	panic bool
}

func (s failingStore) List(ctx context.Context, k gatehouse.Kind, o gatehouse.ListOptions) (*gatehouse.Page, error) {
	if s.panic {
		panic("store exploded")
	}
	return nil, errors.New(`SQL logic error: no such table: records (SELECT secret FROM records)`)
}

func TestInternalFailureReturns500WithRequestIDAndNoInternals(t *testing.T) {
	for _, panics := range []bool{false, true} {
		t.Run(fmt.Sprintf("panic=%v", panics), func(t *testing.T) {
			api := newTestAPI(t, withStore(func(s gatehouse.Store) gatehouse.Store { return failingStore{s, panics} }))
			r := api.do("GET", "/admin/v1/services", "", h("X-Request-Id", "trace-me-123"))
			p := assertProblem(t, r, 500)
			if p["request_id"] != "trace-me-123" {
				t.Fatalf("got request_id %v; want the client's trace-me-123", p["request_id"])
			}
			for _, leak := range []string{"SQL", "secret", "records", "exploded", "goroutine", ".go:"} {
				if strings.Contains(string(r.body), leak) {
					t.Fatalf("500 body leaks %q: %s", leak, r.body)
				}
			}
			// The server survives.
			api.must(404, "GET", "/admin/v1/services/x", "")
		})
	}
}

func TestUnrecognisedMethodReturns501(t *testing.T) {
	api := newTestAPI(t)
	before := api.snapshot()
	assertProblem(t, api.do("BREW", "/admin/v1/services", `{"name":"coffee","url":"http://pot:418"}`), 501)
	c := api.dial()
	c.send("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
	assertProblem(t, c.readResponse("CONNECT"), 501)
	api.unchanged(before)
}

func TestStoreUnreachableReturns503WithRetryAfter(t *testing.T) {
	api := newTestAPI(t)
	api.db.Close()
	r := api.do("GET", "/admin/v1/services", "")
	assertProblem(t, r, 503)
	if r.header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
}

func TestDrainingServerFinishesInFlightAndRefusesNewWith503(t *testing.T) {
	api := newTestAPI(t)
	body := `{"id":"late","name":"late"}`
	// An in-flight create: headers sent, body still coming.
	c := api.dial()
	c.send("POST /admin/v1/consumers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + api.token +
		"\r\nContent-Type: application/json\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n" + body[:5])
	waitFor(t, func() bool { return api.srv.InFlight() == 1 })
	done := make(chan error)
	go func() { done <- api.srv.Shutdown(context.Background()) }()
	waitFor(t, api.srv.Draining)

	r := api.do("GET", "/admin/v1/consumers", "")
	assertProblem(t, r, 503)
	if r.header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	c.send(body[5:])
	if got := c.readResponse("POST"); got.status != 201 {
		t.Fatalf("in-flight request: got %d; want 201; %s", got.status, got.body)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// waitFor polls cond; it is how a test waits for another goroutine to
// reach a state, never a measure of speed.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestConflictOnASecretRevealsNeitherItsHashNorItsOwner(t *testing.T) {
	api := newTestAPI(t)
	api.must(201, "POST", "/admin/v1/consumers", `{"id":"alice","name":"alice"}`)
	api.must(201, "POST", "/admin/v1/consumers", `{"id":"bob","name":"bob"}`)
	api.must(201, "POST", "/admin/v1/consumers/bob/credentials", `{"id":"bobkey","type":"key-auth","key":"bobs-secret-api-key"}`)
	api.must(201, "POST", "/admin/v1/consumers/bob/credentials", `{"id":"bobbasic","type":"basic-auth","username":"bobuser","password":"long-enough"}`)
	alice := "Bearer " + api.makeToken(gatehouse.RoleAdmin, "alice")
	for _, tc := range []struct{ body, field string }{
		{`{"type":"key-auth","key":"bobs-secret-api-key"}`, "key"},
		{`{"type":"basic-auth","username":"bobuser","password":"long-enough"}`, "username"},
	} {
		r := api.do("POST", "/admin/v1/consumers/alice/credentials", tc.body, h("Authorization", alice))
		assertProblem(t, r, 409)
		if got := r.problemFields(); fmt.Sprint(got) != "["+tc.field+"]" {
			t.Fatalf("got fields %v; want [%s]", got, tc.field)
		}
		for _, leak := range []string{"bob", gatehouse.HashToken("bobs-secret-api-key")[:16], "credentials/"} {
			if strings.Contains(strings.ReplaceAll(string(r.body), "bobuser", ""), leak) {
				t.Fatalf("409 body reveals %q: %s", leak, r.body)
			}
		}
	}
}
