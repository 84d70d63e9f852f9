package kong

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/config"
	routetable "github.com/gatehouse/gatehouse/proxy/route"
)

func TestConvertPathIsExactOrReported(t *testing.T) {
	for _, tc := range []struct {
		desc, version, path string
		want                string // "" when dropped
		why                 string // part of the reason when dropped
	}{
		{"prefix", "3.0", "/api", "/api*", ""},
		{"prefix ending in slash", "3.0", "/api/", "/api/*", ""},
		{"root", "3.0", "/", "/*", ""},
		{"unreserved escape decoded", "3.0", "/st%6Fck", "/stock*", ""},
		{"reserved escape kept by Kong", "3.0", "/a%2Fb", "", "percent-escape"},
		{"literal brace in 3.0", "3.0", "/a{b}", "", "parameter or a prefix"},
		{"3.0 literal that 2.x would call a regex", "3.0", "/a$b", "/a$b*", ""},
		{"regex exact literal", "3.0", `~/users$`, "/users", ""},
		{"regex with caret", "3.0", `~^/users$`, "/users", ""},
		{"regex unanchored is a prefix", "3.0", `~/users`, "/users*", ""},
		{"regex escaped dot", "3.0", `~/v1\.0/x$`, "/v1.0/x", ""},
		{"regex trailing .*", "3.0", `~/api/.*`, "/api/*", ""},
		{"regex segment", "3.0", `~/users/[^/]+$`, "/users/{p1}", ""},
		{"regex named segment", "3.0", `~/users/(?<id>[^/]+)/posts/(?P<post>[^/]+)$`, "/users/{id}/posts/{post}", ""},
		{"regex unnamed group", "3.0", `~/users/([^/]+)$`, "/users/{p1}", ""},
		{"regex digits", "3.0", `~/users/\d+$`, "", `\d`},
		{"regex segment without $", "3.0", `~/users/[^/]+`, "", "not a whole segment"},
		{"regex segment inside a segment", "3.0", `~/users/x[^/]+$`, "", "not a whole segment"},
		{"regex alternative", "3.0", `~/(a|b)$`, "", "group or class"},
		{"regex any char", "3.0", `~/a.c$`, "", "operator"},
		{"regex star mid-path", "3.0", `~/a/.*/b$`, "", "operator"},
		{"regex case flag", "3.0", `~(?i)/a$`, "", "does not start with /"},
		{"regex literal percent", "3.0", `~/a%20b$`, "", "literal"},
		{"2.1 plain", "2.1", "/api", "/api*", ""},
		{"2.1 regex without tilde", "2.1", "/users/[^/]+$", "/users/{p1}", ""},
		{"2.1 regex digits", "2.1", `/users/\d+`, "", `\d`},
		{"1.1 regex with escapes", "1.1", "/a%20(b)$", "", "percent-escapes"},
		{"2.1 tilde is plain", "2.1", "/~user", "/~user*", ""},
		{"regex lone backslash", "3.0", `~/a\`, "", "lone backslash"},
		{"regex escaped percent", "3.0", `~/a\%$`, "", "literal"},
		{"regex non-ASCII", "3.0", "~/caf\u00e9$", "", "non-ASCII"},
		{"regex too long", "3.0", "~/" + strings.Repeat("a", 1100) + "$", "", "at most 1024"},
		{"plain too long", "3.0", "/" + strings.Repeat("a", 1100), "", "at most 1024"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			got, _, why := convertPath(tc.path, tc.version)
			if got != tc.want || !strings.Contains(why, tc.why) || (tc.want == "") != (why != "") {
				t.Errorf("convertPath(%q, %s) = %q, %q; want %q, a reason containing %q", tc.path, tc.version, got, why, tc.want, tc.why)
			}
		})
	}
}

// TestConvertedRoutesMatchWhatKongMatched compiles converted routes into
// the data plane's route table and asks it what Kong's router answered.
func TestConvertedRoutesMatchWhatKongMatched(t *testing.T) {
	in := `_format_version: "3.0"
services:
- name: s
  url: http://s.internal
  routes:
  - name: prefix
    paths: [/api]
  - name: regex
    paths: ['~/users/(?<id>[^/]+)$']
    methods: [GET]
  - name: exact
    paths: ['~/health$']
  - name: host
    hosts: ['*.example.com']
`
	doc, dropped, err := Convert([]byte(in), "in.yml")
	if err != nil || len(dropped) > 0 {
		t.Fatalf("err %v, dropped %v", err, dropped)
	}
	var entries []routetable.Entry[string]
	for _, r := range doc.Routes {
		entries = append(entries, routetable.Entry[string]{Hosts: r.Hosts, Paths: r.Paths, Methods: r.Methods, Priority: r.Priority, Value: r.Name})
	}
	table, err := routetable.Compile(entries)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ host, path, method, want string }{
		{"x", "/api", "GET", "prefix"},
		{"x", "/apix", "GET", "prefix"}, // Kong's prefixes are not segment-bound
		{"x", "/api/v1/orders", "POST", "prefix"},
		{"x", "/ap", "GET", ""},
		{"x", "/users/42", "GET", "regex"},
		{"x", "/users/42", "POST", ""},
		{"x", "/users/42/posts", "GET", ""},
		{"x", "/users/", "GET", ""},
		{"x", "/health", "GET", "exact"},
		{"x", "/healthz", "GET", ""},
		{"a.example.com", "/anything", "GET", "host"},
		{"a.b.example.com", "/", "GET", "host"},
		{"example.com", "/", "GET", ""},
	} {
		m := table.Match(tc.host, tc.path, tc.method)
		got := ""
		if m.Outcome == routetable.Found {
			got = m.Value
		}
		if got != tc.want {
			t.Errorf("%s %s%s: route %q; want %q", tc.method, tc.host, tc.path, got, tc.want)
		}
	}
}

// convert converts in and checks the result is valid.
func convert(t *testing.T, in string) (*config.Document, []Dropped) {
	t.Helper()
	doc, dropped, err := Convert([]byte(in), "in.yml")
	if err != nil {
		t.Fatal(err)
	}
	checkValid(t, doc)
	return doc, dropped
}

func routeNames(doc *config.Document) []string {
	var out []string
	for _, r := range doc.Routes {
		out = append(out, r.Name)
	}
	return out
}

// TestConvertReportsEachDropWithItsPlace gives one small Kong file per
// reason something is left out, and checks the report names the place
// (path and line) and the reason, and what is left of the routes.
func TestConvertReportsEachDropWithItsPlace(t *testing.T) {
	const svc = "_format_version: \"3.0\"\nservices:\n- name: s\n  url: http://s.internal\n"
	const svcTLS = "_format_version: \"3.0\"\nservices:\n- name: s\n  url: https://s.internal\n"
	const cors = svc + "  routes: [{name: r, paths: [/r]}]\nplugins:\n- name: cors\n  config:\n"
	for _, tc := range []struct {
		desc, in   string
		path, why  string
		line       int
		wantRoutes []string
	}{
		{"unknown top-level entity", svc + "foo: []\n", "foo", "not a Kong entity", 5, nil},
		{"certificates", svc + "certificates: [{cert: x}]\n", "certificates[0]", "--tls-cert", 5, nil},
		{"service with tcp", "_format_version: \"3.0\"\nservices:\n- name: g\n  url: tcp://g:9000\n  routes: [{name: r, paths: [/g]}]\n", "services[0]", "protocol tcp", 3, nil},
		{"disabled service", svc + "  enabled: false\n", "services[0]", "disabled", 3, nil},
		{"service url with a bad host", "_format_version: \"3.0\"\nservices:\n- name: b\n  url: http://bad_host\n", "services[0]", "refuses", 3, nil},
		{"write timeout", svc + "  write_timeout: 1000\n", "services[0].write_timeout", "between two writes", 5, nil},
		{"tls verify off", svcTLS + "  tls_verify: false\n", "services[0].tls_verify", "converted as tls.verify false, and gatehouse warns", 5, nil},
		{"tls verify depth", svcTLS + "  tls_verify_depth: 2\n", "services[0].tls_verify_depth", "length of the upstream's certificate chain", 5, nil},
		{"ca certificate the file does not hold", svcTLS + "  ca_certificates: [0c4e8a2b-3d5f-4b6a-8c9e-7f1a2b3c4d5e]\n", "services[0].ca_certificates[0]", "does not hold", 5, nil},
		{"client certificate the file does not hold", svcTLS + "  client_certificate: {id: 2b7c9e4a-5d6f-4a8b-9c0d-1e2f3a4b5c6d}\n", "services[0].client_certificate", "presents no client certificate", 5, nil},
		{"client certificate without its key", svcTLS + "  client_certificate: c1\ncertificates: [{id: c1, cert: x}]\n", "services[0].client_certificate", "with its key", 5, nil},
		{"ca certificate no service names", svc + "ca_certificates: [{id: ca1, cert: x}]\n", "ca_certificates[0]", "tls.ca_bundle", 5, nil},
		{"route without a service", svc + "routes:\n- name: r\n  paths: [/r]\n", "routes[0]", "has no service", 6, nil},
		{"route naming an unknown service", svc + "routes:\n- name: r\n  service: t\n  paths: [/r]\n", "routes[0]", `names service "t"`, 6, nil},
		{"route on headers", svc + "  routes:\n  - name: r\n    paths: [/r]\n    headers: {x: [y]}\n", "services[0].routes[0]", "matches on headers", 6, nil},
		{"route on snis", svc + "  routes:\n  - name: r\n    protocols: [https]\n    snis: [a.example.com]\n    paths: [/r]\n", "services[0].routes[0]", "matches on snis", 6, nil},
		{"route on sources", svc + "  routes:\n  - name: r\n    protocols: [tcp]\n    sources: [{ip: 10.0.0.1}]\n", "services[0].routes[0]", "matches on sources", 6, nil},
		{"tcp route", svc + "  routes:\n  - name: r\n    protocols: [tcp]\n    destinations: []\n", "services[0].routes[0]", "protocol tcp", 6, nil},
		{"https only route", svc + "  routes:\n  - name: r\n    protocols: [https]\n    paths: [/r]\n", "services[0].routes[0].protocols", "plain-http", 7, []string{"r"}},
		{"preserve host", svc + "  routes:\n  - name: r\n    paths: [/r]\n    preserve_host: true\n", "services[0].routes[0].preserve_host", "upstream's own host", 8, []string{"r"}},
		{"path handling v1", svc + "  routes:\n  - name: r\n    paths: [/r]\n    path_handling: v1\n", "services[0].routes[0].path_handling", "v0", 8, []string{"r"}},
		{"one path of two", svc + "  routes:\n  - name: r\n    paths: [/r, '~/x/\\d+$']\n", "services[0].routes[0].paths[1]", `\d`, 7, []string{"r"}},
		{"every path", svc + "  routes:\n  - name: r\n    paths: ['~/x/\\d+$']\n", "services[0].routes[0]", "none of its paths", 6, nil},
		{"host with port", svc + "  routes:\n  - name: r\n    hosts: [a.example.com:8000, b.example.com]\n", "services[0].routes[0].hosts[0]", "without their port", 7, []string{"r"}},
		{"trailing wildcard host", svc + "  routes:\n  - name: r\n    hosts: [a.example.*]\n", "services[0].routes[0]", "none of its hosts", 6, nil},
		{"method gatehouse does not serve", svc + "  routes:\n  - name: r\n    paths: [/r]\n    methods: [GET, CONNECT]\n", "services[0].routes[0].methods[1]", "501", 8, []string{"r"}},
		{"duplicate match", svc + "  routes:\n  - name: r\n    paths: [/r]\n  - name: r2\n    paths: [/r]\n", "services[0].routes[1]", "one match", 8, []string{"r"}},
		{"invalid tag", svc + "  tags: [ok, 'not ok']\n", "services[0].tags[1]", "not a gatehouse tag", 5, nil},
		{"consumer plugin", svc + "consumers:\n- username: c\n  plugins: [{name: rate-limiting, config: {minute: 1}}]\n", "consumers[0].plugins[0]", "one consumer", 7, nil},
		{"disabled plugin", svc + "plugins:\n- name: cors\n  enabled: false\n", "plugins[0]", "disabled", 6, nil},
		{"cors any origin with credentials", cors + "    credentials: true\n", "plugins[0]", "every origin with credentials", 7, []string{"r"}},
		{"cors star among origins with credentials", cors + "    origins: [https://a.example.com, '*']\n    credentials: true\n", "plugins[0]", "every origin with credentials", 7, []string{"r"}},
		{"cors regex origin", cors + "    origins: [https://a.example.com, 'https://.*\\.example\\.com']\n", "plugins[0].config.origins[1]", "regular expression", 9, []string{"r"}},
		{"cors regex of a host alone", cors + "    origins: [https://a.example.com, 'a\\.example\\.com']\n", "plugins[0].config.origins[1]", "host alone", 9, []string{"r"}},
		{"cors origin without a scheme", cors + "    origins: [https://a.example.com, a.example.com]\n", "plugins[0].config.origins[1]", "no scheme", 9, []string{"r"}},
		{"cors origin with a path", cors + "    origins: [https://a.example.com, https://b.example.com/app]\n", "plugins[0].config.origins[1]", "not an origin", 9, []string{"r"}},
		{"cors with only regex origins", cors + "    origins: ['https://(a|b)\\.example\\.com']\n", "plugins[0]", "none of its origins converts", 7, []string{"r"}},
		{"cors TRACE", cors + "    methods: [GET, TRACE]\n", "plugins[0].config.methods[1]", "501", 9, []string{"r"}},
		{"cors header star with credentials", cors + "    origins: [https://a.example.com]\n    credentials: true\n    headers: ['*']\n", "plugins[0].config.headers[0]", "header's name", 11, []string{"r"}},
		{"cors exposed star with credentials", cors + "    origins: [https://a.example.com]\n    credentials: true\n    exposed_headers: ['*', X-Id]\n", "plugins[0].config.exposed_headers[0]", "header's name", 11, []string{"r"}},
		{"cors max age above a day", cors + "    max_age: 604800\n", "plugins[0].config.max_age", "converted as 86400", 9, []string{"r"}},
		{"cors max age fractional", cors + "    max_age: 1.5\n", "plugins[0].config.max_age", "converted as their default, 5", 9, []string{"r"}},
		{"cors preflight continue", cors + "    preflight_continue: true\n", "plugins[0].config.preflight_continue", "answers preflight requests itself", 9, []string{"r"}},
		{"cors private network", cors + "    private_network: true\n", "plugins[0].config.private_network", "Private-Network", 9, []string{"r"}},
		{"cors gatehouse refuses", cors + "    headers: ['X Bad']\n", "plugins[0]", "cors policy gatehouse refuses", 7, []string{"r"}},
		{"unknown plugin", svc + "plugins:\n- name: zipkin\n", "plugins[0]", "no equivalent", 6, nil},
		{"plugin naming an unknown route", svc + "plugins:\n- name: cors\n  route: nope\n", "plugins[0]", `names route "nope"`, 6, nil},
		{"custom id beside username", svc + "consumers:\n- username: c\n  custom_id: c-1\n", "consumers[0].custom_id", "X-Consumer-Custom-ID", 7, nil},
		{"key without key", svc + "consumers:\n- username: c\n  keyauth_credentials: [{tags: [a]}]\n", "consumers[0].keyauth_credentials[0]", "has no key", 7, nil},
		{"short key", svc + "consumers:\n- username: c\n  keyauth_credentials: [{key: short}]\n", "consumers[0].keyauth_credentials[0]", "16 to 512", 7, nil},
		{"key ttl", svc + "consumers:\n- username: c\n  keyauth_credentials: [{key: 0123456789abcdef0123, ttl: 60}]\n", "consumers[0].keyauth_credentials[0].ttl", "do not expire", 7, nil},
		{"short password", svc + "consumers:\n- username: c\n  basicauth_credentials: [{username: c, password: pw}]\n", "consumers[0].basicauth_credentials[0]", "8 to 512", 7, nil},
		{"hashed password", "_format_version: \"3.0\"\n_transform: false\nconsumers:\n- username: c\n  basicauth_credentials: [{username: c, password: 0123456789abcdef0123456789abcdef01234567}]\n", "consumers[0].basicauth_credentials[0]", "_transform: false", 5, nil},
		{"invalid acl group", svc + "consumers:\n- username: c\n  acls: [{group: 'a b'}]\n", "consumers[0].acls[0]", "group name", 7, nil},
		{"credential naming an unknown consumer", svc + "keyauth_credentials:\n- consumer: nobody\n  key: 0123456789abcdef0123\n", "keyauth_credentials[0]", `names consumer "nobody"`, 6, nil},
		{"jwt HS384", svc + "consumers:\n- username: c\n  jwt_secrets: [{key: k, algorithm: HS384, secret: s}]\n", "consumers[0].jwt_secrets[0]", "HS384", 7, nil},
		{"jwt RSA key too short", svc + "consumers:\n- username: c\n  jwt_secrets: [{key: k, algorithm: RS256, rsa_public_key: x}]\n", "consumers[0].jwt_secrets[0]", "PEM", 7, nil},
		{"jwt key that cannot be an id", svc + "consumers:\n- username: c\n  jwt_secrets: [{key: 'https://i.example', secret: 0123456789abcdef0123456789abcdef}]\n", "consumers[0].jwt_secrets[0]", "consumer id", 7, nil},
		{"rate limit by header", svc + "plugins:\n- name: rate-limiting\n  config: {minute: 1, limit_by: header, header_name: x}\n", "plugins[0]", "limits by header", 6, nil},
		{"rate limit per day", svc + "plugins:\n- name: rate-limiting\n  config: {minute: 1, day: 10}\n", "plugins[0].config.day", "second, minute or hour", 7, nil},
		{"rate limit cluster", svc + "plugins:\n- name: rate-limiting\n  config: {minute: 1, policy: cluster}\n", "plugins[0].config.policy", "converted as local", 7, nil},
		{"rate limit error code", svc + "plugins:\n- name: rate-limiting\n  config: {minute: 1, error_code: 503}\n", "plugins[0].config.error_code", "429", 7, nil},
		{"rate limit by credential", svc + "plugins:\n- name: rate-limiting\n  config: {minute: 1, limit_by: credential}\n", "plugins[0].config.limit_by", "share one count", 7, nil},
		{"size limit content length", svc + "plugins:\n- name: request-size-limiting\n  config: {require_content_length: true}\n", "plugins[0].config.require_content_length", "chunked", 7, nil},
		{"termination with trigger", svc + "plugins:\n- name: request-termination\n  config: {trigger: x-debug}\n", "plugins[0]", "trigger", 6, nil},
		{"termination body", svc + "plugins:\n- name: request-termination\n  config: {body: '{}', content_type: application/json}\n", "plugins[0].config.body", "problem document", 7, nil},
		{"key-auth run_on_preflight", svc + "plugins:\n- name: key-auth\n  config: {run_on_preflight: false}\n", "plugins[0].config.run_on_preflight", "OPTIONS", 7, nil},
		{"acl hide groups", svc + "plugins:\n- name: acl\n  config: {allow: [a], hide_groups_header: true}\n", "plugins[0].config.hide_groups_header", "groups_header", 7, nil},
		{"ip restriction status", svc + "plugins:\n- name: ip-restriction\n  config: {deny: [10.0.0.1], status: 404}\n", "plugins[0].config.status", "403", 7, nil},
		{"upstream algorithm", "_format_version: \"3.0\"\nupstreams:\n- name: u\n  algorithm: least-connections\n  targets: [{target: 'a:80'}]\n", "upstreams[0].algorithm", "round robin", 4, nil},
		{"upstream without targets", "_format_version: \"3.0\"\nupstreams:\n- name: u\nservices:\n- name: s\n  host: u\n", "services[0]", "no targets", 5, nil},
		{"decK defaults", "_format_version: \"3.0\"\n_info:\n  defaults: {service: {retries: 1}}\n", "_info.defaults", "Kong's own defaults", 3, nil},
		{"regex priority", svc + "  routes:\n  - name: r\n    paths: ['~/r/[^/]+$']\n    regex_priority: 5\n", "services[0].routes[0].regex_priority", "specificity", 8, []string{"r"}},
		{"repeated key", svc + "consumers:\n- username: c\n  keyauth_credentials: [{key: 0123456789abcdef0123}]\n- username: d\n  keyauth_credentials: [{key: 0123456789abcdef0123}]\n", "consumers[1].keyauth_credentials[0]", "repeats that of consumers[0].keyauth_credentials[0]", 9, nil},
		{"repeated basic-auth username", svc + "consumers:\n- username: c\n  basicauth_credentials: [{username: u, password: password-1}]\n- username: d\n  basicauth_credentials: [{username: u, password: password-2}]\n", "consumers[1].basicauth_credentials[0]", "its username repeats", 9, nil},
		{"service not a mapping", "_format_version: \"3.0\"\nservices: [just-a-name]\n", "services[0]", "not a mapping", 2, nil},
		{"service url with a query", svc[:len(svc)-1] + "?x=1\n", "services[0].url", "query or fragment", 4, nil},
		{"seventeen tags", svc + "  tags: [t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15, t16, t17]\n", "services[0].tags[16]", "at most 16 tags", 5, nil},
		{"invalid host", svc + "  routes:\n  - name: r\n    hosts: [bad_host.example.com, ok.example.com]\n", "services[0].routes[0].hosts[0]", "not a valid hostname", 7, []string{"r"}},
		{"basic-auth username", svc + "consumers:\n- username: c\n  basicauth_credentials: [{username: 'a b', password: password-1}]\n", "consumers[0].basicauth_credentials[0]", "not a gatehouse username", 7, nil},
		{"jwt without secret", svc + "consumers:\n- username: c\n  jwt_secrets: [{key: k}]\n", "consumers[0].jwt_secrets[0]", "has no secret", 7, nil},
		{"jwt without key", svc + "consumers:\n- username: c\n  jwt_secrets: [{secret: 0123456789abcdef0123456789abcdef}]\n", "consumers[0].jwt_secrets[0]", "has no key", 7, nil},
		{"jwt short secret", svc + "consumers:\n- username: c\n  jwt_secrets: [{key: k, secret: short}]\nplugins: [{name: jwt}]\n", "consumers[0].jwt_secrets[0].secret", "at least 32 bytes", 7, nil},
		{"jwt secret not base64", svc + "consumers:\n- username: c\n  jwt_secrets: [{key: k, secret: '!!not base64!!'}]\nplugins: [{name: jwt, config: {secret_is_base64: true}}]\n", "consumers[0].jwt_secrets[0].secret", "not base64", 7, nil},
		{"jwt maximum expiration", svc + "consumers:\n- username: c\n  jwt_secrets: [{key: k, secret: 0123456789abcdef0123456789abcdef}]\nplugins:\n- name: jwt\n  config: {claims_to_verify: [exp], maximum_expiration: 60}\n", "plugins[0].config.maximum_expiration", "how far ahead", 10, nil},
		{"jwt cookie", svc + "consumers:\n- username: c\n  jwt_secrets: [{key: k, secret: 0123456789abcdef0123456789abcdef}]\nplugins:\n- name: jwt\n  config: {claims_to_verify: [exp], cookie_names: [jwt]}\n", "plugins[0].config.cookie_names", "Bearer only", 10, nil},
		{"jwt HS256 secret in the clear", svc + "  routes: [{name: r, paths: [/r]}]\nconsumers:\n- username: c\n  jwt_secrets: [{key: c-iss, secret: 0123456789abcdef0123456789abcdef}]\nplugins:\n- name: jwt\n  config: {claims_to_verify: [exp]}\n", "plugins[0]", `policy jwt holds the HS256 secret of jwt secret "c-iss" (kid c-iss) in the clear`, 10, []string{"r"}},
		{"jwt header names", svc + "consumers:\n- username: c\n  jwt_secrets: [{key: k, secret: 0123456789abcdef0123456789abcdef}]\nplugins:\n- name: jwt\n  config: {claims_to_verify: [exp], header_names: [x-jwt]}\n", "plugins[0].config.header_names", "Bearer only", 10, nil},
		{"plugin naming an unknown service", svc + "plugins:\n- name: cors\n  service: nope\n", "plugins[0]", `names service "nope"`, 6, nil},
		{"plugin naming an unknown consumer", svc + "plugins:\n- name: cors\n  consumer: nope\n", "plugins[0]", `names consumer "nope"`, 6, nil},
		{"plugin naming a route of another service", svc + "  routes: [{name: r, paths: [/r]}]\n- name: t\n  url: http://t.internal\nplugins:\n- name: cors\n  route: r\n  service: t\n", "plugins[0]", "never applies", 9, []string{"r"}},
		{"plugin not a mapping", svc + "plugins: [cors]\n", "plugins[0]", "not a mapping", 5, nil},
		{"acl consumer groups", svc + "plugins:\n- name: acl\n  config: {allow: [a], always_use_authenticated_groups: true}\n", "plugins[0].config.always_use_authenticated_groups", "groups of the consumer", 7, nil},
		{"rate limit by service", svc + "plugins:\n- name: rate-limiting\n  config: {minute: 1, limit_by: service}\n", "plugins[0].config.limit_by", "per route", 7, nil},
		{"rate limit message", svc + "plugins:\n- name: rate-limiting\n  config: {minute: 1, error_message: slow down}\n", "plugins[0].config.error_message", "problem document", 7, nil},
		{"rate limit fractional only", svc + "plugins:\n- name: rate-limiting\n  config: {minute: 0.5}\n", "plugins[0]", "none of its limits", 6, nil},
		{"rate limit too high", svc + "plugins:\n- name: rate-limiting\n  config: {second: 2000000000}\n", "plugins[0]", "policy gatehouse refuses", 6, nil},
		{"size limit unit", svc + "plugins:\n- name: request-size-limiting\n  config: {size_unit: gigabytes}\n", "plugins[0]", "size_unit", 6, nil},
		{"upstream hashing", "_format_version: \"3.0\"\nupstreams:\n- name: u\n  hash_on: ip\n", "upstreams[0].hash_on", "consistent hashing", 4, nil},
		{"target of an unknown upstream", "_format_version: \"3.0\"\ntargets:\n- upstream: nope\n  target: a:80\n", "targets[0]", "no upstream", 3, nil},
		{"shadowing plugin that did not convert", svc + "  plugins: [{name: rate-limiting, config: {minute: 5}}]\n  routes:\n  - name: r\n    paths: [/r]\n    plugins: [{name: rate-limiting, config: {day: 5}}]\n", "services[0].routes[0]", "gatehouse applies rate-limiting-s-minute to it", 7, []string{"r"}},
		{"consumer hmac credentials", svc + "consumers:\n- username: c\n  hmacauth_credentials: [{username: c, secret: s}]\n", "consumers[0].hmacauth_credentials", "HMAC", 7, nil},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			doc, dropped := convert(t, tc.in)
			found := false
			for _, d := range dropped {
				found = found || d.Path == tc.path && strings.Contains(d.Why, tc.why) && d.Pos.Line == tc.line && d.Pos.File == "in.yml"
			}
			if !found {
				t.Fatalf("dropped %v; want %s at line %d because of %q", dropped, tc.path, tc.line, tc.why)
			}
			if got := routeNames(doc); !slices.Equal(got, tc.wantRoutes) {
				t.Errorf("routes %v; want %v", got, tc.wantRoutes)
			}
		})
	}
}

// TestConvertLeavesOutRoutesWhoseGuardDidNotConvert: a route Kong
// guarded must never be served unguarded.
func TestConvertLeavesOutRoutesWhoseGuardDidNotConvert(t *testing.T) {
	const base = "_format_version: \"3.0\"\nservices:\n- name: s\n  url: http://s.internal\n  routes:\n  - name: open\n    paths: [/open]\n  - name: guarded\n    paths: [/guarded]\n"
	for _, tc := range []struct{ desc, plugin, why string }{
		{"unconvertible auth plugin", "plugins:\n- name: hmac-auth\n  route: guarded\n", "no equivalent"},
		{"oauth2 on the route", "plugins:\n- name: oauth2\n  route: guarded\n  config: {scopes: [a]}\n", "no equivalent"},
		{"jwt without any secret", "plugins:\n- name: jwt\n  route: guarded\n", "no jwt secret"},
		{"key-auth reading the body only", "plugins:\n- name: key-auth\n  route: guarded\n  config: {key_in_header: false, key_in_query: false, key_in_body: true}\n", "body only"},
		{"acl denying a group gatehouse cannot name", "plugins:\n- name: acl\n  route: guarded\n  config: {deny: ['bad group']}\n", "no longer be denied"},
		{"ip-restriction with an unreadable address", "plugins:\n- name: ip-restriction\n  route: guarded\n  config: {deny: [not-an-ip]}\n", "not an address"},
		{"acl allowing only groups gatehouse cannot name", "plugins:\n- name: acl\n  route: guarded\n  config: {allow: ['bad group']}\n", "none of its groups"},
		{"key-auth without key names", "plugins:\n- name: key-auth\n  route: guarded\n  config: {key_names: []}\n", "no key_names"},
		{"key-auth with a key name that is no header", "plugins:\n- name: key-auth\n  route: guarded\n  config: {key_names: ['a key'], key_in_query: false}\n", "policy gatehouse refuses"},
		{"termination with another status", "plugins:\n- name: request-termination\n  route: guarded\n  config: {status_code: 403}\n", "answers 403"},
		// Kong binds each jwt secret to its consumer; a gatehouse key signs
		// for any, so mallory's secret would sign a token naming alice.
		{"jwt whose keys two consumers hold", "consumers:\n- username: alice\n  jwt_secrets: [{key: alice-iss, secret: 0123456789abcdef0123456789abcdef}]\n" +
			"- username: mallory\n  jwt_secrets: [{key: mallory-iss, algorithm: HS256, secret: fedcba9876543210fedcba9876543210}]\n" +
			"plugins:\n- name: jwt\n  route: guarded\n  config: {claims_to_verify: [exp]}\n", `consumers "alice", "mallory" hold jwt secrets`},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			doc, dropped := convert(t, base+tc.plugin)
			if got := routeNames(doc); !slices.Equal(got, []string{"open"}) {
				t.Errorf("routes %v; want only [open]", got)
			}
			var plugin, route bool
			for _, d := range dropped {
				plugin = plugin || d.Path == "plugins[0]" && strings.Contains(d.Why, tc.why)
				route = route || d.Path == "services[0].routes[1]" && strings.Contains(d.Why, "without it the route would let through")
			}
			if !plugin || !route {
				t.Errorf("dropped %v; want plugins[0] (%q) and the route it guards", dropped, tc.why)
			}
		})
	}
	// A global guard that does not convert leaves every route out.
	doc, _ := convert(t, base+"plugins:\n- name: ldap-auth\n")
	if len(doc.Routes) != 0 {
		t.Errorf("routes %v; want none under an unconverted global guard", routeNames(doc))
	}
}

func TestConvertKeepsNoSecretInTheClear(t *testing.T) {
	const key, password = "0123456789abcdef-the-key", "the-password-1"
	in := `_format_version: "3.0"
consumers:
- username: c
  keyauth_credentials: [{key: ` + key + `}]
  basicauth_credentials: [{username: c-login, password: ` + password + `}]
`
	doc, _ := convert(t, in)
	out, _ := json.Marshal(doc)
	if strings.Contains(string(out), key) || strings.Contains(string(out), password) {
		t.Fatalf("the converted document holds a secret in the clear: %s", out)
	}
	creds := doc.Consumers[0].Credentials
	if len(creds) != 2 {
		t.Fatalf("credentials %+v; want 2", creds)
	}
	if creds[0].KeyHash != gatehouse.HashToken(key) {
		t.Errorf("key_hash %q; want HashToken(key)", creds[0].KeyHash)
	}
	if !gatehouse.PasswordMatches(password, []byte(creds[1].PasswordHash)) || gatehouse.PasswordMatches("other-password", []byte(creds[1].PasswordHash)) {
		t.Errorf("password_hash %q does not verify the password alone", creds[1].PasswordHash)
	}
}

// TestConvertAppliesPluginsWhereKongDid: Kong picks each plugin by name
// from the most specific level; gatehouse each policy type. A route's jwt
// beside its service's key-auth (both auth in gatehouse) must keep both.
func TestConvertAppliesPluginsWhereKongDid(t *testing.T) {
	in := `_format_version: "3.0"
services:
- name: s
  url: http://s.internal
  plugins:
  - name: key-auth
  - name: rate-limiting
    config: {minute: 10}
  routes:
  - name: both
    paths: [/both]
    plugins:
    - name: basic-auth
  - name: own-limit
    paths: [/own]
    plugins:
    - name: rate-limiting
      config: {second: 1}
  - name: inherits
    paths: [/inherits]
- name: t
  url: http://t.internal
  routes:
  - name: global-only
    paths: [/t]
plugins:
- name: ip-restriction
  config: {deny: [192.0.2.1]}
- name: request-size-limiting
  config: {allowed_payload_size: 1}
`
	doc, dropped := convert(t, in)
	if len(dropped) > 0 {
		t.Fatalf("dropped %v", dropped)
	}
	routes := map[string]*gatehouse.Route{}
	for _, r := range doc.Routes {
		routes[r.Name] = r
	}
	for _, tc := range []struct {
		route    string
		policies []string
	}{
		{"both", []string{"basic-auth-both", "key-auth-s"}},
		{"own-limit", []string{"rate-limiting-own-limit-second"}},
		{"inherits", nil},
		{"global-only", nil},
	} {
		if got := routes[tc.route].Policies; !slices.Equal(got, tc.policies) && !(len(got) == 0 && tc.policies == nil) {
			t.Errorf("route %s lists %v; want %v", tc.route, got, tc.policies)
		}
		if got := routes[tc.route].MaxBodyBytes; got != 1<<20 {
			t.Errorf("route %s max_body_bytes %d; want 1 MiB from the global request-size-limiting", tc.route, got)
		}
	}
	var global []string
	for _, p := range doc.Policies {
		if p.Global {
			global = append(global, p.ID)
		}
	}
	if !slices.Equal(global, []string{"ip-restriction"}) {
		t.Errorf("global policies %v; want [ip-restriction]", global)
	}
}

func TestConvertMapsPluginConfigs(t *testing.T) {
	in := `_format_version: "3.0"
services:
- name: s
  url: http://s.internal
  routes: [{name: r, paths: [/r]}]
  plugins:
  - name: rate-limiting
    config: {second: 2, minute: 50, limit_by: ip, policy: redis, fault_tolerant: false}
  - name: key-auth
    config: {key_names: [x-key], key_in_query: false, realm: api}
  - name: acl
    config: {deny: [blocked]}
  - name: request-termination
    config: {message: down for upgrade}
consumers:
- username: u
  jwt_secrets: [{key: u-key, secret: 0123456789abcdef0123456789abcdef}]
plugins:
- name: jwt
  config: {claims_to_verify: [exp, nbf], key_claim_name: iss}
`
	doc, _ := convert(t, in)
	cfgs := map[string]string{}
	for _, p := range doc.Policies {
		cfgs[p.ID] = string(p.Config)
	}
	for id, want := range map[string]string{
		"rate-limiting-s-second": `{"requests":2,"per":"second","burst":2,"by":"ip","store":"redis","fallback":"local"}`,
		"rate-limiting-s-minute": `{"requests":50,"per":"minute","burst":50,"by":"ip","store":"redis","fallback":"local"}`,
		"key-auth-s":             `{"key_auth":{"header":"x-key","query":""},"realm":"api","consumer_id_header":"X-Consumer-ID","consumer_name_header":"X-Consumer-Username","groups_header":"X-Consumer-Groups"}`,
		"acl-s":                  `{"allow":[],"deny":["blocked"],"allow_consumers":[],"deny_consumers":[]}`,
		"request-termination-s":  `{"message":"down for upgrade","retry_after_seconds":300}`,
		"jwt":                    `{"jwt":{"keys":[{"kid":"u-key","alg":"HS256","secret":"0123456789abcdef0123456789abcdef"}],"jwks_url":"","jwks_cache_seconds":300,"issuer":"","audience":"","consumer_claim":"iss","leeway_seconds":30,"require_exp":true},"realm":"gatehouse","consumer_id_header":"X-Consumer-ID","consumer_name_header":"X-Consumer-Username","groups_header":"X-Consumer-Groups"}`,
	} {
		if cfgs[id] != want {
			t.Errorf("policy %s config\n got %s\nwant %s", id, cfgs[id], want)
		}
	}
	// Kong finds a jwt credential by iss = its key: the consumer's id is
	// that key, so gatehouse's consumer_claim iss names it.
	if doc.Consumers[0].ID != "u-key" {
		t.Errorf("consumer id %q; want its jwt key u-key", doc.Consumers[0].ID)
	}
}

func TestConvertMapsServicesAndUpstreams(t *testing.T) {
	in := `_format_version: "3.0"
upstreams:
- name: pool
  targets:
  - {target: "a.internal:8080", weight: 3000}
  - {target: "b.internal", weight: 1500}
  - {target: "c.internal:9090", weight: 0}
services:
- {name: by-url, url: "https://secure.internal/base"}
- {name: by-fields, protocol: https, host: api.internal, port: 8443, path: /v2}
- {name: fields-default-port, protocol: https, host: api.internal}
- {name: pooled, host: pool, path: /p, retries: 2, connect_timeout: 1000, read_timeout: 2000}
- {url: "http://unnamed.internal"}
`
	doc, dropped := convert(t, in)
	want := map[string]string{
		"by-url":              "https://secure.internal/base",
		"by-fields":           "https://api.internal:8443/v2",
		"fields-default-port": "https://api.internal:80",
		"unnamed.internal":    "http://unnamed.internal",
	}
	for _, s := range doc.Services {
		if u, ok := want[s.Name]; ok && s.URL != u {
			t.Errorf("service %s url %q; want %q", s.Name, s.URL, u)
		}
		if s.Name != "pooled" {
			continue
		}
		got, _ := json.Marshal(s.Targets)
		if string(got) != `[{"url":"http://a.internal:8080/p","weight":1000},{"url":"http://b.internal:8000/p","weight":500},{"url":"http://c.internal:9090/p","weight":0}]` {
			t.Errorf("targets %s", got)
		}
		if s.Retries != 2 || s.ConnectTimeoutMS != 1000 || s.ReadTimeoutMS != 2000 {
			t.Errorf("retries %d, timeouts %d %d", s.Retries, s.ConnectTimeoutMS, s.ReadTimeoutMS)
		}
	}
	if len(doc.Services) != 5 {
		t.Errorf("services %d; want 5", len(doc.Services))
	}
	if len(dropped) != 1 || !strings.Contains(dropped[0].Why, "scaled") {
		t.Errorf("dropped %v; want the weights' scaling reported", dropped)
	}
}

// FuzzConvert: no input makes Convert panic, and what it converts
// gatehouse accepts.
func FuzzConvert(f *testing.F) {
	for _, s := range []string{
		"_format_version: \"3.0\"\nservices:\n- name: s\n  url: http://s\n  routes:\n  - paths: ['~/a/(?<x>[^/]+)$']\n",
		"_format_version: \"2.1\"\nroutes:\n- service: s\n  paths: [/a]\nplugins:\n- name: rate-limiting\n  config: {second: 1}\n",
		"{\"_format_version\": \"1.1\", \"consumers\": [{\"username\": \"u\", \"acls\": [{\"group\": \"g\"}]}]}",
		"_format_version: '3.0'\na: &a [*a]\n",
		"_format_version: '3.0'\nservices: &s\n- name: x\n  url: http://x\n  routes: *s\n",
	} {
		f.Add([]byte(s))
	}
	for _, name := range []string{"kong-1.1.yml", "kong-2.1.yml", "kong-3.0.yml", "kong-2.1.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, _, err := Convert(data, "fuzz.yml")
		if err != nil {
			return
		}
		checkValid(t, doc)
	})
}

// TestConvertBoundsAliasExpansion: a small file whose aliases name one
// entity millions of times is refused, not read for minutes.
func TestConvertBoundsAliasExpansion(t *testing.T) {
	var b strings.Builder
	b.WriteString("_format_version: \"3.0\"\nx:\n  p: &p {name: cors, config: {origins: [a, b, c, d]}}\n")
	b.WriteString("  r: &r {name: r, paths: [/r], plugins: [" + strings.TrimSuffix(strings.Repeat("*p, ", 200), ", ") + "]}\n")
	b.WriteString("  s: &s {name: s, url: 'http://s', routes: [" + strings.TrimSuffix(strings.Repeat("*r, ", 200), ", ") + "]}\n")
	b.WriteString("services: [" + strings.TrimSuffix(strings.Repeat("*s, ", 200), ", ") + "]\n")
	_, _, err := Convert([]byte(b.String()), "in.yml")
	if err == nil || !strings.Contains(err.Error(), fmt.Sprint(maxVisits)) {
		t.Fatalf("err = %v; want the bound on values read", err)
	}
}

// TestConvertCarriesTags: an entity's tags, and decK's _info.select_tags
// on every entity, as a team's sync selects them.
func TestConvertCarriesTags(t *testing.T) {
	in := `_format_version: "3.0"
_info:
  select_tags: [team-a]
services:
- name: s
  url: http://s.internal
  tags: [web, team-a]
  routes: [{name: r, paths: [/r]}]
  plugins: [{name: basic-auth, tags: [auth]}]
consumers:
- username: c
  basicauth_credentials: [{username: c, password: password-1, tags: [login]}]
`
	doc, dropped := convert(t, in)
	if len(dropped) > 0 {
		t.Fatalf("dropped %v", dropped)
	}
	for _, tc := range []struct {
		what string
		got  []string
		want []string
	}{
		{"service", doc.Services[0].Tags, []string{"web", "team-a"}},
		{"route", doc.Routes[0].Tags, []string{"team-a"}},
		{"policy", doc.Policies[0].Tags, []string{"auth", "team-a"}},
		{"consumer", doc.Consumers[0].Tags, []string{"team-a"}},
		{"credential", doc.Consumers[0].Credentials[0].Tags, []string{"login", "team-a"}},
	} {
		if !slices.Equal(tc.got, tc.want) {
			t.Errorf("%s tags %v; want %v", tc.what, tc.got, tc.want)
		}
	}
}
