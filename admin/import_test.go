package admin

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// importSetup makes a service and the petstore spec (id "pets"), and
// returns the service's id.
func importSetup(api *testAPI) string {
	api.t.Helper()
	svc := api.service("petstore")
	api.must(201, "POST", "/admin/v1/specs?id=pets", petstoreYAML, h("Content-Type", yamlType))
	return svc
}

// changeSet is an import's answer: the operations in each list.
func changeSet(t *testing.T, r *response) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, key := range []string{"create", "update", "delete", "unchanged"} {
		out[key] = []string{}
		for _, rt := range importedRoutes(t, r, key) {
			out[key] = append(out[key], rt.Import.Operation)
		}
	}
	return out
}

func TestImportMakesARoutePerOperationUnderTheServersBasePath(t *testing.T) {
	api := newTestAPI(t)
	svc := importSetup(api)
	r := api.must(200, "POST", "/admin/v1/specs/pets/import", fmt.Sprintf(`{"service_id":%q,"hosts":["pets.example.com"]}`, svc))
	body := r.json()
	policy := body["policy"].(map[string]any)
	if body["policy_action"] != "create" || policy["name"] != "swagger-petstore-openapi" || policy["type"] != "openapi" {
		t.Fatalf("policy %v, %v; want a new openapi policy swagger-petstore-openapi", body["policy_action"], policy)
	}
	cfg := policy["config"].(map[string]any)
	if cfg["spec_id"] != "pets" || cfg["requests"] != "enforce" || cfg["responses"] != "report" {
		t.Fatalf("policy config %v; want spec pets, requests enforce, responses report", cfg)
	}
	want := map[string]string{ // name → method path
		"swagger-petstore.listPets":    "GET /v1/pets",
		"swagger-petstore.post-pets":   "POST /v1/pets",
		"swagger-petstore.showPetById": "GET /v1/pets/{petId}",
	}
	created := importedRoutes(t, r, "create")
	if len(created) != len(want) {
		t.Fatalf("created %d routes; want %d", len(created), len(want))
	}
	for _, rt := range created {
		stored := api.must(200, "GET", "/admin/v1/routes/"+rt.ID, "").json()
		got := fmt.Sprintf("%v %v", stored["methods"].([]any)[0], stored["paths"].([]any)[0])
		if want[rt.Name] != got || stored["service_id"] != svc || fmt.Sprint(stored["policies"]) != fmt.Sprintf("[%s]", policy["id"]) ||
			fmt.Sprint(stored["hosts"]) != "[pets.example.com]" {
			t.Errorf("route %s: %s, %v; want %s on service %s with policy %s", rt.Name, got, stored, want[rt.Name], svc, policy["id"])
		}
		if imp := stored["import"].(map[string]any); imp["spec_id"] != "pets" || imp["operation"] == "" {
			t.Errorf("route %s is not marked as imported: %v", rt.Name, imp)
		}
	}
}

func TestImportingTheSameDocumentTwiceChangesNothing(t *testing.T) {
	api := newTestAPI(t)
	svc := importSetup(api)
	body := fmt.Sprintf(`{"service_id":%q}`, svc)
	first := changeSet(t, api.must(200, "POST", "/admin/v1/specs/pets/import", body))
	before := api.snapshot()
	r := api.must(200, "POST", "/admin/v1/specs/pets/import", body)
	got := changeSet(t, r)
	if len(got["create"])+len(got["update"])+len(got["delete"]) != 0 || !slices.Equal(got["unchanged"], first["create"]) {
		t.Fatalf("second import: %v; want every route unchanged: %v", got, first["create"])
	}
	if r.json()["policy_action"] != "unchanged" {
		t.Fatalf("second import: policy %v; want unchanged", r.json()["policy_action"])
	}
	api.unchanged(before)
}

func TestImportOfAChangedDocumentUpdatesAddsAndRemovesOnlyItsOwnRoutes(t *testing.T) {
	api := newTestAPI(t)
	svc := importSetup(api)
	body := fmt.Sprintf(`{"service_id":%q}`, svc)
	api.must(200, "POST", "/admin/v1/specs/pets/import", body)
	hand := api.must(201, "POST", "/admin/v1/routes", fmt.Sprintf(`{"name":"by-hand","paths":["/v1/other"],"service_id":%q}`, svc)).json()
	// listPets gets a new operationId, hence a new name; POST /pets goes;
	// DELETE /pets/{petId} comes.
	changed := strings.NewReplacer(
		"operationId: listPets", "operationId: listAllPets",
		"    post:\n      responses:\n        '201':\n          description: created\n", "",
		"  /pets/{petId}:\n", "  /pets/{petId}:\n    delete:\n      operationId: deletePet\n      parameters:\n        - name: petId\n          in: path\n          required: true\n          schema:\n            type: string\n      responses:\n        '204':\n          description: deleted\n",
	).Replace(petstoreYAML)
	api.must(200, "PUT", "/admin/v1/specs/pets", changed, h("Content-Type", yamlType))
	dry := changeSet(t, api.must(200, "POST", "/admin/v1/specs/pets/import", strings.Replace(body, "}", `,"dry_run":true}`, 1)))
	got := changeSet(t, api.must(200, "POST", "/admin/v1/specs/pets/import", body))
	want := map[string][]string{
		"create":    {"DELETE /pets/{petId}"},
		"update":    {"GET /pets"},
		"delete":    {"POST /pets"},
		"unchanged": {"GET /pets/{petId}"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || fmt.Sprint(dry) != fmt.Sprint(want) {
		t.Fatalf("import of the changed document: %v (dry run %v); want %v", got, dry, want)
	}
	if r := api.must(200, "GET", "/admin/v1/routes/"+hand["id"].(string), "").json(); r["version"] != hand["version"] {
		t.Fatalf("the hand-made route changed: %v", r)
	}
	names := []string{}
	for _, v := range api.must(200, "GET", "/admin/v1/routes", "").json()["data"].([]any) {
		names = append(names, v.(map[string]any)["name"].(string))
	}
	slices.Sort(names)
	if fmt.Sprint(names) != "[by-hand swagger-petstore.deletePet swagger-petstore.listAllPets swagger-petstore.showPetById]" {
		t.Fatalf("routes after the import: %v", names)
	}
}

func TestImportDryRunWritesNothing(t *testing.T) {
	api := newTestAPI(t)
	svc := importSetup(api)
	before := api.snapshot()
	got := changeSet(t, api.must(200, "POST", "/admin/v1/specs/pets/import", fmt.Sprintf(`{"service_id":%q,"dry_run":true}`, svc)))
	if len(got["create"]) != 3 {
		t.Fatalf("dry run: %v; want 3 routes to create", got)
	}
	api.unchanged(before)
}

func TestImportClashingWithAHandMadeRouteIs409NamingItAndWritesNothing(t *testing.T) {
	for _, c := range []struct{ name, route string }{
		{"same name", `{"name":"swagger-petstore.listPets","paths":["/elsewhere"],"service_id":%q}`},
		{"same method and path", `{"name":"mine","paths":["/v1/pets/{id}"],"methods":["GET"],"service_id":%q}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			api := newTestAPI(t)
			svc := importSetup(api)
			hand := api.must(201, "POST", "/admin/v1/routes", fmt.Sprintf(c.route, svc)).json()
			before := api.snapshot()
			r := api.do("POST", "/admin/v1/specs/pets/import", fmt.Sprintf(`{"service_id":%q}`, svc))
			assertProblem(t, r, 409)
			if !strings.Contains(string(r.body), hand["id"].(string)) || len(r.problemFields()) != 1 || !strings.HasPrefix(r.problemFields()[0], "/paths/") {
				t.Fatalf("409 %s: want one error at the operation naming route %s", r.body, hand["id"])
			}
			api.unchanged(before)
		})
	}
}

func TestImportRequestIsCheckedBeforeAnythingIsWritten(t *testing.T) {
	api := newTestAPI(t)
	svc := importSetup(api)
	api.must(201, "POST", "/admin/v1/policies", `{"id":"rl","name":"rl","type":"rate-limit","config":{"requests":5,"per":"minute"}}`)
	api.must(201, "POST", "/admin/v1/specs?id=other&name=other", petstoreYAML, h("Content-Type", yamlType))
	api.must(201, "POST", "/admin/v1/policies", `{"id":"other-v","name":"other-v","type":"openapi","config":{"spec_id":"other"}}`)
	api.must(201, "POST", "/admin/v1/policies", `{"id":"v","name":"v","type":"openapi","config":{"spec_id":"pets","base_path":"/api"}}`)
	before := api.snapshot()
	for _, c := range []struct {
		body   string
		status int
		fields string
	}{
		{`{}`, 400, "[service_id]"},
		{`{"service_id":"x","surprise":1}`, 400, "[surprise]"},
		{fmt.Sprintf(`{"service_id":%q,"base_path":"v1","hosts":[""]}`, svc), 400, "[base_path hosts[0]]"},
		{`{"service_id":"none"}`, 422, "[service_id]"},
		{fmt.Sprintf(`{"service_id":%q,"hosts":["a_b"]}`, svc), 422, "[hosts[0]]"},
		{fmt.Sprintf(`{"service_id":%q,"policy_id":"none"}`, svc), 422, "[policy_id]"},
		{fmt.Sprintf(`{"service_id":%q,"policy_id":"rl"}`, svc), 422, "[policy_id]"},
		{fmt.Sprintf(`{"service_id":%q,"policy_id":"other-v"}`, svc), 422, "[policy_id]"},
		{fmt.Sprintf(`{"service_id":%q,"policy_id":"v","base_path":"/v2"}`, svc), 422, "[base_path]"},
	} {
		r := api.do("POST", "/admin/v1/specs/pets/import", c.body)
		if r.status != c.status || fmt.Sprint(r.problemFields()) != c.fields {
			t.Errorf("%s: got %d %v; want %d %s", c.body, r.status, r.problemFields(), c.status, c.fields)
		}
	}
	assertProblem(t, api.do("POST", "/admin/v1/specs/none/import", fmt.Sprintf(`{"service_id":%q}`, svc)), 404)
	assertProblem(t, api.do("POST", "/admin/v1/specs/pets/import", fmt.Sprintf(`{"service_id":%q}`, svc), h("If-Match", `"1"`)), 412)
	api.unchanged(before)
	// The given policy's base path is the routes'.
	r := api.must(200, "POST", "/admin/v1/specs/pets/import", fmt.Sprintf(`{"service_id":%q,"policy_id":"v"}`, svc))
	for _, rt := range importedRoutes(t, r, "create") {
		if !strings.HasPrefix(rt.Paths[0], "/api/pets") || !slices.Equal(rt.Policies, []string{"v"}) {
			t.Errorf("route %s: paths %v, policies %v; want under /api, listing v", rt.Name, rt.Paths, rt.Policies)
		}
	}
	// Imported again with another openapi policy of the spec, a route
	// lists that one instead, and keeps the others it was given.
	id := importedRoutes(t, r, "create")[0].ID
	api.must(200, "PATCH", "/admin/v1/routes/"+id, `{"policies":["v","rl"]}`)
	api.must(201, "POST", "/admin/v1/policies", `{"id":"w","name":"w","type":"openapi","config":{"spec_id":"pets","base_path":"/api"}}`)
	api.must(200, "POST", "/admin/v1/specs/pets/import", fmt.Sprintf(`{"service_id":%q,"policy_id":"w"}`, svc))
	if got := api.must(200, "GET", "/admin/v1/routes/"+id, "").json()["policies"]; fmt.Sprint(got) != "[rl w]" {
		t.Fatalf("policies after importing with w: %v; want [rl w]", got)
	}
}

func TestImportPolicyNameTakenByAnotherPolicyIs409(t *testing.T) {
	api := newTestAPI(t)
	svc := importSetup(api)
	api.must(201, "POST", "/admin/v1/policies", `{"name":"swagger-petstore-openapi","type":"rate-limit","config":{"requests":5,"per":"minute"}}`)
	before := api.snapshot()
	assertProblem(t, api.do("POST", "/admin/v1/specs/pets/import", fmt.Sprintf(`{"service_id":%q}`, svc)), 409)
	api.unchanged(before)
}

func TestImportedPathTemplatesBecomeRoutePatterns(t *testing.T) {
	api := newTestAPI(t)
	svc := api.service("files")
	doc := `{"openapi":"3.1.0","info":{"title":"Files","version":"1"},"paths":{
		"/files/{name}.{ext}":{"get":{"operationId":"getFile","parameters":[
			{"name":"name","in":"path","required":true,"schema":{"type":"string"}},
			{"name":"ext","in":"path","required":true,"schema":{"type":"string"}}],"responses":{"200":{"description":"ok"}}}},
		"/pets/{pet-id}/v{version}":{"get":{"operationId":"get pet / version","parameters":[
			{"name":"pet-id","in":"path","required":true,"schema":{"type":"string"}},
			{"name":"version","in":"path","required":true,"schema":{"type":"string"}}],"responses":{"200":{"description":"ok"}}}}}}`
	starred := strings.Replace(doc, `"/files/{name}.{ext}"`, `"/files/{name}.{ext}*"`, 1)
	api.must(201, "POST", "/admin/v1/specs?id=starred&name=starred", starred)
	before := api.snapshot()
	r := api.do("POST", "/admin/v1/specs/starred/import", fmt.Sprintf(`{"service_id":%q}`, svc))
	assertProblem(t, r, 422)
	if fmt.Sprint(r.problemFields()) != "[/paths/~1files~1{name}.{ext}*/get]" {
		t.Fatalf("a path with a *: fields %v; want the operation's pointer", r.problemFields())
	}
	api.unchanged(before)
	api.must(201, "POST", "/admin/v1/specs?id=files", doc)
	r = api.must(200, "POST", "/admin/v1/specs/files/import", fmt.Sprintf(`{"service_id":%q,"base_path":"/"}`, svc))
	got := map[string]string{}
	for _, rt := range importedRoutes(t, r, "create") {
		got[rt.Name] = rt.Paths[0]
	}
	want := map[string]string{
		"files.getFile":         "/files/{name_ext}",
		"files.get-pet-version": "/pets/{pet_id}/{version}",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("routes %v; want %v", got, want)
	}
}

func TestAnImportedRouteKeepsItsMarkAndAClientCannotSetOne(t *testing.T) {
	api := newTestAPI(t)
	svc := importSetup(api)
	r := api.must(200, "POST", "/admin/v1/specs/pets/import", fmt.Sprintf(`{"service_id":%q}`, svc))
	rt := importedRoutes(t, r, "create")[0]
	// A PUT without the mark, and one with another, keep the route's.
	for _, body := range []string{
		fmt.Sprintf(`{"name":%q,"paths":%q,"methods":%q,"service_id":%q,"priority":5}`, rt.Name, rt.Paths, rt.Methods, svc),
		fmt.Sprintf(`{"name":%q,"paths":%q,"methods":%q,"service_id":%q,"priority":5,"import":{"spec_id":"x","operation":"GET /x"}}`, rt.Name, rt.Paths, rt.Methods, svc),
	} {
		got := api.must(200, "PUT", "/admin/v1/routes/"+rt.ID, body).json()
		if imp, _ := got["import"].(map[string]any); imp["spec_id"] != "pets" || imp["operation"] != rt.Import.Operation {
			t.Fatalf("after PUT %s: import %v; want the route's own", body, got["import"])
		}
	}
	hand := api.must(201, "POST", "/admin/v1/routes", fmt.Sprintf(`{"name":"h","paths":["/h"],"service_id":%q,"import":{"spec_id":"pets","operation":"GET /h"}}`, svc)).json()
	if _, ok := hand["import"]; ok {
		t.Fatalf("a client marked its own route as imported: %v", hand)
	}
	// The import keeps what it does not set (priority 5), and the
	// hand-made route is not its own.
	got := changeSet(t, api.must(200, "POST", "/admin/v1/specs/pets/import", fmt.Sprintf(`{"service_id":%q}`, svc)))
	if len(got["delete"]) != 0 || len(got["create"]) != 0 {
		t.Fatalf("re-import: %v; want nothing created or deleted", got)
	}
	if p := api.must(200, "GET", "/admin/v1/routes/"+rt.ID, "").json()["priority"]; p != float64(5) {
		t.Fatalf("priority after re-import: %v; want 5", p)
	}
}
