package egress

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/serve"
	"github.com/gatehouse/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/internal/wiretest"
	"github.com/gatehouse/gatehouse/policy"
)

func TestMain(m *testing.M) {
	testenv.QuietLogs()
	os.Exit(m.Run())
}

// The consumers every test revision has: alice is in group ops, bob in
// none. Hashing a password costs tens of milliseconds by design, so each
// is hashed once per test binary.
const (
	alicePassword = "alice-secret"
	bobPassword   = "bob-secret"
)

var hashes = sync.OnceValue(func() map[string]string {
	return map[string]string{
		"alice": string(gatehouse.HashPassword(alicePassword)),
		"bob":   string(gatehouse.HashPassword(bobPassword)),
	}
})

// egressProxy is the egress handler served over a real socket through the
// server stack the binary uses, with a policy set the test swaps.
type egressProxy struct {
	t       testing.TB
	handler *Handler
	addr    string
	set     atomic.Pointer[policy.Set]
	state   *policy.State
}

// newEgress serves an egress proxy; setup runs before it serves.
func newEgress(t testing.TB, opts Options, setup ...func(*Handler)) *egressProxy {
	t.Helper()
	return newEgressServed(t, opts, serve.Options{}, setup...)
}

// newEgressServed is newEgress with the listener's settings.
func newEgressServed(t testing.TB, opts Options, so serve.Options, setup ...func(*Handler)) *egressProxy {
	t.Helper()
	e := &egressProxy{t: t, state: policy.NewState()}
	h, err := New(e.set.Load, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range setup {
		f(h)
	}
	e.handler = h
	so.Name, so.NegotiateProblems = "egress", true
	// The egress listener stays on the std engine whatever the proxy's
	// (cmd/gatehouse), so its tests do too, on either run of the matrix.
	so.Engine = "std"
	_, e.addr = wiretest.Serve(t, h, so)
	// Cleanups run last-registered first: tunnels end before the server
	// drains, which would otherwise wait for them.
	t.Cleanup(h.Close)
	return e
}

// deploy compiles a revision with alice and bob, their basic-auth
// credentials, and one global egress policy per config given as JSON.
func (e *egressProxy) deploy(configs ...string) {
	e.t.Helper()
	rev := &gatehouse.Revision{Number: 1}
	for _, name := range []string{"alice", "bob"} {
		c := gatehouse.NewConsumer()
		c.ID, c.Name = "c-"+name, name
		if name == "alice" {
			c.Groups = []string{"ops"}
		}
		rev.Consumers = append(rev.Consumers, c)
		rev.Credentials = append(rev.Credentials, &gatehouse.RevisionCredential{ID: "cred-" + name, ConsumerID: c.ID,
			Type: gatehouse.CredentialBasicAuth, Username: name, Hash: hashes()[name]})
	}
	for i, cfg := range configs {
		p := gatehouse.NewPolicy()
		p.ID, p.Version, p.Name, p.Type, p.Global = fmt.Sprintf("egress-%d", i), 1, fmt.Sprintf("egress-%d", i), gatehouse.PolicyEgress, true
		p.Config = json.RawMessage(cfg)
		p.Normalize()
		if bad, semantic := p.Check(); len(bad)+len(semantic) > 0 {
			e.t.Fatalf("policy %s: %v %v", cfg, bad, semantic)
		}
		rev.Policies = append(rev.Policies, p)
	}
	set, err := policy.Compile(rev, &policy.Env{State: e.state})
	if err != nil {
		e.t.Fatal(err)
	}
	e.set.Store(set)
}

// allow is an egress config allowing hostport's host on its port.
func allow(hostport string, extra string) string {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		panic(err)
	}
	return fmt.Sprintf(`{"allow":[{"host":%q,"ports":[%s]}]%s}`, host, port, extra)
}

// client returns an http.Client that sends everything through the proxy,
// with user's credentials if user is not empty.
func (e *egressProxy) client(user, password string, tlsConfig *tls.Config) *http.Client {
	u := &url.URL{Scheme: "http", Host: e.addr}
	if user != "" {
		u.User = url.UserPassword(user, password)
	}
	tr := &http.Transport{Proxy: http.ProxyURL(u), TLSClientConfig: tlsConfig, DisableCompression: true}
	e.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// response is a fully read response.
type response struct {
	status int
	header http.Header
	body   []byte
}

func get(t testing.TB, c *http.Client, url string) *response {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: b}
}

// raw sends a request head as written on a new connection and reads the
// response to it; after a 200 to CONNECT, the connection is the tunnel.
func (e *egressProxy) raw(head string) (*wiretest.Conn, *response) {
	e.t.Helper()
	c := wiretest.Dial(e.t, e.addr)
	c.Send(head + "\r\n")
	method, _, _ := strings.Cut(head, " ")
	if method != http.MethodConnect {
		r := c.Read(method)
		return c, &response{status: r.Status, header: r.Header, body: r.Body}
	}
	// A 2xx to CONNECT has no body: the tunnel follows its head, which
	// http.ReadResponse would read as a body until the end of the stream.
	resp, err := http.ReadResponse(c.R, &http.Request{Method: method})
	if err != nil {
		e.t.Fatal(err)
	}
	r := &response{status: resp.StatusCode, header: resp.Header}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		if r.body, err = io.ReadAll(resp.Body); err != nil {
			e.t.Fatal(err)
		}
	}
	return c, r
}

// connectHead is a CONNECT request head for target, with credentials if
// user is not empty.
func connectHead(target, user, password string) string {
	h := "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n"
	if user != "" {
		h += "Proxy-Authorization: " + basic(user, password) + "\r\n"
	}
	return h
}

func basic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// assertProblem checks a gatehouse problem document of status want.
func assertProblem(t testing.TB, r *response, want int) map[string]any {
	t.Helper()
	return wiretest.Problem(t, r.status, r.header, r.body, want)
}

// closedPort returns an address where nothing listens.
func closedPort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// resolving makes the handler resolve the names given (to addresses)
// and no others: tests must not depend on the machine's DNS. A name
// mapped to "stall" is answered only when the lookup's deadline passes,
// as a resolver that times out does.
func resolving(names map[string]string) func(*Handler) {
	return func(h *Handler) {
		h.lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			a, ok := names[host]
			switch {
			case !ok:
				return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
			case a == "stall":
				<-ctx.Done()
				return nil, &net.DNSError{Err: ctx.Err().Error(), Name: host, IsTimeout: true}
			}
			return []netip.Addr{netip.MustParseAddr(a)}, nil
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Bytes returns a copy of what was written.
func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}
