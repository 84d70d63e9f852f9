package openapi

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// stylesSpec is testdata/styles.yaml compiled, under its server's /v2.
func stylesSpec(t testing.TB) *Spec { return mustCompile(t, testDoc(t, "styles.yaml"), "") }

// head builds a request as the data plane hands it over.
func head(method, target string, headers ...string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	return r
}

func fields(ref *Refusal) []string {
	if ref == nil {
		return nil
	}
	var out []string
	for _, v := range ref.Violations {
		out = append(out, v.Field)
	}
	return out
}

func TestParametersAreDecodedByStyleAndValidated(t *testing.T) {
	s := stylesSpec(t)
	const base = "/v2/items?"
	rate := []string{"X-Rate", "5"}
	tests := []struct {
		desc   string
		target string
		hdrs   []string
		bad    []string // the fields of the 400, nil: passes
	}{
		{"nothing but the required header", base, rate, nil},
		{"required header missing", base, nil, []string{"header.X-Rate"}},
		{"required header not an integer", base, []string{"X-Rate", "fast"}, []string{"header.X-Rate"}},
		{"a header parameter OpenAPI ignores", base, append([]string{"Accept", "*/*"}, rate...), nil},
		{"integer in range", base + "limit=100", rate, nil},
		{"integer over maximum", base + "limit=101", rate, []string{"query.limit"}},
		{"integer not a number", base + "limit=ten", rate, []string{"query.limit"}},
		{"integer with a fraction", base + "limit=1.5", rate, []string{"query.limit"}},
		{"int64 in range", base + "big=9223372036854775807", rate, nil},
		{"int64 overflow", base + "big=9223372036854775808", rate, []string{"query.big"}},
		{"enum", base + "sort=asc", rate, nil},
		{"not in enum", base + "sort=up", rate, []string{"query.sort"}},
		{"date-time", base + "since=2026-12-04T10:00:00Z", rate, nil},
		{"not a date-time", base + "since=yesterday", rate, []string{"query.since"}},
		{"date", base + "day=2026-12-04", rate, nil},
		{"not a date", base + "day=2026-13-04", rate, []string{"query.day"}},
		{"uuid", base + "owner=9b2c6f0e-4a4e-4c1e-9a53-6a1f7e3c2d10", rate, nil},
		{"not a uuid", base + "owner=nobody", rate, []string{"query.owner"}},
		{"pattern", base + "code=ABC", rate, nil},
		{"pattern broken", base + "code=abc", rate, []string{"query.code"}},
		{"form exploded array", base + "tags=1&tags=2", rate, nil},
		{"form exploded array, a bad item", base + "tags=1&tags=x", rate, []string{"query.tags/1"}},
		{"form array not exploded", base + "ids=1,2,3", rate, nil},
		{"form array not exploded, a bad item", base + "ids=1,x", rate, []string{"query.ids/1"}},
		{"spaceDelimited", base + "words=a%20b", rate, nil},
		{"spaceDelimited with +", base + "words=a+b+c", rate, []string{"query.words"}},
		{"pipeDelimited", base + "pipes=true|false", rate, nil},
		{"pipeDelimited, a bad item", base + "pipes=true%7Cmaybe", rate, []string{"query.pipes/1"}},
		{"deepObject", base + "filter[min]=1.5&filter[name]=x", rate, nil},
		{"deepObject, escaped brackets", base + "filter%5Bmin%5D=2", rate, nil},
		{"deepObject, a bad property", base + "filter[min]=low", rate, []string{"query.filter/min"}},
		{"deepObject, an unknown property", base + "filter[max]=1", rate, []string{"query.filter"}},
		{"form object not exploded", base + "point=x,1,y,2", rate, nil},
		{"form object not exploded, missing y", base + "point=x,1", rate, []string{"query.point"}},
		{"form object, odd pieces", base + "point=x,1,y", rate, []string{"query.point"}},
		{"nullable", base + "note=abc", rate, nil},
		{"nullable, too long", base + "note=abcdef", rate, []string{"query.note"}},
		{"header object exploded", base, append([]string{"X-Pair", "a=1"}, rate...), nil},
		{"header object, a bad property", base, append([]string{"X-Pair", "a=one"}, rate...), []string{"header.X-Pair/a"}},
		{"cookie", base, append([]string{"Cookie", "theme=dark; session=abcd"}, rate...), nil},
		{"cookie too short", base, append([]string{"Cookie", "session=ab"}, rate...), []string{"cookie.session"}},
		{"every bad parameter at once", base + "limit=0&sort=up&code=1", nil,
			[]string{"header.X-Rate", "query.limit", "query.sort", "query.code"}},
		{"bad percent-encoding", base + "sort=%zz", rate, []string{"query.sort"}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			_, ref := s.CheckHead(head("GET", tt.target, tt.hdrs...))
			got := fields(ref)
			slices.Sort(got)
			want := slices.Clone(tt.bad)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("bad fields %q; want %q (%+v)", got, want, ref)
			}
			if ref != nil && ref.Kind != BadRequest {
				t.Fatalf("kind %d; want BadRequest", ref.Kind)
			}
		})
	}
}

func TestPathTemplatesMatchLiteralFirstAndBindParameters(t *testing.T) {
	s := stylesSpec(t)
	tests := []struct {
		method, path string
		wantOp       string // "METHOD /template"; "" for a refusal
		kind         Kind
		bad          []string
	}{
		{"GET", "/v2/items/mine", "GET /items/mine", 0, nil},
		{"GET", "/v2/items/7", "GET /items/{id}", 0, nil},
		{"GET", "/v2/items/0", "", BadRequest, []string{"path.id"}},
		{"GET", "/v2/items/x", "", BadRequest, []string{"path.id"}},
		{"GET", "/v2/items/7/parts/abc", "GET /items/{id}/parts/{part}", 0, nil},
		{"GET", "/v2/items/7/parts/abcd", "", BadRequest, []string{"path.part"}},
		{"GET", "/v2/items/7/parts/a%25", "GET /items/{id}/parts/{part}", 0, nil},
		{"GET", "/v2/items/7/parts/a%2Fb", "GET /items/{id}/parts/{part}", 0, nil},
		{"GET", "/v2/items/7/parts/a/b", "", NotFound, nil},
		{"GET", "/v2/files/notes.txt", "GET /files/{name}.{ext}", 0, nil},
		{"GET", "/v2/files/backup.tar.gz", "GET /files/{name}.{ext}", 0, nil},
		{"GET", "/v2/files/notes.pdf", "", BadRequest, []string{"path.ext"}},
		{"GET", "/v2/files/notes", "", NotFound, nil},
		{"GET", "/v2/label/.1.2.3", "GET /label/{ids}", 0, nil},
		{"GET", "/v2/label/1", "", BadRequest, []string{"path.ids"}},
		{"GET", "/v2/matrix/;x=1;y=2", "GET /matrix/{point}", 0, nil},
		{"GET", "/v2/matrix/;x=a", "", BadRequest, []string{"path.point/x"}},
		{"GET", "/v2/items/", "", NotFound, nil},
		{"GET", "/v2/nowhere", "", NotFound, nil},
		{"GET", "/items", "", NotFound, nil},
		{"GET", "/v2items", "", NotFound, nil},
		{"PUT", "/v2/items/7", "", MethodNotAllowed, nil},
		{"HEAD", "/v2/items/mine", "GET /items/mine", 0, nil},
		{"OPTIONS", "/v2/items/mine", "", MethodNotAllowed, nil},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			op, ref := s.CheckHead(head(tt.method, tt.path, "X-Level", "a"))
			if tt.wantOp != "" {
				if ref != nil {
					t.Fatalf("refused: %+v", ref)
				}
				if got := op.Method + " " + op.Path; got != tt.wantOp && !(tt.method == "HEAD" && op.Path == strings.Fields(tt.wantOp)[1]) {
					t.Fatalf("operation %s; want %s", got, tt.wantOp)
				}
				return
			}
			if ref == nil || ref.Kind != tt.kind {
				t.Fatalf("refusal %+v; want kind %d", ref, tt.kind)
			}
			if !slices.Equal(fields(ref), tt.bad) {
				t.Fatalf("bad fields %q; want %q", fields(ref), tt.bad)
			}
		})
	}
}

func TestMethodNotDeclaredListsTheDeclaredOnesWithHeadForGet(t *testing.T) {
	s := stylesSpec(t)
	_, ref := s.CheckHead(head("PUT", "/v2/items/7"))
	if ref == nil || ref.Kind != MethodNotAllowed || ref.Allow != "GET, HEAD, PATCH, DELETE" {
		t.Fatalf("refusal %+v; want 405 with Allow GET, HEAD, PATCH, DELETE", ref)
	}
}

func TestOperationParametersOverrideThePathItems(t *testing.T) {
	s := stylesSpec(t)
	// The path item's X-Level is optional; the GET's is required.
	if _, ref := s.CheckHead(head("GET", "/v2/items/7")); !slices.Equal(fields(ref), []string{"header.X-Level"}) {
		t.Fatalf("GET without X-Level: %+v; want header.X-Level required", ref)
	}
	if _, ref := s.CheckHead(head("DELETE", "/v2/items/7")); ref != nil {
		t.Fatalf("DELETE without X-Level: %+v; the path item's is optional", ref)
	}
}

func TestBodyChecks(t *testing.T) {
	s := stylesSpec(t)
	tests := []struct {
		desc, method, path, ctype, body string
		kind                            Kind
		bad                             []string
		accepts                         string
	}{
		{"valid JSON", "POST", "/v2/items", "application/json", `{"name":"a","price":1}`, 0, nil, ""},
		{"valid JSON, charset", "POST", "/v2/items", "application/json; charset=utf-8", `{"name":"a","price":1,"tag":null}`, 0, nil, ""},
		{"required body missing", "POST", "/v2/items", "", "", BadRequest, []string{"body"}, ""},
		{"undeclared type", "POST", "/v2/items", "text/plain", "x", UnsupportedMediaType, nil, "application/json, application/x-www-form-urlencoded"},
		{"no Content-Type", "POST", "/v2/items", "", "x", UnsupportedMediaType, nil, "application/json, application/x-www-form-urlencoded"},
		{"PATCH undeclared type", "PATCH", "/v2/items/7", "application/json", "{}", UnsupportedMediaType, nil, "application/merge-patch+json"},
		{"malformed JSON", "POST", "/v2/items", "application/json", `{"name":`, BadRequest, []string{"body"}, ""},
		{"duplicate key", "POST", "/v2/items", "application/json", `{"name":"a","name":"b","price":1}`, BadRequest, []string{"body"}, ""},
		{"every schema violation", "POST", "/v2/items", "application/json", `{"name":"","price":0,"extra":1,"parts":[{"name":"p"}]}`,
			Unprocessable, []string{"body", "body/name", "body/parts/0", "body/price"}, ""},
		{"nullable is 3.0's null", "POST", "/v2/items", "application/json", `{"name":"a","price":1,"tag":3}`, Unprocessable, []string{"body/tag"}, ""},
		{"form", "POST", "/v2/items", "application/x-www-form-urlencoded", "name=a&count=3&tags=1&tags=2", 0, nil, ""},
		{"form, bad fields", "POST", "/v2/items", "application/x-www-form-urlencoded", "count=11&tags=x", Unprocessable,
			[]string{"body", "body/count", "body/tags/0"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			var r *http.Request
			if tt.body != "" {
				r = httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			} else {
				r = httptest.NewRequest(tt.method, tt.path, nil)
			}
			if tt.ctype != "" {
				r.Header.Set("Content-Type", tt.ctype)
			}
			op, ref := s.CheckHead(r)
			if ref == nil && op.ReadsBody(r) {
				ref = op.CheckBody(r.Header["Content-Type"], []byte(tt.body))
			}
			if tt.kind == 0 {
				if ref != nil {
					t.Fatalf("refused: %+v", ref)
				}
				return
			}
			if ref == nil || ref.Kind != tt.kind {
				t.Fatalf("refusal %+v; want kind %d", ref, tt.kind)
			}
			if !slices.Equal(fields(ref), tt.bad) {
				t.Fatalf("bad fields %q; want %q (%+v)", fields(ref), tt.bad, ref.Violations)
			}
			if got := strings.Join(ref.Accepts, ""); got != tt.accepts {
				t.Fatalf("accepts %q; want %q", got, tt.accepts)
			}
		})
	}
}

func TestAcceptExcludingEverySuccessTypeIsNotAcceptable(t *testing.T) {
	s := stylesSpec(t)
	for _, tt := range []struct {
		accept string
		ok     bool
	}{
		{"", true}, {"application/json", true}, {"*/*", true}, {"application/*", true},
		{"text/html", false}, {"application/json;q=0, text/html", false},
	} {
		t.Run(fmt.Sprintf("Accept %q", tt.accept), func(t *testing.T) {
			r := head("GET", "/v2/items", "X-Rate", "1")
			if tt.accept != "" {
				r.Header.Set("Accept", tt.accept)
			}
			_, ref := s.CheckHead(r)
			if tt.ok != (ref == nil) || ref != nil && ref.Kind != NotAcceptable {
				t.Fatalf("refusal %+v; want ok=%v", ref, tt.ok)
			}
		})
	}
}

func TestNullableArraysAndObjectsAndEmptyValuesAreReadAsTheirShape(t *testing.T) {
	const params = `
        - {name: q, in: query, required: true, allowEmptyValue: true, schema: {type: string, minLength: 2}}
        - {name: ids, in: query, explode: false, schema: %s}
        - {name: filter, in: query, style: deepObject, explode: true, schema: %s}
`
	docs := map[string]string{
		"3.0": minimal30 + "paths:\n  /r:\n    get:\n      responses: {200: {description: ok}}\n      parameters:" + fmt.Sprintf(params,
			"{type: array, nullable: true, items: {type: integer}}",
			"{type: object, nullable: true, properties: {min: {type: integer}}, additionalProperties: false}"),
		"3.1": minimal31 + "paths:\n  /r:\n    get:\n      responses: {200: {description: ok}}\n      parameters:" + fmt.Sprintf(params,
			`{type: [array, "null"], items: {type: integer}}`,
			`{type: [object, "null"], properties: {min: {type: integer}}, additionalProperties: false}`),
	}
	tests := []struct {
		desc, query string
		bad         []string
	}{
		{"required q sent empty, allowEmptyValue", "q=", nil},
		{"required q absent", "", []string{"query.q"}},
		{"q with a value is still judged", "q=x", []string{"query.q"}},
		{"nullable array, items", "q=ab&ids=1,2", nil},
		{"nullable array, a bad item", "q=ab&ids=1,x", []string{"query.ids/1"}},
		{"nullable deepObject", "q=ab&filter[min]=3", nil},
		{"nullable deepObject, a bad property", "q=ab&filter[min]=x", []string{"query.filter/min"}},
	}
	for version, doc := range docs {
		s := mustCompile(t, []byte(doc), "")
		for _, tt := range tests {
			t.Run(version+"/"+tt.desc, func(t *testing.T) {
				_, ref := s.CheckHead(head("GET", "/r?"+tt.query))
				if got := fields(ref); !slices.Equal(got, tt.bad) {
					t.Fatalf("bad fields %q; want %q (%+v)", got, tt.bad, ref)
				}
			})
		}
	}
}

func TestBasePathIsMatchedSegmentBySegmentLikeTheTemplates(t *testing.T) {
	doc := []byte(minimal30 + "paths: {/items: {get: {responses: {200: {description: ok}}}}}\n")
	tests := []struct {
		base, path string
		found      bool
	}{
		{"/api", "/api/items", true},
		{"/api", "/%61pi/items", true},
		{"/api", "/apix/items", false},
		{"/api", "/items", false},
		{"/tenants/{tenant}", "/tenants/acme/items", true},
		{"/tenants/{tenant}", "/tenants/a%2Fb/items", true},
		{"/tenants/{tenant}", "/tenants//items", false},
		{"/tenants/{tenant}", "/tenants/items", false},
		{"/t/{tenant}.eu", "/t/acme.eu/items", true},
		{"/t/{tenant}.eu", "/t/acme.us/items", false},
		{"/", "/items", true},
	}
	for _, tt := range tests {
		t.Run(tt.base+" "+tt.path, func(t *testing.T) {
			s := mustCompile(t, doc, tt.base)
			_, ref := s.Find("GET", tt.path)
			if found := ref == nil; found != tt.found || !found && ref.Kind != NotFound {
				t.Fatalf("Find: %+v; want found %v", ref, tt.found)
			}
		})
	}
}
