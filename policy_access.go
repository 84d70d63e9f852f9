package gatehouse

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/internal/strictjson"
)

// AuthConfig makes a route require a consumer's credentials: an API key,
// HTTP Basic, or a JWT bearer token; at least one scheme is set, and a
// request may present any of them. Missing or invalid credentials are 401
// with a WWW-Authenticate challenge per scheme. The upstream receives the
// consumer's identity in the headers named here (whatever the client sent
// in them is removed) and never the credential itself.
type AuthConfig struct {
	KeyAuth   *KeyAuthConfig   `json:"key_auth,omitempty"`
	BasicAuth *BasicAuthConfig `json:"basic_auth,omitempty"`
	JWT       *JWTConfig       `json:"jwt,omitempty"`
	// Realm is the challenges' realm. Default "gatehouse".
	Realm string `json:"realm"`
	// Headers naming the consumer to the upstream.
	ConsumerIDHeader   string `json:"consumer_id_header"`   // default X-Consumer-Id
	ConsumerNameHeader string `json:"consumer_name_header"` // default X-Consumer-Name
	GroupsHeader       string `json:"groups_header"`        // default X-Consumer-Groups
}

func (c *AuthConfig) SetDefaults() {
	*c = AuthConfig{Realm: "gatehouse", ConsumerIDHeader: "X-Consumer-Id",
		ConsumerNameHeader: "X-Consumer-Name", GroupsHeader: "X-Consumer-Groups"}
}

// KeyAuthConfig says where an API key (a key-auth credential) is read
// from: a header, a query parameter, or both (the header first).
type KeyAuthConfig struct {
	Header string `json:"header"` // default X-API-Key; "" with query set: query only
	Query  string `json:"query"`  // "" (default): not from the query
}

func (c *KeyAuthConfig) SetDefaults() { c.Header = "X-API-Key" }

// BasicAuthConfig accepts basic-auth credentials.
type BasicAuthConfig struct{}

// JWTConfig accepts JWT bearer tokens signed by one of Keys or by a key of
// the JWKS at JWKSURL. The claim ConsumerClaim names the consumer, by id or
// by name; a token naming no consumer is refused.
type JWTConfig struct {
	Keys    []JWTKey `json:"keys"`
	JWKSURL string   `json:"jwks_url"`
	// JWKSCacheSeconds is how long a fetched JWKS is used before it is
	// fetched again. Default 300.
	JWKSCacheSeconds int `json:"jwks_cache_seconds"`
	// Issuer and Audience, if set, must match the iss and aud claims.
	Issuer   string `json:"issuer"`
	Audience string `json:"audience"`
	// ConsumerClaim is the claim naming the consumer. Default "sub".
	ConsumerClaim string `json:"consumer_claim"`
	// LeewaySeconds tolerates clock skew on exp and nbf. Default 30.
	LeewaySeconds int `json:"leeway_seconds"`
	// RequireExp refuses tokens without an exp claim, which would
	// otherwise be good forever once leaked. Default true.
	RequireExp bool `json:"require_exp"`
}

func (c *JWTConfig) SetDefaults() {
	*c = JWTConfig{JWKSCacheSeconds: 300, ConsumerClaim: "sub", LeewaySeconds: 30, RequireExp: true}
}

// JWT signing algorithms gatehouse verifies. "none" never is.
var JWTAlgorithms = []string{"HS256", "RS256", "ES256"}

// JWTKey is one verification key: a shared secret for HS256, a PEM public
// key for RS256 or ES256. KeyID, if set, must match the token's kid if
// the token has one (a token without kid is tried with every key of its
// alg); an update tells HS256 keys apart by it (Policy.KeepHidden).
// Secret is write-only: the admin API never shows it (Policy.Hide), and an
// update that omits it keeps the stored one (Policy.KeepHidden).
type JWTKey struct {
	KeyID     string `json:"kid"`
	Alg       string `json:"alg"`
	Secret    string `json:"secret,omitempty"`
	PublicKey string `json:"public_key,omitempty"`
}

// ParsePublicKey returns the key's *rsa.PublicKey or *ecdsa.PublicKey.
func (k *JWTKey) ParsePublicKey() (any, error) {
	block, _ := pem.Decode([]byte(k.PublicKey))
	if block == nil {
		return nil, fmt.Errorf("is not a PEM block")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("is not a PKIX public key: %v", err)
	}
	switch pk := pub.(type) {
	case *rsa.PublicKey:
		if k.Alg != "RS256" {
			return nil, fmt.Errorf("is an RSA key, which alg %s does not use", k.Alg)
		}
		if pk.N.BitLen() < 2048 {
			return nil, fmt.Errorf("is an RSA key of %d bits; at least 2048 are required", pk.N.BitLen())
		}
	case *ecdsa.PublicKey:
		if k.Alg != "ES256" || pk.Curve != elliptic.P256() {
			return nil, fmt.Errorf("is an ECDSA key, which alg %s does not use (ES256 needs P-256)", k.Alg)
		}
	default:
		return nil, fmt.Errorf("is a %T, which gatehouse does not verify", pub)
	}
	return pub, nil
}

// Hide clears the HS256 secrets of an auth policy's config: anyone who
// can read policies could otherwise mint tokens. What is cleared is kept
// for KeepHidden.
func (p *Policy) Hide() {
	c := p.authConfig()
	if c == nil || c.JWT == nil {
		return
	}
	shown := *c.JWT
	shown.Keys = make([]JWTKey, len(c.JWT.Keys))
	hid := false
	for i, k := range c.JWT.Keys {
		hid = hid || k.Secret != ""
		k.Secret = ""
		shown.Keys[i] = k
	}
	if !hid {
		return
	}
	out := *c
	out.JWT = &shown
	if b, err := json.Marshal(&out); err == nil {
		p.Config, p.hidden = b, c
	}
}

// KeepHidden gives each HS256 key of the config that has no secret the
// secret of the stored key it stands for, where that can be told:
//
//   - the HS256 keys are the stored ones, in order, and none is sent
//     with a secret (a read echoed back, a PATCH of another member): each
//     keeps its own;
//   - otherwise by kid: exactly one stored HS256 key with a secret has
//     the key's kid, and no other HS256 key of the config has it.
//
// Keys sharing a kid (or having none) are told apart only by their order,
// which an update may change: a guess could keep a removed key working
// and fail the one kept. Such a key keeps no secret, and Check says why
// (p.unkept); a key whose kid no stored key has keeps none either, and
// Check asks for it as for a new key.
func (p *Policy) KeepHidden(current Resource) {
	p.unkept = nil
	cur, ok := current.(*Policy)
	if !ok || p.Type != PolicyAuth || cur.Type != PolicyAuth {
		return
	}
	stored := cur.hidden
	if stored == nil {
		stored = cur.authConfig()
	}
	if stored == nil || stored.JWT == nil {
		return
	}
	// The config as the client sent it, parsed as Check parses it: what
	// does not parse is left for Check to report.
	next := &AuthConfig{}
	next.SetDefaults()
	tree, err := strictjson.Parse(p.Config)
	if err != nil || len(strictjson.Assign(tree, next)) > 0 || next.JWT == nil {
		return
	}
	keys, old := next.JWT.Keys, stored.JWT.Keys
	changed := false
	if sameHS256(keys, old) {
		j := 0
		for i := range keys {
			if keys[i].Alg != "HS256" {
				continue
			}
			for old[j].Alg != "HS256" {
				j++
			}
			keys[i].Secret, changed = old[j].Secret, changed || old[j].Secret != ""
			j++
		}
	} else {
		for i := range keys {
			k := &keys[i]
			if k.Alg != "HS256" || k.Secret != "" {
				continue
			}
			held, sent := hs256WithKid(old, k.KeyID, true), hs256WithKid(keys, k.KeyID, false)
			switch {
			case len(held) == 0:
			case len(held) == 1 && len(sent) == 1:
				k.Secret, changed = held[0].Secret, true
			default:
				who := fmt.Sprintf("kid %q", k.KeyID)
				if k.KeyID == "" {
					who = "no kid"
				}
				p.unkept = append(p.unkept, FieldError{Field: fmt.Sprintf("config.jwt.keys[%d].secret", i),
					Message: fmt.Sprintf("is required: %d stored and %d sent HS256 keys have %s, so which stored secret this key keeps cannot be told; "+
						"give each HS256 key a distinct kid, or send its secret", len(held), len(sent), who)})
			}
		}
	}
	if !changed {
		return
	}
	if b, err := json.Marshal(next); err == nil {
		p.Config = b
	}
}

// sameHS256 reports whether the HS256 keys of keys, as sent, are those
// of old in order by kid, none sent with a secret: then no HS256 key was
// added, removed or given a new secret (keys of other algs may have
// changed), and each keeps its own. Keys sharing a kid are alike as sent,
// so their order cannot say anything else.
func sameHS256(keys, old []JWTKey) bool {
	notHS := func(k JWTKey) bool { return k.Alg != "HS256" }
	keys, old = slices.DeleteFunc(slices.Clone(keys), notHS), slices.DeleteFunc(slices.Clone(old), notHS)
	return slices.EqualFunc(keys, old, func(k, o JWTKey) bool { return k.Secret == "" && k.KeyID == o.KeyID })
}

// hs256WithKid returns the HS256 keys of keys with kid, only those with
// a secret if withSecret.
func hs256WithKid(keys []JWTKey, kid string, withSecret bool) []JWTKey {
	var out []JWTKey
	for _, k := range keys {
		if k.Alg == "HS256" && k.KeyID == kid && (k.Secret != "" || !withSecret) {
			out = append(out, k)
		}
	}
	return out
}

// explainUnkept replaces Check's refusal of each secret KeepHidden could
// not keep for want of a distinct kid with one saying so: a 422, since
// only the stored policy makes the key ambiguous.
func (p *Policy) explainUnkept(bad, semantic *fields) {
	for _, u := range p.unkept {
		n := len(*bad)
		*bad = slices.DeleteFunc(*bad, func(f FieldError) bool { return f.Field == u.Field })
		if len(*bad) < n {
			*semantic = append(*semantic, u)
		}
	}
}

// authConfig decodes an auth policy's stored config; nil for another
// type or a config that does not decode.
func (p *Policy) authConfig() *AuthConfig {
	if p.Type != PolicyAuth {
		return nil
	}
	c := &AuthConfig{}
	c.SetDefaults()
	if json.Unmarshal(p.Config, c) != nil {
		return nil
	}
	return c
}

// MinHMACSecret is the shortest HS256 secret accepted: 256 bits.
const MinHMACSecret = 32

func init() {
	registerPolicyType(PolicyAuth, false, func(c *AuthConfig, bad, semantic *fields) {
		if c.KeyAuth == nil && c.BasicAuth == nil && c.JWT == nil {
			bad.add("config", "must set at least one of key_auth, basic_auth and jwt")
		}
		if c.Realm == "" || !quotable(c.Realm) {
			bad.add("config.realm", "must be printable ASCII without '\"' or '\\'")
		}
		for field, h := range map[string]string{"consumer_id_header": c.ConsumerIDHeader,
			"consumer_name_header": c.ConsumerNameHeader, "groups_header": c.GroupsHeader} {
			if h != "" && !IsToken(h) {
				bad.add("config."+field, "must be a header name (or empty: not sent)")
			}
		}
		if k := c.KeyAuth; k != nil {
			if k.Header == "" && k.Query == "" {
				bad.add("config.key_auth", "must set header, query or both")
			}
			if k.Header != "" && !IsToken(k.Header) {
				bad.add("config.key_auth.header", "must be a header name")
			}
			if k.Query != "" && url.QueryEscape(k.Query) != k.Query {
				bad.add("config.key_auth.query", "must be a query parameter name needing no escaping")
			}
		}
		if j := c.JWT; j != nil {
			if len(j.Keys) == 0 && j.JWKSURL == "" {
				bad.add("config.jwt", "must set keys, jwks_url or both")
			}
			if j.JWKSURL != "" {
				if u, err := url.Parse(j.JWKSURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
					semantic.add("config.jwt.jwks_url", "must be an http or https URL")
				}
			}
			checkRange("config.jwt.jwks_cache_seconds", j.JWKSCacheSeconds, 1, 86400, bad)
			checkRange("config.jwt.leeway_seconds", j.LeewaySeconds, 0, 3600, bad)
			if j.ConsumerClaim == "" {
				bad.add("config.jwt.consumer_claim", "is required")
			}
			for i, k := range j.Keys {
				field := fmt.Sprintf("config.jwt.keys[%d]", i)
				switch k.Alg {
				case "HS256":
					if len(k.Secret) < MinHMACSecret {
						bad.add(field+".secret", "must be at least %d bytes for HS256", MinHMACSecret)
					}
					if k.PublicKey != "" {
						bad.add(field+".public_key", "belongs to RS256 and ES256 keys")
					}
				case "RS256", "ES256":
					if k.Secret != "" {
						bad.add(field+".secret", "belongs to HS256 keys")
					}
					if k.PublicKey == "" {
						bad.add(field+".public_key", "is required for %s", k.Alg)
					} else if _, err := k.ParsePublicKey(); err != nil {
						semantic.add(field+".public_key", "%v", err)
					}
				default:
					bad.add(field+".alg", "must be one of %s", strings.Join(JWTAlgorithms, ", "))
				}
			}
		}
	})
	registerPolicyType(PolicyIPRestriction, false, func(c *IPRestrictionConfig, bad, semantic *fields) {
		if len(c.Allow) == 0 && len(c.Deny) == 0 {
			bad.add("config", "must set allow, deny or both")
		}
		checkPrefixes("config.allow", c.Allow, bad)
		checkPrefixes("config.deny", c.Deny, bad)
	})
	registerPolicyType(PolicyACL, false, func(c *ACLConfig, bad, semantic *fields) {
		if len(c.Allow)+len(c.Deny)+len(c.AllowConsumers)+len(c.DenyConsumers) == 0 {
			bad.add("config", "must set at least one of allow, deny, allow_consumers and deny_consumers")
		}
		checkGroups("config.allow", c.Allow, bad)
		checkGroups("config.deny", c.Deny, bad)
		checkGroups("config.allow_consumers", c.AllowConsumers, bad)
		checkGroups("config.deny_consumers", c.DenyConsumers, bad)
	})
}

// IPRestrictionConfig allows or denies client addresses (the client as
// --trusted-proxies lets gatehouse see it) by CIDR prefix or address: 403.
// Deny wins; with Allow set, an address must be in it.
type IPRestrictionConfig struct {
	Allow []string `json:"allow"`
	Deny  []string `json:"deny"`
}

// ParsePrefix parses a CIDR prefix or a single address.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

func checkPrefixes(field string, list []string, f *fields) {
	checkList(field, list, 1024, func(s string) string { return s }, f)
	for i, s := range list {
		if _, err := ParsePrefix(s); s != "" && err != nil {
			f.add(fmt.Sprintf("%s[%d]", field, i), "must be an IP address or CIDR prefix")
		}
	}
}

// ACLConfig allows or denies authenticated consumers by group or by name:
// 403. Deny wins; with an allow list set, a consumer must be in one. A
// route with an acl needs an auth policy too.
type ACLConfig struct {
	Allow          []string `json:"allow"` // groups
	Deny           []string `json:"deny"`  // groups
	AllowConsumers []string `json:"allow_consumers"`
	DenyConsumers  []string `json:"deny_consumers"`
}

// quotable reports whether s can sit in a quoted-string as it is.
func quotable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
