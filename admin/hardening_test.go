package admin

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/serve"
	"github.com/gatehouse/gatehouse/internal/sqlitetest"
	"github.com/gatehouse/gatehouse/internal/wiretest"
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
	// A collection that does not exist answers 404 whatever it is asked
	// (RFC 9110 §13.2.1 ignores preconditions then).
	for _, method := range []string{"GET", "POST"} {
		assertProblem(t, api.do(method, "/admin/v1/consumers/none/credentials", `{"type":"key-auth"}`, h("If-Match", `"1"`)), 404)
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
		{"OPTIONS", "/admin/v1/consumers", ""},
		{"OPTIONS", "/admin/v1/consumers/c1", ""},
		{"OPTIONS", "/admin/v1/openapi.json", ""},
		// Outside the API: the probes and /metrics take none either.
		{"GET", "/healthz", ""},
		{"HEAD", "/healthz", ""},
		{"GET", "/readyz", ""},
		{"GET", "/metrics", ""},
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

// TestPlainWritesUnderContentionAllSucceed sends 30 PUTs and PATCHes
// without a precondition at once on one resource: every one is applied,
// none gets 412, which only a failed precondition earns. With two servers
// on one store (two control nodes) the writers of one server cannot queue
// behind the other's and must win by retrying.
func TestPlainWritesUnderContentionAllSucceed(t *testing.T) {
	for _, servers := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d servers", servers), func(t *testing.T) {
			api := newTestAPI(t)
			bases := []string{api.base}
			if servers == 2 {
				_, addr := wiretest.Serve(t, recordStatuses(New(api.store, Options{Now: api.clock.Now})), serve.Options{})
				bases = append(bases, "http://"+addr)
			}
			send := func(i int, method, path, body string) *response {
				other := *api
				other.base = bases[i%len(bases)]
				return other.do(method, path, body)
			}

			t.Run("PATCHes of different fields all land", func(t *testing.T) {
				api.must(201, "POST", "/admin/v1/services", `{"id":"s","name":"s","url":"http://a:1","health_check":{"path":"/"}}`)
				patches := []string{
					`{"connect_timeout_ms":1234}`, `{"read_timeout_ms":4321}`, `{"retries":7}`,
					`{"health_check":{"path":"/ready"}}`, `{"health_check":{"interval_ms":20000}}`,
					`{"health_check":{"timeout_ms":3000}}`, `{"health_check":{"healthy_threshold":5}}`,
					`{"health_check":{"unhealthy_threshold":6}}`, `{"url":"http://b:2"}`, `{"name":"renamed"}`,
				}
				statuses := parallel(30, func(i int) *response {
					return send(i, "PATCH", "/admin/v1/services/s", patches[i%len(patches)])
				})
				for i, r := range statuses {
					if r.status != 200 {
						t.Errorf("PATCH %s: got %d; want 200: %s", patches[i%len(patches)], r.status, r.body)
					}
				}
				got := string(api.must(200, "GET", "/admin/v1/services/s", "").body)
				for _, want := range []string{`"connect_timeout_ms":1234`, `"read_timeout_ms":4321`, `"retries":7`,
					`"path":"/ready"`, `"interval_ms":20000`, `"timeout_ms":3000`, `"healthy_threshold":5`,
					`"unhealthy_threshold":6`, `"url":"http://b:2"`, `"name":"renamed"`} {
					if !strings.Contains(got, want) {
						t.Errorf("final service lacks %s: %s", want, got)
					}
				}
			})

			t.Run("PUTs and PATCHes of one field: the last write stays", func(t *testing.T) {
				api.must(201, "POST", "/admin/v1/consumers", `{"id":"c","name":"c"}`)
				responses := parallel(30, func(i int) *response {
					if i%2 == 0 {
						return send(i, "PUT", "/admin/v1/consumers/c", fmt.Sprintf(`{"name":"c","groups":["g%d"]}`, i))
					}
					return send(i, "PATCH", "/admin/v1/consumers/c", fmt.Sprintf(`{"groups":["g%d"]}`, i))
				})
				var last *response
				lastVersion := 0
				for _, r := range responses {
					if r.status != 200 {
						t.Fatalf("got %d; want 200: %s", r.status, r.body)
					}
					v, _ := strconv.Atoi(strings.Trim(r.header.Get("ETag"), `"`))
					if v > lastVersion {
						last, lastVersion = r, v
					}
				}
				final := api.must(200, "GET", "/admin/v1/consumers/c", "")
				if g, want := final.json()["groups"], last.json()["groups"]; fmt.Sprint(g) != fmt.Sprint(want) {
					t.Fatalf("final groups %v; want %v, written by the last write", g, want)
				}
			})
		})
	}
}

// parallel runs n requests at once and returns their responses in order.
func parallel(n int, do func(i int) *response) []*response {
	out := make([]*response, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i] = do(i)
		}()
	}
	close(start)
	wg.Wait()
	return out
}

// alwaysStale is a store on which every update loses a race, as if writers
// elsewhere never stopped.
type alwaysStale struct{ gatehouse.Store }

func (alwaysStale) Update(ctx context.Context, rec *gatehouse.Record, ifVersion int64) error {
	return gatehouse.Errorf(gatehouse.EPRECONDITION, "%s %q is at a newer version", rec.Kind, rec.ID)
}

func TestPlainWriteThatNeverWinsItsRaceReturns503WithRetryAfterNot412(t *testing.T) {
	api := newTestAPI(t, withStore(func(s gatehouse.Store) gatehouse.Store { return alwaysStale{s} }))
	tag := api.must(201, "POST", "/admin/v1/consumers", `{"id":"c","name":"c"}`).header.Get("ETag")
	r := api.do("PATCH", "/admin/v1/consumers/c", `{"groups":["a"]}`)
	assertProblem(t, r, 503)
	if r.header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	// With a precondition the lost race is the client's 412 at once.
	assertProblem(t, api.do("PATCH", "/admin/v1/consumers/c", `{"groups":["a"]}`, h("If-Match", tag)), 412)
}

func TestStoreDamagedAfterStartMakesReadyzAndAdminRequests503(t *testing.T) {
	api := newTestAPI(t)
	api.deployAndWait(`{}`)
	for i := range 50 {
		api.must(201, "POST", "/admin/v1/consumers", fmt.Sprintf(`{"name":"c%d"}`, i))
	}
	api.must(200, "GET", "/readyz", "")
	sqlitetest.CorruptIndex(t, api.dbPath, "records_kind_name")

	// The first request to read the damaged page finds the damage.
	r := api.do("GET", "/admin/v1/consumers?name=c7", "")
	p := assertProblem(t, r, 503)
	if detail, _ := p["detail"].(string); !strings.Contains(detail, "damaged") {
		t.Errorf("detail %q does not say the store is damaged", detail)
	}
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	// From then on the node is not ready, and nothing is answered from
	// the damaged file; the process itself is alive.
	assertProblem(t, api.do("GET", "/readyz", "", h("Authorization", "")), 503)
	assertProblem(t, api.do("GET", "/admin/v1/services", ""), 503)
	api.must(200, "GET", "/healthz", "", h("Authorization", ""))
}

// TestProblemListsAtMost100ErrorsAndCountsTheRest: however the errors are
// found (a body's types, a resource's own checks, a query string, a
// policy config the decoder cut short merged with the policy's checks),
// a problem lists the first 100 and one final entry on body counting the
// rest.
func TestProblemListsAtMost100ErrorsAndCountsTheRest(t *testing.T) {
	api := newTestAPI(t)
	var query, config []string
	for i := range 300 {
		query = append(query, fmt.Sprintf("q%d=1", i))
		config = append(config, fmt.Sprintf(`"x%d":1`, i))
	}
	cases := []struct {
		name, method, path, body string
		errors                   int // found in all
	}{
		{"wrong types in a body", "POST", "/admin/v1/services",
			`{"name":"s","url":"http://a:1","policies":[` + strings.Repeat("1,", 399_999) + `1]}`, 400_000},
		// 300 targets, each without a url and with a weight out of range,
		// and one error for their number.
		{"a resource's own checks", "POST", "/admin/v1/services",
			`{"name":"s","targets":[` + strings.Repeat(`{"weight":-1},`, 299) + `{"weight":-1}]}`, 1 + 2*300},
		{"query parameters", "GET", "/admin/v1/services?" + strings.Join(query, "&"), "", 300},
		// The decoder lists 100 of the config's 300 unknown fields and
		// counts 200; the name is one more.
		{"a cut config and the policy's checks", "POST", "/admin/v1/policies",
			`{"name":"bad name!","type":"rate-limit","config":{` + strings.Join(config, ",") + `}}`, 301},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := api.do(c.method, c.path, c.body)
			assertProblem(t, r, 400)
			if len(r.body) > 32<<10 {
				t.Fatalf("got a %d-byte problem; want it bounded", len(r.body))
			}
			var p struct {
				Errors []gatehouse.FieldError `json:"errors"`
			}
			if err := json.Unmarshal(r.body, &p); err != nil {
				t.Fatal(err)
			}
			if len(p.Errors) != gatehouse.MaxFieldErrors+1 {
				t.Fatalf("got %d errors; want %d and one counting the rest", len(p.Errors), gatehouse.MaxFieldErrors)
			}
			for _, e := range p.Errors[:gatehouse.MaxFieldErrors] {
				if strings.Contains(e.Message, "not listed") {
					t.Fatalf("an entry counting errors before the last: %v", e)
				}
			}
			last := p.Errors[gatehouse.MaxFieldErrors]
			want := fmt.Sprintf("has %d more errors, not listed: only the first %d are", c.errors-gatehouse.MaxFieldErrors, gatehouse.MaxFieldErrors)
			if last.Field != "body" || last.Message != want {
				t.Errorf("last error is %s: %s; want body: %s", last.Field, last.Message, want)
			}
		})
	}
}

func TestBodyInAContentCodingReturns415WithAcceptEncoding(t *testing.T) {
	api := newTestAPI(t)
	api.must(201, "POST", "/admin/v1/consumers", `{"id":"c1","name":"c1"}`)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`{"name":"zipped"}`))
	zw.Close()
	tests := []struct{ desc, method, path, body, coding string }{
		{"gzip", "POST", "/admin/v1/consumers", gz.String(), "gzip"},
		{"plain body labelled br", "POST", "/admin/v1/consumers", `{"name":"plain"}`, "br"},
		{"identity then gzip", "PATCH", "/admin/v1/consumers/c1", `{"name":"x"}`, "identity, gzip"},
		{"deflate on PUT", "PUT", "/admin/v1/consumers/c1", `{"name":"x"}`, "deflate"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			before := api.snapshot()
			r := api.do(tc.method, tc.path, tc.body, h("Content-Encoding", tc.coding))
			assertProblem(t, r, 415)
			if got := r.header.Get("Accept-Encoding"); got != "identity" {
				t.Errorf("got Accept-Encoding %q; want identity", got)
			}
			api.unchanged(before)
		})
	}
	api.must(201, "POST", "/admin/v1/consumers", `{"name":"plain"}`, h("Content-Encoding", "identity"))
}

func TestReadWithAFailingPreconditionReturns412(t *testing.T) {
	api := newTestAPI(t)
	tag := api.must(201, "POST", "/admin/v1/consumers", `{"id":"c","name":"c"}`).header.Get("ETag")
	past := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Format(http.TimeFormat)
	for _, method := range []string{"GET", "HEAD"} {
		for _, hd := range []header{h("If-Match", `"999"`), h("If-Match", "W/"+tag), h("If-Unmodified-Since", past)} {
			t.Run(method+" "+hd.k+": "+hd.v, func(t *testing.T) {
				r := api.do(method, "/admin/v1/consumers/c", "", hd)
				if method == "HEAD" {
					if r.status != 412 {
						t.Fatalf("got %d; want 412", r.status)
					}
					return
				}
				assertProblem(t, r, 412)
			})
		}
		// Satisfied preconditions read as usual; If-Match wins over a
		// matching If-None-Match only when it fails.
		api.must(200, method, "/admin/v1/consumers/c", "", h("If-Match", tag))
		api.must(304, method, "/admin/v1/consumers/c", "", h("If-Match", tag), h("If-None-Match", tag))
	}
}

func TestStalledBodyDoesNotHoldUpOtherWritersOfTheResource(t *testing.T) {
	api := newTestAPI(t, withServeOptions(serve.Options{ReadTimeout: time.Minute}))
	api.must(201, "POST", "/admin/v1/consumers", `{"id":"c","name":"c"}`)
	slow := api.dial()
	slow.send("PATCH /admin/v1/consumers/c HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + api.token +
		"\r\nContent-Type: application/merge-patch+json\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n")
	// 100 Continue comes when the handler starts reading the body: the
	// PATCH has passed every check and now waits for a body that does not
	// come. Another writer of the same consumer goes ahead meanwhile.
	if r := slow.readResponse("PATCH"); r.status != 100 {
		t.Fatalf("got %d; want 100 Continue", r.status)
	}
	slow.send(`{"groups":`)
	api.must(200, "PATCH", "/admin/v1/consumers/c", `{"groups":["fast"]}`)
}

// TestTargetWithoutETagAnswersAFailingIfMatchWith412 covers every
// collection, and the API document, with each of their methods: having no
// ETag, only If-Match "*" matches them (RFC 9110 §13.1.1), and having no
// modification date they ignore If-Unmodified-Since (§13.1.4). A refused
// POST creates nothing.
func TestTargetWithoutETagAnswersAFailingIfMatchWith412(t *testing.T) {
	api := newTestAPI(t)
	svc := api.service("s")
	api.must(201, "POST", "/admin/v1/consumers", `{"id":"c","name":"c"}`)
	past := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Format(http.TimeFormat)
	// Deployments come last among the collections that take a POST: one
	// created runs in the background and would change the snapshots that
	// prove a refused POST changed nothing.
	collections := []struct {
		pattern, path string
		post          func(i int) string // a valid body; nil: no POST
		created       int
	}{
		{Prefix + "/services", "/admin/v1/services", func(i int) string {
			return fmt.Sprintf(`{"name":"s%d","url":"http://127.0.0.1:9999"}`, i)
		}, 201},
		{Prefix + "/routes", "/admin/v1/routes", func(i int) string {
			return fmt.Sprintf(`{"paths":["/p%d"],"service_id":%q}`, i, svc)
		}, 201},
		{Prefix + "/consumers", "/admin/v1/consumers", func(i int) string { return fmt.Sprintf(`{"name":"c%d"}`, i) }, 201},
		{Prefix + "/consumers/{consumer_id}/credentials", "/admin/v1/consumers/c/credentials",
			func(int) string { return `{"type":"key-auth"}` }, 201},
		{Prefix + "/policies", "/admin/v1/policies", func(i int) string {
			return fmt.Sprintf(`{"name":"p%d","type":"rate-limit","config":{"requests":5,"per":"minute"}}`, i)
		}, 201},
		{Prefix + "/tokens", "/admin/v1/tokens", func(int) string { return `{}` }, 201},
		{Prefix + "/specs", "/admin/v1/specs", func(i int) string {
			return fmt.Sprintf(`{"openapi":"3.1.0","info":{"title":"t%d","version":"1"},"paths":{}}`, i)
		}, 201},
		{Prefix + "/revisions", "/admin/v1/revisions", nil, 0},
		{Prefix + "/nodes", "/admin/v1/nodes", nil, 0},
		{Prefix + "/conformance", "/admin/v1/conformance", nil, 0},
		{Prefix + "/token", "/admin/v1/token", nil, 0},
		{Prefix + "/stats", "/admin/v1/stats", nil, 0},
		{Prefix + "/services/{id}/health", "/admin/v1/services/" + svc + "/health", nil, 0},
		{Prefix + "/openapi.json", "/admin/v1/openapi.json", nil, 0},
		{Prefix + "/deployments", "/admin/v1/deployments", func(int) string { return `{}` }, 202},
	}
	covered := map[string]bool{}
	for _, c := range collections {
		covered[c.pattern] = c.post != nil
	}
	for _, ep := range endpoints {
		if takesPost, ok := covered[ep.pattern]; ep.untagged && (!ok || takesPost != (ep.methods["POST"] != nil)) {
			t.Errorf("%s, which has no ETag (POST: %v), is not in this test's table as it is", ep.pattern, ep.methods["POST"] != nil)
		}
	}
	n := 0
	for _, c := range collections {
		methods := []string{"GET", "HEAD"}
		if c.post != nil {
			methods = append(methods, "POST")
		}
		for _, method := range methods {
			normal, body := 200, func() string { return "" }
			if method == "POST" {
				normal, body = c.created, func() string { n++; return c.post(n) }
			}
			t.Run(method+" "+c.pattern, func(t *testing.T) {
				before := api.snapshot()
				r := api.do(method, c.path, body(), h("If-Match", `"1"`))
				if method == "HEAD" {
					if r.status != 412 || len(r.body) != 0 {
						t.Errorf("If-Match \"1\": got %d, body %q; want 412 without a body", r.status, r.body)
					}
				} else {
					assertProblem(t, r, 412)
				}
				api.unchanged(before)
				for _, hd := range [][]header{
					{h("If-Match", "*")},
					{h("If-Match", `"1", *`)},
					{h("If-Unmodified-Since", past)},
				} {
					if r := api.do(method, c.path, body(), hd...); r.status != normal {
						t.Errorf("%s: %s: got %d; want %d; body %s", hd[0].k, hd[0].v, r.status, normal, r.body)
					}
				}
			})
		}
	}
	// A collection that does not exist answers 404 whatever it is asked
	// (RFC 9110 §13.2.1 ignores preconditions then).
	for _, method := range []string{"GET", "POST"} {
		assertProblem(t, api.do(method, "/admin/v1/consumers/none/credentials", `{"type":"key-auth"}`, h("If-Match", `"1"`)), 404)
	}
}
