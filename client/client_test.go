package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// serve starts a real HTTP server that answers every request with h.
func serve(t *testing.T, h http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, "secret-token", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestProblemAnswersPrintAsReadableLines(t *testing.T) {
	tests := []struct {
		desc        string
		status      int
		contentType string
		header      map[string]string
		body        string
		want        string
	}{{
		desc:        "problem document with field errors and request id",
		status:      422,
		contentType: "application/problem+json",
		body: `{"type":"https://gatehouse.dev/problems/unprocessable","title":"Unprocessable Content","status":422,
			"detail":"The request is well-formed but cannot be applied.","request_id":"req-1",
			"errors":[{"field":"/routes/0/service_id","message":"services \"nope\" does not exist"},{"field":"","message":"and one more"}]}`,
		want: "error: 422 Unprocessable Content\n" +
			"  The request is well-formed but cannot be applied.\n" +
			"  - /routes/0/service_id: services \"nope\" does not exist\n" +
			"  - and one more\n" +
			"  request id: req-1\n",
	}, {
		desc:        "405 names the allowed methods",
		status:      405,
		contentType: "application/problem+json",
		header:      map[string]string{"Allow": "GET, HEAD", "X-Request-Id": "req-2"},
		body:        `{"type":"https://gatehouse.dev/problems/method-not-allowed","title":"Method Not Allowed","status":405,"detail":"This node is configured from files."}`,
		want: "error: 405 Method Not Allowed\n" +
			"  This node is configured from files.\n" +
			"  allowed methods: GET, HEAD\n" +
			"  request id: req-2\n",
	}, {
		desc:        "HTML from a proxy in front is not shown",
		status:      502,
		contentType: "text/html",
		body:        "<html><body><h1>502 Bad Gateway</h1></body></html>",
		want:        "error: 502 Bad Gateway\n",
	}, {
		desc:        "JSON that is no problem document is not shown raw",
		status:      500,
		contentType: "application/json",
		body:        `{"message":"boom","stack":"..."}`,
		want:        "error: 500 Internal Server Error\n",
	}, {
		desc:        "plain text lends its first line",
		status:      503,
		contentType: "text/plain; charset=utf-8",
		body:        "\n  upstream connect error  \nsecond line\n",
		want:        "error: 503 Service Unavailable\n  upstream connect error\n",
	}}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			c := serve(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.contentType)
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			})
			_, err := c.Do(context.Background(), Request{Method: "GET", Path: Prefix + "/config"})
			var p *Problem
			if !errors.As(err, &p) {
				t.Fatalf("error: got %v (%T); want a *Problem", err, err)
			}
			if p.Status != tc.status {
				t.Errorf("status: got %d; want %d", p.Status, tc.status)
			}
			var b strings.Builder
			p.Print(&b, nil)
			if b.String() != tc.want {
				t.Errorf("printed:\n%s\nwant:\n%s", b.String(), tc.want)
			}
			if strings.Contains(b.String(), "{") {
				t.Errorf("printed raw JSON:\n%s", b.String())
			}
		})
	}
}

func TestProblemFieldLinesCanBePlacedByTheCaller(t *testing.T) {
	p := &Problem{Status: 400, Title: "Bad Request", Detail: "The request body is invalid.",
		Errors: []FieldError{{Field: "/services/1/url", Message: "must be an absolute URL"}}}
	var b strings.Builder
	p.Print(&b, func(e FieldError) string { return "svc.yaml:7:10: " + e.Message + " (" + e.Field + ")" })
	want := "error: 400 Bad Request\n  The request body is invalid.\n  - svc.yaml:7:10: must be an absolute URL (/services/1/url)\n"
	if b.String() != want {
		t.Errorf("printed:\n%s\nwant:\n%s", b.String(), want)
	}
	if got, want := p.Error(), "400 Bad Request: The request body is invalid."; got != want {
		t.Errorf("Error(): got %q; want %q", got, want)
	}
}

func TestRequestsCarryTokenAcceptAndQuotedIfMatch(t *testing.T) {
	tests := []struct {
		desc        string
		req         Request
		wantIfMatch string
		wantAccept  string
		wantQuery   string
	}{
		{"bare draft tag is quoted", Request{Method: "PUT", Path: Prefix + "/config", IfMatch: "abc"}, `"abc"`, "application/json, application/problem+json", ""},
		{"quoted tag is sent as is", Request{Method: "PUT", Path: Prefix + "/config", IfMatch: `"abc"`}, `"abc"`, "application/json, application/problem+json", ""},
		{"no tag, no If-Match", Request{Method: "GET", Path: Prefix + "/config", Accept: YAML}, "", "application/yaml, application/problem+json", ""},
		{"select tags and dry run", Request{Method: "PUT", Path: Prefix + "/config", Query: selectQuery([]string{"team-a", "prod"}, true)},
			"", "application/json, application/problem+json", "dry_run=true&select_tags=team-a%2Cprod"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			var got *http.Request
			c := serve(t, func(w http.ResponseWriter, r *http.Request) {
				got = r
				w.Header().Set("ETag", `"next"`)
				w.WriteHeader(http.StatusOK)
			})
			resp, err := c.Do(context.Background(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if g := got.Header.Get("Authorization"); g != "Bearer secret-token" {
				t.Errorf("Authorization: got %q; want the bearer token", g)
			}
			if g := got.Header.Get("If-Match"); g != tc.wantIfMatch {
				t.Errorf("If-Match: got %q; want %q", g, tc.wantIfMatch)
			}
			if g := got.Header.Get("Accept"); g != tc.wantAccept {
				t.Errorf("Accept: got %q; want %q", g, tc.wantAccept)
			}
			if g := got.URL.RawQuery; g != tc.wantQuery {
				t.Errorf("query: got %q; want %q", g, tc.wantQuery)
			}
			if g := resp.ETag(); g != `"next"` {
				t.Errorf("ETag: got %q; want %q", g, `"next"`)
			}
		})
	}
}

func TestListingsAreReadToTheLastPage(t *testing.T) {
	pages := map[string]string{
		"":   `{"data":[{"id":"a","role":"all"},{"id":"b","role":"data"}],"next_cursor":"c2"}`,
		"c2": `{"data":[{"id":"c","role":"control"}]}`,
	}
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		body, ok := pages[r.URL.Query().Get("cursor")]
		if r.URL.Path != Prefix+"/nodes" || !ok || r.URL.Query().Get("limit") != "500" {
			http.Error(w, "unexpected "+r.URL.String(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	})
	nodes, err := c.Nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, n := range nodes {
		ids = append(ids, n.ID+"/"+n.Role)
	}
	if got, want := strings.Join(ids, " "), "a/all b/data c/control"; got != want {
		t.Errorf("nodes: got %s; want %s", got, want)
	}
}

func TestNewRefusesAnAdminURLItCannotUse(t *testing.T) {
	for _, u := range []string{"127.0.0.1:9080", "ftp://host", "http://", "http://h/?q=1", "http://user:pw@h"} {
		if _, err := New(u, "", 0); err == nil {
			t.Errorf("New(%q): got no error; want one", u)
		}
	}
	if _, err := New("https://gw.example:9443/base/", "", 0); err != nil {
		t.Errorf("New with a path prefix: got %v; want none", err)
	}
}

// A redirect is not followed, whatever its code: the token would go where
// the answer points (Go keeps Authorization when only the port changes).
func TestRedirectIsAnErrorAndTheTokenStaysHome(t *testing.T) {
	var reached atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(elsewhere.Close)
	for _, status := range []int{301, 302, 303, 307, 308} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			c := serve(t, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, elsewhere.URL+r.URL.Path, status)
			})
			_, err := c.Do(context.Background(), Request{Method: "PUT", Path: Prefix + "/config", Body: []byte("{}"), ContentType: JSON})
			if err == nil {
				t.Fatal("got no error; want the redirect refused")
			}
			for _, want := range []string{fmt.Sprintf("answered %d", status), "redirecting to " + elsewhere.URL + Prefix + "/config", "did not send the admin token there"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("got %q; want it to say %q", err, want)
				}
			}
			if n := reached.Load(); n != 0 {
				t.Fatalf("the redirect's target got %d requests; want none", n)
			}
		})
	}
}

func TestStatsAreReadForOneRouteOrAll(t *testing.T) {
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != Prefix+"/stats" {
			http.Error(w, "unexpected "+r.URL.String(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		route := r.URL.Query().Get("route_id")
		if route == "" {
			route = "all"
		}
		fmt.Fprintf(w, `{"total":{"requests":7},"routes":[{"route_id":%q,"requests":7,"codes":{"200":7}}]}`, route)
	})
	for _, tc := range []struct{ route, want string }{{"", "all"}, {"pets", "pets"}} {
		cs, err := c.Stats(context.Background(), tc.route)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs.Routes) != 1 || cs.Routes[0].RouteID != tc.want || cs.Routes[0].Codes["200"] != 7 || cs.Total.Requests != 7 {
			t.Errorf("Stats(%q): got %+v; want route %s's 7 requests", tc.route, cs, tc.want)
		}
	}
}
