package gatehouse

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/url"
)

// ServiceTLS is how gatehouse speaks TLS to a service's https targets.
type ServiceTLS struct {
	// CABundle is PEM certificates trusted to sign the upstream's
	// certificate, in addition to the system's roots, or alone if CAOnly.
	CABundle string `json:"ca_bundle,omitempty"`
	// CAOnly trusts CABundle alone, not the system's roots. Default false.
	CAOnly bool `json:"ca_only,omitempty"`
	// ClientCertificate is the PEM certificate (chain, leaf first) that
	// gatehouse presents when the upstream asks for one (mutual TLS).
	ClientCertificate string `json:"client_certificate,omitempty"`
	// ClientKey is ClientCertificate's PEM private key. Write-only: never
	// shown (Service.Hide); an update that omits it keeps the stored one.
	ClientKey string `json:"client_key,omitempty"`
	// ServerName is sent as SNI and is the name the upstream's
	// certificate is verified for. Default: the target URL's host.
	ServerName string `json:"server_name,omitempty"`
	// MinVersion is the lowest TLS version spoken: "1.2" (default) or
	// "1.3".
	MinVersion string `json:"min_version"`
	// Verify checks the upstream's certificate. Default true; false lets
	// anyone on the path impersonate the upstream, and the service then
	// carries a warning (Service.Warn) and the data plane logs one.
	Verify bool `json:"verify"`
}

// SetDefaults fills in a TLS member created from JSON.
func (t *ServiceTLS) SetDefaults() { *t = ServiceTLS{MinVersion: TLSVersion12, Verify: true} }

// TLS versions a service may ask for.
const (
	TLSVersion12 = "1.2"
	TLSVersion13 = "1.3"
)

// Size limits of the PEM members, in bytes: room for a large private CA
// bundle, a certificate chain and an RSA 8192 key.
const (
	MaxCABundleBytes    = 512 << 10
	MaxCertificateBytes = 64 << 10
	MaxKeyBytes         = 16 << 10
)

// WarningTLSVerifyOff is the warning a service with tls.verify false
// carries.
const WarningTLSVerifyOff = "tls.verify is false: the upstream's certificate is not verified, so anyone on the network path can impersonate it and read the traffic"

// TLSVersion returns the crypto/tls constant of a min_version value (0
// for an unknown one).
func TLSVersion(v string) uint16 {
	switch v {
	case TLSVersion12:
		return tls.VersionTLS12
	case TLSVersion13:
		return tls.VersionTLS13
	}
	return 0
}

// check validates the TLS member of s.
func (t *ServiceTLS) check(s *Service, bad, semantic *fields) {
	sizes := []struct {
		field, v string
		max      int
	}{
		{"tls.ca_bundle", t.CABundle, MaxCABundleBytes},
		{"tls.client_certificate", t.ClientCertificate, MaxCertificateBytes},
		{"tls.client_key", t.ClientKey, MaxKeyBytes},
	}
	tooLong := false
	for _, m := range sizes {
		if len(m.v) > m.max {
			bad.add(m.field, "must be at most %d bytes", m.max)
			tooLong = true
		}
	}
	if TLSVersion(t.MinVersion) == 0 {
		bad.add("tls.min_version", "must be %q or %q", TLSVersion12, TLSVersion13)
	}
	switch {
	case t.ClientCertificate != "" && t.ClientKey == "" && !s.keyKept:
		bad.add("tls.client_key", "is required with client_certificate")
	case t.ClientKey != "" && t.ClientCertificate == "":
		bad.add("tls.client_certificate", "is required with client_key")
	}
	if t.CAOnly && t.CABundle == "" {
		semantic.add("tls.ca_only", "trusts only ca_bundle, which is empty: no upstream certificate could be verified")
	}
	if t.ServerName != "" && net.ParseIP(t.ServerName) == nil && !ValidHostname(t.ServerName) {
		semantic.add("tls.server_name", "%q is not a valid hostname or IP address", t.ServerName)
	}
	if !s.hasHTTPS() {
		semantic.add("tls", "applies to https targets, and the service has none")
	}
	if tooLong {
		return // not worth parsing
	}
	if t.CABundle != "" {
		if msg := checkCertificates(t.CABundle); msg != "" {
			semantic.add("tls.ca_bundle", "%s", msg)
		}
	}
	if t.ClientCertificate != "" && (t.ClientKey != "" || s.keyKept) {
		// Without the key (the store's, unseen: keyKept), its match is
		// judged by the apply that has it.
		if msg := checkCertificates(t.ClientCertificate); msg != "" {
			semantic.add("tls.client_certificate", "%s", msg)
		} else if t.ClientKey != "" {
			if msg := trailingText(t.ClientKey); msg != "" {
				semantic.add("tls.client_key", "%s", msg)
			} else if _, err := tls.X509KeyPair([]byte(t.ClientCertificate), []byte(t.ClientKey)); err != nil {
				// The error names no key material: it says which of
				// parsing and matching failed.
				semantic.add("tls.client_key", "is not the PEM private key of client_certificate: %v", err)
			}
		}
	}
}

// checkCertificates returns why p is not one or more PEM certificates,
// or "".
func checkCertificates(p string) string {
	rest := []byte(p)
	n := 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return "must hold only PEM CERTIFICATE blocks, not " + block.Type
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return "holds a certificate that does not parse: " + err.Error()
		}
		n++
	}
	if n == 0 {
		return "is not a PEM certificate"
	}
	return trailingText(p)
}

// trailingText returns why p has text after its last PEM block, or "":
// the PEM fields refuse it alike. X509KeyPair would take a key with
// it, and the text would be stored as if it meant something.
func trailingText(p string) string {
	rest := []byte(p)
	for {
		block, r := pem.Decode(rest)
		if block == nil {
			break
		}
		rest = r
	}
	if len(bytes.TrimSpace(rest)) > 0 && len(rest) < len(p) {
		return "has text after its last PEM block that is not one"
	}
	return ""
}

// hasHTTPS reports whether some target of s is an https URL.
func (s *Service) hasHTTPS() bool {
	if s.URL != "" {
		return isHTTPS(s.URL)
	}
	for _, t := range s.Targets {
		if isHTTPS(t.URL) {
			return true
		}
	}
	return false
}

func isHTTPS(u string) bool {
	p, err := url.Parse(u)
	return err == nil && p.Scheme == "https"
}

// Hide clears the TLS client key, for showing the service: whoever can
// read services could otherwise impersonate gatehouse to the upstream.
// The key is kept aside for KeepHidden. The TLS member is copied, not
// changed in place, so a service shared with the data plane keeps its key.
func (s *Service) Hide() {
	if s.TLS == nil || s.TLS.ClientKey == "" {
		return
	}
	t := *s.TLS
	s.hiddenKey, t.ClientKey = t.ClientKey, ""
	s.TLS = &t
}

// KeepHidden gives a service whose TLS has a client certificate but no
// key the key current has: a client may send back what it read. A key
// that does not match a changed certificate is then refused by Check.
func (s *Service) KeepHidden(current Resource) {
	cur, ok := current.(*Service)
	if !ok || s.TLS == nil || s.TLS.ClientCertificate == "" || s.TLS.ClientKey != "" || cur.TLS == nil {
		return
	}
	key := cur.hiddenKey
	if key == "" {
		key = cur.TLS.ClientKey
	}
	s.TLS.ClientKey = key
}

// StandInForHiddenKey is for judging a service without a store (offline
// validation of a file, which a dump leaves without client keys): a
// client certificate without its key is taken as keeping the stored key,
// as an update to the store would, and the key's match is left to the
// apply that has it.
func (s *Service) StandInForHiddenKey() { s.keyKept = true }

// KeepServerSet clears the warnings: they are the server's, derived from
// the settings each time the service is shown (Warn).
func (s *Service) KeepServerSet(Resource) { s.Warnings = nil }

// Warn sets the service's warnings from its settings.
func (s *Service) Warn() { s.Warnings = s.Risks() }

// Risks are the warnings the service's settings earn, wherever it is
// shown or written: the admin API's answers, revisions, a configuration's
// change set and its offline validation.
func (s *Service) Risks() []string {
	if s.TLS != nil && !s.TLS.Verify {
		return []string{WarningTLSVerifyOff}
	}
	return nil
}

var (
	_ WriteOnly = (*Service)(nil)
	_ ServerSet = (*Service)(nil)
)
