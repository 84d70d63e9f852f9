package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/storetest"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/internal/wiretest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/serve"
	"github.com/gatehouse/gatehouse/sqlite"
)

// testAPI is the admin API served over a real socket through the same
// server stack the binary uses, on a real SQLite store.
type testAPI struct {
	t       testing.TB
	store   gatehouse.Store
	db      *sqlite.DB
	dbPath  string
	srv     *serve.Server
	addr    string
	base    string
	token   string // an admin token
	clock   *storetest.Clock
	client  *http.Client
	applier *recordingApplier
}

// recordingApplier stands in for the data plane: it records what it is
// given, and fails revisions that hold a route named "uncompilable".
type recordingApplier struct {
	mu      sync.Mutex
	applied []*gatehouse.Revision
}

func (a *recordingApplier) Apply(ctx context.Context, rev *gatehouse.Revision) error {
	if rev != nil {
		for _, r := range rev.Routes {
			if r.Name == "uncompilable" {
				return errors.New(`route "uncompilable" does not compile`)
			}
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.applied = append(a.applied, rev)
	return nil
}

// last returns the last revision applied and whether any was.
func (a *recordingApplier) last() (*gatehouse.Revision, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.applied) == 0 {
		return nil, false
	}
	return a.applied[len(a.applied)-1], true
}

type apiOption func(*apiConfig)

type apiConfig struct {
	serve     serve.Options
	admin     Options
	wrapStore func(gatehouse.Store) gatehouse.Store
}

func withServeOptions(o serve.Options) apiOption { return func(c *apiConfig) { c.serve = o } }
func withStore(wrap func(gatehouse.Store) gatehouse.Store) apiOption {
	return func(c *apiConfig) { c.wrapStore = wrap }
}

const testRetention = time.Hour

func newTestAPI(t testing.TB, opts ...apiOption) *testAPI {
	t.Helper()
	cfg := apiConfig{}
	for _, o := range opts {
		o(&cfg)
	}
	clock := storetest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	dbPath := t.TempDir() + "/test.db"
	db, err := sqlite.Open(dbPath, sqlite.Options{TombstoneRetention: testRetention, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var store gatehouse.Store = db
	if cfg.wrapStore != nil {
		store = cfg.wrapStore(db)
	}
	cfg.admin.Now = clock.Now
	// Deployments run as in the binary with its default store and role:
	// this process is a cluster of one node, whose Deployer points the
	// active revision and whose Agent applies it.
	applier := &recordingApplier{}
	node := deploy.NewNode(db, applier, slog.New(slog.DiscardHandler), deploy.NodeOptions{Name: "test-node"})
	if _, err := node.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { node.Run(ctx); close(stopped) }()
	t.Cleanup(func() { cancel(); <-stopped })
	cfg.admin.Deployments, cfg.admin.Nodes = node.Deployer, node.Deployer.Watch()
	cfg.admin.Metrics = promhttp.HandlerFor(prometheus.NewRegistry(), promhttp.HandlerOpts{})
	cfg.admin.Ready = func() bool { _, ok := applier.last(); return ok }
	srv, addr := wiretest.Serve(t, recordStatuses(New(store, cfg.admin)), cfg.serve)
	api := &testAPI{t: t, store: store, db: db, dbPath: dbPath, srv: srv, addr: addr, clock: clock, applier: applier,
		base: "http://" + addr, client: &http.Client{Timeout: 10 * time.Second}}
	api.token = api.makeToken(gatehouse.RoleAdmin, "")
	return api
}

// makeToken puts a token straight into the store and returns its secret.
func (a *testAPI) makeToken(role, consumerID string) string {
	a.t.Helper()
	tok := gatehouse.NewToken()
	tok.ID, tok.Role, tok.ConsumerID = gatehouse.NewID(), role, consumerID
	hash := tok.Seal()
	restore := tok.Redact()
	rec, err := gatehouse.Encode(tok, hash)
	restore()
	if err != nil {
		a.t.Fatal(err)
	}
	if err := a.db.Create(context.Background(), rec); err != nil {
		a.t.Fatal(err)
	}
	return tok.Token
}

// response is what a test needs of an HTTP response.
type response struct {
	close  bool // Connection: close, which net/http takes out of header
	status int
	header http.Header
	body   []byte
}

func (r *response) json() map[string]any {
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		panic(fmt.Sprintf("body is not a JSON object: %v: %q", err, r.body))
	}
	return m
}

// problemFields returns the "field" of each entry of a problem's errors.
func (r *response) problemFields() []string {
	var p struct {
		Errors []gatehouse.FieldError `json:"errors"`
	}
	json.Unmarshal(r.body, &p)
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	return out
}

type header struct{ k, v string }

func h(k, v string) header { return header{k, v} }

// do sends a request with the admin token unless an Authorization header
// is given. A body is sent as application/json (merge-patch for PATCH)
// unless a Content-Type header is given.
func (a *testAPI) do(method, path, body string, headers ...header) *response {
	a.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, a.base+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if body != "" {
		ct := "application/json"
		if method == http.MethodPatch {
			ct = "application/merge-patch+json"
		}
		req.Header.Set("Content-Type", ct)
	}
	for _, hd := range headers {
		if hd.v == "" {
			req.Header.Del(hd.k)
		} else {
			req.Header.Set(hd.k, hd.v)
		}
	}
	resp, err := a.client.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: b}
}

// must sends a request and fails the test unless it gets want.
func (a *testAPI) must(want int, method, path, body string, headers ...header) *response {
	a.t.Helper()
	r := a.do(method, path, body, headers...)
	if r.status != want {
		a.t.Fatalf("%s %s: got %d; want %d; body %s", method, path, r.status, want, r.body)
	}
	return r
}

// service creates a service and returns its id.
func (a *testAPI) service(name string) string {
	a.t.Helper()
	r := a.must(201, "POST", "/admin/v1/services", fmt.Sprintf(`{"name":%q,"url":"http://127.0.0.1:9999"}`, name))
	return r.json()["id"].(string)
}

// snapshot is every record of every kind, to prove a rejected request
// changed nothing.
func (a *testAPI) snapshot() string {
	a.t.Helper()
	var b strings.Builder
	for _, k := range append(gatehouse.Kinds, gatehouse.KindRevision, gatehouse.KindDeployment, gatehouse.KindActive) {
		page, err := a.db.List(context.Background(), k, gatehouse.ListOptions{Limit: gatehouse.MaxPageSize})
		if err != nil {
			a.t.Fatal(err)
		}
		for _, rec := range page.Records {
			fmt.Fprintf(&b, "%s/%s v%d %s %x\n", rec.Kind, rec.ID, rec.Version, rec.Body, rec.Secret)
		}
	}
	return b.String()
}

// unchanged fails the test if the store differs from before.
func (a *testAPI) unchanged(before string) {
	a.t.Helper()
	if after := a.snapshot(); after != before {
		a.t.Fatalf("store changed by a rejected request:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// assertProblem checks the contract's error body and content type.
func assertProblem(t *testing.T, r *response, status int) map[string]any {
	t.Helper()
	return wiretest.Problem(t, r.status, r.header, r.body, status)
}

// rawConn is a client that writes bytes as it pleases, for what a
// well-behaved client would never send.
type rawConn struct{ *wiretest.Conn }

func (a *testAPI) dial() rawConn { return rawConn{wiretest.Dial(a.t, a.addr)} }

func (c rawConn) send(s string) { c.Send(s) }

// readResponse reads one response, interim or final.
func (c rawConn) readResponse(method string) *response {
	r := c.Read(method)
	return &response{status: r.Status, header: r.Header, body: r.Body, close: r.Close}
}

// statusLog records which statuses each endpoint answered during the
// tests, for TestOpenAPIDocumentIsTrue.
var statusLog = struct {
	sync.Mutex
	seen map[string]map[string]map[int]bool // pattern → method → status
}{seen: map[string]map[string]map[int]bool{}}

func recordStatuses(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sr := &statusWriter{ResponseWriter: w, code: 200}
		next.ServeHTTP(sr, r)
		ep, _, err := match(r.URL)
		if err != nil || !gatehouse.Implemented(r.Method) {
			return
		}
		statusLog.Lock()
		defer statusLog.Unlock()
		m := statusLog.seen[ep.pattern]
		if m == nil {
			m = map[string]map[int]bool{}
			statusLog.seen[ep.pattern] = m
		}
		if m[r.Method] == nil {
			m[r.Method] = map[int]bool{}
		}
		m[r.Method][sr.code] = true
	})
}

type statusWriter struct {
	http.ResponseWriter
	code    int
	written bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.written && code >= 200 {
		w.code, w.written = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	w.written = true
	return w.ResponseWriter.Write(p)
}

func TestMain(m *testing.M) {
	testenv.QuietLogs()
	code := m.Run()
	if code == 0 {
		code = checkOpenAPI()
	}
	os.Exit(code)
}
