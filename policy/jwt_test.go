package policy

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/testenv"
)

// Keys are generated once per test binary: RSA generation is slow under
// the race detector.
var (
	jwtKeysOnce sync.Once
	rsaKey1     *rsa.PrivateKey
	rsaKey2     *rsa.PrivateKey
	ecKey1      *ecdsa.PrivateKey
)

func jwtTestKeys(t testing.TB) {
	t.Helper()
	jwtKeysOnce.Do(func() {
		var err error
		if rsaKey1, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if rsaKey2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if ecKey1, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
	})
}

var hsSecret = []byte("0123456789abcdef0123456789abcdef") // 32 bytes, the minimum

// signJWT makes a compact JWS of payload with alg and key (a []byte
// secret, an *rsa.PrivateKey or an *ecdsa.PrivateKey), with kid in the
// header if not empty and any extra header members.
func signJWT(t testing.TB, alg string, key any, kid string, payload map[string]any, extra ...any) string {
	t.Helper()
	hdr := map[string]any{"alg": alg, "typ": "JWT"}
	if kid != "" {
		hdr["kid"] = kid
	}
	for i := 0; i+1 < len(extra); i += 2 {
		hdr[extra[i].(string)] = extra[i+1]
	}
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	input := enc(hdr) + "." + enc(payload)
	sum := sha256.Sum256([]byte(input))
	var sig []byte
	switch k := key.(type) {
	case []byte:
		mac := hmac.New(sha256.New, k)
		mac.Write([]byte(input))
		sig = mac.Sum(nil)
	case *rsa.PrivateKey:
		var err error
		if sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:]); err != nil {
			t.Fatal(err)
		}
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		sig = append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	case nil:
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func pemOfKey(t testing.TB, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

var tokenEpoch = time.Unix(1_700_000_000, 0)

// jwtConsumers is alice (id c-alice) and bob (id c-bob).
func jwtConsumers(t testing.TB) *Consumers {
	t.Helper()
	rev := &gatehouse.Revision{Consumers: []*gatehouse.Consumer{
		{Meta: gatehouse.Meta{ID: "c-alice"}, Name: "alice", Groups: []string{"staff"}},
		{Meta: gatehouse.Meta{ID: "c-bob"}, Name: "bob"},
	}}
	cs, err := newConsumers(rev)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// newTestVerifier compiles cfg (defaults filled in first by edit) as an auth
// policy's jwt block would be.
func newTestVerifier(t testing.TB, clock *testClock, client *http.Client, edit func(*gatehouse.JWTConfig)) *jwtVerifier {
	t.Helper()
	cfg := &gatehouse.JWTConfig{}
	cfg.SetDefaults()
	edit(cfg)
	env := &Env{State: NewState(), Now: clock.Now, Context: t.Context(), HTTPClient: client,
		Log: slog.New(slog.DiscardHandler)}
	b := &Build{Env: env, Route: &gatehouse.Route{Meta: gatehouse.Meta{ID: "r"}}, Consumers: jwtConsumers(t)}
	v, err := newJWTVerifier(b, &gatehouse.Policy{Meta: gatehouse.Meta{ID: "p", Version: 1}}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func jwtClaims(kv ...any) map[string]any {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

func TestJWTVerification(t *testing.T) {
	jwtTestKeys(t)
	now := tokenEpoch.Unix()
	staticKeys := func(c *gatehouse.JWTConfig) {
		c.Keys = []gatehouse.JWTKey{
			{Alg: "HS256", Secret: string(hsSecret)},
			{KeyID: "rsa1", Alg: "RS256", PublicKey: pemOfKey(t, &rsaKey1.PublicKey)},
			{KeyID: "ec1", Alg: "ES256", PublicKey: pemOfKey(t, &ecKey1.PublicKey)},
		}
		c.Issuer, c.Audience = "https://issuer.example", "api"
	}
	expOptional := func(c *gatehouse.JWTConfig) { staticKeys(c); c.RequireExp = false }
	hsWithKid := func(c *gatehouse.JWTConfig) {
		c.Keys = []gatehouse.JWTKey{{KeyID: "hs1", Alg: "HS256", Secret: string(hsSecret)}}
	}
	onlyRSA := func(c *gatehouse.JWTConfig) {
		c.Keys = []gatehouse.JWTKey{{Alg: "RS256", PublicKey: pemOfKey(t, &rsaKey1.PublicKey)}}
	}
	ok := func(kv ...any) map[string]any {
		return jwtClaims(append([]any{"iss", "https://issuer.example", "aud", "api", "sub", "c-alice", "exp", now + 60}, kv...)...)
	}
	rsaPEM := []byte(pemOfKey(t, &rsaKey1.PublicKey))
	hs := func(c map[string]any) string { return signJWT(t, "HS256", hsSecret, "", c) }
	good := hs(ok())
	for _, tc := range []struct {
		desc   string
		config func(*gatehouse.JWTConfig)
		token  string
		want   error  // nil: verifies
		wantID string // the consumer's id when it verifies
	}{
		{"HS256 naming the consumer by id", staticKeys, good, nil, "c-alice"},
		{"RS256 naming the consumer by name", staticKeys, signJWT(t, "RS256", rsaKey1, "rsa1", ok("sub", "bob")), nil, "c-bob"},
		{"ES256", staticKeys, signJWT(t, "ES256", ecKey1, "ec1", ok()), nil, "c-alice"},
		{"consumer names are exact: another case names nobody", staticKeys, hs(ok("sub", "ALICE")), errTokenUnknown, ""},
		{"aud as an array holding the audience", staticKeys, hs(ok("aud", []string{"other", "api"})), nil, "c-alice"},
		{"expired within the leeway", staticKeys, hs(ok("exp", now-10)), nil, "c-alice"},
		{"fractional exp", staticKeys, hs(ok("exp", float64(now)+0.5)), nil, "c-alice"},
		{"nbf within the leeway", staticKeys, hs(ok("nbf", now+10)), nil, "c-alice"},
		{"no exp where require_exp is off", expOptional, hs(jwtClaims("iss", "https://issuer.example", "aud", "api", "sub", "bob")), nil, "c-bob"},
		{"no exp: refused by default", staticKeys, hs(jwtClaims("iss", "https://issuer.example", "aud", "api", "sub", "bob")), errTokenNoExp, ""},

		{"expired", staticKeys, hs(ok("exp", now-31)), errTokenExpired, ""},
		{"not yet valid", staticKeys, hs(ok("nbf", now+31)), errTokenNotYet, ""},
		{"signed with another secret", staticKeys, signJWT(t, "HS256", []byte("another secret of thirty-two bytes!"), "", ok()), errTokenSignature, ""},
		{"RS256 signed by another key", staticKeys, signJWT(t, "RS256", rsaKey2, "rsa1", ok()), errTokenSignature, ""},
		{"ES256 signature in ASN.1 form", staticKeys, signES256ASN1(t, ok()), errTokenSignature, ""},
		{"payload changed after signing", staticKeys, tamperPayload(t, good), errTokenSignature, ""},
		{"alg none", staticKeys, signJWT(t, "none", nil, "", ok()), errTokenAlg, ""},
		{"alg None", staticKeys, signJWT(t, "None", nil, "", ok()), errTokenAlg, ""},
		{"alg none with a signature", staticKeys, signJWT(t, "none", hsSecret, "", ok()), errTokenAlg, ""},
		{"alg RS512", staticKeys, signJWT(t, "RS512", rsaKey1, "rsa1", ok()), errTokenAlg, ""},
		{"alg confusion: HS256 with the RSA key's PEM as secret", onlyRSA, signJWT(t, "HS256", rsaPEM, "", ok()), errTokenAlg, ""},
		{"alg confusion with an HMAC key configured too", staticKeys, signJWT(t, "HS256", rsaPEM, "", ok()), errTokenSignature, ""},
		{"alg confusion: ES256 header on an RSA signature", staticKeys, relabelAlg(t, signJWT(t, "RS256", rsaKey1, "ec1", ok()), "ES256"), errTokenSignature, ""},
		{"no kid: tried against a key that has one", hsWithKid, signJWT(t, "HS256", hsSecret, "", jwtClaims("sub", "c-alice", "exp", now+60)), nil, "c-alice"},
		{"another kid: not tried against a key that has one", hsWithKid, signJWT(t, "HS256", hsSecret, "hs2", jwtClaims("sub", "c-alice", "exp", now+60)), errTokenNoKey, ""},
		{"unknown kid", staticKeys, signJWT(t, "RS256", rsaKey1, "rsa9", ok()), errTokenNoKey, ""},
		{"wrong issuer", staticKeys, hs(ok("iss", "https://evil.example")), errTokenIssuer, ""},
		{"no issuer", staticKeys, hs(jwtClaims("aud", "api", "sub", "c-alice", "exp", now+60)), errTokenIssuer, ""},
		{"wrong audience", staticKeys, hs(ok("aud", "other")), errTokenAudience, ""},
		{"audience array without it", staticKeys, hs(ok("aud", []string{"a", "b"})), errTokenAudience, ""},
		{"no sub", staticKeys, hs(jwtClaims("iss", "https://issuer.example", "aud", "api", "exp", now+60)), errTokenNoConsumer, ""},
		{"sub not a string", staticKeys, hs(ok("sub", 42)), errTokenNoConsumer, ""},
		{"unknown consumer", staticKeys, hs(ok("sub", "mallory")), errTokenUnknown, ""},
		{"crit header", staticKeys, signJWT(t, "HS256", hsSecret, "", ok(), "crit", []string{"exp"}), errTokenMalformed, ""},
		{"exp not a number", staticKeys, hs(ok("exp", "tomorrow")), errTokenMalformed, ""},

		{"one segment", staticKeys, "abc", errTokenMalformed, ""},
		{"two segments", staticKeys, "abc.def", errTokenMalformed, ""},
		{"four segments", staticKeys, good + ".x", errTokenMalformed, ""},
		{"empty signature", staticKeys, good[:len(good)-43], errTokenMalformed, ""},
		{"header not base64url", staticKeys, "e*J." + good[len(good)-100:], errTokenMalformed, ""},
		{"padded segment", staticKeys, good + "=", errTokenMalformed, ""},
		{"header not JSON", staticKeys, b64Str("not json") + ".e30." + b64Str("sig"), errTokenMalformed, ""},
		{"payload not a JSON object", staticKeys, signRawHS(t, `{"alg":"HS256"}`, `[1,2]`), errTokenMalformed, ""},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			v := newTestVerifier(t, testenv.NewClock(tokenEpoch), nil, tc.config)
			c, err := v.verify(context.Background(), tc.token, tokenEpoch)
			if err != tc.want {
				t.Fatalf("got error %v; want %v", err, tc.want)
			}
			if tc.want == nil && (c == nil || c.ID != tc.wantID) {
				t.Fatalf("got consumer %+v; want %s", c, tc.wantID)
			}
		})
	}
}

func b64Str(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// signRawHS signs a raw header and payload with hsSecret.
func signRawHS(t *testing.T, hdr, payload string) string {
	input := b64Str(hdr) + "." + b64Str(payload)
	mac := hmac.New(sha256.New, hsSecret)
	mac.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// tamperPayload replaces a token's payload with one naming bob, keeping the
// signature.
func tamperPayload(t *testing.T, tok string) string {
	parts := splitJWT(t, tok)
	b, _ := json.Marshal(jwtClaims("iss", "https://issuer.example", "aud", "api", "sub", "c-bob", "exp", tokenEpoch.Unix()+60))
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
}

// relabelAlg swaps the alg in a token's header, keeping the signature.
func relabelAlg(t *testing.T, tok, alg string) string {
	parts := splitJWT(t, tok)
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var h map[string]any
	json.Unmarshal(hb, &h)
	h["alg"] = alg
	hb, _ = json.Marshal(h)
	return base64.RawURLEncoding.EncodeToString(hb) + "." + parts[1] + "." + parts[2]
}

func splitJWT(t *testing.T, tok string) [3]string {
	var out [3]string
	n := 0
	start := 0
	for i := 0; i <= len(tok); i++ {
		if i == len(tok) || tok[i] == '.' {
			if n == 3 {
				t.Fatalf("token %q has more than three segments", tok)
			}
			out[n] = tok[start:i]
			n++
			start = i + 1
		}
	}
	return out
}

// signES256ASN1 signs with the EC key in ASN.1 DER form, which JWS does not use.
func signES256ASN1(t *testing.T, c map[string]any) string {
	tok := signJWT(t, "ES256", ecKey1, "ec1", c)
	parts := splitJWT(t, tok)
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	der, err := ecdsa.SignASN1(rand.Reader, ecKey1, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(der)
}

func TestVerifiedTokenIsCachedUntilItExpires(t *testing.T) {
	clock := testenv.NewClock(tokenEpoch)
	v := newTestVerifier(t, clock, nil, func(c *gatehouse.JWTConfig) {
		c.Keys = []gatehouse.JWTKey{{Alg: "HS256", Secret: string(hsSecret)}}
		c.LeewaySeconds = 0
	})
	tok := signJWT(t, "HS256", hsSecret, "", jwtClaims("sub", "alice", "exp", tokenEpoch.Unix()+60))
	if _, err := v.verify(context.Background(), tok, tokenEpoch); err != nil {
		t.Fatal(err)
	}
	// With the keys gone, only the cache can still vouch for the token.
	v.keys = nil
	if c, err := v.verify(context.Background(), tok, tokenEpoch.Add(59*time.Second)); err != nil || c.Name != "alice" {
		t.Fatalf("repeated token: %v, %v; want alice from the cache", c, err)
	}
	if _, err := v.verify(context.Background(), tok, tokenEpoch.Add(60*time.Second)); err == nil {
		t.Fatal("the cache vouched for a token past its exp")
	}
}

// TestRefusedTokenIsCachedUntilTheKeysChange proves that a bad token
// repeated costs no second signature check, and that a refusal is
// forgotten once the keys it was judged with are replaced.
func TestRefusedTokenIsCachedUntilTheKeysChange(t *testing.T) {
	jwtTestKeys(t)
	exp := tokenEpoch.Unix() + 3600
	t.Run("configured keys", func(t *testing.T) {
		v := newTestVerifier(t, testenv.NewClock(tokenEpoch), nil, func(c *gatehouse.JWTConfig) {
			c.Keys = []gatehouse.JWTKey{{Alg: "RS256", PublicKey: pemOfKey(t, &rsaKey1.PublicKey)}}
		})
		tok := signJWT(t, "RS256", rsaKey2, "", jwtClaims("sub", "alice", "exp", exp))
		if _, err := v.verify(context.Background(), tok, tokenEpoch); err != errTokenSignature {
			t.Fatalf("got %v; want %v", err, errTokenSignature)
		}
		// With a key that would verify it, only the cache can still
		// refuse the token: it was not checked again.
		k, err := staticKey(gatehouse.JWTKey{Alg: "RS256", PublicKey: pemOfKey(t, &rsaKey2.PublicKey)})
		if err != nil {
			t.Fatal(err)
		}
		v.keys = []*jwtKey{k}
		if _, err := v.verify(context.Background(), tok, tokenEpoch.Add(time.Second)); err != errTokenSignature {
			t.Fatalf("repeated bad token: got %v; want %v from the cache", err, errTokenSignature)
		}
	})
	t.Run("a JWKS refresh forgets refusals", func(t *testing.T) {
		srv := newTestJWKSServer(t, rsaJWKOf("k1", &rsaKey1.PublicKey))
		clock := testenv.NewClock(tokenEpoch)
		v := newTestVerifier(t, clock, srv.Client(), func(c *gatehouse.JWTConfig) { c.JWKSURL = srv.URL; c.JWKSCacheSeconds = 60 })
		settleJWKS(v.jwks)
		// Judged halfway through the set's cache period, the refusal
		// would by its own time outlive the set.
		clock.Advance(30 * time.Second)
		tok := signJWT(t, "RS256", rsaKey2, "k1", jwtClaims("sub", "alice", "exp", exp))
		if _, err := v.verify(context.Background(), tok, clock.Now()); err != errTokenSignature {
			t.Fatalf("got %v; want %v", err, errTokenSignature)
		}
		before := srv.fetches.Load()
		if _, err := v.verify(context.Background(), tok, clock.Now()); err != errTokenSignature {
			t.Fatalf("repeated: got %v; want %v", err, errTokenSignature)
		}
		// k1 is re-keyed to the key that signed the token; the refresh
		// past the cache period must void the refusal.
		srv.set(rsaJWKOf("k1", &rsaKey2.PublicKey))
		clock.Advance(31 * time.Second)
		v.verify(context.Background(), signJWT(t, "RS256", rsaKey1, "k1", jwtClaims("sub", "bob", "exp", exp)), clock.Now())
		settleJWKS(v.jwks)
		if got := srv.fetches.Load(); got != before+1 {
			t.Fatalf("fetches %d; want %d (one refresh)", got, before+1)
		}
		if c, err := v.verify(context.Background(), tok, clock.Now()); err != nil || c.ID != "c-alice" {
			t.Fatalf("after the refresh: %v, %v; want c-alice (the refusal forgotten)", c, err)
		}
	})
	t.Run("refusals do not evict verified tokens", func(t *testing.T) {
		v := newTestVerifier(t, testenv.NewClock(tokenEpoch), nil, func(c *gatehouse.JWTConfig) {
			c.Keys = []gatehouse.JWTKey{{Alg: "HS256", Secret: string(hsSecret)}}
		})
		good := signJWT(t, "HS256", hsSecret, "", jwtClaims("sub", "alice", "exp", exp))
		if _, err := v.verify(context.Background(), good, tokenEpoch); err != nil {
			t.Fatal(err)
		}
		for i := range maxTokens + 1 {
			v.verify(context.Background(), signJWT(t, "HS256", []byte("another secret of thirty-two bytes!"), "", jwtClaims("sub", "x", "jti", i, "exp", exp)), tokenEpoch)
		}
		v.keys = nil
		if _, err := v.verify(context.Background(), good, tokenEpoch); err != nil {
			t.Fatalf("verified token after a flood of bad ones: %v; want it still cached", err)
		}
	})
}

func TestTokenCacheIsBounded(t *testing.T) {
	var c tokenCache
	c.m = map[[sha256.Size]byte]tokenEntry{}
	alice := &Consumer{ID: "a"}
	for i := range maxTokens + 10 {
		c.put(tokenSum("tok"+strconv.Itoa(i)), tokenEntry{consumer: alice, until: 100}, 50)
	}
	if n := len(c.m); n > maxTokens {
		t.Fatalf("cache holds %d tokens; want at most %d", n, maxTokens)
	}
}

// testJWKSServer serves a JWKS that a test may change, counting fetches.
type testJWKSServer struct {
	*httptest.Server
	doc     atomic.Pointer[[]byte]
	fetches atomic.Int32
}

func newTestJWKSServer(t *testing.T, keys ...map[string]any) *testJWKSServer {
	s := &testJWKSServer{}
	s.set(keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(*s.doc.Load())
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *testJWKSServer) set(keys ...map[string]any) {
	b, _ := json.Marshal(map[string]any{"keys": keys})
	s.doc.Store(&b)
}

func rsaJWKOf(kid string, k *rsa.PublicKey) map[string]any {
	return map[string]any{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString([]byte{1, 0, 1})}
}

func ecJWKOf(kid string, k *ecdsa.PublicKey) map[string]any {
	b, _ := k.Bytes() // 0x04 || X || Y
	return map[string]any{"kty": "EC", "kid": kid, "crv": "P-256",
		"x": base64.RawURLEncoding.EncodeToString(b[1:33]), "y": base64.RawURLEncoding.EncodeToString(b[33:])}
}

// settleJWKS waits for a background JWKS fetch, if one runs.
func settleJWKS(j *jwks) {
	j.mu.Lock()
	done := j.inflight
	j.mu.Unlock()
	if done != nil {
		<-done
	}
}

func TestJWKSFetchCacheRefetchAndOutage(t *testing.T) {
	jwtTestKeys(t)
	srv := newTestJWKSServer(t, rsaJWKOf("k1", &rsaKey1.PublicKey),
		// Never trusted: a symmetric key, and an encryption key.
		map[string]any{"kty": "oct", "kid": "hs", "k": base64.RawURLEncoding.EncodeToString(hsSecret)},
		map[string]any{"kty": "EC", "kid": "enc", "use": "enc", "crv": "P-256"})
	clock := testenv.NewClock(tokenEpoch)
	v := newTestVerifier(t, clock, srv.Client(), func(c *gatehouse.JWTConfig) { c.JWKSURL = srv.URL })
	n := 0
	token := func(alg string, key any, kid string) string {
		n++ // distinct tokens, so that none is answered from the token cache
		return signJWT(t, alg, key, kid, jwtClaims("sub", "alice", "jti", n, "exp", tokenEpoch.Unix()+3600))
	}
	check := func(step, tok string, want error, fetches int32) {
		t.Helper()
		_, err := v.verify(context.Background(), tok, clock.Now())
		settleJWKS(v.jwks)
		if err != want {
			t.Fatalf("%s: got error %v; want %v", step, err, want)
		}
		if got := srv.fetches.Load(); got != fetches {
			t.Fatalf("%s: the JWKS was fetched %d times; want %d", step, got, fetches)
		}
	}

	check("first token, fetched at compile", token("RS256", rsaKey1, "k1"), nil, 1)
	check("another token while the set is fresh", token("RS256", rsaKey1, "k1"), nil, 1)
	check("a token without a kid tries the set's keys", token("RS256", rsaKey1, ""), nil, 1)
	check("the JWKS's symmetric key is no HMAC secret", token("HS256", hsSecret, "hs"), errTokenAlg, 1)
	check("unknown kid right after a fetch: no refetch", token("ES256", ecKey1, "k2"), errTokenNoKey, 1)

	srv.set(rsaJWKOf("k1", &rsaKey1.PublicKey), ecJWKOf("k2", &ecKey1.PublicKey))
	clock.Advance(jwksMinInterval)
	check("unknown kid later: refetched, and the rotated-in key verifies", token("ES256", ecKey1, "k2"), nil, 2)
	check("a known kid does not refetch", token("ES256", ecKey1, "k2"), nil, 2)

	srv.Close()
	clock.Advance(time.Duration(300) * time.Second)
	check("server down, set stale: cached keys still verify", token("RS256", rsaKey1, "k1"), nil, 2)
	clock.Advance(jwksMinInterval)
	check("server down: an unknown kid is refused", token("RS256", rsaKey2, "k3"), errTokenNoKey, 2)
}

func TestJWKSStaleSetIsRefreshedInTheBackground(t *testing.T) {
	jwtTestKeys(t)
	srv := newTestJWKSServer(t, rsaJWKOf("k1", &rsaKey1.PublicKey))
	clock := testenv.NewClock(tokenEpoch)
	v := newTestVerifier(t, clock, srv.Client(), func(c *gatehouse.JWTConfig) { c.JWKSURL = srv.URL; c.JWKSCacheSeconds = 60 })
	exp := tokenEpoch.Unix() + 3600
	tok := signJWT(t, "RS256", rsaKey1, "k1", jwtClaims("sub", "alice", "exp", exp))
	if _, err := v.verify(context.Background(), tok, clock.Now()); err != nil {
		t.Fatal(err)
	}
	// k1 is withdrawn. Past the cache period, the first request still
	// uses the old set and starts a fetch; once it lands, k1 is refused.
	srv.set(rsaJWKOf("k2", &rsaKey2.PublicKey))
	clock.Advance(61 * time.Second)
	tok2 := signJWT(t, "RS256", rsaKey1, "k1", jwtClaims("sub", "bob", "exp", exp))
	if _, err := v.verify(context.Background(), tok2, clock.Now()); err != nil {
		t.Fatalf("stale set: %v; want the old keys used while refreshing", err)
	}
	settleJWKS(v.jwks)
	if got := srv.fetches.Load(); got != 2 {
		t.Fatalf("fetches %d; want 2 (compile, refresh)", got)
	}
	tok3 := signJWT(t, "RS256", rsaKey1, "k1", jwtClaims("sub", "alice", "jti", 3, "exp", exp))
	if _, err := v.verify(context.Background(), tok3, clock.Now()); err != errTokenNoKey {
		t.Fatalf("withdrawn key after the refresh: %v; want %v", err, errTokenNoKey)
	}
	// The first token was verified before the withdrawal, but the token
	// cache keeps nothing longer than the JWKS cache period.
	if _, err := v.verify(context.Background(), tok, clock.Now()); err != errTokenNoKey {
		t.Fatalf("token cached across the key's withdrawal: %v; want %v", err, errTokenNoKey)
	}
}

func TestJWKSNeverFetchedIs503(t *testing.T) {
	jwtTestKeys(t)
	srv := newTestJWKSServer(t)
	url := srv.URL
	srv.Close()
	v := newTestVerifier(t, testenv.NewClock(tokenEpoch), srv.Client(), func(c *gatehouse.JWTConfig) { c.JWKSURL = url })
	_, err := v.verify(context.Background(), signJWT(t, "RS256", rsaKey1, "k1", jwtClaims("sub", "alice")), tokenEpoch)
	if err != errKeysUnavailable || gatehouse.ErrorCode(err) != gatehouse.EUNAVAILABLE {
		t.Fatalf("got %v; want %v (503: the token cannot be judged)", err, errKeysUnavailable)
	}
}

func TestParseJWKSSkipsKeysItCannotUse(t *testing.T) {
	jwtTestKeys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	bad := ecJWKOf("off-curve", &ecKey1.PublicKey)
	bad["y"] = base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	rs384 := rsaJWKOf("rs384", &rsaKey1.PublicKey)
	rs384["alg"] = "RS384"
	doc, _ := json.Marshal(map[string]any{"keys": []any{
		rsaJWKOf("ok-rsa", &rsaKey1.PublicKey), ecJWKOf("ok-ec", &ecKey1.PublicKey),
		rsaJWKOf("small", &small.PublicKey), bad, rs384,
		map[string]any{"kty": "oct", "kid": "hs", "k": "c2VjcmV0"},
		map[string]any{"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "AAAA"},
	}})
	keys, err := parseJWKS(doc)
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range keys {
		kids = append(kids, k.kid+"/"+k.alg)
	}
	if len(kids) != 2 || kids[0] != "ok-rsa/RS256" || kids[1] != "ok-ec/ES256" {
		t.Fatalf("kept %v; want [ok-rsa/RS256 ok-ec/ES256]", kids)
	}
	for _, doc := range []string{`not json`, `{"no":"keys"}`, `[]`} {
		if _, err := parseJWKS([]byte(doc)); err == nil {
			t.Errorf("parseJWKS(%s) succeeded; want an error", doc)
		}
	}
}

// TestHS256KeyRemovedByAnUpdateWithoutSecretsStopsVerifying: a client
// removes one of two HS256 keys by sending back what it read (secrets
// hidden) without it. The stored secret each kept key gets must be its
// own: the removed key's tokens fail, the kept one's verify, with or
// without its kid in the header.
func TestHS256KeyRemovedByAnUpdateWithoutSecretsStopsVerifying(t *testing.T) {
	secrets := map[string][]byte{"ka": []byte("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), "kb": []byte("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")}
	current := &gatehouse.Policy{Name: "jwt", Type: gatehouse.PolicyAuth, Config: json.RawMessage(
		`{"jwt":{"keys":[{"kid":"ka","alg":"HS256","secret":"` + string(secrets["ka"]) + `"},{"kid":"kb","alg":"HS256","secret":"` + string(secrets["kb"]) + `"}]}}`)}
	current.Normalize()
	current.Hide()
	for _, tc := range []struct{ removed, kept string }{{"ka", "kb"}, {"kb", "ka"}} {
		t.Run("without "+tc.removed, func(t *testing.T) {
			next := &gatehouse.Policy{Name: "jwt", Type: gatehouse.PolicyAuth, Config: json.RawMessage(
				`{"jwt":{"keys":[{"kid":"` + tc.kept + `","alg":"HS256"}]}}`)}
			gatehouse.KeepHidden(next, current)
			if bad, semantic := gatehouse.NormalizeAndCheck(next); len(bad)+len(semantic) > 0 {
				t.Fatalf("update refused: %v %v", bad, semantic)
			}
			cfg, err := next.DecodeConfig()
			if err != nil {
				t.Fatal(err)
			}
			v := newTestVerifier(t, testenv.NewClock(tokenEpoch), nil, func(c *gatehouse.JWTConfig) {
				c.Keys = cfg.(*gatehouse.AuthConfig).JWT.Keys
			})
			claims := jwtClaims("sub", "c-alice", "exp", tokenEpoch.Unix()+60)
			for _, check := range []struct {
				desc   string
				secret []byte
				kid    string
				want   error
			}{
				{"kept key, its kid", secrets[tc.kept], tc.kept, nil},
				{"kept key, no kid", secrets[tc.kept], "", nil},
				{"removed key, its kid", secrets[tc.removed], tc.removed, errTokenNoKey},
				{"removed key, no kid", secrets[tc.removed], "", errTokenSignature},
				{"removed key, the kept key's kid", secrets[tc.removed], tc.kept, errTokenSignature},
			} {
				if _, err := v.verify(context.Background(), signJWT(t, "HS256", check.secret, check.kid, claims), tokenEpoch); err != check.want {
					t.Errorf("%s: got error %v; want %v", check.desc, err, check.want)
				}
			}
		})
	}
}
