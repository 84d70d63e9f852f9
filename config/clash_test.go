package config

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// teamB is a part of the configuration another team manages (tag team-b):
// a service, a route, a key, a username, and an openapi policy that uses
// team-a's spec.
const teamB = `{
  "format_version": "1",
  "policies": [{"id": "oas", "name": "oas", "tags": ["team-b"], "type": "openapi", "config": {"spec_id": "pets"}}],
  "services": [{"id": "sb", "name": "shared", "tags": ["team-b"], "url": "http://127.0.0.1:9"}],
  "routes": [{"id": "rb", "tags": ["team-b"], "paths": ["/b"], "service_id": "sb"}],
  "consumers": [{"id": "bob", "name": "bob", "tags": ["team-b"], "credentials": [
    {"id": "bob-key", "tags": ["team-b"], "type": "key-auth", "key": "shared-key-0123456789"},
    {"id": "bob-basic", "tags": ["team-b"], "type": "basic-auth", "username": "bob", "password": "bob-password"}]}]
}`

// teamA is team-a's part: a spec (which team-b's policy uses) and a
// service of its own.
const teamA = `{
  "format_version": "1",
  "specs": [{"id": "pets", "name": "pets", "tags": ["team-a"], "document": {"openapi": "3.1.0", "info": {"title": "Pets", "version": "1"}, "paths": {}}}],
  "services": [{"id": "sa", "name": "mine", "tags": ["team-a"], "url": "http://127.0.0.1:9"}]
}`

// teamAClashing is team-a's part taking what team-b holds: the service's
// name, the route's match, the key, the username; and it lacks the spec
// team-b's policy uses.
const teamAClashing = `{
  "format_version": "1",
  "services": [{"id": "sa", "name": "shared", "tags": ["team-a"], "url": "http://127.0.0.1:9"}],
  "routes": [{"id": "ra", "tags": ["team-a"], "paths": ["/b"], "service_id": "sa"}],
  "consumers": [{"id": "alice", "name": "alice", "tags": ["team-a"], "credentials": [
    {"id": "alice-key", "tags": ["team-a"], "type": "key-auth", "key": "shared-key-0123456789"},
    {"id": "alice-basic", "tags": ["team-a"], "type": "basic-auth", "username": "bob", "password": "alice-password"}]}]
}`

func selectTag(tag string, prune, dryRun bool) ApplyOptions {
	return ApplyOptions{SelectTags: []string{tag}, Prune: prune, DryRun: dryRun}
}

// fieldsOf lists an error's fields as "field: message".
func fieldsOf(err error) []string {
	var out []string
	if e, ok := err.(*gatehouse.Error); ok {
		for _, f := range e.Fields {
			out = append(out, f.Field+": "+f.Message)
		}
	}
	return out
}

// A dry run is refused exactly as the real request is, every clash with
// what stays in the store listed at once, and neither writes anything.
func TestDryRunIsRefusedAsTheRealSyncIsWithEveryClashListed(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			ctx := context.Background()
			store := st.open(t)
			for _, step := range []struct {
				doc string
				tag string
			}{{teamA, "team-a"}, {teamB, "team-b"}} {
				if _, err := Apply(ctx, store, readDoc(t, step.doc), selectTag(step.tag, true, false)); err != nil {
					t.Fatalf("applying %s: %v", step.tag, err)
				}
			}
			before, err := store.DraftTag(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var answers [][]string
			for _, dryRun := range []bool{true, false} {
				_, err := Apply(ctx, store, readDoc(t, teamAClashing), selectTag("team-a", true, dryRun))
				if gatehouse.ErrorCode(err) != gatehouse.ECONFLICT {
					t.Fatalf("dry run %v: got %v; want %s", dryRun, err, gatehouse.ECONFLICT)
				}
				answers = append(answers, fieldsOf(err))
				if tag, _ := store.DraftTag(ctx); tag != before {
					t.Fatalf("dry run %v: the draft changed", dryRun)
				}
			}
			if !slices.Equal(answers[0], answers[1]) {
				t.Fatalf("got dry run\n%s\nand real\n%s\nwant the same answer", strings.Join(answers[0], "\n"), strings.Join(answers[1], "\n"))
			}
			want := []string{
				`/services/0: has the name "shared", which service "sb" (outside the selected tags) holds`,
				`/routes/0: matches the same requests at the same priority as route "rb" (outside the selected tags)`,
				`/consumers/0/credentials/0: has the same API key as credential "bob-key" of consumer "bob" (outside the selected tags)`,
				`/consumers/0/credentials/1: has the username "bob", which credential "bob-basic" of consumer "bob" (outside the selected tags) holds`,
				`specs/pets: cannot be deleted: policy "oas" (outside the selected tags) uses it`,
			}
			if got := answers[1]; !slices.Equal(got, want) {
				t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// A dry run is judged by the store's Try, as the real apply by its Apply:
// what the plan cannot see in its snapshot is still refused the same way.
func TestDryRunIsJudgedByTheStore(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	if _, err := Apply(ctx, store, readDoc(t, goodDoc), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	// A store that judges more than the plan sees: it refuses every batch.
	refusing := &refusingStore{Store: store}
	for _, dryRun := range []bool{true, false} {
		_, err := Apply(ctx, refusing, readDoc(t, edit(t, `"name": "svc"`, `"name": "svc2"`)), ApplyOptions{DryRun: dryRun})
		if gatehouse.ErrorCode(err) != gatehouse.ECONFLICT || fmt.Sprint(fieldsOf(err)) != `[/services/0: The name "svc2" is already in use.]` {
			t.Fatalf("dry run %v: got %v %v; want the store's conflict at /services/0", dryRun, err, fieldsOf(err))
		}
	}
	if refusing.tries != 1 || refusing.applies != 1 {
		t.Fatalf("got %d Try and %d Apply calls; want one of each", refusing.tries, refusing.applies)
	}
}

// refusingStore refuses every batch's first change as a name clash.
type refusingStore struct {
	gatehouse.Store
	tries, applies int
}

func (s *refusingStore) Try(context.Context, []gatehouse.Change, string) error {
	s.tries++
	return &gatehouse.ChangeError{Index: 0, Err: gatehouse.KeyTaken(gatehouse.KindService, "name:svc2", "")}
}

func (s *refusingStore) Apply(context.Context, []gatehouse.Change, string) error {
	s.applies++
	return &gatehouse.ChangeError{Index: 0, Err: gatehouse.KeyTaken(gatehouse.KindService, "name:svc2", "")}
}

// A sync that would delete a consumer holding credentials it does not
// manage is refused, naming them; one that manages them all lists each
// credential it deletes.
func TestSyncDeletesNoCredentialItDoesNotList(t *testing.T) {
	ctx := context.Background()
	const aliceDoc = `{"format_version": "1", "consumers": [{"id": "alice", "name": "alice", "tags": ["team-a"], "credentials": [
	  {"id": "alice-key", "tags": ["team-a"], "type": "key-auth", "key": "alice-key-0123456789"}]}]}`
	const empty = `{"format_version": "1"}`
	for _, tt := range []struct {
		desc      string
		otherTags []string
		want      string
		deleted   []string
	}{
		{"a credential without tags, outside the selection", nil,
			`[consumers/alice: cannot be deleted: it holds credential "alice-key2" of consumer "alice" (outside the selected tags), which deleting it would delete too, though this document does not manage it]`, nil},
		{"a credential within the selection", []string{"team-a"}, "",
			[]string{"delete credentials/alice-key", "delete credentials/alice-key2", "delete consumers/alice"}},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			store := openStore(t)
			if _, err := Apply(ctx, store, readDoc(t, aliceDoc), selectTag("team-a", true, false)); err != nil {
				t.Fatal(err)
			}
			// A credential added through the admin API, as POST makes it.
			cred := gatehouse.NewCredential()
			cred.ID, cred.ConsumerID, cred.Type, cred.Tags = "alice-key2", "alice", gatehouse.CredentialKeyAuth, tt.otherTags
			rec, err := encode(cred, []byte(gatehouse.HashToken("alice-key2-0123456789")))
			if err != nil {
				t.Fatal(err)
			}
			if err := store.Create(ctx, rec); err != nil {
				t.Fatal(err)
			}
			before, _ := store.DraftTag(ctx)
			for _, dryRun := range []bool{true, false} {
				cs, err := Apply(ctx, store, readDoc(t, empty), selectTag("team-a", true, dryRun))
				if tt.want != "" {
					if gatehouse.ErrorCode(err) != gatehouse.ECONFLICT || fmt.Sprint(fieldsOf(err)) != tt.want {
						t.Fatalf("dry run %v: got %v %v; want %s", dryRun, err, fieldsOf(err), tt.want)
					}
					if tag, _ := store.DraftTag(ctx); tag != before {
						t.Fatalf("dry run %v: the refused sync changed the draft", dryRun)
					}
					continue
				}
				if err != nil {
					t.Fatalf("dry run %v: %v", dryRun, err)
				}
				var got []string
				for _, c := range cs.Changes {
					got = append(got, fmt.Sprintf("%s %s/%s", c.Action, c.Kind, c.ID))
				}
				if !slices.Equal(got, tt.deleted) {
					t.Fatalf("dry run %v: got %v; want %v", dryRun, got, tt.deleted)
				}
			}
			if tt.want != "" {
				if _, err := store.Get(ctx, gatehouse.KindCredential, "alice-key2"); err != nil {
					t.Fatalf("the credential outside the selection: %v; want it kept", err)
				}
			}
		})
	}
}

// With selected tags a global policy is refused: it would act on every
// route, beyond the selection. Without, it is a policy like another.
func TestAGlobalPolicyIsRefusedWithSelectedTags(t *testing.T) {
	const doc = `{"format_version": "1", "policies": [{"id": "down", "name": "down", "tags": ["team-b"], "global": true,
	  "type": "maintenance", "config": {}}]}`
	for _, tt := range []struct {
		desc string
		opts ApplyOptions
		want string
	}{
		{"selected tags", selectTag("team-b", true, false), "[/policies/0/global: must be false with selected tags: a global policy acts on every route, beyond the selected tags; manage it without --select-tag]"},
		{"selected tags, dry run", selectTag("team-b", false, true), "[/policies/0/global: must be false with selected tags: a global policy acts on every route, beyond the selected tags; manage it without --select-tag]"},
		{"no selection", ApplyOptions{Prune: true}, "[]"},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			store := openStore(t)
			_, err := Apply(context.Background(), store, readDoc(t, doc), tt.opts)
			if got := fmt.Sprint(fieldsOf(err)); got != tt.want || (tt.want != "[]" && gatehouse.ErrorCode(err) != gatehouse.EUNPROCESSABLE) {
				t.Fatalf("got %v %s; want %s", err, got, tt.want)
			}
			if n, _ := store.Count(context.Background(), gatehouse.KindPolicy); (n == 1) != (tt.want == "[]" && !tt.opts.DryRun) {
				t.Fatalf("got %d policies stored", n)
			}
		})
	}
}
