package problem_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/problem"
)

// wantStatus is the contract's table (../shared/CONTRACT.md), written out
// again so that a change to either side, or a Code added to gatehouse.Codes
// without a status, fails here.
var wantStatus = map[gatehouse.Code]int{
	gatehouse.EINVALID:         400,
	gatehouse.EUNAUTHORIZED:    401,
	gatehouse.EFORBIDDEN:       403,
	gatehouse.ENOTFOUND:        404,
	gatehouse.EMETHOD:          405,
	gatehouse.ENOTACCEPTABLE:   406,
	gatehouse.EPROXYAUTH:       407,
	gatehouse.ETIMEOUT:         408,
	gatehouse.ECONFLICT:        409,
	gatehouse.EGONE:            410,
	gatehouse.EPRECONDITION:    412,
	gatehouse.ETOOLARGE:        413,
	gatehouse.EMEDIATYPE:       415,
	gatehouse.EEXPECTATION:     417,
	gatehouse.EUNPROCESSABLE:   422,
	gatehouse.ETOOMANY:         429,
	gatehouse.EHEADERSTOOLARGE: 431,
	gatehouse.EINTERNAL:        500,
	gatehouse.ENOTIMPLEMENTED:  501,
	gatehouse.EBADGATEWAY:      502,
	gatehouse.EGATEWAYTIMEOUT:  504,
	gatehouse.EVERSION:         505,
	gatehouse.EUNAVAILABLE:     503,
}

func TestStatusCoversEveryCode(t *testing.T) {
	for _, code := range gatehouse.Codes {
		t.Run(string(code), func(t *testing.T) {
			want, ok := wantStatus[code]
			if !ok {
				t.Fatalf("code %q has no expected status in this test; add it (and to problem's table)", code)
			}
			got := problem.Status(code)
			if code != gatehouse.EINTERNAL && got == problem.Status("no-such-code") {
				t.Errorf("Status(%q) = %d, the fallback for unmapped codes", code, got)
			}
			if got != want {
				t.Errorf("Status(%q) = %d, want %d", code, got, want)
			}
			if http.StatusText(got) == "" || got < 400 || got > 599 {
				t.Errorf("Status(%q) = %d is not an error status", code, got)
			}
		})
	}
	if len(wantStatus) != len(gatehouse.Codes) {
		t.Errorf("expected table has %d codes, gatehouse.Codes %d", len(wantStatus), len(gatehouse.Codes))
	}
	if got := problem.Status("no-such-code"); got != http.StatusInternalServerError {
		t.Errorf("unmapped code gives %d, want 500", got)
	}
	// One status per code and one code per status: the type URI names a
	// single cause.
	byStatus := map[int]gatehouse.Code{}
	for _, code := range gatehouse.Codes {
		s := problem.Status(code)
		if other, dup := byStatus[s]; dup {
			t.Errorf("codes %q and %q both give %d", other, code, s)
		}
		byStatus[s] = code
	}
}

// doc is the JSON document as a client sees it, with unknown members kept.
type doc map[string]any

func serve(t *testing.T, method, accept string, pre http.Header, err error) (*httptest.ResponseRecorder, string) {
	t.Helper()
	r := httptest.NewRequest(method, "/admin/v1/services/x?y=1", nil)
	r.Header.Set("X-Request-Id", "req-123")
	if accept != "" {
		r.Header.Set("Accept", accept)
	}
	w := httptest.NewRecorder()
	for k, v := range pre {
		w.Header()[k] = v
	}
	var logs bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	defer slog.SetDefault(old)
	if accept == "" {
		problem.Write(w, r, err)
	} else {
		problem.WriteNegotiated(w, r, err)
	}
	return w, logs.String()
}

func decodeJSON(t *testing.T, w *httptest.ResponseRecorder) doc {
	t.Helper()
	var d doc
	if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	return d
}

func TestWriteEveryCode(t *testing.T) {
	for _, code := range gatehouse.Codes {
		t.Run(string(code), func(t *testing.T) {
			w, _ := serve(t, "GET", "", nil, gatehouse.Errorf(code, "Something about %s.", code))
			status := wantStatus[code]
			if w.Code != status {
				t.Fatalf("status %d, want %d", w.Code, status)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q", ct)
			}
			if cl := w.Header().Get("Content-Length"); cl != strconv.Itoa(w.Body.Len()) {
				t.Errorf("Content-Length %q for %d bytes", cl, w.Body.Len())
			}
			if w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("headers %v", w.Header())
			}
			d := decodeJSON(t, w)
			detail := fmt.Sprintf("Something about %s.", code)
			if code == gatehouse.EINTERNAL {
				detail = "An internal error occurred."
			}
			want := doc{
				"type":       problem.TypeBase + string(code),
				"title":      rfc9110Title(status),
				"status":     float64(status),
				"detail":     detail,
				"instance":   "/admin/v1/services/x",
				"request_id": "req-123",
			}
			if !reflect.DeepEqual(d, want) {
				t.Errorf("document\n got %v\nwant %v", d, want)
			}
		})
	}
}

func TestWriteHeaders(t *testing.T) {
	tests := []struct {
		desc   string
		err    error
		pre    http.Header
		want   map[string]string // "" means absent
		status int
	}{
		{
			desc:   "401 gets a default WWW-Authenticate",
			err:    gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "No token."),
			want:   map[string]string{"WWW-Authenticate": `Bearer realm="gatehouse"`},
			status: 401,
		},
		{
			desc:   "401 keeps the caller's WWW-Authenticate",
			err:    gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "No key."),
			pre:    http.Header{"Www-Authenticate": {`Basic realm="route"`}},
			want:   map[string]string{"WWW-Authenticate": `Basic realm="route"`},
			status: 401,
		},
		{
			desc:   "403 has no challenge",
			err:    gatehouse.Errorf(gatehouse.EFORBIDDEN, "Read-only."),
			want:   map[string]string{"WWW-Authenticate": "", "Retry-After": ""},
			status: 403,
		},
		{
			desc:   "503 gets Retry-After",
			err:    gatehouse.Unavailable(errors.New("dial tcp: refused")),
			want:   map[string]string{"Retry-After": strconv.Itoa(problem.RetryAfterSeconds)},
			status: 503,
		},
		{
			desc:   "503 keeps the caller's Retry-After",
			err:    gatehouse.Unavailable(errors.New("draining")),
			pre:    http.Header{"Retry-After": {"30"}},
			want:   map[string]string{"Retry-After": "30"},
			status: 503,
		},
		{
			desc:   "408 closes the connection",
			err:    gatehouse.Errorf(gatehouse.ETIMEOUT, "Too slow."),
			want:   map[string]string{"Connection": "close"},
			status: 408,
		},
		{
			desc:   "405 keeps the caller's Allow",
			err:    gatehouse.Errorf(gatehouse.EMETHOD, "No."),
			pre:    http.Header{"Allow": {"GET, HEAD"}},
			want:   map[string]string{"Allow": "GET, HEAD", "Connection": ""},
			status: 405,
		},
		{
			desc: "a success's validators and Location are dropped",
			err:  gatehouse.Errorf(gatehouse.EPRECONDITION, "Changed."),
			pre: http.Header{"Etag": {`"v1"`}, "Last-Modified": {"Mon, 01 Jan 2026 00:00:00 GMT"},
				"Location": {"/x"}, "Content-Type": {"application/json"}},
			want:   map[string]string{"ETag": "", "Last-Modified": "", "Location": "", "Content-Type": "application/problem+json"},
			status: 412,
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			w, _ := serve(t, "GET", "", tt.pre, tt.err)
			if w.Code != tt.status {
				t.Errorf("status %d, want %d", w.Code, tt.status)
			}
			for k, v := range tt.want {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
				if v != "" && len(w.Header().Values(k)) != 1 {
					t.Errorf("%s = %q, want exactly one", k, w.Header().Values(k))
				}
			}
		})
	}
}

func TestWriteHEADHasNoBody(t *testing.T) {
	for _, code := range []gatehouse.Code{gatehouse.ENOTFOUND, gatehouse.EUNAUTHORIZED, gatehouse.EUNAVAILABLE} {
		w, _ := serve(t, "HEAD", "", nil, gatehouse.Errorf(code, "x"))
		if w.Code != wantStatus[code] {
			t.Errorf("%s: status %d", code, w.Code)
		}
		if w.Body.Len() != 0 {
			t.Errorf("%s: HEAD response has a body %q", code, w.Body)
		}
		if w.Header().Get("Content-Type") != problem.JSON {
			t.Errorf("%s: HEAD Content-Type %q", code, w.Header().Get("Content-Type"))
		}
	}
}

func TestWriteInternalNeverLeaks(t *testing.T) {
	secret := "SELECT secret FROM tokens: database is locked at /var/lib/gatehouse.db"
	tests := []struct {
		desc string
		err  error
	}{
		{"Internal", gatehouse.Internal(errors.New(secret))},
		{"wrapped Internal", fmt.Errorf("store: %w", gatehouse.Internal(errors.New(secret)))},
		{"plain error", errors.New(secret)},
		{"EINTERNAL with a message", gatehouse.Errorf(gatehouse.EINTERNAL, "%s", secret)},
		{"panic value", fmt.Errorf("panic: %v\ngoroutine 1 [running]:\nmain.go:12", secret)},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			for _, accept := range []string{"", "application/xml"} {
				w, logs := serve(t, "GET", accept, nil, tt.err)
				if w.Code != 500 {
					t.Errorf("status %d", w.Code)
				}
				body := w.Body.String()
				for _, leak := range []string{"SELECT", "secret", "locked", "gatehouse.db", "goroutine", "panic"} {
					if strings.Contains(body, leak) {
						t.Errorf("body leaks %q: %s", leak, body)
					}
				}
				if !strings.Contains(body, "An internal error occurred.") || !strings.Contains(body, "req-123") {
					t.Errorf("body lacks the generic detail or the request id: %s", body)
				}
				// The detail belongs in the log, tied by request id.
				if !strings.Contains(logs, "req-123") || !strings.Contains(logs, "database is locked") {
					t.Errorf("log lacks the request id or cause: %q", logs)
				}
			}
		})
	}
	// Client errors are not logged as failures.
	if _, logs := serve(t, "GET", "", nil, gatehouse.Errorf(gatehouse.ENOTFOUND, "x")); logs != "" {
		t.Errorf("a 404 was logged: %q", logs)
	}
}

func TestWriteFieldErrors(t *testing.T) {
	fields := []gatehouse.FieldError{{Field: "targets[1].weight", Message: "must be between 0 and 1000"}, {Field: "name", Message: "is required"}}
	w, _ := serve(t, "POST", "", nil, gatehouse.Invalid(fields))
	if w.Code != 400 {
		t.Fatalf("status %d", w.Code)
	}
	var d problem.Document
	if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil {
		t.Fatal(err)
	}
	// Listed by field, so that responses are stable.
	want := []gatehouse.FieldError{{Field: "name", Message: "is required"}, {Field: "targets[1].weight", Message: "must be between 0 and 1000"}}
	if !reflect.DeepEqual(d.Errors, want) {
		t.Errorf("errors = %v, want %v", d.Errors, want)
	}
	if !strings.Contains(w.Body.String(), `"errors":[{"field":"name","message":"is required"},{"field":"targets[1].weight","message":"must be between 0 and 1000"}]`) {
		t.Errorf("errors not in the wire form: %s", w.Body)
	}
}

func TestWriteNegotiated(t *testing.T) {
	fields := []gatehouse.FieldError{{Field: "a<b", Message: `"quoted" & <tagged>`}}
	err := gatehouse.Unprocessable(fields)
	tests := []struct {
		accept string
		xml    bool
	}{
		{"application/xml", true},
		{"application/problem+xml", true},
		{"text/xml;q=0.9, application/json;q=0.5", true},
		{"application/json", false},
		{"application/problem+json, application/xml;q=0.9", false},
		{"*/*", false},
		{"text/html", false},
	}
	for _, tt := range tests {
		t.Run(tt.accept, func(t *testing.T) {
			w, _ := serve(t, "GET", tt.accept, nil, err)
			if w.Code != 422 {
				t.Fatalf("status %d", w.Code)
			}
			ct := w.Header().Get("Content-Type")
			if cl := w.Header().Get("Content-Length"); cl != strconv.Itoa(w.Body.Len()) {
				t.Errorf("Content-Length %q for %d bytes", cl, w.Body.Len())
			}
			if !tt.xml {
				if ct != problem.JSON {
					t.Fatalf("Content-Type %q, want JSON", ct)
				}
				d := decodeJSON(t, w)
				if d["status"] != float64(422) || d["request_id"] != "req-123" {
					t.Errorf("document %v", d)
				}
				return
			}
			if ct != problem.XML {
				t.Fatalf("Content-Type %q, want XML", ct)
			}
			body := w.Body.String()
			if !strings.HasPrefix(body, xml.Header) {
				t.Errorf("no XML declaration: %q", body)
			}
			var got problem.Document
			if err := xml.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("XML %s: %v", body, err)
			}
			want := problem.Document{
				XMLName:   xml.Name{Space: "urn:ietf:rfc:7807", Local: "problem"},
				Type:      problem.TypeBase + string(gatehouse.EUNPROCESSABLE),
				Title:     "Unprocessable Content",
				Status:    422,
				Detail:    gatehouse.ErrorMessage(err),
				Instance:  "/admin/v1/services/x",
				RequestID: "req-123",
				Errors:    fields,
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("XML document\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestDocumentMarshal(t *testing.T) {
	d := problem.New(gatehouse.Errorf(gatehouse.ECONFLICT, "Name <taken> & used."), "", "")
	j := d.Marshal(problem.JSON)
	if !bytes.HasSuffix(j, []byte("\n")) {
		t.Error("JSON lacks a final newline")
	}
	var m doc
	if err := json.Unmarshal(j, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["instance"]; ok {
		t.Errorf("empty instance present: %s", j)
	}
	if _, ok := m["errors"]; ok {
		t.Errorf("empty errors present: %s", j)
	}
	if m["detail"] != "Name <taken> & used." || m["status"] != float64(409) {
		t.Errorf("document %s", j)
	}
	var back problem.Document
	if err := xml.Unmarshal(d.Marshal(problem.XML), &back); err != nil {
		t.Fatal(err)
	}
	back.XMLName = xml.Name{}
	if !reflect.DeepEqual(&back, d) {
		t.Errorf("XML round trip: %+v, want %+v", back, *d)
	}
}

func TestRequestIDComesFromTheRequestHeader(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	if got := problem.RequestID(r); got != "" {
		t.Errorf("RequestID of a request without one = %q", got)
	}
	r.Header.Set("X-Request-Id", "abc")
	if got := problem.RequestID(r); got != "abc" {
		t.Errorf("RequestID = %q", got)
	}
}

func TestPrefersXML(t *testing.T) {
	tests := []struct {
		desc   string
		accept string
		want   bool
	}{
		{"empty", "", false},
		{"XML", "application/xml", true},
		{"text XML", "text/xml", true},
		{"problem XML", "application/problem+xml", true},
		{"other +xml type", "application/atom+xml", true},
		{"JSON", "application/json", false},
		{"problem JSON", "application/problem+json", false},
		{"tie goes to JSON", "application/xml, application/json", false},
		{"tie goes to JSON, XML listed first", "application/problem+xml, application/problem+json", false},
		{"JSON ranked lower", "application/json;q=0.5, application/xml", true},
		{"XML ranked lower", "application/xml;q=0.5, application/json", false},
		{"both ranked, XML higher", "application/xml;q=0.9, application/json;q=0.8", true},
		{"three-digit q-values", "application/json;q=0.899, application/xml;q=0.9", true},
		{"best XML counts", "application/xml;q=0.1, text/xml;q=0.9, application/json;q=0.5", true},
		{"XML refused", "application/xml;q=0", false},
		{"both refused", "application/xml;q=0, application/json;q=0", false},
		{"JSON refused, XML acceptable", "application/json;q=0, application/xml;q=0.1", true},
		{"any type", "*/*", false},
		{"XML then any type", "application/xml, */*", true},
		{"XML above a low any", "*/*;q=0.1, application/xml", true},
		{"browser", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", true},
		{"any type outranks XML", "application/xml;q=0.5, */*", false},
		{"application/* outranks XML", "application/xml;q=0.5, application/*", false},
		{"XML above application/*", "application/*;q=0.5, application/xml", true},
		{"text/* says nothing about JSON", "text/*", false},
		{"only HTML", "text/html", false},
		{"upper case", "APPLICATION/XML", true},
		{"upper-case Q", "application/xml;Q=0.5, application/json;q=0.4", true},
		{"parameters", "application/xml; charset=utf-8", true},
		{"spaces", "  application/xml ; q=1 ,  application/json ; q=0.2 ", true},
		{"malformed entries ignored", "garbage;;;, application/xml", true},
		{"only malformed", ";;;", false},
		{"invalid q ignored", "application/xml;q=abc, application/json;q=0.5", false},
		{"q above 1 ignored", "application/xml;q=2, application/json;q=0.5", false},
		{"negative q ignored", "application/json;q=-1, application/xml;q=0.1", true},
		{"NaN q ignored", "application/json;q=NaN, application/xml;q=0.5", true},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			if got := problem.PrefersXML(tt.accept); got != tt.want {
				t.Errorf("PrefersXML(%q) = %v, want %v", tt.accept, got, tt.want)
			}
		})
	}
}

// rfc9110Title is the reason phrase RFC 9110 gives, where it differs from
// Go's older names.
func rfc9110Title(status int) string {
	switch status {
	case http.StatusRequestEntityTooLarge:
		return "Content Too Large"
	case http.StatusUnprocessableEntity:
		return "Unprocessable Content"
	}
	return http.StatusText(status)
}
