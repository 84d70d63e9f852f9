package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testupstream"
)

// waitFor polls cond for up to ten seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

// A node run from files, as a ConfigMap mounted as a directory runs one:
// the files are served, each valid change is deployed, an invalid one is
// refused and listed while the last good revision keeps serving, and the
// admin API reads but never writes.
func TestServeFromFilesDeploysEachValidChangeAndRefusesAnInvalidOne(t *testing.T) {
	up := testupstream.Start(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	if err := os.Mkdir(cfg, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(cfg, "services.yaml"), `format_version: "1"
services:
  - id: echo
    name: echo
    url: ${{ env "GATEHOUSE_VAR_ECHO_URL" }}
`)
	routes := filepath.Join(cfg, "routes.yaml")
	writeFile(t, routes, `format_version: "1"
routes:
  - id: echo
    paths: [/echo/*]
    service_id: echo
`)
	const token = "files-e2e-token-0123456789abcdef0123"
	p := launch(t, filepath.Join(dir, "data"), []string{"--config", cfg, "--config-poll", "50ms"},
		"GATEHOUSE_ADMIN_TOKEN="+token, "GATEHOUSE_VAR_ECHO_URL="+up.URL)
	proxy := "http://" + p.proxyAddr

	waitFor(t, "the files are served", func() bool {
		return p.do("GET", proxy+"/echo/a", "", "").status == http.StatusOK
	})
	wantStatus(t, "readyz", p.do("GET", "/readyz", "", ""), http.StatusOK)

	// The admin API is read-only: every write is 405 with Allow: GET, HEAD.
	for _, w := range []struct{ method, path, body string }{
		{"POST", "/admin/v1/routes", `{"paths":["/x"],"service_id":"echo"}`},
		{"DELETE", "/admin/v1/routes/echo", ""},
		{"PUT", "/admin/v1/config", `{"format_version":"1"}`},
		{"POST", "/admin/v1/deployments", `{}`},
	} {
		r := p.do(w.method, w.path, token, w.body)
		checkProblem(t, w.method+" "+w.path, r, http.StatusMethodNotAllowed, "application/problem+json")
		if got := r.header.Get("Allow"); got != "GET, HEAD" {
			t.Fatalf("%s %s: Allow %q; want GET, HEAD", w.method, w.path, got)
		}
	}
	wantStatus(t, "reading a route", p.do("GET", "/admin/v1/routes/echo", token, ""), http.StatusOK)

	// A valid change is deployed as a new revision.
	writeFile(t, routes, `format_version: "1"
routes:
  - id: echo
    paths: [/echo/*]
    service_id: echo
  - id: hello
    paths: [/hello]
    service_id: echo
`)
	waitFor(t, "the added route is served", func() bool {
		return p.do("GET", proxy+"/hello", "", "").status == http.StatusOK
	})

	// An invalid change is refused, listed with its place, and the last
	// good revision keeps serving.
	writeFile(t, routes, `format_version: "1"
routes:
  - id: echo
    paths: [echo]
    service_id: echo
`)
	var reason string
	waitFor(t, "a failed deployment lists the refusal", func() bool {
		var list struct {
			Data []struct{ State, Reason string }
		}
		json.Unmarshal(p.do("GET", "/admin/v1/deployments", token, "").body, &list)
		for _, d := range list.Data {
			if d.State == "failed" {
				reason = d.Reason
				return true
			}
		}
		return false
	})
	if want := routes + ":4:13: /routes/0/paths/0: "; !strings.Contains(reason, want) {
		t.Fatalf("the refusal's reason %q does not place the problem at %q", reason, want)
	}
	wantStatus(t, "readyz after the refusal", p.do("GET", "/readyz", "", ""), http.StatusOK)
	wantStatus(t, "the last good revision still routes", p.do("GET", proxy+"/hello", "", ""), http.StatusOK)
	if !strings.Contains(p.stderr.String(), "configuration files refused") {
		t.Fatalf("the refusal is not logged:\n%s", p.stderr.String())
	}
}

func TestServeFromFilesThatAreNotValidDoesNotStart(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "gatehouse.yaml")
	writeFile(t, file, "format_version: \"1\"\nservices:\n  - id: echo\n    name: echo\n    url: ${{ env \"HOME\" }}\n")
	addrs := freeAddrs(t, 2)
	p := startProc(t, []string{"serve", "--config", file, "--data-dir", filepath.Join(dir, "data"),
		"--admin-addr", addrs[0], "--proxy-addr", addrs[1]}, nil)
	if code := p.exitCode(10 * time.Second); code != 1 {
		t.Fatalf("exit code %d; want 1", code)
	}
	if want := file + ":5:10: /services/0/url: "; !strings.Contains(p.stderr.String(), want) {
		t.Fatalf("stderr does not place the problem at %q:\n%s", want, p.stderr.String())
	}
}

func TestServeFromFilesRefusesAStoreOrARole(t *testing.T) {
	file := filepath.Join(t.TempDir(), "gatehouse.yaml")
	writeFile(t, file, "format_version: \"1\"\n")
	for _, extra := range [][]string{{"--store", "sqlite"}, {"--role", "data"}} {
		r := runCLI(t, nil, append([]string{"serve", "--config", file}, extra...)...)
		r.want(t, strings.Join(extra, " "), 1)
		if !strings.Contains(r.stderr, "--config") {
			t.Fatalf("%v: stderr %q does not explain", extra, r.stderr)
		}
	}
}
