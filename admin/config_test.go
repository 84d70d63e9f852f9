package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/config"
)

const hs256Secret = "0123456789abcdef0123456789abcdef"

// configDoc is a document with one of each kind, all tagged team-a.
const configDoc = `{
  "format_version": "1",
  "specs": [{"id": "pets", "tags": ["team-a"], "document": {"openapi": "3.1.0", "info": {"title": "Pets", "version": "1"}, "paths": {}}}],
  "policies": [{"id": "jwt", "name": "jwt", "tags": ["team-a"], "type": "auth",
    "config": {"jwt": {"keys": [{"kid": "k1", "alg": "HS256", "secret": "` + hs256Secret + `"}]}}}],
  "services": [{"id": "s1", "name": "svc", "tags": ["team-a"], "url": "http://127.0.0.1:9"}],
  "routes": [{"id": "r1", "name": "r1", "tags": ["team-a"], "paths": ["/a"], "service_id": "s1", "policies": ["jwt"]}],
  "consumers": [{"id": "c1", "name": "alice", "tags": ["team-a"], "credentials": [
    {"id": "k1", "type": "key-auth", "tags": ["team-a"], "key": "alice-key-0123456789"}]}]
}`

// without returns configDoc with old replaced by new.
func without(t *testing.T, old, new string) string {
	t.Helper()
	if !strings.Contains(configDoc, old) {
		t.Fatalf("configDoc lacks %q", old)
	}
	return strings.Replace(configDoc, old, new, 1)
}

const configPath = "/admin/v1/config"

// changeSet decodes a change set answer.
func configChanges(t *testing.T, r *response) config.ChangeSet {
	t.Helper()
	var cs config.ChangeSet
	if err := json.Unmarshal(r.body, &cs); err != nil {
		t.Fatalf("body is not a change set: %v: %s", err, r.body)
	}
	return cs
}

// actions lists a change set's changes as "action kind/id".
func actions(cs config.ChangeSet) []string {
	var out []string
	for _, c := range cs.Changes {
		out = append(out, fmt.Sprintf("%s %s/%s", c.Action, c.Kind, c.ID))
	}
	return out
}

func TestConfigDryRunWritesNothingAndListsTheChanges(t *testing.T) {
	a := newTestAPI(t)
	before := a.snapshot()
	r := a.must(200, "POST", configPath+"?dry_run=true", configDoc)
	a.unchanged(before)
	cs := configChanges(t, r)
	want := []string{"create specs/pets", "create policies/jwt", "create services/s1", "create consumers/c1", "create routes/r1", "create credentials/k1"}
	if got := actions(cs); fmt.Sprint(got) != fmt.Sprint(want) || !cs.DryRun || cs.Summary.Create != 6 {
		t.Fatalf("got %v (dry run %v, summary %+v); want %v", got, cs.DryRun, cs.Summary, want)
	}
	if r.header.Get("ETag") != `"`+cs.Draft+`"` || cs.NewDraft != cs.Draft {
		t.Fatalf("got ETag %s, draft %s, new draft %s; want the unchanged draft's", r.header.Get("ETag"), cs.Draft, cs.NewDraft)
	}

	a.must(200, "PUT", configPath, configDoc)
	changed := without(t, `"url": "http://127.0.0.1:9"`, `"url": "http://127.0.0.1:10"`)
	changed = strings.Replace(changed, `"routes": [{"id": "r1", "name": "r1", "tags": ["team-a"], "paths": ["/a"], "service_id": "s1", "policies": ["jwt"]}],`, "", 1)
	before = a.snapshot()
	cs = configChanges(t, a.must(200, "PUT", configPath+"?dry_run=true", changed))
	a.unchanged(before)
	// In the order they are made: a route that goes goes first.
	if got := actions(cs); fmt.Sprint(got) != "[delete routes/r1 update services/s1]" {
		t.Fatalf("got %v; want the route deleted and the service updated", got)
	}
	if f := cs.Changes[1].Fields; len(f) != 1 || f[0].Field != "/url" || f[0].From != "http://127.0.0.1:9" || f[0].To != "http://127.0.0.1:10" {
		t.Fatalf("got fields %+v; want /url from http://127.0.0.1:9 to http://127.0.0.1:10", f)
	}
	if cs.Changes[1].Pointer != "/services/0" || cs.Changes[0].Pointer != "" {
		t.Fatalf("got pointers %q, %q; want none for the delete and /services/0", cs.Changes[0].Pointer, cs.Changes[1].Pointer)
	}
}

func TestConfigApplyCreatesAndUpdatesAndSyncDeletes(t *testing.T) {
	a := newTestAPI(t)
	cs := configChanges(t, a.must(200, "POST", configPath, configDoc))
	if cs.DryRun || cs.Summary != (config.Summary{Create: 6}) {
		t.Fatalf("got %+v; want six creates", cs)
	}
	a.must(200, "GET", "/admin/v1/routes/r1", "")
	a.must(200, "GET", "/admin/v1/consumers/c1/credentials/k1", "")

	noRoute := strings.Replace(without(t, `"name": "svc"`, `"name": "svc2"`),
		`"routes": [{"id": "r1", "name": "r1", "tags": ["team-a"], "paths": ["/a"], "service_id": "s1", "policies": ["jwt"]}],`, "", 1)
	cs = configChanges(t, a.must(200, "POST", configPath, noRoute))
	if got := actions(cs); fmt.Sprint(got) != "[update services/s1]" {
		t.Fatalf("apply: got %v; want only the service updated, the route kept", got)
	}
	if got := a.must(200, "GET", "/admin/v1/services/s1", "").json()["name"]; got != "svc2" {
		t.Fatalf("got name %v; want svc2", got)
	}
	a.must(200, "GET", "/admin/v1/routes/r1", "")

	cs = configChanges(t, a.must(200, "PUT", configPath, noRoute))
	if got := actions(cs); fmt.Sprint(got) != "[delete routes/r1]" {
		t.Fatalf("sync: got %v; want the route deleted", got)
	}
	a.must(410, "GET", "/admin/v1/routes/r1", "")
}

func TestConfigSelectedTagsNeverTouchOtherResources(t *testing.T) {
	a := newTestAPI(t)
	other := a.service("other")
	a.must(200, "PUT", configPath+"?select_tags=team-a", configDoc)
	a.must(200, "GET", "/admin/v1/services/"+other, "")

	// A dump with the selection holds the selection only.
	dump := a.must(200, "GET", configPath+"?select_tags=team-a", "")
	if strings.Contains(string(dump.body), other) {
		t.Fatalf("the dump of team-a holds the untagged service: %s", dump.body)
	}

	before := a.snapshot()
	r := a.do("PUT", configPath+"?select_tags=team-a", without(t, `"name": "svc", "tags": ["team-a"]`, `"name": "svc"`))
	assertProblem(t, r, 422)
	if got := r.problemFields(); fmt.Sprint(got) != "[/services/0/tags]" {
		t.Fatalf("untagged entry: got fields %v; want /services/0/tags", got)
	}
	a.unchanged(before)

	// An id of a resource outside the selection is another team's.
	r = a.do("PUT", configPath+"?select_tags=team-a", without(t, `"id": "s1"`, `"id": "`+other+`"`))
	assertProblem(t, r, 409)
	if got := r.problemFields(); fmt.Sprint(got) != "[/services/0/id]" {
		t.Fatalf("another selection's id: got fields %v; want /services/0/id", got)
	}
	a.unchanged(before)

	// A name another selection's resource holds is the store's to refuse,
	// at the entry's pointer.
	r = a.do("PUT", configPath+"?select_tags=team-a", without(t, `"id": "s1", "name": "svc"`, `"id": "s2", "name": "other"`))
	assertProblem(t, r, 409)
	// Every clash at once: the name, and the sync's delete of s1, which
	// the document's route still uses.
	if got := r.problemFields(); fmt.Sprint(got) != "[/services/0 services/s1]" {
		t.Fatalf("a name taken outside the selection: got fields %v; want /services/0 and services/s1 (%s)", got, r.body)
	}
	a.unchanged(before)
}

func TestConfigStaleIfMatchIsRefusedAndNothingWritten(t *testing.T) {
	a := newTestAPI(t)
	stale := a.must(200, "GET", configPath, "").header.Get("ETag")
	a.service("meanwhile")
	fresh := a.must(200, "GET", configPath, "").header.Get("ETag")
	if stale == fresh || stale == "" {
		t.Fatalf("got ETags %s then %s; want a change with the draft", stale, fresh)
	}
	before := a.snapshot()
	assertProblem(t, a.do("POST", configPath, configDoc, h("If-Match", stale)), 412)
	a.unchanged(before)

	r := a.must(200, "POST", configPath, configDoc, h("If-Match", fresh))
	after := a.must(200, "GET", configPath, "").header.Get("ETag")
	if r.header.Get("ETag") != after || configChanges(t, r).NewDraft != strings.Trim(after, `"`) {
		t.Fatalf("got ETag %s after the apply; the draft's is %s", r.header.Get("ETag"), after)
	}
	a.must(200, "GET", configPath, "", h("If-Match", after))
	a.must(304, "GET", configPath, "", h("If-None-Match", after))
}

func TestConfigBadEntryNamesItsPointerAndWritesNothing(t *testing.T) {
	tests := []struct {
		desc   string
		old    string
		new    string
		status int
		fields string
	}{
		{"malformed JSON", `"format_version": "1",`, `"format_version": "1",,`, 400, ""},
		{"a wrong type deep in an entry", `"paths": ["/a"]`, `"paths": [7]`, 400, "[/routes/0/paths/0]"},
		{"an invalid field of a credential", `"type": "key-auth"`, `"type": "none"`, 400, "[/consumers/0/credentials/0/type]"},
		{"a reference to nothing", `"service_id": "s1"`, `"service_id": "s9"`, 422, "[/routes/0/service_id]"},
		{"a new credential without its secret", `, "key": "alice-key-0123456789"`, ``, 422, "[/consumers/0/credentials/0/key]"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			a := newTestAPI(t)
			before := a.snapshot()
			r := a.do("PUT", configPath, without(t, tt.old, tt.new))
			assertProblem(t, r, tt.status)
			if tt.fields != "" && fmt.Sprint(r.problemFields()) != tt.fields {
				t.Fatalf("got fields %v; want %s (%s)", r.problemFields(), tt.fields, r.body)
			}
			a.unchanged(before)
		})
	}
}

func TestConfigDumpThenApplyIsANoOp(t *testing.T) {
	for _, tt := range []struct{ accept, contentType string }{
		{"application/json", "application/json"},
		{"application/yaml", "application/yaml"},
	} {
		t.Run(tt.accept, func(t *testing.T) {
			a := newTestAPI(t)
			a.must(200, "PUT", configPath, configDoc)
			dump := a.must(200, "GET", configPath, "", h("Accept", tt.accept))
			if got := dump.header.Get("Content-Type"); got != tt.contentType {
				t.Fatalf("got Content-Type %s; want %s", got, tt.contentType)
			}
			if strings.Contains(string(dump.body), hs256Secret) || strings.Contains(string(dump.body), "alice-key") ||
				strings.Contains(string(dump.body), "created_at") || strings.Contains(string(dump.body), "updated_at") {
				t.Fatalf("the dump shows a secret or what the server sets:\n%s", dump.body)
			}
			before := a.snapshot()
			cs := configChanges(t, a.must(200, "PUT", configPath, string(dump.body), h("Content-Type", tt.contentType), h("If-Match", dump.header.Get("ETag"))))
			if len(cs.Changes) != 0 {
				t.Fatalf("applying the dump changed %v; want nothing:\n%s", actions(cs), dump.body)
			}
			a.unchanged(before)
		})
	}
}

func TestConfigCredentialsRoundTripWithoutSecrets(t *testing.T) {
	a := newTestAPI(t)
	a.must(200, "PUT", configPath, configDoc)
	stored := func() string {
		rec, err := a.db.Get(context.Background(), gatehouse.KindCredential, "k1")
		if err != nil {
			t.Fatal(err)
		}
		return string(rec.Secret)
	}
	want := gatehouse.HashToken("alice-key-0123456789")
	if got := stored(); got != want {
		t.Fatalf("got stored secret %s; want the key's hash %s", got, want)
	}
	dump := a.must(200, "GET", configPath, "").json()
	cred := dump["consumers"].([]any)[0].(map[string]any)["credentials"].([]any)[0].(map[string]any)
	if _, ok := cred["key"]; ok || cred["consumer_id"] != nil {
		t.Fatalf("got dumped credential %v; want no key and no consumer_id", cred)
	}
	body, _ := json.Marshal(dump)
	cs := configChanges(t, a.must(200, "PUT", configPath, string(body)))
	if len(cs.Changes) != 0 || stored() != want {
		t.Fatalf("applying a credential without its key: got %v, secret %s; want no change", actions(cs), stored())
	}
	// The same key again is no change; its hash neither; a new key is,
	// and the change set never shows it.
	for _, tt := range []struct {
		old, new string
		changes  int
	}{
		{`"key": "alice-key-0123456789"`, `"key": "alice-key-0123456789"`, 0},
		{`"key": "alice-key-0123456789"`, `"key_hash": "` + want + `"`, 0},
		{`"key": "alice-key-0123456789"`, `"key": "alice-key-9876543210"`, 1},
	} {
		r := a.must(200, "PUT", configPath, without(t, tt.old, tt.new))
		cs := configChanges(t, r)
		if len(cs.Changes) != tt.changes {
			t.Fatalf("%s: got %v; want %d changes", tt.new, actions(cs), tt.changes)
		}
		if strings.Contains(string(r.body), "9876543210") || strings.Contains(string(r.body), gatehouse.HashToken("alice-key-9876543210")) {
			t.Fatalf("the change set shows the key: %s", r.body)
		}
	}
	if got := stored(); got != gatehouse.HashToken("alice-key-9876543210") {
		t.Fatalf("got stored secret %s; want the new key's hash", got)
	}
}

func TestConfigHiddenPolicySecretSurvivesASyncOfItsDump(t *testing.T) {
	a := newTestAPI(t)
	a.must(200, "PUT", configPath, configDoc)
	dump := a.must(200, "GET", configPath, "", h("Accept", "application/yaml"))
	if strings.Contains(string(dump.body), hs256Secret) {
		t.Fatalf("the dump shows the HS256 secret:\n%s", dump.body)
	}
	a.must(200, "PUT", configPath, string(dump.body), h("Content-Type", "application/yaml"))
	rec, err := a.db.Get(context.Background(), gatehouse.KindPolicy, "jwt")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(rec.Body), hs256Secret) {
		t.Fatalf("the stored policy lost its secret: %s", rec.Body)
	}
	// A changed secret is an update that does not show it.
	r := a.must(200, "PUT", configPath+"?dry_run=true", strings.Replace(configDoc, hs256Secret, strings.Repeat("z", 32), 1))
	cs := configChanges(t, r)
	if got := actions(cs); fmt.Sprint(got) != "[update policies/jwt]" || strings.Contains(string(r.body), strings.Repeat("z", 32)) {
		t.Fatalf("got %v, body %s; want the policy updated and its secret not shown", got, r.body)
	}
}

func TestConfigDeleteOfAResourceStillInUseConflicts(t *testing.T) {
	a := newTestAPI(t)
	a.must(200, "PUT", configPath, configDoc)
	a.makeToken(gatehouse.RoleAdmin, "c1")
	before := a.snapshot()
	r := a.do("PUT", configPath, strings.Replace(configDoc, `"consumers": [{"id": "c1", "name": "alice", "tags": ["team-a"], "credentials": [
    {"id": "k1", "type": "key-auth", "tags": ["team-a"], "key": "alice-key-0123456789"}]}]`, `"consumers": []`, 1))
	assertProblem(t, r, 409)
	if got := fmt.Sprint(r.problemFields()); got != "[consumers/c1]" {
		t.Fatalf("got fields %s; want the consumer a token still uses (%s)", got, r.body)
	}
	a.unchanged(before)
}

// TestConfigCheckAgreesWithTheResourceAPI proves one code path: an entry
// the resource API refuses is refused in a document with the same status
// and message, at its pointer.
func TestConfigCheckAgreesWithTheResourceAPI(t *testing.T) {
	tests := []struct {
		desc, path, body, field string
		old, new, pointer       string
	}{
		{"a route's invalid path", "/admin/v1/routes", `{"name":"r1","paths":["a"],"service_id":"s1"}`, "paths[0]",
			`"paths": ["/a"]`, `"paths": ["a"]`, "/routes/0/paths/0"},
		{"a service's unusable URL", "/admin/v1/services", `{"name":"svc","url":"ftp://127.0.0.1:9"}`, "url",
			`"url": "http://127.0.0.1:9"`, `"url": "ftp://127.0.0.1:9"`, "/services/0/url"},
		{"a reference to a missing policy", "/admin/v1/routes", `{"name":"r1","paths":["/a"],"service_id":"s1","policies":["nope"]}`, "policies[0]",
			`"policies": ["jwt"]`, `"policies": ["nope"]`, "/routes/0/policies/0"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			a := newTestAPI(t)
			a.must(201, "POST", "/admin/v1/services", `{"id":"s1","name":"base","url":"http://127.0.0.1:9"}`)
			single := a.do("POST", tt.path, tt.body)
			whole := a.do("PUT", configPath, without(t, tt.old, tt.new))
			if single.status != whole.status || single.status < 400 {
				t.Fatalf("got %d from the resource API and %d from /config; want the same error", single.status, whole.status)
			}
			msg := func(r *response, field string) string {
				var p struct{ Errors []gatehouse.FieldError }
				json.Unmarshal(r.body, &p)
				for _, e := range p.Errors {
					if e.Field == field {
						return e.Message
					}
				}
				t.Fatalf("no error at %s in %s", field, r.body)
				return ""
			}
			if s, w := msg(single, tt.field), msg(whole, tt.pointer); s != w {
				t.Fatalf("got %q from the resource API and %q from /config; want one message", s, w)
			}
		})
	}
}

func TestReadOnlyNodeRefusesEveryWrite(t *testing.T) {
	a := newTestAPI(t, withAdminOptions(func(o *Options) { o.ReadOnly = true }))
	before := a.snapshot()
	for _, tt := range []struct{ method, path, body string }{
		{"POST", "/admin/v1/services", `{"name":"s","url":"http://127.0.0.1:9"}`},
		{"PUT", "/admin/v1/services/s1", `{"name":"s","url":"http://127.0.0.1:9"}`},
		{"PATCH", "/admin/v1/services/s1", `{"name":"s"}`},
		{"DELETE", "/admin/v1/services/s1", ""},
		{"POST", "/admin/v1/deployments", `{}`},
		{"PUT", configPath, configDoc},
		{"POST", configPath, configDoc},
	} {
		r := a.do(tt.method, tt.path, tt.body)
		assertProblem(t, r, 405)
		if got := r.header.Get("Allow"); got != "GET, HEAD" {
			t.Fatalf("%s %s: got Allow %q; want GET, HEAD", tt.method, tt.path, got)
		}
	}
	a.unchanged(before)
	a.must(200, "GET", configPath, "")
	a.must(200, "GET", "/admin/v1/services", "")
	if got := a.must(204, "OPTIONS", configPath, "").header.Get("Allow"); got != "GET, HEAD, OPTIONS" {
		t.Fatalf("OPTIONS: got Allow %q; want GET, HEAD, OPTIONS", got)
	}
}

func TestConfigAnswersInTheTypeAcceptPrefers(t *testing.T) {
	a := newTestAPI(t)
	for _, tt := range []struct {
		accept, want string
		status       int
	}{
		{"", "application/json", 200},
		{"*/*", "application/json", 200},
		{"application/yaml", "application/yaml", 200},
		{"text/yaml;q=0.9, application/json;q=0.5", "application/yaml", 200},
		{"application/json, application/yaml;q=0.5", "application/json", 200},
		{"text/html", "", 406},
		// Read as the whole API reads Accept: a range covers a YAML type,
		// the most specific match decides, old clients' ".5" weighs.
		{"text/*, application/json;q=0.5", "application/yaml", 200},
		{"application/yaml;q=0, application/*", "application/json", 200},
		{"application/json;q=.5, application/x-yaml", "application/yaml", 200},
	} {
		r := a.do("GET", configPath, "", h("Accept", tt.accept))
		if r.status != tt.status || (tt.want != "" && r.header.Get("Content-Type") != tt.want) {
			t.Fatalf("Accept %q: got %d %s; want %d %s", tt.accept, r.status, r.header.Get("Content-Type"), tt.status, tt.want)
		}
	}
}

func TestConfigBodyIsBoundedByConfigMaxBytesAndTakesJSONOrYAML(t *testing.T) {
	a := newTestAPI(t, withAdminOptions(func(o *Options) { o.ConfigMaxBytes = 256 }))
	before := a.snapshot()
	assertProblem(t, a.do("PUT", configPath, configDoc), 413)
	r := a.do("POST", configPath, "format_version: 1", h("Content-Type", "text/plain"))
	assertProblem(t, r, 415)
	if got := r.header.Get("Accept-Post"); got != configBody.accepted {
		t.Fatalf("got Accept-Post %q; want %q", got, configBody.accepted)
	}
	a.unchanged(before)
	a.must(200, "PUT", configPath, "format_version: \"1\"\nservices:\n  - id: s1\n    name: svc\n    url: http://127.0.0.1:9\n", h("Content-Type", "text/yaml"))
	a.must(200, "GET", "/admin/v1/services/s1", "")
}

// problemErrors lists a problem's errors as "field: message".
func problemErrors(r *response) []string {
	var p struct {
		Errors []gatehouse.FieldError `json:"errors"`
	}
	json.Unmarshal(r.body, &p)
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Field+": "+e.Message)
	}
	return out
}

// A dry run answers what the real request would: each conflict with the
// store that the write meets is met by the dry run, at the entry's
// pointer, and neither writes anything.
func TestConfigDryRunIsRefusedAsTheRealRequestIs(t *testing.T) {
	const spec = `"specs": [{"id": "pets", "tags": ["team-a"], "document": {"openapi": "3.1.0", "info": {"title": "Pets", "version": "1"}, "paths": {}}}],`
	tests := []struct {
		desc   string
		setup  func(a *testAPI)
		method string
		query  string
		doc    string
		want   string
	}{
		{"a service named like another under another id", func(a *testAPI) {
			a.must(201, "POST", "/admin/v1/services", `{"id":"other","name":"svc","url":"http://127.0.0.1:9"}`)
		}, "POST", "", configDoc, `[/services/0: has the name "svc", which service "other" (not in the document, and kept: only a sync deletes) holds]`},
		{"a route duplicating a stored route's match", func(a *testAPI) {
			a.must(201, "POST", "/admin/v1/services", `{"id":"base","name":"base","url":"http://127.0.0.1:9"}`)
			a.must(201, "POST", "/admin/v1/routes", `{"id":"old","paths":["/a"],"service_id":"base"}`)
		}, "POST", "", configDoc, `[/routes/0: matches the same requests at the same priority as route "old" (not in the document, and kept: only a sync deletes)]`},
		{"a reused API key", func(a *testAPI) {
			a.must(201, "POST", "/admin/v1/consumers", `{"id":"bob","name":"bob"}`)
			a.must(201, "POST", "/admin/v1/consumers/bob/credentials", `{"id":"bob-key","type":"key-auth","key":"alice-key-0123456789"}`)
		}, "POST", "", configDoc, `[/consumers/0/credentials/0: has the same API key as credential "bob-key" of consumer "bob" (not in the document, and kept: only a sync deletes)]`},
		{"a reused basic-auth username", func(a *testAPI) {
			a.must(201, "POST", "/admin/v1/consumers", `{"id":"bob","name":"bob"}`)
			a.must(201, "POST", "/admin/v1/consumers/bob/credentials", `{"id":"bob-basic","type":"basic-auth","username":"bob","password":"bob-password"}`)
		}, "POST", "", without(t, `{"id": "k1", "type": "key-auth", "tags": ["team-a"], "key": "alice-key-0123456789"}`,
			`{"id": "b1", "type": "basic-auth", "tags": ["team-a"], "username": "bob", "password": "alice-password"}`),
			`[/consumers/0/credentials/0: has the username "bob", which credential "bob-basic" of consumer "bob" (not in the document, and kept: only a sync deletes) holds]`},
		{"the delete of a spec a policy outside the selection uses", func(a *testAPI) {
			a.must(200, "PUT", configPath+"?select_tags=team-a", configDoc)
			a.must(201, "POST", "/admin/v1/policies", `{"id":"oas","name":"oas","type":"openapi","config":{"spec_id":"pets"}}`)
		}, "PUT", "?select_tags=team-a", strings.Replace(configDoc, spec, "", 1),
			`[specs/pets: cannot be deleted: policy "oas" (outside the selected tags) uses it]`},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			a := newTestAPI(t)
			tt.setup(a)
			before := a.snapshot()
			dry := a.do(tt.method, configPath+tt.query+map[bool]string{true: "&", false: "?"}[tt.query != ""]+"dry_run=true", tt.doc)
			real := a.do(tt.method, configPath+tt.query, tt.doc)
			a.unchanged(before)
			assertProblem(t, dry, 409)
			assertProblem(t, real, 409)
			if got := fmt.Sprint(problemErrors(real)); got != tt.want {
				t.Fatalf("got errors %s; want %s", got, tt.want)
			}
			if d, r := fmt.Sprint(problemErrors(dry)), fmt.Sprint(problemErrors(real)); d != r {
				t.Fatalf("dry run: got errors %s; want the real request's %s", d, r)
			}
		})
	}
}

// A team's sync never deletes a credential it does not list: a consumer
// holding one outside the selection is refused (the store would delete
// it with its consumer), and the credential still answers.
func TestConfigSyncRefusesToDeleteAConsumerHoldingCredentialsOutsideTheSelection(t *testing.T) {
	a := newTestAPI(t)
	a.must(200, "PUT", configPath+"?select_tags=team-a", configDoc)
	a.must(201, "POST", "/admin/v1/consumers/c1/credentials", `{"id":"k2","type":"key-auth","key":"alice-key2-0123456789"}`)
	empty := `{"format_version": "1"}`
	before := a.snapshot()
	for _, query := range []string{"?select_tags=team-a&dry_run=true", "?select_tags=team-a"} {
		r := a.do("PUT", configPath+query, empty)
		assertProblem(t, r, 409)
		want := `consumers/c1: cannot be deleted: it holds credential "k2" of consumer "c1" (outside the selected tags), which deleting it would delete too, though this document does not manage it`
		if got := problemErrors(r); !slices.Contains(got, want) {
			t.Fatalf("%s: got errors %v; want among them %s", query, got, want)
		}
	}
	a.unchanged(before)
	a.must(200, "GET", "/admin/v1/consumers/c1/credentials/k2", "")

	// A credential within the selection the sync deletes, and says so.
	a.must(204, "DELETE", "/admin/v1/consumers/c1/credentials/k2", "")
	a.must(201, "POST", "/admin/v1/consumers/c1/credentials", `{"id":"k3","type":"key-auth","key":"alice-key3-0123456789","tags":["team-a"]}`)
	cs := configChanges(t, a.must(200, "PUT", configPath+"?select_tags=team-a", empty))
	for _, want := range []string{"delete credentials/k1", "delete credentials/k3", "delete consumers/c1"} {
		if !slices.Contains(actions(cs), want) {
			t.Fatalf("got %v; want %s among them", actions(cs), want)
		}
	}
	a.must(410, "GET", "/admin/v1/consumers/c1/credentials/k3", "")
}

// With selected tags a global policy is refused (422): it acts on every
// route, beyond the selection.
func TestConfigGlobalPolicyIsRefusedWithSelectedTags(t *testing.T) {
	a := newTestAPI(t)
	doc := `{"format_version": "1", "policies": [{"id": "down", "name": "down", "tags": ["team-b"], "global": true, "type": "maintenance", "config": {}}]}`
	before := a.snapshot()
	for _, query := range []string{"?select_tags=team-b&dry_run=true", "?select_tags=team-b"} {
		r := a.do("POST", configPath+query, doc)
		assertProblem(t, r, 422)
		if got := fmt.Sprint(r.problemFields()); got != "[/policies/0/global]" {
			t.Fatalf("%s: got fields %s; want /policies/0/global (%s)", query, got, r.body)
		}
	}
	a.unchanged(before)
	a.must(200, "POST", configPath, doc)
}

func TestConfigRefusesAnEnvExpressionItWouldStoreUnsubstituted(t *testing.T) {
	a := newTestAPI(t)
	before := a.snapshot()
	doc := without(t, `"key": "alice-key-0123456789"`, `"key": "${{env \"GATEHOUSE_VAR_X\"}}"`)
	for _, path := range []string{configPath + "?dry_run=true", configPath} {
		r := a.do("POST", path, doc)
		assertProblem(t, r, 400)
		if got := r.problemFields(); fmt.Sprint(got) != "[/consumers/0/credentials/0/key]" {
			t.Fatalf("POST %s: got fields %v; want [/consumers/0/credentials/0/key]; body %s", path, got, r.body)
		}
		if !strings.Contains(string(r.body), "does not substitute") {
			t.Fatalf("POST %s: got %s; want it to say the server does not substitute", path, r.body)
		}
	}
	a.unchanged(before)
}

// A 415 says what the body may be: Accept-Post for POST, Accept for PUT
// (which has no header of its own), as the spec API's PUT does.
func TestConfigUnsupportedBodySaysWhatIsTaken(t *testing.T) {
	a := newTestAPI(t)
	for _, tt := range []struct{ method, header string }{
		{"POST", "Accept-Post"},
		{"PUT", "Accept"},
	} {
		r := a.do(tt.method, configPath, "format_version: 1", h("Content-Type", "text/plain"))
		assertProblem(t, r, 415)
		if got := r.header.Get(tt.header); got != configBody.accepted {
			t.Errorf("%s: got %s %q; want %q", tt.method, tt.header, got, configBody.accepted)
		}
	}
}

// An If-Match that can never match is refused in words, naming the
// draft's ETag, never with a placeholder of the server's.
func TestConfigIfMatchThatCannotMatchSaysWhatTheDraftIs(t *testing.T) {
	a := newTestAPI(t)
	current := a.must(200, "GET", configPath, "").header.Get("ETag")
	before := a.snapshot()
	for _, im := range []string{"W/" + current, "unquoted", `"d-stale", W/` + current} {
		r := a.do("POST", configPath, configDoc, h("If-Match", im))
		p := assertProblem(t, r, 412)
		detail, _ := p["detail"].(string)
		if strings.Contains(detail, "no draft") || !strings.Contains(detail, "the draft's ETag "+current) {
			t.Errorf("If-Match %s: got detail %q; want it to name the draft's ETag %s, no placeholder", im, detail, current)
		}
	}
	a.unchanged(before)
	a.must(200, "POST", configPath+"?dry_run=true", configDoc, h("If-Match", `"d-stale", `+current))
}
