package openapi

import (
	"bufio"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"go.yaml.in/yaml/v4"

	"github.com/gatehouse/gatehouse/internal/doctree"
	"github.com/gatehouse/gatehouse/internal/testenv"
)

// sharedDoc is one row of testdata/SOURCES.md's table.
type sharedDoc struct {
	file              string
	paths, operations int
}

// sourcesRow reads "| `file` | ... | ... | 3.0.0 | 2 / 3 (allOf) | ..." rows.
var sourcesRow = regexp.MustCompile("^\\| `([^`]+)` \\|[^|]*\\|[^|]*\\|[^|]*\\| (\\d+) / (\\d+)")

// sharedCounted gives the counts of SOURCES.md's rows that do not say
// them as "paths / operations".
var sharedCounted = map[string]sharedDoc{
	// SOURCES.md says "1 webhook"; its one path has one operation, and
	// the webhook is not one.
	"oai-webhook-example.yaml": {"oai-webhook-example.yaml", 1, 1},
}

// sharedDocs reads the table of SOURCES.md, beside the shared corpus
// (testenv.SharedOpenAPIDir): the one list of its documents. A row
// whose counts are not "paths / operations" must be in sharedCounted.
func sharedDocs(t testing.TB) []sharedDoc {
	t.Helper()
	dir := testenv.SharedOpenAPIDir(t)
	f, err := os.Open(filepath.Join(filepath.Dir(dir), "SOURCES.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var docs []sharedDoc
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		if m := sourcesRow.FindStringSubmatch(line); m != nil {
			p, _ := strconv.Atoi(m[2])
			o, _ := strconv.Atoi(m[3])
			docs = append(docs, sharedDoc{m[1], p, o})
			continue
		}
		file := strings.Split(line, "`")[1]
		d, ok := sharedCounted[file]
		if !ok {
			t.Fatalf("SOURCES.md gives no paths / operations for %s, and the test does not either: %s", file, line)
		}
		docs = append(docs, d)
	}
	return docs
}

func TestEverySharedDocumentIsAcceptedWithTheOperationsItDeclares(t *testing.T) {
	dir := testenv.SharedOpenAPIDir(t)
	docs := sharedDocs(t)
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) != len(docs) {
		t.Fatalf("got %d files in %s; SOURCES.md lists %d", len(files), dir, len(docs))
	}
	for _, sd := range docs {
		t.Run(sd.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, sd.file))
			if err != nil {
				t.Fatal(err)
			}
			d, problems := Parse(data)
			if problems != nil {
				t.Fatalf("got problems %v; want the document accepted", problems)
			}
			paths := map[string]bool{}
			for _, op := range d.Operations {
				paths[op.Path] = true
			}
			if len(paths) != sd.paths || len(d.Operations) != sd.operations {
				t.Fatalf("got %d paths / %d operations; want %d / %d", len(paths), len(d.Operations), sd.paths, sd.operations)
			}
			// kin-openapi's reading of the same document agrees.
			kin := 0
			for _, item := range d.doc.Paths.Map() {
				kin += len(item.Operations())
			}
			if kin != len(d.Operations) {
				t.Fatalf("got %d operations; kin-openapi counts %d", len(d.Operations), kin)
			}
			if d.Title == "" || d.APIVersion == "" || !strings.HasPrefix(d.Version, "3.") {
				t.Fatalf("got title %q, API version %q, version %q; want all three", d.Title, d.APIVersion, d.Version)
			}
		})
	}
}

func TestOperationsFollowTheDocumentsPathOrderAndAFixedMethodOrder(t *testing.T) {
	want := []Operation{
		{"GET", "/zebras", "listZebras"},
		{"POST", "/zebras", "createZebra"},
		{"GET", "/ants/{id}", ""},
		{"POST", "/ants/{id}", ""},
		{"PUT", "/ants/{id}", "putAnt"},
		{"DELETE", "/ants/{id}", "deleteAnt"},
	}
	yamlDoc := `openapi: 3.0.3
info: {title: Order, version: "2.1"}
paths:
  /zebras:
    post: {operationId: createZebra, responses: {"201": {description: created}}}
    get: {operationId: listZebras, responses: {"200": {description: ok}}}
  /ants/{id}:
    parameters: [{name: id, in: path, required: true, schema: {type: string}}]
    delete: {operationId: deleteAnt, responses: {"204": {description: gone}}}
    put: {operationId: putAnt, responses: {"200": {description: ok}}}
    get: {responses: {"200": {description: ok}}}
    post:
      callbacks:
        onAnt:
          "{$request.body#/url}":
            post: {operationId: antCallback, responses: {"200": {description: ok}}}
      responses: {"200": {description: ok}}
`
	jsonDoc := `{"openapi": "3.1.0", "info": {"title": "Order", "version": "2.1"}, "paths": {
  "/zebras": {
    "post": {"operationId": "createZebra", "responses": {"201": {"description": "created"}}},
    "get": {"operationId": "listZebras", "responses": {"200": {"description": "ok"}}}},
  "/ants/{id}": {
    "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
    "delete": {"operationId": "deleteAnt", "responses": {"204": {"description": "gone"}}},
    "put": {"operationId": "putAnt", "responses": {"200": {"description": "ok"}}},
    "get": {"responses": {"200": {"description": "ok"}}},
    "post": {"responses": {"200": {"description": "ok"}}}}},
  "webhooks": {"newAnt": {"post": {"operationId": "antHook", "responses": {"200": {"description": "ok"}}}}}}`
	for name, doc := range map[string]string{"yaml": yamlDoc, "json": jsonDoc} {
		t.Run(name, func(t *testing.T) {
			d, problems := Parse([]byte(doc))
			if problems != nil {
				t.Fatalf("got problems %v", problems)
			}
			if !slices.Equal(d.Operations, want) {
				t.Fatalf("got operations %v; want %v", d.Operations, want)
			}
			if d.Title != "Order" || d.APIVersion != "2.1" {
				t.Fatalf("got title %q, API version %q; want Order, 2.1", d.Title, d.APIVersion)
			}
		})
	}
}

// minimal30 and minimal31 are valid documents that bad ones are made from.
const minimal30 = "openapi: 3.0.3\ninfo: {title: t, version: '1'}\n"
const minimal31 = "openapi: 3.1.0\ninfo: {title: t, version: '1'}\n"

// goodCase is a document Parse must accept.
type goodCase struct{ name, doc string }

// unusualDocuments are legal documents that a checker could wrongly
// refuse, or take forever over; FuzzParse starts from them too.
func unusualDocuments() []goodCase {
	// Each schema refers to the one before twice: followed naively, its
	// $refs are 2^40 paths, the $ref form of an alias bomb. Every
	// checker must visit each schema once.
	fanOut := minimal31 + "paths: {}\ncomponents:\n  schemas:\n    S0: {type: string}\n"
	for i := 1; i <= 40; i++ {
		fanOut += fmt.Sprintf("    S%d: {properties: {a: {$ref: '#/components/schemas/S%d'}}, allOf: [{$ref: '#/components/schemas/S%d'}]}\n", i, i-1, i-1)
	}
	return []goodCase{
		{"$refs that fan out 2^40 ways", fanOut},
		{"recursive schema, and refs that reach it through refs", minimal30 + `paths: {}
components:
  schemas:
    Node:
      type: object
      properties:
        children: {type: array, items: {$ref: "#/components/schemas/Node"}}
        parent: {$ref: "#/components/schemas/Node"}
    Alias: {$ref: "#/components/schemas/Other"}
    Other: {$ref: "#/components/schemas/Node"}
`},
		{"a $ref member in example data is data", minimal30 + `paths:
  /a:
    get:
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: {type: object, default: {$ref: "https://example.com/default"}, example: {$ref: "other.yaml"}}
              examples:
                one: {value: {$ref: "https://example.com/value"}}
`},
		{"properties named after keywords", minimal31 + `paths: {}
components:
  schemas:
    Odd:
      type: object
      properties:
        enum: {type: string, pattern: "^[a-z]+$"}
        example: {$ref: "#/components/schemas/Odd"}
        value: {$ref: "#/components/schemas/Odd"}
`},
		{"a pointer with escapes and percent-encoding", minimal30 + `paths:
  /a/{b}:
    get:
      parameters: [{name: b, in: path, required: true, schema: {type: string}}]
      responses: {"200": {description: ok}}
  /c:
    get:
      responses:
        "200": {$ref: "#/paths/~1a~1%7Bb%7D/get/responses/200"}
`},
		{"a YAML alias within the bounds", minimal30 + `paths:
  /a:
    get: &op {responses: {"200": {description: ok}}}
  /b:
    get: *op
`},
		{"unquoted status codes and YAML number spellings", minimal30 + `paths:
  /a:
    get:
      parameters: [{name: n, in: query, schema: {type: integer, maximum: 0x7F, minimum: 1_0}}]
      responses: {200: {description: ok}}
`},
		{"3.1 with only components", minimal31 + "components: {schemas: {A: {type: [string, \"null\"]}}}\n"},
		// A schema that refers to itself through anyOf: legal, and must not
		// send the parameter's type reading into endless recursion.
		{"a recursive parameter schema", minimal30 + `paths:
  /r:
    get:
      parameters: [{name: x, in: query, schema: {$ref: '#/components/schemas/A'}}]
      requestBody:
        content:
          application/x-www-form-urlencoded: {schema: {properties: {f: {$ref: '#/components/schemas/A'}}}}
      responses: {200: {description: ok}}
components:
  schemas:
    A: {anyOf: [{$ref: '#/components/schemas/A'}, {type: string}]}
`},
	}
}

func TestDocumentsThatAreLegalButUnusualAreAccepted(t *testing.T) {
	for _, tc := range unusualDocuments() {
		t.Run(tc.name, func(t *testing.T) {
			if _, problems := Parse([]byte(tc.doc)); problems != nil {
				t.Fatalf("got problems %v; want the document accepted", problems)
			}
		})
	}
}

// badCase is a document Parse must refuse, and the pointers of its
// problems, in order.
type badCase struct {
	name, doc string
	want      []string
}

// badDocuments are documents Parse must refuse; FuzzParse starts from
// them too.
func badDocuments() []badCase {
	refChain := minimal30 + "paths: {}\ncomponents:\n  schemas:\n    S0: {type: string}\n"
	for i := 1; i <= MaxRefChain+2; i++ {
		refChain += fmt.Sprintf("    S%d: {$ref: '#/components/schemas/S%d'}\n", i, i-1)
	}
	bigEnum := minimal30 + "paths: {}\ncomponents: {schemas: {Big: {type: integer, enum: [" + strings.Repeat("1, ", MaxEnum) + "1]}}}\n"
	var deep strings.Builder
	deep.WriteString(minimal30 + "paths: {}\nx-deep: ")
	deep.WriteString(strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1) + "\n")
	deepJSON := `{"openapi": "3.0.3", "x": ` + strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1) + "}"
	// Ten levels of ten aliases: 10^10 values from 300 bytes.
	bomb := minimal30 + "paths: {}\nx-a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	for c := 'b'; c <= 'k'; c++ {
		p := c - 1
		bomb += fmt.Sprintf("x-%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n", c, c, p, p, p, p, p, p, p, p, p, p)
	}
	var manyPaths, manyOps strings.Builder
	manyPaths.WriteString(minimal30 + "paths:\n")
	for i := 0; i <= MaxPaths; i++ {
		fmt.Fprintf(&manyPaths, "  /p%d: {}\n", i)
	}
	manyOps.WriteString(minimal30 + "paths:\n")
	for i := 0; i <= MaxOperations/len(methodOrder); i++ {
		fmt.Fprintf(&manyOps, "  /p%d:\n", i)
		for _, m := range methodOrder {
			fmt.Fprintf(&manyOps, "    %s: {responses: {default: {description: d}}}\n", strings.ToLower(m))
		}
	}

	return []badCase{
		// What the document is.
		{"not UTF-8", "openapi: \xff", []string{""}},
		{"empty", " \n", []string{""}},
		{"not JSON", `{"openapi": "3.0.3",}`, []string{""}},
		{"not YAML", "openapi: [3.0.3\n", []string{""}},
		{"two YAML documents", minimal30 + "paths: {}\n---\n" + minimal30, []string{""}},
		{"not an object", "- openapi\n", []string{""}},
		{"no openapi member", "info: {title: t, version: '1'}\npaths: {}\n", []string{"/openapi"}},
		{"Swagger 2.0", `{"swagger": "2.0", "info": {"title": "t", "version": "1"}, "paths": {}}`, []string{"/openapi"}},
		{"OpenAPI 3.2", "openapi: 3.2.0\ninfo: {title: t, version: '1'}\npaths: {}\n", []string{"/openapi"}},
		{"openapi as a YAML number", "openapi: 3.0\ninfo: {title: t, version: '1'}\npaths: {}\n", []string{"/openapi"}},
		{"duplicate YAML key", minimal30 + "paths:\n  /a: {}\n  /a: {}\n", []string{"/paths/~1a"}},
		{"duplicate JSON key", `{"openapi": "3.1.0", "info": {"title": "t", "title": "u", "version": "1"}}`, []string{"/info/title"}},
		{"YAML merge key", minimal30 + "paths: {}\nx-a: &a {b: 1}\nx-c: {<<: *a}\n", []string{"/x-c/<<"}},
		{"infinity", minimal30 + "paths: {}\nx-n: .inf\n", []string{"/x-n"}},

		// What the OAS schemas say.
		{"wrong schema type, 3.0", minimal30 + `paths:
  /pets/{petId}:
    get:
      parameters: [{name: petId, in: path, required: true, schema: {type: integr}}]
      responses: {"200": {description: ok}}
`, []string{"/paths/~1pets~1{petId}/get/parameters/0/schema/type"}},
		{"wrong schema type, 3.1", minimal31 + `paths:
  /pets/{petId}:
    get:
      parameters: [{name: petId, in: path, required: true, schema: {type: integr}}]
      responses: {"200": {description: ok}}
`, []string{"/paths/~1pets~1{petId}/get/parameters/0/schema/type"}},
		{"missing and unknown members, 3.0", "openapi: 3.0.3\ninfo: {title: t}\n" + `paths:
  /pets:
    get:
      foo: 1
      parameters: [{name: x, in: body, schema: {type: string}}]
      responses: {"200": {descripton: ok}}
`, []string{"/info/version", "/paths/~1pets/get/foo", "/paths/~1pets/get/parameters/0/in", "/paths/~1pets/get/responses/200/description", "/paths/~1pets/get/responses/200/descripton"}},
		{"missing and unknown members, 3.1", "openapi: 3.1.0\ninfo: {title: t}\n" + `paths:
  /pets:
    get:
      foo: 1
      parameters: [{name: x, in: query}]
      responses: {"200": {descripton: ok}}
`, []string{"/info/version", "/paths/~1pets/get/foo", "/paths/~1pets/get/parameters/0", "/paths/~1pets/get/responses/200/description", "/paths/~1pets/get/responses/200/descripton"}},
		{"a parameter that is neither a Reference nor a Parameter", minimal30 + `paths:
  /a:
    get:
      parameters: [{in: query, schema: {type: string}}]
      responses: {"200": {description: ok}}
`, []string{"/paths/~1a/get/parameters/0/name"}},

		// $refs.
		{"external reference to a file", minimal30 + `paths:
  /a:
    get:
      responses: {"200": {$ref: "responses.yaml#/ok"}}
`, []string{"/paths/~1a/get/responses/200/$ref"}},
		{"external reference to a URL", minimal31 + `paths: {}
components: {schemas: {A: {$ref: "https://example.com/schemas/a.json"}}}
`, []string{"/components/schemas/A/$ref"}},
		{"unresolvable local reference", minimal30 + `paths:
  /a:
    get:
      parameters: [{$ref: "#/components/parameters/nope"}]
      responses: {"200": {description: ok}}
`, []string{"/paths/~1a/get/parameters/0/$ref"}},
		{"discriminator mapping to nothing", minimal31 + `paths: {}
components:
  schemas:
    Pet:
      type: object
      discriminator: {propertyName: kind, mapping: {cat: "#/components/schemas/Cat", dog: Dog, ok: Pet}}
    Cat: {type: object}
`, []string{"/components/schemas/Pet/discriminator/mapping/dog"}},
		{"callback reference to nothing", minimal30 + `paths:
  /a:
    post:
      callbacks: {onA: {$ref: "#/components/callbacks/nope"}}
      responses: {"200": {description: ok}}
`, []string{"/paths/~1a/post/callbacks/onA/$ref"}},
		{"reference loop", minimal30 + `paths: {}
components:
  schemas:
    A: {$ref: "#/components/schemas/B"}
    B: {$ref: "#/components/schemas/A"}
    C: {$ref: "#/components/schemas/A"}
`, []string{"/components/schemas/A/$ref", "/components/schemas/B/$ref", "/components/schemas/C/$ref"}},
		{"self reference", minimal30 + "paths: {}\ncomponents: {schemas: {A: {$ref: '#/components/schemas/A'}}}\n", []string{"/components/schemas/A/$ref"}},
		{"reference chain too long", refChain, []string{
			fmt.Sprintf("/components/schemas/S%d/$ref", MaxRefChain+1),
			fmt.Sprintf("/components/schemas/S%d/$ref", MaxRefChain+2),
		}},

		// Bounds.
		{"enum too large", bigEnum, []string{"/components/schemas/Big/enum"}},
		{"pattern RE2 cannot compile", minimal30 + `paths: {}
components: {schemas: {A: {type: string, pattern: "^(?=a)b$"}}}
`, []string{"/components/schemas/A/pattern"}},
		{"pattern too long", minimal30 + "paths: {}\ncomponents: {schemas: {A: {type: string, pattern: '" + strings.Repeat("a", MaxPattern+1) + "'}}}\n",
			[]string{"/components/schemas/A/pattern"}},
		{"patternProperties key RE2 cannot compile", minimal31 + `paths: {}
components: {schemas: {A: {type: object, patternProperties: {"^x(?!y)": {type: string}}}}}
`, []string{"/components/schemas/A/patternProperties/^x(?!y)"}},
		{"nesting too deep, YAML", deep.String(), []string{"/x-deep" + strings.Repeat("/0", MaxDepth-1)}},
		{"nesting too deep, JSON", deepJSON, []string{"/x" + strings.Repeat("/0", MaxDepth-1)}},
		{"YAML alias bomb", bomb, []string{"/x-f/7"}},
		// The root, "3.0.3" and the array are three values of the bound.
		{"too many values", `{"openapi": "3.0.3", "x": [` + strings.Repeat("0,", MaxNodes) + "0]}", []string{fmt.Sprintf("/x/%d", MaxNodes-3)}},
		{"YAML alias to itself", minimal30 + "paths: {}\nx-a: &a [1, *a]\n", []string{"/x-a/1"}},
		{"too many paths", manyPaths.String(), []string{"/paths"}},
		{"too many operations", manyOps.String(), []string{"/paths"}},
		{"too large a YAML document", "openapi: 3.0.3\nx: [" + strings.Repeat("1,", doctree.MaxYAMLMarks) + "1]\n", []string{""}},

		// What kin-openapi would have said only at "".
		{"duplicate operationId", minimal30 + `paths:
  /a: {get: {operationId: x, responses: {"200": {description: ok}}}}
  /b: {get: {operationId: x, responses: {"200": {description: ok}}}}
`, []string{"/paths/~1b/get/operationId"}},
		{"components.pathItems, which kin-openapi cannot load", minimal31 + `paths: {/a: {$ref: "#/components/pathItems/P"}}
components: {pathItems: {P: {get: {responses: {"200": {description: ok}}}}}}
`, []string{"/components/pathItems"}},
		// kin-openapi's own checks, after every other passed.
		{"undeclared path parameter", minimal30 + `paths:
  /a/{id}: {get: {responses: {"200": {description: ok}}}}
`, []string{""}},
	}
}

func TestBadDocumentsAreRefusedWithEachProblemAtItsPointer(t *testing.T) {
	for _, tc := range badDocuments() {
		t.Run(tc.name, func(t *testing.T) {
			d, problems := Parse([]byte(tc.doc))
			if d != nil {
				t.Fatalf("got a document; want problems at %q", tc.want)
			}
			var got []string
			for _, p := range problems {
				got = append(got, p.Pointer)
				if p.Message == "" {
					t.Errorf("got a problem at %q without a message", p.Pointer)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got problems %v; want at %q", problems, tc.want)
			}
		})
	}
}

func TestAProblemListIsCutAtMaxProblemsAndCountsTheRest(t *testing.T) {
	var b strings.Builder
	b.WriteString(minimal30 + "paths: {}\ninfo2: 1\ncomponents:\n  schemas:\n")
	for i := 0; i < MaxProblems+50; i++ {
		fmt.Fprintf(&b, "    S%03d: {type: wrong}\n", i)
	}
	_, problems := Parse([]byte(b.String()))
	if len(problems) != MaxProblems+1 {
		t.Fatalf("got %d problems; want %d and one counting the rest", len(problems), MaxProblems+1)
	}
	last := problems[MaxProblems]
	if last.Pointer != "" || last.Unlisted != 51 || !strings.Contains(last.Message, "51 more") {
		t.Fatalf("got last problem %+v; want one at \"\" counting 51 more", last)
	}
	if problems[0].Pointer != "/components/schemas/S000/type" {
		t.Fatalf("got first problem at %q; want the list sorted by pointer", problems[0].Pointer)
	}
}

// TestLoaderNeverFetchesExternalReferences gives kin-openapi's loader, as
// Parse builds it, documents whose $refs name a real server and a real
// file: it must refuse both without reading either.
func TestLoaderNeverFetchesExternalReferences(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"type": "string"}`)
	}))
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "schema.json")
	if err := os.WriteFile(file, []byte(`{"type": "string"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{srv.URL + "/schema.json", "file://" + file, file} {
		doc := fmt.Sprintf(`{"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {},
			"components": {"schemas": {"A": {"$ref": %q}}}}`, ref)
		if _, err := newLoader().LoadFromData([]byte(doc)); err == nil {
			t.Errorf("kin-openapi's loader accepted a $ref to %s; want it refused", ref)
		}
		if _, problems := Parse([]byte(doc)); len(problems) != 1 || problems[0].Pointer != "/components/schemas/A/$ref" {
			t.Errorf("got problems %v for a $ref to %s; want one at its $ref", problems, ref)
		}
	}
	if n := requests.Load(); n != 0 {
		t.Fatalf("the server got %d requests; want none", n)
	}
}

// BenchmarkParse measures Parse on the largest shared document and on
// 16 MiB documents made of copies of its paths (with their own
// operationIds), as JSON and as YAML: the --spec-max-bytes default.
//
//	go test -run '^$' -bench BenchmarkParse -benchmem ./openapi/
func BenchmarkParse(b *testing.B) {
	data := testenv.SharedOpenAPI(b, "apisguru-apideck.com-vault-10.0.0-openapi.yaml")
	bigJSON, bigYAML := sixteenMiB(b, data)
	for _, bc := range []struct {
		name string
		data []byte
	}{
		{"apideck-170KB-yaml", data},
		{"16MiB-json", bigJSON},
		{"16MiB-yaml", bigYAML},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if _, problems := Parse(bc.data); problems != nil {
				b.Fatalf("got problems %v", problems[:min(len(problems), 5)])
			}
			b.SetBytes(int64(len(bc.data)))
			b.ReportAllocs()
			for b.Loop() {
				Parse(bc.data)
			}
		})
	}
}

// sixteenMiB copies the paths of a document under /v0, /v1, ... until
// it passes 16 MiB, as JSON and, with its own number of copies, as YAML.
func sixteenMiB(b *testing.B, data []byte) (jsonDoc, yamlDoc []byte) {
	t, problems := readTree(data)
	if problems != nil {
		b.Fatal(problems)
	}
	root := t.Root.(map[string]any)
	orig := root["paths"].(map[string]any)
	withCopies := func(n int) map[string]any {
		paths := map[string]any{}
		for c := range n {
			for p, item := range orig {
				paths[fmt.Sprintf("/v%d%s", c, p)] = renameOperations(item, c)
			}
		}
		doc := maps.Clone(root)
		doc["paths"] = paths
		return doc
	}
	// Each format's size is its size without paths plus that of one
	// copy of them, times the copies.
	size := func(encode func(any) ([]byte, error)) (base, per int) {
		zero, err := encode(withCopies(0))
		if err != nil {
			b.Fatal(err)
		}
		one, _ := encode(withCopies(1))
		return len(zero), len(one) - len(zero)
	}
	copies := func(base, per int) int { return (16<<20-base)/per + 1 }
	toYAML := func(v any) ([]byte, error) { return yaml.Marshal(yamlValues(v)) }
	jsonDoc, err := json.Marshal(withCopies(copies(size(json.Marshal))))
	if err != nil {
		b.Fatal(err)
	}
	yamlDoc, err = toYAML(withCopies(copies(size(toYAML))))
	if err != nil {
		b.Fatal(err)
	}
	return jsonDoc, yamlDoc
}

// renameOperations copies a path item, suffixing its operationIds.
func renameOperations(item any, n int) any {
	m := maps.Clone(item.(map[string]any))
	for _, method := range methodOrder {
		if op, ok := m[strings.ToLower(method)].(map[string]any); ok {
			op = maps.Clone(op)
			if id, ok := op["operationId"].(string); ok {
				op["operationId"] = fmt.Sprintf("%s%d", id, n)
			}
			m[strings.ToLower(method)] = op
		}
	}
	return m
}

// yamlValues turns json.Numbers into numbers, which the YAML encoder
// would otherwise write as strings.
func yamlValues(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = yamlValues(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = yamlValues(x)
		}
		return out
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		f, _ := v.Float64()
		return f
	}
	return v
}

// TestParseIsSafeForConcurrentUse parses from several goroutines at once,
// as concurrent admin writes do, the first ones racing to compile the
// embedded schemas (run with -race).
func TestParseIsSafeForConcurrentUse(t *testing.T) {
	docs := []string{
		minimal30 + "paths: {}\ncomponents: {schemas: {A: {type: wrong}, B: {$ref: '#/nope'}}}\n",
		minimal31 + "paths: {/a: {get: {parameters: [{name: x, in: body}]}}}\n",
		minimal31 + "paths: {}\n",
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			doc := docs[i%len(docs)]
			d, problems := Parse([]byte(doc))
			if (d == nil) == (problems == nil) {
				t.Errorf("got document %v and problems %v for %q; want exactly one", d != nil, problems, doc)
			}
		})
	}
	wg.Wait()
}
