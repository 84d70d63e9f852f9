package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/testpki"
)

// tlsService is a service on an https upstream with the tls member given.
func tlsService(id string, tls map[string]any) string {
	b, _ := json.Marshal(map[string]any{"id": id, "name": id, "url": "https://api.example:8443", "tls": tls})
	return string(b)
}

// TestServiceTLSClientKeyIsWriteOnly proves that no read shows a
// service's TLS client key (not the write's own answer, GET, a list, a
// revision, nor the configuration dump in JSON or YAML), that an update
// or a sync omitting it keeps the stored one, and that the data plane is
// given it.
func TestServiceTLSClientKeyIsWriteOnly(t *testing.T) {
	api := newTestAPI(t)
	ca := testpki.NewCA(t, "test CA")
	client := ca.Client(t, "gatehouse")
	other := ca.Client(t, "other")
	// A line of the key's base64 stands for the key: no answer may carry it.
	keyLine := func(pemKey string) string { return strings.Split(pemKey, "\n")[1] }
	shown := func(step string, r *response) {
		t.Helper()
		for _, k := range []string{client.KeyPEM, other.KeyPEM} {
			if strings.Contains(string(r.body), keyLine(k)) || strings.Contains(string(r.body), "client_key") {
				t.Fatalf("%s: the client key is in the answer: %s", step, r.body)
			}
		}
	}
	stored := func() string {
		t.Helper()
		rec, err := api.store.Get(context.Background(), gatehouse.KindService, "mtls")
		if err != nil {
			t.Fatal(err)
		}
		return string(rec.Body)
	}
	svc := tlsService("mtls", map[string]any{"ca_bundle": ca.PEM, "client_certificate": client.CertPEM, "client_key": client.KeyPEM})
	shown("POST", api.must(201, "POST", "/admin/v1/services", svc))
	get := api.must(200, "GET", "/admin/v1/services/mtls", "")
	shown("GET", get)
	if tls, _ := get.json()["tls"].(map[string]any); tls["client_certificate"] != client.CertPEM {
		t.Fatalf("GET tls %v; want the client certificate shown", tls)
	}
	shown("list", api.must(200, "GET", "/admin/v1/services", ""))

	// What a client read back, sent again, keeps the key.
	shown("PUT", api.must(200, "PUT", "/admin/v1/services/mtls", string(get.body)))
	shown("PATCH", api.must(200, "PATCH", "/admin/v1/services/mtls", `{"retries":2}`, h("Content-Type", "application/merge-patch+json")))
	if !strings.Contains(stored(), keyLine(client.KeyPEM)) {
		t.Fatalf("stored %s; want the key kept", stored())
	}
	// A new certificate without its key keeps the old key, which does not
	// match it: 422 on the key.
	p := assertProblem(t, api.do("PATCH", "/admin/v1/services/mtls", fmt.Sprintf(`{"tls":{"client_certificate":%q}}`, other.CertPEM),
		h("Content-Type", "application/merge-patch+json")), 422)
	if fields := fmt.Sprint(p["errors"]); !strings.Contains(fields, "tls.client_key") {
		t.Fatalf("errors %s; want tls.client_key", fields)
	}

	// The dump omits the key; syncing the dump keeps it.
	for _, accept := range []string{"application/json", "application/yaml"} {
		shown("config dump as "+accept, api.must(200, "GET", configPath, "", h("Accept", accept)))
	}
	dump := api.must(200, "GET", configPath, "")
	api.must(200, "PUT", configPath, string(dump.body))
	if !strings.Contains(stored(), keyLine(client.KeyPEM)) {
		t.Fatalf("after syncing the dump, stored %s; want the key kept", stored())
	}

	api.deployAndWait(`{}`)
	shown("revision", api.must(200, "GET", "/admin/v1/revisions/1", ""))
	shown("revisions", api.must(200, "GET", "/admin/v1/revisions", ""))
	rev, _ := api.applier.last()
	if rev == nil || len(rev.Services) != 1 || rev.Services[0].TLS == nil || rev.Services[0].TLS.ClientKey != client.KeyPEM {
		t.Fatalf("applied %+v; want the service with its key (the data plane presents it)", rev)
	}
}

// TestServiceTLSVerifyOffCarriesAWarning: a service that does not verify
// its upstream's certificate says so in every answer that shows it (the
// write's, GET, a list, a revision); one that verifies carries none, and
// warnings a client sends are not taken.
func TestServiceTLSVerifyOffCarriesAWarning(t *testing.T) {
	api := newTestAPI(t)
	warned := func(step string, r *response, want bool) {
		t.Helper()
		got := strings.Contains(string(r.body), gatehouse.WarningTLSVerifyOff)
		if got != want {
			t.Fatalf("%s: got the warning %v; want %v: %s", step, got, want, r.body)
		}
	}
	warned("POST", api.must(201, "POST", "/admin/v1/services", tlsService("insecure", map[string]any{"verify": false})), true)
	warned("GET", api.must(200, "GET", "/admin/v1/services/insecure", ""), true)
	warned("list", api.must(200, "GET", "/admin/v1/services", ""), true)
	api.deployAndWait(`{}`)
	warned("revision", api.must(200, "GET", "/admin/v1/revisions/1", ""), true)

	r := api.must(200, "PATCH", "/admin/v1/services/insecure", `{"tls":{"verify":true},"warnings":["made up"]}`,
		h("Content-Type", "application/merge-patch+json"))
	warned("PATCH to verify", r, false)
	if _, ok := r.json()["warnings"]; ok {
		t.Fatalf("PATCH answer %s; want no warnings", r.body)
	}
	created := api.must(201, "POST", "/admin/v1/services", `{"id":"plain","name":"plain","url":"http://a.example","warnings":["made up"]}`)
	if _, ok := created.json()["warnings"]; ok {
		t.Fatalf("POST answer %s; want the client's warnings dropped", created.body)
	}
}

// TestServiceTLSIsValidated: each bad tls member is refused, naming its
// field: what a schema sees with 400, what needs parsing or other fields
// with 422. Nothing is written.
func TestServiceTLSIsValidated(t *testing.T) {
	api := newTestAPI(t)
	ca := testpki.NewCA(t, "test CA")
	client := ca.Client(t, "gatehouse")
	other := ca.Client(t, "other")
	tests := []struct {
		desc      string
		body      string
		want      int
		wantField string
	}{
		{"ca_bundle not PEM", tlsService("s", map[string]any{"ca_bundle": "not a certificate"}), 422, "tls.ca_bundle"},
		{"ca_bundle a key, not a certificate", tlsService("s", map[string]any{"ca_bundle": client.KeyPEM}), 422, "tls.ca_bundle"},
		{"ca_bundle too large", tlsService("s", map[string]any{"ca_bundle": strings.Repeat(ca.PEM, gatehouse.MaxCABundleBytes/len(ca.PEM)+1)}), 400, "tls.ca_bundle"},
		{"ca_only without a bundle", tlsService("s", map[string]any{"ca_only": true}), 422, "tls.ca_only"},
		{"client certificate without key", tlsService("s", map[string]any{"client_certificate": client.CertPEM}), 400, "tls.client_key"},
		{"client key without certificate", tlsService("s", map[string]any{"client_key": client.KeyPEM}), 400, "tls.client_certificate"},
		{"client certificate not PEM", tlsService("s", map[string]any{"client_certificate": "x", "client_key": client.KeyPEM}), 422, "tls.client_certificate"},
		{"client key not PEM", tlsService("s", map[string]any{"client_certificate": client.CertPEM, "client_key": "x"}), 422, "tls.client_key"},
		{"client key of another certificate", tlsService("s", map[string]any{"client_certificate": client.CertPEM, "client_key": other.KeyPEM}), 422, "tls.client_key"},
		{"client key too large", tlsService("s", map[string]any{"client_certificate": client.CertPEM, "client_key": strings.Repeat("k", gatehouse.MaxKeyBytes+1)}), 400, "tls.client_key"},
		{"min_version 1.1", tlsService("s", map[string]any{"min_version": "1.1"}), 400, "tls.min_version"},
		{"server_name not a host name", tlsService("s", map[string]any{"server_name": "not a name"}), 422, "tls.server_name"},
		{"verify not a boolean", tlsService("s", map[string]any{"verify": "no"}), 400, "tls.verify"},
		{"unknown member", tlsService("s", map[string]any{"insecure": true}), 400, "tls.insecure"},
		{"tls on an http service", `{"id":"s","name":"s","url":"http://a.example","tls":{}}`, 422, "tls"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			before := api.snapshot()
			r := api.do("POST", "/admin/v1/services", tt.body)
			assertProblem(t, r, tt.want)
			if fields := r.problemFields(); !slices.Contains(fields, tt.wantField) {
				t.Fatalf("errors name %v; want %s", fields, tt.wantField)
			}
			api.unchanged(before)
			for _, k := range []string{client.KeyPEM, other.KeyPEM} {
				if strings.Contains(string(r.body), strings.Split(k, "\n")[1]) {
					t.Fatalf("the problem shows key material: %s", r.body)
				}
			}
		})
	}
	// Valid, it is taken: the defaults filled in.
	r := api.must(201, "POST", "/admin/v1/services", tlsService("ok", map[string]any{"ca_bundle": ca.PEM, "server_name": "api.internal"}))
	tls := r.json()["tls"].(map[string]any)
	if tls["min_version"] != "1.2" || tls["verify"] != true {
		t.Fatalf("tls %v; want min_version 1.2 and verify true by default", tls)
	}
}

// A configuration's change set shows what changes in a service's TLS, but
// never its client key (only that it changed), and carries the warning of
// tls.verify false, as the service's own answers do.
func TestConfigChangeSetsShowNoClientKeyAndWarnOfVerifyOff(t *testing.T) {
	api := newTestAPI(t)
	ca := testpki.NewCA(t, "test CA")
	client, other := ca.Client(t, "gatehouse"), ca.Client(t, "other")
	keyLine := func(pemKey string) string { return strings.Split(pemKey, "\n")[1] }
	doc := func(tls map[string]any) string {
		svc := map[string]any{"id": "mtls", "name": "mtls", "url": "https://127.0.0.1:9"}
		if tls != nil {
			svc["tls"] = tls
		}
		b, err := json.Marshal(map[string]any{"format_version": "1", "services": []any{svc}})
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	api.must(200, "PUT", "/admin/v1/config", doc(map[string]any{"ca_bundle": ca.PEM, "client_certificate": client.CertPEM, "client_key": client.KeyPEM}))
	for _, tt := range []struct {
		name string
		tls  map[string]any
	}{
		{"another key", map[string]any{"ca_bundle": ca.PEM, "client_certificate": other.CertPEM, "client_key": other.KeyPEM}},
		{"no tls at all", nil},
	} {
		for _, dry := range []string{"?dry_run=true", ""} {
			r := api.must(200, "PUT", "/admin/v1/config"+dry, doc(tt.tls))
			for _, k := range []string{client.KeyPEM, other.KeyPEM} {
				if strings.Contains(string(r.body), keyLine(k)) {
					t.Fatalf("%s%s: the change set shows a client key: %s", tt.name, dry, r.body)
				}
			}
			if !strings.Contains(string(r.body), `"(secret)"`) {
				t.Fatalf("%s%s: the change set does not say the key changed: %s", tt.name, dry, r.body)
			}
			if dry == "" {
				break // applied: the next case starts from it
			}
		}
		api.must(200, "PUT", "/admin/v1/config", doc(map[string]any{"ca_bundle": ca.PEM, "client_certificate": client.CertPEM, "client_key": client.KeyPEM}))
	}
	r := api.must(200, "PUT", "/admin/v1/config?dry_run=true", doc(map[string]any{"verify": false}))
	if !strings.Contains(string(r.body), gatehouse.WarningTLSVerifyOff) {
		t.Fatalf("the change set of a service with tls.verify false carries no warning: %s", r.body)
	}
}
