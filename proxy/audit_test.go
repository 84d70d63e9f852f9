package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/internal/testupstream"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/problem"
)

// auditGateway is a gateway whose one route, to an upstream that answers
// every request with the raw bytes given, has the http-audit policy of
// config (JSON), and the recorder its findings go to.
func auditGateway(t *testing.T, rawResponse, config string) (*gateway, *audit.Recorder) {
	t.Helper()
	rec := audit.NewRecorder(audit.RecorderOptions{})
	g := newGatewayWithOptions(t, Options{Findings: rec})
	up := testupstream.Canned(t, []byte(rawResponse))
	g.apply(newPolicyFixture(t, up).policy(`{"name":"audit","type":"http-audit","config":` + config + `}`).rev)
	return g, rec
}

// rules lists the rules of rec's entries, sorted, once the body judges
// running off the request path have ended.
func rules(rec *audit.Recorder) []string {
	policy.WaitJudges()
	var out []string
	for _, e := range rec.Entries(audit.Filter{}) {
		out = append(out, e.Rule)
	}
	slices.Sort(out)
	return out
}

// auditCases are upstream responses, each breaking exactly the rules
// listed (none: a conforming response of the same kind).
var auditCases = []struct {
	name   string
	method string
	raw    string
	rules  []string
}{
	{"204 with a Content-Length", "GET", "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello", []string{audit.BodyOnNoContent}},
	{"204 chunked", "GET", "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", []string{audit.BodyOnNoContent}},
	{"204 without a body", "GET", "HTTP/1.1 204 No Content\r\n\r\n", nil},
	{"204 with Content-Length 0", "GET", "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", nil},
	{"304 with the representation's Content-Length", "GET", "HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\nETag: \"a\"\r\n\r\n", nil},

	{"405 without Allow", "GET", problemResponse(405, ""), []string{audit.AllowMissing}},
	{"405 with Allow", "GET", problemResponse(405, "Allow: GET, HEAD\r\n"), nil},
	{"405 with an empty Allow", "GET", problemResponse(405, "Allow: \r\n"), nil},
	{"401 without WWW-Authenticate", "GET", problemResponse(401, ""), []string{audit.ChallengeMissing}},
	{"401 with a blank WWW-Authenticate", "GET", problemResponse(401, "WWW-Authenticate:  \r\n"), []string{audit.ChallengeMissing}},
	{"401 with WWW-Authenticate", "GET", problemResponse(401, "WWW-Authenticate: Bearer\r\n"), nil},
	{"407 without Proxy-Authenticate", "GET", problemResponse(407, ""), []string{audit.ProxyChallengeMissing}},
	{"407 with Proxy-Authenticate", "GET", problemResponse(407, "Proxy-Authenticate: Basic\r\n"), nil},

	{"206 without Content-Range", "GET", "HTTP/1.1 206 Partial Content\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello", []string{audit.ContentRangeMissing}},
	{"206 with Content-Range", "GET", "HTTP/1.1 206 Partial Content\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-4/10\r\nContent-Length: 5\r\n\r\nhello", nil},
	{"206 multipart/byteranges", "GET", "HTTP/1.1 206 Partial Content\r\nContent-Type: multipart/byteranges; boundary=B\r\nContent-Length: 5\r\n\r\nhello", nil},

	{"201 without Location", "GET", "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", []string{audit.LocationMissing}},
	{"201 with Location", "GET", "HTTP/1.1 201 Created\r\nLocation: /pets/1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", nil},
	{"302 without Location", "GET", "HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n", []string{audit.LocationMissing}},
	{"308 with Location", "GET", "HTTP/1.1 308 Permanent Redirect\r\nLocation: /there\r\nContent-Length: 0\r\n\r\n", nil},

	{"429 without Retry-After", "GET", problemResponse(429, ""), []string{audit.RetryAfterMissing}},
	{"503 without Retry-After", "GET", problemResponse(503, ""), []string{audit.RetryAfterMissing}},
	{"503 with Retry-After", "GET", problemResponse(503, "Retry-After: 10\r\n"), nil},

	{"404 with Content-Length 0", "GET", "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", []string{audit.ErrorWithoutBody}},
	{"500 chunked and empty", "GET", "HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", []string{audit.ErrorWithoutBody}},
	{"404 to HEAD", "HEAD", "HTTP/1.1 404 Not Found\r\nContent-Type: application/problem+json\r\nContent-Length: 100\r\n\r\n", nil},

	{"200 without Content-Type", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", []string{audit.ContentTypeMissing}},
	{"200 chunked without Content-Type", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", []string{audit.ContentTypeMissing}},
	{"200 chunked with Content-Type", "GET", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", nil},
	{"200 chunked and empty without Content-Type", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", nil},

	{"404 as HTML", "GET", "HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 13\r\n\r\n<p>gone</p>\r\n", []string{audit.ErrorNotProblem}},
	{"500 as chunked JSON", "GET", "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", []string{audit.ErrorNotProblem}},
	{"400 as a problem in XML", "GET", "HTTP/1.1 400 Bad Request\r\nContent-Type: application/problem+xml\r\nContent-Length: 10\r\n\r\n<problem/>", nil},
}

// problemResponse is a raw response of status with a problem body and
// the extra header lines.
func problemResponse(status int, extra string) string {
	body := `{"status":` + strconv.Itoa(status) + `}`
	return "HTTP/1.1 " + strconv.Itoa(status) + " " + http.StatusText(status) + "\r\n" + extra +
		"Content-Type: application/problem+json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

func TestResponseAuditFindsEachRuleAndFlagsNoConformingResponse(t *testing.T) {
	for _, tc := range auditCases {
		t.Run(tc.name, func(t *testing.T) {
			g, rec := auditGateway(t, tc.raw, `{"responses":"report"}`)
			r := g.do(tc.method, "/pets/1", nil)
			if got := rules(rec); !slices.Equal(got, tc.rules) {
				t.Fatalf("%s: got findings %v; want %v (status %d)", tc.name, got, tc.rules, r.status)
			}
			for _, e := range rec.Entries(audit.Filter{}) {
				if e.RouteID != "r" || e.Count != 1 || e.Sample.Path != "/pets/1" || e.Sample.Method != tc.method ||
					e.Sample.RequestID == "" || e.Sample.Detail == "" || e.Severity != audit.SeverityOf(e.Rule) {
					t.Fatalf("entry %+v: want route r, count 1, the request's method, path and id, a detail", e)
				}
			}
		})
	}
}

func TestResponseAuditOnReportPassesTheResponseUnchanged(t *testing.T) {
	raw := "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/html\r\nX-Upstream: yes\r\nContent-Length: 12\r\n\r\n<p>nope</p>\n"
	g, rec := auditGateway(t, raw, `{"responses":"report"}`)
	r := g.get("/x")
	if r.status != 405 || string(r.body) != "<p>nope</p>\n" || r.header.Get("Content-Type") != "text/html" || r.header.Get("X-Upstream") != "yes" {
		t.Fatalf("got %d %q %v; want the upstream's 405 as it was", r.status, r.body, r.header)
	}
	if got := rules(rec); !slices.Equal(got, []string{audit.AllowMissing, audit.ErrorNotProblem}) {
		t.Fatalf("findings %v; want allow-missing and error-not-problem", got)
	}
}

func TestResponseAuditOnEnforceReplacesAHeadBreakingAnErrorRuleWith502(t *testing.T) {
	// A long body the gateway never reads: the upstream connection must
	// not be reused with it unread.
	body := strings.Repeat("x", 256<<10)
	raw := "HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	g, rec := auditGateway(t, raw, `{"responses":"enforce"}`)
	for i := range 3 {
		for _, method := range []string{"GET", "HEAD"} {
			r := g.do(method, "/x", nil)
			if method == "HEAD" {
				if r.status != 502 || len(r.body) != 0 {
					t.Fatalf("HEAD %d: got %d with %d body bytes; want 502 without a body", i, r.status, len(r.body))
				}
				continue
			}
			doc := assertProblem(t, r, http.StatusBadGateway)
			if doc["type"] != problem.TypeNonconforming || doc["rule"] != audit.ChallengeMissing || doc["upstream_status"] != float64(401) {
				t.Fatalf("got %v; want type %s, rule challenge-missing, upstream_status 401", doc, problem.TypeNonconforming)
			}
			if r.header.Get("WWW-Authenticate") != "" {
				t.Fatalf("the 502 carries WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
			}
		}
	}
	if e := rec.Entries(audit.Filter{Rule: audit.ChallengeMissing}); len(e) != 1 || e[0].Count != 6 {
		t.Fatalf("entries %+v; want challenge-missing counted 6 times", e)
	}
}

func TestResponseAuditOnEnforceLetsWarningsAndBodyRulesThrough(t *testing.T) {
	raw := "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}"
	g, rec := auditGateway(t, raw, `{"responses":"enforce"}`)
	if r := g.get("/x"); r.status != 201 || string(r.body) != "{}" {
		t.Fatalf("got %d %q; want the upstream's 201", r.status, r.body)
	}
	if got := rules(rec); !slices.Equal(got, []string{audit.ContentTypeMissing, audit.LocationMissing}) {
		t.Fatalf("findings %v; want content-type-missing and location-missing", got)
	}
}

func TestResponseAuditOffOrUnsampledRecordsNothing(t *testing.T) {
	for _, config := range []string{`{"responses":"off"}`, `{"responses":"report","sample_rate":0}`} {
		g, rec := auditGateway(t, problemResponse(405, ""), config)
		if r := g.get("/x"); r.status != 405 {
			t.Fatalf("%s: got %d; want the upstream's 405", config, r.status)
		}
		if n := rec.Len(); n != 0 {
			t.Fatalf("%s: %d entries; want none", config, n)
		}
	}
}

func TestConformanceFindingsAreVisibleOnMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	rec := audit.NewRecorder(m.Conformance(0))
	g := newGatewayWithOptions(t, Options{Metrics: m, Findings: rec})
	g.apply(newPolicyFixture(t, testupstream.Canned(t, []byte(problemResponse(405, "")))).
		policy(`{"name":"audit","type":"http-audit","config":{}}`).rev)
	g.get("/x")
	g.get("/y")
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := `gatehouse_conformance_findings_total{operation="",route="r",rule="allow-missing",severity="error",status="405"} 2`
	if !strings.Contains(string(b), want) {
		t.Fatalf("/metrics lacks %s:\n%s", want, b)
	}
}

// BenchmarkServeHTTPWithAudit is BenchmarkServeHTTP on a route whose
// http-audit policy judges every response (report, sample_rate 1): the
// cost of the response hook on a conforming 1 KiB response.
//
//	go test -run '^$' -bench ServeHTTP -benchmem ./proxy/
func BenchmarkServeHTTPWithAudit(b *testing.B) {
	g := &gateway{t: b, handler: New(Options{Findings: audit.NewRecorder(audit.RecorderOptions{})})}
	b.Cleanup(g.handler.Close)
	up := testupstream.Canned(b, okKiB)
	g.apply(newPolicyFixture(b, up).policy(`{"name":"audit","type":"http-audit","config":{"normalize_errors":true}}`).rev)
	benchServeHTTP(b, g.handler, nil)
}

func TestUpstreamBreakingOffAnErrorBodyBeingNormalisedIsAnswered502(t *testing.T) {
	rec := audit.NewRecorder(audit.RecorderOptions{})
	g := newGatewayWithOptions(t, Options{Findings: rec})
	up := testupstream.CannedOnce(t, []byte("HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nshort"))
	f := newPolicyFixture(t, up).policy(`{"name":"audit","type":"http-audit","config":{"normalize_errors":true}}`)
	f.rev.Services[0].Retries = 0
	g.apply(f.rev)
	doc := assertProblem(t, g.get("/x"), http.StatusBadGateway)
	if doc["type"] != problem.TypeBase+"bad-gateway" {
		t.Fatalf("got %v; want gatehouse's own 502 for a broken upstream", doc)
	}
}

func TestAuditedResponseBrokenOffBeforeAnyBodyIsCutAndJudgedOnItsHeadAlone(t *testing.T) {
	g, rec := auditGateway(t, "", `{}`)
	up := testupstream.CannedOnce(t, []byte("HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n"))
	f := newPolicyFixture(t, up).policy(`{"name":"audit","type":"http-audit","config":{}}`)
	g.apply(f.rev)
	resp, err := g.client.Get(g.base + "/x")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Fatal("the client read a complete response; want the connection cut")
	}
	// Whether it had a body (error-without-body, content-type-missing)
	// is unknown: only the head's rule is found.
	if got := rules(rec); !slices.Equal(got, []string{audit.RetryAfterMissing}) {
		t.Fatalf("findings %v; want retry-after-missing alone", got)
	}
}
