package proxy

import (
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

// Each test proves a data-plane row of ../shared/CONTRACT.md with real
// sockets, against a real upstream process that misbehaves on purpose.

func TestNoRouteReturns404Problem(t *testing.T) {
	g := newGateway(t)
	assertProblem(t, g.get("/anything"), 404) // nothing deployed
	up := testupstream.Start(t)
	g.apply(revision(t, 1, []string{`{"id":"s","name":"s","url":"` + up.URL + `"}`},
		[]string{`{"id":"r","service_id":"s","hosts":["api.example.com"],"paths":["/v1/*"]}`}))
	for _, tc := range []struct{ desc, host, path string }{
		{"other path", "api.example.com", "/v2/x"},
		{"other host", "www.example.com", "/v1/x"},
		{"prefix without its slash", "api.example.com", "/v1"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			assertProblem(t, g.get(tc.path, "Host", tc.host), 404)
		})
	}
	if up.Requests() != 0 {
		t.Fatalf("upstream got %d requests; want none", up.Requests())
	}
}

func TestProblemIsXMLWhenAcceptPrefersXML(t *testing.T) {
	g := newGateway(t)
	r := g.get("/nothing", "Accept", "application/xml, application/json;q=0.5")
	if r.status != 404 || r.header.Get("Content-Type") != "application/problem+xml" {
		t.Fatalf("got %d %q; want 404 application/problem+xml", r.status, r.header.Get("Content-Type"))
	}
	var p struct {
		XMLName   xml.Name
		Status    int    `xml:"status"`
		Type      string `xml:"type"`
		RequestID string `xml:"request_id"`
	}
	if err := xml.Unmarshal(r.body, &p); err != nil || p.XMLName.Space != "urn:ietf:rfc:7807" || p.Status != 404 || p.RequestID == "" {
		t.Fatalf("XML problem: %+v, %v: %s", p, err, r.body)
	}
}

func TestMethodNotMatchingReturns405WithAllowFromRoutesSharingThePath(t *testing.T) {
	g := newGateway(t)
	up := testupstream.Start(t)
	g.apply(revision(t, 1, []string{`{"id":"s","name":"s","url":"` + up.URL + `"}`}, []string{
		`{"id":"read","service_id":"s","paths":["/items/{id}"],"methods":["GET"]}`,
		`{"id":"write","service_id":"s","paths":["/items/{id}"],"methods":["PUT","DELETE"]}`,
		`{"id":"other","service_id":"s","paths":["/other"],"methods":["POST"]}`,
	}))
	r := g.do("PATCH", "/items/7", strings.NewReader("{}"))
	assertProblem(t, r, 405)
	if got := r.header.Get("Allow"); got != "DELETE, GET, HEAD, PUT" {
		t.Fatalf("got Allow %q; want DELETE, GET, HEAD, PUT", got)
	}
	if up.Requests() != 0 {
		t.Fatalf("upstream contacted %d times", up.Requests())
	}
}

func TestUnknownMethodReturns501(t *testing.T) {
	g := newGateway(t)
	up := testupstream.Start(t)
	g.route(up.URL, "", "")
	assertProblem(t, g.do("BREW", "/pot", nil), 501)
	if up.Requests() != 0 {
		t.Fatalf("upstream contacted %d times", up.Requests())
	}
}

func TestSlowClientGets408(t *testing.T) {
	g := newGateway(t, func(o *serve.Options) {
		o.ReadHeaderTimeout, o.ReadTimeout = 200*time.Millisecond, 400*time.Millisecond
	})
	up := testupstream.Start(t)
	g.route(up.URL, "", "")
	c := g.dial()
	c.send("GET /echo HTTP/1.1\r\nHost: x\r\nX-Half")
	r := c.read("GET")
	assertProblem(t, r, 408)
	if !r.close {
		t.Fatal("408 without Connection: close")
	}
	// Half a body: the upstream has the request, the client stalls.
	c = g.dial()
	c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhalf")
	assertProblem(t, c.read("POST"), 408)
}

func TestBodyOverRouteLimitReturns413(t *testing.T) {
	g := newGateway(t)
	up := testupstream.Start(t)
	g.route(up.URL, "", `,"max_body_bytes":1000`)
	big := strings.Repeat("x", 1001)
	assertProblem(t, g.do("POST", "/echo", strings.NewReader(big)), 413)
	if up.Requests() != 0 {
		t.Fatalf("declared length over the limit reached the upstream %d times", up.Requests())
	}
	// Chunked: the limit is found while streaming.
	r := g.do("POST", "/echo", struct{ *strings.Reader }{strings.NewReader(big)})
	assertProblem(t, r, 413)
	// Oversized uploads are the client's failure: they never count
	// against the upstream's health, however many come.
	for range 4 {
		assertProblem(t, g.do("POST", "/echo", struct{ *strings.Reader }{strings.NewReader(big)}), 413)
	}
	// At the limit is fine.
	if r := g.do("POST", "/echo", strings.NewReader(big[:1000])); r.status != 200 || r.echo(t).BodyLen != 1000 {
		t.Fatalf("at the limit: got %d %s", r.status, r.body)
	}
}

func TestHeadersOverLimitReturn431(t *testing.T) {
	g := newGateway(t, func(o *serve.Options) { o.MaxHeaderBytes = 4096 })
	up := testupstream.Start(t)
	g.route(up.URL, "", "")
	assertProblem(t, g.get("/echo", "X-Big", strings.Repeat("b", 5000)), 431)
	c := g.dial()
	c.send("GET /echo HTTP/1.1\r\nHost: x\r\nX-Huge: " + strings.Repeat("h", 64<<10) + "\r\n\r\n")
	assertProblem(t, c.read("GET"), 431)
}

func TestUpstreamFailuresReturn502(t *testing.T) {
	up := testupstream.Start(t)
	for _, tc := range []struct{ desc, url, path string }{
		{"connection refused", "http://" + closedPort(t), "/echo"},
		{"connection reset", up.URL, "/fault/reset"},
		{"not HTTP", up.URL, "/fault/garbage"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			g := newGateway(t)
			g.route(tc.url, `,"retries":0`, "")
			p := assertProblem(t, g.get(tc.path), 502)
			if strings.Contains(fmt.Sprint(p["detail"]), "127.0.0.1") {
				t.Fatalf("502 detail names an internal address: %v", p["detail"])
			}
		})
	}
}

func TestUpstreamFailingMidResponseCutsTheClientConnection(t *testing.T) {
	g := newGateway(t)
	up := testupstream.Start(t)
	g.route(up.URL, "", "")
	resp, err := g.client.Get(g.base + "/fault/reset-mid-response")
	if err != nil {
		return // cut before the status line: the client knows it failed
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("got %d; want the upstream's 200 already under way, or no response", resp.StatusCode)
	}
	if b, err := io.ReadAll(resp.Body); err == nil {
		t.Fatalf("a truncated upstream body (%d of 1000 bytes) reached the client as a complete one", len(b))
	}
}

func TestNoHealthyTargetReturns503WithRetryAfter(t *testing.T) {
	g := newGateway(t)
	dead := "http://" + closedPort(t)
	// Active checks take the only target down (passive health never
	// ejects the last targets: TestFailingRequestsDoNotTakeTheServiceOffline);
	// then the gateway stops trying it and says when to come back.
	g.route(dead, `,"retries":0,"health_check":{"path":"/health","interval_ms":100,"timeout_ms":50,"unhealthy_threshold":1,"healthy_threshold":1}`, "")
	var last *response
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		last = g.get("/echo")
		if last.status == 503 {
			break
		}
		assertProblem(t, last, 502)
	}
	assertProblem(t, last, 503)
	if ra := last.header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("got Retry-After %q; want seconds until the target is retried", ra)
	}
}

func TestUpstreamNotConnectedInTimeReturns504(t *testing.T) {
	addr := unconnectableAddr(t)
	g := newGateway(t)
	g.route("http://"+addr, `,"retries":0,"connect_timeout_ms":200`, "")
	p := assertProblem(t, g.get("/"), 504)
	if d, _ := p["detail"].(string); !strings.Contains(d, "within 200ms") {
		t.Errorf("detail %q; want it to name the connect timeout", d)
	}
}

func TestUpstreamOverReadTimeoutReturns504(t *testing.T) {
	g := newGateway(t)
	up := testupstream.Start(t)
	// Margins wide enough for a loaded machine: the fast case answers at
	// once, the slow one takes four times the timeout.
	g.route(up.URL, `,"read_timeout_ms":500`, "")
	assertProblem(t, g.get("/fault/stall"), 504)
	assertProblem(t, g.get("/fault/slow?delay=2s"), 504)
	if r := g.get("/fault/slow?delay=0s"); r.status != 200 {
		t.Fatalf("a fast enough upstream: got %d", r.status)
	}
}

func TestGatehouseFailureReturns500AndConnectionStaysUsable(t *testing.T) {
	g := newGateway(t)
	up := testupstream.Start(t)
	g.route(up.URL, "", "")
	// Break the applied state the way only a bug could: a route whose
	// service has no pool.
	delete(g.handler.state.Load().pools, "s")
	c := g.dial()
	c.send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
	r := c.read("GET")
	p := assertProblem(t, r, 500)
	if strings.Contains(string(r.body), "pool") || p["detail"] != "An internal error occurred." {
		t.Fatalf("500 leaks internals: %s", r.body)
	}
	c.send("GET /nothing-here HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := c.read("GET"); r.status != 500 {
		t.Fatalf("second request on the same connection: got %d", r.status)
	}
}

func TestUpstreamResponsesPassThroughUntouched(t *testing.T) {
	g := newGateway(t)
	up := testupstream.Start(t)
	g.route(up.URL, "", "")
	for _, code := range []int{200, 201, 204, 304, 400, 401, 404, 409, 418, 500, 502, 503} {
		r := g.get(fmt.Sprintf("/status/%d?set=X-Upstream:yes", code))
		if r.status != code || r.header.Get("X-Upstream") != "yes" {
			t.Fatalf("upstream %d: got %d, X-Upstream %q", code, r.status, r.header.Get("X-Upstream"))
		}
		if ct := r.header.Get("Content-Type"); strings.HasPrefix(ct, "application/problem") {
			t.Fatalf("upstream %d was replaced by a gateway problem: %s", code, r.body)
		}
	}
}

// nosniff means the client must not guess a type: gatehouse must not
// guess one for it either (net/http sniffs one for a body written without
// a type), on HTTP/1.1 or HTTP/2.
func TestResponseWithoutContentTypeGetsNone(t *testing.T) {
	up := testupstream.Canned(t, []byte("HTTP/1.1 200 OK\r\nX-Content-Type-Options: nosniff\r\nContent-Length: 26\r\n\r\n<html><script>1</script>x"+"\n"))
	g := newGateway(t, func(o *serve.Options) { o.H2C = true })
	g.route(up, "", "")
	var h2c http.Protocols
	h2c.SetUnencryptedHTTP2(true)
	for _, tc := range []struct {
		proto string
		tr    *http.Transport
	}{
		{"HTTP/1.1", &http.Transport{}},
		{"HTTP/2.0", &http.Transport{Protocols: &h2c}},
	} {
		t.Run(tc.proto, func(t *testing.T) {
			defer tc.tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tc.tr}).Get(g.base + "/page")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.Proto != tc.proto || resp.StatusCode != 200 || len(body) != 26 {
				t.Fatalf("got %s %d, %d bytes; want %s 200 with the upstream's 26", resp.Proto, resp.StatusCode, len(body), tc.proto)
			}
			if ct, ok := resp.Header["Content-Type"]; ok {
				t.Fatalf("Content-Type %q; the upstream sent none", ct)
			}
		})
	}
}

// net/http cancels the request's context from inside the body read that
// hit the read deadline, before that read returns: the upstream exchange
// may fail on the canceled context first. The stall must still be told
// apart from a client gone away, every time: 408, not a cut connection.
func TestStalledBodyGets408EvenWhenTheExchangeSeesTheCancelFirst(t *testing.T) {
	// The read timeout runs from the connection's accept, headers
	// included: short enough to keep the test quick, long enough that a
	// loaded machine still reads all 100 heads in time (a head not read
	// in time is closed unanswered, which is not what is tested here).
	g := newGateway(t, func(o *serve.Options) {
		o.ReadHeaderTimeout, o.ReadTimeout = time.Second, 1500*time.Millisecond
	})
	up := testupstream.Start(t)
	g.route(up.URL, "", "")
	const n = 100
	conns := make([]rawConn, n)
	for i := range conns {
		conns[i] = g.dial()
		conns[i].send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhalf")
	}
	for _, c := range conns {
		assertProblem(t, c.read("POST"), 408)
	}
}
