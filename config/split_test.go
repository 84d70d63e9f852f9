package config

import (
	"context"
	"fmt"
	"testing"
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
