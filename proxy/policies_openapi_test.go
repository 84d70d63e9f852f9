package proxy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/internal/testupstream"
)

// openapiRoute serves one catch-all route whose openapi policy holds it
// to the shared document name, in front of a fresh upstream; config adds
// fields to the policy's config.
func openapiRoute(t *testing.T, name, config string, o Options) (*gateway, *testupstream.Upstream) {
	t.Helper()
	up := testupstream.Start(t)
	g := newGatewayWithOptions(t, o)
	f := newPolicyFixture(t, up.URL)
	spec := gatehouse.NewSpec()
	spec.ID, spec.Version, spec.Name, spec.MediaType = "petstore", 1, "petstore", "application/yaml"
	spec.Document = string(testenv.SharedOpenAPI(t, name))
	f.rev.Specs = append(f.rev.Specs, spec)
	f.policy(`{"name":"contract","type":"openapi","config":{"spec_id":"petstore"` + config + `}}`)
	g.apply(f.rev)
	return g, up
}

// problemErrors are a problem's errors as field: message.
func problemErrors(doc map[string]any) map[string]string {
	out := map[string]string{}
	list, _ := doc["errors"].([]any)
	for _, e := range list {
		m, _ := e.(map[string]any)
		f, _ := m["field"].(string)
		msg, _ := m["message"].(string)
		out[f] = msg
	}
	return out
}

func sortedFields(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Each refusal of the contract's openapi rows, on the petstore documents,
// with the upstream never contacted.
func TestRequestsBreakingTheDocumentAreRefusedBeforeTheUpstream(t *testing.T) {
	g, up := openapiRoute(t, "oai-petstore.yaml", "", Options{})
	tests := []struct {
		desc         string
		method, path string
		body         string
		headers      []string
		status       int
		fields       []string
		header       [2]string // a header the answer must carry
	}{
		{desc: "path outside the document", method: "GET", path: "/v1/owners", status: 404},
		{desc: "path outside the base path", method: "GET", path: "/pets", status: 404},
		{desc: "method not declared", method: "DELETE", path: "/v1/pets", status: 405, header: [2]string{"Allow", "GET, HEAD, POST"}},
		{desc: "query parameter not an integer", method: "GET", path: "/v1/pets?limit=ten", status: 400, fields: []string{"query.limit"}},
		{desc: "query parameter over its maximum", method: "GET", path: "/v1/pets?limit=101", status: 400, fields: []string{"query.limit"}},
		{desc: "query parameter out of int32", method: "GET", path: "/v1/pets?limit=-2147483649", status: 400, fields: []string{"query.limit"}},
		{desc: "body of an undeclared type", method: "POST", path: "/v1/pets", body: "x", headers: []string{"Content-Type", "text/plain"},
			status: 415, header: [2]string{"Accept-Post", "application/json"}},
		{desc: "required body missing", method: "POST", path: "/v1/pets", status: 400, fields: []string{"body"}},
		{desc: "malformed JSON", method: "POST", path: "/v1/pets", body: `{"id":1,`, headers: []string{"Content-Type", "application/json"},
			status: 400, fields: []string{"body"}},
		{desc: "body failing the schema", method: "POST", path: "/v1/pets", body: `{"id":"one","tag":7}`, headers: []string{"Content-Type", "application/json"},
			status: 422, fields: []string{"body", "body/id", "body/tag"}},
		{desc: "Accept excluding every type the operation produces", method: "GET", path: "/v1/pets/7", headers: []string{"Accept", "text/html"}, status: 406},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			var body *strings.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			var r *response
			if body != nil {
				r = g.do(tt.method, tt.path, body, tt.headers...)
			} else {
				r = g.do(tt.method, tt.path, nil, tt.headers...)
			}
			doc := assertProblem(t, r, tt.status)
			if got := sortedFields(problemErrors(doc)); !slices.Equal(got, tt.fields) {
				t.Fatalf("errors on %q; want %q: %s", got, tt.fields, r.body)
			}
			if tt.header[0] != "" && r.header.Get(tt.header[0]) != tt.header[1] {
				t.Fatalf("%s %q; want %q", tt.header[0], r.header.Get(tt.header[0]), tt.header[1])
			}
		})
	}
	if n := up.Requests(); n != 0 {
		t.Fatalf("the upstream saw %d requests; want none", n)
	}
}

func TestEveryBadParameterIsNamedWithItsLocation(t *testing.T) {
	g, up := openapiRoute(t, "apisguru-apideck.com-vault-10.0.0-openapi.yaml", "", Options{})
	// Both required headers missing (named as the document spells them),
	// a deepObject property of the wrong type and a limit over its
	// maximum, all in one answer.
	r := g.get("/vault/logs?filter[status_code]=ok&limit=201")
	doc := assertProblem(t, r, 400)
	want := []string{"header.x-apideck-app-id", "header.x-apideck-consumer-id", "query.filter/status_code", "query.limit"}
	if got := sortedFields(problemErrors(doc)); !slices.Equal(got, want) {
		t.Fatalf("errors on %q; want %q: %s", got, want, r.body)
	}
	if up.Requests() != 0 {
		t.Fatalf("the upstream saw %d requests; want none", up.Requests())
	}
}

func TestValidRequestsReachTheUpstreamUnchanged(t *testing.T) {
	t.Run("petstore", func(t *testing.T) {
		g, up := openapiRoute(t, "oai-petstore.yaml", "", Options{})
		if r := g.get("/v1/pets?limit=100"); r.status != 200 {
			t.Fatalf("GET: got %d; want the upstream's 200: %s", r.status, r.body)
		}
		if r := g.do("HEAD", "/v1/pets/7", nil); r.status != 200 {
			t.Fatalf("HEAD of a GET operation: got %d; want the upstream's 200", r.status)
		}
		pet := `{"id": 7, "name": "Rex", "tag": "dog"}`
		r := g.do("POST", "/v1/pets", strings.NewReader(pet), "Content-Type", "application/json")
		if r.status != 200 {
			t.Fatalf("POST: got %d; want the upstream's 200: %s", r.status, r.body)
		}
		sum := sha256.Sum256([]byte(pet))
		if e := r.echo(t); e.BodySHA256 != hex.EncodeToString(sum[:]) || e.Path != "/v1/pets" {
			t.Fatalf("the upstream got %s at %s; want the body as sent", e.BodySHA256, e.Path)
		}
		if up.Requests() != 3 {
			t.Fatalf("the upstream saw %d requests; want 3", up.Requests())
		}
	})
	t.Run("apideck: deepObject and spaceDelimited", func(t *testing.T) {
		g, up := openapiRoute(t, "apisguru-apideck.com-vault-10.0.0-openapi.yaml", "", Options{})
		ids := []string{"X-Apideck-App-Id", "app", "X-Apideck-Consumer-Id", "c"}
		if r := g.get("/vault/logs?filter[connector_id]=crm%2Bsalesforce&filter[status_code]=201&limit=20", ids...); r.status != 200 {
			t.Fatalf("deepObject: got %d; want the upstream's 200: %s", r.status, r.body)
		}
		r := g.get("/vault/authorize/pipedrive/app?state=s&redirect_uri=http://example.com/&scope=openid%20leads:write")
		if r.status != 200 {
			t.Fatalf("spaceDelimited: got %d; want the upstream's 200: %s", r.status, r.body)
		}
		if e := r.echo(t); e.RawQuery != "state=s&redirect_uri=http://example.com/&scope=openid%20leads:write" {
			t.Fatalf("the upstream got query %q; want it as sent", e.RawQuery)
		}
		if up.Requests() != 2 {
			t.Fatalf("the upstream saw %d requests; want 2", up.Requests())
		}
	})
	t.Run("uspto: form body", func(t *testing.T) {
		g, up := openapiRoute(t, "oai-uspto.yaml", `,"base_path":"/"`, Options{})
		form := []string{"Content-Type", "application/x-www-form-urlencoded"}
		if r := g.do("POST", "/oa_citations/v1/records", strings.NewReader("criteria=*:*&start=0&rows=10"), form...); r.status != 200 {
			t.Fatalf("valid form: got %d; want the upstream's 200: %s", r.status, r.body)
		}
		r := g.do("POST", "/oa_citations/v1/records", strings.NewReader("start=zero"), form...)
		doc := assertProblem(t, r, 422)
		if got := sortedFields(problemErrors(doc)); !slices.Equal(got, []string{"body", "body/start"}) {
			t.Fatalf("errors on %q; want body (criteria required) and body/start: %s", got, r.body)
		}
		if up.Requests() != 1 {
			t.Fatalf("the upstream saw %d requests; want 1", up.Requests())
		}
	})
}

// findingSink keeps what it is given.
type findingSink struct {
	mu   sync.Mutex
	list []audit.Finding
}

func (s *findingSink) Record(f *audit.Finding) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = append(s.list, *f)
}

func (s *findingSink) all() []audit.Finding {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.list)
}

func TestReportModeLetsInvalidRequestsOnAndRecordsWhatEnforcingWouldAnswer(t *testing.T) {
	sink := &findingSink{}
	g, up := openapiRoute(t, "oai-petstore.yaml", `,"requests":"report","responses":"off"`, Options{Findings: sink})
	enforcing, _ := openapiRoute(t, "oai-petstore.yaml", "", Options{})
	bad := []struct{ method, path, body string }{
		{"GET", "/v1/pets?limit=ten", ""},
		{"POST", "/v1/pets", `{"id":"one"}`},
	}
	for _, b := range bad {
		var r, enforced *response
		if b.body != "" {
			r = g.do(b.method, b.path, strings.NewReader(b.body), "Content-Type", "application/json", "X-Request-Id", "req-"+b.method)
			enforced = enforcing.do(b.method, b.path, strings.NewReader(b.body), "Content-Type", "application/json")
		} else {
			r = g.do(b.method, b.path, nil, "X-Request-Id", "req-"+b.method)
			enforced = enforcing.do(b.method, b.path, nil)
		}
		if r.status != 200 {
			t.Fatalf("%s %s reported: got %d; want the upstream's 200: %s", b.method, b.path, r.status, r.body)
		}
		if enforced.status < 400 {
			t.Fatalf("%s %s enforced: got %d; want a refusal", b.method, b.path, enforced.status)
		}
	}
	if up.Requests() != int64(len(bad)) {
		t.Fatalf("the upstream saw %d requests; want %d", up.Requests(), len(bad))
	}
	got := sink.all()
	if len(got) != len(bad) {
		t.Fatalf("%d findings; want %d: %+v", len(got), len(bad), got)
	}
	want := []audit.Finding{
		{Rule: audit.RequestInvalid, RouteID: "r", Operation: "listPets", RequestID: "req-GET", Method: "GET", Path: "/v1/pets",
			Detail: "The request breaks the API's description: 1 invalid parameter. query.limit: got string, want integer"},
		{Rule: audit.RequestInvalid, RouteID: "r", Operation: "createPets", RequestID: "req-POST", Method: "POST", Path: "/v1/pets",
			Detail: "The request body does not match the API's description: 2 violations. body: missing property 'name'; body/id: got string, want integer"},
	}
	for i, f := range got {
		f.At = want[i].At
		if f != want[i] {
			t.Errorf("finding %d:\n%+v\nwant\n%+v", i, f, want[i])
		}
	}
}

func TestRequestsOffSkipsTheChecks(t *testing.T) {
	g, up := openapiRoute(t, "oai-petstore.yaml", `,"requests":"off"`, Options{})
	if r := g.get("/v1/owners?limit=ten"); r.status != 200 || up.Requests() != 1 {
		t.Fatalf("got %d, upstream saw %d; want the upstream's 200", r.status, up.Requests())
	}
}

// A request its head breaks is answered at once: the client that waits
// for 100 Continue gets the refusal, and its body is never read.
func TestExpectContinueRefusedByItsHeadGetsNo100(t *testing.T) {
	g, up := openapiRoute(t, "oai-petstore.yaml", "", Options{})
	pet := `{"id":1,"name":"n"}`
	head := func(path, contentType string, length int) string {
		return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n",
			path, contentType, length)
	}
	for _, tt := range []struct {
		desc, path, contentType string
		status                  int
	}{
		{"path outside the document", "/v1/owners", "application/json", 404},
		{"undeclared type", "/v1/pets", "text/plain", 415},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			c := g.dial()
			c.send(head(tt.path, tt.contentType, len(pet)))
			assertProblem(t, c.read("POST"), tt.status)
		})
	}
	t.Run("body failing the schema: 100, then 422", func(t *testing.T) {
		c := g.dial()
		bad := `{"id":1}`
		c.send(head("/v1/pets", "application/json", len(bad)))
		if r := c.read("POST"); r.status != 100 {
			t.Fatalf("got %d; want 100 Continue", r.status)
		}
		c.send(bad)
		assertProblem(t, c.read("POST"), 422)
	})
	if up.Requests() != 0 {
		t.Fatalf("the upstream saw %d requests; want none", up.Requests())
	}
}

func TestSpecMissingFromTheRevisionIsRefusedAtApply(t *testing.T) {
	up := testupstream.Start(t)
	g := newGateway(t)
	f := newPolicyFixture(t, up.URL).policy(`{"name":"contract","type":"openapi","config":{"spec_id":"nowhere"}}`)
	err := g.handler.Apply(t.Context(), f.rev)
	if err == nil || !strings.Contains(err.Error(), `uses spec "nowhere", which is not in the revision`) {
		t.Fatalf("Apply: %v; want the missing spec named", err)
	}
}
