package openapi

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse/internal/jsondoc"
)

// FuzzRequestParameters sends any query, header, cookie and path segment
// through every style's decoder: a request is let on or refused with
// violations named after declared parameters, never a panic.
func FuzzRequestParameters(f *testing.F) {
	s := stylesSpec(f)
	for _, seed := range [][3]string{
		{"limit=5&tags=1&tags=2&ids=1,2", "5", "session=abcd"},
		{"filter[min]=1&filter%5Bname%5D=x&point=x,1,y,2", "a=1,b=2", ""},
		{"words=a%20b&pipes=true|false&sort=%zz", "", "session"},
		{"q=%7B%22a%22%3A1%7D", "x", ";;="},
		{"filter[a][b]=1&point=x&note=", "=", "session=;x"},
	} {
		f.Add(seed[0], seed[1], seed[2], "7")
	}
	f.Add("", "", "", ";x=1;y=2")
	f.Add("", "", "", ".1.2")
	f.Add("", "", "", "notes.tar.gz")
	paths := []string{"/v2/items", "/v2/items/%s", "/v2/label/%s", "/v2/matrix/%s", "/v2/files/%s", "/v2/json", "/v2/items/%s/parts/%s"}
	f.Fuzz(func(t *testing.T, query, header, cookie, segment string) {
		for _, p := range paths {
			r := &http.Request{Method: "GET", Header: http.Header{}, URL: &url.URL{
				Path: strings.ReplaceAll(p, "%s", segment), RawQuery: query}}
			r.URL.RawPath = r.URL.Path
			r.Header["X-Rate"] = []string{header}
			r.Header["X-Pair"] = []string{header}
			r.Header["X-Level"] = []string{header}
			r.Header["Cookie"] = []string{cookie}
			_, ref := s.CheckHead(r)
			if ref == nil {
				continue
			}
			for _, v := range ref.Violations {
				if !strings.HasPrefix(v.Field, "query.") && !strings.HasPrefix(v.Field, "header.") &&
					!strings.HasPrefix(v.Field, "cookie.") && !strings.HasPrefix(v.Field, "path.") {
					t.Fatalf("violation on %q: not a parameter", v.Field)
				}
				if v.Message == "" || !utf8.ValidString(v.Field) && utf8.ValidString(query+segment) {
					t.Fatalf("violation %+v", v)
				}
			}
			if ref.Kind == BadRequest && len(ref.Violations) == 0 {
				t.Fatalf("a 400 without violations: %+v", ref)
			}
		}
	})
}

// FuzzRequestBody validates any body against the styles document's
// JSON and form schemas: a body is valid, malformed (400, one violation
// on body) or failing the schema (422, violations at pointers under
// body), never a panic.
func FuzzRequestBody(f *testing.F) {
	s := stylesSpec(f)
	op, _ := s.Find("POST", "/v2/items")
	for _, seed := range []string{
		`{"name":"a","price":1}`, `{"name":"","price":0,"parts":[{"name":"p","parts":[{}]}]}`,
		`{"name":"a","name":"b"}`, `[1,2`, "\xff", `{"a~/b":1}`, `{"name":"a","price":1,"tag":null,"parts":[{"name":"b","price":2}]}`,
		`{"name":"a","price":0.5}`, `{"name":"a","price":-1}`, `{"name":"ab","price":1e400}`, "name=a&count=3&tags=1&tags=x", "%zz=1",
	} {
		f.Add(seed, true)
		f.Add(seed, false)
	}
	jsonBody, _ := op.body.content([]string{"application/json"})
	f.Fuzz(func(t *testing.T, body string, json bool) {
		ct := []string{"application/x-www-form-urlencoded"}
		if json {
			ct = []string{"application/json"}
			// The fast check may only say valid where the validator does.
			if doc, err := jsondoc.Decode([]byte(body)); err == nil && jsonBody.json.fast.check(doc) {
				if err := jsonBody.json.schema.Validate(doc); err != nil {
					t.Fatalf("the fast check accepts %s, the validator refuses: %v", body, err)
				}
			}
		}
		ref := op.CheckBody(ct, []byte(body))
		if ref == nil {
			return
		}
		if len(ref.Violations) == 0 {
			t.Fatalf("a refusal without violations: %+v", ref)
		}
		for _, v := range ref.Violations {
			if v.Field != "body" && !strings.HasPrefix(v.Field, "body/") {
				t.Fatalf("violation on %q: not in the body", v.Field)
			}
		}
		if ref.Kind != BadRequest && ref.Kind != Unprocessable {
			t.Fatalf("kind %d", ref.Kind)
		}
	})
}
