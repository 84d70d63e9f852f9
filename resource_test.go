package gatehouse_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Every kind has a resource type, and the secret-bearing ones seal.
var (
	_ gatehouse.Resource = (*gatehouse.Service)(nil)
	_ gatehouse.Resource = (*gatehouse.Route)(nil)
	_ gatehouse.Resource = (*gatehouse.Consumer)(nil)
	_ gatehouse.Resource = (*gatehouse.Credential)(nil)
	_ gatehouse.Resource = (*gatehouse.Policy)(nil)
	_ gatehouse.Resource = (*gatehouse.Token)(nil)
	_ gatehouse.Sealer   = (*gatehouse.Credential)(nil)
	_ gatehouse.Sealer   = (*gatehouse.Token)(nil)
)

func TestKinds(t *testing.T) {
	if len(constructors) != len(gatehouse.Kinds) {
		t.Fatalf("%d constructors for %d kinds", len(constructors), len(gatehouse.Kinds))
	}
	for _, k := range gatehouse.Kinds {
		newRes, ok := constructors[k]
		if !ok {
			t.Errorf("no constructor for kind %q", k)
			continue
		}
		res := newRes()
		if res.Kind() != k {
			t.Errorf("New for %q makes a %q", k, res.Kind())
		}
		if res.Base() == nil || *res.Base() != (gatehouse.Meta{}) {
			t.Errorf("%q: fresh Base = %+v", k, res.Base())
		}
		if k == "" || strings.ToLower(string(k)) != string(k) || strings.Contains(string(k), "/") {
			t.Errorf("kind %q is not a path segment", k)
		}
	}
}

func sampleResources() []gatehouse.Resource {
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	return []gatehouse.Resource{
		&gatehouse.Service{Meta: gatehouse.Meta{ID: "svc"}, Name: "svc", Targets: []gatehouse.Target{{URL: "http://a", Weight: 5}, {URL: "http://b", Weight: 0}},
			ConnectTimeoutMS: 100, ReadTimeoutMS: 200, Retries: 3},
		&gatehouse.Route{Meta: gatehouse.Meta{ID: "r"}, Name: "r", Hosts: []string{"a.com"}, Paths: []string{"/x/{id}"}, Methods: []string{"GET"},
			ServiceID: "svc", StripPath: true, Priority: 3},
		&gatehouse.Consumer{Meta: gatehouse.Meta{ID: "c"}, Name: "alice", Groups: []string{"ops"}},
		&gatehouse.Credential{Meta: gatehouse.Meta{ID: "k"}, ConsumerID: "c", Type: gatehouse.CredentialBasicAuth, Username: "alice", Password: "pw-123456"},
		&gatehouse.Policy{Meta: gatehouse.Meta{ID: "p"}, Name: "p", Type: "acl", Config: json.RawMessage(`{"allow":["ops"]}`)},
		&gatehouse.Token{Meta: gatehouse.Meta{ID: "t"}, Name: "ci", Role: gatehouse.RoleReadOnly, ConsumerID: "c", ExpiresAt: &exp},
	}
}

func TestEncodeDecode(t *testing.T) {
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	updated := created.Add(time.Hour)
	for _, res := range sampleResources() {
		t.Run(string(res.Kind()), func(t *testing.T) {
			if bad, semantic := res.Check(); len(bad)+len(semantic) > 0 {
				t.Fatalf("sample fails Check: %v %v", bad, semantic)
			}
			m := res.Base()
			m.Version, m.CreatedAt, m.UpdatedAt = 42, created, updated
			before := *m

			rec, err := gatehouse.Encode(res, []byte("hash"))
			if err != nil {
				t.Fatal(err)
			}
			if *res.Base() != before {
				t.Errorf("Encode changed Meta to %+v", *res.Base())
			}
			ix := res.Index()
			if rec.Kind != res.Kind() || rec.ID != m.ID || rec.Version != 42 || !rec.CreatedAt.Equal(created) || !rec.UpdatedAt.Equal(updated) ||
				rec.Name != ix.Name || !reflect.DeepEqual(rec.Parent, ix.Parent) || !slices.Equal(rec.Refs, ix.Refs) ||
				!slices.Equal(rec.Unique, ix.Unique) || string(rec.Secret) != "hash" {
				t.Errorf("record = %+v, index %+v", rec, ix)
			}

			// Version and times live only in the record's own fields.
			var body map[string]any
			if err := json.Unmarshal(rec.Body, &body); err != nil {
				t.Fatalf("body %s: %v", rec.Body, err)
			}
			if body["id"] != m.ID || body["version"] != float64(0) || body["created_at"] != "0001-01-01T00:00:00Z" || body["updated_at"] != "0001-01-01T00:00:00Z" {
				t.Errorf("body carries store-assigned meta: %s", rec.Body)
			}

			fresh := constructors[res.Kind()]()
			if err := gatehouse.Decode(rec, fresh); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(fresh, res) {
				t.Errorf("round trip:\n got %#v\nwant %#v", fresh, res)
			}

			// Sync copies what the store assigned.
			rec.Version, rec.UpdatedAt = 43, updated.Add(time.Minute)
			gatehouse.Sync(res, rec)
			if res.Base().Version != 43 || !res.Base().UpdatedAt.Equal(rec.UpdatedAt) || res.Base().ID != m.ID {
				t.Errorf("Sync: %+v", *res.Base())
			}
		})
	}
}

func TestDecodeCorruptBody(t *testing.T) {
	rec := &gatehouse.Record{Kind: gatehouse.KindService, ID: "svc", Body: []byte(`{"name":`)}
	err := gatehouse.Decode(rec, gatehouse.NewService())
	if gatehouse.ErrorCode(err) != gatehouse.EINTERNAL {
		t.Fatalf("Decode(corrupt) = %v, want EINTERNAL", err)
	}
	if msg := gatehouse.ErrorMessage(err); strings.Contains(msg, "svc") || strings.Contains(msg, "unexpected") {
		t.Errorf("client message leaks detail: %q", msg)
	}
	if !strings.Contains(err.Error(), "services/svc") {
		t.Errorf("log text lacks the record: %q", err.Error())
	}
}

func TestErrors(t *testing.T) {
	cause := errors.New("sql: no such table: secrets")
	tests := []struct {
		desc    string
		err     error
		code    gatehouse.Code
		message string
		fields  []gatehouse.FieldError
	}{
		{"Errorf", gatehouse.Errorf(gatehouse.ENOTFOUND, "No service %q.", "x"), gatehouse.ENOTFOUND, `No service "x".`, nil},
		{"wrapped Errorf", fmt.Errorf("handler: %w", gatehouse.Errorf(gatehouse.ECONFLICT, "Taken.")), gatehouse.ECONFLICT, "Taken.", nil},
		{"Internal hides its cause", gatehouse.Internal(cause), gatehouse.EINTERNAL, "An internal error occurred.", nil},
		{"EINTERNAL with a custom message still hides it", gatehouse.Errorf(gatehouse.EINTERNAL, "db at 10.0.0.5 down"), gatehouse.EINTERNAL, "An internal error occurred.", nil},
		{"Unavailable", gatehouse.Unavailable(cause), gatehouse.EUNAVAILABLE, "The configuration store is unavailable.", nil},
		{"plain error is internal", cause, gatehouse.EINTERNAL, "An internal error occurred.", nil},
		{"Invalid lists its fields", gatehouse.Invalid([]gatehouse.FieldError{{Field: "a", Message: "b"}}), gatehouse.EINVALID, "The request body is invalid.", []gatehouse.FieldError{{Field: "a", Message: "b"}}},
		{"Unprocessable", gatehouse.Unprocessable([]gatehouse.FieldError{{Field: "url", Message: "x"}}), gatehouse.EUNPROCESSABLE, "The request is well-formed but cannot be applied.", []gatehouse.FieldError{{Field: "url", Message: "x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			if got := gatehouse.ErrorCode(tt.err); got != tt.code {
				t.Errorf("ErrorCode = %q, want %q", got, tt.code)
			}
			if got := gatehouse.ErrorMessage(tt.err); got != tt.message {
				t.Errorf("ErrorMessage = %q, want %q", got, tt.message)
			}
			if got := gatehouse.ErrorFields(tt.err); !slices.Equal(got, tt.fields) {
				t.Errorf("ErrorFields = %v, want %v", got, tt.fields)
			}
			if strings.Contains(gatehouse.ErrorMessage(tt.err), "sql") {
				t.Errorf("message leaks the cause")
			}
		})
	}
	in := gatehouse.Internal(cause)
	if !errors.Is(in, cause) || !strings.Contains(in.Error(), cause.Error()) {
		t.Errorf("Internal does not keep its cause for the log: %v", in)
	}
	if got := gatehouse.Errorf(gatehouse.EGONE, "x").Error(); got != "gone: x" {
		t.Errorf("Error() = %q", got)
	}
	seen := map[gatehouse.Code]bool{}
	for _, c := range gatehouse.Codes {
		if seen[c] || c == "" {
			t.Errorf("code %q empty or listed twice", c)
		}
		seen[c] = true
	}
}

// TestPolicyUpdateOmittingHS256SecretsKeepsOnlyWhatItCanTellApart
// proves the rule by which an update that omits secrets gets the stored
// ones: unchanged HS256 keys keep theirs; otherwise a key keeps the
// secret of the one stored HS256 key of its kid, if no other key sent has
// that kid. A key its kid does not tell apart keeps none, and the update
// is refused (422) saying why, rather than guessing by order: a guess
// could keep a removed key working and fail the one kept.
func TestPolicyUpdateOmittingHS256SecretsKeepsOnlyWhatItCanTellApart(t *testing.T) {
	const a, b, c, n = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "cccccccccccccccccccccccccccccccc", "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := json.Marshal(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))
	es := `{"kid":"e","alg":"ES256","public_key":` + string(pub) + `}`
	hs := func(kid, secret string) string {
		if secret == "" {
			return `{"kid":"` + kid + `","alg":"HS256"}`
		}
		return `{"kid":"` + kid + `","alg":"HS256","secret":"` + secret + `"}`
	}
	const distinct = "give each HS256 key a distinct kid, or send its secret"
	for _, tc := range []struct {
		desc         string
		stored, sent []string
		want         []string          // the secrets after the update
		refused      map[string]string // field -> "400" or "422: part of the message"
	}{
		{"echoed back unchanged: each keeps its own, kid-less too",
			[]string{hs("", a), hs("", b), hs("k", c)}, []string{hs("", ""), hs("", ""), hs("k", "")},
			[]string{a, b, c}, nil},
		{"another alg's key removed: the HS256 keys keep theirs",
			[]string{hs("", a), es, hs("", b)}, []string{hs("", ""), hs("", "")},
			[]string{a, b}, nil},
		{"one of two kid-less keys removed: refused, not guessed",
			[]string{hs("", a), hs("", b)}, []string{hs("", "")},
			[]string{""}, map[string]string{"config.jwt.keys[0].secret": "422: 2 stored and 1 sent HS256 keys have no kid, so which stored secret this key keeps cannot be told; " + distinct}},
		{"one of two distinct kids removed: the other keeps its own",
			[]string{hs("ka", a), hs("kb", b)}, []string{hs("kb", "")},
			[]string{b}, nil},
		{"keys reordered by kid keep their own",
			[]string{hs("ka", a), hs("kb", b)}, []string{hs("kb", ""), hs("ka", "")},
			[]string{b, a}, nil},
		{"a kid sent twice: neither is told apart",
			[]string{hs("ka", a)}, []string{hs("ka", ""), hs("ka", "")},
			[]string{"", ""}, map[string]string{"config.jwt.keys[0].secret": "422: 1 stored and 2 sent HS256 keys have kid \"ka\"", "config.jwt.keys[1].secret": "422: " + distinct}},
		{"a new secret beside the kid-less stored one: the other is not told apart",
			[]string{hs("", a)}, []string{hs("", n), hs("", "")},
			[]string{n, ""}, map[string]string{"config.jwt.keys[1].secret": "422: " + distinct}},
		{"unique kids keep theirs; shared ones and a new kid do not",
			[]string{hs("", a), hs("", b), hs("k", c)}, []string{hs("k", ""), hs("", ""), hs("", ""), hs("new", "")},
			[]string{c, "", "", ""}, map[string]string{"config.jwt.keys[1].secret": "422: " + distinct, "config.jwt.keys[2].secret": "422: " + distinct,
				"config.jwt.keys[3].secret": "400"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			current := &gatehouse.Policy{Name: "p", Type: gatehouse.PolicyAuth, Config: json.RawMessage(`{"jwt":{"keys":[` + strings.Join(tc.stored, ",") + `]}}`)}
			if bad, semantic := gatehouse.NormalizeAndCheck(current); len(bad)+len(semantic) > 0 {
				t.Fatalf("stored policy refused: %v %v", bad, semantic)
			}
			current.Hide()
			for _, s := range []string{a, b, c} {
				if strings.Contains(string(current.Config), s) {
					t.Fatalf("hidden config %s holds a secret", current.Config)
				}
			}
			next := &gatehouse.Policy{Name: "p", Type: gatehouse.PolicyAuth, Config: json.RawMessage(`{"jwt":{"keys":[` + strings.Join(tc.sent, ",") + `]}}`)}
			gatehouse.KeepHidden(next, current)
			var cfg gatehouse.AuthConfig
			if err := json.Unmarshal(next.Config, &cfg); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, k := range cfg.JWT.Keys {
				got = append(got, k.Secret)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("secrets %q; want %q", got, tc.want)
			}
			bad, semantic := gatehouse.NormalizeAndCheck(next)
			refused := map[string]string{}
			for _, f := range bad {
				refused[f.Field] = "400"
			}
			for _, f := range semantic {
				refused[f.Field] = "422: " + f.Message
			}
			if len(refused) != len(tc.refused) {
				t.Errorf("refused %v; want %v", refused, tc.refused)
			}
			for field, want := range tc.refused {
				got := refused[field]
				if want == "400" && got != "400" || want != "400" && !(strings.HasPrefix(got, "422: ") && strings.Contains(got, strings.TrimPrefix(want, "422: "))) {
					t.Errorf("%s refused as %q; want %q", field, got, want)
				}
			}
		})
	}
}
