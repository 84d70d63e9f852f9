package policy

import (
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// authChain compiles one route "r" with the policies (JSON) and alice
// (id c-alice, group staff, key "alice-key-0123456789") and bob (id c-bob,
// basic bob/bob-password), and returns the route's chain.
func authChain(t testing.TB, policies ...string) *Chain {
	t.Helper()
	rev := &gatehouse.Revision{
		Services: []*gatehouse.Service{{Meta: gatehouse.Meta{ID: "s"}, Name: "s", URL: "http://127.0.0.1:1"}},
		Routes:   []*gatehouse.Route{{Meta: gatehouse.Meta{ID: "r"}, ServiceID: "s", Paths: []string{"/*"}}},
		Consumers: []*gatehouse.Consumer{
			{Meta: gatehouse.Meta{ID: "c-alice"}, Name: "alice", Groups: []string{"staff", "ops"}},
			{Meta: gatehouse.Meta{ID: "c-bob"}, Name: "bob"},
		},
		Credentials: []*gatehouse.RevisionCredential{
			{ID: "k1", ConsumerID: "c-alice", Type: gatehouse.CredentialKeyAuth, Hash: gatehouse.HashToken("alice-key-0123456789")},
			{ID: "b1", ConsumerID: "c-bob", Type: gatehouse.CredentialBasicAuth, Username: "bob", Hash: bobPasswordHash()},
		},
	}
	for i, js := range policies {
		p := testPolicy(t, js, "p"+strconv.Itoa(i))
		rev.Policies = append(rev.Policies, p)
		rev.Routes[0].Policies = append(rev.Routes[0].Policies, p.ID)
	}
	set, err := Compile(rev, &Env{State: NewState(), Context: t.Context(), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return set.Chain("r")
}

// bobPasswordHash is computed once: PBKDF2 is slow on purpose.
var bobPasswordHash = sync.OnceValue(func() string { return string(gatehouse.HashPassword("bob-password")) })

// authRun passes a GET of target with headers (name, value pairs) from client
// through c.
func authRun(c *Chain, target, client string, headers ...string) (*Request, *httptest.ResponseRecorder, error) {
	w := httptest.NewRecorder()
	r := &Request{W: w, R: httptest.NewRequest("GET", target, nil), Client: netip.MustParseAddr(client), Now: tokenEpoch}
	for i := 0; i+1 < len(headers); i += 2 {
		r.R.Header.Add(headers[i], headers[i+1])
	}
	return r, w, c.Run(r)
}

func TestFirstPresentedCredentialIsJudgedWithoutFallingThrough(t *testing.T) {
	c := authChain(t, `{"type":"auth","config":{"key_auth":{"query":"apikey"},"basic_auth":{}}}`)
	// A wrong key next to good basic credentials: the key is judged.
	_, w, err := authRun(c, "/x?apikey=wrong-key-0123456789", "192.0.2.1", "Authorization", basicHeader("bob", "bob-password"))
	if err != errBadKey {
		t.Fatalf("got %v; want %v", err, errBadKey)
	}
	want := []string{`ApiKey realm="gatehouse", header="X-API-Key", query="apikey"`, `Basic realm="gatehouse", charset="UTF-8"`}
	if got := w.Header().Values("WWW-Authenticate"); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("challenges %q; want %q", got, want)
	}
	// An Authorization scheme the policy does not take is no credential.
	if _, _, err := authRun(c, "/x", "192.0.2.1", "Authorization", "Bearer abc"); err != errNoCredentials {
		t.Fatalf("unconfigured scheme: got %v; want %v", err, errNoCredentials)
	}
	if _, _, err := authRun(c, "/x", "192.0.2.1", "Authorization", "Basic !!!"); err != errMalformedBasic {
		t.Fatalf("undecodable basic: got %v; want %v", err, errMalformedBasic)
	}
}

func basicHeader(user, pass string) string {
	r := httptest.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, pass)
	return r.Header.Get("Authorization")
}

func TestKeyInQueryIsDecodedAndRemovedKeepingTheRest(t *testing.T) {
	c := authChain(t, `{"type":"auth","config":{"key_auth":{"header":"","query":"k"}}}`)
	// "%2D" is "-": the key is compared decoded.
	r, _, err := authRun(c, "/x?a=1&k=alice%2Dkey-0123456789&b=%20;x&&k=again&c", "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.R.URL.RawQuery, "a=1&b=%20;x&&c"; got != want {
		t.Fatalf("query %q; want %q", got, want)
	}
	if r.Consumer == nil || r.Consumer.ID != "c-alice" {
		t.Fatalf("consumer %+v; want alice", r.Consumer)
	}
}

func TestRemoveQuery(t *testing.T) {
	for _, tc := range []struct{ raw, want string }{
		{"k=1", ""},
		{"k=1&a=2", "a=2"},
		{"a=2&k=1", "a=2"},
		{"a=%2F&k=1&b=x+y&k=2", "a=%2F&b=x+y"},
		{"kk=1&k", "kk=1"},
		{"a=1&&b=2", "a=1&&b=2"},
	} {
		if got := removeQuery(tc.raw, "k"); got != tc.want {
			t.Errorf("removeQuery(%q) = %q; want %q", tc.raw, got, tc.want)
		}
	}
}

func TestSeveralAuthPoliciesMustAllPassAndNameOneConsumer(t *testing.T) {
	c := authChain(t,
		`{"type":"auth","config":{"key_auth":{}}}`,
		`{"type":"auth","config":{"basic_auth":{},"realm":"second"}}`)
	if _, w, err := authRun(c, "/x", "192.0.2.1", "X-API-Key", "alice-key-0123456789"); err != errNoCredentials ||
		w.Header().Get("WWW-Authenticate") != `Basic realm="second", charset="UTF-8"` {
		t.Fatalf("key only: %v, %q; want the second policy's refusal", err, w.Header().Get("WWW-Authenticate"))
	}
	if _, _, err := authRun(c, "/x", "192.0.2.1", "X-API-Key", "alice-key-0123456789",
		"Authorization", basicHeader("bob", "bob-password")); err != errMixedConsumers {
		t.Fatalf("alice's key and bob's password: %v; want %v", err, errMixedConsumers)
	}
}

// BenchmarkAuthStep is one auth Step's Check on a request presenting a
// valid API key, and one presenting a JWT verified before (served from the
// token cache), the identity headers set each time.
//
//	go test -run '^$' -bench AuthStep -benchmem ./policy/
func BenchmarkAuthStep(b *testing.B) {
	jwtTestKeys(b)
	pemKey := pemOfKey(b, &rsaKey1.PublicKey)
	c := authChain(b, `{"type":"auth","config":{"key_auth":{},"jwt":{"keys":[{"alg":"RS256","public_key":`+
		jsonQuote(pemKey)+`}]}}}`)
	tok := signJWT(b, "RS256", rsaKey1, "", jwtClaims("sub", "alice", "exp", tokenEpoch.Unix()+3600))
	for _, bc := range []struct{ name, header, value string }{
		{"key-auth", "X-Api-Key", "alice-key-0123456789"},
		{"cached-jwt", "Authorization", "Bearer " + tok},
	} {
		b.Run(bc.name, func(b *testing.B) {
			w := httptest.NewRecorder()
			hr := httptest.NewRequest("GET", "/x", nil)
			cred := []string{bc.value}
			r := &Request{W: w, R: hr, Now: tokenEpoch}
			b.ReportAllocs()
			for b.Loop() {
				hr.Header[bc.header] = cred // the Step takes it out
				if err := c.Run(r); err != nil {
					b.Fatal(err)
				}
			}
			if hr.Header.Get("X-Consumer-Id") != "c-alice" {
				b.Fatalf("identity %q; want c-alice", hr.Header.Get("X-Consumer-Id"))
			}
		})
	}
}

func jsonQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestTokenWithoutExpIsRefusedUnlessRequireExpIsOff(t *testing.T) {
	tok := signJWT(t, "HS256", hsSecret, "", jwtClaims("sub", "alice"))
	for _, tc := range []struct {
		desc, config string
		want         error
	}{
		{"default", `{}`, errTokenNoExp},
		{"require_exp true", `{"require_exp":true}`, errTokenNoExp},
		{"require_exp false", `{"require_exp":false}`, nil},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			var extra map[string]any
			json.Unmarshal([]byte(tc.config), &extra)
			jwt := map[string]any{"keys": []any{map[string]any{"alg": "HS256", "secret": string(hsSecret)}}}
			for k, v := range extra {
				jwt[k] = v
			}
			cfg, _ := json.Marshal(map[string]any{"type": "auth", "config": map[string]any{"jwt": jwt}})
			_, w, err := authRun(authChain(t, string(cfg)), "/x", "192.0.2.1", "Authorization", "Bearer "+tok)
			if err != tc.want {
				t.Fatalf("got %v; want %v", err, tc.want)
			}
			want := `Bearer realm="gatehouse", error="invalid_token"`
			if got := w.Header().Get("WWW-Authenticate"); tc.want != nil && got != want {
				t.Fatalf("WWW-Authenticate %q; want %q", got, want)
			}
		})
	}
}
