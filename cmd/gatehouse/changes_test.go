package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/config"
)

func TestChangeSetPrinterShowsCreateUpdateAndDeleteReadably(t *testing.T) {
	tests := []struct {
		desc  string
		cs    config.ChangeSet
		place func(string) string
		want  string
	}{{
		desc: "no changes",
		cs:   config.ChangeSet{DryRun: true},
		want: "No changes.\n",
	}, {
		desc: "create, update field by field, delete, with places and a warning",
		cs: config.ChangeSet{DryRun: true,
			Changes: []config.Change{
				{Action: gatehouse.OpCreate, Kind: gatehouse.KindRoute, ID: "hello", Name: "hello-route", Pointer: "/routes/1"},
				{Action: gatehouse.OpUpdate, Kind: gatehouse.KindService, ID: "echo", Name: "echo", Pointer: "/services/0", Fields: []config.FieldChange{
					{Field: "/retries", From: json.Number("1"), To: json.Number("2")},
					{Field: "/url", From: "http://a:1", To: "http://b:2"},
					{Field: "/tags", To: []any{"team-a"}},
					{Field: "/health_check", From: map[string]any{"path": "/healthz"}},
				}},
				{Action: gatehouse.OpUpdate, Kind: gatehouse.KindCredential, ID: "alice-key", Fields: []config.FieldChange{{Field: "/key"}}},
				{Action: gatehouse.OpDelete, Kind: gatehouse.KindPolicy, ID: "old-limit"},
			},
			Summary: config.Summary{Create: 1, Update: 2, Delete: 1},
		},
		place: func(ptr string) string { return map[string]string{"/routes/1": "gw.yaml:20:5"}[ptr] },
		want: `+ route hello (hello-route)  at gw.yaml:20:5
~ service echo
    /retries: 1 -> 2
    /url: "http://a:1" -> "http://b:2"
    /tags: (none) -> ["team-a"]
    /health_check: {"path":"/healthz"} -> (none)
~ credential alice-key
    /key: changed (value not shown)
- policy old-limit
1 to create, 2 to update, 1 to delete.
`,
	}, {
		desc: "a real apply speaks of what was done; a long value is cut",
		cs: config.ChangeSet{Changes: []config.Change{
			{Action: gatehouse.OpUpdate, Kind: gatehouse.KindSpec, ID: "orders", Fields: []config.FieldChange{
				{Field: "/document", From: strings.Repeat("a", 100), To: "b"}}},
		}, Summary: config.Summary{Update: 1}},
		want: "~ spec orders\n    /document: \"" + strings.Repeat("a", 70) + "… -> \"b\"\n0 created, 1 updated, 0 deleted.\n",
	}}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			var b strings.Builder
			printChangeSet(&b, &tc.cs, tc.place)
			b.WriteString(summaryLine(&tc.cs) + "\n")
			if b.String() != tc.want {
				t.Errorf("printed:\n%s\nwant:\n%s", b.String(), tc.want)
			}
		})
	}
}

// configServer is an admin API's /config that answers a dry run with
// plan and a real apply with realStatus, recording the real apply's
// If-Match.
type configServer struct {
	plan       config.ChangeSet
	realStatus int
	mu         sync.Mutex
	ifMatch    []string // of each real apply
}

func (s *configServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	if r.URL.Path != "/admin/v1/config" || r.Method != http.MethodPost {
		http.Error(w, "unexpected", http.StatusTeapot)
		return
	}
	if r.URL.Query().Get("dry_run") == "true" {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s.plan)
		return
	}
	s.mu.Lock()
	s.ifMatch = append(s.ifMatch, r.Header.Get("If-Match"))
	s.mu.Unlock()
	if s.realStatus == http.StatusPreconditionFailed {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusPreconditionFailed)
		io.WriteString(w, `{"type":"https://gatehouse.dev/problems/precondition-failed","title":"Precondition Failed","status":412,"detail":"The draft has changed."}`)
		return
	}
	done := s.plan
	done.DryRun, done.NewDraft = false, "d2"
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(done)
}

// TestApplyMakesExactlyTheChangeItShowed: the real apply carries the dry
// run's draft as If-Match, and a 412 (the draft changed in between) ends
// in a plain request to run again.
func TestApplyMakesExactlyTheChangeItShowed(t *testing.T) {
	oneCreate := config.ChangeSet{Draft: "d1", DryRun: true, Summary: config.Summary{Create: 1},
		Changes: []config.Change{{Action: gatehouse.OpCreate, Kind: gatehouse.KindRoute, ID: "team-a-billing", Pointer: "/routes/0"}}}
	tests := []struct {
		desc        string
		plan        config.ChangeSet
		realStatus  int
		wantCode    int
		wantIfMatch []string
		wantStdout  string
		wantStderr  string
	}{{
		desc: "applied on the draft shown", plan: oneCreate, realStatus: http.StatusOK,
		wantCode: 0, wantIfMatch: []string{`"d1"`},
		wantStdout: "+ route team-a-billing  at testdata/config/team-a.yaml:5:5\n1 to create, 0 to update, 0 to delete.\nApplied: 1 created, 0 updated, 0 deleted.\n",
	}, {
		desc: "the draft changed meanwhile", plan: oneCreate, realStatus: http.StatusPreconditionFailed,
		wantCode: 1, wantIfMatch: []string{`"d1"`},
		wantStdout: "+ route team-a-billing  at testdata/config/team-a.yaml:5:5\n1 to create, 0 to update, 0 to delete.\n",
		wantStderr: "gatehouse: the draft changed meanwhile, so nothing was applied; run again to see the changes against it\n",
	}, {
		desc: "nothing to change, nothing sent", plan: config.ChangeSet{Draft: "d1", DryRun: true},
		wantCode: 0, wantStdout: "No changes.\n",
	}}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			s := &configServer{plan: tc.plan, realStatus: tc.realStatus}
			srv := httptest.NewServer(s)
			defer srv.Close()
			t.Setenv("GATEHOUSE_ADMIN_TOKEN", "t")
			var stdout, stderr bytes.Buffer
			code := execute([]string{"config", "apply", "--admin-url", srv.URL, "testdata/config/team-a.yaml"}, &stdout, &stderr)
			if code != tc.wantCode || stdout.String() != tc.wantStdout || stderr.String() != tc.wantStderr {
				t.Errorf("exit %d, stdout:\n%s\nstderr:\n%s\nwant exit %d, stdout:\n%s\nstderr:\n%s",
					code, stdout.String(), stderr.String(), tc.wantCode, tc.wantStdout, tc.wantStderr)
			}
			if strings.Join(s.ifMatch, " ") != strings.Join(tc.wantIfMatch, " ") {
				t.Errorf("If-Match of the real applies: got %q; want %q", s.ifMatch, tc.wantIfMatch)
			}
		})
	}
}
