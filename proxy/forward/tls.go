package forward

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
)

// TLSSettings are a service's own TLS settings for its https targets.
// The zero value is the default: the system's roots, the URL's host as
// SNI and the name verified, TLS 1.2 at least.
type TLSSettings struct {
	// CABundle is PEM certificates trusted in addition to the system's
	// roots, or alone if CAOnly.
	CABundle []byte
	CAOnly   bool
	// Certificate and Key are the PEM client certificate and key
	// presented when the upstream asks for one; both or neither.
	Certificate, Key []byte
	// ServerName replaces the URL's host as SNI and as the name verified.
	ServerName string
	// MinVersion is a crypto/tls version; 0 means TLS 1.2.
	MinVersion uint16
	// SkipVerify accepts any certificate the upstream presents.
	SkipVerify bool
}

// TLS is compiled TLSSettings: parsed once, when a revision is applied,
// and identified by a digest of the settings so that pools with equal
// settings share a transport and pools with different ones never share a
// connection.
type TLS struct {
	roots      []*x509.Certificate // from CABundle
	caOnly     bool
	cert       *tls.Certificate
	serverName string
	minVersion uint16
	skipVerify bool
	digest     string
}

// NewTLS compiles s. It fails if a PEM member does not parse or the key
// does not match the certificate (which validation has already refused).
func NewTLS(s TLSSettings) (*TLS, error) {
	t := &TLS{caOnly: s.CAOnly, serverName: s.ServerName, minVersion: s.MinVersion, skipVerify: s.SkipVerify}
	if t.minVersion == 0 {
		t.minVersion = tls.VersionTLS12
	}
	if len(s.CABundle) > 0 {
		certs, err := parseCertificates(s.CABundle)
		if err != nil {
			return nil, fmt.Errorf("ca bundle: %w", err)
		}
		t.roots = certs
	} else if s.CAOnly {
		return nil, errors.New("ca_only without a ca bundle trusts nothing")
	}
	if len(s.Certificate) > 0 || len(s.Key) > 0 {
		c, err := tls.X509KeyPair(s.Certificate, s.Key)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		t.cert = &c
	}
	// The digest covers every setting, the key included (hashed, never
	// kept in the clear outside the certificate).
	h := sha256.New()
	for _, b := range [][]byte{s.CABundle, s.Certificate, s.Key, []byte(s.ServerName)} {
		fmt.Fprintf(h, "%d:", len(b))
		h.Write(b)
	}
	fmt.Fprintf(h, "%t %d %t", s.CAOnly, t.minVersion, s.SkipVerify)
	t.digest = hex.EncodeToString(h.Sum(nil))
	return t, nil
}

// parseCertificates parses every PEM CERTIFICATE block of p.
func parseCertificates(p []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, p = pem.Decode(p)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return certs, nil
}

// config returns the tls.Config for a target named host: t's settings
// (nil t: the defaults) over roots (nil: the system's, which tests
// replace).
func (t *TLS) config(host string, roots *x509.CertPool) (*tls.Config, error) {
	cfg := &tls.Config{
		ServerName: host,
		NextProtos: []string{"http/1.1"},
		MinVersion: tls.VersionTLS12,
		RootCAs:    roots,
	}
	if t == nil {
		return cfg, nil
	}
	cfg.MinVersion = t.minVersion
	if t.serverName != "" {
		cfg.ServerName = t.serverName
	}
	if len(t.roots) > 0 {
		pool := x509.NewCertPool()
		if !t.caOnly {
			switch {
			case roots != nil:
				pool = roots.Clone()
			default:
				sys, err := x509.SystemCertPool()
				if err != nil {
					return nil, fmt.Errorf("system roots: %w", err)
				}
				pool = sys
			}
		}
		for _, c := range t.roots {
			pool.AddCert(c)
		}
		cfg.RootCAs = pool
	}
	if t.cert != nil {
		cfg.Certificates = []tls.Certificate{*t.cert}
	}
	// Verification off is the operator's explicit choice (tls.verify
	// false), warned of in the admin API and logged on apply.
	cfg.InsecureSkipVerify = t.skipVerify
	return cfg, nil
}

// SkipsVerify reports whether t accepts any upstream certificate.
func (t *TLS) SkipsVerify() bool { return t != nil && t.skipVerify }

// noticeCertificateRequest returns cfg for one handshake, noting in
// *asked whether the upstream asked for a client certificate: with TLS
// 1.2 an upstream that requires one and gets none answers with a bare
// handshake_failure alert, which only that note tells from any other.
// The certificate presented is cfg's, if it has one, whatever CAs the
// upstream names: if it does not accept it, it says so (classify).
func noticeCertificateRequest(cfg *tls.Config) (*tls.Config, *bool) {
	asked := new(bool)
	c := cfg.Clone()
	var cert *tls.Certificate
	if len(cfg.Certificates) > 0 {
		cert = &cfg.Certificates[0]
	}
	c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		*asked = true
		if cert == nil {
			return &tls.Certificate{}, nil // none: the upstream decides
		}
		return cert, nil
	}
	return c, asked
}
