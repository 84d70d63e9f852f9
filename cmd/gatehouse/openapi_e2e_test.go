package main

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/internal/testupstream"
)

// TestOpenAPIWalkthroughOfTheREADME runs the README's "OpenAPI at the
// edge" walkthrough against the binary: the petstore document posted as
// YAML, imported (dry run, then for real), deployed; requests breaking it
// refused before the upstream, a valid one passed on, and the upstream's
// nonconforming answer (an object where the document says an array)
// found in the conformance report.
func TestOpenAPIWalkthroughOfTheREADME(t *testing.T) {
	doc := testenv.SharedOpenAPI(t, "oai-petstore.yaml")
	up := testupstream.Start(t)
	const token = "walkthrough-token-0123456789abcdef0123"
	p := launch(t, t.TempDir(), nil, "GATEHOUSE_ADMIN_TOKEN="+token)
	wantStatus(t, "POST service", p.do("POST", "/admin/v1/services", token, `{"id":"pets","name":"pets","url":"`+up.URL+`"}`), 201)
	r := p.do("POST", "/admin/v1/specs?id=petstore", token, string(doc), "Content-Type", "application/yaml")
	wantStatus(t, "POST spec", r, 201)
	if loc := r.header.Get("Location"); loc != "/admin/v1/specs/petstore" {
		t.Fatalf("Location %q", loc)
	}

	var change struct {
		Create []struct {
			Name    string   `json:"name"`
			Paths   []string `json:"paths"`
			Methods []string `json:"methods"`
		} `json:"create"`
	}
	r = p.do("POST", "/admin/v1/specs/petstore/import", token, `{"service_id":"pets","dry_run":true}`)
	wantStatus(t, "dry run", r, 200)
	if err := json.Unmarshal(r.body, &change); err != nil || len(change.Create) != 3 {
		t.Fatalf("dry run: %s; want three routes to create", r.body)
	}
	var routes struct{ Data []any }
	if r := p.do("GET", "/admin/v1/routes", token, ""); json.Unmarshal(r.body, &routes) != nil || len(routes.Data) != 0 {
		t.Fatalf("after the dry run: %s; want no routes", r.body)
	}
	wantStatus(t, "import", p.do("POST", "/admin/v1/specs/petstore/import", token, `{"service_id":"pets"}`), 200)
	if dep := p.deployAndWait(token, `{}`); dep["state"] != "succeeded" {
		t.Fatalf("deployment: %v", dep)
	}

	proxy := "http://" + p.proxyAddr
	before := up.Requests()
	for _, c := range []struct {
		method, path, body string
		status             int
		field              string
	}{
		{"GET", "/v1/pets?limit=ten", "", 400, "query.limit"},
		{"POST", "/v1/pets", `{"id":"one","name":7}`, 422, "body/id"},
	} {
		r := p.do(c.method, proxy+c.path, "", c.body)
		doc := checkProblem(t, c.method+" "+c.path, r, c.status, "application/problem+json")
		if len(doc.Errors) == 0 || doc.Errors[0].Field != c.field {
			t.Fatalf("%s %s: errors %+v; want %s first", c.method, c.path, doc.Errors, c.field)
		}
	}
	if up.Requests() != before {
		t.Fatal("a refused request reached the upstream")
	}
	if r := p.do("GET", proxy+"/v1/pets?limit=2", "", ""); r.status != http.StatusOK {
		t.Fatalf("valid request: %d %s", r.status, r.body)
	}

	var rep struct {
		Data []struct {
			Rule      string `json:"rule"`
			Operation string `json:"operation"`
			Status    int    `json:"status"`
		} `json:"data"`
	}
	// A reported body is judged off the request path, after the
	// response: its finding comes soon after, not with it.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		r = p.do("GET", "/admin/v1/conformance", token, "")
		if err := json.Unmarshal(r.body, &rep); err != nil || len(rep.Data) > 1 || len(rep.Data) == 0 && time.Now().After(deadline) {
			t.Fatalf("report: %d %s; want one finding", r.status, r.body)
		}
		if len(rep.Data) == 1 {
			break
		}
	}
	if f := rep.Data[0]; f.Rule != "body-schema" || f.Operation != "listPets" || f.Status != 200 {
		t.Fatalf("finding %+v; want body-schema of listPets' 200", f)
	}
}
