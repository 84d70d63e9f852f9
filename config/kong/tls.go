package kong

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/config"
)

// listenerCerts is why the certificates Kong serves to clients do not
// convert.
const listenerCerts = "gatehouse's TLS certificates are its listeners' (--tls-cert), not part of its configuration document"

// pemEntity is a Kong certificates or ca_certificates entity: services
// name them by id for upstream TLS.
type pemEntity struct {
	cert, key string
	o         *obj
	path      string
	// used: a service converted it (as its client certificate, or into
	// its CA bundle).
	used bool
}

// readPEMEntities reads the top-level entities of kind (certificates or
// ca_certificates) by id, before the services that name them.
func (c *conv) readPEMEntities(top *obj, kind string) map[string]*pemEntity {
	out := map[string]*pemEntity{}
	for i, n := range c.items(top.get(kind)) {
		o := c.object(n)
		if o == nil {
			continue
		}
		e := &pemEntity{o: o, path: fmt.Sprintf("%s[%d]", kind, i)}
		e.cert, _ = c.str(o, "cert")
		e.key, _ = c.str(o, "key")
		c.pemOrder = append(c.pemOrder, e)
		if id, ok := c.str(o, "id"); ok {
			out[id] = e
		}
	}
	return out
}

// reportUnusedPEM reports the certificates no service converted: Kong
// served them to its clients (or, for CA certificates, checked client
// certificates against them), which gatehouse's configuration does not.
func (c *conv) reportUnusedPEM() {
	for _, e := range c.pemOrder {
		kind := strings.TrimSuffix(e.path[:strings.IndexByte(e.path, '[')], "s")
		what := c.describe(strings.ReplaceAll(kind, "_", " "), e.o, "id")
		switch {
		case !e.used && kind == "certificate":
			c.drop(e.o.node, e.path, what, listenerCerts)
		case !e.used:
			c.drop(e.o.node, e.path, what, "no service of this file names it in ca_certificates; gatehouse holds the CA certificates a service trusts in its tls.ca_bundle")
		case e.o.has("snis"):
			c.dropField(e.o, e.path, "snis", "converted as a service's client certificate only: "+listenerCerts)
		}
	}
}

// serviceTLS converts an https service's upstream TLS settings, nil when
// they are Kong's defaults. Kong verifies the upstream's certificate only
// with tls_verify true (nginx's default is off); gatehouse always does
// unless told not to, which is stricter and not reported.
func (c *conv) serviceTLS(o *obj, path, name string) *gatehouse.ServiceTLS {
	t := &gatehouse.ServiceTLS{}
	t.SetDefaults()
	set := false
	if o.has("tls_verify") && !c.boolean(o, "tls_verify", true) {
		t.Verify, set = false, true
		c.dropField(o, path, "tls_verify", "converted as tls.verify false, and gatehouse warns: "+gatehouse.WarningTLSVerifyOff)
	}
	if o.has("tls_verify_depth") {
		c.dropField(o, path, "tls_verify_depth", "gatehouse does not bound the length of the upstream's certificate chain")
	}
	// Kong builds the trust store of the upstream's certificate from
	// ca_certificates alone, in place of the system's: ca_only.
	var bundle []string
	for i, n := range c.items(o.get("ca_certificates")) {
		n = c.deref(n)
		id := n.Value
		if r := c.object(n); r != nil {
			id, _ = c.str(r, "id")
		}
		ca := c.caCerts[id]
		if ca == nil || ca.cert == "" {
			c.drop(n, fmt.Sprintf("%s.ca_certificates[%d]", path, i), "ca certificate "+strconv.Quote(id),
				"names a CA certificate this file does not hold: gatehouse trusts only the others, so an upstream certificate it signed is refused")
			continue
		}
		ca.used = true
		bundle = append(bundle, strings.TrimSpace(ca.cert)+"\n")
	}
	if len(bundle) > 0 {
		t.CABundle, t.CAOnly, set = strings.Join(bundle, ""), true, true
	}
	if ref, ok := c.ref(o, "client_certificate"); ok {
		cert := c.certs[ref]
		switch {
		case cert == nil || cert.cert == "" || cert.key == "":
			c.dropField(o, path, "client_certificate", fmt.Sprintf("names certificate %q, which this file does not hold with its key; gatehouse presents no client certificate, and an upstream that asks for one refuses the connection", ref))
		default:
			cert.used = true
			t.ClientCertificate, t.ClientKey, set = strings.TrimSpace(cert.cert)+"\n", strings.TrimSpace(cert.key)+"\n", true
			// A private key cannot be hashed: the data plane presents it.
			// The admin API never shows it, but the converted file holds
			// it as Kong's did.
			c.dropField(o, path, "client_certificate", fmt.Sprintf("service %q holds the private key of certificate %q (tls.client_key) in the clear, as the data plane needs it: "+
				"move it out of the file, to ${{ env \"%s%s\" }}", name, ref, config.EnvPrefix, tlsKeyEnvName(name)))
		}
	}
	if !set {
		return nil
	}
	return t
}

// tlsKeyEnvName makes a service's name the tail of an environment
// variable's name for its client key.
func tlsKeyEnvName(name string) string {
	return "TLS_KEY_" + strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, name)
}
