package proxy

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/internal/testupstream"
)

// petDoc documents one operation whose responses the spec rules judge:
// a 200 with a required header and a JSON schema, a 404 problem.
const petDoc = `{"openapi":"3.1.0","info":{"title":"pets","version":"1"},"paths":{"/pets/{id}":{"get":{
  "operationId":"showPet",
  "parameters":[{"name":"id","in":"path","required":true,"schema":{"type":"integer"}}],
  "responses":{
    "200":{"description":"a pet","headers":{"X-Rate-Limit":{"required":true,"schema":{"type":"integer"}}},
      "content":{"application/json":{"schema":{"type":"object","required":["id"],"properties":{"id":{"type":"integer"},"name":{"type":"string"}}}}}},
    "404":{"description":"none","content":{"application/problem+json":{"schema":{"type":"object"}}}}}}}}}`

// specAuditGateway is a gateway whose one route, to an upstream that
// answers every request with rawResponse, has an openapi policy for doc
// with config's members added, and the recorder its findings go to.
func specAuditGateway(t *testing.T, doc, rawResponse, config string) (*gateway, *audit.Recorder) {
	t.Helper()
	rec := audit.NewRecorder(audit.RecorderOptions{})
	g := newGatewayWithOptions(t, Options{Findings: rec})
	f := newPolicyFixture(t, testupstream.Canned(t, []byte(rawResponse)))
	spec := gatehouse.NewSpec()
	spec.ID, spec.Version, spec.Name, spec.MediaType, spec.Document = "api", 1, "api", "application/json", doc
	f.rev.Specs = append(f.rev.Specs, spec)
	f.policy(`{"name":"contract","type":"openapi","config":{"spec_id":"api","base_path":"/"` + config + `}}`)
	g.apply(f.rev)
	return g, rec
}

func jsonResponse(status int, extra, body string) string {
	return "HTTP/1.1 " + strconv.Itoa(status) + " X\r\nContent-Type: application/json\r\n" + extra +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

func TestResponseAuditFindsWhatBreaksTheSpecAndFlagsNoDocumentedResponse(t *testing.T) {
	tests := []struct {
		name  string
		raw   string
		rules []string
	}{
		{"a documented response", jsonResponse(200, "X-Rate-Limit: 10\r\n", `{"id":7,"name":"Rex"}`), nil},
		{"a documented error", "HTTP/1.1 404 Not Found\r\nContent-Type: application/problem+json\r\nContent-Length: 2\r\n\r\n{}", nil},
		{"an undocumented status", "HTTP/1.1 418 Teapot\r\nContent-Type: application/problem+json\r\nContent-Length: 2\r\n\r\n{}",
			[]string{audit.UndocumentedStatus}},
		{"an undocumented media type", "HTTP/1.1 200 OK\r\nX-Rate-Limit: 10\r\nContent-Type: text/html\r\nContent-Length: 4\r\n\r\n<p/>",
			[]string{audit.UndocumentedMediaType}},
		{"a body breaking its schema", jsonResponse(200, "X-Rate-Limit: 10\r\n", `{"id":"seven","name":3}`), []string{audit.BodySchema}},
		{"a body breaking its schema, chunked", "HTTP/1.1 200 OK\r\nX-Rate-Limit: 10\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"9\r\n{\"name\":1\r\n1\r\n}\r\n0\r\n\r\n", []string{audit.BodySchema}},
		{"a required header missing", jsonResponse(200, "", `{"id":7}`), []string{audit.MissingResponseHeader}},
		{"a coded body is not judged by its schema", jsonResponse(200, "X-Rate-Limit: 10\r\nContent-Encoding: gzip\r\n", `notjson`), nil},
		{"an empty body is not judged by its schema", emptyChunkedJSON, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, rec := specAuditGateway(t, petDoc, tt.raw, "")
			r := g.get("/pets/7")
			if r.status != 200 && r.status != 404 && r.status != 418 {
				t.Fatalf("status %d; want the upstream's", r.status)
			}
			if got := rules(rec); !slices.Equal(got, tt.rules) {
				t.Fatalf("findings %q; want %q", got, tt.rules)
			}
			for _, e := range rec.Entries(audit.Filter{}) {
				if e.Operation != "showPet" {
					t.Fatalf("finding for operation %q; want showPet", e.Operation)
				}
			}
		})
	}
}

func TestResponseAuditOnEnforceReplacesWhatBreaksTheSpecWith502(t *testing.T) {
	tests := []struct {
		name, raw, rule string
		upstream        int
	}{
		{"an undocumented status", "HTTP/1.1 418 Teapot\r\nContent-Type: application/problem+json\r\nContent-Length: 2\r\n\r\n{}", audit.UndocumentedStatus, 418},
		{"a body breaking its schema", jsonResponse(200, "X-Rate-Limit: 10\r\n", `{"id":"seven"}`), audit.BodySchema, 200},
		{"a required header missing", jsonResponse(200, "", `{"id":7}`), audit.MissingResponseHeader, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, _ := specAuditGateway(t, petDoc, tt.raw, `,"responses":"enforce"`)
			doc := assertProblem(t, g.get("/pets/7"), 502)
			if doc["rule"] != tt.rule || doc["upstream_status"] != float64(tt.upstream) {
				t.Fatalf("rule %v, upstream_status %v; want %s, %d", doc["rule"], doc["upstream_status"], tt.rule, tt.upstream)
			}
		})
	}
	for _, raw := range []string{jsonResponse(200, "X-Rate-Limit: 10\r\n", `{"id":7}`), emptyChunkedJSON} {
		g, _ := specAuditGateway(t, petDoc, raw, `,"responses":"enforce"`)
		if r := g.get("/pets/7"); r.status != 200 {
			t.Fatalf("a documented response on enforce: %d %q; want it unchanged", r.status, r.body)
		}
	}
}

// emptyChunkedJSON is a 200 typed JSON whose chunked body is empty: no
// body, not a JSON body breaking its schema.
const emptyChunkedJSON = "HTTP/1.1 200 OK\r\nX-Rate-Limit: 10\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"

// A real document's documented answers are not flagged: petstore's
// listPets, with its optional x-next header and an array of pets.
func TestResponseAuditFlagsNothingThatPetstoreDocuments(t *testing.T) {
	doc := string(testenv.SharedOpenAPI(t, "oai-petstore.yaml"))
	g, rec := specAuditGateway(t, doc, jsonResponse(200, "x-next: /v1/pets?page=2\r\n", `[{"id":1,"name":"Rex"},{"id":2,"name":"Tom","tag":"cat"}]`), "")
	if r := g.get("/pets?limit=2"); r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if got := rules(rec); len(got) != 0 {
		t.Fatalf("findings %q; want none", got)
	}
}

// A route with both an openapi policy that judges responses and an
// http-audit policy records each finding once.
func TestAnOpenAPIPolicyJudgingResponsesSupersedesHTTPAudit(t *testing.T) {
	rec := audit.NewRecorder(audit.RecorderOptions{})
	g := newGatewayWithOptions(t, Options{Findings: rec})
	f := newPolicyFixture(t, testupstream.Canned(t, []byte("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")))
	spec := gatehouse.NewSpec()
	spec.ID, spec.Version, spec.Name, spec.MediaType, spec.Document = "api", 1, "api", "application/json", petDoc
	f.rev.Specs = append(f.rev.Specs, spec)
	f.policy(`{"name":"contract","type":"openapi","config":{"spec_id":"api","base_path":"/"}}`)
	f.policy(`{"name":"audit","type":"http-audit","config":{}}`)
	g.apply(f.rev)
	g.get("/pets/7")
	for _, e := range rec.Entries(audit.Filter{}) {
		if e.Count != 1 {
			t.Fatalf("%s counted %d times; want once", e.Rule, e.Count)
		}
	}
	if got := rules(rec); !slices.Equal(got, []string{audit.ErrorWithoutBody}) {
		t.Fatalf("findings %q; want error-without-body", got)
	}
}

// blockingSink records findings in rec, but holds each body-schema
// finding (the judge that reports it) until release is closed, telling
// held of each.
type blockingSink struct {
	rec     *audit.Recorder
	held    chan struct{}
	release chan struct{}
}

func (s *blockingSink) Record(f *audit.Finding) {
	if f.Rule == audit.BodySchema {
		s.held <- struct{}{}
		<-s.release
	}
	s.rec.Record(f)
}

func TestReportedBodySchemaJudgeNeverDelaysTheResponseNorTheNextOnTheConnection(t *testing.T) {
	rec := audit.NewRecorder(audit.RecorderOptions{})
	sink := &blockingSink{rec: rec, held: make(chan struct{}, 2), release: make(chan struct{})}
	released := false
	release := func() {
		if !released {
			released = true
			close(sink.release)
		}
	}
	t.Cleanup(release)
	g := newGatewayWithOptions(t, Options{Findings: sink})
	// Chunked: the last chunk is written only once the handler returned.
	raw := "HTTP/1.1 200 OK\r\nX-Rate-Limit: 10\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"a\r\n{\"id\":\"x\"}\r\n0\r\n\r\n"
	f := newPolicyFixture(t, testupstream.Canned(t, []byte(raw)))
	spec := gatehouse.NewSpec()
	spec.ID, spec.Version, spec.Name, spec.MediaType, spec.Document = "api", 1, "api", "application/json", petDoc
	f.rev.Specs = append(f.rev.Specs, spec)
	f.policy(`{"name":"contract","type":"openapi","config":{"spec_id":"api","base_path":"/"}}`)
	g.apply(f.rev)

	c := g.dial()
	for i := range 2 {
		c.send("GET /pets/7 HTTP/1.1\r\nHost: x\r\n\r\n")
		// Read fails the test at the connection's deadline if the
		// response waits for the judge, held below.
		if r := c.read("GET"); r.status != 200 || string(r.body) != `{"id":"x"}` {
			t.Fatalf("response %d: %d %q; want the upstream's whole response", i, r.status, r.body)
		}
	}
	<-sink.held // the first judge is still held: the responses did not wait for it
	release()
	if got := rules(rec); !slices.Contains(got, audit.BodySchema) {
		t.Fatalf("findings %q; want body-schema, judged after the responses", got)
	}
}

// A 304 answers the client's own precondition: on enforce it passes
// unjudged by the document when the request was conditional, and is
// undocumented-status when it was not.
func TestEnforcedSpecPassesA304ToAConditionalRequest(t *testing.T) {
	g, rec := specAuditGateway(t, petDoc, "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n", `,"responses":"enforce"`)
	for _, cond := range [][]string{{"If-None-Match", `"v1"`}, {"If-Modified-Since", "Fri, 04 Dec 2026 10:00:00 GMT"}} {
		if r := g.get("/pets/7", cond...); r.status != http.StatusNotModified || r.header.Get("ETag") != `"v1"` {
			t.Fatalf("%s: %d %v; want the upstream's 304", cond[0], r.status, r.header)
		}
	}
	if got := rules(rec); len(got) != 0 {
		t.Fatalf("findings %q; want none", got)
	}
	doc := assertProblem(t, g.get("/pets/7"), 502)
	if doc["rule"] != audit.UndocumentedStatus || strings.Contains(doc["detail"].(string), "..") {
		t.Fatalf("unconditional 304: rule %v, detail %q; want undocumented-status in one sentence", doc["rule"], doc["detail"])
	}
}

// An openapi policy that only normalises errors (responses: off) judges
// no response: the route's http-audit still does.
func TestAnOpenAPIPolicyNotJudgingResponsesLeavesThemToHTTPAudit(t *testing.T) {
	rec := audit.NewRecorder(audit.RecorderOptions{})
	g := newGatewayWithOptions(t, Options{Findings: rec})
	f := newPolicyFixture(t, testupstream.Canned(t, []byte("HTTP/1.1 200 OK\r\nX-Rate-Limit: 10\r\nContent-Length: 2\r\n\r\n{}")))
	spec := gatehouse.NewSpec()
	spec.ID, spec.Version, spec.Name, spec.MediaType, spec.Document = "api", 1, "api", "application/json", petDoc
	f.rev.Specs = append(f.rev.Specs, spec)
	f.policy(`{"name":"contract","type":"openapi","config":{"spec_id":"api","base_path":"/","responses":"off","normalize_errors":true}}`)
	f.policy(`{"name":"audit","type":"http-audit","config":{}}`)
	g.apply(f.rev)
	if r := g.get("/pets/7"); r.status != 200 {
		t.Fatalf("status %d; want the upstream's 200", r.status)
	}
	if got := rules(rec); !slices.Equal(got, []string{audit.ContentTypeMissing}) {
		t.Fatalf("findings %q; want http-audit's content-type-missing", got)
	}
}

// A body of an undeclared type is 415 saying what is taken, in the header
// of its method (RFC 9110 §15.5.16; Accept-Patch, RFC 5789 §3.1).
func TestUndeclaredBodyTypeOfAPatchIs415WithAcceptPatch(t *testing.T) {
	const doc = `{"openapi":"3.1.0","info":{"title":"pets","version":"1"},"paths":{"/pets/{id}":{"patch":{
  "parameters":[{"name":"id","in":"path","required":true,"schema":{"type":"integer"}}],
  "requestBody":{"required":true,"content":{"application/merge-patch+json":{"schema":{"type":"object"}}}},
  "responses":{"204":{"description":"patched"}}}}}}`
	g, _ := specAuditGateway(t, doc, "HTTP/1.1 204 No Content\r\n\r\n", "")
	r := g.do("PATCH", "/pets/7", strings.NewReader("name=x"), "Content-Type", "text/plain")
	assertProblem(t, r, 415)
	if got := r.header.Get("Accept-Patch"); got != "application/merge-patch+json" {
		t.Fatalf("Accept-Patch %q; want application/merge-patch+json", got)
	}
	if r.header.Get("Accept-Post") != "" {
		t.Fatalf("Accept-Post %q on a PATCH", r.header.Get("Accept-Post"))
	}
}
