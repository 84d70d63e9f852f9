package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/schemaerr"
)

func TestAcceptable(t *testing.T) {
	json1 := "application/json"
	tests := []struct {
		desc     string
		accept   []string // the field's values; nil: no Accept field
		produces []string
		want     bool
	}{
		{"no Accept field", nil, []string{json1}, true},
		{"empty Accept field", []string{""}, []string{json1}, true},
		{"Accept with nothing readable", []string{"garbage, ;;"}, []string{json1}, true},
		{"exact", []string{"application/json"}, []string{json1}, true},
		{"exact in another case", []string{"Application/JSON"}, []string{json1}, true},
		{"another type only", []string{"application/xml"}, []string{json1}, false},
		{"one of several produced", []string{"application/xml"}, []string{json1, "application/xml"}, true},
		{"type range", []string{"application/*"}, []string{json1}, true},
		{"any", []string{"*/*"}, []string{json1}, true},
		{"bare star as old clients send it", []string{"text/html, *; q=.2"}, []string{json1}, true},
		{"q=0 excludes", []string{"application/json;q=0"}, []string{json1}, false},
		{"q=0.0 excludes", []string{"application/json; q=0.000"}, []string{json1}, false},
		{"Q=0 in capitals excludes", []string{"application/json;Q=0"}, []string{json1}, false},
		{"low weight still admits", []string{"application/json;q=0.001"}, []string{json1}, true},
		{"exact q=0 beats wildcard", []string{"*/*, application/json;q=0"}, []string{json1}, false},
		{"type range q=0 beats any", []string{"application/*;q=0, */*"}, []string{json1}, false},
		{"exact beats type range q=0", []string{"application/*;q=0, application/json"}, []string{json1}, true},
		{"any q=0 alone", []string{"*/*;q=0"}, []string{json1}, false},
		{"equally specific: higher weight counts", []string{"application/json;q=0, application/json;version=2"}, []string{json1}, true},
		{"excluded one, admitted other", []string{"application/json;q=0, text/csv"}, []string{json1, "text/csv"}, true},
		{"several field lines", []string{"text/html", "application/json"}, []string{json1}, true},
		{"comma inside a quoted parameter", []string{`text/html;x="a,application/json", image/png`}, []string{json1}, false},
		{"malformed weight skipped", []string{"application/json;q=2, text/html"}, []string{json1}, false},
		{"malformed weight q=abc skipped", []string{"application/json;q=abc, text/html"}, []string{json1}, false},
		{"weight with four decimals skipped", []string{"application/json;q=0.0001, text/html"}, []string{json1}, false},
		{"extension after weight ignored", []string{"application/json;q=0;foo=1"}, []string{json1}, false},
		{"empty elements ignored", []string{" , application/json ,"}, []string{json1}, true},
		{"range without type skipped", []string{"*/json, text/html"}, []string{json1}, false},

		{"produced range admitted by a named subtype", []string{"image/png"}, []string{"image/*"}, true},
		{"produced range excluded subtype only", []string{"image/png;q=0"}, []string{"image/*"}, false},
		{"produced range admitted by type range", []string{"image/*"}, []string{"image/*"}, true},
		{"produced range: type range q=0 beats any", []string{"image/*;q=0, */*"}, []string{"image/*"}, false},
		{"produced range: any admits", []string{"*/*"}, []string{"image/*"}, true},
		{"produced range: another type", []string{"text/html"}, []string{"image/*"}, false},
		{"produced any: anything of weight", []string{"text/*;q=0, text/html;q=0.5"}, []string{"*/*"}, true},
		{"produced any: all excluded", []string{"text/*;q=0, */*;q=0"}, []string{"*/*"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			var produces []mediaRange
			for _, s := range tt.produces {
				m, ok := parseRange(s)
				if !ok {
					t.Fatalf("bad test: %q", s)
				}
				produces = append(produces, m)
			}
			if got := acceptable(tt.accept, produces); got != tt.want {
				t.Fatalf("acceptable(%q, %v) = %v; want %v", tt.accept, tt.produces, got, tt.want)
			}
		})
	}
}

func TestAcceptableDoesNotAllocate(t *testing.T) {
	accept := []string{`text/html, application/xhtml+xml;q=0.9, image/*;q=0.8, */*;q=0.1`}
	produces := []mediaRange{{Type: "application", Sub: "xml"}, {Type: "application", Sub: "json"}}
	if n := testing.AllocsPerRun(100, func() { acceptable(accept, produces) }); n != 0 {
		t.Fatalf("%v allocations per check; want 0", n)
	}
}

func TestContentType(t *testing.T) {
	tests := []struct {
		values   []string
		typ, sub string
		ok, json bool
	}{
		{[]string{"application/json"}, "application", "json", true, true},
		{[]string{"Application/JSON; charset=utf-8"}, "Application", "JSON", true, true},
		{[]string{"application/merge-patch+json"}, "application", "merge-patch+json", true, true},
		{[]string{"application/vnd.api+JSON;x"}, "application", "vnd.api+JSON", true, true},
		{[]string{" text/plain ;charset=x"}, "text", "plain", true, false},
		{[]string{"text/json"}, "text", "json", true, false},
		{[]string{"application/+json"}, "application", "+json", true, false},
		{nil, "", "", false, false},
		{[]string{"application/json", "text/plain"}, "", "", false, false},
		{[]string{""}, "", "", false, false},
		{[]string{"json"}, "", "", false, false},
		{[]string{"*/*"}, "", "", false, false},
		{[]string{"application/*"}, "", "", false, false},
		{[]string{"application/json/x"}, "", "", false, false},
		{[]string{"appli cation/json"}, "", "", false, false},
	}
	for _, tt := range tests {
		typ, sub, ok := contentType(tt.values)
		if typ != tt.typ || sub != tt.sub || ok != tt.ok {
			t.Errorf("contentType(%q) = %q, %q, %v; want %q, %q, %v", tt.values, typ, sub, ok, tt.typ, tt.sub, tt.ok)
		}
		if ok && isJSON(typ, sub) != tt.json {
			t.Errorf("isJSON(%q) = %v; want %v", tt.values, !tt.json, tt.json)
		}
	}
}

func TestMalformedJSONIsRefusedSayingWhere(t *testing.T) {
	tests := []struct{ body, want string }{
		{"{\"a\":1,\n \"b\": }", `is not valid JSON: invalid character '}' looking for beginning of value at line 2, column 7 (byte 15)`},
		{`{"a":1`, `ends before the JSON document does at line 1, column 7 (byte 7)`},
		{`[1,2] [3]`, `has data after the JSON document at line 1, column 7 (byte 7)`},
		{"{\"a\":\"\xff\"}", `is not valid UTF-8 at line 1, column 7 (byte 7)`},
		{`{"a":1, "a":2}`, `has the key "a" twice in one object at line 1, column 9 (byte 9)`},
		{`{"a":1, "\u0061":2}`, `has the key "a" twice in one object at line 1, column 9 (byte 9)`},
		{"  \n ", `is empty; a JSON document is required`},
		{strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1),
			fmt.Sprintf("nests deeper than %d levels at line 1, column %d (byte %d)", maxJSONDepth, maxJSONDepth+1, maxJSONDepth+1)},
	}
	for _, tt := range tests {
		_, err := decodeJSON([]byte(tt.body))
		var e *gatehouse.Error
		if !errors.As(err, &e) || e.Code != gatehouse.EINVALID {
			t.Errorf("decodeJSON(%q) = %v; want a 400", tt.body, err)
			continue
		}
		if len(e.Fields) != 1 || e.Fields[0] != (gatehouse.FieldError{Field: "body", Message: tt.want}) {
			t.Errorf("decodeJSON(%q) fields %+v; want body: %s", tt.body, e.Fields, tt.want)
		}
		if e.Message != "The request body "+tt.want+"." {
			t.Errorf("decodeJSON(%q) detail %q", tt.body, e.Message)
		}
	}
	nested := strings.Repeat("[", maxJSONDepth) + strings.Repeat("]", maxJSONDepth)
	if _, err := decodeJSON([]byte(nested)); err != nil {
		t.Errorf("nesting of exactly %d levels refused: %v", maxJSONDepth, err)
	}
}

func TestInstancePath(t *testing.T) {
	var doc any
	if err := json.Unmarshal([]byte(`{"items":[{"price":1,"tags":["a","b"]}],"a.b":{"2":{"":1}},"body":1,"x":{"body":2},"_k9":1,"9k":1,"ü":1,"q\"\n":1}`), &doc); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		loc  []string
		want string
	}{
		{nil, "body"},
		{[]string{"items"}, "items"},
		{[]string{"items", "0", "price"}, "items[0].price"},
		{[]string{"items", "0", "tags", "1"}, "items[0].tags[1]"},
		{[]string{"a.b", "2", ""}, `["a.b"]["2"][""]`},
		{[]string{"body"}, `["body"]`},
		{[]string{"x", "body"}, "x.body"},
		{[]string{"_k9"}, "_k9"},
		{[]string{"9k"}, `["9k"]`},
		{[]string{"ü"}, `["ü"]`},
		{[]string{"q\"\n"}, `["q\"\n"]`},
		{[]string{"missing", "0"}, `missing["0"]`}, // not in doc: names
	}
	for _, tt := range tests {
		if got := instancePath(doc, tt.loc); got != tt.want {
			t.Errorf("instancePath(%q) = %s; want %s", tt.loc, got, tt.want)
		}
	}
}

// contentFixture is a revision with one route "r" and the content and
// other policies given, compiled against state.
type contentFixture struct {
	t   *testing.T
	rev *gatehouse.Revision
}

func newContentFixture(t *testing.T, policies ...string) *contentFixture {
	t.Helper()
	rev := &gatehouse.Revision{Number: 1,
		Services: []*gatehouse.Service{{Meta: gatehouse.Meta{ID: "s"}, Name: "s", URL: "http://127.0.0.1:1"}}}
	for _, id := range []string{"r", "r2"} {
		rev.Routes = append(rev.Routes, &gatehouse.Route{Meta: gatehouse.Meta{ID: id}, Name: id,
			Paths: []string{"/" + id + "/*"}, ServiceID: "s"})
	}
	for i, js := range policies {
		p := testPolicy(t, js, fmt.Sprintf("p%d", i))
		rev.Policies = append(rev.Policies, p)
		for _, r := range rev.Routes {
			r.Policies = append(r.Policies, p.ID)
		}
	}
	return &contentFixture{t: t, rev: rev}
}

func (f *contentFixture) compile(state *State) *Set {
	f.t.Helper()
	set, err := Compile(f.rev, &Env{State: state})
	if err != nil {
		f.t.Fatal(err)
	}
	return set
}

// contentRequest is a request with a body whose reads are counted.
type contentRequest struct {
	*Request
	w     *httptest.ResponseRecorder
	reads *int
}

type countingReader struct {
	r     io.Reader
	reads *int
}

func (c countingReader) Read(p []byte) (int, error) { *c.reads++; return c.r.Read(p) }

func newContentRequest(t *testing.T, method, contentType, body string) *contentRequest {
	t.Helper()
	reads := new(int)
	req := httptest.NewRequest(method, "/r/x", nil)
	req.Body, req.ContentLength = io.NopCloser(countingReader{strings.NewReader(body), reads}), int64(len(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	w := httptest.NewRecorder()
	r := NewRequest()
	r.W, r.R, r.RouteID, r.MaxBodyBytes = w, req, "r", 1<<20
	t.Cleanup(r.Release)
	return &contentRequest{Request: r, w: w, reads: reads}
}

func wantCode(t *testing.T, err error, code gatehouse.Code) *gatehouse.Error {
	t.Helper()
	var e *gatehouse.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("got %v; want %s", err, code)
	}
	return e
}

const orderSchema = `{"type":"object","required":["name"],"properties":{"name":{"type":"string"}}}`

// The contract orders the checks: whatever the headers decide (content
// type, then limits) before the body is read. The limit here is a real
// concurrency limit of one in flight.
func TestSchemaCheckRunsAfterEveryCheckOfTheHeaders(t *testing.T) {
	f := newContentFixture(t,
		`{"name":"c","type":"content","config":{"accepts":["application/json"],"schema":`+orderSchema+`}}`,
		`{"name":"cap","type":"concurrency-limit","config":{"max":1}}`)
	set := f.compile(NewState())
	chain := set.Chain("r")
	if !slices.Equal(chain.Types, []string{"content", "concurrency-limit"}) {
		t.Fatalf("chain types %v", chain.Types)
	}

	holder := newContentRequest(t, "POST", "application/json", `{"name":"a"}`)
	if err := chain.Run(holder.Request); err != nil {
		t.Fatalf("first request refused: %v", err)
	}
	// The slot is taken: a bad body is refused by the limit unread, and a
	// body of the wrong type by the content type before the limit.
	bad := newContentRequest(t, "POST", "application/json", `{"name":1}`)
	wantCode(t, chain.Run(bad.Request), gatehouse.EUNAVAILABLE)
	if *bad.reads != 0 {
		t.Fatalf("the body was read %d times before the limit refused it", *bad.reads)
	}
	wrongType := newContentRequest(t, "POST", "text/plain", `x`)
	wantCode(t, chain.Run(wrongType.Request), gatehouse.EMEDIATYPE)

	holder.Finish(Outcome{Status: 200})
	// With the slot free the body is read and refused; the refusal gives
	// the slot back.
	bad = newContentRequest(t, "POST", "application/json", `{"name":1}`)
	wantCode(t, chain.Run(bad.Request), gatehouse.EUNPROCESSABLE)
	if *bad.reads == 0 {
		t.Fatal("the schema check did not read the body")
	}
	good := newContentRequest(t, "POST", "application/json", `{"name":"b"}`)
	if err := chain.Run(good.Request); err != nil {
		t.Fatalf("after a 422 the slot should be free: %v", err)
	}
	good.Finish(Outcome{Status: 200})
}

func TestContractIsCompiledOncePerPolicyVersion(t *testing.T) {
	f := newContentFixture(t, `{"name":"c","type":"content","config":{"schema":`+orderSchema+`}}`)
	contractOf := func(set *Set, route string) *contract {
		return set.Chain(route).steps[0].(*content).contracts[0]
	}
	state := NewState()
	first := f.compile(state)
	if contractOf(first, "r") != contractOf(first, "r2") {
		t.Fatal("two routes of one policy compiled it twice")
	}
	state.Sweep()
	if again := f.compile(state); contractOf(again, "r") != contractOf(first, "r") {
		t.Fatal("a redeploy of the unchanged policy compiled it again")
	}
	f.rev.Policies[0].Version = 2
	if changed := f.compile(state); contractOf(changed, "r") == contractOf(first, "r") {
		t.Fatal("a new version of the policy kept the old contract")
	}
	// Same id and version, another config (the policy was deleted and
	// made again): never the old contract.
	f.rev.Policies[0].Config = json.RawMessage(`{"accepts":[],"produces":["text/csv"]}`)
	recreated := f.compile(state)
	if c := contractOf(recreated, "r"); c.schema != nil || len(c.produces) != 1 {
		t.Fatal("a recreated policy with the same id and version ran the old contract")
	}
}

func TestSchemaViolationsAreSortedAndBounded(t *testing.T) {
	f := newContentFixture(t, `{"name":"c","type":"content","config":{"schema":{"type":"array","items":{"type":"integer"}}}}`)
	chain := f.compile(NewState()).Chain("r")
	items := make([]string, 150)
	for i := range items {
		items[i] = `"x"`
	}
	r := newContentRequest(t, "PUT", "application/json", "["+strings.Join(items, ",")+"]")
	e := wantCode(t, chain.Run(r.Request), gatehouse.EUNPROCESSABLE)
	if want := "The request body does not match this route's schema: 150 violations."; e.Message != want {
		t.Fatalf("detail %q; want %q", e.Message, want)
	}
	// What the problem lists: the first 100, then one entry counting the
	// rest, the rule of every problem.
	listed := gatehouse.ErrorFields(e)
	if len(listed) != gatehouse.MaxFieldErrors+1 {
		t.Fatalf("%d entries listed; want %d violations and one counting the rest", len(listed), gatehouse.MaxFieldErrors)
	}
	for i, f := range listed[:gatehouse.MaxFieldErrors] {
		if want := fmt.Sprintf("[%d]", i); f.Field != want || f.Message != "got string, want integer" {
			t.Fatalf("violation %d: %+v; want %s: got string, want integer", i, f, want)
		}
	}
	if last := listed[gatehouse.MaxFieldErrors]; last.Field != "body" || last.Message != "has 50 more errors, not listed: only the first 100 are" {
		t.Fatalf("last entry %+v; want body: has 50 more errors, not listed: only the first 100 are", last)
	}
}

func TestLongOffendingValuesAreClippedInMessages(t *testing.T) {
	f := newContentFixture(t, `{"name":"c","type":"content","config":{"schema":{"type":"string","pattern":"^a+$"}}}`)
	chain := f.compile(NewState()).Chain("r")
	r := newContentRequest(t, "POST", "application/json", `"`+strings.Repeat("é", 1000)+`"`)
	e := wantCode(t, chain.Run(r.Request), gatehouse.EUNPROCESSABLE)
	if m := e.Fields[0].Message; len(m) > schemaerr.MaxMessage+len("…") || !strings.HasSuffix(m, "…") || !strings.Contains(m, "éé") {
		t.Fatalf("message of %d bytes: %q", len(m), m)
	}
}

func TestCheckedBodyIsPutBackUnchangedAndReplayable(t *testing.T) {
	f := newContentFixture(t, `{"name":"c","type":"content","config":{"schema":`+orderSchema+`}}`)
	chain := f.compile(NewState()).Chain("r")
	body := "{ \"name\" : \"caf\\u00e9\" ,\n\"extra\":[1.50, 1e2] }"
	for _, tc := range []struct {
		desc    string
		chunked bool
		trailer bool
	}{{"declared length", false, false}, {"chunked", true, false}, {"chunked with trailers", true, true}} {
		t.Run(tc.desc, func(t *testing.T) {
			r := newContentRequest(t, "POST", "application/json", body)
			r.R.Header.Set("Expect", "100-continue")
			if tc.chunked {
				r.R.ContentLength, r.R.TransferEncoding = -1, []string{"chunked"}
			}
			if tc.trailer {
				r.R.Trailer = http.Header{"X-Sum": {"1"}}
			}
			if err := chain.Run(r.Request); err != nil {
				t.Fatal(err)
			}
			for range 2 { // the body, then what GetBody gives for a retry
				got, err := io.ReadAll(r.R.Body)
				if err != nil || string(got) != body {
					t.Fatalf("upstream body %q, %v; want %q", got, err, body)
				}
				if r.R.Body, err = r.R.GetBody(); err != nil {
					t.Fatal(err)
				}
			}
			switch {
			case tc.trailer && (r.R.ContentLength != -1 || len(r.R.TransferEncoding) != 1):
				t.Fatalf("with trailers: length %d, %v; want chunked still", r.R.ContentLength, r.R.TransferEncoding)
			case !tc.trailer && (r.R.ContentLength != int64(len(body)) || r.R.TransferEncoding != nil):
				t.Fatalf("length %d, %v; want %d and no Transfer-Encoding", r.R.ContentLength, r.R.TransferEncoding, len(body))
			}
			if r.R.Header.Get("Expect") != "" {
				t.Fatal("Expect passed on after the body was read")
			}
		})
	}
}

// timeoutError is what a read past the server's deadline returns.
type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

type failingReader struct {
	data string
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.data != "" {
		n := copy(p, f.data)
		f.data = f.data[n:]
		return n, nil
	}
	return 0, f.err
}

func TestBodyReadFailuresAreTheClients(t *testing.T) {
	tests := []struct {
		desc   string
		body   io.Reader
		length int64
		limit  int64
		want   gatehouse.Code
	}{
		{"stalled", &failingReader{`{"na`, timeoutError{}}, 100, 1000, gatehouse.ETIMEOUT},
		{"stalled deadline error", &failingReader{`{"na`, fmt.Errorf("read: %w", os.ErrDeadlineExceeded)}, 100, 1000, gatehouse.ETIMEOUT},
		{"broken off", &failingReader{`{"na`, io.ErrUnexpectedEOF}, 100, 1000, gatehouse.EINVALID},
		{"bad chunk framing", &failingReader{`{"na`, errors.New("invalid byte in chunk length")}, -1, 1000, gatehouse.EINVALID},
		{"chunked over the limit", strings.NewReader(`{"name":"` + strings.Repeat("x", 100) + `"}`), -1, 50, gatehouse.ETOOLARGE},
		{"no limit at all", strings.NewReader(`{}`), -1, 0, gatehouse.ETOOLARGE},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/r/x", nil)
			req.Body, req.ContentLength = io.NopCloser(tt.body), tt.length
			_, err := readBody(req, tt.limit)
			e := wantCode(t, err, tt.want)
			if tt.want == gatehouse.ETOOLARGE && e.Message != fmt.Sprintf("The body exceeds the limit of %d bytes.", tt.limit) {
				t.Fatalf("detail %q", e.Message)
			}
		})
	}
	// At the limit exactly is fine.
	req := httptest.NewRequest("POST", "/r/x", strings.NewReader("12345"))
	if b, err := readBody(req, 5); err != nil || string(b) != "12345" {
		t.Fatalf("body at the limit: %q, %v", b, err)
	}
}

func TestBodiesNotJSONAreNotCheckedAgainstTheSchema(t *testing.T) {
	f := newContentFixture(t, `{"name":"c","type":"content","config":{"schema":`+orderSchema+`}}`)
	chain := f.compile(NewState()).Chain("r")
	for _, ct := range []string{"text/plain", "application/xml", ""} {
		r := newContentRequest(t, "POST", ct, `not json`)
		if err := chain.Run(r.Request); err != nil || *r.reads != 0 {
			t.Errorf("Content-Type %q: %v after %d reads; want it let on unread", ct, err, *r.reads)
		}
	}
	r := newContentRequest(t, "POST", "application/problem+json; charset=utf-8", `{"name":2}`)
	wantCode(t, chain.Run(r.Request), gatehouse.EUNPROCESSABLE)
	r = newContentRequest(t, "POST", "application/json", "")
	if err := chain.Run(r.Request); err != nil {
		t.Errorf("a request without a body: %v; want it let on", err)
	}
}

func BenchmarkContentChecks(b *testing.B) {
	items := make([]string, 20)
	for i := range items {
		items[i] = fmt.Sprintf(`{"sku":"SKU-%d","price":%d.5}`, i, i)
	}
	body := `{"name":"order","items":[` + strings.Join(items, ",") + `]}`
	schema := `{"type":"object","required":["name","items"],"properties":{"name":{"type":"string"},"items":{"type":"array","items":{"type":"object","required":["sku"],"properties":{"sku":{"type":"string","pattern":"^SKU-[0-9]+$"},"price":{"type":"number","minimum":0}}}}}}`
	for _, bc := range []struct{ desc, config string }{
		{"headers", `{"accepts":["application/json"],"produces":["application/json"]}`},
		{"schema", `{"accepts":["application/json"],"produces":["application/json"],"schema":` + schema + `}`},
	} {
		b.Run(bc.desc, func(b *testing.B) {
			p := testPolicy(b, `{"name":"c","type":"content","config":`+bc.config+`}`, "c")
			rev := &gatehouse.Revision{Policies: []*gatehouse.Policy{p},
				Services: []*gatehouse.Service{{Meta: gatehouse.Meta{ID: "s"}, Name: "s", URL: "http://127.0.0.1:1"}},
				Routes: []*gatehouse.Route{{Meta: gatehouse.Meta{ID: "r"}, Name: "r", Paths: []string{"/*"}, ServiceID: "s",
					Policies: []string{"c"}}}}
			set, err := Compile(rev, &Env{State: NewState()})
			if err != nil {
				b.Fatal(err)
			}
			chain := set.Chain("r")
			req := httptest.NewRequest("POST", "/orders", nil)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, */*;q=0.1")
			w := httptest.NewRecorder()
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				req.Body, req.ContentLength = io.NopCloser(strings.NewReader(body)), int64(len(body))
				r := NewRequest()
				r.W, r.R, r.MaxBodyBytes = w, req, 1<<20
				if err := chain.Run(r); err != nil {
					b.Fatal(err)
				}
				r.Release()
			}
		})
	}
}
