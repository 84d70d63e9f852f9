package openapi

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/strictjson"
	"github.com/gatehouse/gatehouse/internal/testenv"
)

func TestResponseHonoursExactCodesThenRangesThenDefault(t *testing.T) {
	s := stylesSpec(t)
	op, ref := s.Find("GET", "/v2/items")
	if ref != nil {
		t.Fatal(ref)
	}
	tests := []struct {
		status int
		key    string
	}{
		{200, "200"}, {404, "4XX"}, {499, "4XX"}, {500, "default"}, {201, "default"},
	}
	for _, tt := range tests {
		r, ok := op.Response(tt.status)
		if !ok || r.Key != tt.key {
			t.Errorf("Response(%d) = %+v, %v; want %s", tt.status, r, ok, tt.key)
		}
	}
	// Without default, what no code or range covers is undocumented.
	del, _ := s.Find("DELETE", "/v2/items/7")
	if r, ok := del.Response(200); ok {
		t.Errorf("DELETE's Response(200) = %+v; want none documented", r)
	}
	if r, ok := del.Response(204); !ok || len(r.MediaTypes) != 0 {
		t.Errorf("DELETE's Response(204) = %+v, %v; want documented, without a body", r, ok)
	}
}

func TestResponseDocumentsMediaTypesAndRequiredHeaders(t *testing.T) {
	s := stylesSpec(t)
	op, _ := s.Find("GET", "/v2/items")
	r, _ := op.Response(404)
	if !slices.Equal(r.RequiredHeaders, []string{"X-Trace"}) {
		t.Errorf("required headers %q; want X-Trace alone", r.RequiredHeaders)
	}
	if _, ok := r.Content("application/problem+json; charset=utf-8"); !ok {
		t.Error("application/problem+json with parameters is not documented")
	}
	if _, ok := r.Content("application/json"); ok {
		t.Error("application/json is documented for 4XX")
	}
	d, _ := op.Response(500)
	if c, ok := d.Content("text/plain"); !ok || c.HasSchema() || c.ValidateJSON([]byte("not json")) != nil {
		t.Errorf("text/* of default: %+v, %v; want documented, without a schema", c, ok)
	}
}

func TestResponseBodiesAreJudgedByTheirSchema(t *testing.T) {
	s := stylesSpec(t)
	op, _ := s.Find("GET", "/v2/items")
	r, _ := op.Response(400)
	c, _ := r.Content("application/problem+json")
	tests := []struct {
		body   string
		fields []string
	}{
		{`{"status":400}`, nil},
		{`{"status":"bad"}`, []string{"body/status"}},
		{`{}`, []string{"body"}},
		{`{"status":`, []string{"body"}},
	}
	for _, tt := range tests {
		var got []string
		for _, v := range c.ValidateJSON([]byte(tt.body)) {
			got = append(got, v.Field)
		}
		if !slices.Equal(got, tt.fields) {
			t.Errorf("ValidateJSON(%s) on %q; want %q", tt.body, got, tt.fields)
		}
	}
}

// apideck's error bodies have a detail that is anyOf a string or an
// object.
func TestAnyOfAcceptsEitherBranchAndRefusesNeither(t *testing.T) {
	s := mustCompile(t, testenv.SharedOpenAPI(t, "apisguru-apideck.com-vault-10.0.0-openapi.yaml"), "")
	op, ref := s.Find("GET", "/vault/logs")
	if ref != nil {
		t.Fatal(ref)
	}
	r, _ := op.Response(400)
	c, ok := r.Content("application/json")
	if !ok || !c.HasSchema() {
		t.Fatalf("400 of logsAll: %+v, %v; want a JSON schema", c, ok)
	}
	for body, valid := range map[string]bool{
		`{"detail":"Missing property foobar"}`:           true,
		`{"detail":{"missing":[{"foobar":"required"}]}}`: true,
		`{"detail":42}`: false,
	} {
		if vs := c.ValidateJSON([]byte(body)); (vs == nil) != valid {
			t.Errorf("ValidateJSON(%s) = %+v; want valid=%v", body, vs, valid)
		}
	}
}

// 3.1 writes null as a type of a type array; 3.0 as nullable.
func TestNullIsReadAsEachVersionWritesIt(t *testing.T) {
	for _, tt := range []struct{ version, schema string }{
		{"3.0.3", `{"type":"string","nullable":true}`},
		{"3.1.0", `{"type":["string","null"]}`},
	} {
		t.Run(tt.version, func(t *testing.T) {
			doc := `{"openapi":"` + tt.version + `","info":{"title":"t","version":"1"},"paths":{"/a":{"get":{
				"parameters":[{"name":"q","in":"query","schema":{"type":"integer"}}],
				"responses":{"200":{"description":"ok","content":{"application/json":{"schema":{"type":"object","properties":{"n":` + tt.schema + `}}}}}}}}}}`
			s := mustCompile(t, []byte(doc), "/")
			op, _ := s.Find("GET", "/a")
			r, _ := op.Response(200)
			c, _ := r.Content("application/json")
			for body, valid := range map[string]bool{`{"n":null}`: true, `{"n":"x"}`: true, `{"n":1}`: false} {
				if vs := c.ValidateJSON([]byte(body)); (vs == nil) != valid {
					t.Errorf("ValidateJSON(%s) = %+v; want valid=%v", body, vs, valid)
				}
			}
		})
	}
}

func TestAHostileBodyListsTheFirstViolationsAndCountsTheRest(t *testing.T) {
	doc := minimal30 + `paths:
  /r:
    post:
      requestBody: {content: {application/json: {schema: {$ref: '#/components/schemas/Strings'}}}}
      responses: {200: {description: ok, content: {application/json: {schema: {$ref: '#/components/schemas/Strings'}}}}}
components: {schemas: {Strings: {type: array, items: {type: string}}}}
`
	s := mustCompile(t, []byte(doc), "")
	op, _ := s.Find("POST", "/r")
	r, _ := op.Response(200)
	c, _ := r.Content("application/json")
	const n = 5000
	body := []byte("[" + strings.Repeat("1,", n-1) + "1]")
	ref := op.CheckBody([]string{"application/json"}, body)
	if ref == nil {
		t.Fatal("CheckBody passed a body of numbers")
	}
	for _, tt := range []struct {
		name string
		vs   []Violation
	}{{"CheckBody", ref.Violations}, {"ValidateJSON", c.ValidateJSON(body)}} {
		vs := tt.vs
		if len(vs) != strictjson.MaxErrors+1 || vs[0].Field != "body/0" || vs[strictjson.MaxErrors-1].Field != fmt.Sprintf("body/%d", strictjson.MaxErrors-1) {
			t.Fatalf("%s: %d violations, first %v; want the first %d in order and one more", tt.name, len(vs), vs[0], strictjson.MaxErrors)
		}
		if last := vs[len(vs)-1]; last.Unlisted != n-strictjson.MaxErrors || total(vs) != n {
			t.Fatalf("%s: last %+v; want it to count the %d unlisted", tt.name, last, n-strictjson.MaxErrors)
		}
	}
	if want := fmt.Sprintf("%d violations", n); !strings.Contains(ref.Detail, want) {
		t.Fatalf("detail %q; want it to count %s", ref.Detail, want)
	}
}

// OpenAPI: a required readOnly property is required in responses only,
// a required writeOnly one in requests only.
func TestReadOnlyIsRequiredInResponsesAndWriteOnlyInRequests(t *testing.T) {
	for version, prefix := range map[string]string{"3.0 ": minimal30, "3.1 ": minimal31} {
		doc := prefix + `paths:
  /items:
    post:
      requestBody: {content: {application/json: {schema: {$ref: '#/components/schemas/Item'}}}}
      responses: {201: {description: ok, content: {application/json: {schema: {$ref: '#/components/schemas/Item'}}}}}
components:
  schemas:
    Id: {type: integer, readOnly: true}
    Item:
      type: object
      required: [id, name, secret, created]
      properties:
        id: {$ref: '#/components/schemas/Id'}
        created: {type: string, readOnly: true}
        name: {type: string}
        secret: {type: string, writeOnly: true}
`
		s := mustCompile(t, []byte(doc), "")
		op, _ := s.Find("POST", "/items")
		r, _ := op.Response(201)
		c, _ := r.Content("application/json")
		tests := []struct {
			desc, body string
			response   bool
			bad        []string
		}{
			{"request without the readOnly ones", `{"name":"a","secret":"s"}`, false, nil},
			{"request without the writeOnly one", `{"name":"a"}`, false, []string{"body"}},
			{"response without the writeOnly one", `{"id":1,"created":"x","name":"a"}`, true, nil},
			{"response without a readOnly one", `{"created":"x","name":"a"}`, true, []string{"body"}},
		}
		for _, tt := range tests {
			t.Run(version+tt.desc, func(t *testing.T) {
				var vs []Violation
				if tt.response {
					vs = c.ValidateJSON([]byte(tt.body))
				} else if ref := op.CheckBody([]string{"application/json"}, []byte(tt.body)); ref != nil {
					vs = ref.Violations
				}
				var got []string
				for _, v := range vs {
					got = append(got, v.Field)
				}
				if !slices.Equal(got, tt.bad) {
					t.Fatalf("violations %+v; want on %q", vs, tt.bad)
				}
			})
		}
	}
}
