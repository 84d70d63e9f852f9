package main

// End-to-end tests of gatehouse config: validate offline, the README's
// flow against a real server on SQLite and on PostgreSQL, and convert.

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/internal/testupstream"
)

func TestValidateReportsEachProblemAtFileLineColumn(t *testing.T) {
	const aliceKey = "GATEHOUSE_VAR_ALICE_KEY=alice-secret-key-0123456789"
	tests := []struct {
		desc       string
		args       []string
		env        []string
		code       int
		wantStdout string
		wantStderr string
	}{{
		desc: "a directory of files merged", args: []string{"testdata/config/valid"}, env: []string{aliceKey},
		code: 0, wantStdout: "valid: 2 services, 2 routes, 1 consumer, 1 credential, 1 policy, 0 specs\n",
	}, {
		desc: "an unset environment variable", args: []string{"testdata/config/valid"},
		code: 1, wantStderr: "testdata/config/valid/routes.yaml:19:14: /consumers/0/credentials/0/key: names the environment variable GATEHOUSE_VAR_ALICE_KEY, which is not set\n",
	}, {
		desc: "what a schema sees: types and unknown fields", args: []string{"testdata/config/malformed.yaml"},
		code: 1, wantStderr: "testdata/config/malformed.yaml:6:14: /services/0/retries: must be an integer\n" +
			"testdata/config/malformed.yaml:11:18: /routes/0/strip_paths: is not a known field\n",
	}, {
		desc: "what needs meaning: schemes, references, an id repeated across files", args: []string{"testdata/config/invalid"},
		code: 1, wantStderr: "testdata/config/invalid/a.yaml:5:10: /services/0/url: has scheme \"ftp\"; only http and https are supported\n" +
			"testdata/config/invalid/a.yaml:9:17: /routes/0/service_id: refers to services \"ghost\", which does not exist\n" +
			"testdata/config/invalid/b.yaml:3:9: /services/1/id: repeats the id \"orders\" of /services/0\n" +
			"  testdata/config/invalid/a.yaml:3:9: /services/0/id: the other place\n",
	}, {
		desc: "a reference outside the document, without a selection", args: []string{"testdata/config/team-a.yaml"},
		code: 1, wantStderr: "testdata/config/team-a.yaml:7:17: /routes/0/service_id: refers to services \"billing\", which does not exist\n",
	}, {
		desc: "a reference outside the selection is the server's to judge", args: []string{"--select-tag", "team-a", "testdata/config/team-a.yaml"},
		code: 0, wantStdout: "valid: 0 services, 1 route, 0 consumers, 0 credentials, 0 policies, 0 specs\n",
	}, {
		desc: "entries without the selected tag", args: []string{"--select-tag", "team-a", "testdata/config/valid/services.yaml"},
		code: 1, wantStderr: "testdata/config/valid/services.yaml:9:5: /services/1/tags: must include every selected tag (team-a): " +
			"the entry would be outside the part of the configuration this document manages\n",
	}, {
		desc: "secrets a server's draft may keep", args: []string{"testdata/config/no-secrets.yaml"},
		code: 0, wantStdout: "valid: 0 services, 0 routes, 1 consumer, 1 credential, 1 policy, 0 specs\n",
	}, {
		desc: "secrets a file-only node needs", args: []string{"--file-only", "testdata/config/no-secrets.yaml"},
		code: 1, wantStderr: "testdata/config/no-secrets.yaml:11:13: /policies/0/config/jwt/keys/0/secret: must be at least 32 bytes for HS256\n" +
			"testdata/config/no-secrets.yaml:16:9: /consumers/0/credentials/0/key: is required for a new credential (or key_hash): a generated key would be shown to no one\n",
	}, {
		desc: "a file that is not there", args: []string{"testdata/config/none.yaml"},
		code: 1, wantStderr: "testdata/config/none.yaml: cannot be read: no such file or directory\n",
	}}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			r := runCLI(t, tc.env, append([]string{"config", "validate"}, tc.args...)...)
			if r.code != tc.code || r.stdout != tc.wantStdout || r.stderr != tc.wantStderr {
				t.Errorf("exit %d, stdout:\n%s\nstderr:\n%s\nwant exit %d, stdout:\n%s\nstderr:\n%s",
					r.code, r.stdout, r.stderr, tc.code, tc.wantStdout, tc.wantStderr)
			}
		})
	}
}

// TestConfigFlowOfTheREADME runs the README's flow on each store: dump
// a gateway configured by hand, edit the file, diff (exit 2), apply
// --deploy --wait, diff (exit 0), then sync deletes what the file no
// longer holds.
func TestConfigFlowOfTheREADME(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		configFlow(t, nil)
	})
	t.Run("postgres", func(t *testing.T) {
		pg := pgtest.Start(t)
		dsn, err := pg.CreateDatabase("gatehouse")
		if err != nil {
			t.Fatal(err)
		}
		configFlow(t, []string{"--store", dsn})
	})
}

func configFlow(t *testing.T, flags []string) {
	up := testupstream.Start(t)
	const token = "cli-config-token-0123456789abcdef"
	p := launch(t, t.TempDir(), append([]string{"--node-name", "solo"}, flags...), "GATEHOUSE_ADMIN_TOKEN="+token)
	env := cliEnv(p, token)
	proxy := "http://" + p.proxyAddr
	dir := t.TempDir()
	file := filepath.Join(dir, "gateway.yaml")

	// A gateway configured by hand, through the admin API.
	wantStatus(t, "create service", p.do("POST", "/admin/v1/services", token, `{"id":"echo","name":"echo","url":"`+up.URL+`"}`), http.StatusCreated)
	wantStatus(t, "create route", p.do("POST", "/admin/v1/routes", token, `{"id":"echo","name":"echo","paths":["/echo/*"],"service_id":"echo"}`), http.StatusCreated)

	// gatehouse config dump -o gateway.yaml
	r := runCLI(t, env, "config", "dump", "-o", file).want(t, "dump", 0)
	if r.stderr != "Wrote the draft to "+file+".\n" {
		t.Errorf("dump's stderr: got %q", r.stderr)
	}
	dumped := readFile(t, file)
	if !strings.HasPrefix(dumped, "format_version: \"1\"\n") || !strings.Contains(dumped, "  - id: echo\n") {
		t.Fatalf("dumped file:\n%s", dumped)
	}
	runCLI(t, env, "config", "diff", file).want(t, "diff of the file just dumped", 0)

	// Edit: one more route, and the service retries twice.
	edited := strings.Replace(dumped, "routes:\n", "routes:\n  - id: hello\n    name: hello\n    paths: [/hello/*]\n    service_id: echo\n", 1)
	edited = replaceOnce(t, edited, "retries: 1\n", "retries: 2\n")
	writeFile(t, file, edited)

	r = runCLI(t, env, "config", "diff", file).want(t, "diff after editing", 2)
	wantLines(t, "diff after editing", r.stdout,
		`^\+ route hello  at `+regexp.QuoteMeta(file)+`:\d+:5$`,
		`^~ service echo  at `+regexp.QuoteMeta(file)+`:\d+:5$`,
		`^    /retries: 1 -> 2$`,
		`^1 to create, 1 to update, 0 to delete\.$`)
	wantStatus(t, "diff writes nothing", p.do("GET", "/admin/v1/routes/hello", token, ""), http.StatusNotFound)

	r = runCLI(t, env, "config", "apply", "--dry-run", file).want(t, "apply --dry-run", 0)
	wantLines(t, "apply --dry-run", r.stdout, `^1 to create, 1 to update, 0 to delete\.$`)
	wantStatus(t, "apply --dry-run writes nothing", p.do("GET", "/admin/v1/routes/hello", token, ""), http.StatusNotFound)
	// The selection reaches the server, which finds the file's entries
	// outside it.
	r = runCLI(t, env, "config", "diff", "--select-tag", "team-x", file).want(t, "diff --select-tag of untagged entries", 1)
	wantLines(t, "diff --select-tag of untagged entries", r.stderr,
		`^  - `+regexp.QuoteMeta(file)+`:\d+:\d+: /services/0/tags: must include every selected tag \(team-x\)`)

	r = runCLI(t, env, "config", "apply", "--deploy", "--wait", file).want(t, "apply --deploy --wait", 0)
	wantLines(t, "apply --deploy --wait", r.stdout,
		`^Applied: 1 created, 1 updated, 0 deleted\.$`,
		`^  node solo: applied$`,
		`^Deployment \S+ succeeded: revision 1 is served by 1 node\.$`)
	wantStatus(t, "GET /hello through the proxy", p.do("GET", proxy+"/hello/x", "", ""), http.StatusOK)

	r = runCLI(t, env, "config", "diff", file).want(t, "diff after apply", 0)
	if r.stdout != "No changes.\n" {
		t.Errorf("diff after apply printed:\n%s", r.stdout)
	}

	// The file drops route echo: apply leaves it, sync deletes it.
	withoutEcho := regexp.MustCompile(`(?s)  - id: echo\n    name: echo\n    hosts:.*?(\n  - |\n[a-z]|\z)`).ReplaceAllString(edited, "$1")
	if strings.Count(withoutEcho, "- id: echo") != 1 {
		t.Fatalf("editing route echo out of the file left:\n%s", withoutEcho)
	}
	writeFile(t, file, withoutEcho)
	r = runCLI(t, env, "config", "apply", file).want(t, "apply of a file without route echo", 0)
	if !strings.Contains(r.stdout, "No changes.") {
		t.Errorf("apply deleted or changed something:\n%s", r.stdout)
	}
	r = runCLI(t, env, "config", "diff", file).want(t, "diff of a file without route echo", 2)
	wantLines(t, "diff of a file without route echo", r.stdout, `^- route echo$`, `^0 to create, 0 to update, 1 to delete\.$`)
	r = runCLI(t, env, "config", "sync", "--deploy", "--wait", file).want(t, "sync --deploy --wait", 0)
	wantLines(t, "sync", r.stdout, `^- route echo$`, `^Applied: 0 created, 0 updated, 1 deleted\.$`, `succeeded: revision 2 `)
	wantStatus(t, "route echo after sync", p.do("GET", "/admin/v1/routes/echo", token, ""), http.StatusGone)
	wantStatus(t, "GET /echo through the proxy after sync", p.do("GET", proxy+"/echo/x", "", ""), http.StatusNotFound)
	runCLI(t, env, "config", "diff", file).want(t, "diff after sync", 0)

	// A problem only the server sees (a route naming a service the store
	// lacks) is printed at its place in the file.
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, "format_version: \"1\"\nroutes:\n  - id: lost\n    paths: [/lost]\n    service_id: ghost\n")
	r = runCLI(t, env, "config", "diff", bad).want(t, "diff of a route naming no service", 1)
	wantLines(t, "diff of a route naming no service", r.stderr,
		`^error: 422 Unprocessable Content$`,
		`^  - `+regexp.QuoteMeta(bad)+`:5:17: /routes/0/service_id: .*ghost`)
	// A file the loader refuses never reaches the server.
	writeFile(t, bad, "format_version: \"1\"\nroutes:\n  - id: lost\n    paths: /lost\n")
	r = runCLI(t, env, "config", "sync", bad).want(t, "sync of a malformed file", 1)
	if !strings.HasPrefix(r.stderr, bad+":4:12: /routes/0/paths: ") || r.stdout != "" {
		t.Errorf("sync of a malformed file: stdout %q, stderr %q", r.stdout, r.stderr)
	}

	// The dump in JSON, of a selection.
	r = runCLI(t, env, "config", "dump", "--format", "json", "--select-tag", "nobody").want(t, "dump --format json --select-tag", 0)
	if r.stdout != "{\n  \"format_version\": \"1\"\n}\n" {
		t.Errorf("dump of an empty selection as JSON: got %q", r.stdout)
	}
}

func TestConvertFromKongWritesWhatConvertsAndListsTheRest(t *testing.T) {
	out := filepath.Join(t.TempDir(), "gateway.yaml")
	r := runCLI(t, nil, "config", "convert", "--from", "kong", "testdata/config/kong-clean.yml", "-o", out).want(t, "convert of a clean Kong file", 0)
	if r.stdout != "" || r.stderr != "" {
		t.Errorf("convert -o: stdout %q, stderr %q; want nothing", r.stdout, r.stderr)
	}
	if got := readFile(t, out); !strings.Contains(got, "paths:\n      - /echo*\n") {
		t.Errorf("converted file:\n%s", got)
	}
	runCLI(t, nil, "config", "validate", out).want(t, "validate of the converted file", 0)

	kong := filepath.Join("..", "..", "config", "kong", "testdata", "kong-3.0.yml")
	r = runCLI(t, nil, "config", "convert", "--from", "kong", kong).want(t, "convert of a Kong file with what has no equivalent", 3)
	if !strings.HasPrefix(r.stdout, "format_version: \"1\"\n") {
		t.Errorf("the converted part was not written:\n%s", r.stdout)
	}
	wantLines(t, "dropped items", r.stderr,
		`^`+regexp.QuoteMeta(kong)+`:\d+:\d+: services\[0\]\.routes\[\d+\]\.paths\[0\]: .*regular expression`,
		`^`+regexp.QuoteMeta(kong)+`:\d+:\d+: plugins\[\d+\]: plugin "oauth2": `,
		`^\d+ items above not converted, or converted with a difference; the rest was written\.$`)
	runCLI(t, nil, "config", "convert", "--from", "traefik", kong).want(t, "convert --from traefik", 1)
}

// wantLines fails the test unless each pattern matches a line of text.
func wantLines(t testing.TB, what, text string, patterns ...string) {
	t.Helper()
	for _, p := range patterns {
		if !regexp.MustCompile(`(?m)` + p).MatchString(text) {
			t.Errorf("%s: no line matches %s in:\n%s", what, p, text)
		}
	}
}

func replaceOnce(t testing.TB, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("%q not found in:\n%s", old, s)
	}
	return strings.Replace(s, old, new, 1)
}

func readFile(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t testing.TB, name, data string) {
	t.Helper()
	// Written beside and renamed into place, as editors and Kubernetes
	// swap files whole: a node polling the files every few milliseconds
	// could otherwise catch one truncated, twice in a row on a loaded
	// machine, and rightly refuse it.
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		t.Fatal(err)
	}
}

// The README's way over from Kong: convert, validate, apply and deploy,
// and the gateway answers as Kong did: the key-auth plugin's key lets a
// request through, its absence is 401.
func TestKongFileConvertedAppliedAndServed(t *testing.T) {
	up := testupstream.Start(t)
	dir := t.TempDir()
	kongFile, out := filepath.Join(dir, "kong.yml"), filepath.Join(dir, "gatehouse.yaml")
	writeFile(t, kongFile, `_format_version: "3.0"
services:
  - name: echo
    url: `+up.URL+`
    routes:
      - name: echo
        paths: [/echo]
    plugins:
      - name: key-auth
        config:
          key_names: [apikey]
consumers:
  - username: alice
    keyauth_credentials:
      - key: alice-secret-key-0123456789
`)
	runCLI(t, nil, "config", "convert", "--from", "kong", kongFile, "-o", out).want(t, "convert", 0)
	if strings.Contains(readFile(t, out), "alice-secret-key-0123456789") {
		t.Fatalf("the converted file holds the key in the clear:\n%s", readFile(t, out))
	}
	runCLI(t, nil, "config", "validate", out).want(t, "validate", 0)

	const token = "kong-flow-token-0123456789abcdef"
	p := launch(t, t.TempDir(), []string{"--node-name", "solo"}, "GATEHOUSE_ADMIN_TOKEN="+token)
	runCLI(t, cliEnv(p, token), "config", "apply", "--deploy", "--wait", out).want(t, "apply --deploy --wait", 0)
	proxy := "http://" + p.proxyAddr
	wantStatus(t, "with the key", p.do("GET", proxy+"/echo/x", "", "", "apikey", "alice-secret-key-0123456789"), http.StatusOK)
	wantStatus(t, "without a key", p.do("GET", proxy+"/echo/x", "", ""), http.StatusUnauthorized)
	wantStatus(t, "Kong's prefix matched /echoes too", p.do("GET", proxy+"/echoes", "", "", "apikey", "alice-secret-key-0123456789"), http.StatusOK)
}
