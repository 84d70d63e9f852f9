package proxy

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/problem"
)

// rawError is a raw upstream response of status with the header lines
// and body given.
func rawError(status int, headers, body string) string {
	return "HTTP/1.1 " + strconv.Itoa(status) + " " + http.StatusText(status) + "\r\n" + headers +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

func TestErrorNormalisationRestatesUpstreamErrorsAsProblems(t *testing.T) {
	for _, tc := range []struct {
		name       string
		raw        string
		status     int
		detail     string
		keep       map[string]string // fields the upstream sent that must stay
		notInvents []string          // fields gatehouse must not add
	}{
		{"JSON error.message", rawError(404, "Content-Type: application/json\r\nCache-Control: max-age=60\r\n", `{"error":{"code":7,"message":"No pet 42."}}`),
			404, "No pet 42.", map[string]string{"Cache-Control": "max-age=60"}, nil},
		{"JSON errors[0].message", rawError(422, "Content-Type: application/vnd.api+json\r\n", `{"errors":[{"message":"name is required"},{"message":"x"}]}`),
			422, "name is required", nil, nil},
		{"OAuth error_description", rawError(400, "Content-Type: application/json;charset=utf-8\r\n", `{"error":"invalid_grant","error_description":"The code expired."}`),
			400, "The code expired.", nil, nil},
		{"short text", rawError(503, "Content-Type: text/plain\r\nRetry-After: 30\r\n", "down for\r\nmaintenance\n"),
			503, "down for maintenance", map[string]string{"Retry-After": "30"}, nil},
		{"HTML page", rawError(500, "Content-Type: text/html\r\nContent-Language: en\r\nETag: \"x\"\r\n", "<html><body><h1>Oops</h1><pre>stack trace</pre></body></html>"),
			500, "The upstream answered 500 Internal Server Error.", nil, []string{"Content-Language", "Etag"}},
		{"401 without a challenge", rawError(401, "Content-Type: application/json\r\n", `{"message":"token expired"}`),
			401, "token expired", nil, []string{"Www-Authenticate"}},
		{"401 with a challenge", rawError(401, "Content-Type: application/json\r\nWWW-Authenticate: Bearer error=\"invalid_token\"\r\n", `{"message":"token expired"}`),
			401, "token expired", map[string]string{"Www-Authenticate": `Bearer error="invalid_token"`}, nil},
		{"405 keeps Allow", rawError(405, "Allow: GET\r\nContent-Type: text/plain\r\n", "no"),
			405, "no", map[string]string{"Allow": "GET"}, nil},
		{"429 without Retry-After", rawError(429, "Content-Type: text/plain\r\n", "slow down"),
			429, "slow down", nil, []string{"Retry-After"}},
		{"an empty 404", rawError(404, "", ""), 404, "The upstream answered 404 Not Found.", nil, nil},
		{"chunked JSON", "HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n13\r\n{\"detail\":\"in use\"}\r\n0\r\n\r\n",
			409, "in use", nil, nil},
		{"gzipped", rawError(400, "Content-Type: application/json\r\nContent-Encoding: gzip\r\n", "\x1f\x8b\x08\x00garbage"),
			400, "The upstream answered 400 Bad Request.", nil, []string{"Content-Encoding"}},
		{"over the limit", rawError(502, "Content-Type: text/plain\r\n", strings.Repeat("x", 64<<10+1)),
			502, "The upstream answered 502 Bad Gateway.", nil, nil},
		{"JSON over the limit", rawError(400, "Content-Type: application/json\r\n", `{"message":"big","pad":"`+strings.Repeat("x", 64<<10)+`"}`),
			400, "The upstream answered 400 Bad Request.", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, _ := auditGateway(t, tc.raw, `{"responses":"off","normalize_errors":true}`)
			r := g.get("/pets/42", "X-Request-Id", "req-1")
			doc := assertProblem(t, r, tc.status)
			if doc["type"] != problem.TypeUpstream || doc["detail"] != tc.detail || doc["request_id"] != "req-1" || doc["status"] != float64(tc.status) {
				t.Fatalf("got %v; want type %s, detail %q, request_id req-1", doc, problem.TypeUpstream, tc.detail)
			}
			for k, v := range tc.keep {
				if got := r.header.Get(k); got != v {
					t.Errorf("%s: got %q; want the upstream's %q", k, got, v)
				}
			}
			for _, k := range tc.notInvents {
				if v, ok := r.header[k]; ok {
					t.Errorf("%s: %q; the upstream sent none (or its body's)", k, v)
				}
			}
			if r.header.Get("Via") == "" {
				t.Error("no Via: the restated error is still a forwarded response")
			}
		})
	}
}

func TestErrorNormalisationLeavesProblemsAndSuccessesAlone(t *testing.T) {
	for _, raw := range []string{
		rawError(404, "Content-Type: application/problem+json\r\n", `{"type":"about:blank","status":404,"title":"mine"}`),
		rawError(400, "Content-Type: application/problem+xml\r\n", `<problem/>`),
		// A parameter the strict parser refuses does not make it less a
		// problem: its type is read as every Content-Type is.
		rawError(422, "Content-Type: Application/Problem+JSON; charset\r\n", `{"type":"about:blank","status":422,"detail":"mine"}`),
		rawError(200, "Content-Type: text/html\r\n", `<p>fine</p>`),
		rawError(302, "Location: /there\r\nContent-Type: text/html\r\n", `<a href="/there">moved</a>`),
	} {
		g, _ := auditGateway(t, raw, `{"normalize_errors":true}`)
		r := g.get("/x")
		head, body, _ := strings.Cut(raw, "\r\n\r\n")
		ct := strings.SplitN(strings.SplitN(head, "Content-Type: ", 2)[1], "\r\n", 2)[0]
		if string(r.body) != body || r.header.Get("Content-Type") != ct {
			t.Fatalf("got %d %q (%s); want the upstream's %q (%s) unchanged", r.status, r.body, r.header.Get("Content-Type"), body, ct)
		}
	}
}

func TestErrorNormalisationOfAResponseToHEADHasNoBody(t *testing.T) {
	g, _ := auditGateway(t, "HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 1234\r\n\r\n", `{"normalize_errors":true}`)
	r := g.do("HEAD", "/x", nil)
	if r.status != 404 || len(r.body) != 0 || r.header.Get("Content-Type") != problem.JSON {
		t.Fatalf("got %d, %d body bytes, %q; want 404 with a problem's head and no body", r.status, len(r.body), r.header.Get("Content-Type"))
	}
}
