package kong

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/config"
	"github.com/gatehouse/gatehouse/policy"
)

// corsIn is a Kong file with one route under a cors plugin whose config
// is cfg (YAML flow mapping).
func corsIn(cfg string) string {
	return "_format_version: \"3.0\"\nservices:\n- name: s\n  url: http://s.internal\n  routes:\n  - name: r\n    paths: [/r]\n    plugins:\n    - name: cors\n      config: " + cfg + "\n"
}

// corsPolicy returns the converted file's one cors policy, failing t if
// there is none.
func corsPolicy(t *testing.T, doc *config.Document) *gatehouse.Policy {
	t.Helper()
	for _, p := range doc.Policies {
		if p.Type == gatehouse.PolicyCORS {
			return p
		}
	}
	t.Fatalf("no cors policy among %d policies", len(doc.Policies))
	return nil
}

// TestConvertMapsCORSConfig: each member of Kong's cors config, after
// Kong's cors plugin page and handler, and its gatehouse equivalent.
func TestConvertMapsCORSConfig(t *testing.T) {
	for _, tc := range []struct {
		desc, cfg, want string
	}{
		{"Kong's defaults: any origin, any method, the headers asked for, no Max-Age",
			"{}",
			`{"allow_origins":["*"],"allow_methods":["*"],"allow_headers":["*","Authorization"],"expose_headers":[],"allow_credentials":false,"max_age_seconds":5}`},
		{"star among origins allows every one",
			"{origins: [https://a.example.com, '*']}",
			`{"allow_origins":["*"],"allow_methods":["*"],"allow_headers":["*","Authorization"],"expose_headers":[],"allow_credentials":false,"max_age_seconds":5}`},
		{"origins as browsers send them, a regex spelling one origin, repeats once",
			`{origins: ['HTTPS://App.Example.com:443', 'http://localhost:3000', '^https://shop\.example\.com$', 'https://app.example.com']}`,
			`{"allow_origins":["https://app.example.com","http://localhost:3000","https://shop.example.com"],"allow_methods":["*"],"allow_headers":["*","Authorization"],"expose_headers":[],"allow_credentials":false,"max_age_seconds":5}`},
		{"methods, headers, exposed headers, credentials and max age",
			"{origins: [https://a.example.com], methods: [GET, POST, GET], headers: [Content-Type, content-type, X-Trace], exposed_headers: [X-Id], credentials: true, max_age: 3600}",
			`{"allow_origins":["https://a.example.com"],"allow_methods":["GET","POST","HEAD"],"allow_headers":["Content-Type","X-Trace"],"expose_headers":["X-Id"],"allow_credentials":true,"max_age_seconds":3600}`},
		{"an empty headers list echoes what is asked, as none does",
			"{headers: [], max_age: 0}",
			`{"allow_origins":["*"],"allow_methods":["*"],"allow_headers":["*","Authorization"],"expose_headers":[],"allow_credentials":false,"max_age_seconds":0}`},
		{"star among exposed headers without credentials exposes all",
			"{exposed_headers: [X-Id, '*']}",
			`{"allow_origins":["*"],"allow_methods":["*"],"allow_headers":["*","Authorization"],"expose_headers":["*"],"allow_credentials":false,"max_age_seconds":5}`},
		{"star headers with credentials stood for none",
			"{origins: [https://a.example.com], credentials: true, headers: ['*'], exposed_headers: ['*', X-Id]}",
			`{"allow_origins":["https://a.example.com"],"allow_methods":["*"],"allow_headers":[],"expose_headers":["X-Id"],"allow_credentials":true,"max_age_seconds":5}`},
		{"TRACE left out of the methods",
			"{methods: [GET, TRACE, CONNECT]}",
			`{"allow_origins":["*"],"allow_methods":["GET","HEAD","POST"],"allow_headers":["*","Authorization"],"expose_headers":[],"allow_credentials":false,"max_age_seconds":5}`},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			doc, _ := convert(t, corsIn(tc.cfg))
			p := corsPolicy(t, doc)
			if got := string(p.Config); got != tc.want {
				t.Errorf("config\n got %s\nwant %s", got, tc.want)
			}
			if len(doc.Routes) != 1 || len(doc.Routes[0].Policies) != 1 || doc.Routes[0].Policies[0] != p.ID {
				t.Errorf("routes %v; want route r listing %s", routeNames(doc), p.ID)
			}
		})
	}
}

// TestConvertedCORSAnswersPreflightsAsKongDid compiles the converted
// policy as the data plane does and puts to it the preflights Kong's
// handler answered: what Kong allowed gatehouse allows, and what browsers
// refused after Kong's answer gatehouse refuses itself.
func TestConvertedCORSAnswersPreflightsAsKongDid(t *testing.T) {
	for _, tc := range []struct {
		desc, cfg               string
		origin, method, headers string
		allowed                 bool
	}{
		{"no headers configured: Kong echoed any asked, Authorization too", "{}", "https://x.example", "PUT", "authorization,x-anything", true},
		{"listed origin", "{origins: [https://a.example.com], headers: [X-Trace]}", "https://a.example.com", "GET", "x-trace", true},
		{"origin written with its default port", "{origins: ['https://a.example.com:443']}", "https://a.example.com", "GET", "", true},
		{"unlisted origin", "{origins: [https://a.example.com]}", "https://b.example.com", "GET", "", false},
		{"origin of a dropped regex", "{origins: [https://a.example.com, 'https://.*\\.example\\.com']}", "https://b.example.com", "GET", "", false},
		{"header not listed", "{headers: [X-Trace]}", "https://a.example.com", "GET", "x-other", false},
		{"method not listed", "{methods: [GET]}", "https://a.example.com", "DELETE", "", false},
		{"a safelisted method browsers took whatever Kong listed", "{methods: [PUT], headers: [X-Trace]}", "https://a.example.com", "GET", "x-trace", true},
		{"no method listed", "{methods: []}", "https://a.example.com", "POST", "", true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			doc, _ := convert(t, corsIn(tc.cfg))
			cfg, err := corsPolicy(t, doc).DecodeConfig()
			if err != nil {
				t.Fatal(err)
			}
			c := policy.NewCORS(cfg.(*gatehouse.CORSConfig))
			req := http.Header{"Origin": {tc.origin}, "Access-Control-Request-Method": {tc.method}}
			if tc.headers != "" {
				req["Access-Control-Request-Headers"] = []string{tc.headers}
			}
			answer := http.Header{}
			err = c.Preflight(answer, req)
			if got := err == nil; got != tc.allowed {
				t.Fatalf("preflight allowed %v (%v); want %v", got, err, tc.allowed)
			}
			if tc.allowed {
				if got := answer.Get("Access-Control-Allow-Origin"); got != tc.origin && got != "*" {
					t.Errorf("Access-Control-Allow-Origin %q; want %q", got, tc.origin)
				}
				for h := range strings.SplitSeq(tc.headers, ",") {
					if h != "" && !strings.Contains(strings.ToLower(strings.Join(answer["Access-Control-Allow-Headers"], ",")), h) {
						t.Errorf("Access-Control-Allow-Headers %q; want %s among them", answer["Access-Control-Allow-Headers"], h)
					}
				}
			}
		})
	}
}
