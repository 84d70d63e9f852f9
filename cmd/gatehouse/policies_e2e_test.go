package main

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testupstream"
)

// TestPoliciesConfiguredThroughTheAdminAPIAnswerTheContractsCodes drives
// the binary as a user would: policies, consumers and credentials written
// through the admin API, one deployment, then each policy's answer on the
// proxy listener and on the egress listener.
func TestPoliciesConfiguredThroughTheAdminAPIAnswerTheContractsCodes(t *testing.T) {
	up := testupstream.Start(t)
	const token = "policies-token-0123456789abcdef01"
	egressAddr := freeAddrs(t, 1)[0]
	p := launch(t, t.TempDir(), []string{"--egress-addr", egressAddr}, "GATEHOUSE_ADMIN_TOKEN="+token)
	admin := func(method, path, body string) {
		t.Helper()
		r := p.do(method, path, token, body)
		if r.status != http.StatusCreated {
			t.Fatalf("%s %s: %d %s", method, path, r.status, r.body)
		}
	}
	admin("POST", "/admin/v1/services", `{"id":"up","name":"up","url":"`+up.URL+`"}`)
	admin("POST", "/admin/v1/consumers", `{"id":"alice","name":"alice","groups":["staff"]}`)
	admin("POST", "/admin/v1/consumers", `{"id":"bob","name":"bob"}`)
	admin("POST", "/admin/v1/consumers/alice/credentials", `{"type":"key-auth","key":"alice-key-0123456789"}`)
	admin("POST", "/admin/v1/consumers/bob/credentials", `{"type":"key-auth","key":"bob-key-0123456789ab"}`)
	admin("POST", "/admin/v1/consumers/alice/credentials", `{"type":"basic-auth","username":"alice","password":"alice-password"}`)
	for _, pol := range []string{
		`{"id":"keys","name":"keys","type":"auth","config":{"key_auth":{}}}`,
		`{"id":"staff","name":"staff","type":"acl","config":{"allow":["staff"]}}`,
		`{"id":"json","name":"json","type":"content","config":{"accepts":["application/json"],"produces":["application/json"],
			"schema":{"type":"object","required":["name"],"properties":{"name":{"type":"string"}}}}}`,
		`{"id":"two","name":"two","type":"rate-limit","config":{"requests":2,"per":"minute","by":"ip"}}`,
		`{"id":"retired","name":"retired","type":"deprecation","config":{"sunset_at":"2020-01-01T00:00:00Z","successor":"https://example.com/v2"}}`,
		`{"id":"down","name":"down","type":"maintenance","config":{"message":"Back soon.","retry_after_seconds":60}}`,
		`{"id":"out","name":"out","type":"egress","global":true,"config":{"allow":[{"host":"127.0.0.1","ports":[` + up.URL[strings.LastIndex(up.URL, ":")+1:] + `]}]}}`,
	} {
		admin("POST", "/admin/v1/policies", pol)
	}
	for _, rt := range []string{
		`{"name":"api","paths":["/api/*"],"service_id":"up","policies":["keys","staff","json"]}`,
		`{"name":"limited","paths":["/limited/*"],"service_id":"up","policies":["two"]}`,
		`{"name":"old","paths":["/old/*"],"service_id":"up","policies":["retired"]}`,
		`{"name":"down","paths":["/down/*"],"service_id":"up","policies":["down"]}`,
	} {
		admin("POST", "/admin/v1/routes", rt)
	}
	if dep := p.deployAndWait(token, `{}`); dep["state"] != "succeeded" {
		t.Fatalf("deployment: %v", dep)
	}

	proxy := "http://" + p.proxyAddr
	const alice, bob = "alice-key-0123456789", "bob-key-0123456789ab"
	for _, tc := range []struct {
		desc         string
		method, path string
		body         string
		header       []string
		status       int
		wantHeader   string // a header the answer must carry
	}{
		{"no API key", "GET", "/api/x", "", nil, 401, "WWW-Authenticate"},
		{"wrong API key", "GET", "/api/x", "", []string{"X-API-Key", "not-a-key-0123456789"}, 401, "WWW-Authenticate"},
		{"consumer outside the allowed group", "GET", "/api/x", "", []string{"X-API-Key", bob}, 403, ""},
		{"Accept excluding JSON", "GET", "/api/x", "", []string{"X-API-Key", alice, "Accept", "text/html"}, 406, ""},
		{"body that is not JSON", "POST", "/api/x", "name=x", []string{"X-API-Key", alice, "Content-Type", "text/plain"}, 415, "Accept-Post"},
		{"malformed JSON", "POST", "/api/x", `{"name":`, []string{"X-API-Key", alice}, 400, ""},
		{"JSON failing the schema", "POST", "/api/x", `{"name":5}`, []string{"X-API-Key", alice}, 422, ""},
		{"route past its sunset", "GET", "/old/x", "", nil, 410, "Sunset"},
		{"route under maintenance", "GET", "/down/x", "", nil, 503, "Retry-After"},
	} {
		r := p.do(tc.method, proxy+tc.path, "", tc.body, tc.header...)
		checkProblem(t, tc.desc, r, tc.status, "application/problem+json")
		if tc.wantHeader != "" && r.header.Get(tc.wantHeader) == "" {
			t.Errorf("%s: no %s header", tc.desc, tc.wantHeader)
		}
	}
	if r := p.do("POST", proxy+"/api/x", "", `{"name":"ok"}`, "X-API-Key", alice); r.status != http.StatusOK ||
		!strings.Contains(string(r.body), `"X-Consumer-Name":["alice"]`) {
		t.Fatalf("alice's valid request: %d %s; want 200 with her identity at the upstream", r.status, r.body)
	}

	for i := range 2 {
		if r := p.do("GET", proxy+"/limited/x", "", ""); r.status != http.StatusOK {
			t.Fatalf("request %d within the limit: %d", i+1, r.status)
		}
	}
	r := p.do("GET", proxy+"/limited/x", "", "")
	checkProblem(t, "third request of two a minute", r, http.StatusTooManyRequests, "application/problem+json")
	if r.header.Get("Retry-After") == "" || r.header.Get("RateLimit-Policy") == "" || r.header.Get("RateLimit") == "" {
		t.Errorf("429 headers %v; want Retry-After, RateLimit-Policy and RateLimit", r.header)
	}

	// The egress listener: alice's basic-auth credential, the allowed
	// destination (the upstream, named exactly).
	egress := func(user *url.Userinfo) *http.Response {
		t.Helper()
		proxyURL := &url.URL{Scheme: "http", Host: egressAddr, User: user}
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
		resp, err := client.Get(up.URL + "/echo")
		if err != nil {
			t.Fatalf("GET through the egress proxy: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := egress(url.UserPassword("alice", "alice-password")); resp.StatusCode != http.StatusOK {
		t.Fatalf("egress with alice's credentials: %d; want 200", resp.StatusCode)
	}
	if resp := egress(nil); resp.StatusCode != http.StatusProxyAuthRequired || resp.Header.Get("Proxy-Authenticate") == "" {
		t.Fatalf("egress without credentials: %d, Proxy-Authenticate %q; want 407 with a challenge",
			resp.StatusCode, resp.Header.Get("Proxy-Authenticate"))
	}
	if resp := egress(url.UserPassword("alice", "wrong-password")); resp.StatusCode != http.StatusProxyAuthRequired {
		t.Fatalf("egress with a wrong password: %d; want 407", resp.StatusCode)
	}
}

// TestOpenEgressTunnelDoesNotHoldTheShutdown proves the shutdown order: an
// idle CONNECT tunnel would hold the egress listener's drain until the
// timeout; it is cut once no listener has an ordinary request in flight,
// and the drain completes.
func TestOpenEgressTunnelDoesNotHoldTheShutdown(t *testing.T) {
	up := testupstream.Start(t)
	const token = "egress-shutdown-token-0123456789ab"
	egressAddr := freeAddrs(t, 1)[0]
	p := launch(t, t.TempDir(), []string{"--egress-addr", egressAddr}, "GATEHOUSE_ADMIN_TOKEN="+token)
	upHost := strings.TrimPrefix(up.URL, "http://")
	for _, w := range []struct{ path, body string }{
		{"/admin/v1/consumers", `{"id":"alice","name":"alice"}`},
		{"/admin/v1/consumers/alice/credentials", `{"type":"basic-auth","username":"alice","password":"alice-password"}`},
		{"/admin/v1/policies", `{"id":"out","name":"out","type":"egress","global":true,"config":{"allow":[{"host":"127.0.0.1","ports":[` +
			upHost[strings.LastIndex(upHost, ":")+1:] + `]}]}}`},
	} {
		if r := p.do("POST", w.path, token, w.body); r.status != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", w.path, r.status, r.body)
		}
	}
	if dep := p.deployAndWait(token, `{}`); dep["state"] != "succeeded" {
		t.Fatalf("deployment: %v", dep)
	}
	conn, err := net.Dial("tcp", egressAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: Basic %s\r\n\r\n",
		upHost, upHost, base64.StdEncoding.EncodeToString([]byte("alice:alice-password")))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT: %v, %v; want 200", resp, err)
	}
	p.stop()
	if stderr := p.stderr.String(); strings.Contains(stderr, "shutdown incomplete") {
		t.Fatalf("the drain did not complete; stderr:\n%s", stderr)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("the tunnel is still open after the process stopped")
	}
}

// TestOpenWebSocketTunnelDoesNotHoldTheShutdown proves the same rule on the
// proxy listener, where a tunnel and an ordinary request share one
// server's drain: after SIGTERM the tunnel still carries messages while
// an ordinary request is in flight; that request completes; then the
// tunnel is cut and the drain completes well within --shutdown-timeout.
func TestOpenWebSocketTunnelDoesNotHoldTheShutdown(t *testing.T) {
	ws := testupstream.Start(t)
	arrived, release := make(chan struct{}), make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		io.WriteString(w, "finished")
	}))
	defer slow.Close()
	defer close(release) // whatever happens first, the handler returns
	const token = "ws-shutdown-token-0123456789abcdef"
	p := launch(t, t.TempDir(), nil, "GATEHOUSE_ADMIN_TOKEN="+token)
	for _, w := range []struct{ path, body string }{
		{"/admin/v1/services", `{"id":"ws","name":"ws","url":"` + ws.URL + `"}`},
		{"/admin/v1/services", `{"id":"slow","name":"slow","url":"` + slow.URL + `"}`},
		{"/admin/v1/routes", `{"name":"ws","paths":["/ws"],"service_id":"ws"}`},
		{"/admin/v1/routes", `{"name":"slow","paths":["/slow"],"service_id":"slow"}`},
	} {
		if r := p.do("POST", w.path, token, w.body); r.status != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", w.path, r.status, r.body)
		}
	}
	if dep := p.deployAndWait(token, `{}`); dep["state"] != "succeeded" {
		t.Fatalf("deployment: %v", dep)
	}
	conn, _, err := testupstream.DialWebSocket("ws://"+p.proxyAddr+"/ws", nil)
	if err != nil {
		t.Fatalf("WebSocket through the proxy: %v", err)
	}
	defer conn.Close()
	echo := func(when string) {
		t.Helper()
		if err := conn.WriteText(when); err != nil {
			t.Fatalf("%s: write: %v", when, err)
		}
		if got, err := conn.ReadText(); err != nil || got != when {
			t.Fatalf("%s: echo %q, %v; want %q", when, got, err, when)
		}
	}
	echo("before SIGTERM")

	type result struct {
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + p.proxyAddr + "/slow")
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- result{string(b), err}
	}()
	<-arrived
	p.signal(syscall.SIGTERM)
	for !strings.Contains(p.stderr.String(), "shutting down") {
		if p.exited() {
			t.Fatalf("gatehouse exited with a request in flight; stderr:\n%s", p.stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	echo("during the drain")
	release <- struct{}{}
	if r := <-done; r.err != nil || r.body != "finished" {
		t.Fatalf("in-flight request during the drain: %q, %v; want it to finish", r.body, r.err)
	}
	if code := p.exitCode(exitTimeout); code != 0 {
		t.Fatalf("exit code after SIGTERM: %d; want 0", code)
	}
	if stderr := p.stderr.String(); strings.Contains(stderr, "shutdown incomplete") {
		t.Fatalf("the drain did not complete; stderr:\n%s", stderr)
	}
	if _, err := conn.ReadText(); err == nil {
		t.Fatal("the tunnel is still open after the process stopped")
	}
}
