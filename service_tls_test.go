package gatehouse_test

import (
	"slices"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/testpki"
)

// TestServiceHideLeavesASharedTLSMemberItsKey: hiding a service's client
// key for an answer copies its TLS member, so a revision the data plane
// holds keeps the key it presents; KeepHidden then gives an update that
// omits the key the hidden one.
func TestServiceHideLeavesASharedTLSMemberItsKey(t *testing.T) {
	tlsMember := &gatehouse.ServiceTLS{ClientCertificate: "cert", ClientKey: "key", MinVersion: "1.2", Verify: true}
	applied := &gatehouse.Service{Name: "s", TLS: tlsMember}
	rev := &gatehouse.Revision{Services: []*gatehouse.Service{applied}}
	shown := *applied
	shownRev := &gatehouse.Revision{Services: []*gatehouse.Service{&shown}}
	shownRev.Redact()
	if shown.TLS.ClientKey != "" {
		t.Fatalf("shown key %q; want none", shown.TLS.ClientKey)
	}
	if rev.Services[0].TLS.ClientKey != "key" {
		t.Fatalf("the applied service's key is %q after another copy was shown; want it kept", rev.Services[0].TLS.ClientKey)
	}
	for _, tt := range []struct {
		desc string
		next *gatehouse.ServiceTLS
		want string
	}{
		{"key omitted with the certificate", &gatehouse.ServiceTLS{ClientCertificate: "cert"}, "key"},
		{"key given", &gatehouse.ServiceTLS{ClientCertificate: "cert", ClientKey: "new"}, "new"},
		{"no certificate: nothing to keep a key for", &gatehouse.ServiceTLS{}, ""},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			next := &gatehouse.Service{Name: "s", TLS: tt.next}
			gatehouse.KeepHidden(next, &shown)
			if next.TLS.ClientKey != tt.want {
				t.Fatalf("got key %q; want %q", next.TLS.ClientKey, tt.want)
			}
		})
	}
}

// TestServiceTLSPEMFieldsRefuseTextAfterTheirLastBlock: each PEM field,
// the client key as the certificates, is refused (422) with text after
// its last block that is not one, which would otherwise be stored and
// shown as if it meant something; whitespace there is fine.
func TestServiceTLSPEMFieldsRefuseTextAfterTheirLastBlock(t *testing.T) {
	ca := testpki.NewCA(t, "gatehouse test CA")
	client := ca.Client(t, "gatehouse")
	const garbage = "-----END-ish trailing text\n"
	for _, tt := range []struct {
		desc      string
		tls       gatehouse.ServiceTLS
		wantField string // "" when valid
	}{
		{desc: "all fields clean", tls: gatehouse.ServiceTLS{CABundle: ca.PEM, ClientCertificate: client.CertPEM, ClientKey: client.KeyPEM}},
		{desc: "whitespace after the key", tls: gatehouse.ServiceTLS{ClientCertificate: client.CertPEM, ClientKey: client.KeyPEM + "\n\t \n"}},
		{desc: "text after the key", tls: gatehouse.ServiceTLS{ClientCertificate: client.CertPEM, ClientKey: client.KeyPEM + garbage}, wantField: "tls.client_key"},
		{desc: "text after the client certificate", tls: gatehouse.ServiceTLS{ClientCertificate: client.CertPEM + garbage, ClientKey: client.KeyPEM}, wantField: "tls.client_certificate"},
		{desc: "text after the CA bundle", tls: gatehouse.ServiceTLS{CABundle: ca.PEM + garbage}, wantField: "tls.ca_bundle"},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			tt.tls.MinVersion, tt.tls.Verify = gatehouse.TLSVersion12, true
			svc := gatehouse.NewService()
			svc.Name, svc.URL, svc.TLS = "s", "https://api.internal", &tt.tls
			bad, semantic := svc.Check()
			if len(bad) > 0 {
				t.Fatalf("400 fields %v; want none", bad)
			}
			var got []string
			for _, f := range semantic {
				got = append(got, f.Field)
			}
			switch {
			case tt.wantField == "" && len(got) > 0:
				t.Fatalf("422 fields %v; want none", semantic)
			case tt.wantField != "" && !slices.Equal(got, []string{tt.wantField}):
				t.Fatalf("422 fields %v; want only %s", semantic, tt.wantField)
			}
		})
	}
}
