package config

import (
	"context"
	"slices"
	"testing"
)

// A consumer tagged team-a with a credential tagged team-a and one
// without tags.
const mixedTagsDoc = `{
  "format_version": "1",
  "consumers": [{"id": "c1", "name": "alice", "tags": ["team-a"], "credentials": [
    {"id": "tagged", "type": "key-auth", "tags": ["team-a"], "key": "0123456789abcdef-key1"},
    {"id": "untagged", "type": "key-auth", "key": "0123456789abcdef-key2"}
  ]}]
}`

// A credential's tags are its own: a dump writes them as stored, and
// applying the dump changes nothing, whether or not they match the
// consumer's.
func TestDumpOfACredentialWithoutTagsUnderATaggedConsumerAppliesAsNoChange(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	if _, err := Apply(ctx, store, readDoc(t, mixedTagsDoc), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	dump, tag, err := Dump(ctx, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	creds := dump.Consumers[0].Credentials
	if len(creds) != 2 || !slices.Equal(creds[0].Tags, []string{"team-a"}) || len(creds[1].Tags) != 0 {
		t.Fatalf("got credentials %+v; want tagged with [team-a] and untagged with none", creds)
	}
	for _, asYAML := range []bool{false, true} {
		text, err := Encode(dump, asYAML)
		if err != nil {
			t.Fatal(err)
		}
		cs, err := Apply(ctx, store, readDoc(t, string(text)), ApplyOptions{Prune: true, DryRun: true, IfDraft: tag})
		if err != nil || len(cs.Changes) != 0 {
			t.Fatalf("yaml %v: applying the dump: got %+v, %v; want no change\n%s", asYAML, cs, err, text)
		}
	}
	// Selected by team-a, the consumer comes with only the credential
	// that carries team-a itself.
	dump, _, err = Dump(ctx, store, []string{"team-a"})
	if err != nil {
		t.Fatal(err)
	}
	if creds := dump.Consumers[0].Credentials; len(creds) != 1 || creds[0].ID != "tagged" {
		t.Fatalf("dump selecting team-a: got credentials %+v; want only \"tagged\"", creds)
	}
}

// With selected tags, a credential needs them itself, like every entry.
func TestCheckWantsTheSelectedTagsOnEveryCredential(t *testing.T) {
	problems := Check(readDoc(t, mixedTagsDoc), CheckOptions{SelectTags: []string{"team-a"}, External: true})
	if len(problems) != 1 || problems[0].Pointer != "/consumers/0/credentials/1/tags" {
		t.Fatalf("got %+v; want one problem, at /consumers/0/credentials/1/tags", problems)
	}
}
