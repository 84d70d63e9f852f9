package config

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/sqlite"
)

func openStore(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.TempDir()+"/config.db", sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// racingStore is a store in which another writer changes the draft just
// before each of the first races Applies.
type racingStore struct {
	*sqlite.DB
	races   int
	applies int
}

func (s *racingStore) Apply(ctx context.Context, changes []gatehouse.Change, ifDraft string) error {
	s.applies++
	if s.applies <= s.races {
		svc := gatehouse.NewService()
		svc.ID, svc.Name, svc.URL = fmt.Sprintf("other%d", s.applies), fmt.Sprintf("other%d", s.applies), "http://127.0.0.1:9"
		rec, err := gatehouse.Encode(svc, nil)
		if err != nil {
			return err
		}
		if err := s.DB.Create(ctx, rec); err != nil {
			return err
		}
	}
	return s.DB.Apply(ctx, changes, ifDraft)
}

func TestApplyAfterAnotherWriterChangedTheDraft(t *testing.T) {
	tests := []struct {
		desc    string
		races   int
		ifDraft bool
		code    gatehouse.Code
		applies int
	}{
		{"plans again and applies", 1, false, "", 2},
		{"refuses with the client's If-Match", 1, true, gatehouse.EPRECONDITION, 1},
		{"gives up when it never wins", 100, false, gatehouse.EUNAVAILABLE, applyAttempts},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			store := &racingStore{DB: openStore(t), races: tt.races}
			opts := ApplyOptions{}
			if tt.ifDraft {
				_, tag, err := Dump(context.Background(), store, nil)
				if err != nil {
					t.Fatal(err)
				}
				opts.IfDraft = tag
			}
			cs, err := Apply(context.Background(), store, readDoc(t, goodDoc), opts)
			if gatehouse.ErrorCode(err) != tt.code && !(tt.code == "" && err == nil) {
				t.Fatalf("got %v; want code %q", err, tt.code)
			}
			if store.applies != tt.applies {
				t.Fatalf("got %d Store.Apply calls; want %d", store.applies, tt.applies)
			}
			if err == nil {
				if tag, _ := store.DraftTag(context.Background()); cs.NewDraft != tag || cs.Summary.Create != 6 {
					t.Fatalf("got %+v; want six creates and new draft %s", cs, tag)
				}
			}
		})
	}
}

func TestApplyOrdersChangesSoEachIsValidWhenItRuns(t *testing.T) {
	store := openStore(t)
	ctx := context.Background()
	if _, err := Apply(ctx, store, readDoc(t, goodDoc), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	// The route moves to a new service that uses a new policy, and the
	// old service and policy go: create the policy before the service
	// that uses it, update the route, then delete the service before
	// the policy it used.
	doc := strings.NewReplacer(
		`"services": [{"id": "s1", "name": "svc"`, `"services": [{"id": "s2", "name": "svc2", "policies": ["p2"]`,
		`"service_id": "s1", "policies": ["p1"]`, `"service_id": "s2"`,
		`"policies": [{"id": "p1", "name": "limit"`, `"policies": [{"id": "p2", "name": "limit2"`,
	).Replace(goodDoc)
	cs, err := Apply(ctx, store, readDoc(t, doc), ApplyOptions{Prune: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cs.Changes {
		got = append(got, fmt.Sprintf("%s %s/%s", c.Action, c.Kind, c.ID))
	}
	want := "[create policies/p2 create services/s2 update routes/r1 delete services/s1 delete policies/p1]"
	if fmt.Sprint(got) != want {
		t.Fatalf("got %v; want %s", got, want)
	}
}

func TestEncodeWritesMembersInTheTypesOrder(t *testing.T) {
	doc := readDoc(t, goodDoc)
	doc.Services[0].Version = 7
	for _, tt := range []struct {
		yaml bool
		want []string
	}{
		{true, []string{"format_version: \"1\"", "services:", "  - id: s1", "    name: svc", "    url: http://127.0.0.1:9"}},
		{false, []string{`  "format_version": "1",`, `  "services": [`, `      "id": "s1",`, `      "name": "svc",`, `      "url": "http://127.0.0.1:9",`}},
	} {
		out, err := Encode(doc, tt.yaml)
		if err != nil {
			t.Fatal(err)
		}
		text := string(out)
		at := 0
		for _, line := range tt.want {
			i := strings.Index(text[at:], line+"\n")
			if i < 0 {
				t.Fatalf("yaml %v: %q missing, or out of order, in\n%s", tt.yaml, line, text)
			}
			at += i
		}
		if strings.Contains(text, "version: 7") || strings.Contains(text, `"version"`) || strings.Contains(text, "created_at") {
			t.Fatalf("yaml %v: the server's members are written:\n%s", tt.yaml, text)
		}
		// What Encode writes reads back as the same document.
		if again := readDoc(t, text); len(Check(again, CheckOptions{})) > 0 || again.Consumers[0].Credentials[1].PasswordHash == "" {
			t.Fatalf("yaml %v: the encoding does not read back: %v", tt.yaml, Check(again, CheckOptions{}))
		}
	}
}

func TestCheckNamesAProblemInASpecsDocumentWithinIt(t *testing.T) {
	doc := readDoc(t, `{"format_version": "1", "specs": [{"id": "pets", "name": "pets",
		"document": {"openapi": "3.1.0", "info": {"title": "Pets", "version": "1"}, "paths": {"pets": {}}}}]}`)
	problems := Check(doc, CheckOptions{})
	if len(problems) == 0 || !strings.HasPrefix(problems[0].Pointer, "/specs/0/document/paths") {
		t.Fatalf("got %+v; want a problem under /specs/0/document/paths", problems)
	}
}

// What one entry held can move to another in one sync: a route's match,
// a key, a basic-auth username.
func TestApplyMovesAMatchAKeyAndAUsernameFromOneEntryToAnother(t *testing.T) {
	store := openStore(t)
	ctx := context.Background()
	start := strings.NewReplacer(
		`"routes": [{"id": "r1", "name": "r1", "paths": ["/a"]`,
		`"routes": [{"id": "r0", "paths": ["/b"], "service_id": "s1"}, {"id": "r1", "name": "r1", "paths": ["/a"]`,
	).Replace(goodDoc)
	if _, err := Apply(ctx, store, readDoc(t, start), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, old, new string }{
		// r0 goes and r1 takes its path; r2 is new and takes r1's.
		{"a route's match", `{"id": "r0", "paths": ["/b"], "service_id": "s1"}, {"id": "r1", "name": "r1", "paths": ["/a"]`,
			`{"id": "r1", "name": "r1", "paths": ["/b"], "service_id": "s1"}, {"id": "r2", "paths": ["/a"]`},
		{"a key", `{"id": "k1", "type": "key-auth"`, `{"id": "k2", "type": "key-auth"`},
		{"a username", `{"id": "b1", "type": "basic-auth"`, `{"id": "b2", "type": "basic-auth"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			doc := strings.Replace(start, tt.old, tt.new, 1)
			if doc == start {
				t.Fatalf("the edit %q changed nothing", tt.old)
			}
			if _, err := Apply(ctx, store, readDoc(t, doc), ApplyOptions{Prune: true}); err != nil {
				t.Fatalf("sync: %v", err)
			}
			start = doc
		})
	}
}
