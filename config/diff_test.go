package config

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// TestDiffRevisionsCoversEveryKindARevisionHolds fills every list of a
// Revision, found by reflection, with one resource: the diff from the
// empty configuration must create each, so that a kind added to Revision
// and forgotten by the diff fails here rather than vanishing from diffs.
func TestDiffRevisionsCoversEveryKindARevisionHolds(t *testing.T) {
	rev := gatehouse.NewRevision()
	v := reflect.ValueOf(rev).Elem()
	lists := 0
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() != reflect.Slice {
			continue
		}
		item := reflect.New(f.Type().Elem().Elem())
		item.Elem().FieldByName("ID").SetString(fmt.Sprintf("x%d", i))
		f.Set(reflect.Append(f, item))
		lists++
	}
	d := DiffRevisions(nil, rev)
	if len(d.Changes) != lists || d.Summary.Create != lists {
		t.Fatalf("diff from nothing to a revision with one resource in each of its %d lists: %d changes (%+v); want %d creates",
			lists, len(d.Changes), d.Summary, lists)
	}
	if back := DiffRevisions(rev, nil); back.Summary.Delete != lists {
		t.Fatalf("diff back to nothing: %+v; want %d deletes", back.Summary, lists)
	}
}
