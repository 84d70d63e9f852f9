package proxy

import (
	"net/http"
	"net/textproto"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// requestIDHeader is the request id's field; internal/serve sets it.
const requestIDHeader = "X-Request-Id"

// identityHeaders returns the canonical names of the fields that name a
// consumer to the upstream in rev: the auth policy's defaults, whether or
// not a route uses them, and every name an auth policy configures. A client
// never sends them on any route: an upstream behind a route without auth
// may still believe them.
func identityHeaders(rev *gatehouse.Revision) []string {
	var defaults gatehouse.AuthConfig
	defaults.SetDefaults()
	names := []string{defaults.ConsumerIDHeader, defaults.ConsumerNameHeader, defaults.GroupsHeader}
	if rev == nil {
		return names
	}
	for _, p := range rev.Policies {
		if p.Type != gatehouse.PolicyAuth {
			continue
		}
		cfg, err := p.DecodeConfig()
		c, ok := cfg.(*gatehouse.AuthConfig)
		if err != nil || !ok {
			continue // policy.Compile refuses it, and the revision with it
		}
		for _, h := range []string{c.ConsumerIDHeader, c.ConsumerNameHeader, c.GroupsHeader} {
			if h = textproto.CanonicalMIMEHeaderKey(h); h != "" && !contains(names, h) {
				names = append(names, h)
			}
		}
	}
	return names
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// owned reports whether the canonical field name k is one gatehouse sets
// for the upstream: the request id, the forwarding fields, the identity
// fields.
func (st *state) owned(k string) bool {
	return k == requestIDHeader || contains(spoofable, k) || contains(st.identity, k)
}

// inboundHeader cleans the client's header in place before anything
// reads it for the upstream (policies set fields in it, outboundHeader
// copies it):
//
//   - the fields its Connection names go (they are hop-by-hop), except the
//     ones gatehouse owns: a client cannot name away the request id or the
//     identity a policy sets, since policies run after this;
//   - the identity fields go, and the forwarding fields unless the peer is
//     a trusted proxy: only gatehouse, or the proxy in front, says who the
//     client is;
//   - so do the underscore spellings of every owned field (X_Forwarded_For,
//     X-Consumer_Id): CGI and WSGI servers read them as the dashed name.
//
// The fixed hop-by-hop fields (Upgrade, TE...) stay for now: forward reads
// them, and outboundHeader does not copy them.
func (st *state) inboundHeader(hdr http.Header, trusted bool) {
	for _, v := range hdr["Connection"] {
		for v != "" {
			var name string
			name, v, _ = strings.Cut(v, ",")
			if name = textproto.TrimString(name); name == "" {
				continue
			}
			k := textproto.CanonicalMIMEHeaderKey(name)
			if !isHopByHop(k) && !st.owned(k) {
				delete(hdr, k)
			}
		}
	}
	if !trusted {
		for _, k := range spoofable {
			delete(hdr, k)
		}
	}
	for _, k := range st.identity {
		delete(hdr, k)
	}
	for k := range hdr {
		if strings.IndexByte(k, '_') >= 0 && st.owned(textproto.CanonicalMIMEHeaderKey(strings.ReplaceAll(k, "_", "-"))) {
			delete(hdr, k)
		}
	}
}
