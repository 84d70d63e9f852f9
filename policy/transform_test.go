package policy

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/proxy/route"
)

// compileTransforms is the transform policies cfgs, in order, as a route
// with paths would run them.
func compileTransforms(t *testing.T, paths []string, cfgs ...string) *Transform {
	t.Helper()
	var pols []*gatehouse.Policy
	for _, c := range cfgs {
		pols = append(pols, testPolicy(t, `{"type":"transform","config":`+c+`}`, gatehouse.NewID()))
	}
	rt := gatehouse.NewRoute()
	rt.ID, rt.Paths = "r", paths
	step, err := buildTransform(&Build{Route: rt}, pols)
	if err != nil {
		t.Fatal(err)
	}
	return step.(*Transform)
}

func TestTransformValuesAreNeverSentHalfOrWithControlCharacters(t *testing.T) {
	tr := compileTransforms(t, nil, `{"request":{"headers":{"set":{"X-Req":"req=$(request.id)","X-Tenant":"t-$(consumer.id)"},
		"add":{"X-Client":"$(client.address)","X-Both":"$(consumer.name)/$(route.id)"}}}}`)
	for _, tc := range []struct {
		desc      string
		requestID string
		consumer  *Consumer
		client    netip.Addr
		want      http.Header
	}{
		{desc: "every variable has a value", requestID: "abc", consumer: &Consumer{ID: "c1", Name: "alice"}, client: netip.MustParseAddr("::1"),
			want: http.Header{"X-Req": {"req=abc"}, "X-Tenant": {"t-c1"}, "X-Client": {"::1"}, "X-Both": {"alice/r"}, "X-Request-Id": {"abc"}}},
		{desc: "no consumer: its values are not sent, not even their literal part",
			requestID: "abc", want: http.Header{"X-Req": {"req=abc"}, "X-Request-Id": {"abc"}}},
		{desc: "a request id with CR LF would split the field: not sent", requestID: "a\r\nX-Consumer-Id: admin",
			consumer: &Consumer{ID: "c1", Name: "alice"},
			want:     http.Header{"X-Tenant": {"t-c1"}, "X-Both": {"alice/r"}, "X-Request-Id": {"a\r\nX-Consumer-Id: admin"}}},
		{desc: "a request id with NUL: not sent", requestID: "a\x00b", consumer: &Consumer{ID: "c1", Name: "alice"},
			want: http.Header{"X-Tenant": {"t-c1"}, "X-Both": {"alice/r"}, "X-Request-Id": {"a\x00b"}}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/x", nil)
			r.Header = http.Header{"X-Request-Id": {tc.requestID}, "X-Tenant": {"forged"}}
			pr := &Request{R: r, RouteID: "r", Consumer: tc.consumer, Client: tc.client}
			if err := tr.apply(pr); err != nil {
				t.Fatal(err)
			}
			if got, want := fmtHeader(r.Header), fmtHeader(tc.want); got != want {
				t.Errorf("header\n got %s\nwant %s", got, want)
			}
		})
	}
}

// fmtHeader writes h in a stable order, each value bracketed.
func fmtHeader(h http.Header) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(h)) {
		b.WriteString(k + "=")
		for _, v := range h[k] {
			b.WriteString("[" + v + "]")
		}
		b.WriteByte(' ')
	}
	return b.String()
}

func TestTransformPathTemplateSendsEachCaptureAsOneSegment(t *testing.T) {
	tr := compileTransforms(t, []string{"/users/{id}/{tab}"}, `{"request":{"path":"/v2/accounts/{id}/{tab}/x"}}`)
	for _, tc := range []struct {
		desc    string
		id, tab string
		want    string
	}{
		{"plain values", "42", "posts", "/v2/accounts/42/posts/x"},
		{"a slash stays inside its segment", "a/b", "c", "/v2/accounts/a%2Fb/c/x"},
		{"dot segments cannot climb out", "..", ".", "/v2/accounts/%2E%2E/%2E/x"},
		{"reserved characters are escaped", "a?b#c", "é d", "/v2/accounts/a%3Fb%23c/%C3%A9%20d/x"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			pr := &Request{R: httptest.NewRequest("GET", "/", nil), Params: []route.Param{{Name: "id", Value: tc.id}, {Name: "tab", Value: tc.tab}}}
			if err := tr.apply(pr); err != nil {
				t.Fatal(err)
			}
			if pr.Path != tc.want {
				t.Errorf("path %q, want %q", pr.Path, tc.want)
			}
		})
	}
}

func TestTransformPoliciesApplyInTheOrderListed(t *testing.T) {
	tr := compileTransforms(t, nil,
		`{"request":{"headers":{"rename":{"X-A":"X-B"}}},"response":{"headers":{"set":{"X-Seen":"first"}}}}`,
		`{"request":{"headers":{"rename":{"X-B":"X-C"}}},"response":{"headers":{"add":{"X-Seen":"second"}}}}`)
	r := httptest.NewRequest("GET", "/", nil)
	r.Header = http.Header{"X-A": {"1"}}
	pr := &Request{R: r}
	if err := tr.apply(pr); err != nil {
		t.Fatal(err)
	}
	if got := fmtHeader(r.Header); got != "X-C=[1] " {
		t.Errorf("request header %s; want X-A renamed to X-B, then to X-C", got)
	}
	resp := http.Header{"X-Seen": {"upstream"}}
	tr.Respond(resp, pr)
	if got := fmtHeader(resp); got != "X-Seen=[first][second] " {
		t.Errorf("response header %s", got)
	}
}

func TestTransformQueryAdditionsFollowTheQueryAsSent(t *testing.T) {
	tr := compileTransforms(t, nil, `{"request":{"query":{"add":{"v":"2","who":"$(consumer.name)"}}}}`)
	for _, tc := range []struct {
		desc, query string
		consumer    *Consumer
		want        string
	}{
		{"no query", "", &Consumer{Name: "a b&c"}, "v=2&who=a+b%26c"},
		{"the client's pairs first, untouched", "x=%2F&v=1", &Consumer{Name: "al"}, "x=%2F&v=1&v=2&who=al"},
		{"a variable without a value adds nothing", "x=1", nil, "x=1&v=2"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.URL.RawQuery = tc.query
			if err := tr.apply(&Request{R: r, Consumer: tc.consumer}); err != nil {
				t.Fatal(err)
			}
			if r.URL.RawQuery != tc.want {
				t.Errorf("query %q, want %q", r.URL.RawQuery, tc.want)
			}
		})
	}
}
