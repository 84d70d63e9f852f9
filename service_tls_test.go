package gatehouse_test

import (
	"testing"

	"github.com/gatehouse/gatehouse"
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
