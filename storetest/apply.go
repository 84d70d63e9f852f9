package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// The behaviour of Apply and DraftTag. The tests are listed in tests
// (storetest.go) with the others.

func create(r *gatehouse.Record) gatehouse.Change {
	return gatehouse.Change{Op: gatehouse.OpCreate, Record: r}
}

func update(r *gatehouse.Record, ifVersion int64) gatehouse.Change {
	return gatehouse.Change{Op: gatehouse.OpUpdate, Record: r, IfVersion: ifVersion}
}

func remove(kind gatehouse.Kind, id string, ifVersion int64) gatehouse.Change {
	return gatehouse.Change{Op: gatehouse.OpDelete, Record: &gatehouse.Record{Kind: kind, ID: id}, IfVersion: ifVersion}
}

// route returns a route using service, holding the match key of its path.
func route(id, service, path string) *gatehouse.Record {
	r := rec(gatehouse.KindRoute, id)
	r.Refs = []gatehouse.Ref{ref(gatehouse.KindService, service)}
	r.Unique = []string{"match:" + path}
	return r
}

func (e *env) apply(changes []gatehouse.Change, ifDraft string) {
	e.t.Helper()
	if err := e.store.Apply(e.ctx, changes, ifDraft); err != nil {
		e.t.Fatalf("Apply of %d changes (ifDraft %q): got %v; want success", len(changes), ifDraft, err)
	}
}

func (e *env) draftTag() string {
	e.t.Helper()
	tag, err := e.store.DraftTag(e.ctx)
	if err != nil {
		e.t.Fatalf("DraftTag: got %v; want success", err)
	}
	return tag
}

// wantChangeError fails unless err is a *ChangeError naming change index
// with an error of code.
func (e *env) wantChangeError(what string, err error, index int, code gatehouse.Code) {
	e.t.Helper()
	var ce *gatehouse.ChangeError
	if !errors.As(err, &ce) {
		e.t.Fatalf("%s: got %v; want a *gatehouse.ChangeError", what, err)
	}
	if ce.Index != index {
		e.t.Errorf("%s: got change %d failing; want change %d", what, ce.Index, index)
	}
	if got := gatehouse.ErrorCode(ce.Err); got != code {
		e.t.Errorf("%s: got %s (%v) for the change; want %s", what, got, ce.Err, code)
	}
	if got := gatehouse.ErrorCode(err); got != code {
		e.t.Errorf("%s: got ErrorCode %s of the batch's error; want %s", what, got, code)
	}
}

// wantDraftUnchanged fails unless the draft reads as it did when its tag
// was before (which every draft write changes).
func (e *env) wantDraftUnchanged(what, before string) {
	e.t.Helper()
	if got := e.draftTag(); got != before {
		e.t.Errorf("%s: got DraftTag %s; want %s, unchanged", what, got, before)
	}
}

// testApplyFailingChangeAbortsTheWholeBatch makes the 500th change of a
// batch fail in each way a change can fail: nothing of the 499 before it
// is written, and the error names it.
func testApplyFailingChangeAbortsTheWholeBatch(e *env) {
	keep := rec(gatehouse.KindService, "keep")
	keep.Unique = []string{"name:keep"}
	e.create(keep)
	e.create(route("used", "keep", "/used"))
	tag := e.draftTag()

	const failing = 499
	for _, tc := range []struct {
		desc string
		last gatehouse.Change
		code gatehouse.Code
	}{
		{"route naming a missing service", create(route("bad", "nowhere", "/bad")), gatehouse.EUNPROCESSABLE},
		{"route claiming a path an earlier change claimed", create(route("bad", "s", "/r2")), gatehouse.ECONFLICT},
		{"create of an id an earlier change created", create(route("r2", "s", "/bad")), gatehouse.ECONFLICT},
		{"create of an id that existed before", create(route("used", "s", "/bad")), gatehouse.ECONFLICT},
		{"update at the version an earlier change replaced", update(rec(gatehouse.KindService, "keep"), keep.Version), gatehouse.EPRECONDITION},
		{"update of an id that never existed", update(rec(gatehouse.KindService, "nobody"), 1), gatehouse.ENOTFOUND},
		{"delete of a service earlier changes made routes use", remove(gatehouse.KindService, "s", 0), gatehouse.ECONFLICT},
		{"delete of an id that never existed", remove(gatehouse.KindService, "nobody", 0), gatehouse.ENOTFOUND},
		{"change without a record", gatehouse.Change{Op: gatehouse.OpCreate}, gatehouse.EINTERNAL},
		{"change of an unknown op", gatehouse.Change{Op: "upsert", Record: rec(gatehouse.KindService, "x")}, gatehouse.EINTERNAL},
	} {
		e.t.Run(tc.desc, func(t *testing.T) {
			e := &env{t: t, ctx: e.ctx, store: e.store, clock: e.clock}
			s := rec(gatehouse.KindService, "s")
			s.Unique = []string{"name:s"}
			renamed := clone(keep)
			renamed.Name = "renamed"
			renamed.Unique = []string{"name:renamed"}
			changes := []gatehouse.Change{create(s), update(renamed, keep.Version)}
			for i := len(changes); i < failing; i++ {
				changes = append(changes, create(route(fmt.Sprintf("r%d", i), "s", fmt.Sprintf("/r%d", i))))
			}
			changes = append(changes, tc.last)

			err := e.store.Apply(e.ctx, changes, "")
			e.wantChangeError("Apply", err, failing, tc.code)

			e.wantDraftUnchanged("after the failed batch", tag)
			e.wantGetCode(gatehouse.KindService, "s", gatehouse.ENOTFOUND)
			e.wantGetCode(gatehouse.KindRoute, "r2", gatehouse.ENOTFOUND)
			e.wantGetCode(gatehouse.KindRoute, fmt.Sprintf("r%d", failing-1), gatehouse.ENOTFOUND)
			e.wantEqual("Get of the service the batch updated", e.get(gatehouse.KindService, "keep"), keep)
			e.wantLookup(gatehouse.KindService, "name:renamed", "")
			e.wantLookup(gatehouse.KindRoute, "match:/r2", "")
			e.wantCount(gatehouse.KindRoute, 1)
			for i, c := range changes[:failing] {
				if c.Record.Version != 0 && c.Record != renamed {
					t.Fatalf("change %d: got Version %d on the record of a failed batch; want it untouched", i, c.Record.Version)
				}
			}
			if renamed.Version != keep.Version {
				t.Errorf("update of the failed batch: got Version %d on its record; want %d, untouched", renamed.Version, keep.Version)
			}
		})
	}
}

// testApplyMakesEveryChangeInOrder mixes creates, updates and deletes in
// one batch, each relying on an earlier one.
func testApplyMakesEveryChangeInOrder(e *env) {
	e.create(rec(gatehouse.KindService, "old"))
	oldRoute := e.create(route("r-old", "old", "/old"))
	upd := rec(gatehouse.KindService, "upd")
	upd.Unique = []string{"name:upd"}
	e.create(upd)
	before := upd.Version
	e.clock.Advance(time.Minute)
	now := e.clock.Now().UTC().Truncate(time.Microsecond)

	newService := rec(gatehouse.KindService, "new")
	newService.Unique = []string{"name:new"}
	newRoute := route("r-new", "new", "/new")
	renamed := clone(upd)
	renamed.Name = "renamed"
	renamed.Unique = []string{"name:renamed"}
	renamed.Body = []byte(`{"renamed":true}`)
	reborn := rec(gatehouse.KindService, "old")
	reborn.Body = []byte(`{"reborn":true}`)
	changes := []gatehouse.Change{
		create(newService),
		create(newRoute), // uses the service created just before
		update(renamed, upd.Version),
		remove(gatehouse.KindRoute, "r-old", oldRoute.Version),
		remove(gatehouse.KindService, "old", 0), // no longer used once r-old is gone
		create(reborn),                          // an id deleted just before
	}
	e.apply(changes, "")

	last := before
	for i, c := range changes {
		if c.Op == gatehouse.OpDelete {
			continue
		}
		if c.Record.Version <= last {
			e.t.Errorf("change %d (%s %s): got Version %d; want more than %d, the version before it", i, c.Op, c.Record.ID, c.Record.Version, last)
		}
		last = c.Record.Version
		if !c.Record.UpdatedAt.Equal(now) {
			e.t.Errorf("change %d (%s %s): got UpdatedAt %v; want %v", i, c.Op, c.Record.ID, c.Record.UpdatedAt, now)
		}
		e.wantEqual(fmt.Sprintf("Get after change %d", i), e.get(c.Record.Kind, c.Record.ID), c.Record)
	}
	if !renamed.CreatedAt.Equal(upd.CreatedAt) {
		e.t.Errorf("updated record: got CreatedAt %v; want %v, kept", renamed.CreatedAt, upd.CreatedAt)
	}
	if !newService.CreatedAt.Equal(now) {
		e.t.Errorf("created record: got CreatedAt %v; want %v", newService.CreatedAt, now)
	}
	e.wantGetCode(gatehouse.KindRoute, "r-old", gatehouse.EGONE)
	e.wantLookup(gatehouse.KindRoute, "match:/old", "")
	e.wantLookup(gatehouse.KindService, "name:upd", "")
	e.wantLookup(gatehouse.KindService, "name:renamed", "upd")
	// The new route holds its service: the batch's references are real.
	err := e.store.Delete(e.ctx, gatehouse.KindService, "new", 0)
	e.wantCode("Delete of the service the batch's route uses", err, gatehouse.ECONFLICT)
}

func testApplyWithTheCurrentDraftTagApplies(e *env) {
	e.create(rec(gatehouse.KindService, "s1"))
	tag := e.draftTag()
	s2 := rec(gatehouse.KindService, "s2")
	e.apply([]gatehouse.Change{create(s2)}, tag)
	e.wantEqual("Get after Apply", e.get(gatehouse.KindService, "s2"), s2)
	if e.draftTag() == tag {
		e.t.Errorf("DraftTag after Apply: got %s, unchanged; want a new tag", tag)
	}
}

// testApplyWithAStaleDraftTagFailsAndWritesNothing changes the draft in
// each way after its tag was read; then an Apply with that tag is refused
// as a whole, not by one of its changes.
func testApplyWithAStaleDraftTagFailsAndWritesNothing(e *env) {
	for _, tc := range []struct {
		desc   string
		change func(e *env)
	}{
		{"a create", func(e *env) { e.create(rec(gatehouse.KindConsumer, "c-new")) }},
		{"an update", func(e *env) {
			s := e.get(gatehouse.KindService, "s1")
			e.update(s, s.Version)
		}},
		{"a delete", func(e *env) { e.delete(gatehouse.KindPolicy, "p1") }},
		{"a create of a child", func(e *env) {
			k := rec(gatehouse.KindCredential, "k1")
			k.Parent = &gatehouse.Ref{Kind: gatehouse.KindConsumer, ID: "c1"}
			e.create(k)
		}},
		{"an Apply", func(e *env) { e.apply([]gatehouse.Change{create(rec(gatehouse.KindSpec, "spec1"))}, "") }},
	} {
		e.t.Run(tc.desc, func(t *testing.T) {
			e := &env{t: t, ctx: e.ctx, store: e.store, clock: e.clock}
			e.create(rec(gatehouse.KindService, "s1"))
			e.create(rec(gatehouse.KindPolicy, "p1"))
			e.create(rec(gatehouse.KindConsumer, "c1"))
			t.Cleanup(func() {
				// The next case starts from the same draft.
				for _, r := range []gatehouse.Ref{
					ref(gatehouse.KindService, "s1"), ref(gatehouse.KindPolicy, "p1"), ref(gatehouse.KindConsumer, "c1"),
					ref(gatehouse.KindConsumer, "c-new"), ref(gatehouse.KindSpec, "spec1"),
				} {
					if err := e.store.Delete(e.ctx, r.Kind, r.ID, 0); err != nil && !gatehouse.Absent(err) {
						t.Errorf("cleanup: Delete(%s/%s): %v", r.Kind, r.ID, err)
					}
				}
			})
			stale := e.draftTag()
			tc.change(e)
			current := e.draftTag()

			err := e.store.Apply(e.ctx, []gatehouse.Change{create(rec(gatehouse.KindService, "x"))}, stale)
			e.wantCode("Apply with a stale draft tag", err, gatehouse.EPRECONDITION)
			if errors.As(err, new(*gatehouse.ChangeError)) {
				t.Errorf("Apply with a stale draft tag: got %v, a ChangeError; want the batch refused as a whole", err)
			}
			e.wantMessage("Apply with a stale draft tag", err, stale, current)
			e.wantGetCode(gatehouse.KindService, "x", gatehouse.ENOTFOUND)
			e.wantDraftUnchanged("after the refused Apply", current)
		})
	}
}

// testDraftTagChangesWithTheDraftAndNothingElse writes records of every
// kind: the tag moves with each write of a draft kind, and with no other.
func testDraftTagChangesWithTheDraftAndNothingElse(e *env) {
	for _, step := range []struct {
		desc  string
		write func(e *env)
		draft bool
	}{
		{"create of a token", func(e *env) { e.create(rec(gatehouse.KindToken, "t1")) }, false},
		{"update of a token", func(e *env) {
			t := e.get(gatehouse.KindToken, "t1")
			e.update(t, t.Version)
		}, false},
		{"delete of a token", func(e *env) { e.delete(gatehouse.KindToken, "t1") }, false},
		{"create of a node", func(e *env) { e.create(rec(gatehouse.KindNode, "n1")) }, false},
		{"create of a revision", func(e *env) { e.create(rec(gatehouse.KindRevision, "rev1")) }, false},
		{"Apply of a deployment", func(e *env) { e.apply([]gatehouse.Change{create(rec(gatehouse.KindDeployment, "d1"))}, "") }, false},
		{"create of a service", func(e *env) { e.create(rec(gatehouse.KindService, "s1")) }, true},
		{"update of a service", func(e *env) {
			s := e.get(gatehouse.KindService, "s1")
			e.update(s, s.Version)
		}, true},
		{"create of a consumer", func(e *env) { e.create(rec(gatehouse.KindConsumer, "c1")) }, true},
		{"delete of a consumer", func(e *env) { e.delete(gatehouse.KindConsumer, "c1") }, true},
		{"re-create of a deleted consumer", func(e *env) { e.create(rec(gatehouse.KindConsumer, "c1")) }, true},
		{"Apply of a route", func(e *env) { e.apply([]gatehouse.Change{create(route("r1", "s1", "/r1"))}, "") }, true},
		{"Apply of a delete", func(e *env) { e.apply([]gatehouse.Change{remove(gatehouse.KindRoute, "r1", 0)}, "") }, true},
		{"empty Apply", func(e *env) { e.apply(nil, "") }, false},
	} {
		before := e.draftTag()
		step.write(e)
		after := e.draftTag()
		if changed := after != before; changed != step.draft {
			e.t.Errorf("%s: got the DraftTag changed %v (%s to %s); want %v", step.desc, changed, before, after, step.draft)
		}
	}
}

// testDraftTagIsTheTagOfASnapshotOfTheDraft pins DraftTag to what a
// reader of a Snapshot computes, so that an ETag read with a dump of the
// draft matches what Apply checks.
func testDraftTagIsTheTagOfASnapshotOfTheDraft(e *env) {
	check := func(what string) {
		e.t.Helper()
		snap, err := e.store.Snapshot(e.ctx, gatehouse.DraftKinds...)
		if err != nil {
			e.t.Fatalf("Snapshot: got %v; want success", err)
		}
		var stamps []gatehouse.Stamp
		for _, recs := range snap {
			for _, r := range recs {
				stamps = append(stamps, gatehouse.Stamp{Kind: r.Kind, ID: r.ID, Version: r.Version})
			}
		}
		if got, want := e.draftTag(), gatehouse.DraftTag(stamps); got != want {
			e.t.Errorf("%s: got DraftTag %s; want %s, the tag of a Snapshot of %d records", what, got, want, len(stamps))
		}
	}
	check("empty store")
	for _, kind := range gatehouse.DraftKinds {
		e.create(rec(kind, "x"))
		e.create(rec(kind, "y"))
	}
	e.create(rec(gatehouse.KindToken, "t1"))
	e.create(rec(gatehouse.KindNode, "n1"))
	e.delete(gatehouse.KindService, "x")
	check("a record of every kind")
}

func testApplyOfAnEmptyBatchSucceeds(e *env) {
	e.create(rec(gatehouse.KindService, "s1"))
	tag := e.draftTag()
	e.apply(nil, "")
	e.apply([]gatehouse.Change{}, tag)
	e.wantDraftUnchanged("after empty Applies", tag)

	// A stale tag is refused even with nothing to change.
	e.delete(gatehouse.KindService, "s1")
	err := e.store.Apply(e.ctx, nil, tag)
	e.wantCode("empty Apply with a stale draft tag", err, gatehouse.EPRECONDITION)
}

// testConcurrentAppliesFromOneDraftTagExactlyOneWins races Applies that
// all read the same draft: one applies, the others find the draft changed,
// however the store orders them.
func testConcurrentAppliesFromOneDraftTagExactlyOneWins(e *env) {
	e.create(rec(gatehouse.KindService, "base"))
	for round := range 3 {
		tag := e.draftTag()
		errs := race(workers, func(i int) error {
			r := rec(gatehouse.KindService, fmt.Sprintf("round%d-writer%d", round, i))
			return e.store.Apply(e.ctx, []gatehouse.Change{create(r)}, tag)
		})
		winner := -1
		for i, err := range errs {
			switch code := gatehouse.ErrorCode(err); {
			case err == nil:
				if winner >= 0 {
					e.t.Fatalf("round %d: got Applies %d and %d both succeeding from draft %s; want exactly one", round, winner, i, tag)
				}
				winner = i
			case code != gatehouse.EPRECONDITION:
				e.t.Fatalf("round %d, Apply %d: got %s (%v); want success or %s", round, i, code, err, gatehouse.EPRECONDITION)
			}
		}
		if winner < 0 {
			e.t.Fatalf("round %d: got no Apply succeeding; want exactly one", round)
		}
		e.wantCount(gatehouse.KindService, round+2)
	}
}

// testTryFailsExactlyAsApplyWouldAndWritesNothing gives Try batches that
// fail in each way: Try names the same change with the same code as the
// Apply of the same batch does, and leaves the draft as it was.
func testTryFailsExactlyAsApplyWouldAndWritesNothing(e *env) {
	keep := rec(gatehouse.KindService, "keep")
	keep.Unique = []string{"name:keep"}
	e.create(keep)
	e.create(route("used", "keep", "/used"))
	stale := e.draftTag()
	e.create(rec(gatehouse.KindConsumer, "c1"))
	tag := e.draftTag()

	for _, tc := range []struct {
		desc    string
		changes func() []gatehouse.Change
		ifDraft string
		index   int
		code    gatehouse.Code
	}{
		{"route naming a missing service", func() []gatehouse.Change {
			return []gatehouse.Change{create(rec(gatehouse.KindService, "s")), create(route("bad", "nowhere", "/bad"))}
		}, "", 1, gatehouse.EUNPROCESSABLE},
		{"route claiming a path a stored route holds", func() []gatehouse.Change {
			return []gatehouse.Change{create(route("bad", "keep", "/used"))}
		}, "", 0, gatehouse.ECONFLICT},
		{"name a stored service holds", func() []gatehouse.Change {
			s := rec(gatehouse.KindService, "s")
			s.Unique = []string{"name:keep"}
			return []gatehouse.Change{create(rec(gatehouse.KindConsumer, "c2")), create(s)}
		}, "", 1, gatehouse.ECONFLICT},
		{"delete of a service a stored route uses", func() []gatehouse.Change {
			return []gatehouse.Change{remove(gatehouse.KindService, "keep", 0)}
		}, "", 0, gatehouse.ECONFLICT},
		{"update at a stale version", func() []gatehouse.Change {
			return []gatehouse.Change{update(clone(keep), keep.Version-1)}
		}, "", 0, gatehouse.EPRECONDITION},
		{"stale draft tag", func() []gatehouse.Change {
			return []gatehouse.Change{create(rec(gatehouse.KindService, "s"))}
		}, stale, -1, gatehouse.EPRECONDITION},
	} {
		e.t.Run(tc.desc, func(t *testing.T) {
			e := &env{t: t, ctx: e.ctx, store: e.store, clock: e.clock}
			tried := tc.changes()
			tryErr := e.store.Try(e.ctx, tried, tc.ifDraft)
			applyErr := e.store.Apply(e.ctx, tc.changes(), tc.ifDraft)
			if tc.index < 0 {
				e.wantCode("Try", tryErr, tc.code)
				e.wantCode("Apply", applyErr, tc.code)
				if errors.As(tryErr, new(*gatehouse.ChangeError)) {
					t.Errorf("Try with a stale draft tag: got %v, a ChangeError; want the batch refused as a whole", tryErr)
				}
			} else {
				e.wantChangeError("Try", tryErr, tc.index, tc.code)
				e.wantChangeError("Apply", applyErr, tc.index, tc.code)
			}
			if gatehouse.ErrorMessage(tryErr) != gatehouse.ErrorMessage(applyErr) {
				t.Errorf("Try: got message %q; want Apply's %q", gatehouse.ErrorMessage(tryErr), gatehouse.ErrorMessage(applyErr))
			}
			for i, c := range tried {
				if c.Record.Version != 0 && c.Op == gatehouse.OpCreate {
					t.Errorf("change %d: got Version %d on the record of a Try; want it untouched", i, c.Record.Version)
				}
			}
			e.wantDraftUnchanged("after Try and the failed Apply", tag)
		})
	}
}

// testTryOfABatchThatWouldSucceedWritesNothing tries creates, an update
// and a cascading delete: nothing is written, no record of the batch is
// given a version or times, and Apply of the same batch then succeeds.
func testTryOfABatchThatWouldSucceedWritesNothing(e *env) {
	old := e.create(rec(gatehouse.KindService, "old"))
	upd := rec(gatehouse.KindService, "upd")
	upd.Unique = []string{"name:upd"}
	e.create(upd)
	e.create(rec(gatehouse.KindConsumer, "c1"))
	key := rec(gatehouse.KindCredential, "k1")
	key.Parent = &gatehouse.Ref{Kind: gatehouse.KindConsumer, ID: "c1"}
	key.Unique = []string{"key:k1"}
	e.create(key)
	tag := e.draftTag()
	e.clock.Advance(time.Minute)

	batch := func() []gatehouse.Change {
		renamed := clone(upd)
		renamed.Name = "renamed"
		renamed.Unique = []string{"name:renamed"}
		return []gatehouse.Change{
			create(rec(gatehouse.KindService, "new")),
			create(route("r-new", "new", "/new")),
			update(renamed, upd.Version),
			remove(gatehouse.KindConsumer, "c1", 0), // and its credential
			remove(gatehouse.KindService, "old", old.Version),
		}
	}
	tried := batch()
	if err := e.store.Try(e.ctx, tried, tag); err != nil {
		e.t.Fatalf("Try: got %v; want success", err)
	}
	for i, c := range tried {
		if c.Op == gatehouse.OpCreate && (c.Record.Version != 0 || !c.Record.CreatedAt.IsZero()) {
			e.t.Errorf("change %d: got Version %d, CreatedAt %v on the record of a Try; want them unassigned", i, c.Record.Version, c.Record.CreatedAt)
		}
	}
	if got := tried[2].Record.Version; got != upd.Version {
		e.t.Errorf("update of the Try: got Version %d on its record; want %d, untouched", got, upd.Version)
	}
	e.wantDraftUnchanged("after Try", tag)
	e.wantGetCode(gatehouse.KindService, "new", gatehouse.ENOTFOUND)
	e.wantGetCode(gatehouse.KindRoute, "r-new", gatehouse.ENOTFOUND)
	e.wantLookup(gatehouse.KindRoute, "match:/new", "")
	e.wantEqual("Get of the service the Try updated", e.get(gatehouse.KindService, "upd"), upd)
	e.wantLookup(gatehouse.KindService, "name:upd", "upd")
	e.wantEqual("Get of the service the Try deleted", e.get(gatehouse.KindService, "old"), old)
	e.wantEqual("Get of the credential the Try's delete cascaded to", e.get(gatehouse.KindCredential, "k1"), key)

	// The Try held no lock and left no claim behind: the real batch, with
	// the same draft tag, applies.
	e.apply(batch(), tag)
	e.wantGetCode(gatehouse.KindCredential, "k1", gatehouse.EGONE)
	e.wantLookup(gatehouse.KindService, "name:renamed", "upd")
}
