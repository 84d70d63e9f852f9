package kong

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// newPEM returns a fresh self-signed certificate for cn and its key, in
// PEM.
func newPEM(t *testing.T, cn string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}

// block writes a PEM text as a YAML literal block at indent.
func block(pemText, indent string) string {
	return "|\n" + indent + strings.ReplaceAll(strings.TrimSpace(pemText), "\n", "\n"+indent) + "\n"
}

// TestConvertMapsServiceTLS: Kong's service TLS members, as its services
// reference documents them, and the service's tls they become.
func TestConvertMapsServiceTLS(t *testing.T) {
	ca1, _ := newPEM(t, "CA one")
	ca2, _ := newPEM(t, "CA two")
	client, key := newPEM(t, "kong-gateway")
	entities := "certificates:\n- id: 2b7c9e4a-5d6f-4a8b-9c0d-1e2f3a4b5c6d\n  snis: [api.example.com]\n  cert: " + block(client, "    ") + "  key: " + block(key, "    ") +
		"ca_certificates:\n- id: ca-1\n  cert: " + block(ca1, "    ") + "- id: ca-2\n  cert: " + block(ca2, "    ")
	for _, tc := range []struct {
		desc, service string
		want          *gatehouse.ServiceTLS // nil: Kong's defaults, no tls
		dropped       []string              // paths reported, in order
	}{
		{"Kong's defaults", "url: https://s.internal", nil, []string{"certificates[0]", "ca_certificates[0]", "ca_certificates[1]"}},
		{"tls_verify true is gatehouse's default", "{url: https://s.internal, tls_verify: true}", nil, []string{"certificates[0]", "ca_certificates[0]", "ca_certificates[1]"}},
		{"tls_verify false", "{url: https://s.internal, tls_verify: false}",
			&gatehouse.ServiceTLS{MinVersion: "1.2"}, []string{"services[0].tls_verify", "certificates[0]", "ca_certificates[0]", "ca_certificates[1]"}},
		{"ca_certificates trusted alone, in their order", "{url: https://s.internal, ca_certificates: [ca-2, ca-1]}",
			&gatehouse.ServiceTLS{CABundle: ca2 + ca1, CAOnly: true, MinVersion: "1.2", Verify: true}, []string{"certificates[0]"}},
		{"client_certificate with its key, reported in the clear", "{url: https://s.internal, client_certificate: {id: 2b7c9e4a-5d6f-4a8b-9c0d-1e2f3a4b5c6d}}",
			&gatehouse.ServiceTLS{ClientCertificate: client, ClientKey: key, MinVersion: "1.2", Verify: true},
			[]string{"services[0].client_certificate", "certificates[0].snis", "ca_certificates[0]", "ca_certificates[1]"}},
		{"an http service's TLS members are unused, as in Kong", "{url: http://s.internal, tls_verify: false, tls_verify_depth: 1, ca_certificates: [ca-1], client_certificate: 2b7c9e4a-5d6f-4a8b-9c0d-1e2f3a4b5c6d}",
			nil, []string{"certificates[0]", "ca_certificates[0]", "ca_certificates[1]"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			in := "_format_version: \"3.0\"\nservices:\n- " + tc.service + "\n" + entities
			doc, dropped := convert(t, in)
			if len(doc.Services) != 1 {
				t.Fatalf("services %d; dropped %v", len(doc.Services), dropped)
			}
			got := doc.Services[0].TLS
			switch {
			case tc.want == nil && got != nil:
				t.Errorf("tls %+v; want none", got)
			case tc.want != nil && (got == nil || *got != *tc.want):
				t.Errorf("tls %+v; want %+v", got, tc.want)
			}
			var paths []string
			for _, d := range dropped {
				paths = append(paths, d.Path)
			}
			if strings.Join(paths, " ") != strings.Join(tc.dropped, " ") {
				t.Errorf("dropped %v; want %v reported", dropped, tc.dropped)
			}
		})
	}
}

// TestConvertReportsTheClientKeyInTheClear: the report names the service
// and the environment variable to move the key to.
func TestConvertReportsTheClientKeyInTheClear(t *testing.T) {
	client, key := newPEM(t, "kong-gateway")
	in := "_format_version: \"3.0\"\nservices:\n- {name: pay.v1, url: https://s.internal, client_certificate: c1}\ncertificates:\n- id: c1\n  cert: " + block(client, "    ") + "  key: " + block(key, "    ")
	_, dropped := convert(t, in)
	want := `service "pay.v1" holds the private key of certificate "c1" (tls.client_key) in the clear, as the data plane needs it: move it out of the file, to ${{ env "GATEHOUSE_VAR_TLS_KEY_PAY_V1" }}`
	if len(dropped) != 1 || dropped[0].Why != want || dropped[0].Pos.Line != 3 {
		t.Errorf("dropped %v; want at line 3: %s", dropped, want)
	}
}
