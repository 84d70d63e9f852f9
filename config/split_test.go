package config

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// splitDoc is a canary on a service: stable lists a traffic split that
// names canary, so the kinds refer both ways (service → policy →
// service), and only the entries' own references give an order.
const splitDoc = `{
  "format_version": "1",
  "services": [{"id": "stable", "name": "stable", "url": "http://127.0.0.1:9", "policies": ["split"]},
               {"id": "canary", "name": "canary", "url": "http://127.0.0.1:10"}],
  "routes": [{"id": "r1", "name": "r1", "paths": ["/a"], "service_id": "stable"}],
  "policies": [{"id": "split", "name": "split", "type": "traffic-split", "config": {"services": [{"service_id": "canary", "percent": 5}]}}]
}`

const noSplitDoc = `{
  "format_version": "1",
  "services": [{"id": "stable", "name": "stable", "url": "http://127.0.0.1:9"}],
  "routes": [{"id": "r1", "name": "r1", "paths": ["/a"], "service_id": "stable"}]
}`

// A document whose policies name services (a traffic split) applies, and
// prunes, in an order in which each change is valid when it runs: each
// entry is created after what it refers to, and deleted before it.
func TestApplyOrdersAPolicyThatNamesAServiceByItsReferences(t *testing.T) {
	store := openStore(t)
	ctx := context.Background()
	for _, tc := range []struct {
		desc, doc, want string
	}{
		{"create", splitDoc, "[create services/canary create policies/split create services/stable create routes/r1]"},
		{"prune", noSplitDoc, "[update services/stable delete policies/split delete services/canary]"},
	} {
		cs, err := Apply(ctx, store, readDoc(t, tc.doc), ApplyOptions{Prune: true})
		if err != nil {
			t.Fatalf("%s: %v", tc.desc, err)
		}
		var got []string
		for _, c := range cs.Changes {
			got = append(got, fmt.Sprintf("%s %s/%s", c.Action, c.Kind, c.ID))
		}
		if fmt.Sprint(got) != tc.want {
			t.Fatalf("%s: got %v; want %s", tc.desc, got, tc.want)
		}
	}
}

// One level holds one traffic split, whether both are in the document or
// one is in the store already: 422 at the second, nothing applied.
func TestApplyRefusesTwoTrafficSplitsAtOneLevel(t *testing.T) {
	twoDoc := func(policies string) string {
		return `{
  "format_version": "1",
  "services": [{"id": "stable", "name": "stable", "url": "http://127.0.0.1:9", "policies": ["a", "b"]},
               {"id": "canary", "name": "canary", "url": "http://127.0.0.1:10"}],
  "routes": [{"id": "r1", "name": "r1", "paths": ["/a"], "service_id": "stable"}],
  "policies": [` + policies + `]
}`
	}
	split := func(id string) string {
		return `{"id": "` + id + `", "name": "` + id + `", "type": "traffic-split", "config": {"services": [{"service_id": "canary", "percent": 5}]}}`
	}
	t.Run("both in the document", func(t *testing.T) {
		problems := Check(readDoc(t, twoDoc(split("a")+", "+split("b"))), CheckOptions{})
		if len(problems) != 1 || problems[0].Pointer != "/services/0/policies/1" || problems[0].Code != gatehouse.EUNPROCESSABLE {
			t.Fatalf("got %v; want one 422 at /services/0/policies/1", problems)
		}
	})
	t.Run("one in the store", func(t *testing.T) {
		store := openStore(t)
		ctx := context.Background()
		// b in the store, listed by nobody; then a document listing both.
		first := strings.Replace(twoDoc(split("a")+", "+split("b")), `"policies": ["a", "b"]`, `"policies": []`, 1)
		if _, err := Apply(ctx, store, readDoc(t, first), ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
		_, err := Apply(ctx, store, readDoc(t, twoDoc(split("a"))), ApplyOptions{})
		var ge *gatehouse.Error
		if !errors.As(err, &ge) || ge.Code != gatehouse.EUNPROCESSABLE || len(ge.Fields) != 1 || ge.Fields[0].Field != "/services/0/policies/1" {
			t.Fatalf("got %v %+v; want 422 at /services/0/policies/1", err, ge)
		}
	})
}
