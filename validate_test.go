package gatehouse_test

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/strictjson"
)

// constructors builds a fresh, defaulted value of each kind, as the admin API
// does before decoding a request body into it.
var constructors = map[gatehouse.Kind]func() gatehouse.Resource{
	gatehouse.KindService:    func() gatehouse.Resource { return gatehouse.NewService() },
	gatehouse.KindRoute:      func() gatehouse.Resource { return gatehouse.NewRoute() },
	gatehouse.KindConsumer:   func() gatehouse.Resource { return gatehouse.NewConsumer() },
	gatehouse.KindCredential: func() gatehouse.Resource { return gatehouse.NewCredential() },
	gatehouse.KindPolicy:     func() gatehouse.Resource { return gatehouse.NewPolicy() },
	gatehouse.KindToken:      func() gatehouse.Resource { return gatehouse.NewToken() },
	gatehouse.KindSpec:       func() gatehouse.Resource { return gatehouse.NewSpec() },
}

// checkCase is one request body and the fields Check must reject: invalid
// (400) and unprocessable (422), each in the order Check reports them.
// decode lists fields strictjson itself rejects (also 400); Check is not run
// then.
type checkCase struct {
	desc          string
	body          string
	decode        []string
	invalid       []string
	unprocessable []string
}

func names(errs []gatehouse.FieldError) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Field)
	}
	return out
}

func decodeResource(t *testing.T, kind gatehouse.Kind, body string) (gatehouse.Resource, []strictjson.FieldError) {
	t.Helper()
	res := constructors[kind]()
	errs := strictjson.Decode([]byte(body), res)
	return res, errs
}

func runChecks(t *testing.T, kind gatehouse.Kind, cases []checkCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			res, derrs := decodeResource(t, kind, tc.body)
			var dnames []string
			for _, e := range derrs {
				dnames = append(dnames, e.Field)
			}
			if !slices.Equal(dnames, tc.decode) {
				t.Fatalf("decode errors = %v, want fields %v", derrs, tc.decode)
			}
			if len(derrs) > 0 {
				return
			}
			bad, semantic := res.Check()
			if !slices.Equal(names(bad), tc.invalid) {
				t.Errorf("invalid (400) = %v, want fields %v", bad, tc.invalid)
			}
			if !slices.Equal(names(semantic), tc.unprocessable) {
				t.Errorf("unprocessable (422) = %v, want fields %v", semantic, tc.unprocessable)
			}
			for _, e := range append(bad, semantic...) {
				if e.Message == "" {
					t.Errorf("field %s has no message", e.Field)
				}
			}
		})
	}
}

func jsonList(n int, format string) string {
	items := make([]string, n)
	for i := range items {
		items[i] = fmt.Sprintf(format, i)
	}
	return "[" + strings.Join(items, ",") + "]"
}

func TestServiceCheck(t *testing.T) {
	withURL := func(u string) string { return fmt.Sprintf(`{"name":"svc","url":%q}`, u) }
	runChecks(t, gatehouse.KindService, []checkCase{
		{desc: "valid url", body: withURL("http://example.com:8080/base")},
		{desc: "valid https without port", body: withURL("https://api.example.com")},
		{desc: "valid IPv4 host", body: withURL("http://10.0.0.1:80")},
		{desc: "valid IPv6 host", body: withURL("http://[::1]:8080/")},
		{desc: "port 1 and 65535", body: `{"name":"s","targets":[{"url":"http://a:1"},{"url":"http://a:65535"}]}`},
		{desc: "valid targets", body: `{"name":"svc","targets":[{"url":"http://a:1"},{"url":"https://b","weight":0}]}`},
		{desc: "valid id and name", body: `{"id":"svc-1_A","name":"a.b_c~d-e","url":"http://a"}`},
		{desc: "timeouts and retries at their limits", body: `{"name":"s","url":"http://a","connect_timeout_ms":600000,"read_timeout_ms":3600000,"retries":10}`},
		{desc: "timeouts and retries at their lower limits", body: `{"name":"s","url":"http://a","connect_timeout_ms":1,"read_timeout_ms":1,"retries":0}`},
		{desc: "target weights at their limits", body: `{"name":"s","targets":[{"url":"http://a","weight":0},{"url":"http://b","weight":1000}]}`},

		{desc: "missing name", body: `{"url":"http://a"}`, invalid: []string{"name"}},
		{desc: "bad name", body: `{"name":"a b","url":"http://a"}`, invalid: []string{"name"}},
		{desc: "name starting with a dot", body: `{"name":".a","url":"http://a"}`, invalid: []string{"name"}},
		{desc: "name too long", body: fmt.Sprintf(`{"name":%q,"url":"http://a"}`, strings.Repeat("n", 129)), invalid: []string{"name"}},
		{desc: "bad id", body: `{"id":"a/b","name":"s","url":"http://a"}`, invalid: []string{"id"}},
		{desc: "missing url and targets", body: `{"name":"svc"}`, invalid: []string{"url"}},
		{desc: "empty targets and no url", body: `{"name":"svc","targets":[]}`, invalid: []string{"url"}},
		{desc: "both url and targets", body: `{"name":"svc","url":"http://a","targets":[{"url":"http://b"}]}`, invalid: []string{"targets"}},

		{desc: "scheme ftp", body: withURL("ftp://example.com"), unprocessable: []string{"url"}},
		{desc: "no scheme", body: withURL("example.com"), unprocessable: []string{"url"}},
		{desc: "not a URL at all", body: withURL("http://a b"), unprocessable: []string{"url"}},
		{desc: "port 0", body: withURL("http://example.com:0"), unprocessable: []string{"url"}},
		{desc: "port 70000", body: withURL("http://example.com:70000"), unprocessable: []string{"url"}},
		{desc: "port not a number", body: withURL("http://example.com:http"), unprocessable: []string{"url"}},
		{desc: "empty port", body: withURL("http://example.com:"), unprocessable: []string{"url"}},
		{desc: "userinfo", body: withURL("http://user:pass@example.com"), unprocessable: []string{"url"}},
		{desc: "user only", body: withURL("http://user@example.com"), unprocessable: []string{"url"}},
		{desc: "query", body: withURL("http://example.com/?a=1"), unprocessable: []string{"url"}},
		{desc: "empty query", body: withURL("http://example.com/?"), unprocessable: []string{"url"}},
		{desc: "fragment", body: withURL("http://example.com/#top"), unprocessable: []string{"url"}},
		{desc: "opaque", body: withURL("http:example.com"), unprocessable: []string{"url"}},
		{desc: "no host", body: withURL("http:///path"), unprocessable: []string{"url"}},
		{desc: "port without host", body: withURL("http://:80"), unprocessable: []string{"url"}},
		{desc: "bad hostname", body: withURL("http://-bad.example.com"), unprocessable: []string{"url"}},
		{desc: "underscore hostname", body: withURL("http://a_b.example.com"), unprocessable: []string{"url"}},
		{desc: "empty label", body: withURL("http://a..b"), unprocessable: []string{"url"}},

		{desc: "connect timeout 0", body: `{"name":"s","url":"http://a","connect_timeout_ms":0}`, invalid: []string{"connect_timeout_ms"}},
		{desc: "connect timeout too long", body: `{"name":"s","url":"http://a","connect_timeout_ms":600001}`, invalid: []string{"connect_timeout_ms"}},
		{desc: "read timeout negative", body: `{"name":"s","url":"http://a","read_timeout_ms":-1}`, invalid: []string{"read_timeout_ms"}},
		{desc: "read timeout too long", body: `{"name":"s","url":"http://a","read_timeout_ms":3600001}`, invalid: []string{"read_timeout_ms"}},
		{desc: "retries negative", body: `{"name":"s","url":"http://a","retries":-1}`, invalid: []string{"retries"}},
		{desc: "retries too many", body: `{"name":"s","url":"http://a","retries":11}`, invalid: []string{"retries"}},
		{desc: "protocol http2", body: `{"name":"s","url":"https://a","protocol":"http2"}`},
		{desc: "protocol unknown", body: `{"name":"s","url":"http://a","protocol":"grpc"}`, invalid: []string{"protocol"}},
		{desc: "timeouts wrong type", body: `{"name":"s","url":"http://a","retries":"1","read_timeout_ms":1.5}`, decode: []string{"read_timeout_ms", "retries"}},

		{desc: "http health check", body: `{"name":"s","url":"http://a","health_check":{"path":"/health"}}`},
		{desc: "http health check, type given", body: `{"name":"s","url":"http://a","health_check":{"type":"http","path":"/health"}}`},
		{desc: "grpc health check of the whole server", body: `{"name":"s","url":"http://a","protocol":"http2","health_check":{"type":"grpc"}}`},
		{desc: "grpc health check of one service", body: `{"name":"s","url":"http://a","protocol":"http2","health_check":{"type":"grpc","grpc_service":"grpc.testing.TestService"}}`},
		{desc: "grpc health check without http2", body: `{"name":"s","url":"http://a","health_check":{"type":"grpc"}}`, unprocessable: []string{"health_check.type"}},
		{desc: "grpc health check with a path", body: `{"name":"s","url":"http://a","protocol":"http2","health_check":{"type":"grpc","path":"/health"}}`, invalid: []string{"health_check.path"}},
		{desc: "http health check without a path", body: `{"name":"s","url":"http://a","health_check":{}}`, invalid: []string{"health_check.path"}},
		{desc: "grpc_service on an http check", body: `{"name":"s","url":"http://a","health_check":{"path":"/","grpc_service":"a.B"}}`, invalid: []string{"health_check.grpc_service"}},
		{desc: "grpc_service with a space", body: `{"name":"s","url":"http://a","protocol":"http2","health_check":{"type":"grpc","grpc_service":"a B"}}`, invalid: []string{"health_check.grpc_service"}},
		{desc: "grpc_service too long", body: fmt.Sprintf(`{"name":"s","url":"http://a","protocol":"http2","health_check":{"type":"grpc","grpc_service":%q}}`, strings.Repeat("s", gatehouse.MaxGRPCServiceLen+1)), invalid: []string{"health_check.grpc_service"}},
		{desc: "health check type unknown", body: `{"name":"s","url":"http://a","health_check":{"type":"tcp","path":"/"}}`, invalid: []string{"health_check.type"}},

		{desc: "target weight too high", body: `{"name":"s","targets":[{"url":"http://a","weight":1001}]}`, invalid: []string{"targets[0].weight"}},
		{desc: "target weight negative", body: `{"name":"s","targets":[{"url":"http://a"},{"url":"http://b","weight":-1}]}`, invalid: []string{"targets[1].weight"}},
		{desc: "target url missing", body: `{"name":"s","targets":[{"url":"http://a"},{"weight":5}]}`, invalid: []string{"targets[1].url"}},
		{desc: "target url ftp", body: `{"name":"s","targets":[{"url":"ftp://a"}]}`, unprocessable: []string{"targets[0].url"}},
		{desc: "target repeated", body: `{"name":"s","targets":[{"url":"http://a"},{"url":"http://b"},{"url":"http://a"}]}`, unprocessable: []string{"targets[2].url"}},
		{desc: "no live target", body: `{"name":"s","targets":[{"url":"http://a","weight":0},{"url":"http://b","weight":0}]}`, unprocessable: []string{"targets"}},
		{desc: "too many targets", body: `{"name":"s","targets":` + jsonList(gatehouse.MaxTargets+1, `{"url":"http://h%d"}`) + `}`, invalid: []string{"targets"}},
		{desc: "MaxTargets targets", body: `{"name":"s","targets":` + jsonList(gatehouse.MaxTargets, `{"url":"http://h%d"}`) + `}`},
		{desc: "target unknown field", body: `{"name":"s","targets":[{"url":"http://a","wieght":1}]}`, decode: []string{"targets[0].wieght"}},
		{desc: "null target", body: `{"name":"s","targets":[null]}`, decode: []string{"targets[0]"}},
		{desc: "every problem at once", body: `{"name":"","targets":[{"url":"ftp://a","weight":2000},{"url":""}],"retries":99}`,
			invalid: []string{"name", "targets[0].weight", "targets[1].url", "retries"}, unprocessable: []string{"targets[0].url"}},
	})
}

func TestServiceDefaults(t *testing.T) {
	res, errs := decodeResource(t, gatehouse.KindService, `{"name":"s","targets":[{"url":"http://a"},{"url":"http://b","weight":0}]}`)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	s := res.(*gatehouse.Service)
	if s.ConnectTimeoutMS != 5000 || s.ReadTimeoutMS != 60000 || s.Retries != 1 {
		t.Errorf("defaults lost: %+v", s)
	}
	if s.Targets[0].Weight != gatehouse.DefaultWeight || s.Targets[1].Weight != 0 {
		t.Errorf("target weights = %d, %d; want default %d and explicit 0", s.Targets[0].Weight, s.Targets[1].Weight, gatehouse.DefaultWeight)
	}
	if ix := s.Index(); ix.Name != "s" || !slices.Equal(ix.Unique, []string{"name:s"}) {
		t.Errorf("Index = %+v", ix)
	}
}

func TestRouteCheck(t *testing.T) {
	withPaths := func(paths ...string) string {
		b, _ := json.Marshal(paths)
		return fmt.Sprintf(`{"service_id":"svc","paths":%s}`, b)
	}
	withHosts := func(hosts ...string) string {
		b, _ := json.Marshal(hosts)
		return fmt.Sprintf(`{"service_id":"svc","hosts":%s}`, b)
	}
	withMethods := func(methods ...string) string {
		b, _ := json.Marshal(methods)
		return fmt.Sprintf(`{"service_id":"svc","paths":["/"],"methods":%s}`, b)
	}
	hosts := func(n int) string { return jsonList(n, `"h%d.example.com"`) }
	paths := func(n int) string { return jsonList(n, `"/p%d"`) }
	runChecks(t, gatehouse.KindRoute, []checkCase{
		{desc: "valid full route", body: `{"name":"r1","service_id":"svc","hosts":["*.example.com","Example.com"],
			"paths":["/","/a","/users/{id}","/api/*","/files/{dir}/{_name2}","/*"],"methods":["get","POST"],"strip_path":true,"priority":-5}`},
		{desc: "hosts only", body: withHosts("example.com")},
		{desc: "paths only", body: withPaths("/a")},
		{desc: "wildcard host", body: withHosts("*.example.com")},
		{desc: "IP host", body: withHosts("10.0.0.1")},
		{desc: "priority at its limits", body: `{"service_id":"s","paths":["/a"],"priority":1000000}`},
		{desc: "negative priority at its limit", body: `{"service_id":"s","paths":["/a"],"priority":-1000000}`},
		{desc: "every method gatehouse serves", body: withMethods("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")},
		{desc: "CONNECT never matches: the data plane answers 501", body: withMethods("GET", "CONNECT"), unprocessable: []string{"methods[1]"}},
		{desc: "extension methods never match: the data plane answers 501 first", body: withMethods("PURGE", "M-SEARCH"), unprocessable: []string{"methods[0]", "methods[1]"}},

		{desc: "missing service_id", body: `{"paths":["/a"]}`, invalid: []string{"service_id"}},
		{desc: "bad service_id", body: `{"service_id":"../x","paths":["/a"]}`, invalid: []string{"service_id"}},
		{desc: "bad id", body: `{"id":"a.b","service_id":"s","paths":["/a"]}`, invalid: []string{"id"}},
		{desc: "bad name", body: `{"name":"no spaces","service_id":"s","paths":["/a"]}`, invalid: []string{"name"}},
		{desc: "neither hosts nor paths", body: `{"service_id":"svc"}`, invalid: []string{"paths"}},
		{desc: "empty hosts and paths", body: `{"service_id":"svc","hosts":[],"paths":[]}`, invalid: []string{"paths"}},
		{desc: "methods only is not enough", body: `{"service_id":"svc","methods":["GET"]}`, invalid: []string{"paths"}},

		{desc: "unclosed parameter", body: withPaths("/a/{id"), unprocessable: []string{"paths[0]"}},
		{desc: "star in the middle", body: withPaths("/b/*/c"), unprocessable: []string{"paths[0]"}},
		{desc: "no leading slash", body: withPaths("a"), unprocessable: []string{"paths[0]"}},
		{desc: "parameter starting with a digit", body: withPaths("/x/{1bad}"), unprocessable: []string{"paths[0]"}},
		{desc: "parameter twice", body: withPaths("/x/{id}/{id}"), unprocessable: []string{"paths[0]"}},
		{desc: "empty parameter", body: withPaths("/x/{}"), unprocessable: []string{"paths[0]"}},
		{desc: "parameter not a whole segment", body: withPaths("/x/a{id}"), unprocessable: []string{"paths[0]"}},
		{desc: "parameter followed by star", body: withPaths("/x/{id}*"), unprocessable: []string{"paths[0]"}},
		{desc: "nested braces", body: withPaths("/x/{{id}}"), unprocessable: []string{"paths[0]"}},
		{desc: "stray closing brace", body: withPaths("/x/id}"), unprocessable: []string{"paths[0]"}},
		{desc: "space", body: withPaths("/a b"), unprocessable: []string{"paths[0]"}},
		{desc: "query", body: withPaths("/a?b"), unprocessable: []string{"paths[0]"}},
		{desc: "fragment", body: withPaths("/a#b"), unprocessable: []string{"paths[0]"}},
		{desc: "percent", body: withPaths("/a%20b"), unprocessable: []string{"paths[0]"}},
		{desc: "control character", body: withPaths("/a\x7f"), unprocessable: []string{"paths[0]"}},
		{desc: "path too long", body: withPaths("/" + strings.Repeat("a", 1024)), unprocessable: []string{"paths[0]"}},
		{desc: "path of 1024 bytes", body: withPaths("/" + strings.Repeat("a", 1023))},
		{desc: "second path bad", body: withPaths("/ok", "/bad/{"), unprocessable: []string{"paths[1]"}},
		{desc: "empty path", body: withPaths(""), invalid: []string{"paths[0]"}},
		{desc: "same path", body: withPaths("/a", "/a"), invalid: []string{"paths[1]"}},
		{desc: "same path under parameter renaming", body: withPaths("/u/{id}", "/u/{uid}"), invalid: []string{"paths[1]"}},
		{desc: "paths differing in case are distinct", body: withPaths("/a", "/A")},

		{desc: "wildcard in the middle of a host", body: withHosts("a.*.com"), unprocessable: []string{"hosts[0]"}},
		{desc: "double wildcard host", body: withHosts("*.*.com"), unprocessable: []string{"hosts[0]"}},
		{desc: "bare star host", body: withHosts("*"), unprocessable: []string{"hosts[0]"}},
		{desc: "trailing wildcard host", body: withHosts("example.*"), unprocessable: []string{"hosts[0]"}},
		{desc: "host with port", body: withHosts("example.com:8080"), unprocessable: []string{"hosts[0]"}},
		{desc: "host with space", body: withHosts("exa mple.com"), unprocessable: []string{"hosts[0]"}},
		{desc: "empty host", body: withHosts(""), invalid: []string{"hosts[0]"}},
		{desc: "same host in another case", body: withHosts("example.com", "EXAMPLE.com"), invalid: []string{"hosts[1]"}},

		{desc: "same method in another case", body: withMethods("get", "GET"), invalid: []string{"methods[1]"}},
		{desc: "method with a space", body: withMethods("G ET"), invalid: []string{"methods[0]"}},
		{desc: "method with a slash", body: withMethods("GET/1"), invalid: []string{"methods[0]"}},
		{desc: "empty method", body: withMethods(""), invalid: []string{"methods[0]"}},

		{desc: "priority too high", body: `{"service_id":"s","paths":["/a"],"priority":1000001}`, invalid: []string{"priority"}},
		{desc: "priority too low", body: `{"service_id":"s","paths":["/a"],"priority":-1000001}`, invalid: []string{"priority"}},

		{desc: "body limit at its limits", body: `{"service_id":"s","paths":["/a"],"max_body_bytes":1099511627776}`},
		{desc: "body limit zero means the default", body: `{"service_id":"s","paths":["/a"],"max_body_bytes":0}`},
		{desc: "body limit negative", body: `{"service_id":"s","paths":["/a"],"max_body_bytes":-1}`, invalid: []string{"max_body_bytes"}},
		{desc: "body limit over 1 TiB", body: `{"service_id":"s","paths":["/a"],"max_body_bytes":1099511627777}`, invalid: []string{"max_body_bytes"}},

		{desc: "too many hosts", body: `{"service_id":"s","hosts":` + hosts(gatehouse.MaxRouteHosts+1) + `}`, invalid: []string{"hosts"}},
		{desc: "too many paths", body: `{"service_id":"s","paths":` + paths(gatehouse.MaxRoutePaths+1) + `}`, invalid: []string{"paths"}},
		{desc: "too many methods", body: `{"service_id":"s","paths":["/"],"methods":` + jsonList(gatehouse.MaxRouteMethods+1, `"M%d"`) + `}`, invalid: []string{"methods"}},
		{desc: "MaxMatchKeys combinations", body: `{"service_id":"s","hosts":` + hosts(32) + `,"paths":` + paths(32) + `}`},
		{desc: "too many combinations", body: `{"service_id":"s","hosts":` + hosts(33) + `,"paths":` + paths(32) + `}`, unprocessable: []string{"paths"}},
		{desc: "too many combinations with methods", body: `{"service_id":"s","hosts":` + hosts(9) + `,"paths":` + paths(16) + `,"methods":["GET","HEAD","POST","PUT","PATCH","DELETE","OPTIONS","TRACE"]}`, unprocessable: []string{"paths"}},
		{desc: "combinations not counted while the route is invalid", body: `{"service_id":"","hosts":` + hosts(33) + `,"paths":` + paths(32) + `}`, invalid: []string{"service_id"}},

		{desc: "upgrades: another protocol", body: `{"service_id":"s","paths":["/"],"upgrades":["websocket","TLS"]}`},
		{desc: "upgrades: none", body: `{"service_id":"s","paths":["/"],"upgrades":[]}`},
		{desc: "upgrades: h2c is never tunnelled", body: `{"service_id":"s","paths":["/"],"upgrades":["websocket","H2C"]}`, unprocessable: []string{"upgrades[1]"}},
		{desc: "upgrades: not a token", body: `{"service_id":"s","paths":["/"],"upgrades":["web socket"]}`, invalid: []string{"upgrades[0]"}},
		{desc: "upgrades: a repeat in another case", body: `{"service_id":"s","paths":["/"],"upgrades":["websocket","WebSocket"]}`, invalid: []string{"upgrades[1]"}},
		{desc: "upgrades: empty entry", body: `{"service_id":"s","paths":["/"],"upgrades":[""]}`, invalid: []string{"upgrades[0]"}},

		{desc: "hosts wrong type", body: `{"service_id":"s","hosts":"example.com"}`, decode: []string{"hosts"}},
		{desc: "strip_path wrong type", body: `{"service_id":"s","paths":["/"],"strip_path":"yes"}`, decode: []string{"strip_path"}},
	})
}

func TestRouteNormalize(t *testing.T) {
	r := &gatehouse.Route{ServiceID: "s", Hosts: []string{"API.Example.COM", "*.Example.com"}, Paths: []string{"/Users/{ID}"}, Methods: []string{"get", "Post", "PATCH"},
		Upgrades: []string{"WebSocket"}}
	r.Normalize()
	if !slices.Equal(r.Upgrades, []string{"websocket"}) {
		t.Errorf("upgrades = %v", r.Upgrades)
	}
	if !slices.Equal(r.Hosts, []string{"api.example.com", "*.example.com"}) {
		t.Errorf("hosts = %v", r.Hosts)
	}
	if !slices.Equal(r.Methods, []string{"GET", "POST", "PATCH"}) {
		t.Errorf("methods = %v", r.Methods)
	}
	if !slices.Equal(r.Paths, []string{"/Users/{ID}"}) {
		t.Errorf("paths changed: %v", r.Paths)
	}
}

func TestRouteMatchKeys(t *testing.T) {
	route := func(prio int, hosts, paths, methods []string) *gatehouse.Route {
		return &gatehouse.Route{ServiceID: "s", Priority: prio, Hosts: hosts, Paths: paths, Methods: methods}
	}
	l := func(s ...string) []string { return s }
	tests := []struct {
		desc  string
		a, b  *gatehouse.Route
		equal bool
	}{
		{"parameter renaming, host and method case", route(0, l("API.example.com"), l("/u/{id}/x"), l("get")),
			route(0, l("api.example.com"), l("/u/{user}/x"), l("GET")), true},
		{"order of list entries", route(0, l("a.com", "b.com"), l("/a", "/b"), l("GET", "PUT")),
			route(0, l("b.com", "a.com"), l("/b", "/a"), l("PUT", "GET")), true},
		{"empty lists match anything alike", route(0, nil, l("/a"), nil), route(0, l(), l("/a"), l()), true},
		{"different priority", route(0, nil, l("/a"), nil), route(1, nil, l("/a"), nil), false},
		{"path case matters", route(0, nil, l("/a"), nil), route(0, nil, l("/A"), nil), false},
		{"a parameter is not a literal", route(0, nil, l("/u/{id}"), nil), route(0, nil, l("/u/id"), nil), false},
		{"a prefix is not an exact path", route(0, nil, l("/a/*"), nil), route(0, nil, l("/a/"), nil), false},
		{"wildcard host differs from its domain", route(0, l("*.a.com"), l("/"), nil), route(0, l("a.com"), l("/"), nil), false},
		{"some method is not any method", route(0, nil, l("/"), l("GET")), route(0, nil, l("/"), nil), false},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			ka, kb := tt.a.MatchKeys(), tt.b.MatchKeys()
			if got := slices.Equal(ka, kb); got != tt.equal {
				t.Errorf("keys equal = %v, want %v:\n%v\n%v", got, tt.equal, ka, kb)
			}
		})
	}

	r := route(7, l("b.com", "a.com"), l("/x", "/y/{id}"), l("put", "GET", "delete"))
	keys := r.MatchKeys()
	if len(keys) != 2*2*3 {
		t.Fatalf("len(keys) = %d, want 12: %v", len(keys), keys)
	}
	if !slices.IsSorted(keys) {
		t.Errorf("keys not sorted: %v", keys)
	}
	if !slices.Contains(keys, "match:7 DELETE a.com /y/{}") {
		t.Errorf("keys = %v, want one like %q", keys, "match:7 DELETE a.com /y/{}")
	}
	if got := route(0, nil, l("/"), nil).MatchKeys(); !slices.Equal(got, []string{"match:0 * * /"}) {
		t.Errorf("keys of a route with only a path = %v", got)
	}

	r.Name = "r"
	ix := r.Index()
	if ix.Name != "r" || !slices.Equal(ix.Refs, []gatehouse.Ref{{Kind: gatehouse.KindService, ID: "s"}}) {
		t.Errorf("Index = %+v", ix)
	}
	if !slices.Equal(ix.Unique, append([]string{"name:r"}, keys...)) {
		t.Errorf("Index.Unique = %v", ix.Unique)
	}
	r.Name = ""
	if u := r.Index().Unique; !slices.Equal(u, keys) {
		t.Errorf("unnamed route's Unique = %v", u)
	}
}

func TestConsumerCheck(t *testing.T) {
	runChecks(t, gatehouse.KindConsumer, []checkCase{
		{desc: "valid", body: `{"name":"alice","groups":["admins","Dev.Team-1"]}`},
		{desc: "no groups", body: `{"name":"alice"}`},
		{desc: "missing name", body: `{"groups":["a"]}`, invalid: []string{"name"}},
		{desc: "bad name", body: `{"name":"al ice"}`, invalid: []string{"name"}},
		{desc: "bad id", body: `{"id":"-x","name":"a"}`, invalid: []string{"id"}},
		{desc: "same group in another case", body: `{"name":"a","groups":["ops","OPS"]}`, invalid: []string{"groups[1]"}},
		{desc: "bad group", body: `{"name":"a","groups":["ok","not ok"]}`, invalid: []string{"groups[1]"}},
		{desc: "empty group", body: `{"name":"a","groups":[""]}`, invalid: []string{"groups[0]"}},
		{desc: "too many groups", body: `{"name":"a","groups":` + jsonList(gatehouse.MaxGroups+1, `"g%d"`) + `}`, invalid: []string{"groups"}},
		{desc: "MaxGroups groups", body: `{"name":"a","groups":` + jsonList(gatehouse.MaxGroups, `"g%d"`) + `}`},
		{desc: "group wrong type", body: `{"name":"a","groups":[1]}`, decode: []string{"groups[0]"}},
	})
}

func TestCredentialCheck(t *testing.T) {
	runChecks(t, gatehouse.KindCredential, []checkCase{
		{desc: "key-auth with a generated key", body: `{"type":"key-auth"}`},
		{desc: "key-auth with a 16-character key", body: `{"type":"key-auth","key":"0123456789abcdef"}`},
		{desc: "key-auth with a 512-character key", body: fmt.Sprintf(`{"type":"key-auth","key":%q}`, strings.Repeat("k", 512))},
		{desc: "key too short", body: `{"type":"key-auth","key":"0123456789abcde"}`, invalid: []string{"key"}},
		{desc: "key too long", body: fmt.Sprintf(`{"type":"key-auth","key":%q}`, strings.Repeat("k", 513)), invalid: []string{"key"}},
		{desc: "key with a space", body: `{"type":"key-auth","key":"0123456789 abcdef"}`, invalid: []string{"key"}},
		{desc: "key not ASCII", body: `{"type":"key-auth","key":"0123456789abcdeé"}`, invalid: []string{"key"}},
		{desc: "key-auth with a username", body: `{"type":"key-auth","username":"bob"}`, invalid: []string{"username"}},
		{desc: "key-auth with a password", body: `{"type":"key-auth","password":"secret123"}`, invalid: []string{"password"}},
		{desc: "key-auth with a username and password", body: `{"type":"key-auth","username":"bob","password":"secret123"}`, invalid: []string{"username", "password"}},

		{desc: "basic-auth", body: `{"type":"basic-auth","username":"bob","password":"s3cr3t-pw"}`},
		{desc: "basic-auth with an 8-character password", body: `{"type":"basic-auth","username":"bob","password":"12345678"}`},
		{desc: "basic-auth missing username", body: `{"type":"basic-auth","password":"s3cr3t-pw"}`, invalid: []string{"username"}},
		{desc: "basic-auth bad username", body: `{"type":"basic-auth","username":"bob:x","password":"s3cr3t-pw"}`, invalid: []string{"username"}},
		{desc: "basic-auth missing password", body: `{"type":"basic-auth","username":"bob"}`, invalid: []string{"password"}},
		{desc: "basic-auth short password", body: `{"type":"basic-auth","username":"bob","password":"1234567"}`, invalid: []string{"password"}},
		{desc: "basic-auth password with a space", body: `{"type":"basic-auth","username":"bob","password":"pass word"}`, invalid: []string{"password"}},
		{desc: "basic-auth password too long", body: fmt.Sprintf(`{"type":"basic-auth","username":"bob","password":%q}`, strings.Repeat("p", 513)), invalid: []string{"password"}},
		{desc: "basic-auth with a key", body: `{"type":"basic-auth","username":"bob","password":"s3cr3t-pw","key":"0123456789abcdef"}`, invalid: []string{"key"}},

		{desc: "missing type", body: `{"key":"0123456789abcdef"}`, invalid: []string{"type"}},
		{desc: "unknown type", body: `{"type":"oauth2"}`, invalid: []string{"type"}},
		{desc: "bad id", body: `{"id":"a b","type":"key-auth"}`, invalid: []string{"id"}},
		{desc: "unknown field", body: `{"type":"key-auth","secret":"x"}`, decode: []string{"secret"}},
	})
}

func TestCredentialSeal(t *testing.T) {
	t.Run("key-auth generates a ghk_ key", func(t *testing.T) {
		c := &gatehouse.Credential{ConsumerID: "c1", Type: gatehouse.CredentialKeyAuth}
		hash := c.Seal()
		if !strings.HasPrefix(c.Key, "ghk_") || len(c.Key) != len("ghk_")+43 {
			t.Fatalf("key = %q", c.Key)
		}
		if bad, _ := c.Check(); len(bad) > 0 {
			t.Errorf("a generated key fails Check: %v", bad)
		}
		if string(hash) != gatehouse.HashToken(c.Key) {
			t.Errorf("Seal returned %s, want HashToken(key)", hash)
		}
		if !gatehouse.TokenMatches(c.Key, hash) {
			t.Error("TokenMatches(key, hash) = false")
		}
		if gatehouse.TokenMatches(c.Key+"x", hash) || gatehouse.TokenMatches("", hash) {
			t.Error("TokenMatches accepted a wrong key")
		}
		ix := c.Index()
		if !slices.Equal(ix.Unique, []string{gatehouse.KeyAuthLookup(string(hash))}) || ix.Parent == nil || *ix.Parent != (gatehouse.Ref{Kind: gatehouse.KindConsumer, ID: "c1"}) {
			t.Errorf("Index = %+v", ix)
		}
		other := &gatehouse.Credential{Type: gatehouse.CredentialKeyAuth}
		other.Seal()
		if other.Key == c.Key {
			t.Error("two generated keys are equal")
		}
		key := c.Key
		restore := c.Redact()
		if c.Key != "" {
			t.Error("Redact kept the key")
		}
		restore()
		if c.Key != key {
			t.Error("restore lost the key")
		}
	})
	t.Run("key-auth keeps a given key", func(t *testing.T) {
		c := &gatehouse.Credential{Type: gatehouse.CredentialKeyAuth, Key: "my-own-key-0123456789"}
		hash := c.Seal()
		if c.Key != "my-own-key-0123456789" || !gatehouse.TokenMatches("my-own-key-0123456789", hash) {
			t.Errorf("key %q hash %s", c.Key, hash)
		}
	})
	t.Run("basic-auth hashes the password", func(t *testing.T) {
		c := &gatehouse.Credential{ConsumerID: "c1", Type: gatehouse.CredentialBasicAuth, Username: "bob", Password: "s3cr3t-pw"}
		hash := c.Seal()
		if c.Key != "" {
			t.Errorf("basic-auth got a key %q", c.Key)
		}
		if !strings.HasPrefix(string(hash), "pbkdf2-sha256$") || bytes.Contains(hash, []byte("s3cr3t-pw")) {
			t.Errorf("hash = %s", hash)
		}
		if !gatehouse.PasswordMatches("s3cr3t-pw", hash) {
			t.Error("PasswordMatches(right password) = false")
		}
		if gatehouse.PasswordMatches("s3cr3t-pW", hash) || gatehouse.PasswordMatches("", hash) {
			t.Error("PasswordMatches accepted a wrong password")
		}
		ix := c.Index()
		if ix.Name != "bob" || !slices.Equal(ix.Unique, []string{gatehouse.BasicAuthLookup("bob")}) {
			t.Errorf("Index = %+v", ix)
		}
		restore := c.Redact()
		if c.Password != "" {
			t.Error("Redact kept the password")
		}
		restore()
		if c.Password != "s3cr3t-pw" {
			t.Error("restore lost the password")
		}
	})
	t.Run("unknown type seals nothing", func(t *testing.T) {
		if got := (&gatehouse.Credential{Type: "x"}).Seal(); got != nil {
			t.Errorf("Seal = %s", got)
		}
	})
}

func TestPasswordHashing(t *testing.T) {
	h1, h2 := gatehouse.HashPassword("pw-123456"), gatehouse.HashPassword("pw-123456")
	if bytes.Equal(h1, h2) {
		t.Error("two hashes of one password are equal: no salt")
	}
	if !gatehouse.PasswordMatches("pw-123456", h1) || !gatehouse.PasswordMatches("pw-123456", h2) {
		t.Error("PasswordMatches(right) = false")
	}
	parts := strings.Split(string(h1), "$")
	tests := []struct {
		desc   string
		stored string
		want   bool
	}{
		{"the hash", string(h1), true},
		{"empty", "", false},
		{"other algorithm", strings.Join(append([]string{"bcrypt"}, parts[1:]...), "$"), false},
		{"three parts", strings.Join(parts[:3], "$"), false},
		{"five parts", string(h1) + "$x", false},
		{"iterations not a number", strings.Join([]string{parts[0], "x", parts[2], parts[3]}, "$"), false},
		{"zero iterations", strings.Join([]string{parts[0], "0", parts[2], parts[3]}, "$"), false},
		{"different iterations", strings.Join([]string{parts[0], "1", parts[2], parts[3]}, "$"), false},
		{"bad salt", strings.Join([]string{parts[0], parts[1], "!!", parts[3]}, "$"), false},
		{"bad key", strings.Join([]string{parts[0], parts[1], parts[2], "!!"}, "$"), false},
		{"other salt", strings.Join([]string{parts[0], parts[1], strings.Split(string(h2), "$")[2], parts[3]}, "$"), false},
		{"a token hash", gatehouse.HashToken("pw-123456"), false},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			if got := gatehouse.PasswordMatches("pw-123456", []byte(tt.stored)); got != tt.want {
				t.Errorf("PasswordMatches = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTokenMatches(t *testing.T) {
	hash := []byte(gatehouse.HashToken("gha_secret"))
	if len(hash) != 64 {
		t.Errorf("HashToken length = %d, want 64 hex digits", len(hash))
	}
	tests := []struct {
		desc   string
		secret string
		stored []byte
		want   bool
	}{
		{"right secret", "gha_secret", hash, true},
		{"wrong secret", "gha_secreT", hash, false},
		{"empty secret", "", hash, false},
		{"empty hash", "gha_secret", nil, false},
		{"truncated hash", "gha_secret", hash[:63], false},
		{"plaintext stored", "gha_secret", []byte("gha_secret"), false},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			if got := gatehouse.TokenMatches(tt.secret, tt.stored); got != tt.want {
				t.Errorf("TokenMatches = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPolicyCheck(t *testing.T) {
	rl := func(cfg string) string { return `{"name":"p","type":"rate-limit","config":` + cfg + `}` }
	acl := func(cfg string) string { return `{"name":"p","type":"acl","config":` + cfg + `}` }
	pol := func(typ, cfg string) string { return `{"name":"p","type":"` + typ + `","config":` + cfg + `}` }
	runChecks(t, gatehouse.KindPolicy, []checkCase{
		{desc: "rate-limit per second", body: rl(`{"requests":10,"per":"second"}`)},
		{desc: "rate-limit per minute", body: rl(`{"requests":1,"per":"minute"}`)},
		{desc: "rate-limit per hour", body: rl(`{"requests":1000000000,"per":"hour"}`)},
		{desc: "rate-limit per day", body: rl(`{"requests":10,"per":"day"}`), invalid: []string{"config.per"}},
		{desc: "rate-limit per capitalised", body: rl(`{"requests":10,"per":"Minute"}`), invalid: []string{"config.per"}},
		{desc: "rate-limit missing per", body: rl(`{"requests":10}`), invalid: []string{"config.per"}},
		{desc: "rate-limit zero requests", body: rl(`{"requests":0,"per":"second"}`), invalid: []string{"config.requests"}},
		{desc: "rate-limit too many requests", body: rl(`{"requests":1000000001,"per":"second"}`), invalid: []string{"config.requests"}},
		{desc: "rate-limit both wrong", body: rl(`{"per":"week"}`), invalid: []string{"config.requests", "config.per"}},
		{desc: "unknown field in config", body: rl(`{"requests":10,"per":"second","x":1}`), invalid: []string{"config.x"}},
		{desc: "every unknown and mistyped config field", body: rl(`{"requests":"10","per":1,"bursts":5}`), invalid: []string{"config.bursts", "config.per", "config.requests"}},
		{desc: "rate-limit burst", body: rl(`{"requests":10,"per":"second","burst":20,"by":"ip","store":"redis","fallback":"allow"}`)},
		{desc: "rate-limit bad key and store", body: rl(`{"requests":10,"per":"second","by":"user","store":"memcached","fallback":"deny"}`), invalid: []string{"config.by", "config.store", "config.fallback"}},
		{desc: "fractional requests", body: rl(`{"requests":1.5,"per":"second"}`), invalid: []string{"config.requests"}},
		{desc: "config not an object", body: rl(`5`), invalid: []string{"config"}},
		{desc: "config an array", body: rl(`[]`), invalid: []string{"config"}},
		{desc: "config null", body: rl(`null`), invalid: []string{"config"}},
		{desc: "config missing", body: `{"name":"p","type":"rate-limit"}`, invalid: []string{"config"}},

		{desc: "acl allow", body: acl(`{"allow":["admins","ops"]}`)},
		{desc: "acl deny", body: acl(`{"deny":["banned"]}`)},
		{desc: "acl both", body: acl(`{"allow":["a"],"deny":["b"]}`)},
		{desc: "acl consumers", body: acl(`{"allow_consumers":["alice"],"deny_consumers":["mallory"]}`)},
		{desc: "acl neither", body: acl(`{}`), invalid: []string{"config"}},
		{desc: "acl both empty", body: acl(`{"allow":[],"deny":[]}`), invalid: []string{"config"}},
		{desc: "acl repeated group", body: acl(`{"allow":["a","A"]}`), invalid: []string{"config.allow[1]"}},
		{desc: "acl empty group", body: acl(`{"deny":["x",""]}`), invalid: []string{"config.deny[1]"}},
		{desc: "acl too many groups", body: acl(`{"allow":` + jsonList(gatehouse.MaxGroups+1, `"g%d"`) + `}`), invalid: []string{"config.allow"}},
		{desc: "acl null group", body: acl(`{"allow":[null]}`), invalid: []string{"config.allow[0]"}},
		{desc: "acl allow not a list", body: acl(`{"allow":"a"}`), invalid: []string{"config.allow"}},

		{desc: "auth key", body: pol("auth", `{"key_auth":{}}`)},
		{desc: "auth key from the query only", body: pol("auth", `{"key_auth":{"header":"","query":"apikey"}}`)},
		{desc: "auth key from nowhere", body: pol("auth", `{"key_auth":{"header":""}}`), invalid: []string{"config.key_auth"}},
		{desc: "auth without a scheme", body: pol("auth", `{}`), invalid: []string{"config"}},
		{desc: "auth bad header names", body: pol("auth", `{"basic_auth":{},"consumer_id_header":"X Id"}`), invalid: []string{"config.consumer_id_header"}},
		{desc: "auth realm with a quote", body: pol("auth", `{"basic_auth":{},"realm":"a\"b"}`), invalid: []string{"config.realm"}},
		{desc: "auth jwt hs256", body: pol("auth", `{"jwt":{"keys":[{"alg":"HS256","secret":"0123456789abcdef0123456789abcdef"}]}}`)},
		{desc: "auth jwt short secret", body: pol("auth", `{"jwt":{"keys":[{"alg":"HS256","secret":"short"}]}}`), invalid: []string{"config.jwt.keys[0].secret"}},
		{desc: "auth jwt alg none", body: pol("auth", `{"jwt":{"keys":[{"alg":"none"}]}}`), invalid: []string{"config.jwt.keys[0].alg"}},
		{desc: "auth jwt public key not PEM", body: pol("auth", `{"jwt":{"keys":[{"alg":"RS256","public_key":"x"}]}}`), unprocessable: []string{"config.jwt.keys[0].public_key"}},
		{desc: "auth jwt without keys", body: pol("auth", `{"jwt":{}}`), invalid: []string{"config.jwt"}},
		{desc: "auth jwt jwks url not http", body: pol("auth", `{"jwt":{"jwks_url":"ftp://x/keys"}}`), unprocessable: []string{"config.jwt.jwks_url"}},
		{desc: "ip-restriction", body: pol("ip-restriction", `{"allow":["10.0.0.0/8","::1"],"deny":["10.1.2.3"]}`)},
		{desc: "ip-restriction bad prefix", body: pol("ip-restriction", `{"deny":["10.0.0.0/33","x"]}`), invalid: []string{"config.deny[0]", "config.deny[1]"}},
		{desc: "ip-restriction empty", body: pol("ip-restriction", `{}`), invalid: []string{"config"}},
		{desc: "concurrency-limit", body: pol("concurrency-limit", `{"max":10}`)},
		{desc: "concurrency-limit zero", body: pol("concurrency-limit", `{"max":0}`), invalid: []string{"config.max"}},
		{desc: "adaptive-concurrency defaults", body: pol("adaptive-concurrency", `{}`)},
		{desc: "adaptive-concurrency min over max", body: pol("adaptive-concurrency", `{"min_limit":50,"max_limit":10}`), unprocessable: []string{"config"}},
		{desc: "circuit-breaker", body: pol("circuit-breaker", `{"failures":3,"open_seconds":10}`)},
		{desc: "circuit-breaker zero failures", body: pol("circuit-breaker", `{"failures":0}`), invalid: []string{"config.failures"}},
		{desc: "maintenance", body: pol("maintenance", `{"message":"Back at noon."}`)},
		{desc: "maintenance empty message", body: pol("maintenance", `{"message":""}`), invalid: []string{"config.message"}},
		{desc: "deprecation", body: pol("deprecation", `{"sunset_at":"2027-01-01T00:00:00Z","successor":"https://api.example.com/v2"}`)},
		{desc: "deprecation relative successor", body: pol("deprecation", `{"successor":"/v2"}`), invalid: []string{"config.successor"}},
		{desc: "deprecation sunset before deprecation", body: pol("deprecation", `{"deprecated_at":"2027-01-01T00:00:00Z","sunset_at":"2026-01-01T00:00:00Z"}`), unprocessable: []string{"config.sunset_at"}},
		{desc: "content", body: pol("content", `{"accepts":["application/json"],"produces":["application/json","text/*"]}`)},
		{desc: "content bad media type", body: pol("content", `{"accepts":["json","text/plain; charset=utf-8"]}`), invalid: []string{"config.accepts[0]", "config.accepts[1]"}},
		{desc: "content empty", body: pol("content", `{}`), invalid: []string{"config"}},
		{desc: "content ranges the data plane cannot read", body: pol("content", `{"accepts":["*/json","text/html;","text/*"]}`), invalid: []string{"config.accepts[0]", "config.accepts[1]"}},
		{desc: "content schema", body: pol("content", `{"schema":{"type":"object","properties":{"n":{"$ref":"#/$defs/n"}},"$defs":{"n":{"type":"number"}}}}`)},
		{desc: "content schema of another draft", body: pol("content", `{"schema":{"$schema":"http://json-schema.org/draft-07/schema#","type":"array"}}`)},
		{desc: "content schema that does not compile", body: pol("content", `{"schema":{"type":"nope"}}`), unprocessable: []string{"config.schema"}},
		{desc: "content schema with a bad pattern", body: pol("content", `{"schema":{"pattern":"("}}`), unprocessable: []string{"config.schema"}},
		{desc: "content schema with a dangling $ref", body: pol("content", `{"schema":{"$ref":"#/$defs/none"}}`), unprocessable: []string{"config.schema"}},
		{desc: "content schema with a remote $ref", body: pol("content", `{"schema":{"$ref":"https://example.com/order.json"}}`), unprocessable: []string{"config.schema"}},
		{desc: "content schema with a $ref resolved against its $id", body: pol("content", `{"schema":{"$id":"https://example.com/a.json","$ref":"b.json"}}`), unprocessable: []string{"config.schema"}},
		{desc: "content schema with a relative $ref", body: pol("content", `{"schema":{"properties":{"a":{"$ref":"item.json"}}}}`), unprocessable: []string{"config.schema"}},
		{desc: "content schema with a file $ref", body: pol("content", `{"schema":{"$ref":"file:///etc/passwd"}}`), unprocessable: []string{"config.schema"}},
		{desc: "content schema with a remote meta-schema", body: pol("content", `{"schema":{"$schema":"https://example.com/meta"}}`), unprocessable: []string{"config.schema"}},
		{desc: "egress global", body: `{"name":"p","type":"egress","global":true,"config":{"allow":[{"host":"*.example.com"}]}}`},
		{desc: "egress not global", body: pol("egress", `{"allow":[{"host":"example.com","ports":[443]}]}`), unprocessable: []string{"global"}},
		{desc: "egress bad rule", body: `{"name":"p","type":"egress","global":true,"config":{"allow":[{"host":"a/b","ports":[0]}]}}`, invalid: []string{"config.allow[0].host", "config.allow[0].ports[0]"}},

		{desc: "missing type", body: `{"name":"p","config":{}}`, invalid: []string{"type"}},
		{desc: "unknown type", body: `{"name":"p","type":"magic","config":{}}`, invalid: []string{"type"}},
		{desc: "missing name", body: `{"type":"acl","config":{"allow":["a"]}}`, invalid: []string{"name"}},
		{desc: "bad id", body: `{"id":"..","name":"p","type":"acl","config":{"allow":["a"]}}`, invalid: []string{"id"}},
		{desc: "config with a duplicate key", body: rl(`{"requests":1,"requests":2}`), decode: []string{"body"}},
	})
}

func TestPolicyDecodeConfig(t *testing.T) {
	tests := []struct {
		desc string
		body string
		want any
	}{
		{"rate-limit with its defaults", `{"name":"p","type":"rate-limit","config":{"requests":5,"per":"hour"}}`,
			&gatehouse.RateLimitConfig{Requests: 5, Per: "hour", Burst: 5, By: "consumer", Store: "local", Fallback: "local"}},
		{"acl", `{"name":"p","type":"acl","config":{"deny":["x"]}}`, &gatehouse.ACLConfig{Deny: []string{"x"}}},
		{"maintenance with its defaults", `{"name":"p","type":"maintenance","config":{}}`,
			&gatehouse.MaintenanceConfig{Message: "This API is down for maintenance.", RetryAfterSeconds: 300}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			res, errs := decodeResource(t, gatehouse.KindPolicy, tt.body)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			cfg, err := res.(*gatehouse.Policy).DecodeConfig()
			if err != nil || !reflect.DeepEqual(cfg, tt.want) {
				t.Errorf("DecodeConfig = %#v, %v; want %#v", cfg, err, tt.want)
			}
		})
	}
	if _, err := (&gatehouse.Policy{Type: "nope"}).DecodeConfig(); err == nil {
		t.Error("DecodeConfig of an unknown type succeeded")
	}
	for name := range gatehouse.PolicyTypes {
		if name == "" || strings.ToLower(name) != name {
			t.Errorf("policy type %q is not a lower-case name", name)
		}
	}
}

func TestTokenCheck(t *testing.T) {
	runChecks(t, gatehouse.KindToken, []checkCase{
		{desc: "defaults", body: `{}`},
		{desc: "read-only named scoped expiring", body: `{"name":"ci","role":"read-only","consumer_id":"c-1","expires_at":"2030-01-01T00:00:00Z"}`},
		{desc: "expiry with offset and fraction", body: `{"expires_at":"2030-01-01T01:00:00.123+01:00"}`},
		{desc: "null expiry", body: `{"expires_at":null}`},
		{desc: "unknown role", body: `{"role":"root"}`, invalid: []string{"role"}},
		{desc: "empty role", body: `{"role":""}`, invalid: []string{"role"}},
		{desc: "role in another case", body: `{"role":"Admin"}`, invalid: []string{"role"}},
		{desc: "bad consumer_id", body: `{"consumer_id":"a/b"}`, invalid: []string{"consumer_id"}},
		{desc: "bad name", body: `{"name":"a b"}`, invalid: []string{"name"}},
		{desc: "token field not settable", body: `{"token":"gha_mine"}`, invalid: []string{"token"}},
		{desc: "everything wrong", body: `{"id":"-","name":"?","role":"x","consumer_id":".","token":"t"}`, invalid: []string{"id", "name", "role", "consumer_id", "token"}},
		{desc: "expiry not a time", body: `{"expires_at":"tomorrow"}`, decode: []string{"expires_at"}},
		{desc: "expiry a number", body: `{"expires_at":1893456000}`, decode: []string{"expires_at"}},
		{desc: "expiry date only", body: `{"expires_at":"2030-01-01"}`, decode: []string{"expires_at"}},
		{desc: "expiry offset out of range", body: `{"expires_at":"2030-01-01T00:00:00+24:00"}`, decode: []string{"expires_at"}},
		{desc: "unknown field", body: `{"scope":"all"}`, decode: []string{"scope"}},
	})
}

func TestTokenBehaviour(t *testing.T) {
	res, errs := decodeResource(t, gatehouse.KindToken, `{"expires_at":"2030-01-01T00:00:00Z","consumer_id":"c1"}`)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	tok := res.(*gatehouse.Token)
	if tok.Role != gatehouse.RoleAdmin {
		t.Errorf("default role = %q", tok.Role)
	}
	exp := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if tok.ExpiresAt == nil || !tok.ExpiresAt.Equal(exp) {
		t.Fatalf("expires_at = %v", tok.ExpiresAt)
	}
	for _, tc := range []struct {
		now  time.Time
		want bool
	}{
		{exp.Add(-time.Nanosecond), false},
		{exp, true},
		{exp.Add(time.Hour), true},
	} {
		if got := tok.Expired(tc.now); got != tc.want {
			t.Errorf("Expired(%v) = %v, want %v", tc.now, got, tc.want)
		}
	}
	if (&gatehouse.Token{}).Expired(time.Now().Add(100 * 365 * 24 * time.Hour)) {
		t.Error("a token without expiry expired")
	}

	if ix := tok.Index(); len(ix.Unique) != 0 || !slices.Equal(ix.Refs, []gatehouse.Ref{{Kind: gatehouse.KindConsumer, ID: "c1"}}) {
		t.Errorf("Index before sealing = %+v", ix)
	}
	hash := tok.Seal()
	if !strings.HasPrefix(tok.Token, "gha_") || len(tok.Token) != len("gha_")+43 {
		t.Errorf("token = %q", tok.Token)
	}
	if !gatehouse.TokenMatches(tok.Token, hash) {
		t.Error("TokenMatches(token, Seal()) = false")
	}
	if ix := tok.Index(); !slices.Equal(ix.Unique, []string{gatehouse.TokenLookup(string(hash))}) {
		t.Errorf("Index.Unique = %v", ix.Unique)
	}
	restore := tok.Redact()
	if tok.Token != "" {
		t.Error("Redact kept the token")
	}
	restore()
	if !gatehouse.TokenMatches(tok.Token, hash) {
		t.Error("restore lost the token")
	}
	if h := tok.SealWith("given"); tok.Token != "given" || string(h) != gatehouse.HashToken("given") {
		t.Errorf("SealWith: token %q hash %s", tok.Token, h)
	}
	if ix := (&gatehouse.Token{}).Index(); ix.Refs != nil {
		t.Errorf("unscoped token refs = %v", ix.Refs)
	}
}

func TestValidID(t *testing.T) {
	tests := []struct {
		desc string
		id   string
		want bool
	}{
		{"one letter", "a", true},
		{"one digit", "7", true},
		{"mixed", "A-1_b", true},
		{"64 characters", strings.Repeat("x", 64), true},
		{"generated", gatehouse.NewID(), true},
		{"empty", "", false},
		{"65 characters", strings.Repeat("x", 65), false},
		{"slash", "a/b", false},
		{"dot", "a.b", false},
		{"dot dot", "..", false},
		{"single dot", ".", false},
		{"leading hyphen", "-a", false},
		{"leading underscore", "_a", false},
		{"space", "a b", false},
		{"newline at end", "a\n", false},
		{"NUL", "a\x00", false},
		{"tab", "\ta", false},
		{"DEL", "a\x7f", false},
		{"non-ASCII letter", "é", false},
		{"non-ASCII digit", "a١", false},
		{"percent", "a%2F", false},
		{"colon", "a:b", false},
		{"tilde", "a~b", false},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			if got := gatehouse.ValidID(tt.id); got != tt.want {
				t.Errorf("ValidID(%q) = %v, want %v", tt.id, got, tt.want)
			}
		})
	}
}

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := gatehouse.NewID()
		if len(id) != 26 || !gatehouse.ValidID(id) || strings.ToLower(id) != id {
			t.Fatalf("NewID() = %q", id)
		}
		if seen[id] {
			t.Fatalf("NewID repeated %q", id)
		}
		seen[id] = true
	}
}

func TestImplemented(t *testing.T) {
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"} {
		if !gatehouse.Implemented(m) {
			t.Errorf("Implemented(%q) = false", m)
		}
	}
	for _, m := range []string{"", "get", "BREW", "PROPFIND", "GET ", "CONNECT"} {
		if gatehouse.Implemented(m) {
			t.Errorf("Implemented(%q) = true", m)
		}
	}
}

// hashWith is HashPassword's form with a chosen number of iterations, as
// a file's password_hash may carry.
func hashWith(t *testing.T, password string, iterations int) []byte {
	t.Helper()
	salt := []byte("salt-salt-salt-1")
	key, err := pbkdf2.Key(sha256.New, password, salt, iterations, 32)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Appendf(nil, "pbkdf2-sha256$%d$%s$%s", iterations,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

func TestPasswordMatchesRefusesAHashOutsideTheIterationBounds(t *testing.T) {
	for _, tt := range []struct {
		desc   string
		stored []byte
		want   bool
	}{
		{"one iteration", hashWith(t, "pw-123456", 1), false},
		{"one below the minimum", hashWith(t, "pw-123456", gatehouse.MinPasswordIterations-1), false},
		{"the minimum", hashWith(t, "pw-123456", gatehouse.MinPasswordIterations), true},
		// Never computed: were it, this would take minutes.
		{"999,999,999 iterations", []byte("pbkdf2-sha256$999999999$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"), false},
		{"one above the maximum", []byte(fmt.Sprintf("pbkdf2-sha256$%d$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g", gatehouse.MaxPasswordIterations+1)), false},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			start := time.Now()
			if got := gatehouse.PasswordMatches("pw-123456", tt.stored); got != tt.want {
				t.Errorf("PasswordMatches = %v; want %v", got, tt.want)
			}
			if !tt.want && time.Since(start) > 100*time.Millisecond {
				t.Errorf("refusing took %v; want it refused before computing", time.Since(start))
			}
		})
	}
}
