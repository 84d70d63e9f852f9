package config

import (
	"context"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/postgres"
)

// stores are the engines Apply and Dump must agree on.
var stores = []struct {
	name string
	open func(t *testing.T) gatehouse.Store
}{
	{"sqlite", func(t *testing.T) gatehouse.Store { return openStore(t) }},
	{"postgres", func(t *testing.T) gatehouse.Store {
		srv := pgtest.Start(t)
		db, err := postgres.Open(context.Background(), srv.DSN("postgres"), postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}},
}

// On every store: a document applies whole, its dump applies as no
// change, the new draft tag is the store's own, and a sync deletes.
func TestApplyDumpRoundTripOnEveryStore(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			ctx := context.Background()
			store := st.open(t)
			cs, err := Apply(ctx, store, readDoc(t, goodDoc), ApplyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if tag, err := store.DraftTag(ctx); err != nil || cs.NewDraft != tag || cs.Summary.Create != 6 {
				t.Fatalf("got %+v; want six creates and the store's draft tag %s (%v)", cs, tag, err)
			}
			dump, tag, err := Dump(ctx, store, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, asYAML := range []bool{false, true} {
				text, err := Encode(dump, asYAML)
				if err != nil {
					t.Fatal(err)
				}
				again, err := Apply(ctx, store, readDoc(t, string(text)), ApplyOptions{Prune: true, IfDraft: tag})
				if err != nil || len(again.Changes) != 0 || again.NewDraft != tag {
					t.Fatalf("yaml %v: applying the dump: got %+v, %v; want no change\n%s", asYAML, again, err, text)
				}
			}
			// A stale tag is refused; a sync without the consumer deletes
			// it and its credentials.
			if _, err := Apply(ctx, store, readDoc(t, goodDoc), ApplyOptions{IfDraft: "d-stale"}); gatehouse.ErrorCode(err) != gatehouse.EPRECONDITION {
				t.Fatalf("stale If-Match: got %v; want %s", err, gatehouse.EPRECONDITION)
			}
			noConsumers := goodDoc[:strings.Index(goodDoc, `,
  "consumers"`)] + "\n}"
			cs, err = Apply(ctx, store, readDoc(t, noConsumers), ApplyOptions{Prune: true})
			if err != nil {
				t.Fatal(err)
			}
			if tag, _ := store.DraftTag(ctx); cs.Summary != (Summary{Delete: 3}) || cs.NewDraft != tag {
				t.Fatalf("got %+v; want the two credentials and the consumer deleted, new draft %s", cs, tag)
			}
		})
	}
}
