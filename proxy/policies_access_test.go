package proxy

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testupstream"
)

// The consumers of these tests: alice (staff, ops) with an API key, bob
// (no group), carol (admins) with an API key. Bob's basic-auth password is
// added only where a test uses it: hashing it costs PBKDF2's work.
const (
	aliceAPIKey      = "alice-key-0123456789abcdef"
	carolAPIKey      = "carol-key-0123456789abcdef"
	bobBasicPassword = "bob-password-1"
	// jwtHS256Secret is a 32-byte HS256 secret, the shortest allowed.
	jwtHS256Secret = "0123456789abcdef0123456789abcdef"
)

// accessFixture is an upstream and a revision with alice, bob and carol.
func accessFixture(t *testing.T) (*testupstream.Upstream, *policyFixture) {
	t.Helper()
	up := testupstream.Start(t)
	f := newPolicyFixture(t, up.URL).
		consumer("c-alice", "alice", "staff", "ops").key("c-alice", aliceAPIKey).
		consumer("c-bob", "bob").
		consumer("c-carol", "carol", "admins").key("c-carol", carolAPIKey)
	return up, f
}

// allSchemes is an auth policy taking every scheme, the key from a header
// or the query, HS256 tokens signed with jwtHS256Secret.
const allSchemes = `{"name":"auth","type":"auth","config":{"realm":"shop",
	"key_auth":{"header":"X-API-Key","query":"api_key"},"basic_auth":{},
	"jwt":{"keys":[{"alg":"HS256","secret":"` + jwtHS256Secret + `"}]}}}`

func authChallenges(r *response) []string { return r.header.Values("WWW-Authenticate") }

func TestMissingCredentialsReturn401WithAChallengePerScheme(t *testing.T) {
	up, f := accessFixture(t)
	g := newGateway(t)
	g.apply(f.policy(allSchemes).rev)
	r := g.get("/echo", "Authorization", "Digest username=x") // a scheme the route does not take
	doc := assertProblem(t, r, http.StatusUnauthorized)
	want := []string{`ApiKey realm="shop", header="X-API-Key", query="api_key"`,
		`Basic realm="shop", charset="UTF-8"`, `Bearer realm="shop"`}
	if got := authChallenges(r); !slices.Equal(got, want) {
		t.Fatalf("WWW-Authenticate %q; want %q", got, want)
	}
	if doc["detail"] != "This route requires credentials, and none were presented." {
		t.Fatalf("detail %q", doc["detail"])
	}
	if n := up.Requests(); n != 0 {
		t.Fatalf("the upstream saw %d requests; want 0", n)
	}
}

func TestWrongAPIKeyReturns401(t *testing.T) {
	up, f := accessFixture(t)
	g := newGateway(t)
	g.apply(f.basic("c-bob", "bob", bobBasicPassword).policy(allSchemes).rev)
	const wrong = "not-a-key-0123456789abcdef"
	for _, r := range []*response{
		g.get("/echo", "X-API-Key", wrong),
		g.get("/echo?api_key=" + wrong),
		// The first credential present is judged: a wrong key is not
		// rescued by good basic credentials after it.
		g.get("/echo", "X-API-Key", wrong, "Authorization", basicAuthHeader("bob", bobBasicPassword)),
	} {
		doc := assertProblem(t, r, http.StatusUnauthorized)
		if doc["detail"] != "The API key is not valid." || len(authChallenges(r)) != 3 {
			t.Fatalf("detail %q, challenges %q; want the key refused with every scheme offered", doc["detail"], authChallenges(r))
		}
		if strings.Contains(string(r.body), wrong) {
			t.Fatalf("the problem repeats the key: %s", r.body)
		}
	}
	if n := up.Requests(); n != 0 {
		t.Fatalf("the upstream saw %d requests; want 0", n)
	}
}

func TestValidAPIKeyReachesUpstreamWithIdentityAndWithoutTheKey(t *testing.T) {
	_, f := accessFixture(t)
	g := newGateway(t)
	g.apply(f.policy(allSchemes).rev)
	spoofed := []string{"X-Consumer-Id", "c-carol", "X-Consumer-Name", "carol", "X-Consumer-Groups", "admins",
		"X_Consumer_Id", "c-carol"} // CGI-style servers read this as X-Consumer-Id

	r := g.get("/echo", append([]string{"X-API-Key", aliceAPIKey}, spoofed...)...)
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	e := r.echo(t)
	assertIdentity(t, e, "c-alice", "alice", "staff,ops")
	for k := range e.Headers {
		if strings.Contains(k, "_") {
			t.Fatalf("the upstream received %s: %q; want the underscore spelling of an identity header removed", k, e.Headers[k])
		}
	}
	if v, ok := e.Headers["X-Api-Key"]; ok {
		t.Fatalf("the upstream received the key header: %q", v)
	}

	// From the query: the parameter goes, every other byte stays.
	r = g.get("/echo?a=1&api_key="+aliceAPIKey+"&b=%2F%20x&c", spoofed...)
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	e = r.echo(t)
	assertIdentity(t, e, "c-alice", "alice", "staff,ops")
	if e.RawQuery != "a=1&b=%2F%20x&c" {
		t.Fatalf("upstream query %q; want a=1&b=%%2F%%20x&c", e.RawQuery)
	}
}

func assertIdentity(t *testing.T, e *testupstream.Echo, id, name, groups string) {
	t.Helper()
	for _, h := range []struct{ name, want string }{
		{"X-Consumer-Id", id}, {"X-Consumer-Name", name}, {"X-Consumer-Groups", groups},
	} {
		got := e.Headers[h.name]
		if h.want == "" {
			if len(got) != 0 {
				t.Fatalf("%s %q; want it absent", h.name, got)
			}
			continue
		}
		if len(got) != 1 || got[0] != h.want {
			t.Fatalf("%s %q; want exactly %q", h.name, got, h.want)
		}
	}
}

func TestIdentityHeadersFollowTheConfiguredNames(t *testing.T) {
	_, f := accessFixture(t)
	g := newGateway(t)
	g.apply(f.policy(`{"name":"auth","type":"auth","config":{"key_auth":{},
		"consumer_id_header":"X-User","consumer_name_header":"","groups_header":"X-Roles"}}`).rev)
	// An empty name sends nothing; the default names, and whatever a
	// client sent in them, never reach the upstream.
	e := g.get("/echo", "X-API-Key", aliceAPIKey, "X-User", "root", "X-Roles", "admins", "X-Consumer-Name", "root").echo(t)
	if got := e.Headers["X-User"]; !slices.Equal(got, []string{"c-alice"}) {
		t.Fatalf("X-User %q; want [c-alice]", got)
	}
	if got := e.Headers["X-Roles"]; !slices.Equal(got, []string{"staff,ops"}) {
		t.Fatalf("X-Roles %q; want [staff,ops]", got)
	}
	for _, k := range []string{"X-Consumer-Id", "X-Consumer-Name"} {
		if got := e.Headers[k]; len(got) != 0 {
			t.Fatalf("%s %q sent; want only the configured names", k, got)
		}
	}
}

func basicAuthHeader(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestBasicAuthRightPasswordReachesUpstreamWrongReturns401(t *testing.T) {
	up, f := accessFixture(t)
	g := newGateway(t)
	g.apply(f.basic("c-bob", "bob", bobBasicPassword).policy(`{"name":"auth","type":"auth","config":{"basic_auth":{}}}`).rev)

	// Twice: the second is answered from the cache of verified pairs. Bob
	// has no groups: the groups a client claims are removed, not replaced.
	for range 2 {
		r := g.get("/echo", "Authorization", basicAuthHeader("bob", bobBasicPassword), "X-Consumer-Groups", "admins")
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		e := r.echo(t)
		assertIdentity(t, e, "c-bob", "bob", "")
		if v, ok := e.Headers["Authorization"]; ok {
			t.Fatalf("the upstream received Authorization %q", v)
		}
	}
	for _, tc := range []struct{ desc, authorization, detail string }{
		{"wrong password", basicAuthHeader("bob", "bob-password-2"), "The username or password is not valid."},
		{"unknown user", basicAuthHeader("mallory", bobBasicPassword), "The username or password is not valid."},
		{"not base64", "Basic %%%", "The basic credentials are malformed."},
		{"no colon", "Basic " + base64.StdEncoding.EncodeToString([]byte("bob")), "The basic credentials are malformed."},
	} {
		r := g.get("/echo", "Authorization", tc.authorization)
		doc := assertProblem(t, r, http.StatusUnauthorized)
		if doc["detail"] != tc.detail || !slices.Equal(authChallenges(r), []string{`Basic realm="gatehouse", charset="UTF-8"`}) {
			t.Fatalf("%s: detail %q, challenges %q", tc.desc, doc["detail"], authChallenges(r))
		}
	}
	if n := up.Requests(); n != 2 {
		t.Fatalf("the upstream saw %d requests; want the 2 authenticated ones", n)
	}
}

// Signing keys for the JWT tests, made once: RSA generation is slow
// under the race detector.
var (
	rsaSigner = sync.OnceValue(func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	})
	ecSigner = sync.OnceValue(func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
)

// signedJWT signs claims (name, value pairs) as a JWS compact token with alg
// and key: a string secret, an *rsa.PrivateKey or an *ecdsa.PrivateKey;
// "none" signs nothing.
func signedJWT(t testing.TB, alg string, key any, kid string, kv ...any) string {
	t.Helper()
	hdr := map[string]any{"alg": alg, "typ": "JWT"}
	if kid != "" {
		hdr["kid"] = kid
	}
	claims := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		claims[kv[i].(string)] = kv[i+1]
	}
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	input := enc(hdr) + "." + enc(claims)
	sum := sha256.Sum256([]byte(input))
	var sig []byte
	switch k := key.(type) {
	case string:
		m := hmac.New(sha256.New, []byte(k))
		m.Write([]byte(input))
		sig = m.Sum(nil)
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
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestJWTBearerHS256(t *testing.T) {
	up, f := accessFixture(t)
	g := newGateway(t)
	g.apply(f.policy(`{"name":"auth","type":"auth","config":{"realm":"shop","jwt":{"issuer":"idp",
		"keys":[{"alg":"HS256","secret":"` + jwtHS256Secret + `"}]}}}`).rev)
	exp := time.Now().Add(time.Hour).Unix()

	// By name or by id, the first time verified, the second cached.
	for _, sub := range []string{"alice", "alice", "c-alice"} {
		r := g.get("/echo", "Authorization", "Bearer "+signedJWT(t, "HS256", jwtHS256Secret, "", "iss", "idp", "sub", sub, "exp", exp))
		if r.status != http.StatusOK {
			t.Fatalf("sub %s: status %d: %s", sub, r.status, r.body)
		}
		e := r.echo(t)
		assertIdentity(t, e, "c-alice", "alice", "staff,ops")
		if v, ok := e.Headers["Authorization"]; ok {
			t.Fatalf("the upstream received Authorization %q", v)
		}
	}

	invalid := []string{`Bearer realm="shop", error="invalid_token"`}
	past := time.Now().Add(-time.Hour).Unix()
	for _, tc := range []struct{ desc, token, detail string }{
		{"expired", signedJWT(t, "HS256", jwtHS256Secret, "", "iss", "idp", "sub", "alice", "exp", past), "The token has expired."},
		{"not yet valid", signedJWT(t, "HS256", jwtHS256Secret, "", "iss", "idp", "sub", "alice", "nbf", exp, "exp", exp+60), "The token is not valid yet."},
		{"no exp (require_exp is on by default)", signedJWT(t, "HS256", jwtHS256Secret, "", "iss", "idp", "sub", "alice"), "The token has no expiry (exp claim), which this route requires."},
		{"wrong secret", signedJWT(t, "HS256", jwtHS256Secret+"x", "", "iss", "idp", "sub", "alice", "exp", exp), "The token's signature is not valid."},
		{"alg none", signedJWT(t, "none", nil, "", "iss", "idp", "sub", "alice", "exp", exp), "The token's signing algorithm is not accepted here."},
		{"wrong issuer", signedJWT(t, "HS256", jwtHS256Secret, "", "iss", "evil", "sub", "alice", "exp", exp), "The token's issuer is not accepted."},
		{"unknown consumer", signedJWT(t, "HS256", jwtHS256Secret, "", "iss", "idp", "sub", "mallory", "exp", exp), "The consumer the token names is not known."},
		{"malformed", "abc.def", "The token is not a well-formed JWT."},
	} {
		r := g.get("/echo", "Authorization", "Bearer "+tc.token)
		doc := assertProblem(t, r, http.StatusUnauthorized)
		if doc["detail"] != tc.detail || !slices.Equal(authChallenges(r), invalid) {
			t.Fatalf("%s: detail %q, challenges %q; want %q with %q", tc.desc, doc["detail"], authChallenges(r), tc.detail, invalid)
		}
	}
	if n := up.Requests(); n != 3 {
		t.Fatalf("the upstream saw %d requests; want the 3 with valid tokens", n)
	}
}

func TestJWTBearerRS256AndES256ViaJWKS(t *testing.T) {
	rk, ek := rsaSigner(), ecSigner()
	ecPub, _ := ek.PublicKey.Bytes()
	jwks, _ := json.Marshal(map[string]any{"keys": []any{
		map[string]any{"kty": "RSA", "kid": "r1", "alg": "RS256", "use": "sig",
			"n": base64.RawURLEncoding.EncodeToString(rk.N.Bytes()), "e": "AQAB"},
		map[string]any{"kty": "EC", "kid": "e1", "crv": "P-256",
			"x": base64.RawURLEncoding.EncodeToString(ecPub[1:33]), "y": base64.RawURLEncoding.EncodeToString(ecPub[33:])},
	}})
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(jwks)
	}))
	t.Cleanup(idp.Close)

	up, f := accessFixture(t)
	g := newGateway(t)
	g.apply(f.policy(`{"name":"auth","type":"auth","config":{"jwt":{"jwks_url":"` + idp.URL + `","audience":"shop-api"}}}`).rev)
	exp := time.Now().Add(time.Hour).Unix()
	for _, tc := range []struct {
		desc, token string
		status      int
	}{
		{"RS256", signedJWT(t, "RS256", rk, "r1", "sub", "carol", "aud", "shop-api", "exp", exp), 200},
		{"ES256", signedJWT(t, "ES256", ek, "e1", "sub", "carol", "aud", []string{"other", "shop-api"}, "exp", exp), 200},
		{"ES256 under the RSA key's kid", signedJWT(t, "ES256", ek, "r1", "sub", "carol", "aud", "shop-api"), 401},
		{"unknown kid", signedJWT(t, "RS256", rk, "r9", "sub", "carol", "aud", "shop-api"), 401},
		{"wrong audience", signedJWT(t, "RS256", rk, "r1", "sub", "carol", "aud", "other"), 401},
		// The alg-confusion attack: the RSA public key as an HMAC secret.
		{"HS256 signed with the RSA modulus", signedJWT(t, "HS256", string(rk.N.Bytes()), "r1", "sub", "carol", "aud", "shop-api"), 401},
	} {
		r := g.get("/echo", "Authorization", "Bearer "+tc.token)
		if tc.status == 200 {
			if r.status != 200 {
				t.Fatalf("%s: status %d: %s", tc.desc, r.status, r.body)
			}
			assertIdentity(t, r.echo(t), "c-carol", "carol", "admins")
			continue
		}
		assertProblem(t, r, tc.status)
		if got := authChallenges(r); !slices.Equal(got, []string{`Bearer realm="gatehouse", error="invalid_token"`}) {
			t.Fatalf("%s: challenges %q", tc.desc, got)
		}
	}
	if n := up.Requests(); n != 2 {
		t.Fatalf("the upstream saw %d requests; want 2", n)
	}
}

func TestConsumerNotAllowedByACLReturns403(t *testing.T) {
	up, f := accessFixture(t)
	g := newGateway(t)
	g.apply(f.policy(allSchemes).
		policy(`{"name":"admins","type":"acl","config":{"allow":["admins"],"deny_consumers":["Mallory"]}}`).rev)

	doc := assertProblem(t, g.get("/echo", "X-API-Key", aliceAPIKey), http.StatusForbidden)
	if doc["detail"] != "This consumer is not allowed on this route." {
		t.Fatalf("detail %q", doc["detail"])
	}
	if r := g.get("/echo", "X-API-Key", carolAPIKey); r.status != http.StatusOK {
		t.Fatalf("carol (admins): status %d: %s", r.status, r.body)
	}
	// Credentials come first: without them it is 401, not 403.
	assertProblem(t, g.get("/echo"), http.StatusUnauthorized)
	if n := up.Requests(); n != 1 {
		t.Fatalf("the upstream saw %d requests; want carol's only", n)
	}
}

func TestACLWithoutAuthReturns403(t *testing.T) {
	up, f := accessFixture(t)
	g := newGateway(t)
	g.apply(f.policy(`{"name":"admins","type":"acl","config":{"allow":["admins"]}}`).rev)
	// No auth policy: nobody is identified, whatever they send.
	r := g.get("/echo", "X-API-Key", carolAPIKey)
	doc := assertProblem(t, r, http.StatusForbidden)
	if doc["detail"] != "This route admits only identified consumers." || len(authChallenges(r)) != 0 {
		t.Fatalf("detail %q, challenges %q", doc["detail"], authChallenges(r))
	}
	if n := up.Requests(); n != 0 {
		t.Fatalf("the upstream saw %d requests; want 0", n)
	}
}

func TestDeniedAddressReturns403(t *testing.T) {
	up := testupstream.Start(t)
	// The test client is a trusted proxy, so X-Forwarded-For names the
	// client that policies judge.
	g := newGatewayWithOptions(t, Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	g.apply(newPolicyFixture(t, up.URL).
		policy(`{"name":"office","type":"ip-restriction","config":{"allow":["198.51.100.0/24","2001:db8::/32"],"deny":["198.51.100.66"]}}`).rev)
	for _, tc := range []struct {
		client  string
		allowed bool
	}{
		{"198.51.100.7", true},
		{"2001:db8::7", true},
		{"198.51.100.66", false}, // deny wins over allow
		{"203.0.113.9", false},   // not in the allow list
		{"203.0.113.9, 198.51.100.7", true},
	} {
		r := g.get("/echo", "X-Forwarded-For", tc.client)
		if tc.allowed {
			if r.status != http.StatusOK {
				t.Fatalf("%s: status %d: %s", tc.client, r.status, r.body)
			}
			continue
		}
		doc := assertProblem(t, r, http.StatusForbidden)
		if doc["detail"] != "Requests from this address are not allowed." {
			t.Fatalf("%s: detail %q", tc.client, doc["detail"])
		}
	}
	if n := up.Requests(); n != 3 {
		t.Fatalf("the upstream saw %d requests; want 3", n)
	}
}

func TestUntrustedForwardedForCannotEvadeADeny(t *testing.T) {
	up := testupstream.Start(t)
	g := newGateway(t) // no trusted proxies: the peer is the client
	g.apply(newPolicyFixture(t, up.URL).
		policy(`{"name":"no-loopback","type":"ip-restriction","config":{"deny":["127.0.0.0/8"]}}`).rev)
	assertProblem(t, g.get("/echo", "X-Forwarded-For", "198.51.100.7"), http.StatusForbidden)
	if n := up.Requests(); n != 0 {
		t.Fatalf("the upstream saw %d requests; want 0", n)
	}
}

func TestHEADGets401WithoutBody(t *testing.T) {
	_, f := accessFixture(t)
	g := newGateway(t)
	g.apply(f.policy(allSchemes).rev)
	r := g.do("HEAD", "/echo", nil)
	if r.status != http.StatusUnauthorized || len(r.body) != 0 {
		t.Fatalf("status %d, %d body bytes; want 401 without a body", r.status, len(r.body))
	}
	if len(authChallenges(r)) != 3 {
		t.Fatalf("challenges %q; want one per scheme", authChallenges(r))
	}
}

// BenchmarkServeHTTPWithAuth is BenchmarkServeHTTP with an auth policy on
// the route: one request presenting an API key, one a JWT verified
// before (served from the token cache). The difference from
// BenchmarkServeHTTP is the policy's cost, identity headers included.
//
//	go test -run '^$' -bench 'ServeHTTP' -benchmem ./proxy/
func BenchmarkServeHTTPWithAuth(b *testing.B) {
	g := &gateway{t: b, handler: New(Options{})}
	b.Cleanup(g.handler.Close)
	upstream := testupstream.Canned(b, okKiB)
	f := newPolicyFixture(b, upstream).consumer("c-alice", "alice", "staff").key("c-alice", aliceAPIKey).
		policy(`{"name":"auth","type":"auth","config":{"key_auth":{},"jwt":{"keys":[{"alg":"HS256","secret":"` + jwtHS256Secret + `"}]}}}`)
	g.apply(f.rev)
	jwt := "Bearer " + signedJWT(b, "HS256", jwtHS256Secret, "", "sub", "alice", "exp", time.Now().Add(time.Hour).Unix())
	for _, bc := range []struct{ name, header, value string }{
		{"key-auth", "X-Api-Key", aliceAPIKey},
		{"cached-jwt", "Authorization", jwt},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cred := []string{bc.value}
			benchServeHTTP(b, g.handler, func(req *http.Request) {
				req.Header[bc.header] = cred // the policy takes it out
			})
		})
	}
}

// TestDeclaredOversizeBodyIsJudgedAfterCredentials: the contract checks
// credentials before the declared size, so a client without credentials
// learns nothing of the route's limit.
func TestDeclaredOversizeBodyIsJudgedAfterCredentials(t *testing.T) {
	up := testupstream.Start(t)
	g := newGateway(t)
	fx := newPolicyFixture(t, up.URL).policy(`{"name":"keys","type":"auth","config":{"key_auth":{}}}`).
		policy(`{"name":"json","type":"content","config":{"schema":{"type":"object"}}}`).
		consumer("c1", "alice").key("c1", "alice-key-0123456789")
	fx.rev.Routes[0].MaxBodyBytes = 4
	g.apply(fx.rev)
	big := `{"x":"` + strings.Repeat("x", 64) + `"}`
	assertProblem(t, g.do("POST", "/upload", strings.NewReader(big)), http.StatusUnauthorized)
	// With credentials, the declared size refuses it before the schema
	// would read the body.
	assertProblem(t, g.do("POST", "/upload", strings.NewReader(big), "X-API-Key", "alice-key-0123456789",
		"Content-Type", "application/json"), http.StatusRequestEntityTooLarge)
	if n := up.Requests(); n != 0 {
		t.Fatalf("the upstream saw %d requests; want 0", n)
	}
}
