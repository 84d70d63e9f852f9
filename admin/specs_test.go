package admin

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/testenv"
	"go.yaml.in/yaml/v4"
)

// petstoreYAML is a small document with a server path, a parameter and
// an operation without operationId.
const petstoreYAML = `openapi: 3.0.3
info:
  title: Swagger Petstore
  version: 1.0.0
servers:
  - url: http://petstore.example.com/v1
paths:
  /pets:
    get:
      operationId: listPets
      responses:
        '200':
          description: the pets
    post:
      responses:
        '201':
          description: created
  /pets/{petId}:
    get:
      operationId: showPetById
      parameters:
        - name: petId
          in: path
          required: true
          schema:
            type: string
      responses:
        '200':
          description: a pet
`

const yamlType = "application/yaml"

func withAdminOptions(set func(*Options)) apiOption {
	return func(c *apiConfig) { set(&c.admin) }
}

// thirdPartyDocuments are the documents of the shared corpus
// (testenv.SharedOpenAPIDir): real descriptions written by others.
func thirdPartyDocuments(t *testing.T) []string {
	t.Helper()
	dir := testenv.SharedOpenAPIDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	var docs []string
	for _, f := range files {
		if ext := filepath.Ext(f); ext == ".yaml" || ext == ".yml" || ext == ".json" {
			docs = append(docs, f)
		}
	}
	if err != nil || len(docs) == 0 {
		t.Fatalf("no OpenAPI documents in %s", dir)
	}
	return docs
}

// declaredOperations reads a document's operations on its own, as a
// plain YAML tree (JSON is YAML): method and path of each.
func declaredOperations(t *testing.T, data []byte) []string {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var ops []string
	for path, item := range doc.Paths {
		for key := range item {
			switch key {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
				ops = append(ops, strings.ToUpper(key)+" "+path)
			}
		}
	}
	sort.Strings(ops)
	return ops
}

func mediaTypeOf(file string) string {
	if filepath.Ext(file) == ".json" {
		return "application/json"
	}
	return yamlType
}

// importedRoutes decodes a list of routes from an import's change set.
func importedRoutes(t *testing.T, r *response, key string) []*gatehouse.Route {
	t.Helper()
	var body map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatal(err)
	}
	var routes []*gatehouse.Route
	if err := json.Unmarshal(body[key], &routes); err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return routes
}

// sameShape reports whether a route path is the document's path template:
// the same segments, a parameter wherever the template has one.
func sameShape(route, template string) bool {
	rs, ts := strings.Split(route, "/"), strings.Split(template, "/")
	if len(rs) != len(ts) {
		return false
	}
	for i := range rs {
		param := strings.HasPrefix(rs[i], "{") && strings.HasSuffix(rs[i], "}")
		if strings.Contains(ts[i], "{") != param || (!param && rs[i] != ts[i]) {
			return false
		}
	}
	return true
}

func TestEveryThirdPartyDocumentIsAcceptedAndImportedAsItsOperations(t *testing.T) {
	api := newTestAPI(t)
	svc := api.service("upstream")
	for _, file := range thirdPartyDocuments(t) {
		stem := strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
		t.Run(stem, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			want := declaredOperations(t, data)
			// Two documents share a title: each gets its name, and its
			// own host so that their routes do not clash.
			name := gatehouse.NameFrom(stem)
			created := api.must(201, "POST", "/admin/v1/specs?name="+name, string(data), h("Content-Type", mediaTypeOf(file))).json()
			if created["operations"] != float64(len(want)) || created["media_type"] != mediaTypeOf(file) {
				t.Fatalf("spec: operations %v, media_type %v; want %d, %s", created["operations"], created["media_type"], len(want), mediaTypeOf(file))
			}
			id := created["id"].(string)
			r := api.must(200, "POST", "/admin/v1/specs/"+id+"/import",
				fmt.Sprintf(`{"service_id":%q,"base_path":"/","hosts":["%s.example.com"]}`, svc, name))
			routes := importedRoutes(t, r, "create")
			var got []string
			for _, rt := range routes {
				op := rt.Import.Operation
				got = append(got, op)
				method, template, _ := strings.Cut(op, " ")
				if len(rt.Methods) != 1 || rt.Methods[0] != method || len(rt.Paths) != 1 || !sameShape(rt.Paths[0], template) {
					t.Errorf("%s: route methods %v, paths %v", op, rt.Methods, rt.Paths)
				}
			}
			sort.Strings(got)
			if !slices.Equal(got, want) {
				t.Fatalf("imported %d routes %v; the document declares %d operations %v", len(got), got, len(want), want)
			}
			listed := api.must(200, "GET", "/admin/v1/routes?limit=500&service_id="+svc, "").json()["data"].([]any)
			n := 0
			for _, v := range listed {
				if v.(map[string]any)["hosts"].([]any)[0] == name+".example.com" {
					n++
				}
			}
			if n != len(want) {
				t.Fatalf("the store holds %d of its routes; want %d", n, len(want))
			}
		})
	}
}

func TestSpecDocumentRoundTripsVerbatimWithItsMediaTypeAndETag(t *testing.T) {
	api := newTestAPI(t)
	jsonDoc := `{"openapi":"3.1.0",  "info":{"title":"Json","version":"1"},"paths":{}}`
	for _, c := range []struct{ sent, kept, body string }{
		{yamlType, yamlType, petstoreYAML},
		{"text/yaml", yamlType, strings.Replace(petstoreYAML, "Swagger Petstore", "Other", 1)},
		{"application/json", "application/json", jsonDoc},
		{"application/vnd.oai.openapi+json;charset=utf-8", "application/json", strings.Replace(jsonDoc, "Json", "Json2", 1)},
	} {
		r := api.must(201, "POST", "/admin/v1/specs", c.body, h("Content-Type", c.sent))
		spec := r.json()
		if spec["media_type"] != c.kept || spec["document"] != c.body {
			t.Fatalf("%s: media_type %v, document %q; want %s, the body verbatim", c.sent, spec["media_type"], spec["document"], c.kept)
		}
		doc := api.must(200, "GET", "/admin/v1/specs/"+spec["id"].(string)+"/document", "")
		if string(doc.body) != c.body || doc.header.Get("Content-Type") != c.kept || doc.header.Get("ETag") != r.header.Get("ETag") {
			t.Fatalf("%s: document %q, Content-Type %q, ETag %q; want the body, %s, %s", c.sent, doc.body,
				doc.header.Get("Content-Type"), doc.header.Get("ETag"), c.kept, r.header.Get("ETag"))
		}
		api.must(304, "GET", "/admin/v1/specs/"+spec["id"].(string)+"/document", "", h("If-None-Match", r.header.Get("ETag")))
	}
	spec := api.must(201, "POST", "/admin/v1/specs?name=pets", strings.Replace(petstoreYAML, "Swagger Petstore", "Third", 1),
		h("Content-Type", yamlType)).json()
	path := "/admin/v1/specs/" + spec["id"].(string) + "/document"
	api.must(200, "GET", path, "", h("Accept", "application/*"))
	assertProblem(t, api.do("GET", path, "", h("Accept", "application/json")), 406)
	// The most specific range decides (RFC 9110 §12.5.1): q=0 refuses YAML
	// whatever */* says.
	assertProblem(t, api.do("GET", path, "", h("Accept", "application/yaml;q=0, */*")), 406)
	assertProblem(t, api.do("GET", path, "", h("If-Match", `"1"`)), 412)
	if names := api.must(200, "GET", "/admin/v1/specs", "").json()["data"].([]any); len(names) != 5 {
		t.Fatalf("listed %d specs; want 5", len(names))
	} else if _, ok := names[0].(map[string]any)["document"]; ok {
		t.Fatal("a list of specs holds their documents")
	}
}

func TestSpecNameComesFromTheQueryOrElseTheTitle(t *testing.T) {
	api := newTestAPI(t)
	if got := api.must(201, "POST", "/admin/v1/specs", petstoreYAML, h("Content-Type", yamlType)).json()["name"]; got != "swagger-petstore" {
		t.Fatalf("name from the title: got %v; want swagger-petstore", got)
	}
	if got := api.must(201, "POST", "/admin/v1/specs?name=Pets.v1&id=pets", petstoreYAML, h("Content-Type", yamlType)).json(); got["name"] != "Pets.v1" || got["id"] != "pets" {
		t.Fatalf("from the query: got name %v, id %v; want Pets.v1, pets", got["name"], got["id"])
	}
	// The query takes what the name rule takes, as every other name does.
	if got := api.must(201, "POST", "/admin/v1/specs?name=pets-&id=pets2", petstoreYAML, h("Content-Type", yamlType)).json(); got["name"] != "pets-" {
		t.Fatalf("a name ending in '-': got %v; want pets-", got["name"])
	}
	// The same title again: the derived name is taken.
	r := api.do("POST", "/admin/v1/specs", petstoreYAML, h("Content-Type", yamlType))
	assertProblem(t, r, 409)
	if fmt.Sprint(r.problemFields()) != "[query.name]" {
		t.Fatalf("a name taken: fields %v; want [query.name]", r.problemFields())
	}
	before := api.snapshot()
	r = api.do("POST", "/admin/v1/specs", strings.Replace(petstoreYAML, "Swagger Petstore", `"!!!"`, 1), h("Content-Type", yamlType))
	assertProblem(t, r, 422)
	if fmt.Sprint(r.problemFields()) != "[query.name]" {
		t.Fatalf("a title giving no name: fields %v; want [query.name]", r.problemFields())
	}
	r = api.do("POST", "/admin/v1/specs?name=-bad&id=a.b", petstoreYAML, h("Content-Type", yamlType))
	assertProblem(t, r, 400)
	if fmt.Sprint(r.problemFields()) != "[query.id query.name]" {
		t.Fatalf("bad id and name: fields %v; want [query.id query.name]", r.problemFields())
	}
	api.unchanged(before)
	// PUT without a name keeps the spec's.
	api.must(200, "PUT", "/admin/v1/specs/pets", strings.Replace(petstoreYAML, "Swagger Petstore", "Renamed", 1), h("Content-Type", yamlType))
	if got := api.must(200, "GET", "/admin/v1/specs/pets", "").json(); got["name"] != "Pets.v1" || got["title"] != "Renamed" {
		t.Fatalf("after PUT: name %v, title %v; want Pets.v1, Renamed", got["name"], got["title"])
	}
}

func TestSpecBodyOfAnotherMediaTypeIs415SayingWhatIsTaken(t *testing.T) {
	api := newTestAPI(t)
	api.must(201, "POST", "/admin/v1/specs?id=s", petstoreYAML, h("Content-Type", yamlType))
	before := api.snapshot()
	for _, c := range []struct{ method, path, header string }{
		{"POST", "/admin/v1/specs", "Accept-Post"},
		{"PUT", "/admin/v1/specs/s", "Accept"},
	} {
		for _, ct := range []string{"text/plain", "application/merge-patch+json", "application/yaml; charset=latin1"} {
			r := api.do(c.method, c.path, petstoreYAML, h("Content-Type", ct))
			assertProblem(t, r, 415)
			if got := r.header.Get(c.header); !strings.Contains(got, "application/yaml") || !strings.Contains(got, "application/json") {
				t.Errorf("%s %s as %s: %s %q; want the JSON and YAML types", c.method, c.path, ct, c.header, got)
			}
		}
	}
	api.unchanged(before)
	// The PUT of every other kind says what it takes in Accept too.
	svc := api.service("s")
	if r := api.do("PUT", "/admin/v1/services/"+svc, `{}`, h("Content-Type", "text/plain")); r.status != 415 || r.header.Get("Accept") != "application/json" {
		t.Errorf("PUT of a service as text/plain: got %d, Accept %q; want 415, application/json", r.status, r.header.Get("Accept"))
	}
	before = api.snapshot()
	r := api.do("PATCH", "/admin/v1/specs/s", `{}`)
	assertProblem(t, r, 405)
	if got := r.header.Get("Allow"); got != "GET, HEAD, PUT, DELETE, OPTIONS" {
		t.Fatalf("PATCH: Allow %q; want GET, HEAD, PUT, DELETE, OPTIONS", got)
	}
	api.unchanged(before)
}

func TestSpecHasItsOwnSizeLimitJudgedOnTheDeclaredLengthFirst(t *testing.T) {
	const limit = 4096
	api := newTestAPI(t, withAdminOptions(func(o *Options) { o.MaxBodyBytes, o.SpecMaxBytes = 512, limit }))
	// Over the admin's JSON limit, under the spec's: taken.
	padded := petstoreYAML + "# " + strings.Repeat("x", 1000) + "\n"
	api.must(201, "POST", "/admin/v1/specs", padded, h("Content-Type", yamlType))
	big := petstoreYAML + "# " + strings.Repeat("x", limit) + "\n"
	before := api.snapshot()
	assertProblem(t, api.do("POST", "/admin/v1/specs?name=big", big, h("Content-Type", yamlType)), 413)
	// Declared over the limit: refused before a byte of the body is read,
	// so a client waiting for 100 Continue gets the 413 instead.
	c := api.dial()
	c.send(fmt.Sprintf("POST /admin/v1/specs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/yaml\r\n"+
		"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n", api.token, limit+1))
	if r := c.readResponse("POST"); r.status != 413 {
		t.Fatalf("declared %d bytes: got %d; want 413 before the body", limit+1, r.status)
	}
	api.unchanged(before)
}

func TestMalformedDocumentIs400AndOneThatIsNotOpenAPIIs422AtItsPointer(t *testing.T) {
	api := newTestAPI(t)
	for _, c := range []struct {
		name, ct, body string
		status         int
	}{
		{"JSON that does not parse", "application/json", `{"openapi": "3.1.0",`, 400},
		{"YAML that does not parse", yamlType, "openapi: 3.1.0\ninfo: [\n", 400},
		{"YAML sent as JSON", "application/json", petstoreYAML, 400},
		{"a JSON array", "application/json", `[]`, 400},
		{"JSON labelled YAML that does not parse (read as JSON, never by the YAML parser)", yamlType, `{"openapi": "3.1.0",`, 400},
		{"empty", yamlType, " \n", 400},
		{"no info", "application/json", `{"openapi":"3.1.0","paths":{}}`, 422},
		{"a $ref that does not resolve", yamlType, strings.Replace(petstoreYAML, "          description: a pet\n",
			"          description: a pet\n          content:\n            application/json:\n              schema:\n                $ref: '#/components/schemas/Missing'\n", 1), 422},
		{"a $ref to another file", yamlType, strings.Replace(petstoreYAML, "          description: a pet\n",
			"          description: a pet\n          content:\n            application/json:\n              schema:\n                $ref: 'other.yaml#/Pet'\n", 1), 422},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := api.do("POST", "/admin/v1/specs?name=x", c.body, h("Content-Type", c.ct))
			assertProblem(t, r, c.status)
			fields := r.problemFields()
			if len(fields) == 0 {
				t.Fatal("no errors listed")
			}
			// The document as a whole, or a JSON pointer into it (once
			// openapi.Parse places each problem).
			for _, f := range fields {
				if f != "document" && !strings.HasPrefix(f, "/") {
					t.Errorf("field %q: want document or a JSON pointer", f)
				}
			}
		})
	}
	if n := len(api.must(200, "GET", "/admin/v1/specs", "").json()["data"].([]any)); n != 0 {
		t.Fatalf("%d specs stored from refused documents", n)
	}
	api.must(201, "POST", "/admin/v1/specs?id=s", petstoreYAML, h("Content-Type", yamlType))
	before := api.snapshot()
	assertProblem(t, api.do("PUT", "/admin/v1/specs/s", `{"openapi":"3.1.0"}`), 422)
	api.unchanged(before)
}

func TestSpecWritesAreConditionalAndDeletedSpecsAreGone(t *testing.T) {
	api := newTestAPI(t)
	r := api.must(201, "POST", "/admin/v1/specs?id=s", petstoreYAML, h("Content-Type", yamlType))
	if r.header.Get("Location") != "/admin/v1/specs/s" {
		t.Fatalf("Location %q; want /admin/v1/specs/s", r.header.Get("Location"))
	}
	tag := r.header.Get("ETag")
	before := api.snapshot()
	assertProblem(t, api.do("PUT", "/admin/v1/specs/s", petstoreYAML, h("Content-Type", yamlType), h("If-Match", `"1"`)), 412)
	assertProblem(t, api.do("DELETE", "/admin/v1/specs/s", "", h("If-Match", `"1"`)), 412)
	api.unchanged(before)
	r = api.must(200, "PUT", "/admin/v1/specs/s", strings.Replace(petstoreYAML, "1.0.0", "1.0.1", 1), h("Content-Type", yamlType), h("If-Match", tag))
	if r.header.Get("ETag") == tag {
		t.Fatal("PUT kept the ETag")
	}
	api.must(304, "GET", "/admin/v1/specs/s", "", h("If-None-Match", r.header.Get("ETag")))
	assertProblem(t, api.do("GET", "/admin/v1/specs/none", ""), 404)
	assertProblem(t, api.do("PUT", "/admin/v1/specs/none", petstoreYAML, h("Content-Type", yamlType)), 404)
	api.must(204, "DELETE", "/admin/v1/specs/s", "", h("If-Match", r.header.Get("ETag")))
	for _, path := range []string{"/admin/v1/specs/s", "/admin/v1/specs/s/document"} {
		assertProblem(t, api.do("GET", path, ""), 410)
	}
	assertProblem(t, api.do("POST", "/admin/v1/specs/s/import", `{"service_id":"x"}`), 410)
}

func TestDeleteOfASpecAnOpenAPIPolicyUsesConflicts(t *testing.T) {
	api := newTestAPI(t)
	before := api.snapshot()
	r := api.do("POST", "/admin/v1/policies", `{"name":"v","type":"openapi","config":{"spec_id":"s"}}`)
	assertProblem(t, r, 422)
	if fmt.Sprint(r.problemFields()) != "[config.spec_id]" {
		t.Fatalf("a policy naming no spec: fields %v; want [config.spec_id]", r.problemFields())
	}
	api.unchanged(before)
	api.must(201, "POST", "/admin/v1/specs?id=s", petstoreYAML, h("Content-Type", yamlType))
	api.must(201, "POST", "/admin/v1/policies", `{"id":"v","name":"v","type":"openapi","config":{"spec_id":"s"}}`)
	before = api.snapshot()
	assertProblem(t, api.do("DELETE", "/admin/v1/specs/s", ""), 409)
	api.unchanged(before)
	api.must(204, "DELETE", "/admin/v1/policies/v", "")
	api.must(204, "DELETE", "/admin/v1/specs/s", "")
}

func TestOpenAPIPolicyBasePathMustBeAPathPrefix(t *testing.T) {
	api := newTestAPI(t)
	api.must(201, "POST", "/admin/v1/specs?id=s", petstoreYAML, h("Content-Type", yamlType))
	for _, c := range []struct {
		base   string
		status int
	}{{"v1", 400}, {"/v 1", 422}, {"/v1/*", 422}, {"/{a}/{a}", 422}, {"/v1", 201}, {"/", 201}, {"", 201}} {
		r := api.do("POST", "/admin/v1/policies", fmt.Sprintf(`{"name":"p%d","type":"openapi","config":{"spec_id":"s","base_path":%q}}`, len(c.base)*10+c.status, c.base))
		if r.status != c.status || (c.status != 201 && fmt.Sprint(r.problemFields()) != "[config.base_path]") {
			t.Errorf("base_path %q: got %d %s; want %d", c.base, r.status, r.body, c.status)
		}
	}
}

func TestDeployCarriesTheSpecsItsPoliciesNameIntoTheRevision(t *testing.T) {
	api := newTestAPI(t)
	api.must(201, "POST", "/admin/v1/specs?id=used", petstoreYAML, h("Content-Type", yamlType))
	api.must(201, "POST", "/admin/v1/specs?id=unused&name=unused", petstoreYAML, h("Content-Type", yamlType))
	api.must(201, "POST", "/admin/v1/policies", `{"id":"v","name":"v","type":"openapi","config":{"spec_id":"used"}}`)
	dep := api.deployAndWait(`{}`)
	if dep["state"] != "succeeded" {
		t.Fatalf("deployment %v", dep)
	}
	applied, _ := api.applier.last()
	if len(applied.Specs) != 1 || applied.Specs[0].ID != "used" || applied.Specs[0].Document != petstoreYAML {
		t.Fatalf("the data plane got specs %+v; want used, with its document", applied.Specs)
	}
	rev := api.must(200, "GET", fmt.Sprintf("/admin/v1/revisions/%v", dep["revision"]), "").json()
	specs := rev["specs"].([]any)
	if len(specs) != 1 || specs[0].(map[string]any)["document"] != petstoreYAML {
		t.Fatalf("revision specs %v; want used, with its document", specs)
	}
	listed := api.must(200, "GET", "/admin/v1/revisions", "").json()["data"].([]any)
	s := listed[0].(map[string]any)["specs"].([]any)[0].(map[string]any)
	if _, ok := s["document"]; ok || s["id"] != "used" {
		t.Fatalf("a list of revisions shows spec %v; want used without its document", s)
	}
}
