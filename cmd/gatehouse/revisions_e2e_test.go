package main

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testupstream"
)

// TestRevisionsDiffShowsWhatChangedAndWhatADeploymentChanged deploys two
// revisions apart in a service, a route each way and a credential's key,
// then an undeploy, and reads the differences with the built binary: by
// revision numbers, by deployment, from the empty configuration, and a
// missing revision's 404.
func TestRevisionsDiffShowsWhatChangedAndWhatADeploymentChanged(t *testing.T) {
	up := testupstream.Start(t)
	const token = "cli-revisions-token-0123456789abcdef"
	const key1, key2 = "alice-key1-0123456789", "alice-key2-0123456789"
	p := launch(t, t.TempDir(), []string{"--node-name", "solo"}, "GATEHOUSE_ADMIN_TOKEN="+token)
	env := cliEnv(p, token)
	admin := func(what, method, path, body string, want int) {
		t.Helper()
		wantStatus(t, what, p.do(method, path, token, body), want)
	}
	deploymentID := regexp.MustCompile(`(?m)^Deployment (\S+): `)
	deploy := func(what string) string {
		t.Helper()
		r := runCLI(t, env, "deploy", "--wait").want(t, what, 0)
		m := deploymentID.FindStringSubmatch(r.stdout)
		if m == nil {
			t.Fatalf("%s printed no deployment id:\n%s", what, r.stdout)
		}
		return m[1]
	}

	admin("create service", "POST", "/admin/v1/services", `{"id":"echo","name":"echo","url":"`+up.URL+`"}`, http.StatusCreated)
	admin("create route", "POST", "/admin/v1/routes", `{"id":"old","name":"old","paths":["/old/*"],"service_id":"echo"}`, http.StatusCreated)
	admin("create consumer", "POST", "/admin/v1/consumers", `{"id":"c1","name":"alice"}`, http.StatusCreated)
	admin("create credential", "POST", "/admin/v1/consumers/c1/credentials", `{"id":"k1","type":"key-auth","key":"`+key1+`"}`, http.StatusCreated)
	deploy("first deploy")

	admin("change service", "PUT", "/admin/v1/services/echo", `{"id":"echo","name":"echo","url":"`+up.URL+`/v2"}`, http.StatusOK)
	admin("delete route", "DELETE", "/admin/v1/routes/old", "", http.StatusNoContent)
	admin("create route", "POST", "/admin/v1/routes", `{"id":"new","name":"new","paths":["/new/*"],"service_id":"echo"}`, http.StatusCreated)
	admin("delete credential", "DELETE", "/admin/v1/consumers/c1/credentials/k1", "", http.StatusNoContent)
	admin("create credential again", "POST", "/admin/v1/consumers/c1/credentials", `{"id":"k1","type":"key-auth","key":"`+key2+`"}`, http.StatusCreated)
	second := deploy("second deploy")

	changes := "~ service echo\n" +
		`    /url: "` + up.URL + `" -> "` + up.URL + `/v2"` + "\n" +
		"+ route new\n" +
		"- route old\n" +
		"~ credential k1\n" +
		`    /key: "(secret)" -> "(secret)"` + "\n" +
		"1 created, 2 updated, 1 deleted.\n"
	r := runCLI(t, env, "revisions", "diff", "1", "2").want(t, "revisions diff 1 2", 0)
	if want := "From revision 1 to revision 2:\n" + changes; r.stdout != want {
		t.Errorf("revisions diff 1 2: got\n%s\nwant\n%s", r.stdout, want)
	}
	r = runCLI(t, env, "revisions", "diff", "--deployment", second).want(t, "revisions diff --deployment", 0)
	if want := "Deployment " + second + " (deploy of revision 2, succeeded), from revision 1:\n" + changes; r.stdout != want {
		t.Errorf("revisions diff --deployment %s: got\n%s\nwant\n%s", second, r.stdout, want)
	}
	for _, key := range []string{key1, key2} {
		if strings.Contains(r.stdout, key) {
			t.Errorf("a credential's key is in the output:\n%s", r.stdout)
		}
	}

	r = runCLI(t, env, "revisions", "diff", "0", "1").want(t, "revisions diff 0 1", 0)
	if want := "From the empty configuration to revision 1:\n+ service echo\n+ route old\n+ consumer c1 (alice)\n+ credential k1\n" +
		"4 created, 0 updated, 0 deleted.\n"; r.stdout != want {
		t.Errorf("revisions diff 0 1: got\n%s\nwant\n%s", r.stdout, want)
	}

	// An undeploy replaced revision 2 with nothing: everything goes.
	resp := p.do("POST", "/admin/v1/deployments", token, `{"action":"undeploy"}`)
	wantStatus(t, "undeploy", resp, http.StatusAccepted)
	var undeploy struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	for deadline := time.Now().Add(20 * time.Second); undeploy.State != "succeeded"; time.Sleep(20 * time.Millisecond) {
		if json.Unmarshal(resp.body, &undeploy); time.Now().After(deadline) {
			t.Fatalf("undeploy still %s", undeploy.State)
		}
		resp = p.do("GET", "/admin/v1/deployments/"+undeploy.ID, token, "")
	}
	r = runCLI(t, env, "revisions", "diff", "--deployment", undeploy.ID).want(t, "revisions diff --deployment of the undeploy", 0)
	if want := "Deployment " + undeploy.ID + " (undeploy, succeeded), from revision 2:\n- credential k1\n- consumer c1 (alice)\n- route new\n- service echo\n" +
		"0 created, 0 updated, 4 deleted.\n"; r.stdout != want {
		t.Errorf("revisions diff --deployment of the undeploy: got\n%s\nwant\n%s", r.stdout, want)
	}

	r = runCLI(t, env, "status").want(t, "status", 0)
	if !regexp.MustCompile(`(?m)^\S+\s+undeploy\s+none\s+2\s+succeeded\s+`).MatchString(r.stdout) {
		t.Errorf("status: want the undeploy replacing revision 2:\n%s", r.stdout)
	}

	r = runCLI(t, env, "revisions", "diff", "1", "9").want(t, "revisions diff 1 9", 1)
	if !strings.Contains(r.stderr, "error: 404 Not Found\n") || r.stdout != "" {
		t.Errorf("revisions diff 1 9: stdout %q, stderr\n%s\nwant the 404 problem as lines", r.stdout, r.stderr)
	}
}
