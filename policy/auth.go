package policy

import (
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
)

func init() { register(gatehouse.PolicyAuth, buildAuth) }

var (
	errNoCredentials  = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "This route requires credentials, and none were presented.")
	errBadKey         = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "The API key is not valid.")
	errBadBasic       = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "The username or password is not valid.")
	errMalformedBasic = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "The basic credentials are malformed.")
	errMixedConsumers = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "The credentials presented name different consumers.")
)

// wwwAuthenticate is WWW-Authenticate as http.Header keys it.
const wwwAuthenticate = "Www-Authenticate"

// auth requires credentials. With several auth policies at one level all
// apply, as for every type: the request must satisfy each, and they must
// name one consumer. Credentials are taken out only once every policy has
// judged them (two policies may read the same header).
type auth struct {
	policies []*authPolicy
}

// authPolicy is one auth policy, compiled.
type authPolicy struct {
	consumers *Consumers
	// keyHeader is the canonical name of the API key's header; "" if keys
	// are not read from a header. keyQuery is the key's query parameter;
	// "" if not read from the query.
	keyHeader, keyQuery string
	basic               bool
	jwt                 *jwtVerifier
	// stripAuthorization: Authorization carries this policy's
	// credentials (basic or bearer), so the upstream never sees it.
	stripAuthorization bool
	// challenges has one WWW-Authenticate per scheme; badBearer is the
	// same with the Bearer one saying error="invalid_token" (RFC 6750
	// §3.1). Shared by every request, never written to.
	challenges, badBearer []string
	// idHeaders are the canonical names of the identity headers sent
	// upstream, in the order id, name, groups; "" is not sent.
	idHeaders [3]string
	// identities holds each consumer's identity header values, made on
	// first use (a revision may hold many consumers and few of them call
	// any one route).
	identities sync.Map // *Consumer → *identity
	now        func() time.Time
}

// identity is the values of a consumer's identity headers, in the order
// of idHeaders; the groups value is nil for a consumer without groups
// (the header is then not sent).
type identity struct {
	values [3][]string
}

func buildAuth(b *Build, pols []*gatehouse.Policy) (Step, error) {
	cfgs, err := configs[gatehouse.AuthConfig](pols)
	if err != nil {
		return nil, err
	}
	a := &auth{}
	for i, c := range cfgs {
		p, err := newAuthPolicy(b, pols[i], c)
		if err != nil {
			return nil, err
		}
		a.policies = append(a.policies, p)
	}
	return a, nil
}

func newAuthPolicy(b *Build, pol *gatehouse.Policy, c *gatehouse.AuthConfig) (*authPolicy, error) {
	p := &authPolicy{consumers: b.Consumers, basic: c.BasicAuth != nil, now: b.Env.Now}
	if p.now == nil {
		p.now = time.Now
	}
	realm := `realm="` + c.Realm + `"` // quotable, as validation ensures
	var bearerAt = -1
	if k := c.KeyAuth; k != nil {
		ch := "ApiKey " + realm
		if k.Header != "" {
			p.keyHeader = textproto.CanonicalMIMEHeaderKey(k.Header)
			ch += `, header="` + k.Header + `"`
		}
		if k.Query != "" {
			p.keyQuery = k.Query
			ch += `, query="` + k.Query + `"`
		}
		p.challenges = append(p.challenges, ch)
	}
	if p.basic {
		p.challenges = append(p.challenges, "Basic "+realm+`, charset="UTF-8"`)
	}
	if c.JWT != nil {
		v, err := newJWTVerifier(b, pol, c.JWT)
		if err != nil {
			return nil, err
		}
		p.jwt = v
		bearerAt = len(p.challenges)
		p.challenges = append(p.challenges, "Bearer "+realm)
	}
	p.challenges = slices.Clip(p.challenges)
	p.badBearer = p.challenges
	if bearerAt >= 0 {
		p.badBearer = slices.Clone(p.challenges)
		p.badBearer[bearerAt] = "Bearer " + realm + `, error="invalid_token"`
	}
	p.stripAuthorization = p.basic || p.jwt != nil
	for i, h := range []string{c.ConsumerIDHeader, c.ConsumerNameHeader, c.GroupsHeader} {
		if h != "" {
			p.idHeaders[i] = textproto.CanonicalMIMEHeaderKey(h)
		}
	}
	return p, nil
}

func (a *auth) Check(r *Request) error {
	var c *Consumer
	for _, p := range a.policies {
		got, err := p.authenticate(r)
		if err != nil {
			return err
		}
		if c != nil && got != c {
			r.W.Header()[wwwAuthenticate] = p.challenges
			return errMixedConsumers
		}
		c = got
	}
	h := r.R.Header
	for _, p := range a.policies {
		p.strip(r)
	}
	// Whatever the client sent in an identity header (or an underscore
	// spelling of one) is gone already: the data plane removes it on
	// every route before policies run (proxy/headers.go, inboundHeader).
	for _, p := range a.policies {
		id := p.identity(c)
		for i, name := range p.idHeaders {
			if name != "" && id.values[i] != nil {
				h[name] = id.values[i]
			}
		}
	}
	r.Consumer = c
	return nil
}

// authenticate judges the first credential the request presents, in the
// order API key (header, then query), then Authorization (Basic or
// Bearer). A credential that is present but wrong is the answer: another
// scheme is not tried in its place.
func (p *authPolicy) authenticate(r *Request) (*Consumer, error) {
	h := r.R.Header
	if p.keyHeader != "" {
		if vs := h[p.keyHeader]; len(vs) > 0 && vs[0] != "" {
			return p.byKey(r, vs[0])
		}
	}
	if p.keyQuery != "" {
		if v := queryValue(r.R.URL.RawQuery, p.keyQuery); v != "" {
			if strings.ContainsAny(v, "%+") {
				var err error
				if v, err = url.QueryUnescape(v); err != nil {
					return p.refuse(r, errBadKey)
				}
			}
			return p.byKey(r, v)
		}
	}
	if p.stripAuthorization {
		if vs := h["Authorization"]; len(vs) > 0 {
			scheme, cred, _ := strings.Cut(vs[0], " ")
			switch {
			case p.basic && strings.EqualFold(scheme, "Basic"):
				user, pass, ok := r.R.BasicAuth()
				if !ok {
					return p.refuse(r, errMalformedBasic)
				}
				if c := p.consumers.ByBasic(user, pass); c != nil {
					return c, nil
				}
				return p.refuse(r, errBadBasic)
			case p.jwt != nil && strings.EqualFold(scheme, "Bearer"):
				tok := strings.TrimSpace(cred)
				if tok == "" {
					r.W.Header()[wwwAuthenticate] = p.badBearer
					return nil, errTokenMalformed
				}
				now := r.Now
				if now.IsZero() {
					now = p.now()
				}
				c, err := p.jwt.verify(r.R.Context(), tok, now)
				if err != nil {
					if gatehouse.ErrorCode(err) == gatehouse.EUNAUTHORIZED {
						r.W.Header()[wwwAuthenticate] = p.badBearer
					}
					return nil, err
				}
				return c, nil
			}
		}
	}
	return p.refuse(r, errNoCredentials)
}

func (p *authPolicy) byKey(r *Request, key string) (*Consumer, error) {
	if c := p.consumers.ByKey(key); c != nil {
		return c, nil
	}
	return p.refuse(r, errBadKey)
}

// refuse sets the challenges and returns err.
func (p *authPolicy) refuse(r *Request, err error) (*Consumer, error) {
	r.W.Header()[wwwAuthenticate] = p.challenges
	return nil, err
}

// strip takes this policy's credentials out of the request.
func (p *authPolicy) strip(r *Request) {
	h := r.R.Header
	if p.keyHeader != "" {
		delete(h, p.keyHeader)
	}
	if p.keyQuery != "" && strings.Contains(r.R.URL.RawQuery, p.keyQuery) {
		r.R.URL.RawQuery = removeQuery(r.R.URL.RawQuery, p.keyQuery)
	}
	if p.stripAuthorization {
		delete(h, "Authorization")
	}
}

func (p *authPolicy) identity(c *Consumer) *identity {
	if id, ok := p.identities.Load(c); ok {
		return id.(*identity)
	}
	id := &identity{values: [3][]string{{c.ID}, {c.Name}, nil}}
	if len(c.Groups) > 0 {
		id.values[2] = []string{strings.Join(c.Groups, ",")}
	}
	got, _ := p.identities.LoadOrStore(c, id)
	return got.(*identity)
}

// queryValue returns the raw (still escaped) value of the first parameter
// called name in a raw query, "" if there is none.
func queryValue(raw, name string) string {
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		if k, v, _ := strings.Cut(part, "="); k == name {
			return v
		}
	}
	return ""
}

// removeQuery returns raw without the parameters called name, every other
// byte as it was.
func removeQuery(raw, name string) string {
	var b strings.Builder
	b.Grow(len(raw))
	first := true
	for rest, more := raw, true; more; {
		var part string
		part, rest, more = strings.Cut(rest, "&")
		if k, _, _ := strings.Cut(part, "="); k == name {
			continue
		}
		if !first {
			b.WriteByte('&')
		}
		b.WriteString(part)
		first = false
	}
	return b.String()
}

// AuthHeaders returns the canonical names of the fields that name a
// consumer to the upstream in rev (identity): the auth policy's defaults,
// whether or not a route uses them, and every name an auth policy
// configures. A client never sends them on any route: an upstream behind
// a route without auth may still believe them. And the fields auth
// policies read API keys from (keys): removed from the header by the
// policy that reads them, never forwarded in a trailer.
func AuthHeaders(rev *gatehouse.Revision) (identity, keys []string) {
	var defaults gatehouse.AuthConfig
	defaults.SetDefaults()
	identity = []string{defaults.ConsumerIDHeader, defaults.ConsumerNameHeader, defaults.GroupsHeader}
	if rev == nil {
		return identity, nil
	}
	add := func(list []string, h string) []string {
		if h = textproto.CanonicalMIMEHeaderKey(h); h != "" && !slices.Contains(list, h) {
			list = append(list, h)
		}
		return list
	}
	for _, p := range rev.Policies {
		if p.Type != gatehouse.PolicyAuth {
			continue
		}
		cfg, err := p.DecodeConfig()
		c, ok := cfg.(*gatehouse.AuthConfig)
		if err != nil || !ok {
			continue // Compile refuses it, and the revision with it
		}
		for _, h := range []string{c.ConsumerIDHeader, c.ConsumerNameHeader, c.GroupsHeader} {
			identity = add(identity, h)
		}
		if c.KeyAuth != nil {
			keys = add(keys, c.KeyAuth.Header)
		}
	}
	return identity, keys
}
