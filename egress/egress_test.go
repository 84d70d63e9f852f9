package egress

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/serve"
	"github.com/gatehouse/gatehouse/internal/testupstream"
)

const proxyAuthenticate = `Basic realm="gatehouse egress", charset="UTF-8"`

func TestHTTPRequestThroughProxyReachesAllowedDestination(t *testing.T) {
	t.Parallel()
	up := testupstream.Start(t)
	e := newEgress(t, Options{})
	e.deploy(allow(up.Addr, ""))
	r := get(t, e.client("alice", alicePassword, nil), up.URL+"/echo/x?q=1")
	if r.status != http.StatusOK {
		t.Fatalf("got status %d; want 200; body %s", r.status, r.body)
	}
	var echo testupstream.Echo
	if err := json.Unmarshal(r.body, &echo); err != nil {
		t.Fatalf("not an echo: %s", r.body)
	}
	// The destination gets an ordinary origin-form request.
	if echo.RequestURI != "/echo/x?q=1" || echo.Host != up.Addr {
		t.Fatalf("destination saw %q for host %q; want /echo/x?q=1 for %s", echo.RequestURI, echo.Host, up.Addr)
	}
	if via := r.header.Get("Via"); via != "1.1 gatehouse" {
		t.Fatalf("response Via %q; want 1.1 gatehouse", via)
	}
	if via := echo.Headers["Via"]; len(via) != 1 || via[0] != "1.1 gatehouse" {
		t.Fatalf("request Via %q; want 1.1 gatehouse", via)
	}
}

func TestHTTPSThroughConnectTunnelReachesAllowedDestination(t *testing.T) {
	t.Parallel()
	up := testupstream.Start(t, testupstream.WithTLS())
	e := newEgress(t, Options{})
	e.deploy(allow(up.Addr, ""))
	c := e.client("alice", alicePassword, up.ClientTLSConfig())
	// A body both ways proves the tunnel carries bytes in each direction.
	body := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	resp, err := c.Post(up.URL+"/echo", "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	echo, err := testupstream.DecodeEcho(resp)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !echo.TLS || echo.BodyLen != int64(len(body)) {
		t.Fatalf("got status %d, TLS %v, %d body bytes; want 200 over TLS with %d", resp.StatusCode, echo.TLS, echo.BodyLen, len(body))
	}
	if _, ok := echo.Headers["Proxy-Authorization"]; ok {
		t.Fatal("the destination saw Proxy-Authorization inside the tunnel")
	}
}

func TestMissingProxyCredentialsReturns407WithProxyAuthenticate(t *testing.T) {
	t.Parallel()
	up := testupstream.Start(t)
	e := newEgress(t, Options{})
	e.deploy(allow(up.Addr, ""))
	for _, tc := range []struct{ desc, head string }{
		{"absolute-form without credentials", "GET " + up.URL + "/echo HTTP/1.1\r\nHost: " + up.Addr + "\r\n"},
		{"CONNECT without credentials", connectHead(up.Addr, "", "")},
		{"another scheme", "GET " + up.URL + "/echo HTTP/1.1\r\nHost: " + up.Addr + "\r\nProxy-Authorization: Bearer abc\r\n"},
		{"Basic that is not base64", connectHead(up.Addr, "", "") + "Proxy-Authorization: Basic !!!\r\n"},
		{"Basic without a colon", connectHead(up.Addr, "", "") + "Proxy-Authorization: Basic YWxpY2U=\r\n"},
		{"two credentials", connectHead(up.Addr, "alice", alicePassword) + "Proxy-Authorization: " + basic("alice", alicePassword) + "\r\n"},
		// The answer comes instead of 100 Continue: the body is never read.
		{"a body waiting for 100 Continue", "POST " + up.URL + "/echo HTTP/1.1\r\nHost: " + up.Addr + "\r\nExpect: 100-continue\r\nContent-Length: 5\r\n"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, r := e.raw(tc.head)
			assertProblem(t, r, http.StatusProxyAuthRequired)
			if got := r.header.Get("Proxy-Authenticate"); got != proxyAuthenticate {
				t.Fatalf("Proxy-Authenticate %q; want %q", got, proxyAuthenticate)
			}
		})
	}
	// The Go client, told no credentials, gets the 407 as a response.
	r := get(t, e.client("", "", nil), up.URL+"/echo")
	assertProblem(t, r, http.StatusProxyAuthRequired)
	if n := up.Connections(); n != 0 {
		t.Fatalf("the destination saw %d connections; want 0", n)
	}
}

func TestWrongPasswordReturns407(t *testing.T) {
	t.Parallel()
	up := testupstream.Start(t)
	e := newEgress(t, Options{})
	e.deploy(allow(up.Addr, ""))
	for _, tc := range []struct{ desc, user, password string }{
		{"wrong password", "alice", bobPassword},
		{"unknown user", "carol", alicePassword},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			r := get(t, e.client(tc.user, tc.password, nil), up.URL+"/echo")
			assertProblem(t, r, http.StatusProxyAuthRequired)
			if got := r.header.Get("Proxy-Authenticate"); got != proxyAuthenticate {
				t.Fatalf("Proxy-Authenticate %q; want %q", got, proxyAuthenticate)
			}
			_, r = e.raw(connectHead(up.Addr, tc.user, tc.password))
			assertProblem(t, r, http.StatusProxyAuthRequired)
		})
	}
	if n := up.Connections(); n != 0 {
		t.Fatalf("the destination saw %d connections; want 0", n)
	}
}

func TestConsumerNotAllowedReturns403(t *testing.T) {
	t.Parallel()
	up := testupstream.Start(t)
	e := newEgress(t, Options{})
	for _, tc := range []struct {
		desc, extra string
	}{
		{"by name", `,"consumers":["alice"]`},
		{"by id", `,"consumers":["c-alice"]`},
		{"by group", `,"groups":["ops"]`},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			e.deploy(allow(up.Addr, tc.extra))
			r := get(t, e.client("bob", bobPassword, nil), up.URL+"/echo")
			doc := assertProblem(t, r, http.StatusForbidden)
			if !strings.Contains(doc["detail"].(string), `"bob"`) {
				t.Fatalf("detail %q does not name the consumer", doc["detail"])
			}
			_, r = e.raw(connectHead(up.Addr, "bob", bobPassword))
			assertProblem(t, r, http.StatusForbidden)
			if n := up.Connections(); n != 0 {
				t.Fatalf("the destination saw %d connections; want 0", n)
			}
			if r := get(t, e.client("alice", alicePassword, nil), up.URL+"/echo"); r.status != http.StatusOK {
				t.Fatalf("alice: got status %d; want 200; body %s", r.status, r.body)
			}
			up.Reset()
		})
	}
}

func TestPolicyOpensItsDestinationsOnlyToItsConsumers(t *testing.T) {
	t.Parallel()
	forAlice := testupstream.Start(t)
	forBob := testupstream.Start(t)
	e := newEgress(t, Options{})
	e.deploy(allow(forAlice.Addr, `,"consumers":["alice"]`), allow(forBob.Addr, `,"consumers":["bob"]`))
	bob := e.client("bob", bobPassword, nil)
	if r := get(t, bob, forBob.URL+"/echo"); r.status != http.StatusOK {
		t.Fatalf("bob to his destination: got status %d; want 200; body %s", r.status, r.body)
	}
	doc := assertProblem(t, get(t, bob, forAlice.URL+"/echo"), http.StatusForbidden)
	if !strings.Contains(doc["detail"].(string), forAlice.Addr) {
		t.Fatalf("detail %q does not name the destination %s", doc["detail"], forAlice.Addr)
	}
}

func TestDestinationOutsideAllowListReturns403(t *testing.T) {
	t.Parallel()
	up := testupstream.Start(t)
	other := testupstream.Start(t) // reachable only through a wildcard, which never matches an address
	e := newEgress(t, Options{}, resolving(map[string]string{"localhost": "127.0.0.1"}))
	_, upPort, _ := net.SplitHostPort(up.Addr)
	_, otherPort, _ := net.SplitHostPort(other.Addr)
	e.deploy(allow(up.Addr, ""), `{"allow":[{"host":"*.0.0.1","ports":[`+otherPort+`]}]}`)
	for _, tc := range []struct{ desc, target string }{
		{"a port no rule lists", closedPort(t)},
		{"a name for an allowed address", "localhost:" + upPort},
		{"an address only a wildcard would match", other.Addr},
		{"an IPv6 literal", "[::1]:" + upPort},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			r := get(t, e.client("alice", alicePassword, nil), "http://"+tc.target+"/echo")
			doc := assertProblem(t, r, http.StatusForbidden)
			if !strings.Contains(doc["detail"].(string), tc.target) {
				t.Fatalf("detail %q does not name the destination %s", doc["detail"], tc.target)
			}
			_, r = e.raw(connectHead(tc.target, "alice", alicePassword))
			assertProblem(t, r, http.StatusForbidden)
		})
	}
	if n := up.Connections() + other.Connections(); n != 0 {
		t.Fatalf("destinations outside the allow list saw %d connections; want 0", n)
	}
}

func TestNoEgressPolicyForbidsEveryDestinationAfterCredentials(t *testing.T) {
	t.Parallel()
	up := testupstream.Start(t)
	e := newEgress(t, Options{})
	e.deploy()
	doc := assertProblem(t, get(t, e.client("alice", alicePassword, nil), up.URL+"/echo"), http.StatusForbidden)
	if doc["detail"] != "No egress is allowed." {
		t.Fatalf("detail %q; want No egress is allowed.", doc["detail"])
	}
	// Credentials come first: without them it is still a 407.
	assertProblem(t, get(t, e.client("", "", nil), up.URL+"/echo"), http.StatusProxyAuthRequired)
}

func TestNoRevisionReturns503(t *testing.T) {
	t.Parallel()
	up := testupstream.Start(t)
	e := newEgress(t, Options{})
	r := get(t, e.client("alice", alicePassword, nil), up.URL+"/echo")
	assertProblem(t, r, http.StatusServiceUnavailable)
	if r.header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
}

func TestNewRevisionAppliesToNextRequest(t *testing.T) {
	t.Parallel()
	up := testupstream.Start(t)
	e := newEgress(t, Options{})
	c := e.client("alice", alicePassword, nil)
	e.deploy(allow(up.Addr, ""))
	if r := get(t, c, up.URL+"/echo"); r.status != http.StatusOK {
		t.Fatalf("got status %d; want 200; body %s", r.status, r.body)
	}
	e.deploy(`{"allow":[{"host":"example.com"}]}`)
	assertProblem(t, get(t, c, up.URL+"/echo"), http.StatusForbidden)
}

func TestRequestTargetErrorsReturn400BeforeCredentials(t *testing.T) {
	t.Parallel()
	e := newEgress(t, Options{})
	e.deploy(`{"allow":[{"host":"example.com"}]}`)
	for _, tc := range []struct {
		desc, head string
		want       int
		detail     string
	}{
		{"origin-form", "GET /echo HTTP/1.1\r\nHost: example.com\r\n", 400, "This is a forward proxy: send absolute-form requests or CONNECT."},
		{"https absolute-form", "GET https://example.com/ HTTP/1.1\r\nHost: example.com\r\n", 400, "CONNECT tunnel"},
		{"another scheme", "GET ftp://example.com/ HTTP/1.1\r\nHost: example.com\r\n", 400, "Only http://"},
		{"userinfo", "GET http://u:p@example.com/ HTTP/1.1\r\nHost: example.com\r\n", 400, "userinfo"},
		{"port out of range", "GET http://example.com:70000/ HTTP/1.1\r\nHost: example.com\r\n", 400, "port"},
		{"CONNECT without a port", "CONNECT example.com HTTP/1.1\r\nHost: example.com\r\n", 400, "host:port"},
		{"CONNECT to port 0", "CONNECT example.com:0 HTTP/1.1\r\nHost: example.com:0\r\n", 400, "port"},
		{"CONNECT to a path", "CONNECT /x HTTP/1.1\r\nHost: example.com:443\r\n", 400, "host:port"},
		{"unknown method", "BREW http://example.com/ HTTP/1.1\r\nHost: example.com\r\n", 501, "BREW"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, r := e.raw(tc.head)
			doc := assertProblem(t, r, tc.want)
			if !strings.Contains(doc["detail"].(string), tc.detail) {
				t.Fatalf("detail %q; want it to contain %q", doc["detail"], tc.detail)
			}
		})
	}
}

func TestUnreachableDestinationReturns502(t *testing.T) {
	t.Parallel()
	closed := closedPort(t)
	_, port, _ := net.SplitHostPort(closed)
	e := newEgress(t, Options{}, resolving(map[string]string{}))
	e.deploy(allow(closed, ""), `{"allow":[{"host":"nowhere.test","ports":[`+port+`]}]}`)
	for _, target := range []string{closed, "nowhere.test:" + port} {
		t.Run(target, func(t *testing.T) {
			r := get(t, e.client("alice", alicePassword, nil), "http://"+target+"/")
			assertProblem(t, r, http.StatusBadGateway)
			_, r = e.raw(connectHead(target, "alice", alicePassword))
			assertProblem(t, r, http.StatusBadGateway)
		})
	}
}

func TestSlowDestinationReturns504(t *testing.T) {
	t.Parallel()
	up := testupstream.Start(t)
	_, port, _ := net.SplitHostPort(up.Addr)
	e := newEgress(t, Options{ResponseHeaderTimeout: 100 * time.Millisecond, DialTimeout: 100 * time.Millisecond},
		resolving(map[string]string{"slow.test": "stall"}))
	e.deploy(allow(up.Addr, ""), `{"allow":[{"host":"slow.test","ports":[`+port+`]}]}`)
	c := e.client("alice", alicePassword, nil)

	// No response head in time.
	doc := assertProblem(t, get(t, c, up.URL+"/fault/stall"), http.StatusGatewayTimeout)
	if !strings.Contains(doc["detail"].(string), "did not answer within 100ms") {
		t.Fatalf("detail %q; want it to name the response timeout", doc["detail"])
	}
	// Not connected in time: the dial timeout covers resolving the name.
	doc = assertProblem(t, get(t, c, "http://slow.test:"+port+"/echo"), http.StatusGatewayTimeout)
	if !strings.Contains(doc["detail"].(string), "could not be connected to within 100ms") {
		t.Fatalf("detail %q; want it to name the dial timeout", doc["detail"])
	}
	_, r := e.raw(connectHead("slow.test:"+port, "alice", alicePassword))
	assertProblem(t, r, http.StatusGatewayTimeout)
}

func TestProxyAuthorizationIsNotForwarded(t *testing.T) {
	t.Parallel()
	up := testupstream.Start(t)
	e := newEgress(t, Options{})
	e.deploy(allow(up.Addr, ""))
	_, r := e.raw("GET " + up.URL + "/echo HTTP/1.1\r\nHost: " + up.Addr + "\r\n" +
		"Proxy-Authorization: " + basic("alice", alicePassword) + "\r\n" +
		"Proxy-Connection: keep-alive\r\nConnection: X-Hop\r\nX-Hop: 1\r\nX-End: 2\r\n")
	if r.status != http.StatusOK {
		t.Fatalf("got status %d; want 200; body %s", r.status, r.body)
	}
	var echo testupstream.Echo
	if err := json.Unmarshal(r.body, &echo); err != nil {
		t.Fatalf("not an echo: %s", r.body)
	}
	// Nor does it learn the client's address from forwarding fields.
	for _, k := range []string{"Proxy-Authorization", "Proxy-Connection", "X-Hop", "X-Forwarded-For", "Forwarded"} {
		if v, ok := echo.Headers[k]; ok {
			t.Errorf("the destination saw %s: %q", k, v)
		}
	}
	if v := echo.Headers["X-End"]; len(v) != 1 || v[0] != "2" {
		t.Errorf("the destination saw X-End %q; want the end-to-end field passed on", v)
	}
}

// net/http's ReadResponse deletes a Connection field that says close, and
// with it the names listed beside it: the fields those name are hop-by-hop
// all the same and must not reach the client.
func TestFieldsADestinationsConnectionCloseNamesAreNotPassedOn(t *testing.T) {
	t.Parallel()
	dst := strings.TrimPrefix(testupstream.Canned(t, []byte("HTTP/1.1 200 OK\r\nConnection: close, X-Secret\r\n"+
		"X-Secret: hop-only\r\nX-End: kept\r\nContent-Length: 2\r\n\r\nok")), "http://")
	e := newEgress(t, Options{})
	e.deploy(allow(dst, ""))
	r := get(t, e.client("alice", alicePassword, nil), "http://"+dst+"/")
	if r.status != http.StatusOK || string(r.body) != "ok" {
		t.Fatalf("got %d %q; want 200 ok", r.status, r.body)
	}
	if v, ok := r.header["X-Secret"]; ok {
		t.Errorf("the client saw X-Secret %q, which the destination's Connection named", v)
	}
	if v := r.header.Get("X-End"); v != "kept" {
		t.Errorf("the client saw X-End %q; want the end-to-end field passed on", v)
	}
}

// In absolute form the request target names the destination; a Host
// field saying otherwise must not reach another virtual host.
func TestHostFieldCannotRedirectAbsoluteFormRequest(t *testing.T) {
	t.Parallel()
	up := testupstream.Start(t)
	e := newEgress(t, Options{})
	e.deploy(allow(up.Addr, ""))
	_, r := e.raw("GET " + up.URL + "/echo HTTP/1.1\r\nHost: forbidden.example\r\n" +
		"Proxy-Authorization: " + basic("alice", alicePassword) + "\r\n")
	if r.status != http.StatusOK {
		t.Fatalf("got status %d; want 200; body %s", r.status, r.body)
	}
	var echo testupstream.Echo
	if err := json.Unmarshal(r.body, &echo); err != nil {
		t.Fatalf("not an echo: %s", r.body)
	}
	if echo.Host != up.Addr {
		t.Fatalf("the destination saw Host %q; want %q", echo.Host, up.Addr)
	}
}

// A wildcard rule, or a name that resolves to this machine, must not
// open the gateway's own or loopback addresses; a rule naming the host
// does.
func TestWildcardRuleDoesNotReachLoopback(t *testing.T) {
	t.Parallel()
	up := testupstream.Start(t)
	_, port, _ := net.SplitHostPort(up.Addr)
	target := "svc.internal.test:" + port
	e := newEgress(t, Options{}, resolving(map[string]string{"svc.internal.test": "127.0.0.1"}))
	e.deploy(`{"allow":[{"host":"*.internal.test","ports":[` + port + `]}]}`)
	c := e.client("alice", alicePassword, nil)
	assertProblem(t, get(t, c, "http://"+target+"/echo"), http.StatusForbidden)
	_, r := e.raw(connectHead(target, "alice", alicePassword))
	assertProblem(t, r, http.StatusForbidden)
	if n := up.Connections(); n != 0 {
		t.Fatalf("loopback saw %d connections through a wildcard rule; want 0", n)
	}

	e.deploy(`{"allow":[{"host":"svc.internal.test","ports":[` + port + `]}]}`)
	if r := get(t, c, "http://"+target+"/echo"); r.status != http.StatusOK {
		t.Fatalf("with the host named: got status %d; want 200; body %s", r.status, r.body)
	}
	conn, r := e.raw(connectHead(target, "alice", alicePassword))
	if r.status != http.StatusOK {
		t.Fatalf("CONNECT with the host named: got status %d; want 200; body %s", r.status, r.body)
	}
	conn.Send("GET /echo HTTP/1.1\r\nHost: " + target + "\r\n\r\n")
	if r := conn.Read("GET"); r.Status != http.StatusOK {
		t.Fatalf("through the tunnel: got status %d; want 200", r.Status)
	}
}

// TestConnectionKeptAliveUnderAnExactRuleServesNoWildcardRequest: alice's
// exact rule opens a guarded (loopback) address and leaves a kept-alive
// connection to it; bob, whom only a wildcard rule allows, must not get
// that connection.
func TestConnectionKeptAliveUnderAnExactRuleServesNoWildcardRequest(t *testing.T) {
	t.Parallel()
	up := testupstream.Start(t)
	_, port, _ := net.SplitHostPort(up.Addr)
	target := "http://svc.internal.test:" + port + "/echo"
	e := newEgress(t, Options{}, resolving(map[string]string{"svc.internal.test": "127.0.0.1"}))
	e.deploy(`{"allow":[{"host":"svc.internal.test","ports":[`+port+`]}],"consumers":["alice"]}`,
		`{"allow":[{"host":"*.internal.test","ports":[`+port+`]}],"consumers":["bob"]}`)
	alice, bob := e.client("alice", alicePassword, nil), e.client("bob", bobPassword, nil)
	for i := range 2 {
		if r := get(t, alice, target); r.status != http.StatusOK {
			t.Fatalf("alice, exact rule, request %d: got status %d; want 200", i+1, r.status)
		}
		assertProblem(t, get(t, bob, target), http.StatusForbidden)
	}
}

// halfCloser answers, on each connection, everything it read once the
// client has half-closed, then closes.
func halfCloser(t *testing.T) string {
	t.Helper()
	return testupstream.Raw(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(c)
		if err == nil {
			c.Write(append([]byte("got "), b...))
		}
	})
}

func TestTunnelPassesClientsHalfCloseOn(t *testing.T) {
	t.Parallel()
	dst := halfCloser(t)
	e := newEgress(t, Options{})
	e.deploy(allow(dst, ""))
	conn, r := e.raw(connectHead(dst, "alice", alicePassword))
	if r.status != http.StatusOK {
		t.Fatalf("got status %d; want 200; body %s", r.status, r.body)
	}
	conn.Send("ping")
	// The destination answers only once it has seen the end of the
	// client's stream, and the client still reads that answer.
	conn.CloseWrite()
	got, err := io.ReadAll(conn.R)
	if err != nil || string(got) != "got ping" {
		t.Fatalf("read %q, %v; want %q and the end of the stream", got, err, "got ping")
	}
}

// firstSpeaker, on each connection, says hello and half-closes, then
// sends what it read until the client's end on heard.
func firstSpeaker(t *testing.T, heard chan<- string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "hello")
		c.(*net.TCPConn).CloseWrite()
		b, _ := io.ReadAll(c)
		heard <- string(b)
	}()
	return l.Addr().String()
}

func TestTunnelPassesDestinationsHalfCloseOn(t *testing.T) {
	t.Parallel()
	heard := make(chan string, 1)
	dst := firstSpeaker(t, heard)
	e := newEgress(t, Options{})
	e.deploy(allow(dst, ""))
	conn, r := e.raw(connectHead(dst, "alice", alicePassword))
	if r.status != http.StatusOK {
		t.Fatalf("got status %d; want 200; body %s", r.status, r.body)
	}
	// The client sees the destination's end of stream, and can still
	// send.
	got, err := io.ReadAll(conn.R)
	if err != nil || string(got) != "hello" {
		t.Fatalf("read %q, %v; want %q and the end of the stream", got, err, "hello")
	}
	conn.Send("bye")
	conn.CloseWrite()
	if got := <-heard; got != "bye" {
		t.Fatalf("the destination heard %q; want %q", got, "bye")
	}
}

// A tunnel, and an upgrade through an absolute-form request, outlive the
// listener's read timeout, which bounds receiving a request, not the
// connection's life after it.
func TestTunnelsOutliveTheRequestReadTimeout(t *testing.T) {
	t.Parallel()
	up := testupstream.Start(t)
	const readTimeout = 200 * time.Millisecond
	e := newEgressServed(t, Options{}, serve.Options{ReadTimeout: readTimeout})
	e.deploy(allow(up.Addr, ""))
	tunnel, r := e.raw(connectHead(up.Addr, "alice", alicePassword))
	if r.status != http.StatusOK {
		t.Fatalf("CONNECT: got status %d; want 200; body %s", r.status, r.body)
	}
	ws, r := e.raw("GET " + up.URL + "/ws HTTP/1.1\r\nHost: " + up.Addr + "\r\n" +
		"Proxy-Authorization: " + basic("alice", alicePassword) + "\r\n" +
		"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")
	if r.status != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: got status %d; want 101; body %s", r.status, r.body)
	}
	time.Sleep(readTimeout + 100*time.Millisecond)

	tunnel.Send("GET /echo HTTP/1.1\r\nHost: " + up.Addr + "\r\n\r\n")
	if r := tunnel.Read("GET"); r.Status != http.StatusOK {
		t.Fatalf("through the tunnel: got status %d; want 200", r.Status)
	}
	// A masked text frame "hi" (mask key 0), which the upstream echoes
	// unmasked.
	ws.Send("\x81\x82\x00\x00\x00\x00hi")
	frame := make([]byte, 4)
	if _, err := io.ReadFull(ws.R, frame); err != nil || string(frame) != "\x81\x02hi" {
		t.Fatalf("through the upgrade: read %q, %v; want the echoed frame", frame, err)
	}
}

// Close ends CONNECT tunnels and upgraded connections alike: an
// http.Server's Shutdown knows neither.
func TestCloseEndsOpenTunnels(t *testing.T) {
	t.Parallel()
	dst := halfCloser(t)
	up := testupstream.Start(t)
	e := newEgress(t, Options{})
	e.deploy(allow(dst, ""), allow(up.Addr, ""))
	conn, r := e.raw(connectHead(dst, "alice", alicePassword))
	if r.status != http.StatusOK {
		t.Fatalf("got status %d; want 200; body %s", r.status, r.body)
	}
	ws, r := e.raw("GET " + up.URL + "/ws HTTP/1.1\r\nHost: " + up.Addr + "\r\n" +
		"Proxy-Authorization: " + basic("alice", alicePassword) + "\r\n" +
		"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")
	if r.status != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: got status %d; want 101; body %s", r.status, r.body)
	}
	e.handler.Close()
	if _, err := io.ReadAll(conn.R); err != nil {
		t.Fatalf("reading the tunnel after Close: %v; want the end of the stream", err)
	}
	if _, err := io.ReadAll(ws.R); err != nil {
		t.Fatalf("reading the upgraded connection after Close: %v; want the end of the stream", err)
	}
}

func TestEachRequestIsLoggedWithConsumerAndDestination(t *testing.T) {
	t.Parallel()
	up := testupstream.Start(t)
	var buf syncBuffer
	e := newEgress(t, Options{Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	e.deploy(allow(up.Addr, ""))
	if r := get(t, e.client("alice", alicePassword, nil), up.URL+"/echo"); r.status != http.StatusOK {
		t.Fatalf("got status %d; want 200", r.status)
	}
	var line struct {
		Msg, Consumer, Destination string
		Status                     int
	}
	// The line is written as the handler returns, which the client need
	// not wait for.
	for deadline := time.Now().Add(5 * time.Second); len(buf.Bytes()) == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log %q: %v", buf.Bytes(), err)
	}
	if line.Msg != "egress" || line.Consumer != "alice" || line.Destination != up.Addr || line.Status != 200 {
		t.Fatalf("logged %+v; want egress by alice to %s, 200", line, up.Addr)
	}
}
