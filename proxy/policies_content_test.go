package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/serve"
	"github.com/gatehouse/gatehouse/internal/testupstream"
)

// orderSchema is the content schema of the tests: an order with a name
// and priced items.
const orderSchema = `{"type":"object","required":["name","items"],"additionalProperties":false,"properties":{
	"name":{"type":"string","minLength":1},
	"items":{"type":"array","items":{"type":"object","required":["sku"],"properties":{
		"sku":{"type":"string"},"price":{"type":"number","minimum":0}}}}}}`

const validOrder = `{"name":"n","items":[{"sku":"A-1","price":2}]}`

// contentRoute serves one catch-all route with a content policy of
// config in front of a fresh upstream. setup, if not nil, adds to the
// revision first.
func contentRoute(t *testing.T, config string, setup func(*policyFixture), opts ...func(*serve.Options)) (*gateway, *testupstream.Upstream) {
	t.Helper()
	up := testupstream.Start(t)
	g := newGateway(t, opts...)
	f := newPolicyFixture(t, up.URL).policy(`{"name":"contract","type":"content","config":` + config + `}`)
	if setup != nil {
		setup(f)
	}
	g.apply(f.rev)
	return g, up
}

func TestBodyOfUndeclaredTypeReturns415WithAcceptPost(t *testing.T) {
	g, up := contentRoute(t, `{"accepts":["application/json","Text/*"]}`, nil)
	tests := []struct {
		desc, contentType string
		want              int
		detail            string
	}{
		{"accepted type", "application/json", 200, ""},
		{"accepted type, other case and parameters", "Application/JSON; charset=utf-8", 200, ""},
		{"type in an accepted range", "text/csv", 200, ""},
		{"type not accepted", "application/xml", 415,
			"This route does not accept bodies of type application/xml; it accepts application/json, text/*."},
		{"no Content-Type", "", 415,
			"The request body has no Content-Type; this route accepts application/json, text/*."},
		{"Content-Type not a media type", "json", 415,
			"The request's Content-Type is not one media type; this route accepts application/json, text/*."},
		{"Content-Type a range", "*/*", 415,
			"The request's Content-Type is not one media type; this route accepts application/json, text/*."},
	}
	passed := int64(0)
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			var headers []string
			if tt.contentType != "" {
				headers = []string{"Content-Type", tt.contentType}
			}
			r := g.do("POST", "/echo", strings.NewReader(`{"a":1}`), headers...)
			if tt.want == 200 {
				if r.status != 200 {
					t.Fatalf("got %d; want the upstream's 200: %s", r.status, r.body)
				}
				passed++
				return
			}
			doc := assertProblem(t, r, 415)
			if doc["detail"] != tt.detail {
				t.Fatalf("detail %q; want %q", doc["detail"], tt.detail)
			}
			if got := r.header.Get("Accept-Post"); got != "application/json, text/*" {
				t.Fatalf("Accept-Post %q; want the accepted types", got)
			}
		})
	}
	// Only bodies are checked.
	if r := g.do("POST", "/echo", nil); r.status != 200 {
		t.Fatalf("POST without a body: got %d; want 200", r.status)
	}
	if r := g.get("/echo"); r.status != 200 {
		t.Fatalf("GET: got %d; want 200", r.status)
	}
	if got := up.Requests(); got != passed+2 {
		t.Fatalf("the upstream saw %d requests; want the %d accepted", got, passed+2)
	}
}

func TestPatchOfUndeclaredTypeReturns415WithAcceptPatch(t *testing.T) {
	g, up := contentRoute(t, `{"accepts":["application/merge-patch+json"]}`, nil)
	r := g.do("PATCH", "/items/1", strings.NewReader(`{"a":1}`), "Content-Type", "application/json")
	doc := assertProblem(t, r, 415)
	if got := r.header.Get("Accept-Patch"); got != "application/merge-patch+json" {
		t.Fatalf("Accept-Patch %q; want application/merge-patch+json", got)
	}
	if r.header.Get("Accept-Post") != "" {
		t.Fatal("a PATCH was answered with Accept-Post")
	}
	if !strings.Contains(doc["detail"].(string), "it accepts application/merge-patch+json") {
		t.Fatalf("detail %q does not say what is accepted", doc["detail"])
	}
	// No field advertises what a PUT takes: the detail says it.
	r = g.do("PUT", "/items/1", strings.NewReader(`{"a":1}`), "Content-Type", "text/plain")
	doc = assertProblem(t, r, 415)
	if r.header.Get("Accept-Post") != "" || r.header.Get("Accept-Patch") != "" {
		t.Fatalf("a PUT was answered with Accept-Post %q, Accept-Patch %q", r.header.Get("Accept-Post"), r.header.Get("Accept-Patch"))
	}
	if !strings.Contains(doc["detail"].(string), "it accepts application/merge-patch+json") {
		t.Fatalf("detail %q does not say what is accepted", doc["detail"])
	}
	if r := g.do("PATCH", "/items/1", strings.NewReader(`{"a":1}`), "Content-Type", "application/merge-patch+json"); r.status != 200 {
		t.Fatalf("PATCH of the accepted type: got %d; want 200", r.status)
	}
	if up.Requests() != 1 {
		t.Fatalf("the upstream saw %d requests; want only the accepted one", up.Requests())
	}
}

func TestAcceptExcludingWhatTheRouteProducesReturns406(t *testing.T) {
	g, up := contentRoute(t, `{"produces":["application/json","text/csv"]}`, nil)
	tests := []struct {
		accept string // "" sends none
		want   int
	}{
		{"", 200},
		{"application/json", 200},
		{"*/*", 200},
		{"text/html, application/*;q=0.1", 200},
		{"text/csv;q=0.5, application/json;q=0", 200},
		{"text/html", 406},
		{"image/*, text/html", 406},
		{"application/json;q=0, text/csv;q=0, */*", 406},
		{"*/*;q=0", 406},
	}
	passed := int64(0)
	for _, tt := range tests {
		var headers []string
		if tt.accept != "" {
			headers = []string{"Accept", tt.accept}
		}
		r := g.get("/echo", headers...)
		if tt.want == 200 {
			if r.status != 200 {
				t.Errorf("Accept %q: got %d; want 200", tt.accept, r.status)
			}
			passed++
			continue
		}
		doc := assertProblem(t, r, 406)
		if want := "The Accept header excludes every media type this route produces: application/json, text/csv."; doc["detail"] != want {
			t.Errorf("Accept %q: detail %q; want %q", tt.accept, doc["detail"], want)
		}
	}
	if r := g.do("HEAD", "/echo", nil, "Accept", "text/html"); r.status != 406 || len(r.body) != 0 {
		t.Fatalf("HEAD: got %d with %d body bytes; want 406 without a body", r.status, len(r.body))
	}
	if up.Requests() != passed {
		t.Fatalf("the upstream saw %d requests; want the %d acceptable", up.Requests(), passed)
	}
}

func TestXMLPreferringClientsGetProblemXML(t *testing.T) {
	g, _ := contentRoute(t, `{"accepts":["application/json"],"produces":["application/json"],"schema":`+orderSchema+`}`, nil)
	for _, tc := range []struct {
		desc        string
		accept      string
		contentType string
		body        string
		want        int
	}{
		// The client wants only XML, which the route does not produce:
		// the 406 comes in the type it asked for.
		{"406", "application/xml", "", "", 406},
		{"415", "application/xml, application/json;q=0.5", "text/plain", "x", 415},
		{"422", "application/xml, application/json;q=0.5", "application/json", `{"name":""}`, 422},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			headers := []string{"Accept", tc.accept}
			if tc.contentType != "" {
				headers = append(headers, "Content-Type", tc.contentType)
			}
			r := g.do("POST", "/orders", body, headers...)
			if r.status != tc.want || r.header.Get("Content-Type") != "application/problem+xml" {
				t.Fatalf("got %d %q; want %d application/problem+xml: %s", r.status, r.header.Get("Content-Type"), tc.want, r.body)
			}
			var p struct {
				XMLName xml.Name
				Status  int      `xml:"status"`
				Fields  []string `xml:"errors>i>field"`
			}
			if err := xml.Unmarshal(r.body, &p); err != nil || p.XMLName.Space != "urn:ietf:rfc:7807" || p.Status != tc.want {
				t.Fatalf("problem %+v, %v: %s", p, err, r.body)
			}
			if tc.want == 422 && len(p.Fields) == 0 {
				t.Fatalf("the XML 422 lists no violations: %s", r.body)
			}
		})
	}
}

func TestMalformedJSONBodyReturns400(t *testing.T) {
	g, up := contentRoute(t, `{"schema":`+orderSchema+`}`, nil)
	tests := []struct{ desc, body, message string }{
		{"syntax error", "{\"name\":\"n\",\n \"items\": ]}",
			"is not valid JSON: invalid character ']' looking for beginning of value at line 2, column 11 (byte 24)"},
		{"truncated", `{"name":"n","items":[`, "ends before the JSON document does at line 1, column 22 (byte 22)"},
		{"data after the document", validOrder + ` {}`, "has data after the JSON document at line 1, column 48 (byte 48)"},
		{"invalid UTF-8", "{\"name\":\"\xc3\x28\",\"items\":[]}", "is not valid UTF-8 at line 1, column 10 (byte 10)"},
		{"duplicate key", `{"name":"n","items":[],"name":"m"}`, `has the key "name" twice in one object at line 1, column 24 (byte 24)`},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			r := g.do("POST", "/orders", strings.NewReader(tt.body), "Content-Type", "application/json")
			doc := assertProblem(t, r, 400)
			errs, _ := doc["errors"].([]any)
			if len(errs) != 1 {
				t.Fatalf("errors %v; want one, on the body", doc["errors"])
			}
			e := errs[0].(map[string]any)
			if e["field"] != "body" || e["message"] != tt.message {
				t.Fatalf("error %v; want body: %s", e, tt.message)
			}
			if doc["detail"] != "The request body "+tt.message+"." {
				t.Fatalf("detail %q", doc["detail"])
			}
		})
	}
	if up.Requests() != 0 {
		t.Fatalf("the upstream saw %d malformed bodies", up.Requests())
	}
}

func TestBodyFailingSchemaReturns422ListingEveryViolation(t *testing.T) {
	g, up := contentRoute(t, `{"schema":`+orderSchema+`}`, nil)
	body := `{"name":"","items":[{"sku":"A-1","price":-1},{"price":"free"},{"sku":"B-2"}],"extra":true}`
	r := g.do("POST", "/orders", strings.NewReader(body), "Content-Type", "application/json")
	doc := assertProblem(t, r, 422)
	if want := "The request body does not match this route's schema: 5 violations."; doc["detail"] != want {
		t.Fatalf("detail %q; want %q", doc["detail"], want)
	}
	want := []string{
		"body: additional properties 'extra' not allowed",
		"items[0].price: minimum: got -1, want 0",
		"items[1]: missing property 'sku'",
		"items[1].price: got string, want number",
		"name: minLength: got 0, want 1",
	}
	errs, _ := doc["errors"].([]any)
	var got []string
	for _, e := range errs {
		m := e.(map[string]any)
		got = append(got, fmt.Sprintf("%s: %s", m["field"], m["message"]))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if up.Requests() != 0 {
		t.Fatalf("the upstream saw %d requests; want none", up.Requests())
	}
}

func TestValidBodyReachesUpstreamUnchanged(t *testing.T) {
	g, up := contentRoute(t, `{"accepts":["application/json"],"schema":`+orderSchema+`}`, nil)
	// Spacing, escapes, key order and number forms that a re-encoding
	// would change.
	body := "{ \"items\" : [ {\"sku\":\"A\\u002d1\",\"price\":1.50e0} ],\n\t\"name\":\"caf\u00e9 \\u2615\" }\n"
	sum := sha256.Sum256([]byte(body))
	for _, tc := range []struct {
		desc string
		body func() io.Reader
	}{
		{"declared length", func() io.Reader { return strings.NewReader(body) }},
		{"chunked", func() io.Reader { return struct{ io.Reader }{strings.NewReader(body)} }},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			r := g.do("POST", "/orders", tc.body(), "Content-Type", "application/json; charset=utf-8")
			if r.status != 200 {
				t.Fatalf("got %d; want the upstream's 200: %s", r.status, r.body)
			}
			e := r.echo(t)
			if e.BodySHA256 != hex.EncodeToString(sum[:]) || e.BodyLen != int64(len(body)) {
				t.Fatalf("the upstream got %d bytes (sha256 %s); want the client's %d", e.BodyLen, e.BodySHA256, len(body))
			}
			if e.ContentLength != int64(len(body)) || len(e.TransferEncoding) != 0 {
				t.Fatalf("the upstream got length %d, %v; want %d", e.ContentLength, e.TransferEncoding, len(body))
			}
			if got := e.Headers["Content-Type"]; len(got) != 1 || got[0] != "application/json; charset=utf-8" {
				t.Fatalf("the upstream got Content-Type %q", got)
			}
		})
	}
	if up.Requests() != 2 {
		t.Fatalf("the upstream saw %d requests; want 2", up.Requests())
	}
}

func TestSchemaRejectionNeverContactsUpstream(t *testing.T) {
	g, up := contentRoute(t, `{"accepts":["application/json"],"produces":["application/json"],"schema":`+orderSchema+`}`,
		func(f *policyFixture) { f.rev.Routes[0].MaxBodyBytes = 200 })
	big := `{"name":"` + strings.Repeat("x", 200) + `","items":[]}`
	for _, tc := range []struct {
		desc, body, contentType, accept string
		chunked                         bool
		want                            int
	}{
		{"violation", `{"name":"n","items":[{}]}`, "application/json", "", false, 422},
		{"violation, chunked", `{"name":"n","items":[{}]}`, "application/json", "", true, 422},
		{"malformed", `{"name":`, "application/json", "", false, 400},
		{"wrong type", validOrder, "text/plain", "", false, 415},
		{"not acceptable", validOrder, "application/json", "text/html", false, 406},
		{"over the limit, declared", big, "application/json", "", false, 413},
		{"over the limit, chunked", big, "application/json", "", true, 413},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			var body io.Reader = strings.NewReader(tc.body)
			if tc.chunked {
				body = struct{ io.Reader }{body}
			}
			headers := []string{"Content-Type", tc.contentType}
			if tc.accept != "" {
				headers = append(headers, "Accept", tc.accept)
			}
			doc := assertProblem(t, g.do("POST", "/orders", body, headers...), tc.want)
			if tc.want == 413 && doc["detail"] != "The body exceeds the limit of 200 bytes." {
				t.Fatalf("detail %q", doc["detail"])
			}
		})
	}
	if up.Requests() != 0 {
		t.Fatalf("the upstream saw %d rejected requests; want none", up.Requests())
	}
	if r := g.do("POST", "/orders", strings.NewReader(validOrder), "Content-Type", "application/json"); r.status != 200 || up.Requests() != 1 {
		t.Fatalf("valid order: got %d, upstream saw %d; want 200 and 1", r.status, up.Requests())
	}
}

func TestExpectContinueWithContentContract(t *testing.T) {
	g, up := contentRoute(t, `{"accepts":["application/json"],"schema":`+orderSchema+`}`, nil)
	head := func(contentType string, length int) string {
		return fmt.Sprintf("POST /orders HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n",
			contentType, length)
	}
	t.Run("wrong Content-Type: 415 and no 100", func(t *testing.T) {
		c := g.dial()
		c.send(head("text/plain", 5))
		r := c.read("POST")
		assertProblem(t, r, 415)
		if r.header.Get("Accept-Post") != "application/json" {
			t.Fatalf("Accept-Post %q", r.header.Get("Accept-Post"))
		}
	})
	t.Run("body failing the schema: 100, then 422", func(t *testing.T) {
		c := g.dial()
		bad := `{"name":""}`
		c.send(head("application/json", len(bad)))
		if r := c.read("POST"); r.status != 100 {
			t.Fatalf("got %d; want 100 Continue", r.status)
		}
		c.send(bad)
		assertProblem(t, c.read("POST"), 422)
	})
	t.Run("valid body: one 100, then the upstream's answer", func(t *testing.T) {
		c := g.dial()
		c.send(head("application/json", len(validOrder)))
		if r := c.read("POST"); r.status != 100 {
			t.Fatalf("got %d; want 100 Continue", r.status)
		}
		c.send(validOrder)
		// The gateway met the expectation itself: the upstream is not
		// asked again, and the client gets no second 100.
		r := c.read("POST")
		if r.status != 200 {
			t.Fatalf("got %d; want the upstream's 200: %s", r.status, r.body)
		}
		if e := r.echo(t); e.BodyLen != int64(len(validOrder)) || e.Headers["Expect"] != nil {
			t.Fatalf("the upstream got %d bytes, Expect %q", e.BodyLen, e.Headers["Expect"])
		}
	})
	if up.Requests() != 1 {
		t.Fatalf("the upstream saw %d requests; want 1", up.Requests())
	}
}

// A request the limits refuse is answered on its headers: the schema,
// which needs the body, runs after them.
func TestLimitsAnswerBeforeTheSchemaReadsTheBody(t *testing.T) {
	g, up := contentRoute(t, `{"schema":`+orderSchema+`}`, func(f *policyFixture) {
		f.policy(`{"name":"cap","type":"concurrency-limit","config":{"max":1}}`)
	})
	// Hold the one slot with a request the upstream never answers.
	ctx, cancel := context.WithCancel(context.Background())
	held := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "GET", g.base+"/fault/stall", nil)
		resp, err := g.client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		held <- err
	}()
	defer func() { cancel(); <-held }()
	for deadline := time.Now().Add(5 * time.Second); up.Requests() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the stalling request never reached the upstream")
		}
	}
	c := g.dial()
	c.send(fmt.Sprintf("POST /orders HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(validOrder)))
	r := c.read("POST")
	if doc := assertProblem(t, r, 503); doc["detail"] != "Too many requests in flight on this route." {
		t.Fatalf("503 %q; want the concurrency limit's", doc["detail"])
	}
}

func TestStalledOrBrokenBodyOnSchemaRoute(t *testing.T) {
	g, up := contentRoute(t, `{"schema":`+orderSchema+`}`, nil, func(o *serve.Options) {
		o.ReadHeaderTimeout, o.ReadTimeout = 200*time.Millisecond, 300*time.Millisecond
	})
	c := g.dial()
	c.send("POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"name\":")
	r := c.read("POST")
	doc := assertProblem(t, r, 408)
	if !r.close || doc["detail"] != "The request body was not received in time." {
		t.Fatalf("408 %q, close %v; want the body timeout and Connection: close", doc["detail"], r.close)
	}
	c = g.dial()
	c.send("POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"nam\r\nzz\r\n")
	doc = assertProblem(t, c.read("POST"), 400)
	if doc["detail"] != "The request body is malformed or incomplete." {
		t.Fatalf("400 %q", doc["detail"])
	}
	if up.Requests() != 0 {
		t.Fatalf("the upstream saw %d requests; want none", up.Requests())
	}
}
