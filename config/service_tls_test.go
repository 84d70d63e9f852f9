package config

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testpki"
)

// TestCheckOfADumpLeavesAServicesClientKeyToTheStore: a dump omits a
// service's TLS client key, and validating it offline takes the omission
// as the store's key kept, as an apply does; a certificate that does not
// parse is still refused, and a key given must still match.
func TestCheckOfADumpLeavesAServicesClientKeyToTheStore(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	client, other := ca.Client(t, "gatehouse"), ca.Client(t, "other")
	doc := func(tls map[string]any) string {
		b, _ := json.Marshal(tls)
		return fmt.Sprintf(`{"format_version":"1","services":[{"id":"s","name":"s","url":"https://a.example","tls":%s}]}`, b)
	}
	tests := []struct {
		desc string
		tls  map[string]any
		want string // the problem's pointer, "" for none
	}{
		{"certificate without its key, as dumped", map[string]any{"client_certificate": client.CertPEM}, ""},
		{"certificate and its key", map[string]any{"client_certificate": client.CertPEM, "client_key": client.KeyPEM}, ""},
		{"certificate with another's key", map[string]any{"client_certificate": client.CertPEM, "client_key": other.KeyPEM}, "/services/0/tls/client_key"},
		{"certificate that does not parse", map[string]any{"client_certificate": "not PEM"}, "/services/0/tls/client_certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			problems := Check(readDoc(t, doc(tt.tls)), CheckOptions{})
			got := ""
			for _, p := range problems {
				got += p.Pointer
			}
			if got != tt.want {
				t.Fatalf("got problems %v; want one at %q", problems, tt.want)
			}
			if strings.Contains(fmt.Sprint(problems), strings.Split(other.KeyPEM, "\n")[1]) {
				t.Fatalf("a problem shows key material: %v", problems)
			}
		})
	}
}
