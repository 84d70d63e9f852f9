package admin

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// TestTokenEndpointDescribesThePresentedTokenWithoutItsSecret: any valid
// token, read-only and consumer-scoped ones included, reads its own id,
// role and scope at /token, and never its secret; none, or an unknown one,
// is a 401 with a challenge; a write is a 405.
func TestTokenEndpointDescribesThePresentedTokenWithoutItsSecret(t *testing.T) {
	api := newTestAPI(t)
	api.must(201, "POST", "/admin/v1/consumers", `{"id":"alice","name":"alice"}`)
	readOnly := api.makeToken(gatehouse.RoleReadOnly, "")
	scoped := api.makeToken(gatehouse.RoleAdmin, "alice")
	for _, tc := range []struct {
		desc       string
		secret     string
		status     int
		role       string
		consumerID string
	}{
		{desc: "admin token", secret: api.token, status: 200, role: "admin"},
		{desc: "read-only token", secret: readOnly, status: 200, role: "read-only"},
		{desc: "token scoped to a consumer", secret: scoped, status: 200, role: "admin", consumerID: "alice"},
		{desc: "unknown token", secret: "gha_not-a-token-anyone-was-given", status: 401},
		{desc: "no token", secret: "", status: 401},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			auth := ""
			if tc.secret != "" {
				auth = "Bearer " + tc.secret
			}
			r := api.do("GET", TokenPath, "", h("Authorization", auth))
			if r.status != tc.status {
				t.Fatalf("GET %s: got %d; want %d; body %s", TokenPath, r.status, tc.status, r.body)
			}
			if tc.status == 401 {
				if r.header.Get("WWW-Authenticate") == "" {
					t.Errorf("401 without WWW-Authenticate")
				}
				return
			}
			if tc.secret != "" && strings.Contains(string(r.body), tc.secret) {
				t.Errorf("body %s holds the token's secret", r.body)
			}
			m := r.json()
			if m["id"] == nil || m["id"] == "" {
				t.Errorf("id: got %v; want the token's id", m["id"])
			}
			if m["role"] != tc.role {
				t.Errorf("role: got %v; want %s", m["role"], tc.role)
			}
			if got, _ := m["consumer_id"].(string); got != tc.consumerID {
				t.Errorf("consumer_id: got %q; want %q", got, tc.consumerID)
			}
			if _, ok := m["token"]; ok {
				t.Errorf("body has a token member: %s", r.body)
			}
		})
	}
	for _, method := range []string{"POST", "PUT", "PATCH", "DELETE"} {
		r := api.do(method, TokenPath, "")
		if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "GET, HEAD, OPTIONS" {
			t.Errorf("%s %s: got %d, Allow %q; want 405, Allow GET, HEAD, OPTIONS", method, TokenPath, r.status, r.header.Get("Allow"))
		}
	}
}

// TestConsoleIsServedBesideTheAPIButNotOnAProbesOnlyListener: the admin
// listener hands /console and /console/... to the console without asking
// for credentials (the console asks for the token itself), also on a node
// configured from files (whose API the console then only reads); a data
// node's listener, which has no API, does not serve it.
func TestConsoleIsServedBesideTheAPIButNotOnAProbesOnlyListener(t *testing.T) {
	con := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	for _, tc := range []struct {
		desc   string
		opts   Options
		path   string
		status int
	}{
		{desc: "the console's root", opts: Options{Console: con}, path: "/console/", status: http.StatusTeapot},
		{desc: "a file under it", opts: Options{Console: con}, path: "/console/s/x/app.js", status: http.StatusTeapot},
		{desc: "without the slash", opts: Options{Console: con}, path: "/console", status: http.StatusTeapot},
		{desc: "a path that only starts alike", opts: Options{Console: con}, path: "/consoles", status: http.StatusNotFound},
		{desc: "a node configured from files", opts: Options{Console: con, ReadOnly: true}, path: "/console/", status: http.StatusTeapot},
		{desc: "no console configured", opts: Options{}, path: "/console/", status: http.StatusNotFound},
		{desc: "a probes-only listener", opts: Options{Console: con, ProbesOnly: true}, path: "/console/", status: http.StatusNotFound},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			api := newTestAPI(t, withAdminOptions(func(o *Options) {
				o.Console, o.ProbesOnly, o.ReadOnly = tc.opts.Console, tc.opts.ProbesOnly, tc.opts.ReadOnly
			}))
			r := api.do("GET", tc.path, "", h("Authorization", ""))
			if r.status != tc.status {
				t.Errorf("GET %s: got %d; want %d", tc.path, r.status, tc.status)
			}
		})
	}
}
