package proxy

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/serve"
	"github.com/gatehouse/gatehouse/internal/testupstream"
)

func TestClientChosenForwardingFieldsAreReplacedUnlessFromATrustedProxy(t *testing.T) {
	g := newGateway(t)
	up := testupstream.Start(t)
	g.route(up.URL, "", "")
	e := g.get("/echo", "X-Forwarded-For", "203.0.113.7", "Forwarded", "for=203.0.113.7",
		"X-Real-Ip", "203.0.113.7", "X-Forwarded-Port", "1", "X-Forwarded-Prefix", "/evil").echo(t)
	if got := strings.Join(e.Headers["X-Forwarded-For"], ","); got != "127.0.0.1" {
		t.Errorf("untrusted peer: X-Forwarded-For %q; want only the peer's address", got)
	}
	if got := strings.Join(e.Headers["Forwarded"], ","); !strings.HasPrefix(got, "for=127.0.0.1;") {
		t.Errorf("untrusted peer: Forwarded %q; want only this hop", got)
	}
	for _, k := range []string{"X-Real-Ip", "X-Forwarded-Port", "X-Forwarded-Prefix"} {
		if v, ok := e.Headers[k]; ok {
			t.Errorf("untrusted peer: upstream saw %s %q", k, v)
		}
	}
}

func TestForwardingHeadersAreSetAndHopByHopRemoved(t *testing.T) {
	g := newGateway(t)
	g.handler.opts.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	up := testupstream.Start(t)
	g.route(up.URL, "", "")
	r := g.get("/echo/h", "Host", "shop.example.com:8443",
		"X-Forwarded-For", "203.0.113.7",
		"X-Request-Id", "req-abc",
		"Connection", "keep-alive, X-Secret",
		"X-Secret", "hop-only",
		"Keep-Alive", "timeout=5",
		"Proxy-Authorization", "Basic Zm9vOmJhcg==",
		"Te", "trailers, deflate",
		"X-Kept", "yes")
	e := r.echo(t)
	want := map[string]string{
		"X-Forwarded-For":   "203.0.113.7, 127.0.0.1",
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Host":  "shop.example.com:8443",
		"Forwarded":         `for=127.0.0.1;host="shop.example.com:8443";proto=http`,
		"Via":               "1.1 gatehouse",
		"X-Request-Id":      "req-abc",
		"Te":                "trailers",
		"X-Kept":            "yes",
	}
	for k, v := range want {
		if got := strings.Join(e.Headers[k], ", "); got != v {
			t.Errorf("upstream saw %s %q; want %q", k, got, v)
		}
	}
	for _, k := range []string{"X-Secret", "Keep-Alive", "Proxy-Authorization"} {
		if v, ok := e.Headers[k]; ok {
			t.Errorf("upstream saw hop-by-hop %s %q", k, v)
		}
	}
	if r.header.Get("X-Request-Id") != "req-abc" || r.header.Get("Via") != "1.1 gatehouse" {
		t.Errorf("response: X-Request-Id %q, Via %q", r.header.Get("X-Request-Id"), r.header.Get("Via"))
	}
	// And on the way back: the upstream's own hop-by-hop fields stop here.
	back := g.get("/headers?set=Connection:X-Up-Secret&set=X-Up-Secret:1&set=Keep-Alive:timeout%3D9&set=X-Up-Kept:1")
	if back.header.Get("X-Up-Secret") != "" || back.header.Get("Keep-Alive") != "" || back.header.Get("X-Up-Kept") != "1" {
		t.Errorf("response headers: %v", back.header)
	}
}

func TestGeneratedRequestIDReachesUpstreamAndClient(t *testing.T) {
	g := newGateway(t)
	up := testupstream.Start(t)
	g.route(up.URL, "", "")
	r := g.get("/echo")
	id := r.header.Get("X-Request-Id")
	if len(id) != 32 || strings.Join(r.echo(t).Headers["X-Request-Id"], "") != id {
		t.Fatalf("client got X-Request-Id %q, upstream %v", id, r.echo(t).Headers["X-Request-Id"])
	}
}

func TestPathsAreStrippedAndDotSegmentsResolvedBeforeMatching(t *testing.T) {
	g := newGateway(t)
	up := testupstream.Start(t)
	g.apply(revision(t, 1, []string{`{"id":"s","name":"s","url":"` + up.URL + `/base"}`}, []string{
		`{"id":"api","service_id":"s","paths":["/api/*"],"strip_path":true}`,
		`{"id":"users","service_id":"s","paths":["/users/{id}"]}`,
		`{"id":"mid","service_id":"s","paths":["/mid*"],"strip_path":true}`,
		`{"id":"odata","service_id":"s","paths":["/odata/*"]}`,
	}))
	for _, tc := range []struct{ path, want string }{
		{"/api/echo/x?q=1", "/base/echo/x"},
		{"/api/echo/a%2Fb", "/base/echo/a%2Fb"},
		{"/users/42", "/base/users/42"},
		{"/api/../users/7", "/base/users/7"},
		{"/api/./echo", "/base/echo"},
		{"/odata/Products(1)!*'", "/base/odata/Products(1)!*'"},
		{"/midecho", "/base/echo"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r := g.get(tc.path)
			if r.status != 200 {
				t.Fatalf("got %d; want 200: %s", r.status, r.body)
			}
			if got := strings.SplitN(r.echo(t).RequestURI, "?", 2)[0]; got != tc.want {
				t.Fatalf("upstream got %q; want %q", got, tc.want)
			}
		})
	}
	for _, path := range []string{
		"/../../etc/passwd",
		"/mid../secret",         // the strip would leave "/../secret"
		"/api/..%2F..%2Fsecret", // an upstream decoding first would climb
		"/api/x%5C..%5Csecret",
		"/api/..\\secret",
	} {
		c := g.dial()
		c.send("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n")
		assertProblem(t, c.read("GET"), 400)
	}
	// An encoded slash that hides no dot segment is an ordinary character.
	if r := g.get("/api/echo/a%2Fb"); r.status != 200 {
		t.Fatalf("encoded slash in a segment: got %d", r.status)
	}
}

func TestBrokenClientBodyGets400NotAnEmpty200(t *testing.T) {
	g := newGateway(t)
	up := testupstream.Start(t)
	g.route(up.URL, "", "")
	c := g.dial()
	c.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n")
	assertProblem(t, c.read("POST"), 400)
	// A body cut short by a half-closed connection: net/http takes the
	// client for gone, so the connection is cut; what must never come is
	// a success.
	c = g.dial()
	c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly ten b")
	c.Conn.CloseWrite()
	if resp, err := http.ReadResponse(c.R, nil); err == nil && resp.StatusCode < 400 {
		t.Fatalf("a body cut short got %d", resp.StatusCode)
	}
}

func TestRequestAndResponseBodiesStreamIntact(t *testing.T) {
	g := newGateway(t)
	up := testupstream.Start(t)
	g.route(up.URL, "", `,"max_body_bytes":67108864`)
	// A large chunked upload, generated as it is sent.
	const size = 20 << 20
	pr, pw := io.Pipe()
	go func() {
		chunk := testupstream.Pattern(64 << 10)
		for sent := 0; sent < size; sent += len(chunk) {
			pw.Write(chunk)
		}
		pw.Close()
	}()
	h := sha256.New()
	chunk := testupstream.Pattern(64 << 10)
	for sent := 0; sent < size; sent += len(chunk) {
		h.Write(chunk)
	}
	r := g.do("POST", "/echo", pr)
	e := r.echo(t)
	if e.BodyLen != size || e.BodySHA256 != hex.EncodeToString(h.Sum(nil)) || len(e.TransferEncoding) == 0 {
		t.Fatalf("upstream got %d bytes (sha %s, TE %v); want %d chunked and intact", e.BodyLen, e.BodySHA256, e.TransferEncoding, size)
	}
	// A chunked response.
	r = g.get("/chunked?chunks=50&size=1000")
	if r.status != 200 || len(r.body) != 50*1000 {
		t.Fatalf("chunked response: got %d, %d bytes", r.status, len(r.body))
	}
	r = g.get("/bytes/100000")
	if string(r.body) != string(testupstream.Pattern(100000)) {
		t.Fatal("response body altered")
	}
}

func TestServerSentEventsAreFlushedAsTheyCome(t *testing.T) {
	g := newGateway(t)
	up := testupstream.Start(t)
	g.route(up.URL, "", "")
	resp, err := g.client.Get(g.base + "/sse?events=3&interval=300ms")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	// The first event must arrive while the upstream is still waiting to
	// send the others: read it with the stream still open.
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "id:") && !strings.HasPrefix(line, "data:") && !strings.HasPrefix(line, "event:") {
		t.Fatalf("first line %q, %v", line, err)
	}
	rest, _ := io.ReadAll(br)
	if n := strings.Count(line+string(rest), "data:"); n != 3 {
		t.Fatalf("got %d events; want 3", n)
	}
}

func TestWebSocketUpgradeIsTunnelled(t *testing.T) {
	g := newGateway(t)
	up := testupstream.Start(t)
	g.route(up.URL, "", "")
	ws, resp, err := testupstream.DialWebSocket("ws://"+g.addr+"/ws", nil)
	if err != nil {
		t.Fatalf("dial through the gateway: %v", err)
	}
	defer ws.Close()
	if resp.StatusCode != 101 || resp.Header.Get("Via") == "" {
		t.Fatalf("got %d, Via %q; want 101 through gatehouse", resp.StatusCode, resp.Header.Get("Via"))
	}
	for _, msg := range []string{"hello", strings.Repeat("x", 70000)} {
		if err := ws.WriteText(msg); err != nil {
			t.Fatal(err)
		}
		got, err := ws.ReadText()
		if err != nil || got != msg {
			t.Fatalf("echo: got %d bytes, %v; want %d", len(got), err, len(msg))
		}
	}
}

func TestExpectContinue(t *testing.T) {
	g := newGateway(t)
	up := testupstream.Start(t)
	g.apply(revision(t, 1, []string{`{"id":"s","name":"s","url":"` + up.URL + `"}`}, []string{
		`{"id":"r","service_id":"s","paths":["/continue/*"],"methods":["POST"],"max_body_bytes":100}`,
	}))
	head := func(method, path string, length int) string {
		return fmt.Sprintf("%s %s HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", method, path, length)
	}
	// Refused on its headers: final status at once, no 100, body unread.
	for _, tc := range []struct {
		desc, method, path string
		length, want       int
	}{
		{"no route", "POST", "/nowhere", 10, 404},
		{"too large", "POST", "/continue/accept", 101, 413},
		{"method not allowed", "PUT", "/continue/accept", 10, 405},
		{"unknown method", "BREW", "/continue/accept", 10, 501},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			c := g.dial()
			c.send(head(tc.method, tc.path, tc.length))
			if r := c.read(tc.method); r.status != tc.want {
				t.Fatalf("got %d; want %d and no 100 Continue", r.status, tc.want)
			}
		})
	}
	before := up.Requests()
	t.Run("upstream accepts: its 100 reaches the client, then the answer", func(t *testing.T) {
		c := g.dial()
		c.send(head("POST", "/continue/accept", 5))
		if r := c.read("POST"); r.status != 100 {
			t.Fatalf("got %d; want 100 Continue", r.status)
		}
		c.send("hello")
		if r := c.read("POST"); r.status != 201 {
			t.Fatalf("got %d; want the upstream's 201: %s", r.status, r.body)
		}
	})
	t.Run("upstream rejects: its status reaches the client, no 100", func(t *testing.T) {
		c := g.dial()
		c.send(head("POST", "/continue/reject", 5))
		if r := c.read("POST"); r.status != 417 {
			t.Fatalf("got %d; want the upstream's 417 and no 100", r.status)
		}
	})
	t.Run("body over the limit after the upstream's 100: 413, not a rewritten error", func(t *testing.T) {
		c := g.dial()
		c.send("POST /continue/accept HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n")
		if r := c.read("POST"); r.status != 100 {
			t.Fatalf("got %d; want 100 Continue", r.status)
		}
		c.send(fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", 200, strings.Repeat("x", 200)))
		assertProblem(t, c.read("POST"), 413)
	})
	if up.Requests()-before != 3 {
		t.Fatalf("upstream got %d requests; want the 3 that passed the gateway's checks", up.Requests()-before)
	}
}

func TestIdempotentRequestsRetryConnectionFailuresOnAnotherTarget(t *testing.T) {
	g := newGateway(t)
	up := testupstream.Start(t)
	dead := "http://" + closedPort(t)
	g.apply(revision(t, 1, []string{`{"id":"s","name":"s","retries":1,"targets":[{"url":"` + dead + `","weight":1},{"url":"` + up.URL + `","weight":1}]}`},
		[]string{`{"id":"r","service_id":"s","paths":["/*"]}`}))
	for i := range 4 {
		if r := g.get("/echo"); r.status != 200 {
			t.Fatalf("GET %d: got %d; want 200 via the live target", i, r.status)
		}
	}
	// A POST with a streamed body is not replayable: it is not retried.
	g.apply(revision(t, 2, []string{`{"id":"s","name":"s","retries":1,"targets":[{"url":"` + dead + `","weight":1},{"url":"` + up.URL + `","weight":1}]}`},
		[]string{`{"id":"r","service_id":"s","paths":["/*"]}`}))
	codes := map[int]int{}
	for range 4 {
		codes[g.do("POST", "/echo", struct{ io.Reader }{strings.NewReader("x")}).status]++
	}
	if codes[502] == 0 || codes[200] == 0 {
		t.Fatalf("POSTs: got %v; want some 502 from the dead target, unretried, and some 200", codes)
	}
}

func TestDeployUnderLoadFailsNoRequest(t *testing.T) {
	g := newGateway(t)
	a := testupstream.Start(t, testupstream.WithName("a"))
	b := testupstream.Start(t, testupstream.WithName("b"))
	rev := func(n int64, url string) {
		g.apply(revision(t, n, []string{`{"id":"s","name":"s","url":"` + url + `"}`}, []string{`{"id":"r","service_id":"s","paths":["/*"]}`}))
	}
	rev(1, a.URL)
	var failures, total atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := g.client.Get(g.base + "/bytes/512")
				total.Add(1)
				if err != nil {
					failures.Add(1)
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || len(body) != 512 {
					failures.Add(1)
				}
			}
		}()
	}
	for i := int64(2); i < 40; i++ {
		if i%2 == 0 {
			rev(i, b.URL)
		} else {
			rev(i, a.URL)
		}
		time.Sleep(5 * time.Millisecond) // let requests run on each revision
	}
	close(stop)
	wg.Wait()
	if failures.Load() != 0 || a.Requests() == 0 || b.Requests() == 0 {
		t.Fatalf("%d of %d requests failed (a served %d, b %d); want none failed, both used",
			failures.Load(), total.Load(), a.Requests(), b.Requests())
	}
}

func TestHTTP2OverTLSAndH2C(t *testing.T) {
	up := testupstream.Start(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSigned(t, certFile, keyFile)

	t.Run("TLS: headers over the limit still get a problem", func(t *testing.T) {
		g := newGateway(t, func(o *serve.Options) { o.TLSCert, o.TLSKey, o.MaxHeaderBytes = certFile, keyFile, 4096 })
		g.route(up.URL, "", "")
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest("GET", "https://"+g.addr+"/echo", nil)
		req.Header.Set("X-Big", strings.Repeat("b", 8000))
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assertProblem(t, &response{status: resp.StatusCode, header: resp.Header, body: body}, 431)
	})
	t.Run("TLS with ALPN h2", func(t *testing.T) {
		g := newGateway(t, func(o *serve.Options) { o.TLSCert, o.TLSKey = certFile, keyFile })
		g.route(up.URL, "", "")
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get("https://" + g.addr + "/echo")
		if err != nil {
			t.Fatal(err)
		}
		e, err := testupstream.DecodeEcho(resp)
		if err != nil || resp.Proto != "HTTP/2.0" || !strings.Contains(strings.Join(e.Headers["X-Forwarded-Proto"], ""), "https") {
			t.Fatalf("got %s, %v, forwarded proto %v; want HTTP/2.0 and https", resp.Proto, err, e.Headers["X-Forwarded-Proto"])
		}
		if via := strings.Join(e.Headers["Via"], ""); via != "2 gatehouse" {
			t.Fatalf("upstream Via %q; want 2 gatehouse", via)
		}
	})
	t.Run("h2c prior knowledge", func(t *testing.T) {
		g := newGateway(t, func(o *serve.Options) { o.H2C = true })
		g.route(up.URL, "", "")
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		tr := &http.Transport{Protocols: &p}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get(g.base + "/echo")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Proto != "HTTP/2.0" || resp.StatusCode != 200 {
			t.Fatalf("got %s %d; want HTTP/2.0 200", resp.Proto, resp.StatusCode)
		}
		// HTTP/1.1 still works on the same listener.
		if r := g.get("/echo"); r.status != 200 {
			t.Fatalf("HTTP/1.1 beside h2c: got %d", r.status)
		}
	})
}

// writeSelfSigned writes a certificate for 127.0.0.1 and its key as PEM.
func writeSelfSigned(t *testing.T, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "gatehouse test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
}
