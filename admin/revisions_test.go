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
	"github.com/gatehouse/gatehouse/internal/testpki"
)

// revisionDiff reads GET path, which must answer 200, as a diff.
func (a *testAPI) revisionDiff(path string) (*config.RevisionDiff, *response) {
	a.t.Helper()
	r := a.must(200, "GET", path, "")
	var d config.RevisionDiff
	if err := json.Unmarshal(r.body, &d); err != nil {
		a.t.Fatalf("GET %s: %v: %s", path, err, r.body)
	}
	return &d, r
}

// changeLines is each change as "action kind id", in order.
func changeLines(d *config.RevisionDiff) []string {
	var out []string
	for _, c := range d.Changes {
		out = append(out, fmt.Sprintf("%s %s %s", c.Action, c.Kind, c.ID))
	}
	return out
}

// TestRevisionDiffListsWhatChangedKindByKindAndNoSecret deploys two
// revisions that differ in every kind, secrets of each sort included (a
// credential's key, an HS256 secret, a service's TLS client key), and
// reads the diff between them both ways and from the empty configuration.
func TestRevisionDiffListsWhatChangedKindByKindAndNoSecret(t *testing.T) {
	api := newTestAPI(t)
	ca := testpki.NewCA(t, "test CA")
	first, second := ca.Client(t, "first"), ca.Client(t, "second")
	keyLine := func(pemKey string) string { return strings.Split(pemKey, "\n")[1] }
	const hs1, hs2 = "first-secret-of-32-bytes-or-more", "second-secret-of-32-bytes-or-mor"
	const key1, key2 = "alice-key1-0123456789", "alice-key2-0123456789"
	jwt := func(secret string) string {
		return `{"name":"jwt","type":"auth","config":{"jwt":{"keys":[{"kid":"a","alg":"HS256","secret":"` + secret + `"}]}}}`
	}
	api.must(201, "POST", "/admin/v1/services", `{"id":"s1","name":"s1","url":"http://a.example:8080"}`)
	api.must(201, "POST", "/admin/v1/services", tlsService("mtls", map[string]any{"ca_bundle": ca.PEM,
		"client_certificate": first.CertPEM, "client_key": first.KeyPEM}))
	api.must(201, "POST", "/admin/v1/routes", `{"id":"r1","name":"old","paths":["/a"],"service_id":"s1"}`)
	api.must(201, "POST", "/admin/v1/consumers", `{"id":"c1","name":"alice"}`)
	api.must(201, "POST", "/admin/v1/consumers/c1/credentials", `{"id":"k1","type":"key-auth","key":"`+key1+`"}`)
	api.must(201, "POST", "/admin/v1/policies", `{"id":"jwt",`+jwt(hs1)[1:])
	hashes := []string{}
	hash := func() {
		rec, err := api.store.Get(context.Background(), gatehouse.KindCredential, "k1")
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, string(rec.Secret))
	}
	hash()
	if dep := api.deployAndWait(`{}`); dep["state"] != "succeeded" {
		t.Fatalf("first deploy: %v", dep)
	}

	// Revision 2: every kind changes; every secret too.
	api.must(200, "PATCH", "/admin/v1/services/s1", `{"url":"http://b.example:8080"}`, h("Content-Type", "application/merge-patch+json"))
	api.must(200, "PATCH", "/admin/v1/services/mtls", fmt.Sprintf(`{"tls":{"client_certificate":%q,"client_key":%q}}`, second.CertPEM, second.KeyPEM),
		h("Content-Type", "application/merge-patch+json"))
	api.must(204, "DELETE", "/admin/v1/routes/r1", "")
	api.must(201, "POST", "/admin/v1/routes", `{"id":"r2","name":"new","paths":["/b"],"service_id":"s1"}`)
	api.must(204, "DELETE", "/admin/v1/consumers/c1/credentials/k1", "")
	api.must(201, "POST", "/admin/v1/consumers/c1/credentials", `{"id":"k1","type":"key-auth","key":"`+key2+`"}`)
	hash()
	api.must(200, "PUT", "/admin/v1/policies/jwt", jwt(hs2))
	api.must(201, "POST", "/admin/v1/consumers", `{"id":"c2","name":"bob"}`)
	if dep := api.deployAndWait(`{}`); dep["state"] != "succeeded" {
		t.Fatalf("second deploy: %v", dep)
	}

	secrets := append([]string{hs1, hs2, key1, key2, keyLine(first.KeyPEM), keyLine(second.KeyPEM)}, hashes...)
	noSecret := func(step string, r *response) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(string(r.body), s) {
				t.Fatalf("%s: a secret (%.12s…) is in the answer: %s", step, s, r.body)
			}
		}
	}

	d, r := api.revisionDiff("/admin/v1/revisions/2?diff_from=1")
	noSecret("diff 1 to 2", r)
	want := []string{"update policies jwt", "update services s1", "update services mtls", "create routes r2",
		"delete routes r1", "create consumers c2", "update credentials k1"}
	if got := changeLines(d); !slices.Equal(got, want) {
		t.Fatalf("diff 1 to 2: changes %q; want %q", got, want)
	}
	if d.From != 1 || d.To != 2 || d.Summary != (config.Summary{Create: 2, Update: 4, Delete: 1}) {
		t.Errorf("diff 1 to 2: from %d to %d, summary %+v; want from 1 to 2, 2 created, 4 updated, 1 deleted", d.From, d.To, d.Summary)
	}
	fields := map[string][]config.FieldChange{}
	for _, c := range d.Changes {
		fields[c.ID] = c.Fields
	}
	secret := func(field string) []config.FieldChange {
		return []config.FieldChange{{Field: field, From: "(secret)", To: "(secret)"}}
	}
	for _, tc := range []struct {
		id   string
		want []config.FieldChange
	}{
		{"s1", []config.FieldChange{{Field: "/url", From: "http://a.example:8080", To: "http://b.example:8080"}}},
		{"jwt", secret("/config/jwt/keys/0/secret")},
		{"k1", secret("/key")},
		{"mtls", append([]config.FieldChange{{Field: "/tls/client_certificate", From: first.CertPEM, To: second.CertPEM}},
			secret("/tls/client_key")...)},
		{"r2", nil}, {"r1", nil}, {"c2", nil},
	} {
		if got := fields[tc.id]; fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("diff 1 to 2, %s: fields %v; want %v", tc.id, got, tc.want)
		}
	}

	// Backwards, the same changes undone.
	d, r = api.revisionDiff("/admin/v1/revisions/1?diff_from=2")
	noSecret("diff 2 to 1", r)
	want = []string{"update policies jwt", "update services s1", "update services mtls", "create routes r1",
		"delete routes r2", "delete consumers c2", "update credentials k1"}
	if got := changeLines(d); !slices.Equal(got, want) {
		t.Errorf("diff 2 to 1: changes %q; want %q", got, want)
	}

	// From the empty configuration, everything is created, with no value.
	d, r = api.revisionDiff("/admin/v1/revisions/1?diff_from=0")
	noSecret("diff 0 to 1", r)
	want = []string{"create policies jwt", "create services s1", "create services mtls", "create routes r1",
		"create consumers c1", "create credentials k1"}
	if got := changeLines(d); !slices.Equal(got, want) || d.From != 0 || d.To != 1 {
		t.Errorf("diff 0 to 1: from %d to %d, changes %q; want from 0 to 1, %q", d.From, d.To, got, want)
	}

	// A revision against itself: nothing.
	if d, _ = api.revisionDiff("/admin/v1/revisions/2?diff_from=2"); len(d.Changes) != 0 || d.Summary != (config.Summary{}) {
		t.Errorf("diff 2 to 2: %+v; want no change", d)
	}
}

// TestRevisionDiffOfAMissingRevisionIs404AndABadParameter400 proves the
// refusals of a diff, each a problem document.
func TestRevisionDiffOfAMissingRevisionIs404AndABadParameter400(t *testing.T) {
	api := newTestAPI(t)
	api.service("s")
	api.deployAndWait(`{}`)
	for _, tc := range []struct {
		desc, path string
		status     int
		fields     []string
	}{
		{"revision missing", "/admin/v1/revisions/9?diff_from=1", 404, nil},
		{"revision to compare with missing", "/admin/v1/revisions/1?diff_from=9", 404, nil},
		{"negative", "/admin/v1/revisions/1?diff_from=-1", 400, []string{"query.diff_from"}},
		{"not a number", "/admin/v1/revisions/1?diff_from=latest", 400, []string{"query.diff_from"}},
		{"leading zero", "/admin/v1/revisions/1?diff_from=01", 400, []string{"query.diff_from"}},
		{"empty", "/admin/v1/revisions/1?diff_from=", 400, []string{"query.diff_from"}},
		{"over int64", "/admin/v1/revisions/1?diff_from=9223372036854775808", 400, []string{"query.diff_from"}},
		{"twice", "/admin/v1/revisions/1?diff_from=0&diff_from=1", 400, []string{"query.diff_from"}},
		{"unknown parameter beside it", "/admin/v1/revisions/1?diff_from=0&to=1", 400, []string{"query.to"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			for _, method := range []string{"GET", "HEAD"} {
				r := api.do(method, tc.path, "")
				if method == "HEAD" {
					if r.status != tc.status || len(r.body) != 0 {
						t.Errorf("HEAD: got %d with %d bytes; want %d, no body", r.status, len(r.body), tc.status)
					}
					continue
				}
				assertProblem(t, r, tc.status)
				if got := r.problemFields(); fmt.Sprint(got) != fmt.Sprint(tc.fields) {
					t.Errorf("fields %v; want %v", got, tc.fields)
				}
			}
		})
	}
}

// TestRevisionDiffIsCachedByAnETagNamingBothRevisions proves that a diff
// has its own validator: not the revision's, since its body differs, and
// answered 304 to If-None-Match since neither revision ever changes.
func TestRevisionDiffIsCachedByAnETagNamingBothRevisions(t *testing.T) {
	api := newTestAPI(t)
	api.service("s")
	api.deployAndWait(`{}`)
	api.service("t")
	api.deployAndWait(`{}`)
	revTag := api.must(200, "GET", "/admin/v1/revisions/2", "").header.Get("ETag")
	r := api.must(200, "GET", "/admin/v1/revisions/2?diff_from=1", "")
	tag := r.header.Get("ETag")
	if tag == "" || tag == revTag || r.header.Get("Last-Modified") == "" {
		t.Fatalf("diff: ETag %q, Last-Modified %q; want an ETag other than the revision's %q, and a date", tag, r.header.Get("Last-Modified"), revTag)
	}
	if other := api.must(200, "GET", "/admin/v1/revisions/2?diff_from=0", "").header.Get("ETag"); other == tag {
		t.Errorf("diffs from 1 and from 0: both ETag %s; want each its own", tag)
	}
	api.must(304, "GET", "/admin/v1/revisions/2?diff_from=1", "", h("If-None-Match", tag))
	api.must(200, "GET", "/admin/v1/revisions/2?diff_from=1", "", h("If-None-Match", revTag))
	api.must(200, "HEAD", "/admin/v1/revisions/2?diff_from=1", "", h("If-Match", tag))
	assertProblem(t, api.do("GET", "/admin/v1/revisions/2?diff_from=1", "", h("If-Match", revTag)), 412)
}

// TestDeploymentsShowTheRevisionTheyReplaced proves that a deployment
// names the revision it replaced once it has begun, and that a client
// cannot set it.
func TestDeploymentsShowTheRevisionTheyReplaced(t *testing.T) {
	api := newTestAPI(t)
	api.service("s")
	for i, tc := range []struct {
		body     string
		replaced float64
	}{
		{`{}`, 0},
		{`{}`, 1},
		{`{"action":"rollback","revision":1}`, 2},
		{`{"action":"undeploy"}`, 1},
	} {
		dep := api.deployAndWait(tc.body)
		if dep["state"] != "succeeded" || dep["replaced_revision"] != tc.replaced {
			t.Errorf("deployment %d (%s): %v; want succeeded, replaced_revision %v", i+1, tc.body, dep, tc.replaced)
		}
	}
	before := api.snapshot()
	r := api.do("POST", "/admin/v1/deployments", `{"replaced_revision":1}`)
	assertProblem(t, r, 400)
	if got := r.problemFields(); !slices.Equal(got, []string{"replaced_revision"}) {
		t.Errorf("fields %v; want [replaced_revision]", got)
	}
	api.unchanged(before)
}
