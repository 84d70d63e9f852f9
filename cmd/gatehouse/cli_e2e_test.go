package main

// End-to-end tests of the command-line client: the built binary run as a
// user would, against a real server, judged by its exit code and output.

import (
	"bytes"
	"context"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testupstream"
)

// cliTimeout bounds one run of a client command; no test asserts on it.
const cliTimeout = 60 * time.Second

// cliResult is what a finished command showed.
type cliResult struct {
	code           int
	stdout, stderr string
}

// runCLI runs the binary with args and the environment env (GATEHOUSE_
// variables of the test's own environment left out) and waits for it.
func runCLI(t testing.TB, env []string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, gatehouseBin, args...)
	cmd.Env = cleanEnv(env)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("gatehouse %v still running after %v", args, cliTimeout)
	}
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("gatehouse %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return cliResult{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// want fails the test unless the command exited with code.
func (r cliResult) want(t testing.TB, what string, code int) cliResult {
	t.Helper()
	if r.code != code {
		t.Fatalf("%s: exit code %d; want %d\nstdout:\n%s\nstderr:\n%s", what, r.code, code, r.stdout, r.stderr)
	}
	return r
}

func TestHelpUsageAndExitCodes(t *testing.T) {
	tests := []struct {
		args       []string
		code       int
		stdout     string // a substring of stdout ("" for none required)
		stderr     string // a substring of stderr
		quietStdio bool   // nothing on stdout
	}{
		{args: []string{"--help"}, code: 0, stdout: "Usage:\n  gatehouse [command]"},
		{args: []string{"-h"}, code: 0, stdout: "Managing a gateway through its admin API:"},
		{args: []string{"help", "config"}, code: 0, stdout: "Usage:\n  gatehouse config [command]"},
		{args: []string{"--version"}, code: 0, stdout: "gatehouse "},
		// gatehouse alone is a usage error: the usage, and exit 1.
		{args: []string{}, code: 1, stderr: "Usage:\n  gatehouse [command]", quietStdio: true},
		{args: []string{"bogus"}, code: 1, stderr: "unknown command \"bogus\" for \"gatehouse\"\nRun 'gatehouse --help' for usage.", quietStdio: true},
		{args: []string{"config"}, code: 1, stderr: "gatehouse: config needs a command", quietStdio: true},
		{args: []string{"config", "valdate"}, code: 1, stderr: "did you mean validate?", quietStdio: true},
		{args: []string{"serve", "--bogus"}, code: 1, stderr: "unknown flag: --bogus\nRun 'gatehouse serve --help' for usage.", quietStdio: true},
		{args: []string{"serve", "extra"}, code: 1, stderr: "Run 'gatehouse serve --help' for usage.", quietStdio: true},
		{args: []string{"serve", "--engine", "turbo"}, code: 1, stderr: `--engine must be std or fast, not "turbo"`, quietStdio: true},
		{args: []string{"serve", "--max-connections", "0"}, code: 1, stderr: `--max-connections must be positive`, quietStdio: true},
		{args: []string{"rollback"}, code: 1, stderr: "accepts 1 arg(s), received 0", quietStdio: true},
		{args: []string{"rollback", "latest"}, code: 1, stderr: `REVISION must be a revision number (1 or more), not "latest"`, quietStdio: true},
		{args: []string{"revisions", "diff", "1"}, code: 1, stderr: "accepts 2 arg(s), received 1", quietStdio: true},
		{args: []string{"revisions", "diff", "1", "latest"}, code: 1, stderr: `TO must be a revision number (0 for the empty configuration), not "latest"`, quietStdio: true},
		{args: []string{"revisions", "diff", "--deployment", "d1", "1"}, code: 1, stderr: `unknown command "1" for "gatehouse revisions diff"`, quietStdio: true},
		{args: []string{"config", "validate"}, code: 1, stderr: "requires at least 1 arg(s)", quietStdio: true},
		{args: []string{"config", "convert", "x.yml"}, code: 1, stderr: "--from is required", quietStdio: true},
		{args: []string{"config", "apply", "--wait", "x.yaml"}, code: 1, stderr: "--wait needs --deploy", quietStdio: true},
	}
	for _, tc := range tests {
		t.Run(strings.Join(append([]string{"gatehouse"}, tc.args...), " "), func(t *testing.T) {
			r := runCLI(t, nil, tc.args...).want(t, "exit code", tc.code)
			if !strings.Contains(r.stdout, tc.stdout) {
				t.Errorf("stdout: got\n%s\nwant it to contain %q", r.stdout, tc.stdout)
			}
			if !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("stderr: got\n%s\nwant it to contain %q", r.stderr, tc.stderr)
			}
			if tc.quietStdio && r.stdout != "" {
				t.Errorf("stdout of a usage error: got %q; want nothing", r.stdout)
			}
		})
	}
}

func TestEveryCommandAnswersHelp(t *testing.T) {
	for _, path := range []string{"serve", "version", "completion", "completion bash", "config", "config validate", "config dump",
		"config diff", "config apply", "config sync", "config convert", "deploy", "rollback", "revisions", "revisions diff", "status"} {
		t.Run(path, func(t *testing.T) {
			r := runCLI(t, nil, append(strings.Fields(path), "--help")...).want(t, path+" --help", 0)
			if !strings.Contains(r.stdout, "Usage:\n  gatehouse "+path) || r.stderr != "" {
				t.Errorf("gatehouse %s --help: stdout\n%s\nstderr %q; want its usage on stdout only", path, r.stdout, r.stderr)
			}
		})
	}
	// serve's help keeps its flags' names, defaults and texts.
	r := runCLI(t, nil, "serve", "--help")
	for _, want := range []string{
		`--admin-addr string              listen address of the admin API (default "127.0.0.1:9080")`,
		`--tombstone-retention duration   how long a deleted id answers 410 Gone before 404 (default 24h0m0s)`,
		"GATEHOUSE_ADMIN_ADDR",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("serve --help lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestCompletionEmitsAScriptForEachShell(t *testing.T) {
	tests := []struct{ shell, marker string }{
		{"bash", "__start_gatehouse"},
		{"zsh", "#compdef gatehouse"},
		{"fish", "complete -c gatehouse"},
		{"powershell", "Register-ArgumentCompleter"},
	}
	for _, tc := range tests {
		t.Run(tc.shell, func(t *testing.T) {
			r := runCLI(t, nil, "completion", tc.shell).want(t, "completion "+tc.shell, 0)
			if !strings.Contains(r.stdout, tc.marker) {
				t.Errorf("completion %s: got %d bytes without %q", tc.shell, len(r.stdout), tc.marker)
			}
		})
	}
	// The script completes the commands themselves.
	r := runCLI(t, nil, "__complete", "config", "")
	for _, sub := range []string{"apply", "diff", "dump", "sync", "validate", "convert"} {
		if !strings.Contains(r.stdout, sub+"\t") {
			t.Errorf("completions of gatehouse config: got\n%s\nwant %s among them", r.stdout, sub)
		}
	}
}

// cliEnv is the environment of a client command talking to p with token.
func cliEnv(p *proc, token string) []string {
	return []string{"GATEHOUSE_ADMIN_URL=http://" + p.adminAddr, "GATEHOUSE_ADMIN_TOKEN=" + token}
}

// TestDeployRollbackAndStatusFollowTheDeployments deploys and rolls back
// with --wait, shows the status, and has a deployment fail: the command
// exits 1 with the reason.
func TestDeployRollbackAndStatusFollowTheDeployments(t *testing.T) {
	up := testupstream.Start(t)
	const token = "cli-deploy-token-0123456789abcdef"
	p := launch(t, t.TempDir(), []string{"--node-name", "solo"}, "GATEHOUSE_ADMIN_TOKEN="+token)
	env := cliEnv(p, token)
	proxy := "http://" + p.proxyAddr

	r := runCLI(t, env, "status").want(t, "status before any deployment", 0)
	if !strings.Contains(r.stdout, "Active revision: none (nothing deployed yet)") || !strings.Contains(r.stdout, "Deployments: none") {
		t.Errorf("status before any deployment:\n%s", r.stdout)
	}

	wantStatus(t, "create service", p.do("POST", "/admin/v1/services", token, `{"id":"echo","name":"echo","url":"`+up.URL+`"}`), http.StatusCreated)
	wantStatus(t, "create route", p.do("POST", "/admin/v1/routes", token, `{"id":"echo","name":"echo","paths":["/echo/*"],"service_id":"echo"}`), http.StatusCreated)
	r = runCLI(t, env, "deploy", "--wait").want(t, "deploy --wait", 0)
	if !regexp.MustCompile(`(?m)^Deployment \S+: deploy of revision 1, pending\.$`).MatchString(r.stdout) ||
		!strings.Contains(r.stdout, "  node solo: applied\n") ||
		!regexp.MustCompile(`(?m)^Deployment \S+ succeeded: revision 1 is served by 1 node\.$`).MatchString(r.stdout) {
		t.Errorf("deploy --wait printed:\n%s", r.stdout)
	}
	wantStatus(t, "GET through the proxy after deploy --wait", p.do("GET", proxy+"/echo/x", "", ""), http.StatusOK)

	// Revision 2 drops the route; a rollback to 1 brings it back.
	wantStatus(t, "delete route", p.do("DELETE", "/admin/v1/routes/echo", token, ""), http.StatusNoContent)
	runCLI(t, env, "deploy", "--wait").want(t, "second deploy", 0)
	wantStatus(t, "GET after deploying revision 2", p.do("GET", proxy+"/echo/x", "", ""), http.StatusNotFound)
	r = runCLI(t, env, "rollback", "1", "--wait").want(t, "rollback 1 --wait", 0)
	if !strings.Contains(r.stdout, "rollback to revision 1") || !strings.Contains(r.stdout, "succeeded: revision 1 is served") {
		t.Errorf("rollback --wait printed:\n%s", r.stdout)
	}
	wantStatus(t, "GET after the rollback", p.do("GET", proxy+"/echo/x", "", ""), http.StatusOK)

	r = runCLI(t, env, "status").want(t, "status", 0)
	for _, re := range []string{
		`(?m)^Active revision: 1 \(deployment \S+\)$`,
		`(?m)^NODE\s+ROLE\s+STATE\s+SERVES\s+LAST SEEN\s+ERROR$`,
		`(?m)^solo\s+all\s+live\s+1\s+`,
		`(?m)^DEPLOYMENT\s+ACTION\s+REVISION\s+REPLACED\s+STATE\s+CREATED\s+REASON$`,
		`(?m)^\S+\s+deploy\s+1\s+none\s+succeeded\s+`,
		`(?m)^\S+\s+deploy\s+2\s+1\s+succeeded\s+`,
		`(?m)^\S+\s+rollback\s+1\s+2\s+succeeded\s+`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("status lacks %s:\n%s", re, r.stdout)
		}
	}

	// A rollback to a revision that does not exist: the problem, readably.
	r = runCLI(t, env, "rollback", "99").want(t, "rollback 99", 1)
	if !strings.Contains(r.stderr, "error: 422 Unprocessable Content\n") || !strings.Contains(r.stderr, "  - revision: ") || strings.Contains(r.stderr, "{") {
		t.Errorf("rollback 99: stderr\n%s\nwant the 422 problem as lines", r.stderr)
	}

	// A revision this node cannot serve (a rate limit counting in Redis,
	// and no --redis-url) fails: exit 1, with the node's reason.
	wantStatus(t, "create policy", p.do("POST", "/admin/v1/policies", token,
		`{"id":"shared","name":"shared","type":"rate-limit","config":{"requests":1,"per":"hour","by":"ip","store":"redis"}}`), http.StatusCreated)
	wantStatus(t, "route with the policy", p.do("POST", "/admin/v1/routes", token,
		`{"id":"limited","name":"limited","paths":["/limited/*"],"service_id":"echo","policies":["shared"]}`), http.StatusCreated)
	r = runCLI(t, env, "deploy", "--wait").want(t, "deploy of a revision the node cannot apply", 1)
	if !strings.Contains(r.stdout, "  node solo: failed: ") || !regexp.MustCompile(`(?m)^Deployment \S+ failed: .*--redis-url`).MatchString(r.stdout) {
		t.Errorf("failed deploy --wait printed:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
	r = runCLI(t, env, "status").want(t, "status after a failed deployment", 0)
	if !regexp.MustCompile(`(?m)^Active revision: 1 \(deployment \S+\)$`).MatchString(r.stdout) {
		t.Errorf("status after a failed deployment: want revision 1 still active:\n%s", r.stdout)
	}
}

func TestClientCommandsTakeTheTokenFileAndExplainA401(t *testing.T) {
	dataDir := t.TempDir()
	p, _ := firstToken(t, dataDir)
	url := "http://" + p.adminAddr

	// The file serve wrote works as it is.
	runCLI(t, nil, "status", "--admin-url", url, "--token-file", filepath.Join(dataDir, "admin-token")).want(t, "status --token-file", 0)

	r := runCLI(t, nil, "status", "--admin-url", url).want(t, "status without a token", 1)
	if !strings.Contains(r.stderr, "error: 401 Unauthorized") || !strings.Contains(r.stderr, "hint: no admin token was sent") {
		t.Errorf("status without a token: stderr\n%s", r.stderr)
	}
	r = runCLI(t, []string{"GATEHOUSE_ADMIN_TOKEN=wrong-token-0123456789abcdefghijkl"}, "status", "--admin-url", url).want(t, "status with a wrong token", 1)
	if !strings.Contains(r.stderr, "error: 401 Unauthorized") || !strings.Contains(r.stderr, "hint: the admin token from GATEHOUSE_ADMIN_TOKEN was refused") {
		t.Errorf("status with a wrong token: stderr\n%s", r.stderr)
	}
	r = runCLI(t, nil, "status", "--admin-url", "http://"+freeAddrs(t, 1)[0]).want(t, "status with nothing listening", 1)
	if !strings.Contains(r.stderr, "connection refused") || !strings.Contains(r.stderr, "hint: is gatehouse serve running there?") {
		t.Errorf("status with nothing listening: stderr\n%s", r.stderr)
	}
}
