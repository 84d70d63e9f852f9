package main

// End-to-end tests: TestMain builds the real binary once, and each test runs
// it as a user would, over real sockets on 127.0.0.1, and looks only at what
// a user can see: responses, exit codes, stderr and the data directory.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/internal/testupstream"
)

// gatehouseBin is the binary under test, built by TestMain.
var gatehouseBin string

// raceBuild reports whether the binary was built with -race (it is when
// the tests are), so that a data race in the server fails the test that
// provoked it.
var raceBuild bool

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "gatehouse-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)

	gatehouseBin = filepath.Join(dir, "gatehouse")
	args := []string{"build", "-o", gatehouseBin}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" && s.Value == "true" {
				raceBuild = true
				args = append(args, "-race")
			}
		}
	}
	build := exec.Command("go", append(args, ".")...)
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go %s: %v\n%s", strings.Join(args, " "), err, out)
		return 1
	}
	return m.Run()
}

// Timeouts of the harness. They bound waits; no test asserts on them.
const (
	readyTimeout = 15 * time.Second
	exitTimeout  = 15 * time.Second // above the --shutdown-timeout of 10s
)

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is one running gatehouse process.
type proc struct {
	t              testing.TB
	cmd            *exec.Cmd
	stdout, stderr syncBuffer
	done           chan struct{} // closed when the process has exited
	adminAddr      string
	proxyAddr      string
	client         *http.Client
}

// cleanEnv is the test's environment without GATEHOUSE_ (and OTEL_) variables, so that
// the developer's or CI's settings do not leak into the process under test,
// but with GATEHOUSE_ENGINE from testenv.Engine, and then extra. An entry
// of extra without "=" names a variable to leave out: "GATEHOUSE_ENGINE"
// runs the binary on its own default engine.
// A race-enabled binary also skips the race runtime's one-second sleep at
// exit, unless GORACE already says otherwise.
func cleanEnv(extra []string) []string {
	var env []string
	gorace := os.Getenv("GORACE")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GATEHOUSE_") && !strings.HasPrefix(kv, "OTEL_") && !strings.HasPrefix(kv, "GORACE=") {
			env = append(env, kv)
		}
	}
	if raceBuild && !strings.Contains(gorace, "atexit_sleep_ms") {
		gorace = strings.TrimSpace(gorace + " atexit_sleep_ms=0")
	}
	if gorace != "" {
		env = append(env, "GORACE="+gorace)
	}
	// The proxy's engine is the one the test run names: every test that
	// starts the binary runs on it (extra, later, may still say otherwise).
	env = append(env, "GATEHOUSE_ENGINE="+testenv.Engine())
	for _, kv := range extra {
		if !strings.Contains(kv, "=") {
			env = slices.DeleteFunc(env, func(e string) bool { return strings.HasPrefix(e, kv+"=") })
			continue
		}
		env = append(env, kv)
	}
	return env
}

// startProc starts the binary and registers its killing with t.Cleanup.
func startProc(t testing.TB, args, env []string) *proc {
	t.Helper()
	p := &proc{t: t, done: make(chan struct{})}
	p.cmd = exec.Command(gatehouseBin, args...)
	p.cmd.Env = cleanEnv(env)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start gatehouse %v: %v", args, err)
	}
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	p.client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	t.Cleanup(func() {
		if !p.exited() {
			p.cmd.Process.Kill()
		}
		<-p.done
		tr.CloseIdleConnections()
		if raceBuild && strings.Contains(p.stderr.String(), "WARNING: DATA RACE") {
			t.Errorf("gatehouse %v reported a data race:\n%s", args, p.stderr.String())
		} else if t.Failed() {
			t.Logf("stderr of gatehouse %v:\n%s", args, p.stderr.String())
		}
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitCode waits for the process to exit and returns its exit code (-1 if a
// signal ended it), failing the test if it does not exit within timeout.
func (p *proc) exitCode(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		p.t.Fatalf("gatehouse still running %v after it should have exited", timeout)
		return 0
	}
}

func (p *proc) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// stop sends SIGTERM and requires a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	p.signal(syscall.SIGTERM)
	if code := p.exitCode(exitTimeout); code != 0 {
		p.t.Fatalf("exit code after SIGTERM: got %d; want 0", code)
	}
}

// freeAddrs returns n distinct addresses on 127.0.0.1 that were free a
// moment ago. Another process may take one before gatehouse binds it;
// launch retries when that happens.
func freeAddrs(t testing.TB, n int) []string {
	t.Helper()
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("find a free port: %v", err)
		}
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs
}

// loggedListening reports whether logs (JSON or text) say that the process
// listens on addr.
func loggedListening(logs, addr string) bool {
	return strings.Contains(logs, `"addr":"`+addr+`"`) || strings.Contains(logs, "addr="+addr)
}

var errAddrInUse = errors.New("address already in use")

// waitReady polls the admin port's /healthz (which every role serves)
// until the process answers on it. The process must also have logged
// binding its addresses (a control node has no proxy listener): only then
// is the server answering ours, not another process's that took the port
// first.
func (p *proc) waitReady(role string) error {
	deadline := time.Now().Add(readyTimeout)
	for ; time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if p.exited() {
			if strings.Contains(p.stderr.String(), "address already in use") {
				return errAddrInUse
			}
			return fmt.Errorf("gatehouse exited with code %d before it was ready", p.cmd.ProcessState.ExitCode())
		}
		if logs := p.stderr.String(); !loggedListening(logs, p.adminAddr) || (role != "control" && !loggedListening(logs, p.proxyAddr)) {
			continue
		}
		resp, err := p.client.Get("http://" + p.adminAddr + "/healthz")
		if err != nil {
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
	}
	return fmt.Errorf("gatehouse not ready on %s after %v", p.adminAddr, readyTimeout)
}

// launchWith starts gatehouse serve on fresh addresses and waits until it
// is ready; args builds the command line and environment from the admin
// and proxy addresses. A lost race for a port is retried on new ones.
func launchWith(t testing.TB, args func(admin, proxy string) (args, env []string)) *proc {
	t.Helper()
	for attempt := 1; ; attempt++ {
		addrs := freeAddrs(t, 2)
		a, env := args(addrs[0], addrs[1])
		p := startProc(t, a, env)
		p.adminAddr, p.proxyAddr = addrs[0], addrs[1]
		err := p.waitReady(roleOf(a))
		if err == nil {
			return p
		}
		if errors.Is(err, errAddrInUse) && attempt < 5 {
			t.Logf("attempt %d: %v; retrying on other ports", attempt, err)
			continue
		}
		t.Fatalf("%v\nstderr:\n%s", err, p.stderr.String())
	}
}

// launch starts gatehouse serve on dataDir with the harness's flags, extra
// flags after them, and extra environment variables.
func launch(t *testing.T, dataDir string, extra []string, env ...string) *proc {
	t.Helper()
	return launchWith(t, func(admin, proxy string) ([]string, []string) {
		return append([]string{"serve",
			"--data-dir", dataDir,
			"--admin-addr", admin,
			"--proxy-addr", proxy,
			"--read-header-timeout", "2s",
			"--shutdown-timeout", "10s",
		}, extra...), env
	})
}

// response is a fully read HTTP response.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request to the process; path is relative to the admin
// listener unless it is a full URL. A non-empty token is sent as a bearer
// token; a body is sent as application/json. It fails the test if the
// request cannot be made.
func (p *proc) do(method, path, token, body string, header ...string) response {
	p.t.Helper()
	r, err := p.send(method, path, token, body, header...)
	if err != nil {
		p.t.Fatal(err)
	}
	return r
}

// send is do for other goroutines than the test's: it returns the error.
func (p *proc) send(method, path, token, body string, header ...string) (response, error) {
	u := path
	if !strings.HasPrefix(u, "http://") {
		u = "http://" + p.adminAddr + path
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return response{}, fmt.Errorf("new request: %v", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: read body: %v", method, u, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// wantStatus fails the test unless r has the status.
func wantStatus(t testing.TB, what string, r response, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("%s: got status %d; want %d (body %s)", what, r.status, want, r.body)
	}
}

var generatedToken = regexp.MustCompile(`Generated the admin token[^\n]*\n\s*\n\s+(\S+)\n`)

// printedTokens returns the admin tokens a process announced on stderr.
func printedTokens(stderr string) []string {
	var out []string
	for _, m := range generatedToken.FindAllStringSubmatch(stderr, -1) {
		out = append(out, m[1])
	}
	return out
}

// firstToken starts gatehouse on a new data dir and returns the process
// and the admin token it generated.
func firstToken(t *testing.T, dataDir string, extra ...string) (*proc, string) {
	t.Helper()
	p := launch(t, dataDir, extra)
	toks := printedTokens(p.stderr.String())
	if len(toks) != 1 {
		t.Fatalf("admin tokens printed on first start: got %d; want 1\nstderr:\n%s", len(toks), p.stderr.String())
	}
	return p, toks[0]
}

func TestFirstStartGeneratesAdminTokenFile(t *testing.T) {
	dataDir := t.TempDir()
	p, tok := firstToken(t, dataDir)
	if n := strings.Count(p.stderr.String(), tok); n != 1 {
		t.Errorf("times the token appears on stderr: got %d; want 1", n)
	}

	path := filepath.Join(dataDir, "admin-token")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("stat admin-token: got %v; want the file", err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("admin-token mode: got %#o; want 0600", perm)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != tok {
		t.Errorf("admin-token file holds: got %q; want the printed token %q", got, tok)
	}
	wantStatus(t, "GET /admin/v1/services with the printed token", p.do("GET", "/admin/v1/services", tok, ""), http.StatusOK)
	wantStatus(t, "GET /admin/v1/services without a token", p.do("GET", "/admin/v1/services", "", ""), http.StatusUnauthorized)
	p.stop()

	p2 := launch(t, dataDir, nil)
	if toks := printedTokens(p2.stderr.String()); len(toks) != 0 {
		t.Errorf("admin tokens printed on second start: got %q; want none", toks)
	}
	if strings.Contains(p2.stderr.String(), tok) {
		t.Errorf("second start's stderr: got the token again; want it shown only once")
	}
	wantStatus(t, "GET /admin/v1/services with the old token after restart", p2.do("GET", "/admin/v1/services", tok, ""), http.StatusOK)
	if b2, err := os.ReadFile(path); err != nil || !bytes.Equal(b2, b) {
		t.Errorf("admin-token file after restart: got %q, %v; want it unchanged", b2, err)
	}
}

// A token is stored only once its file is written: a start that cannot
// write the file must not leave behind a token that nobody was shown, or the
// next start, finding a token, would generate none, and the installation
// would have no usable admin token at all.
func TestFailedTokenFileWriteLeavesNoUnknownToken(t *testing.T) {
	dataDir := t.TempDir()
	path := filepath.Join(dataDir, "admin-token")
	if err := os.Mkdir(path, 0o700); err != nil { // makes the write fail
		t.Fatal(err)
	}
	addrs := freeAddrs(t, 2)
	p := startProc(t, []string{"serve", "--data-dir", dataDir, "--admin-addr", addrs[0], "--proxy-addr", addrs[1]}, nil)
	if code := p.exitCode(exitTimeout); code == 0 || code == -1 {
		t.Fatalf("exit code when admin-token cannot be written: got %d; want a non-zero exit", code)
	}
	if stderr := p.stderr.String(); !strings.Contains(stderr, path) {
		t.Errorf("stderr: got %q; want it to name %s", stderr, path)
	}
	if toks := printedTokens(p.stderr.String()); len(toks) != 0 {
		t.Errorf("tokens printed by the failed start: got %q; want none", toks)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	p2, tok := firstToken(t, dataDir)
	if b, err := os.ReadFile(path); err != nil || strings.TrimSpace(string(b)) != tok {
		t.Errorf("admin-token after the retry: got %q, %v; want the printed token", b, err)
	}
	wantStatus(t, "GET /admin/v1/services with the token of the retry", p2.do("GET", "/admin/v1/services", tok, ""), http.StatusOK)
}

// A leftover admin-token file (say, of a data dir whose database was
// removed) must not lend its permissions to the new secret.
func TestTokenFileReplacingAnOldOneIsPrivate(t *testing.T) {
	dataDir := t.TempDir()
	path := filepath.Join(dataDir, "admin-token")
	if err := os.WriteFile(path, []byte("stale\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	p, tok := firstToken(t, dataDir)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("admin-token mode after replacing a 0644 one: got %#o; want 0600", perm)
	}
	if b, err := os.ReadFile(path); err != nil || strings.TrimSpace(string(b)) != tok {
		t.Errorf("admin-token: got %q, %v; want the printed token", b, err)
	}
	wantStatus(t, "GET /admin/v1/services with the new token", p.do("GET", "/admin/v1/services", tok, ""), http.StatusOK)
}

func TestAdminTokenFromEnvironment(t *testing.T) {
	dataDir := t.TempDir()
	const secret = "e2e-env-token-3f9a1c0d7b2e4a68-5c1d"
	p := launch(t, dataDir, nil, "GATEHOUSE_ADMIN_TOKEN="+secret)

	wantStatus(t, "GET /admin/v1/services with GATEHOUSE_ADMIN_TOKEN", p.do("GET", "/admin/v1/services", secret, ""), http.StatusOK)
	wantStatus(t, "GET /admin/v1/services with another token", p.do("GET", "/admin/v1/services", secret+"x", ""), http.StatusUnauthorized)
	if _, err := os.Stat(filepath.Join(dataDir, "admin-token")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat admin-token: got %v; want it not to exist", err)
	}
	if toks := printedTokens(p.stderr.String()); len(toks) != 0 {
		t.Errorf("admin tokens printed: got %q; want none", toks)
	}
	if strings.Contains(p.stderr.String(), secret) {
		t.Errorf("stderr: got the token from the environment; want it never logged")
	}
}

func TestShortOrUnprintableAdminTokenFromEnvironmentIsRefused(t *testing.T) {
	for _, tc := range []struct{ desc, secret, want string }{
		{"5 characters", "short", "GATEHOUSE_ADMIN_TOKEN must be at least 32 characters, and it has 5"},
		{"31 characters", strings.Repeat("x", 31), "GATEHOUSE_ADMIN_TOKEN must be at least 32 characters, and it has 31"},
		{"a space", strings.Repeat("x", 20) + " " + strings.Repeat("y", 20), "GATEHOUSE_ADMIN_TOKEN must be printable ASCII without spaces"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			dataDir := t.TempDir()
			addrs := freeAddrs(t, 2)
			p := startProc(t, []string{"serve", "--data-dir", dataDir, "--admin-addr", addrs[0], "--proxy-addr", addrs[1]},
				[]string{"GATEHOUSE_ADMIN_TOKEN=" + tc.secret})
			if code := p.exitCode(exitTimeout); code != 1 {
				t.Fatalf("exit code: got %d; want 1", code)
			}
			stderr := p.stderr.String()
			if !strings.Contains(stderr, tc.want) {
				t.Fatalf("stderr: got %q; want it to say %q", stderr, tc.want)
			}
			if strings.Contains(stderr, tc.secret) {
				t.Fatalf("stderr repeats the token: %q", stderr)
			}
		})
	}
}

func TestFlagsFromEnvironment(t *testing.T) {
	t.Run("env sets addresses and data dir", func(t *testing.T) {
		dataDir := filepath.Join(t.TempDir(), "from-env")
		p := launchWith(t, func(admin, proxy string) ([]string, []string) {
			return []string{"serve", "--shutdown-timeout", "10s"}, []string{
				"GATEHOUSE_ADMIN_ADDR=" + admin,
				"GATEHOUSE_PROXY_ADDR=" + proxy,
				"GATEHOUSE_DATA_DIR=" + dataDir,
			}
		})
		// waitReady found the admin API on GATEHOUSE_ADMIN_ADDR.
		wantStatus(t, "GET on GATEHOUSE_PROXY_ADDR", p.do("GET", "http://"+p.proxyAddr+"/", "", ""), http.StatusNotFound)
		if _, err := os.Stat(filepath.Join(dataDir, "admin-token")); err != nil {
			t.Errorf("stat GATEHOUSE_DATA_DIR/admin-token: got %v; want the file", err)
		}
		if _, err := os.Stat(filepath.Join(dataDir, "gatehouse.db")); err != nil {
			t.Errorf("stat GATEHOUSE_DATA_DIR/gatehouse.db: got %v; want the file", err)
		}
	})

	t.Run("flag wins over env", func(t *testing.T) {
		envDir, flagDir := t.TempDir(), t.TempDir()
		// Were any of these environment values used, gatehouse could
		// not start: the address and the duration do not parse.
		launchWith(t, func(admin, proxy string) ([]string, []string) {
			return []string{"serve",
					"--admin-addr", admin, "--proxy-addr", proxy, "--data-dir", flagDir,
					"--read-timeout", "5s", "--shutdown-timeout", "10s",
				}, []string{
					"GATEHOUSE_ADMIN_ADDR=127.0.0.1:not-a-port",
					"GATEHOUSE_DATA_DIR=" + envDir,
					"GATEHOUSE_READ_TIMEOUT=banana",
				}
		})
		if _, err := os.Stat(filepath.Join(flagDir, "admin-token")); err != nil {
			t.Errorf("stat --data-dir/admin-token: got %v; want the file", err)
		}
		if entries, _ := os.ReadDir(envDir); len(entries) != 0 {
			t.Errorf("GATEHOUSE_DATA_DIR overridden by --data-dir: got %d entries in it; want 0", len(entries))
		}
	})

	t.Run("invalid env value", func(t *testing.T) {
		addrs := freeAddrs(t, 2)
		p := startProc(t, []string{"serve", "--data-dir", t.TempDir(),
			"--admin-addr", addrs[0], "--proxy-addr", addrs[1]}, []string{"GATEHOUSE_READ_TIMEOUT=banana"})
		if code := p.exitCode(exitTimeout); code == 0 || code == -1 {
			t.Errorf("exit code with GATEHOUSE_READ_TIMEOUT=banana: got %d; want a non-zero exit", code)
		}
		if stderr := p.stderr.String(); !strings.Contains(stderr, "GATEHOUSE_READ_TIMEOUT") {
			t.Errorf("stderr: got %q; want it to name GATEHOUSE_READ_TIMEOUT", stderr)
		}
	})
}

func TestVersionCommandPrintsVersion(t *testing.T) {
	p := startProc(t, []string{"version"}, nil)
	if code := p.exitCode(exitTimeout); code != 0 {
		t.Errorf("exit code of gatehouse version: got %d; want 0", code)
	}
	if out := p.stdout.String(); !regexp.MustCompile(`^gatehouse \S+\n$`).MatchString(out) {
		t.Errorf("gatehouse version printed: got %q; want \"gatehouse <version>\\n\"", out)
	}

	for _, args := range [][]string{{"bogus"}, {}} {
		p := startProc(t, args, nil)
		if code := p.exitCode(exitTimeout); code == 0 || code == -1 {
			t.Errorf("exit code of gatehouse %v: got %d; want a non-zero exit", args, code)
		}
		if stderr := p.stderr.String(); !strings.Contains(stderr, "usage") {
			t.Errorf("stderr of gatehouse %v: got %q; want a usage message", args, stderr)
		}
	}
}

// problemDoc is the contract's problem document, as JSON or XML.
type problemDoc struct {
	Type      string `json:"type" xml:"type"`
	Title     string `json:"title" xml:"title"`
	Status    int    `json:"status" xml:"status"`
	Detail    string `json:"detail" xml:"detail"`
	RequestID string `json:"request_id" xml:"request_id"`
	Errors    []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors" xml:"-"`
}

// checkProblem checks that r is a problem document of the given status and
// media type, with every field of the contract filled in.
func checkProblem(t *testing.T, what string, r response, status int, mediaType string) problemDoc {
	t.Helper()
	if r.status != status {
		t.Errorf("%s: got status %d; want %d", what, r.status, status)
	}
	if ct := r.header.Get("Content-Type"); ct != mediaType {
		t.Errorf("%s: got Content-Type %q; want %q", what, ct, mediaType)
	}
	var doc problemDoc
	var err error
	if strings.HasSuffix(mediaType, "+xml") {
		err = xml.Unmarshal(r.body, &doc)
	} else {
		err = json.Unmarshal(r.body, &doc)
	}
	if err != nil {
		t.Errorf("%s: got body %q (%v); want a problem document", what, r.body, err)
		return doc
	}
	if !strings.HasPrefix(doc.Type, "https://") || doc.Title == "" || doc.Detail == "" || doc.RequestID == "" {
		t.Errorf("%s: got problem %+v; want type (a URI), title, detail and request_id all set", what, doc)
	}
	if doc.Status != status {
		t.Errorf("%s: got problem status %d; want %d", what, doc.Status, status)
	}
	if id := r.header.Get("X-Request-Id"); doc.RequestID != id {
		t.Errorf("%s: got request_id %q; want the X-Request-Id header %q", what, doc.RequestID, id)
	}
	return doc
}

func TestProxyListenerAnswers404Problem(t *testing.T) {
	p := launch(t, t.TempDir(), nil)
	proxy := "http://" + p.proxyAddr
	for _, path := range []string{"/", "/some/path?q=1", "/admin/v1/services"} {
		for _, method := range []string{"GET", "POST", "DELETE"} {
			r := p.do(method, proxy+path, "", "")
			checkProblem(t, method+" "+path, r, http.StatusNotFound, "application/problem+json")
		}
	}
	r := p.do("GET", proxy+"/x", "", "", "Accept", "application/xml")
	checkProblem(t, "GET /x with Accept: application/xml", r, http.StatusNotFound, "application/problem+xml")

	r = p.do("BREW", proxy+"/", "", "")
	checkProblem(t, "BREW /", r, http.StatusNotImplemented, "application/problem+json")
}

// TestTheProxyIsOnTheFastEngineByDefaultAndTheAdminAlwaysOnStd: with
// neither --engine nor GATEHOUSE_ENGINE the proxy listener serves on the
// fast engine (internal/h1), and std puts it on net/http's; the admin
// listener is net/http's whatever they say. The request line "PRI *
// HTTP/2.0" followed by header fields tells the engines apart: the fast
// one refuses it as a version it does not speak (505, internal/h1's
// stricterHead); net/http hands it to the handler, and the proxy and the
// admin API alike refuse PRI as a method they do not implement (501).
func TestTheProxyIsOnTheFastEngineByDefaultAndTheAdminAlwaysOnStd(t *testing.T) {
	const fast, std = http.StatusHTTPVersionNotSupported, http.StatusNotImplemented
	for _, tc := range []struct {
		desc       string
		flags, env []string
		proxy      int // the status that names the proxy's engine
	}{
		{desc: "neither flag nor variable", env: []string{"GATEHOUSE_ENGINE"}, proxy: fast},
		{desc: "--engine std", flags: []string{"--engine", "std"}, proxy: std},
		{desc: "GATEHOUSE_ENGINE=std", env: []string{"GATEHOUSE_ENGINE=std"}, proxy: std},
		{desc: "--engine fast over GATEHOUSE_ENGINE=std", flags: []string{"--engine", "fast"}, env: []string{"GATEHOUSE_ENGINE=std"}, proxy: fast},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			p := launch(t, t.TempDir(), tc.flags, tc.env...)
			for _, l := range []struct {
				name, addr string
				want       int
			}{{"proxy", p.proxyAddr, tc.proxy}, {"admin", p.adminAddr, std}} {
				conn, err := net.Dial("tcp", l.addr)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				io.WriteString(conn, "PRI * HTTP/2.0\r\nHost: x\r\n\r\n")
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					t.Fatalf("%s listener: %v", l.name, err)
				}
				resp.Body.Close()
				if resp.StatusCode != l.want {
					t.Errorf("%s listener: got %d to PRI * HTTP/2.0; want %d", l.name, resp.StatusCode, l.want)
				}
			}
		})
	}
}

// consumerIDs lists every consumer id through the admin API's pages.
func (p *proc) consumerIDs(token string) map[string]bool {
	p.t.Helper()
	ids := map[string]bool{}
	q := url.Values{"limit": {"500"}}
	for page := 0; ; page++ {
		r := p.do("GET", "/admin/v1/consumers?"+q.Encode(), token, "")
		wantStatus(p.t, "list consumers", r, http.StatusOK)
		var body struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
			NextCursor string `json:"next_cursor"`
		}
		if err := json.Unmarshal(r.body, &body); err != nil {
			p.t.Fatalf("list consumers: got body %q; want a page (%v)", r.body, err)
		}
		for _, c := range body.Data {
			ids[c.ID] = true
		}
		if body.NextCursor == "" {
			return ids
		}
		if page > 100 {
			p.t.Fatalf("list consumers: got more than 100 pages; want the cursor to end")
		}
		q.Set("cursor", body.NextCursor)
	}
}

func TestAcknowledgedCreatesSurviveKill9(t *testing.T) {
	const (
		workers    = 8
		maxCreates = 300                     // attempts in all, killed or not
		killAfter  = 150                     // acknowledged creates before SIGKILL…
		killBy     = 1500 * time.Millisecond // …or this much load, whichever is first
	)
	dataDir := t.TempDir()
	p, tok := firstToken(t, dataDir)

	var (
		next     atomic.Int64 // ids handed out
		acked    atomic.Int64
		killed   atomic.Bool
		mu       sync.Mutex
		ackedIDs []string
		failures []string // errors before the kill
		afterErr atomic.Int64
		inFlight atomic.Int64
		wg       sync.WaitGroup
	)
	tr := &http.Transport{MaxIdleConnsPerHost: workers}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	create := func(id string) (int, error) {
		body := fmt.Sprintf(`{"id":%q,"name":%q}`, id, id)
		req, err := http.NewRequest("POST", "http://"+p.adminAddr+"/admin/v1/consumers", strings.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			// The status line came, but not the whole response: not
			// an acknowledgement.
			return 0, err
		}
		return resp.StatusCode, nil
	}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := next.Add(1)
				if n > maxCreates {
					return
				}
				id := fmt.Sprintf("c-%d", n)
				inFlight.Add(1)
				status, err := create(id)
				inFlight.Add(-1)
				switch {
				case err == nil && status == http.StatusCreated:
					mu.Lock()
					ackedIDs = append(ackedIDs, id)
					mu.Unlock()
					acked.Add(1)
				case killed.Load():
					afterErr.Add(1)
					return // the server is gone
				default:
					mu.Lock()
					failures = append(failures, fmt.Sprintf("POST %s: status %d, error %v", id, status, err))
					mu.Unlock()
					return
				}
			}
		}()
	}

	start := time.Now()
	for acked.Load() < killAfter && time.Since(start) < killBy && next.Load() < maxCreates {
		time.Sleep(time.Millisecond)
	}
	inFlightAtKill := inFlight.Load()
	killed.Store(true)
	p.signal(syscall.SIGKILL)
	loadTime := time.Since(start)
	wg.Wait()
	if code := p.exitCode(exitTimeout); code != -1 {
		t.Fatalf("exit code after SIGKILL: got %d; want -1 (killed by the signal)", code)
	}
	if len(failures) > 0 {
		t.Fatalf("creates before the kill failed: got %q; want every one to be 201", failures)
	}
	if len(ackedIDs) == 0 {
		t.Fatalf("acknowledged creates before the kill: got 0; want some")
	}

	p2 := launch(t, dataDir, nil)
	stored := p2.consumerIDs(tok)
	var lost []string
	for _, id := range ackedIDs {
		if !stored[id] {
			lost = append(lost, id)
		}
	}
	t.Logf("%d creates attempted in %v, %d acknowledged with 201, %d in flight at SIGKILL, %d failed after it; %d consumers after restart (%d committed without acknowledgement)",
		min(next.Load(), maxCreates), loadTime.Round(time.Millisecond), len(ackedIDs), inFlightAtKill, afterErr.Load(),
		len(stored), len(stored)-len(ackedIDs)+len(lost))
	if len(lost) > 0 {
		t.Errorf("acknowledged consumers missing after SIGKILL and restart: got %d missing (%q); want 0", len(lost), lost)
	}
	// Spot-check the item endpoint as well as the list.
	for _, id := range []string{ackedIDs[0], ackedIDs[len(ackedIDs)-1]} {
		wantStatus(t, "GET /admin/v1/consumers/"+id+" after restart", p2.do("GET", "/admin/v1/consumers/"+id, tok, ""), http.StatusOK)
	}
}

func TestSIGTERMFinishesInFlightRequestsAndRefusesNewOnes(t *testing.T) {
	dataDir := t.TempDir()
	p, tok := firstToken(t, dataDir)

	// An in-flight request: headers and half the body sent. Expect:
	// 100-continue makes the server say when its handler has started
	// reading the body, so no sleep is needed to know the request is in
	// flight.
	conn, err := net.Dial("tcp", p.adminAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	body := `{"id":"in-flight-1","name":"in-flight-1"}`
	half := len(body) / 2
	fmt.Fprintf(conn, "POST /admin/v1/consumers HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n",
		p.adminAddr, tok, len(body))
	br := bufio.NewReader(conn)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("interim response: got %q, %v; want HTTP/1.1 100 Continue", line, err)
	}
	if blank, err := br.ReadString('\n'); err != nil || blank != "\r\n" {
		t.Fatalf("end of interim response: got %q, %v; want an empty line", blank, err)
	}
	if _, err := io.WriteString(conn, body[:half]); err != nil {
		t.Fatal(err)
	}

	p.signal(syscall.SIGTERM)

	// New requests, each on a new connection, until the server has seen
	// the signal: the listener stays open while the request above is in
	// flight, and every new request gets 503.
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	var refused response
	deadline := time.Now().Add(5 * time.Second)
	for {
		req, _ := http.NewRequest("GET", "http://"+p.adminAddr+"/admin/v1/services", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := fresh.Do(req)
		if err != nil {
			t.Fatalf("new request during drain: got %v; want a 503 response", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			refused = response{resp.StatusCode, resp.Header, b}
			break
		}
		if resp.StatusCode != http.StatusOK || time.Now().After(deadline) {
			t.Fatalf("new request after SIGTERM: got %d; want 503", resp.StatusCode)
		}
		time.Sleep(5 * time.Millisecond)
	}
	checkProblem(t, "new request during drain", refused, http.StatusServiceUnavailable, "application/problem+json")
	if ra := refused.header.Get("Retry-After"); ra == "" {
		t.Errorf("Retry-After of the 503: got none; want one")
	}
	if p.exited() {
		t.Fatalf("gatehouse exited with a request in flight; want it to wait for the request")
	}

	// The in-flight request completes.
	if _, err := io.WriteString(conn, body[half:]); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("response to the in-flight request: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("in-flight POST during drain: got %d (%s); want 201", resp.StatusCode, b)
	}

	if code := p.exitCode(exitTimeout); code != 0 {
		t.Fatalf("exit code after draining: got %d; want 0", code)
	}

	p2 := launch(t, dataDir, nil)
	wantStatus(t, "GET the consumer created during drain, after restart",
		p2.do("GET", "/admin/v1/consumers/in-flight-1", tok, ""), http.StatusOK)
}

func TestStructuredRequestLogs(t *testing.T) {
	p, tok := firstToken(t, t.TempDir(), "--log-format", "json")
	wantStatus(t, "GET /admin/v1/services", p.do("GET", "/admin/v1/services", tok, "", "X-Request-Id", "e2e-log-1"), http.StatusOK)
	p.stop()

	var found map[string]any
	for _, line := range strings.Split(p.stderr.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		if rec["msg"] == "request" && rec["request_id"] == "e2e-log-1" {
			if found != nil {
				t.Errorf("request log lines for e2e-log-1: got more than one; want one")
			}
			found = rec
		}
	}
	if found == nil {
		t.Fatalf("request log line with request_id e2e-log-1: got none; want one\nstderr:\n%s", p.stderr.String())
	}
	want := map[string]any{"method": "GET", "path": "/admin/v1/services", "status": float64(200), "listener": "admin", "level": "INFO"}
	for k, v := range want {
		if found[k] != v {
			t.Errorf("log field %s: got %v (%T); want %v", k, found[k], found[k], v)
		}
	}
	if d, ok := found["duration"].(float64); !ok || d <= 0 {
		t.Errorf("log field duration: got %v; want a positive number", found["duration"])
	}
	if _, ok := found["time"].(string); !ok {
		t.Errorf("log field time: got %v; want a timestamp", found["time"])
	}
}

// TestQuickStartDeploysProxiesAndServesAgainAfterRestart is the README's
// quick start, as a new user would try it, then a restart.
func TestQuickStartDeploysProxiesAndServesAgainAfterRestart(t *testing.T) {
	up := testupstream.Start(t)
	dir := t.TempDir()
	const token = "quick-start-token-0123456789abcdef"
	p := launch(t, dir, nil, "GATEHOUSE_ADMIN_TOKEN="+token)
	proxy := "http://" + p.proxyAddr

	wantStatus(t, "readyz before any deployment", p.do("GET", "/readyz", "", ""), http.StatusServiceUnavailable)
	wantStatus(t, "create service", p.do("POST", "/admin/v1/services", token, `{"id":"echo","name":"echo","url":"`+up.URL+`"}`), http.StatusCreated)
	wantStatus(t, "create route", p.do("POST", "/admin/v1/routes", token, `{"name":"echo","paths":["/echo/*"],"service_id":"echo"}`), http.StatusCreated)
	wantStatus(t, "drafts do not route", p.do("GET", proxy+"/echo/x", "", ""), http.StatusNotFound)

	dep := p.do("POST", "/admin/v1/deployments", token, `{}`)
	wantStatus(t, "deploy", dep, http.StatusAccepted)
	loc := dep.header.Get("Location")
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := p.do("GET", loc, token, "")
		var d struct{ State, Reason string }
		json.Unmarshal(r.body, &d)
		if d.State == "succeeded" {
			break
		}
		if d.State == "failed" || time.Now().After(deadline) {
			t.Fatalf("deployment: %s", r.body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	wantStatus(t, "readyz after the deployment", p.do("GET", "/readyz", "", ""), http.StatusOK)
	r := p.do("GET", proxy+"/echo/hello?x=1", "", "")
	wantStatus(t, "GET through the proxy", r, http.StatusOK)
	if !strings.Contains(string(r.body), `"path":"/echo/hello"`) || r.header.Get("Via") != "1.1 gatehouse" {
		t.Fatalf("proxied response: Via %q, body %s", r.header.Get("Via"), r.body)
	}
	metrics := p.do("GET", "/metrics", "", "")
	if !strings.Contains(string(metrics.body), `gatehouse_proxy_requests_total{class="2xx",route=`) {
		t.Fatalf("metrics lack the proxied request:\n%s", metrics.body)
	}

	p.signal(syscall.SIGTERM)
	if code := p.exitCode(15 * time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
	again := launch(t, dir, nil)
	logs := again.stderr.String()
	restored, adminUp := strings.Index(logs, "serving the active revision"), strings.Index(logs, `"listener":"admin"`)
	if restored < 0 || adminUp < 0 || restored > adminUp {
		t.Fatalf("after a restart the revision must be served before the admin API listens; logs:\n%s", logs)
	}
	wantStatus(t, "GET through the proxy after restart", again.do("GET", "http://"+again.proxyAddr+"/echo/again", "", ""), http.StatusOK)
}

// launchNode starts one node of a cluster on the shared dataDir and waits
// until the listeners of its role answer: a control node has no proxy
// listener, and a data node only the probes on its admin address.
func launchNode(t testing.TB, dataDir, role, name string, env ...string) *proc {
	t.Helper()
	return startNode(t, role, name, []string{"--data-dir", dataDir}, env...)
}

// startNode starts one node of a cluster with flags (the store's, and any
// overriding the harness's: the last of a flag given twice wins) and waits
// until the listeners of its role answer.
func startNode(t testing.TB, role, name string, flags []string, env ...string) *proc {
	t.Helper()
	return launchWith(t, func(admin, proxy string) ([]string, []string) {
		return append([]string{"serve", "--role", role, "--node-name", name,
			"--admin-addr", admin, "--proxy-addr", proxy, "--heartbeat", "200ms",
			"--read-header-timeout", "2s", "--shutdown-timeout", "10s"}, flags...), env
	})
}

// roleOf returns the --role among serve's arguments (the last given), or
// the default, all.
func roleOf(args []string) string {
	role := "all"
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "--role" {
			role = args[i+1]
		}
	}
	return role
}

// deployAndWait deploys through a control node and returns the finished
// deployment's body.
func (p *proc) deployAndWait(token, body string) map[string]any {
	p.t.Helper()
	dep := p.do("POST", "/admin/v1/deployments", token, body)
	wantStatus(p.t, "deploy", dep, http.StatusAccepted)
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := p.do("GET", dep.header.Get("Location"), token, "")
		var d map[string]any
		json.Unmarshal(r.body, &d)
		if d["state"] == "succeeded" || d["state"] == "failed" {
			return d
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("deployment still unfinished: %s", r.body)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestClusterOfOneControlAndTwoDataNodes runs three processes on one store
// (SQLite in WAL mode, shared by processes of one machine; PostgreSQL is the
// store for a cluster of machines): a deployment through the control node
// completes once both data nodes applied it, and both then route.
func TestClusterOfOneControlAndTwoDataNodes(t *testing.T) {
	up := testupstream.Start(t)
	dir := t.TempDir()
	const token = "cluster-token-0123456789abcdef0123"
	ctl := launchNode(t, dir, "control", "ctl", "GATEHOUSE_ADMIN_TOKEN="+token)
	edges := []*proc{launchNode(t, dir, "data", "edge-1"), launchNode(t, dir, "data", "edge-2")}

	if _, err := net.DialTimeout("tcp", ctl.proxyAddr, time.Second); err == nil {
		t.Fatal("a control node listens on the proxy address")
	}
	for _, e := range edges {
		wantStatus(t, "admin API on a data node", e.do("GET", "/admin/v1/services", token, ""), http.StatusNotFound)
		wantStatus(t, "readyz of a data node before any deployment", e.do("GET", "/readyz", "", ""), http.StatusServiceUnavailable)
	}
	wantStatus(t, "create service", ctl.do("POST", "/admin/v1/services", token, `{"id":"echo","name":"echo","url":"`+up.URL+`"}`), http.StatusCreated)
	wantStatus(t, "create route", ctl.do("POST", "/admin/v1/routes", token, `{"name":"echo","paths":["/echo/*"],"service_id":"echo"}`), http.StatusCreated)

	dep := ctl.deployAndWait(token, `{}`)
	if dep["state"] != "succeeded" || fmt.Sprint(dep["nodes"]) != "[map[node:edge-1 state:applied] map[node:edge-2 state:applied]]" {
		t.Fatalf("deployment: %v; want succeeded, applied by edge-1 and edge-2", dep)
	}
	for i, e := range edges {
		r := e.do("GET", "http://"+e.proxyAddr+"/echo/hello", "", "")
		wantStatus(t, fmt.Sprintf("GET through edge-%d", i+1), r, http.StatusOK)
		if !strings.Contains(string(r.body), `"path":"/echo/hello"`) {
			t.Fatalf("edge-%d proxied: %s", i+1, r.body)
		}
		wantStatus(t, "readyz of a data node after the deployment", e.do("GET", "/readyz", "", ""), http.StatusOK)
	}

	r := ctl.do("GET", "/admin/v1/nodes", token, "")
	wantStatus(t, "list nodes", r, http.StatusOK)
	var list struct {
		Data []struct {
			ID, Role, State string
			Revision        int64
		}
	}
	json.Unmarshal(r.body, &list)
	if got := fmt.Sprint(list.Data); got != "[{ctl control live 0} {edge-1 data live 1} {edge-2 data live 1}]" {
		t.Fatalf("nodes: %s", r.body)
	}

	// A node that stopped is not waited for.
	edges[1].stop()
	wantStatus(t, "edge-2 after it stopped", ctl.do("GET", "/admin/v1/nodes/edge-2", token, ""), http.StatusOK)
	dep = ctl.deployAndWait(token, `{"action":"undeploy"}`)
	if dep["state"] != "succeeded" || fmt.Sprint(dep["nodes"]) != "[map[node:edge-1 state:applied]]" {
		t.Fatalf("deployment with edge-2 stopped: %v; want succeeded, applied by edge-1", dep)
	}
	wantStatus(t, "GET through edge-1 after the undeploy", edges[0].do("GET", "http://"+edges[0].proxyAddr+"/echo/x", "", ""), http.StatusNotFound)
}
