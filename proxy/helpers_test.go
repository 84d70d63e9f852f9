package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/internal/wiretest"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/serve"
	"github.com/gatehouse/gatehouse/internal/testupstream"
)

func TestMain(m *testing.M) {
	testenv.QuietLogs()
	os.Exit(m.Run())
}

// gateway is the data plane served over a real socket through the same
// server stack the binary uses.
type gateway struct {
	t       testing.TB
	handler *Handler
	srv     *serve.Server
	addr    string
	base    string
	client  *http.Client
}

func newGateway(t testing.TB, opts ...func(*serve.Options)) *gateway {
	t.Helper()
	return newGatewayWithOptions(t, Options{}, opts...)
}

// revision builds a revision from services and routes given as JSON, as
// the admin API would store them.
func revision(t testing.TB, number int64, services []string, routes []string) *gatehouse.Revision {
	t.Helper()
	rev := &gatehouse.Revision{Number: number}
	for _, s := range services {
		svc := gatehouse.NewService()
		if err := json.Unmarshal([]byte(s), svc); err != nil {
			t.Fatal(err)
		}
		if bad, semantic := svc.Check(); len(bad)+len(semantic) > 0 {
			t.Fatalf("service %s: %v %v", s, bad, semantic)
		}
		rev.Services = append(rev.Services, svc)
	}
	for _, r := range routes {
		rt := gatehouse.NewRoute()
		if err := json.Unmarshal([]byte(r), rt); err != nil {
			t.Fatal(err)
		}
		rt.Normalize()
		rev.Routes = append(rev.Routes, rt)
	}
	return rev
}

func (g *gateway) apply(rev *gatehouse.Revision) {
	g.t.Helper()
	if err := g.handler.Apply(context.Background(), rev); err != nil {
		g.t.Fatalf("Apply: %v", err)
	}
}

// route applies one service at url with one catch-all route, plus extra
// service settings as JSON fields.
func (g *gateway) route(url string, serviceFields string, routeFields string) {
	g.t.Helper()
	svc := fmt.Sprintf(`{"id":"s","name":"s","url":%q%s}`, url, serviceFields)
	rt := fmt.Sprintf(`{"id":"r","service_id":"s","paths":["/*"]%s}`, routeFields)
	g.apply(revision(g.t, 1, []string{svc}, []string{rt}))
}

type response struct {
	status int
	header http.Header
	body   []byte
	close  bool
}

func (g *gateway) do(method, path string, body io.Reader, headers ...string) *response {
	g.t.Helper()
	req, err := http.NewRequest(method, g.base+path, body)
	if err != nil {
		g.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if strings.EqualFold(headers[i], "Host") {
			req.Host = headers[i+1]
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := g.client.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		g.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: b, close: resp.Close}
}

func (g *gateway) get(path string, headers ...string) *response {
	g.t.Helper()
	return g.do("GET", path, nil, headers...)
}

// echo decodes a testupstream echo.
func (r *response) echo(t *testing.T) *testupstream.Echo {
	t.Helper()
	var e testupstream.Echo
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("not an echo (status %d): %s", r.status, r.body)
	}
	return &e
}

// assertProblem checks a gateway-generated error.
func assertProblem(t *testing.T, r *response, status int) map[string]any {
	t.Helper()
	return wiretest.Problem(t, r.status, r.header, r.body, status)
}

// rawConn writes bytes as it pleases, for what only the wire shows.
type rawConn struct{ *wiretest.Conn }

func (g *gateway) dial() rawConn { return rawConn{wiretest.Dial(g.t, g.addr)} }

func (c rawConn) send(s string) { c.Send(s) }

func (c rawConn) read(method string) *response {
	r := c.Read(method)
	return &response{status: r.Status, header: r.Header, body: r.Body, close: r.Close}
}

// closedPort returns an address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// policyFixture is a revision with one service at url, one catch-all
// route "r" and the policies, consumers and credentials added to it.
type policyFixture struct {
	t   testing.TB
	rev *gatehouse.Revision
}

func newPolicyFixture(t testing.TB, url string) *policyFixture {
	t.Helper()
	rev := revision(t, 1, []string{fmt.Sprintf(`{"id":"s","name":"s","url":%q}`, url)},
		[]string{`{"id":"r","service_id":"s","paths":["/*"]}`})
	return &policyFixture{t: t, rev: rev}
}

// policy adds a policy given as JSON, checked and normalised as the admin
// API would store it, and lists it on the route unless it is global.
func (f *policyFixture) policy(js string) *policyFixture {
	f.t.Helper()
	p := gatehouse.NewPolicy()
	if err := json.Unmarshal([]byte(js), p); err != nil {
		f.t.Fatal(err)
	}
	p.Normalize()
	if bad, semantic := p.Check(); len(bad)+len(semantic) > 0 {
		f.t.Fatalf("policy %s: %v %v", js, bad, semantic)
	}
	if p.ID == "" {
		p.ID = gatehouse.NewID()
	}
	p.Version = 1
	f.rev.Policies = append(f.rev.Policies, p)
	if !p.Global {
		f.rev.Routes[0].Policies = append(f.rev.Routes[0].Policies, p.ID)
	}
	return f
}

// newGatewayWithOptions is newGateway with data-plane options (trusted
// proxies, say).
func newGatewayWithOptions(t testing.TB, o Options, opts ...func(*serve.Options)) *gateway {
	t.Helper()
	so := serve.Options{Name: "proxy", Engine: testenv.Engine()}
	for _, opt := range opts {
		opt(&so)
	}
	if o.Tracer == nil {
		// As cmd/gatehouse wires them: the upstream spans' tracer is
		// the server spans'.
		o.Tracer = so.Tracer
	}
	h := New(o)
	t.Cleanup(h.Close)
	srv, addr := wiretest.Serve(t, h, so)
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return &gateway{t: t, handler: h, srv: srv, addr: addr, base: "http://" + addr,
		client: &http.Client{Transport: tr, Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// consumer adds a consumer to the revision.
func (f *policyFixture) consumer(id, name string, groups ...string) *policyFixture {
	c := gatehouse.NewConsumer()
	c.ID, c.Version, c.Name = id, 1, name
	c.Groups = append(c.Groups, groups...)
	f.rev.Consumers = append(f.rev.Consumers, c)
	return f
}

// key gives a consumer an API key.
func (f *policyFixture) key(consumerID, key string) *policyFixture {
	f.rev.Credentials = append(f.rev.Credentials, &gatehouse.RevisionCredential{ID: gatehouse.NewID(),
		ConsumerID: consumerID, Type: gatehouse.CredentialKeyAuth, Hash: gatehouse.HashToken(key)})
	return f
}

// basic gives a consumer a basic-auth username and password.
func (f *policyFixture) basic(consumerID, username, password string) *policyFixture {
	f.rev.Credentials = append(f.rev.Credentials, &gatehouse.RevisionCredential{ID: gatehouse.NewID(),
		ConsumerID: consumerID, Type: gatehouse.CredentialBasicAuth, Username: username,
		Hash: string(gatehouse.HashPassword(password))})
	return f
}

// testClock is the policies' clock (Options.Now) in tests: time moves only
// when the test says.
type testClock = testenv.Clock
