package policy

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
)

// What a bad token is told. Each says what was wrong and nothing of the
// keys; they are shared, read-only values.
var (
	errTokenMalformed  = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "The token is not a well-formed JWT.")
	errTokenAlg        = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "The token's signing algorithm is not accepted here.")
	errTokenNoKey      = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "No key is known for the token.")
	errTokenSignature  = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "The token's signature is not valid.")
	errTokenExpired    = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "The token has expired.")
	errTokenNoExp      = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "The token has no expiry (exp claim), which this route requires.")
	errTokenNotYet     = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "The token is not valid yet.")
	errTokenIssuer     = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "The token's issuer is not accepted.")
	errTokenAudience   = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "The token's audience is not accepted.")
	errTokenNoConsumer = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "The token names no consumer.")
	errTokenUnknown    = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "The consumer the token names is not known.")
	// The JWKS has never been fetched: the token cannot be judged, which
	// is gatehouse's failure, not the client's.
	errKeysUnavailable = gatehouse.Errorf(gatehouse.EUNAVAILABLE, "The keys that verify tokens cannot be fetched now.")
)

// b64 decodes JWS segments: base64url without padding (RFC 7515 §2),
// strictly, so that one token has one spelling.
var b64 = base64.RawURLEncoding.Strict()

// jwtKey is a verification key of one algorithm: an HMAC secret, an RSA
// or a P-256 public key.
type jwtKey struct {
	kid    string
	alg    string
	secret []byte
	rsa    *rsa.PublicKey
	ec     *ecdsa.PublicKey
}

// matches reports whether k may verify a token of alg and kid. A key
// only ever verifies its own algorithm: an RSA key's bytes are never an
// HMAC secret (the alg-confusion attack). A token without a kid may be
// any key's of its alg, as with a JWKS: a kid only chooses among keys the
// policy trusts alike, so leaving it out gains nothing (and clients of a
// key converted from Kong, which has a kid, send none).
func (k *jwtKey) matches(alg, kid string) bool {
	return k.alg == alg && (kid == "" || k.kid == "" || k.kid == kid)
}

// verify checks sig over input, both as the token carries them.
func (k *jwtKey) verify(input string, sig []byte) bool {
	switch k.alg {
	case "HS256":
		mac := hmac.New(sha256.New, k.secret)
		mac.Write([]byte(input))
		return hmac.Equal(mac.Sum(nil), sig)
	case "RS256":
		sum := sha256.Sum256([]byte(input))
		return rsa.VerifyPKCS1v15(k.rsa, crypto.SHA256, sum[:], sig) == nil
	case "ES256":
		// JWS carries r||s, each 32 bytes big-endian (RFC 7518 §3.4),
		// not the ASN.1 form.
		if len(sig) != 64 {
			return false
		}
		sum := sha256.Sum256([]byte(input))
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(k.ec, sum[:], r, s)
	}
	return false
}

// staticKey compiles a configured key.
func staticKey(k gatehouse.JWTKey) (*jwtKey, error) {
	out := &jwtKey{kid: k.KeyID, alg: k.Alg}
	switch k.Alg {
	case "HS256":
		out.secret = []byte(k.Secret)
		return out, nil
	case "RS256", "ES256":
		pub, err := k.ParsePublicKey()
		if err != nil {
			return nil, err
		}
		switch pk := pub.(type) {
		case *rsa.PublicKey:
			out.rsa = pk
		case *ecdsa.PublicKey:
			out.ec = pk
		}
		return out, nil
	}
	return nil, fmt.Errorf("alg %q is not verified", k.Alg)
}

// jwtVerifier verifies bearer tokens for one auth policy and names their
// consumer.
type jwtVerifier struct {
	keys     []*jwtKey
	jwks     *jwks // nil: no JWKS URL
	issuer   string
	audience string
	claim    string
	leeway   time.Duration
	// requireExp refuses tokens without exp (RequireExp).
	requireExp bool
	consumers  *Consumers
	// ttl bounds how long a verdict on a token is kept without verifying
	// it again, so that a key dropped from the JWKS stops working within
	// about one cache period even for long-lived tokens.
	ttl time.Duration
	// good remembers tokens verified, bad tokens refused, each bounded on
	// its own: a flood of distinct bad tokens cannot evict the good ones.
	// A repeated bad token costs a hash, not a signature check.
	good, bad tokenCache
}

func newJWTVerifier(b *Build, p *gatehouse.Policy, c *gatehouse.JWTConfig) (*jwtVerifier, error) {
	v := &jwtVerifier{issuer: c.Issuer, audience: c.Audience, claim: c.ConsumerClaim,
		leeway: time.Duration(c.LeewaySeconds) * time.Second, requireExp: c.RequireExp, consumers: b.Consumers,
		ttl:  time.Duration(c.JWKSCacheSeconds) * time.Second,
		good: tokenCache{m: map[[sha256.Size]byte]tokenEntry{}},
		bad:  tokenCache{m: map[[sha256.Size]byte]tokenEntry{}}}
	for i, k := range c.Keys {
		jk, err := staticKey(k)
		if err != nil {
			return nil, fmt.Errorf("policy %q: jwt key %d: %v", p.ID, i, err)
		}
		v.keys = append(v.keys, jk)
	}
	if c.JWKSURL != "" {
		// One JWKS per policy, kept across revisions: redeploying does not
		// refetch it, and every route using the policy shares it.
		v.jwks = Get(b.Env.State, b.StateKey(p, false)+"#jwks", func() *jwks {
			return newJWKS(b.Env, c.JWKSURL, v.ttl)
		})
		v.jwks.prefetch()
	}
	return v, nil
}

// header is the part of a JOSE header that verification reads.
type header struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Crit json.RawMessage `json:"crit"`
}

// verify returns the consumer that tok names, or the error to answer
// with. A token seen before, judged against the keys in use now and
// within its lifetime, costs one hash and two map lookups. ctx bounds
// waiting for a JWKS fetch.
func (v *jwtVerifier) verify(ctx context.Context, tok string, now time.Time) (*Consumer, error) {
	sum := tokenSum(tok)
	nowNano := now.UnixNano()
	// The verdict is tied to the JWKS set it was reached with, taken
	// before verifying: a set fetched since (a key rotated in or out)
	// voids it. The configured keys cannot change within one verifier.
	set := v.keySet()
	if e, ok := v.good.get(sum, set, nowNano); ok {
		return e.consumer, nil
	}
	if e, ok := v.bad.get(sum, set, nowNano); ok {
		return nil, e.err
	}
	c, until, err := v.verifySlow(ctx, tok, now)
	if err != nil {
		if cacheable(err) {
			v.bad.put(sum, tokenEntry{err: err, set: set, until: nowNano + int64(v.ttl)}, nowNano)
		}
		return nil, err
	}
	v.good.put(sum, tokenEntry{consumer: c, set: set, until: min(until, nowNano+int64(v.ttl))}, nowNano)
	return c, nil
}

// keySet is the JWKS set in use; nil without a JWKS or before the first
// fetch.
func (v *jwtVerifier) keySet() *keySet {
	if v.jwks == nil {
		return nil
	}
	return v.jwks.current()
}

// cacheable reports whether a refusal holds for as long as the keys it
// was judged with do. Not a token that is not valid yet (time cures it),
// nor one naming a kid no key has (the JWKS may gain it at the next
// refetch, which a cached refusal would never ask for), nor keys that
// could not be fetched (gatehouse's failure, not the token's).
func cacheable(err error) bool {
	return err != errTokenNotYet && err != errTokenNoKey && gatehouse.ErrorCode(err) == gatehouse.EUNAUTHORIZED
}

// verifySlow verifies tok in full and returns its consumer and the time
// (Unix nanoseconds) past which the token is no longer valid.
func (v *jwtVerifier) verifySlow(ctx context.Context, tok string, now time.Time) (*Consumer, int64, error) {
	h64, rest, ok1 := strings.Cut(tok, ".")
	p64, s64, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || h64 == "" || p64 == "" || strings.IndexByte(s64, '.') >= 0 {
		return nil, 0, errTokenMalformed
	}
	hb, err := b64.DecodeString(h64)
	if err != nil {
		return nil, 0, errTokenMalformed
	}
	var hdr header
	if json.Unmarshal(hb, &hdr) != nil {
		return nil, 0, errTokenMalformed
	}
	switch hdr.Alg {
	case "HS256", "RS256", "ES256":
	default:
		return nil, 0, errTokenAlg // "none" included, in any spelling
	}
	if len(hdr.Crit) > 0 {
		// Extensions that must be understood; gatehouse understands none
		// (RFC 7515 §4.1.11).
		return nil, 0, errTokenMalformed
	}
	sig, err := b64.DecodeString(s64)
	if err != nil || len(sig) == 0 {
		return nil, 0, errTokenMalformed
	}
	input := tok[:len(h64)+1+len(p64)]
	if err := v.checkSignature(ctx, hdr.Alg, hdr.Kid, input, sig); err != nil {
		return nil, 0, err
	}

	pb, err := b64.DecodeString(p64)
	if err != nil {
		return nil, 0, errTokenMalformed
	}
	var claims map[string]json.RawMessage
	if json.Unmarshal(pb, &claims) != nil || claims == nil {
		return nil, 0, errTokenMalformed
	}
	nowSec := float64(now.UnixNano()) / 1e9
	leeway := v.leeway.Seconds()
	until := int64(math.MaxInt64)
	if _, ok := claims["exp"]; !ok && v.requireExp {
		return nil, 0, errTokenNoExp
	}
	if raw, ok := claims["exp"]; ok {
		exp, ok := numericDate(raw)
		if !ok {
			return nil, 0, errTokenMalformed
		}
		if nowSec >= exp+leeway {
			return nil, 0, errTokenExpired
		}
		until = int64(math.Min((exp+leeway)*1e9, math.MaxInt64/2))
	}
	if raw, ok := claims["nbf"]; ok {
		nbf, ok := numericDate(raw)
		if !ok {
			return nil, 0, errTokenMalformed
		}
		if nowSec+leeway < nbf {
			return nil, 0, errTokenNotYet
		}
	}
	if v.issuer != "" {
		var iss string
		if json.Unmarshal(claims["iss"], &iss) != nil || iss != v.issuer {
			return nil, 0, errTokenIssuer
		}
	}
	if v.audience != "" && !hasAudience(claims["aud"], v.audience) {
		return nil, 0, errTokenAudience
	}
	var name string
	if json.Unmarshal(claims[v.claim], &name) != nil || name == "" {
		return nil, 0, errTokenNoConsumer
	}
	c := v.consumers.ByIDOrName(name)
	if c == nil {
		return nil, 0, errTokenUnknown
	}
	return c, until, nil
}

// checkSignature verifies sig with the keys that may have made it: the
// configured ones, then the JWKS's, fetching the JWKS again when the
// token names a kid it does not have (a key rotated in).
func (v *jwtVerifier) checkSignature(ctx context.Context, alg, kid, input string, sig []byte) error {
	tried := false
	for _, k := range v.keys {
		if k.matches(alg, kid) {
			tried = true
			if k.verify(input, sig) {
				return nil
			}
		}
	}
	// A JWKS never serves HMAC secrets (parseJWKS): HS256 tokens need
	// not wait for it.
	if v.jwks != nil && alg != "HS256" {
		set, err := v.jwks.keys(ctx)
		if err != nil {
			// Never fetched: whether a JWKS key made the token is unknown.
			return err
		}
		if kid != "" && !set.hasKid(kid) && !v.hasStaticKid(kid) {
			set = v.jwks.refetch(ctx)
		}
		for _, k := range set.keys {
			// A token without a kid may be any key's of its alg: it
			// gives nothing to choose by.
			if k.alg == alg && (kid == "" || k.kid == "" || k.kid == kid) {
				tried = true
				if k.verify(input, sig) {
					return nil
				}
			}
		}
	}
	if !tried {
		if v.hasAlg(alg) {
			return errTokenNoKey
		}
		return errTokenAlg
	}
	return errTokenSignature
}

// hasStaticKid reports whether a configured key has that kid.
func (v *jwtVerifier) hasStaticKid(kid string) bool {
	for _, k := range v.keys {
		if k.kid == kid {
			return true
		}
	}
	return false
}

// hasAlg reports whether a key of alg could verify: a configured key of
// it, or, with a JWKS, any public-key alg (the JWKS may gain the key).
func (v *jwtVerifier) hasAlg(alg string) bool {
	for _, k := range v.keys {
		if k.alg == alg {
			return true
		}
	}
	return v.jwks != nil && alg != "HS256"
}

// numericDate reads a NumericDate claim: seconds since the epoch, perhaps
// fractional (RFC 7519 §2).
func numericDate(raw json.RawMessage) (float64, bool) {
	var f float64
	if json.Unmarshal(raw, &f) != nil {
		return 0, false
	}
	return f, true
}

// hasAudience reports whether the aud claim, a string or an array of
// strings (RFC 7519 §4.1.3), holds want.
func hasAudience(raw json.RawMessage, want string) bool {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one == want
	}
	var many []string
	if json.Unmarshal(raw, &many) != nil {
		return false
	}
	for _, a := range many {
		if a == want {
			return true
		}
	}
	return false
}

// maxTokens bounds each cache of verdicts; past it, expired entries go,
// and if that is not enough the cache starts afresh.
const maxTokens = 10_000

// tokenCache remembers verdicts on tokens by SHA-256, so that no token
// is held, until they expire.
type tokenCache struct {
	mu sync.RWMutex
	m  map[[sha256.Size]byte]tokenEntry
}

// tokenEntry is a verdict: the consumer of a good token, or the error
// that refused a bad one.
type tokenEntry struct {
	consumer *Consumer
	err      error
	// set is the JWKS set the verdict was reached with.
	set   *keySet
	until int64 // Unix nanoseconds
}

// get returns the verdict on sum if it was reached with set and has not
// expired.
func (c *tokenCache) get(sum [sha256.Size]byte, set *keySet, now int64) (tokenEntry, bool) {
	c.mu.RLock()
	e, ok := c.m[sum]
	c.mu.RUnlock()
	if !ok || now >= e.until || e.set != set {
		return tokenEntry{}, false
	}
	return e, true
}

func (c *tokenCache) put(sum [sha256.Size]byte, e tokenEntry, now int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxTokens {
		for k, old := range c.m {
			if now >= old.until {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxTokens {
			clear(c.m)
		}
	}
	c.m[sum] = e
}

// scratch holds tokens while they are hashed: sha256.Sum256 takes bytes,
// and converting a token of a few hundred bytes would allocate.
var scratch = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func tokenSum(tok string) [sha256.Size]byte {
	bp := scratch.Get().(*[]byte)
	b := append((*bp)[:0], tok...)
	sum := sha256.Sum256(b)
	*bp = b[:0]
	scratch.Put(bp)
	return sum
}
