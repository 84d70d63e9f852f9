package gatehouse_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/gatehouse/gatehouse"
)

func TestCORSPolicyCheck(t *testing.T) {
	cors := func(cfg string) string { return `{"name":"p","type":"cors","config":` + cfg + `}` }
	runChecks(t, gatehouse.KindPolicy, []checkCase{
		{desc: "exact origins", body: cors(`{"allow_origins":["https://app.example.com","http://localhost:3000","http://[::1]:8080","http://127.0.0.1:5173"]}`)},
		{desc: "any origin", body: cors(`{"allow_origins":["*"]}`)},
		{desc: "subdomain pattern with a port", body: cors(`{"allow_origins":["https://*.example.com:8443"]}`)},
		{desc: "an app shell's scheme", body: cors(`{"allow_origins":["capacitor://localhost"]}`)},
		{desc: "everything set", body: cors(`{"allow_origins":["https://a.example"],"allow_methods":["GET","PUT","DELETE"],
			"allow_headers":["Content-Type","Authorization","*"],"expose_headers":["ETag","Location"],"allow_credentials":true,"max_age_seconds":86400}`)},
		{desc: "no origins", body: cors(`{}`), invalid: []string{"config.allow_origins"}},
		{desc: "an empty list of origins", body: cors(`{"allow_origins":[]}`), invalid: []string{"config.allow_origins"}},
		{desc: "origin with a path", body: cors(`{"allow_origins":["https://a.example/"]}`), invalid: []string{"config.allow_origins[0]"}},
		{desc: "origin with a path and a query", body: cors(`{"allow_origins":["https://a.example/app?x=1"]}`), invalid: []string{"config.allow_origins[0]"}},
		{desc: "origin without a scheme", body: cors(`{"allow_origins":["a.example"]}`), invalid: []string{"config.allow_origins[0]"}},
		{desc: "origin with user information", body: cors(`{"allow_origins":["https://u@a.example"]}`), invalid: []string{"config.allow_origins[0]"}},
		{desc: "origin null", body: cors(`{"allow_origins":["null"]}`), invalid: []string{"config.allow_origins[0]"}},
		{desc: "origin with port zero and out of range", body: cors(`{"allow_origins":["http://a.example:0","http://a.example:65536","http://a.example:"]}`),
			invalid: []string{"config.allow_origins[0]", "config.allow_origins[1]", "config.allow_origins[2]"}},
		{desc: "pattern over a top-level domain", body: cors(`{"allow_origins":["https://*.com"]}`), invalid: []string{"config.allow_origins[0]"}},
		{desc: "wildcard inside a host", body: cors(`{"allow_origins":["https://app-*.example.com","https://*"]}`),
			invalid: []string{"config.allow_origins[0]", "config.allow_origins[1]"}},
		{desc: "origin repeated in another spelling", body: cors(`{"allow_origins":["https://a.example","HTTPS://A.example:443"]}`), invalid: []string{"config.allow_origins[1]"}},
		{desc: "any origin beside others", body: cors(`{"allow_origins":["*","https://a.example"]}`), invalid: []string{"config.allow_origins[0]"}},
		{desc: "any origin with credentials", body: cors(`{"allow_origins":["*"],"allow_credentials":true}`), unprocessable: []string{"config.allow_origins[0]"}},
		{desc: "every header exposed with credentials", body: cors(`{"allow_origins":["https://a.example"],"expose_headers":["*"],"allow_credentials":true}`),
			unprocessable: []string{"config.expose_headers"}},
		{desc: "methods gatehouse does not serve or browsers never send", body: cors(`{"allow_origins":["*"],"allow_methods":["get","TRACE","BREW"]}`),
			invalid: []string{"config.allow_methods[0]", "config.allow_methods[1]", "config.allow_methods[2]"}},
		{desc: "no methods", body: cors(`{"allow_origins":["*"],"allow_methods":[]}`), invalid: []string{"config.allow_methods"}},
		{desc: "any method beside others", body: cors(`{"allow_origins":["*"],"allow_methods":["*","GET"]}`), invalid: []string{"config.allow_methods[0]"}},
		{desc: "header names that are not tokens", body: cors(`{"allow_origins":["*"],"allow_headers":["X Trace"],"expose_headers":["a:b"]}`),
			invalid: []string{"config.allow_headers[0]", "config.expose_headers[0]"}},
		{desc: "header repeated in another case", body: cors(`{"allow_origins":["*"],"allow_headers":["X-Trace","x-trace"]}`), invalid: []string{"config.allow_headers[1]"}},
		{desc: "every header exposed beside others", body: cors(`{"allow_origins":["*"],"expose_headers":["*","ETag"]}`), invalid: []string{"config.expose_headers[0]"}},
		{desc: "max age over a day", body: cors(`{"allow_origins":["*"],"max_age_seconds":86401}`), invalid: []string{"config.max_age_seconds"}},
		{desc: "max age negative", body: cors(`{"allow_origins":["*"],"max_age_seconds":-1}`), invalid: []string{"config.max_age_seconds"}},
		{desc: "too many origins", body: cors(`{"allow_origins":` + jsonList(gatehouse.MaxCORSEntries+1, `"https://a%d.example"`) + `}`), invalid: []string{"config.allow_origins"}},
		{desc: "credentials not a boolean", body: cors(`{"allow_origins":["https://a.example"],"allow_credentials":"yes"}`), invalid: []string{"config.allow_credentials"}},
	})
}

// What is read back is what the data plane compares with the Origin
// browsers send: lower case, without the scheme's default port.
func TestCORSPolicyIsReadBackAsBrowsersSendOrigins(t *testing.T) {
	p := gatehouse.NewPolicy()
	if err := json.Unmarshal([]byte(`{"name":"p","type":"cors","config":{"allow_origins":
		["HTTPS://App.Example.com:443","http://localhost:80","http://[0:0::1]:8080","https://*.Example.com","https://a.example:8443"]}}`), p); err != nil {
		t.Fatal(err)
	}
	if bad, semantic := gatehouse.NormalizeAndCheck(p); len(bad)+len(semantic) > 0 {
		t.Fatalf("check: %v %v", bad, semantic)
	}
	cfg, err := p.DecodeConfig()
	if err != nil {
		t.Fatal(err)
	}
	want := &gatehouse.CORSConfig{
		AllowOrigins:  []string{"https://app.example.com", "http://localhost", "http://[::1]:8080", "https://*.example.com", "https://a.example:8443"},
		AllowMethods:  []string{"*"},
		AllowHeaders:  []string{},
		ExposeHeaders: []string{},
		MaxAgeSeconds: 600,
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("read back %s;\nwant %+v", p.Config, want)
	}
}
