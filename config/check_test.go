package config

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// readDoc reads a document from JSON or YAML text, failing the test on a
// problem.
func readDoc(t testing.TB, text string) *Document {
	t.Helper()
	src, problems := Read([]byte(text))
	if len(problems) > 0 {
		t.Fatalf("reading the document: %v", problems)
	}
	doc, problems := Decode(src.Root)
	if len(problems) > 0 {
		t.Fatalf("decoding the document: %v", problems)
	}
	return doc
}

const goodDoc = `{
  "format_version": "1",
  "services": [{"id": "s1", "name": "svc", "url": "http://127.0.0.1:9"}],
  "routes": [{"id": "r1", "name": "r1", "paths": ["/a"], "service_id": "s1", "policies": ["p1"]}],
  "policies": [{"id": "p1", "name": "limit", "type": "rate-limit", "config": {"requests": 10, "per": "minute"}}],
  "consumers": [{"id": "c1", "name": "alice", "credentials": [
    {"id": "k1", "type": "key-auth", "key": "0123456789abcdef-key"},
    {"id": "b1", "type": "basic-auth", "username": "alice", "password_hash": "pbkdf2-sha256$100000$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"}
  ]}]
}`

func TestCheckAcceptsAGoodDocument(t *testing.T) {
	if problems := Check(readDoc(t, goodDoc), CheckOptions{}); len(problems) > 0 {
		t.Fatalf("got problems %v; want none", problems)
	}
}

// edit returns goodDoc with old replaced by new (which must occur).
func edit(t *testing.T, old, new string) string {
	t.Helper()
	if !strings.Contains(goodDoc, old) {
		t.Fatalf("goodDoc lacks %q", old)
	}
	return strings.Replace(goodDoc, old, new, 1)
}

func TestCheckNamesEachProblemByItsPointer(t *testing.T) {
	tests := []struct {
		desc    string
		old     string
		new     string
		opts    CheckOptions
		pointer string
		other   string
		code    gatehouse.Code
		message string
	}{
		{"an entry without an id", `"id": "s1", `, ``, CheckOptions{},
			"/services/0/id", "", gatehouse.EINVALID, "is required"},
		{"an invalid id", `"id": "r1"`, `"id": "r 1"`, CheckOptions{},
			"/routes/0/id", "", gatehouse.EINVALID, gatehouse.IDRule},
		{"a field deep in a resource", `"requests": 10`, `"requests": 0`, CheckOptions{},
			"/policies/0/config/requests", "", gatehouse.EINVALID, ""},
		{"a duplicate id", `"routes": [`, `"routes": [{"id": "r1", "name": "r0", "paths": ["/b"], "service_id": "s1"}, `, CheckOptions{},
			"/routes/1/id", "/routes/0/id", gatehouse.EUNPROCESSABLE, `repeats the id "r1" of /routes/0`},
		{"two routes with one match", `"routes": [`, `"routes": [{"id": "r0", "name": "r0", "paths": ["/a"], "service_id": "s1"}, `, CheckOptions{},
			"/routes/1", "/routes/0", gatehouse.EUNPROCESSABLE, "matches the same requests as /routes/0 (priority 0, any method, any host, path /a)"},
		{"two routes with one match for GET on a host", `"routes": [`, `"routes": [{"id": "r0", "name": "r0", "paths": ["/a"], "methods": ["get"], "hosts": ["API.example"], "priority": 2, "service_id": "s1"}, ` +
			`{"id": "r2", "name": "r2", "paths": ["/a"], "methods": ["GET"], "hosts": ["api.example"], "priority": 2, "service_id": "s1"}, `, CheckOptions{},
			"/routes/1", "/routes/0", gatehouse.EUNPROCESSABLE, "matches the same requests as /routes/0 (priority 2, method GET, host api.example, path /a)"},
		{"two consumers with one name", `"consumers": [`, `"consumers": [{"id": "c0", "name": "alice"}, `, CheckOptions{},
			"/consumers/1", "/consumers/0", gatehouse.EUNPROCESSABLE, `clashes with /consumers/0: both have the name "alice"`},
		{"a reference to an id the document lacks", `"policies": ["p1"]`, `"policies": ["p1", "p9"]`, CheckOptions{},
			"/routes/0/policies/1", "", gatehouse.EUNPROCESSABLE, `refers to policies "p9", which does not exist`},
		{"a credential of another consumer", `{"id": "k1", `, `{"id": "k1", "consumer_id": "c2", `, CheckOptions{},
			"/consumers/0/credentials/0/consumer_id", "", gatehouse.EINVALID, "must be absent or match"},
		{"a key and its hash", `"key": "0123456789abcdef-key"`, `"key": "0123456789abcdef-key", "key_hash": "` + strings.Repeat("a", 64) + `"`, CheckOptions{},
			"/consumers/0/credentials/0/key_hash", "", gatehouse.EINVALID, "must be absent when key is given"},
		{"a key hash that is no hash", `"key": "0123456789abcdef-key"`, `"key_hash": "ABC"`, CheckOptions{},
			"/consumers/0/credentials/0/key_hash", "", gatehouse.EINVALID, "64 lowercase hexadecimal digits"},
		{"a password hash on a key", `"key": "0123456789abcdef-key"`, `"password_hash": "pbkdf2-sha256$100000$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"`, CheckOptions{},
			"/consumers/0/credentials/0/password_hash", "", gatehouse.EINVALID, "belongs to basic-auth credentials only"},
		{"a password hash of 999,999,999 iterations", `"password_hash": "pbkdf2-sha256$100000$`, `"password_hash": "pbkdf2-sha256$999999999$`, CheckOptions{},
			"/consumers/0/credentials/1/password_hash", "", gatehouse.EINVALID, "must have 10000 to 1000000 PBKDF2 iterations, not 999999999"},
		{"a password hash of one iteration", `"password_hash": "pbkdf2-sha256$100000$`, `"password_hash": "pbkdf2-sha256$1$`, CheckOptions{},
			"/consumers/0/credentials/1/password_hash", "", gatehouse.EINVALID, "must have 10000 to 1000000 PBKDF2 iterations, not 1"},
		{"an entry without a selected tag", `"id": "s1", `, `"id": "s1", "tags": ["other"], `, CheckOptions{SelectTags: []string{"team-a"}},
			"/services/0/tags", "", gatehouse.EUNPROCESSABLE, "must include every selected tag (team-a)"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			problems := Check(readDoc(t, edit(t, tt.old, tt.new)), tt.opts)
			for _, p := range problems {
				if p.Pointer == tt.pointer {
					if p.Code != tt.code || !strings.Contains(p.Message, tt.message) || p.Other != tt.other {
						t.Fatalf("got %+v; want code %s, other %q, message containing %q", p, tt.code, tt.other, tt.message)
					}
					return
				}
			}
			t.Fatalf("got %+v; want a problem at %s", problems, tt.pointer)
		})
	}
}

func TestCheckLeavesExternalReferencesToTheStore(t *testing.T) {
	doc := readDoc(t, edit(t, `"policies": ["p1"]`, `"policies": ["p1", "p9"]`))
	if problems := Check(doc, CheckOptions{External: true}); len(problems) > 0 {
		t.Fatalf("got %v; want none", problems)
	}
}

func TestCheckDoesNotChangeTheDocument(t *testing.T) {
	doc := readDoc(t, edit(t, `"paths": ["/a"]`, `"paths": ["/a"], "methods": ["get"]`))
	Check(doc, CheckOptions{})
	if got := doc.Routes[0].Methods[0]; got != "get" {
		t.Fatalf("got method %q after Check; want the document's \"get\"", got)
	}
}

func TestFieldPointer(t *testing.T) {
	tests := []struct{ base, field, want string }{
		{"/routes/3", "policies[0]", "/routes/3/policies/0"},
		{"/policies/2", "config.spec_id", "/policies/2/config/spec_id"},
		{"/services/0", "targets[1].weight", "/services/0/targets/1/weight"},
		{"/specs/1", "/paths/~1pets/get", "/specs/1/document/paths/~1pets/get"},
		{"/policies/0", "config.a/b", "/policies/0/config/a~1b"},
	}
	for _, tt := range tests {
		if got := FieldPointer(tt.base, tt.field); got != tt.want {
			t.Errorf("FieldPointer(%q, %q) = %q; want %q", tt.base, tt.field, got, tt.want)
		}
	}
}

// A dump omits write-only members, which the store keeps: judged without
// a store, an entry without them is not refused for it.
func TestCheckAcceptsAPolicyWithoutItsHiddenSecret(t *testing.T) {
	policy := `"policies": [{"id": "jwt", "name": "jwt", "type": "auth", "config": {"jwt": {"keys": [{"kid": "k1", "alg": "HS256"%s}]}}}]`
	for _, tt := range []struct {
		secret string
		ok     bool
	}{
		{``, true},
		{`, "secret": "short"`, false},
		{`, "secret": "` + strings.Repeat("s", 32) + `"`, true},
	} {
		doc := readDoc(t, `{"format_version": "1", `+fmt.Sprintf(policy, tt.secret)+`}`)
		if problems := Check(doc, CheckOptions{}); (len(problems) == 0) != tt.ok {
			t.Fatalf("secret %q: got %v; want ok %v", tt.secret, problems, tt.ok)
		}
		if tt.secret == `` && strings.Contains(string(doc.Policies[0].Config), "secret") {
			t.Fatalf("Check changed the document: %s", doc.Policies[0].Config)
		}
	}
}

// Judged Fresh, as offline validation of a file-only node's files is,
// Check refuses what Apply to an empty store refuses (serve --config),
// with the same pointer and message: a new entry's secrets are required.
func TestCheckFreshAgreesWithApplyToAnEmptyStore(t *testing.T) {
	const consumer = `{"format_version": "1", "consumers": [{"id": "c1", "name": "alice", "credentials": [%s]}]}`
	const policy = `{"format_version": "1", "policies": [{"id": "jwt", "name": "jwt", "type": "auth", "config": {"jwt": {"keys": [{"kid": "k1", "alg": "HS256"%s}]}}}]}`
	for _, tt := range []struct {
		desc, doc, pointer string
	}{
		{"a key-auth credential without its key", fmt.Sprintf(consumer, `{"id": "k1", "type": "key-auth"}`), "/consumers/0/credentials/0/key"},
		{"a basic-auth credential without its password", fmt.Sprintf(consumer, `{"id": "b1", "type": "basic-auth", "username": "alice"}`), "/consumers/0/credentials/0/password"},
		{"an HS256 key without its secret", fmt.Sprintf(policy, ``), "/policies/0/config/jwt/keys/0/secret"},
		{"a key given as its hash", fmt.Sprintf(consumer, `{"id": "k1", "type": "key-auth", "key_hash": "`+strings.Repeat("a", 64)+`"}`), ""},
		{"a password given as its hash", fmt.Sprintf(consumer, `{"id": "b1", "type": "basic-auth", "username": "alice", "password_hash": "pbkdf2-sha256$100000$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"}`), ""},
		{"an HS256 key with its secret", fmt.Sprintf(policy, `, "secret": "`+strings.Repeat("s", 32)+`"`), ""},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			var checked []gatehouse.FieldError
			for _, p := range Check(readDoc(t, tt.doc), CheckOptions{Fresh: true}) {
				checked = append(checked, gatehouse.FieldError{Field: p.Pointer, Message: p.Message})
			}
			_, err := Apply(context.Background(), openStore(t), readDoc(t, tt.doc), ApplyOptions{Prune: true, DryRun: true})
			var applied []gatehouse.FieldError
			if e, ok := errors.AsType[*gatehouse.Error](err); ok {
				applied = e.Fields
			} else if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(checked) != fmt.Sprint(applied) {
				t.Fatalf("Check(Fresh) found %v; Apply to an empty store %v; want the same", checked, applied)
			}
			if tt.pointer == "" && len(checked) > 0 || tt.pointer != "" && (len(checked) != 1 || checked[0].Field != tt.pointer) {
				t.Fatalf("got %v; want a problem at %q only", checked, tt.pointer)
			}
		})
	}
}
