// Package storetest is the conformance suite for gatehouse.Store. It is
// written against the interface alone, so that every backend (SQLite now,
// PostgreSQL later) is held to exactly the same behaviour:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, now func() time.Time, retention time.Duration) gatehouse.Store {
//			s, err := mybackend.Open(..., now, retention)
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
package storetest

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/testenv"
)

// Opener returns a fresh, empty store using the given clock and tombstone
// retention. It registers cleanup with t.
type Opener func(t *testing.T, now func() time.Time, retention time.Duration) gatehouse.Store

// retention is the tombstone retention every test store gets. Tests move
// the fake clock past it rather than sleeping.
const retention = time.Hour

// start is where every fake clock starts: not in UTC and with nanoseconds,
// so that the suite checks that stores normalise both.
var start = time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.FixedZone("UTC+2", 2*60*60))

// Clock is the fake clock the suite runs stores on (testenv.Clock).
type Clock = testenv.Clock

// NewClock returns a Clock reading t.
func NewClock(t time.Time) *Clock { return testenv.NewClock(t) }

// env is one test's store and clock.
type env struct {
	t     *testing.T
	ctx   context.Context
	store gatehouse.Store
	clock *Clock
}

// test is one behaviour every store must have.
type test struct {
	name string
	run  func(e *env)
}

// Run runs the conformance suite against stores from open.
func Run(t *testing.T, open Opener) {
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Every test has its own store and clock.
			t.Parallel()
			clock := NewClock(start)
			e := &env{t: t, ctx: t.Context(), clock: clock}
			e.store = open(t, clock.Now, retention)
			tc.run(e)
		})
	}
}

var tests = []test{
	// Create.
	{name: "CreateAssignsVersionAndTimestamps", run: testCreateAssignsVersionAndTimestamps},
	{name: "CreateWithExistingIDConflicts", run: testCreateWithExistingIDConflicts},
	{name: "SameIDInAnotherKindIsIndependent", run: testSameIDInAnotherKindIsIndependent},
	{name: "CreateMissingParentIsUnprocessable", run: testCreateMissingParentIsUnprocessable},
	{name: "CreateMissingRefIsUnprocessable", run: testCreateMissingRefIsUnprocessable},
	{name: "UniqueKeyClashConflictsAndChangesNothing", run: testUniqueKeyClashConflictsAndChangesNothing},
	{name: "UniqueKeysAreScopedByKind", run: testUniqueKeysAreScopedByKind},
	{name: "FailedWriteChangesNothing", run: testFailedWriteChangesNothing},

	// Get and Lookup.
	{name: "GetRoundTripsEveryField", run: testGetRoundTripsEveryField},
	{name: "GetReturnsACopy", run: testGetReturnsACopy},
	{name: "RepeatsAreHeldOnceAndAnEmptySecretIsNone", run: testRepeatsAreHeldOnceAndAnEmptySecretIsNone},
	{name: "GetNeverCreatedIsNotFound", run: testGetNeverCreatedIsNotFound},
	{name: "GetDeletedIDIsGoneWithinRetention", run: testGetDeletedIDIsGoneWithinRetention},
	{name: "GetDeletedIDIsNotFoundAfterRetention", run: testGetDeletedIDIsNotFoundAfterRetention},
	{name: "RecreateDeletedIDClearsTombstone", run: testRecreateDeletedIDClearsTombstone},
	{name: "LookupByUniqueKey", run: testLookupByUniqueKey},

	// Update.
	{name: "UpdateReplacesFieldsAndKeepsCreatedAt", run: testUpdateReplacesFieldsAndKeepsCreatedAt},
	{name: "UpdateWithStaleVersionFailsPrecondition", run: testUpdateWithStaleVersionFailsPrecondition},
	{name: "UpdateMissingIsNotFoundOrGone", run: testUpdateMissingIsNotFoundOrGone},
	{name: "UpdateReplacesUniqueKeysAndRefs", run: testUpdateReplacesUniqueKeysAndRefs},
	{name: "UpdateKeepingItsOwnKeysSucceeds", run: testUpdateKeepingItsOwnKeysSucceeds},
	{name: "UpdateChangingOnlyRefsOrOnlyKeys", run: testUpdateChangingOnlyRefsOrOnlyKeys},
	{name: "UpdateUniqueKeyClashConflictsAndChangesNothing", run: testUpdateUniqueKeyClashConflictsAndChangesNothing},
	{name: "UpdateMissingRefIsUnprocessableAndChangesNothing", run: testUpdateMissingRefIsUnprocessableAndChangesNothing},

	// Versions.
	{name: "VersionsIncreaseAcrossKinds", run: testVersionsIncreaseAcrossKinds},
	{name: "VersionsNeverRepeatAcrossRecreate", run: testVersionsNeverRepeatAcrossRecreate},

	// Delete.
	{name: "DeleteWithStaleVersionFailsPrecondition", run: testDeleteWithStaleVersionFailsPrecondition},
	{name: "DeleteWithZeroVersionIsUnconditional", run: testDeleteWithZeroVersionIsUnconditional},
	{name: "DeleteMissingIsNotFoundOrGone", run: testDeleteMissingIsNotFoundOrGone},
	{name: "DeleteReferencedRecordConflicts", run: testDeleteReferencedRecordConflicts},
	{name: "DeleteReleasesKeysAndRefs", run: testDeleteReleasesKeysAndRefs},
	{name: "DeleteCascadesToChildren", run: testDeleteCascadesToChildren},
	{name: "DeleteCascadeBlockedByUseOfChildConflicts", run: testDeleteCascadeBlockedByUseOfChildConflicts},
	{name: "DeleteIgnoresUsesFromWithinTheCascade", run: testDeleteIgnoresUsesFromWithinTheCascade},

	// List and Count.
	{name: "ListPagesInCreationOrder", run: testListPagesInCreationOrder},
	{name: "ListLastFullPageHasNoNext", run: testListLastFullPageHasNoNext},
	{name: "ListEmptyKindIsEmpty", run: testListEmptyKindIsEmpty},
	{name: "ListSkipsDeletedAndKeepsCursorsValid", run: testListSkipsDeletedAndKeepsCursorsValid},
	{name: "ListFiltersByNameParentAndRef", run: testListFiltersByNameParentAndRef},
	{name: "ListReturnsEveryField", run: testListReturnsEveryField},
	{name: "ListCapsLimit", run: testListCapsLimit},
	{name: "CountCountsOneKind", run: testCountCountsOneKind},
	{name: "SnapshotHoldsEveryRecordOfEachKindInOrder", run: testSnapshotHoldsEveryRecordOfEachKindInOrder},
	{name: "SnapshotNeverSeesHalfAWrite", run: testSnapshotNeverSeesHalfAWrite},
	{name: "Ping", run: testPing},

	// Apply and DraftTag (apply.go).
	{name: "ApplyFailingChangeAbortsTheWholeBatch", run: testApplyFailingChangeAbortsTheWholeBatch},
	{name: "ApplyMakesEveryChangeInOrder", run: testApplyMakesEveryChangeInOrder},
	{name: "ApplyWithTheCurrentDraftTagApplies", run: testApplyWithTheCurrentDraftTagApplies},
	{name: "ApplyWithAStaleDraftTagFailsAndWritesNothing", run: testApplyWithAStaleDraftTagFailsAndWritesNothing},
	{name: "ApplyOfAnEmptyBatchSucceeds", run: testApplyOfAnEmptyBatchSucceeds},
	{name: "TryFailsExactlyAsApplyWouldAndWritesNothing", run: testTryFailsExactlyAsApplyWouldAndWritesNothing},
	{name: "TryOfABatchThatWouldSucceedWritesNothing", run: testTryOfABatchThatWouldSucceedWritesNothing},
	{name: "DraftTagChangesWithTheDraftAndNothingElse", run: testDraftTagChangesWithTheDraftAndNothingElse},
	{name: "DraftTagIsTheTagOfASnapshotOfTheDraft", run: testDraftTagIsTheTagOfASnapshotOfTheDraft},

	// The deployment model (deployments.go).
	{name: "DeploymentsRecordTheRevisionTheyReplaced", run: testDeploymentsRecordTheRevisionTheyReplaced},

	// Concurrency.
	{name: "ConcurrentUpdatesFromSameVersionExactlyOneWins", run: testConcurrentUpdatesFromSameVersionExactlyOneWins},
	{name: "ConcurrentCreatesAllSurvive", run: testConcurrentCreatesAllSurvive},
	{name: "ConcurrentCreatesOfOneIDExactlyOneWins", run: testConcurrentCreatesOfOneIDExactlyOneWins},
	{name: "ConcurrentClaimsOfOneKeyExactlyOneWins", run: testConcurrentClaimsOfOneKeyExactlyOneWins},
	{name: "ConcurrentAppliesFromOneDraftTagExactlyOneWins", run: testConcurrentAppliesFromOneDraftTagExactlyOneWins},
}

// --- helpers ---

// rec returns a minimal record of kind with id and a JSON body.
func rec(kind gatehouse.Kind, id string) *gatehouse.Record {
	return &gatehouse.Record{Kind: kind, ID: id, Body: []byte(`{"id":"` + id + `"}`)}
}

func ref(kind gatehouse.Kind, id string) gatehouse.Ref { return gatehouse.Ref{Kind: kind, ID: id} }

func (e *env) create(r *gatehouse.Record) *gatehouse.Record {
	e.t.Helper()
	if err := e.store.Create(e.ctx, r); err != nil {
		e.t.Fatalf("Create(%s/%s): got %v; want success", r.Kind, r.ID, err)
	}
	return r
}

func (e *env) get(kind gatehouse.Kind, id string) *gatehouse.Record {
	e.t.Helper()
	r, err := e.store.Get(e.ctx, kind, id)
	if err != nil {
		e.t.Fatalf("Get(%s/%s): got %v; want success", kind, id, err)
	}
	return r
}

func (e *env) update(r *gatehouse.Record, ifVersion int64) *gatehouse.Record {
	e.t.Helper()
	if err := e.store.Update(e.ctx, r, ifVersion); err != nil {
		e.t.Fatalf("Update(%s/%s, %d): got %v; want success", r.Kind, r.ID, ifVersion, err)
	}
	return r
}

func (e *env) delete(kind gatehouse.Kind, id string) {
	e.t.Helper()
	if err := e.store.Delete(e.ctx, kind, id, 0); err != nil {
		e.t.Fatalf("Delete(%s/%s): got %v; want success", kind, id, err)
	}
}

func (e *env) count(kind gatehouse.Kind) int {
	e.t.Helper()
	n, err := e.store.Count(e.ctx, kind)
	if err != nil {
		e.t.Fatalf("Count(%s): got %v; want success", kind, err)
	}
	return n
}

func (e *env) list(kind gatehouse.Kind, opts gatehouse.ListOptions) *gatehouse.Page {
	e.t.Helper()
	p, err := e.store.List(e.ctx, kind, opts)
	if err != nil {
		e.t.Fatalf("List(%s, %+v): got %v; want success", kind, opts, err)
	}
	return p
}

// wantCode fails unless err is an error of code. what describes the call.
func (e *env) wantCode(what string, err error, code gatehouse.Code) {
	e.t.Helper()
	if err == nil {
		e.t.Fatalf("%s: got success; want %s", what, code)
	}
	if got := gatehouse.ErrorCode(err); got != code {
		e.t.Fatalf("%s: got %s (%v); want %s", what, got, err, code)
	}
}

// wantMessage fails unless err's client-safe message contains each of parts.
func (e *env) wantMessage(what string, err error, parts ...string) {
	e.t.Helper()
	msg := gatehouse.ErrorMessage(err)
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			e.t.Errorf("%s: got message %q; want it to contain %q", what, msg, p)
		}
	}
}

func (e *env) wantGetCode(kind gatehouse.Kind, id string, code gatehouse.Code) {
	e.t.Helper()
	_, err := e.store.Get(e.ctx, kind, id)
	e.wantCode(fmt.Sprintf("Get(%s/%s)", kind, id), err, code)
}

func (e *env) wantLookup(kind gatehouse.Kind, key, wantID string) {
	e.t.Helper()
	r, err := e.store.Lookup(e.ctx, kind, key)
	if wantID == "" {
		e.wantCode(fmt.Sprintf("Lookup(%s, %q)", kind, key), err, gatehouse.ENOTFOUND)
		return
	}
	if err != nil {
		e.t.Fatalf("Lookup(%s, %q): got %v; want %s", kind, key, err, wantID)
	}
	if r.ID != wantID {
		e.t.Fatalf("Lookup(%s, %q): got %s; want %s", kind, key, r.ID, wantID)
	}
}

func (e *env) wantCount(kind gatehouse.Kind, want int) {
	e.t.Helper()
	if got := e.count(kind); got != want {
		e.t.Fatalf("Count(%s): got %d; want %d", kind, got, want)
	}
}

// wantEqual fails unless got is want field by field. Times compare with
// Equal and must be in UTC.
func (e *env) wantEqual(what string, got, want *gatehouse.Record) {
	e.t.Helper()
	if got.Kind != want.Kind || got.ID != want.ID {
		e.t.Errorf("%s: got %s/%s; want %s/%s", what, got.Kind, got.ID, want.Kind, want.ID)
	}
	if got.Version != want.Version {
		e.t.Errorf("%s: got Version %d; want %d", what, got.Version, want.Version)
	}
	for _, tt := range []struct {
		field     string
		got, want time.Time
	}{{"CreatedAt", got.CreatedAt, want.CreatedAt}, {"UpdatedAt", got.UpdatedAt, want.UpdatedAt}} {
		if !tt.got.Equal(tt.want) {
			e.t.Errorf("%s: got %s %v; want %v", what, tt.field, tt.got, tt.want)
		}
		if tt.got.Location() != time.UTC {
			e.t.Errorf("%s: got %s in %v; want UTC", what, tt.field, tt.got.Location())
		}
	}
	if got.Name != want.Name {
		e.t.Errorf("%s: got Name %q; want %q", what, got.Name, want.Name)
	}
	if !reflect.DeepEqual(got.Parent, want.Parent) {
		e.t.Errorf("%s: got Parent %v; want %v", what, got.Parent, want.Parent)
	}
	if len(got.Refs) != 0 || len(want.Refs) != 0 {
		if !reflect.DeepEqual(got.Refs, want.Refs) {
			e.t.Errorf("%s: got Refs %v; want %v", what, got.Refs, want.Refs)
		}
	}
	if len(got.Unique) != 0 || len(want.Unique) != 0 {
		if !reflect.DeepEqual(got.Unique, want.Unique) {
			e.t.Errorf("%s: got Unique %q; want %q", what, got.Unique, want.Unique)
		}
	}
	if !bytes.Equal(got.Secret, want.Secret) {
		e.t.Errorf("%s: got Secret %x; want %x", what, got.Secret, want.Secret)
	}
	if !bytes.Equal(got.Body, want.Body) {
		e.t.Errorf("%s: got Body %q; want %q", what, got.Body, want.Body)
	}
}

func ids(recs []*gatehouse.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

func clone(r *gatehouse.Record) *gatehouse.Record {
	c := *r
	if r.Parent != nil {
		p := *r.Parent
		c.Parent = &p
	}
	c.Refs = append([]gatehouse.Ref(nil), r.Refs...)
	c.Unique = append([]string(nil), r.Unique...)
	c.Secret = bytes.Clone(r.Secret)
	c.Body = bytes.Clone(r.Body)
	return &c
}

// --- Create ---

func testCreateAssignsVersionAndTimestamps(e *env) {
	r := e.create(rec(gatehouse.KindService, "s1"))
	if r.Version <= 0 {
		e.t.Errorf("Version: got %d; want > 0", r.Version)
	}
	want := start.UTC().Truncate(time.Microsecond)
	if !r.CreatedAt.Equal(want) || r.CreatedAt.Location() != time.UTC {
		e.t.Errorf("CreatedAt: got %v; want %v", r.CreatedAt, want)
	}
	if !r.UpdatedAt.Equal(r.CreatedAt) {
		e.t.Errorf("UpdatedAt: got %v; want %v (CreatedAt)", r.UpdatedAt, r.CreatedAt)
	}
	e.wantEqual("Get after Create", e.get(gatehouse.KindService, "s1"), r)
}

func testCreateWithExistingIDConflicts(e *env) {
	first := e.create(rec(gatehouse.KindService, "s1"))
	dup := rec(gatehouse.KindService, "s1")
	dup.Name = "other"
	err := e.store.Create(e.ctx, dup)
	e.wantCode("Create of an existing id", err, gatehouse.ECONFLICT)
	e.wantMessage("Create of an existing id", err, "s1")
	e.wantEqual("Get after conflicting Create", e.get(gatehouse.KindService, "s1"), first)
	e.wantCount(gatehouse.KindService, 1)
}

func testSameIDInAnotherKindIsIndependent(e *env) {
	e.create(rec(gatehouse.KindService, "x"))
	c := e.create(rec(gatehouse.KindConsumer, "x"))
	e.delete(gatehouse.KindService, "x")
	e.wantGetCode(gatehouse.KindService, "x", gatehouse.EGONE)
	e.wantEqual("Get of the other kind", e.get(gatehouse.KindConsumer, "x"), c)
}

func testCreateMissingParentIsUnprocessable(e *env) {
	r := rec(gatehouse.KindCredential, "k1")
	r.Parent = &gatehouse.Ref{Kind: gatehouse.KindConsumer, ID: "nobody"}
	err := e.store.Create(e.ctx, r)
	e.wantCode("Create with a missing parent", err, gatehouse.EUNPROCESSABLE)
	e.wantMessage("Create with a missing parent", err, "nobody")
	e.wantGetCode(gatehouse.KindCredential, "k1", gatehouse.ENOTFOUND)

	// A parent of the right id but another kind is still missing.
	e.create(rec(gatehouse.KindService, "nobody"))
	err = e.store.Create(e.ctx, r)
	e.wantCode("Create with a parent of the wrong kind", err, gatehouse.EUNPROCESSABLE)
}

func testCreateMissingRefIsUnprocessable(e *env) {
	e.create(rec(gatehouse.KindService, "s1"))
	r := rec(gatehouse.KindRoute, "r1")
	r.Refs = []gatehouse.Ref{ref(gatehouse.KindService, "s1"), ref(gatehouse.KindService, "s2")}
	err := e.store.Create(e.ctx, r)
	e.wantCode("Create with a missing ref", err, gatehouse.EUNPROCESSABLE)
	e.wantMessage("Create with a missing ref", err, "s2")
	e.wantGetCode(gatehouse.KindRoute, "r1", gatehouse.ENOTFOUND)
}

func testUniqueKeyClashConflictsAndChangesNothing(e *env) {
	a := rec(gatehouse.KindService, "a")
	a.Unique = []string{"name:foo"}
	e.create(a)

	b := rec(gatehouse.KindService, "b")
	b.Unique = []string{"name:bar", "name:foo"}
	err := e.store.Create(e.ctx, b)
	e.wantCode("Create with a taken key", err, gatehouse.ECONFLICT)
	e.wantMessage("Create with a taken key", err, `"foo"`)

	e.wantGetCode(gatehouse.KindService, "b", gatehouse.ENOTFOUND)
	e.wantLookup(gatehouse.KindService, "name:foo", "a")
	e.wantLookup(gatehouse.KindService, "name:bar", "") // b's other key was not kept
	e.wantCount(gatehouse.KindService, 1)
}

func testUniqueKeysAreScopedByKind(e *env) {
	s := rec(gatehouse.KindService, "s")
	s.Unique = []string{"name:foo"}
	e.create(s)
	c := rec(gatehouse.KindConsumer, "c")
	c.Unique = []string{"name:foo"}
	e.create(c)
	e.wantLookup(gatehouse.KindService, "name:foo", "s")
	e.wantLookup(gatehouse.KindConsumer, "name:foo", "c")
}

func testFailedWriteChangesNothing(e *env) {
	e.create(rec(gatehouse.KindService, "s1"))
	before := e.list(gatehouse.KindRoute, gatehouse.ListOptions{})

	r := rec(gatehouse.KindRoute, "r1")
	r.Name = "r1"
	r.Unique = []string{"match:/a"}
	r.Refs = []gatehouse.Ref{ref(gatehouse.KindService, "s1"), ref(gatehouse.KindService, "missing")}
	err := e.store.Create(e.ctx, r)
	e.wantCode("Create with a missing ref", err, gatehouse.EUNPROCESSABLE)
	if r.Version != 0 || !r.CreatedAt.IsZero() {
		e.t.Errorf("failed Create: got Version %d, CreatedAt %v on rec; want them untouched", r.Version, r.CreatedAt)
	}

	e.wantCount(gatehouse.KindRoute, 0)
	e.wantLookup(gatehouse.KindRoute, "match:/a", "")
	if after := e.list(gatehouse.KindRoute, gatehouse.ListOptions{}); len(after.Records) != len(before.Records) {
		e.t.Errorf("List after failed Create: got %d records; want %d", len(after.Records), len(before.Records))
	}
	// The failed write left no use of s1 behind.
	e.delete(gatehouse.KindService, "s1")
}

// --- Get and Lookup ---

func testGetRoundTripsEveryField(e *env) {
	e.create(rec(gatehouse.KindConsumer, "c1"))
	e.create(rec(gatehouse.KindPolicy, "p1"))
	e.create(rec(gatehouse.KindPolicy, "p2"))
	secret := []byte{0x00, 0xff, 0x10, 0x80, 'a', 0x00}
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"ascii", []byte(`{"a":1}`)},
		{"non-ascii", []byte(`{"name":"Zoë – ключ – 鍵 – 🔑","escaped":"\u00e9"}`)},
		{"empty-object", []byte(`{}`)},
		{"large", bytes.Repeat([]byte(`{"x":"yz"},`), 20000)},
	} {
		r := &gatehouse.Record{
			Kind:   gatehouse.KindCredential,
			ID:     "k-" + tc.name,
			Name:   "näme " + tc.name,
			Parent: &gatehouse.Ref{Kind: gatehouse.KindConsumer, ID: "c1"},
			Refs:   []gatehouse.Ref{ref(gatehouse.KindPolicy, "p2"), ref(gatehouse.KindPolicy, "p1")},
			Unique: []string{"key:" + tc.name, "alias:" + tc.name, "a:" + tc.name},
			Secret: secret,
			Body:   tc.body,
		}
		want := clone(r)
		e.create(r)
		want.Version, want.CreatedAt, want.UpdatedAt = r.Version, r.CreatedAt, r.UpdatedAt
		e.wantEqual("Get of "+tc.name, e.get(gatehouse.KindCredential, r.ID), want)
		e.clock.Advance(1500 * time.Nanosecond) // sub-microsecond part must not matter
	}

	plain := e.create(&gatehouse.Record{Kind: gatehouse.KindService, ID: "plain", Body: []byte(`{}`)})
	got := e.get(gatehouse.KindService, "plain")
	if got.Parent != nil || len(got.Refs) != 0 || len(got.Unique) != 0 || len(got.Secret) != 0 || got.Name != "" {
		e.t.Errorf("Get of a plain record: got Parent %v, Refs %v, Unique %v, Secret %x, Name %q; want all empty",
			got.Parent, got.Refs, got.Unique, got.Secret, got.Name)
	}
	e.wantEqual("Get of a plain record", got, plain)
}

func testGetReturnsACopy(e *env) {
	r := rec(gatehouse.KindService, "s1")
	r.Secret = []byte("hash")
	want := clone(e.create(r))
	r.Body[0], r.Secret[0] = 'X', 'X' // the caller's buffers are its own
	got := e.get(gatehouse.KindService, "s1")
	e.wantEqual("Get after the caller changed its record", got, want)
	got.Body[0] = 'Y'
	e.wantEqual("Get after the caller changed a fetched record", e.get(gatehouse.KindService, "s1"), want)
}

// testRepeatsAreHeldOnceAndAnEmptySecretIsNone: a record naming a key or
// a reference twice holds it once (it does not clash with itself), and an
// empty secret reads back as none, on create and on update alike.
func testRepeatsAreHeldOnceAndAnEmptySecretIsNone(e *env) {
	e.create(rec(gatehouse.KindPolicy, "p1"))
	e.create(rec(gatehouse.KindPolicy, "p2"))
	r := rec(gatehouse.KindService, "s1")
	r.Refs = []gatehouse.Ref{ref(gatehouse.KindPolicy, "p2"), ref(gatehouse.KindPolicy, "p1"), ref(gatehouse.KindPolicy, "p2")}
	r.Unique = []string{"name:a", "alias:a", "name:a"}
	r.Secret = []byte{}
	check := func(what string) {
		got := e.get(gatehouse.KindService, "s1")
		if want := []gatehouse.Ref{ref(gatehouse.KindPolicy, "p2"), ref(gatehouse.KindPolicy, "p1")}; !reflect.DeepEqual(got.Refs, want) {
			e.t.Errorf("%s: got Refs %v; want %v", what, got.Refs, want)
		}
		if want := []string{"name:a", "alias:a"}; !reflect.DeepEqual(got.Unique, want) {
			e.t.Errorf("%s: got Unique %q; want %q", what, got.Unique, want)
		}
		if got.Secret != nil {
			e.t.Errorf("%s: got Secret %#v; want nil", what, got.Secret)
		}
	}
	e.create(r)
	check("Get after Create")
	e.update(r, r.Version)
	check("Get after Update")
}

func testGetNeverCreatedIsNotFound(e *env) {
	e.wantGetCode(gatehouse.KindService, "nope", gatehouse.ENOTFOUND)
}

func testGetDeletedIDIsGoneWithinRetention(e *env) {
	e.create(rec(gatehouse.KindService, "s1"))
	e.delete(gatehouse.KindService, "s1")
	e.wantGetCode(gatehouse.KindService, "s1", gatehouse.EGONE)
	e.clock.Advance(retention - time.Second)
	e.wantGetCode(gatehouse.KindService, "s1", gatehouse.EGONE)
}

func testGetDeletedIDIsNotFoundAfterRetention(e *env) {
	e.create(rec(gatehouse.KindService, "s1"))
	e.create(rec(gatehouse.KindService, "s2"))
	e.delete(gatehouse.KindService, "s1")
	e.clock.Advance(retention + time.Second)
	e.wantGetCode(gatehouse.KindService, "s1", gatehouse.ENOTFOUND)

	// Still so after another delete, which may purge old tombstones, and
	// the new deletion is gone, not lost in the purge.
	e.delete(gatehouse.KindService, "s2")
	e.wantGetCode(gatehouse.KindService, "s1", gatehouse.ENOTFOUND)
	e.wantGetCode(gatehouse.KindService, "s2", gatehouse.EGONE)
}

func testRecreateDeletedIDClearsTombstone(e *env) {
	e.create(rec(gatehouse.KindService, "s1"))
	e.delete(gatehouse.KindService, "s1")
	again := e.create(rec(gatehouse.KindService, "s1"))
	e.wantEqual("Get of the re-created id", e.get(gatehouse.KindService, "s1"), again)
	if !again.CreatedAt.Equal(start.UTC().Truncate(time.Microsecond)) {
		e.t.Errorf("re-created CreatedAt: got %v; want the current time", again.CreatedAt)
	}

	// Deleting the new incarnation makes the id gone again; once that
	// passes, it is not found, with no older tombstone lingering.
	e.delete(gatehouse.KindService, "s1")
	e.wantGetCode(gatehouse.KindService, "s1", gatehouse.EGONE)
	e.clock.Advance(retention + time.Second)
	e.wantGetCode(gatehouse.KindService, "s1", gatehouse.ENOTFOUND)
}

func testLookupByUniqueKey(e *env) {
	a := rec(gatehouse.KindRoute, "a")
	a.Unique = []string{"name:a", "match:GET /a"}
	e.create(a)
	b := rec(gatehouse.KindRoute, "b")
	b.Unique = []string{"name:b"}
	e.create(b)

	for _, tc := range []struct {
		kind gatehouse.Kind
		key  string
		want string // "" for ENOTFOUND
	}{
		{gatehouse.KindRoute, "name:a", "a"},
		{gatehouse.KindRoute, "match:GET /a", "a"},
		{gatehouse.KindRoute, "name:b", "b"},
		{gatehouse.KindRoute, "name:c", ""},
		{gatehouse.KindRoute, "NAME:A", ""}, // keys are opaque and exact
		{gatehouse.KindService, "name:a", ""},
	} {
		e.wantLookup(tc.kind, tc.key, tc.want)
	}
	got, err := e.store.Lookup(e.ctx, gatehouse.KindRoute, "match:GET /a")
	if err != nil {
		e.t.Fatalf("Lookup: got %v; want success", err)
	}
	e.wantEqual("Lookup", got, a)
}

// --- Update ---

func testUpdateReplacesFieldsAndKeepsCreatedAt(e *env) {
	e.create(rec(gatehouse.KindConsumer, "c1"))
	e.create(rec(gatehouse.KindConsumer, "c2"))
	r := rec(gatehouse.KindCredential, "k1")
	r.Name = "old"
	r.Parent = &gatehouse.Ref{Kind: gatehouse.KindConsumer, ID: "c1"}
	r.Secret = []byte("old-hash")
	created := e.create(r)
	createdAt, v1 := created.CreatedAt, created.Version

	e.clock.Advance(90 * time.Second)
	u := &gatehouse.Record{
		Kind:   gatehouse.KindCredential,
		ID:     "k1",
		Name:   "new",
		Parent: &gatehouse.Ref{Kind: gatehouse.KindConsumer, ID: "c2"},
		Body:   []byte(`{"new":"ü"}`),
	}
	e.update(u, v1)
	if u.Version <= v1 {
		e.t.Errorf("Version after Update: got %d; want > %d", u.Version, v1)
	}
	if !u.CreatedAt.Equal(createdAt) {
		e.t.Errorf("CreatedAt after Update: got %v; want %v", u.CreatedAt, createdAt)
	}
	if want := createdAt.Add(90 * time.Second); !u.UpdatedAt.Equal(want) {
		e.t.Errorf("UpdatedAt after Update: got %v; want %v", u.UpdatedAt, want)
	}
	e.wantEqual("Get after Update", e.get(gatehouse.KindCredential, "k1"), u)

	// The parent moved: deleting the old one leaves k1, the new one takes it.
	e.delete(gatehouse.KindConsumer, "c1")
	e.get(gatehouse.KindCredential, "k1")
	e.delete(gatehouse.KindConsumer, "c2")
	e.wantGetCode(gatehouse.KindCredential, "k1", gatehouse.EGONE)
}

func testUpdateWithStaleVersionFailsPrecondition(e *env) {
	r := e.create(rec(gatehouse.KindService, "s1"))
	v1 := r.Version
	e.update(rec(gatehouse.KindService, "s1"), v1)
	current := e.get(gatehouse.KindService, "s1")

	for _, ifVersion := range []int64{v1, 0, current.Version + 1000} {
		u := rec(gatehouse.KindService, "s1")
		u.Name = "lost"
		err := e.store.Update(e.ctx, u, ifVersion)
		e.wantCode(fmt.Sprintf("Update from version %d (current %d)", ifVersion, current.Version), err, gatehouse.EPRECONDITION)
	}
	e.wantEqual("Get after stale Updates", e.get(gatehouse.KindService, "s1"), current)
}

func testUpdateMissingIsNotFoundOrGone(e *env) {
	err := e.store.Update(e.ctx, rec(gatehouse.KindService, "nope"), 1)
	e.wantCode("Update of a never-created id", err, gatehouse.ENOTFOUND)

	r := e.create(rec(gatehouse.KindService, "s1"))
	e.delete(gatehouse.KindService, "s1")
	err = e.store.Update(e.ctx, rec(gatehouse.KindService, "s1"), r.Version)
	e.wantCode("Update of a deleted id", err, gatehouse.EGONE)
	e.wantGetCode(gatehouse.KindService, "s1", gatehouse.EGONE)
}

func testUpdateReplacesUniqueKeysAndRefs(e *env) {
	e.create(rec(gatehouse.KindService, "s1"))
	e.create(rec(gatehouse.KindService, "s2"))
	r := rec(gatehouse.KindRoute, "r1")
	r.Unique = []string{"name:old", "match:/same"}
	r.Refs = []gatehouse.Ref{ref(gatehouse.KindService, "s1")}
	e.create(r)

	u := rec(gatehouse.KindRoute, "r1")
	u.Unique = []string{"match:/same", "name:new"}
	u.Refs = []gatehouse.Ref{ref(gatehouse.KindService, "s2")}
	e.update(u, r.Version)
	e.wantEqual("Get after Update", e.get(gatehouse.KindRoute, "r1"), u)

	e.wantLookup(gatehouse.KindRoute, "name:old", "")
	e.wantLookup(gatehouse.KindRoute, "name:new", "r1")
	e.wantLookup(gatehouse.KindRoute, "match:/same", "r1")

	// The released key is free for others.
	other := rec(gatehouse.KindRoute, "r2")
	other.Unique = []string{"name:old"}
	e.create(other)

	// s1 is no longer used; s2 now is.
	err := e.store.Delete(e.ctx, gatehouse.KindService, "s2", 0)
	e.wantCode("Delete of the newly referenced service", err, gatehouse.ECONFLICT)
	e.delete(gatehouse.KindService, "s1")

	// An update with no refs or keys drops them all.
	bare := rec(gatehouse.KindRoute, "r1")
	e.update(bare, u.Version)
	e.wantLookup(gatehouse.KindRoute, "name:new", "")
	e.delete(gatehouse.KindService, "s2")
	if got := e.get(gatehouse.KindRoute, "r1"); len(got.Refs) != 0 || len(got.Unique) != 0 {
		e.t.Errorf("Get after Update without refs and keys: got Refs %v, Unique %q; want none", got.Refs, got.Unique)
	}
}

func testUpdateKeepingItsOwnKeysSucceeds(e *env) {
	r := rec(gatehouse.KindService, "s1")
	r.Unique = []string{"name:s1"}
	e.create(r)
	u := rec(gatehouse.KindService, "s1")
	u.Unique = []string{"name:s1"}
	u.Name = "renamed-but-same-key"
	e.update(u, r.Version)
	e.wantLookup(gatehouse.KindService, "name:s1", "s1")
}

// testUpdateChangingOnlyRefsOrOnlyKeys changes one of a record's refs and
// keys at a time, and their order: a store that skips rewriting what an
// update keeps must still notice each difference.
func testUpdateChangingOnlyRefsOrOnlyKeys(e *env) {
	for _, id := range []string{"s1", "s2", "s3"} {
		e.create(rec(gatehouse.KindService, id))
	}
	cur := rec(gatehouse.KindRoute, "r1")
	cur.Refs = []gatehouse.Ref{ref(gatehouse.KindService, "s1"), ref(gatehouse.KindService, "s2")}
	cur.Unique = []string{"name:a", "match:/a"}
	e.create(cur)
	for _, step := range []struct {
		desc   string
		refs   []string
		unique []string
	}{
		{"refs changed, keys kept", []string{"s2", "s3"}, []string{"name:a", "match:/a"}},
		{"keys changed, refs kept", []string{"s2", "s3"}, []string{"name:b", "match:/a"}},
		{"refs reordered", []string{"s3", "s2"}, []string{"name:b", "match:/a"}},
		{"keys reordered", []string{"s3", "s2"}, []string{"match:/a", "name:b"}},
		{"body alone changed", []string{"s3", "s2"}, []string{"match:/a", "name:b"}},
	} {
		u := rec(gatehouse.KindRoute, "r1")
		u.Body = []byte(`{"step":"` + step.desc + `"}`)
		for _, id := range step.refs {
			u.Refs = append(u.Refs, ref(gatehouse.KindService, id))
		}
		u.Unique = step.unique
		e.update(u, cur.Version)
		e.wantEqual("Get after Update with "+step.desc, e.get(gatehouse.KindRoute, "r1"), u)
		cur = u
	}
	e.wantLookup(gatehouse.KindRoute, "name:a", "")
	e.wantLookup(gatehouse.KindRoute, "name:b", "r1")
	e.delete(gatehouse.KindService, "s1") // no longer used
	err := e.store.Delete(e.ctx, gatehouse.KindService, "s3", 0)
	e.wantCode("Delete of a service the route still uses", err, gatehouse.ECONFLICT)
}

func testUpdateUniqueKeyClashConflictsAndChangesNothing(e *env) {
	a := rec(gatehouse.KindService, "a")
	a.Unique = []string{"name:a"}
	e.create(a)
	b := rec(gatehouse.KindService, "b")
	b.Unique = []string{"name:b"}
	e.create(b)
	before := e.get(gatehouse.KindService, "b")

	u := rec(gatehouse.KindService, "b")
	u.Name = "changed"
	u.Unique = []string{"name:b2", "name:a"}
	err := e.store.Update(e.ctx, u, b.Version)
	e.wantCode("Update taking another's key", err, gatehouse.ECONFLICT)
	e.wantMessage("Update taking another's key", err, `"a"`)

	e.wantEqual("Get after failed Update", e.get(gatehouse.KindService, "b"), before)
	e.wantLookup(gatehouse.KindService, "name:a", "a")
	e.wantLookup(gatehouse.KindService, "name:b", "b")
	e.wantLookup(gatehouse.KindService, "name:b2", "")
}

func testUpdateMissingRefIsUnprocessableAndChangesNothing(e *env) {
	e.create(rec(gatehouse.KindService, "s1"))
	e.create(rec(gatehouse.KindConsumer, "c1"))
	r := rec(gatehouse.KindRoute, "r1")
	r.Refs = []gatehouse.Ref{ref(gatehouse.KindService, "s1")}
	e.create(r)
	before := e.get(gatehouse.KindRoute, "r1")

	for _, tc := range []struct {
		name   string
		change func(u *gatehouse.Record)
	}{
		{"missing ref", func(u *gatehouse.Record) { u.Refs = []gatehouse.Ref{ref(gatehouse.KindService, "s9")} }},
		{"missing parent", func(u *gatehouse.Record) { u.Parent = &gatehouse.Ref{Kind: gatehouse.KindConsumer, ID: "c9"} }},
	} {
		u := rec(gatehouse.KindRoute, "r1")
		u.Name = "changed"
		tc.change(u)
		err := e.store.Update(e.ctx, u, before.Version)
		e.wantCode("Update with a "+tc.name, err, gatehouse.EUNPROCESSABLE)
		e.wantEqual("Get after Update with a "+tc.name, e.get(gatehouse.KindRoute, "r1"), before)
	}
	err := e.store.Delete(e.ctx, gatehouse.KindService, "s1", 0)
	e.wantCode("Delete of the still-referenced service", err, gatehouse.ECONFLICT)
}

// --- Versions ---

func testVersionsIncreaseAcrossKinds(e *env) {
	var last int64
	check := func(what string, v int64) {
		e.t.Helper()
		if v <= last {
			e.t.Fatalf("%s: got Version %d; want > %d", what, v, last)
		}
		last = v
	}
	s := e.create(rec(gatehouse.KindService, "s"))
	check("Create service", s.Version)
	c := e.create(rec(gatehouse.KindConsumer, "c"))
	check("Create consumer", c.Version)
	e.update(s, s.Version)
	check("Update service", s.Version)
	p := e.create(rec(gatehouse.KindPolicy, "p"))
	check("Create policy", p.Version)
	e.update(c, c.Version)
	check("Update consumer", c.Version)
}

func testVersionsNeverRepeatAcrossRecreate(e *env) {
	seen := map[int64]string{}
	note := func(what string, v int64) {
		e.t.Helper()
		if prev, ok := seen[v]; ok {
			e.t.Fatalf("%s: got Version %d; want a fresh one (already used by %s)", what, v, prev)
		}
		seen[v] = what
	}
	for i := range 3 {
		r := e.create(rec(gatehouse.KindService, "s1"))
		note(fmt.Sprintf("Create #%d", i), r.Version)
		e.update(r, r.Version)
		note(fmt.Sprintf("Update #%d", i), r.Version)
		e.delete(gatehouse.KindService, "s1")
	}
	// The highest version belonged to a record that is gone; the next
	// write must still not reuse it.
	r := e.create(rec(gatehouse.KindService, "s2"))
	note("Create after deletes", r.Version)
}

// --- Delete ---

func testDeleteWithStaleVersionFailsPrecondition(e *env) {
	r := e.create(rec(gatehouse.KindService, "s1"))
	old := r.Version
	e.update(r, r.Version)
	err := e.store.Delete(e.ctx, gatehouse.KindService, "s1", old)
	e.wantCode("Delete at a stale version", err, gatehouse.EPRECONDITION)
	e.get(gatehouse.KindService, "s1")
	if err := e.store.Delete(e.ctx, gatehouse.KindService, "s1", r.Version); err != nil {
		e.t.Fatalf("Delete at the current version: got %v; want success", err)
	}
	e.wantGetCode(gatehouse.KindService, "s1", gatehouse.EGONE)
}

func testDeleteWithZeroVersionIsUnconditional(e *env) {
	r := e.create(rec(gatehouse.KindService, "s1"))
	e.update(r, r.Version)
	e.delete(gatehouse.KindService, "s1")
	e.wantCount(gatehouse.KindService, 0)
}

func testDeleteMissingIsNotFoundOrGone(e *env) {
	err := e.store.Delete(e.ctx, gatehouse.KindService, "nope", 0)
	e.wantCode("Delete of a never-created id", err, gatehouse.ENOTFOUND)
	e.create(rec(gatehouse.KindService, "s1"))
	e.delete(gatehouse.KindService, "s1")
	err = e.store.Delete(e.ctx, gatehouse.KindService, "s1", 0)
	e.wantCode("second Delete", err, gatehouse.EGONE)
	err = e.store.Delete(e.ctx, gatehouse.KindService, "s1", 7)
	e.wantCode("second Delete with a version", err, gatehouse.EGONE)
}

func testDeleteReferencedRecordConflicts(e *env) {
	s := e.create(rec(gatehouse.KindService, "s1"))
	r := rec(gatehouse.KindRoute, "r1")
	r.Refs = []gatehouse.Ref{ref(gatehouse.KindService, "s1")}
	e.create(r)

	err := e.store.Delete(e.ctx, gatehouse.KindService, "s1", 0)
	e.wantCode("Delete of a referenced service", err, gatehouse.ECONFLICT)
	e.wantMessage("Delete of a referenced service", err, "r1")
	e.wantEqual("Get after refused Delete", e.get(gatehouse.KindService, "s1"), s)

	e.delete(gatehouse.KindRoute, "r1")
	e.delete(gatehouse.KindService, "s1")
}

func testDeleteReleasesKeysAndRefs(e *env) {
	e.create(rec(gatehouse.KindService, "s1"))
	r := rec(gatehouse.KindRoute, "r1")
	r.Refs = []gatehouse.Ref{ref(gatehouse.KindService, "s1")}
	r.Unique = []string{"name:r"}
	e.create(r)
	e.delete(gatehouse.KindRoute, "r1")

	e.wantLookup(gatehouse.KindRoute, "name:r", "")
	again := rec(gatehouse.KindRoute, "r2")
	again.Unique = []string{"name:r"}
	e.create(again)
	e.delete(gatehouse.KindService, "s1") // no longer used
}

func testDeleteCascadesToChildren(e *env) {
	// consumer c1 ← credential k1 ← token t1 (grandchild); k2 is c2's.
	e.create(rec(gatehouse.KindConsumer, "c1"))
	e.create(rec(gatehouse.KindConsumer, "c2"))
	k1 := rec(gatehouse.KindCredential, "k1")
	k1.Parent = &gatehouse.Ref{Kind: gatehouse.KindConsumer, ID: "c1"}
	k1.Unique = []string{"hash:k1"}
	e.create(k1)
	t1 := rec(gatehouse.KindToken, "t1")
	t1.Parent = &gatehouse.Ref{Kind: gatehouse.KindCredential, ID: "k1"}
	t1.Unique = []string{"hash:t1"}
	e.create(t1)
	k2 := rec(gatehouse.KindCredential, "k2")
	k2.Parent = &gatehouse.Ref{Kind: gatehouse.KindConsumer, ID: "c2"}
	e.create(k2)
	e.create(rec(gatehouse.KindCredential, "orphan"))

	e.delete(gatehouse.KindConsumer, "c1")

	for _, tc := range []struct {
		kind gatehouse.Kind
		id   string
		want gatehouse.Code // "" for present
	}{
		{gatehouse.KindConsumer, "c1", gatehouse.EGONE},
		{gatehouse.KindCredential, "k1", gatehouse.EGONE},
		{gatehouse.KindToken, "t1", gatehouse.EGONE},
		{gatehouse.KindConsumer, "c2", ""},
		{gatehouse.KindCredential, "k2", ""},
		{gatehouse.KindCredential, "orphan", ""},
	} {
		if tc.want == "" {
			e.get(tc.kind, tc.id)
		} else {
			e.wantGetCode(tc.kind, tc.id, tc.want)
		}
	}
	e.wantLookup(gatehouse.KindCredential, "hash:k1", "")
	e.wantLookup(gatehouse.KindToken, "hash:t1", "")
	e.wantCount(gatehouse.KindCredential, 2)
	e.wantCount(gatehouse.KindToken, 0)
	if p := e.list(gatehouse.KindCredential, gatehouse.ListOptions{Filter: gatehouse.Filter{ParentID: "c1"}}); len(p.Records) != 0 {
		e.t.Errorf("List of c1's credentials: got %v; want none", ids(p.Records))
	}

	// The children's tombstones expire like any other.
	e.clock.Advance(retention + time.Second)
	e.wantGetCode(gatehouse.KindToken, "t1", gatehouse.ENOTFOUND)
}

func testDeleteCascadeBlockedByUseOfChildConflicts(e *env) {
	e.create(rec(gatehouse.KindConsumer, "c1"))
	k1 := rec(gatehouse.KindCredential, "k1")
	k1.Parent = &gatehouse.Ref{Kind: gatehouse.KindConsumer, ID: "c1"}
	k1.Unique = []string{"hash:k1"}
	e.create(k1)
	p := rec(gatehouse.KindPolicy, "p1")
	p.Refs = []gatehouse.Ref{ref(gatehouse.KindCredential, "k1")}
	e.create(p)

	err := e.store.Delete(e.ctx, gatehouse.KindConsumer, "c1", 0)
	e.wantCode("Delete of a consumer whose credential is used", err, gatehouse.ECONFLICT)
	e.wantMessage("Delete of a consumer whose credential is used", err, "k1", "p1")
	e.get(gatehouse.KindConsumer, "c1")
	e.wantEqual("Get of the child after refused Delete", e.get(gatehouse.KindCredential, "k1"), k1)
	e.wantLookup(gatehouse.KindCredential, "hash:k1", "k1")
}

func testDeleteIgnoresUsesFromWithinTheCascade(e *env) {
	// A token that is c1's child and also uses c1 and its sibling
	// credential does not stop c1 from being deleted: all go together.
	e.create(rec(gatehouse.KindConsumer, "c1"))
	k1 := rec(gatehouse.KindCredential, "k1")
	k1.Parent = &gatehouse.Ref{Kind: gatehouse.KindConsumer, ID: "c1"}
	e.create(k1)
	t1 := rec(gatehouse.KindToken, "t1")
	t1.Parent = &gatehouse.Ref{Kind: gatehouse.KindConsumer, ID: "c1"}
	t1.Refs = []gatehouse.Ref{ref(gatehouse.KindConsumer, "c1"), ref(gatehouse.KindCredential, "k1")}
	e.create(t1)

	e.delete(gatehouse.KindConsumer, "c1")
	e.wantGetCode(gatehouse.KindToken, "t1", gatehouse.EGONE)
	e.wantGetCode(gatehouse.KindCredential, "k1", gatehouse.EGONE)
}

// --- List and Count ---

func testListPagesInCreationOrder(e *env) {
	var want []string
	for _, id := range []string{"m", "c", "x", "a", "q", "b", "z"} {
		e.create(rec(gatehouse.KindService, id))
		want = append(want, id)
	}
	// Updates do not move records.
	first := e.get(gatehouse.KindService, "m")
	e.update(first, first.Version)
	e.create(rec(gatehouse.KindRoute, "other-kind"))

	var got []string
	var pages int
	opts := gatehouse.ListOptions{Limit: 3}
	for {
		p := e.list(gatehouse.KindService, opts)
		pages++
		if len(p.Records) > 3 {
			e.t.Fatalf("page %d: got %d records; want at most 3", pages, len(p.Records))
		}
		got = append(got, ids(p.Records)...)
		if p.Next == 0 {
			break
		}
		if pages > 10 {
			e.t.Fatalf("List does not terminate: got %v so far", got)
		}
		opts.After = p.Next
	}
	if !reflect.DeepEqual(got, want) {
		e.t.Errorf("List: got %v; want %v", got, want)
	}
	if pages != 3 {
		e.t.Errorf("List with limit 3 over 7 records: got %d pages; want 3", pages)
	}
}

func testListLastFullPageHasNoNext(e *env) {
	for i := range 4 {
		e.create(rec(gatehouse.KindService, fmt.Sprintf("s%d", i)))
	}
	p := e.list(gatehouse.KindService, gatehouse.ListOptions{Limit: 2})
	if p.Next == 0 {
		e.t.Fatalf("first of two full pages: got Next 0; want a cursor")
	}
	p = e.list(gatehouse.KindService, gatehouse.ListOptions{Limit: 2, After: p.Next})
	if got := ids(p.Records); !reflect.DeepEqual(got, []string{"s2", "s3"}) {
		e.t.Errorf("second page: got %v; want [s2 s3]", got)
	}
	if p.Next != 0 {
		e.t.Errorf("last page, exactly full: got Next %d; want 0", p.Next)
	}
	all := e.list(gatehouse.KindService, gatehouse.ListOptions{Limit: 4})
	if len(all.Records) != 4 || all.Next != 0 {
		e.t.Errorf("one exactly full page: got %d records, Next %d; want 4, 0", len(all.Records), all.Next)
	}
}

func testListEmptyKindIsEmpty(e *env) {
	e.create(rec(gatehouse.KindService, "s1"))
	p := e.list(gatehouse.KindRoute, gatehouse.ListOptions{})
	if len(p.Records) != 0 || p.Next != 0 {
		e.t.Errorf("List of an empty kind: got %v, Next %d; want none, 0", ids(p.Records), p.Next)
	}
}

func testListSkipsDeletedAndKeepsCursorsValid(e *env) {
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		e.create(rec(gatehouse.KindService, id))
	}
	p := e.list(gatehouse.KindService, gatehouse.ListOptions{Limit: 2})
	if got := ids(p.Records); !reflect.DeepEqual(got, []string{"a", "b"}) {
		e.t.Fatalf("first page: got %v; want [a b]", got)
	}
	// The record the cursor points at and the next one go away; the
	// cursor still works.
	e.delete(gatehouse.KindService, "b")
	e.delete(gatehouse.KindService, "c")
	// Re-creating b puts it at the end: it is a new record.
	e.create(rec(gatehouse.KindService, "b"))
	p = e.list(gatehouse.KindService, gatehouse.ListOptions{Limit: 2, After: p.Next})
	if got := ids(p.Records); !reflect.DeepEqual(got, []string{"d", "e"}) {
		e.t.Errorf("page after deletes: got %v; want [d e]", got)
	}
	p = e.list(gatehouse.KindService, gatehouse.ListOptions{Limit: 2, After: p.Next})
	if got := ids(p.Records); !reflect.DeepEqual(got, []string{"b"}) || p.Next != 0 {
		e.t.Errorf("last page: got %v, Next %d; want [b], 0", got, p.Next)
	}
}

func testListFiltersByNameParentAndRef(e *env) {
	e.create(rec(gatehouse.KindService, "s1"))
	e.create(rec(gatehouse.KindService, "s2"))
	e.create(rec(gatehouse.KindConsumer, "c1"))
	e.create(rec(gatehouse.KindConsumer, "c2"))
	e.create(rec(gatehouse.KindPolicy, "p1"))

	// Tokens: name, parent consumer, refs.
	tokens := []struct {
		id, name, parent string
		refs             []gatehouse.Ref
	}{
		{"t1", "alpha", "c1", []gatehouse.Ref{ref(gatehouse.KindService, "s1")}},
		{"t2", "beta", "c1", []gatehouse.Ref{ref(gatehouse.KindService, "s2"), ref(gatehouse.KindPolicy, "p1")}},
		{"t3", "alpha", "c2", []gatehouse.Ref{ref(gatehouse.KindService, "s1"), ref(gatehouse.KindService, "s2")}},
		{"t4", "", "", nil},
		{"t5", "Alpha", "c2", []gatehouse.Ref{ref(gatehouse.KindPolicy, "p1")}},
	}
	for _, tk := range tokens {
		r := rec(gatehouse.KindToken, tk.id)
		r.Name = tk.name
		if tk.parent != "" {
			r.Parent = &gatehouse.Ref{Kind: gatehouse.KindConsumer, ID: tk.parent}
		}
		r.Refs = tk.refs
		e.create(r)
	}
	// A record of another kind matching every filter must not show up.
	decoy := rec(gatehouse.KindCredential, "decoy")
	decoy.Name = "alpha"
	decoy.Parent = &gatehouse.Ref{Kind: gatehouse.KindConsumer, ID: "c1"}
	decoy.Refs = []gatehouse.Ref{ref(gatehouse.KindService, "s1")}
	e.create(decoy)

	for _, tc := range []struct {
		name   string
		filter gatehouse.Filter
		want   []string
	}{
		{"none", gatehouse.Filter{}, []string{"t1", "t2", "t3", "t4", "t5"}},
		{"name", gatehouse.Filter{Name: "alpha"}, []string{"t1", "t3"}},
		{"name is exact", gatehouse.Filter{Name: "alph"}, nil},
		{"parent", gatehouse.Filter{ParentID: "c1"}, []string{"t1", "t2"}},
		{"ref", gatehouse.Filter{RefID: "s1"}, []string{"t1", "t3"}},
		{"ref of another kind", gatehouse.Filter{RefID: "p1"}, []string{"t2", "t5"}},
		{"ref to nothing", gatehouse.Filter{RefID: "s9"}, nil},
		{"ref of the kind", gatehouse.Filter{RefID: "p1", RefKind: gatehouse.KindPolicy}, []string{"t2", "t5"}},
		{"ref of another kind is not a match", gatehouse.Filter{RefID: "p1", RefKind: gatehouse.KindService}, nil},
		{"name and parent", gatehouse.Filter{Name: "alpha", ParentID: "c2"}, []string{"t3"}},
		{"parent and ref", gatehouse.Filter{ParentID: "c1", RefID: "s2"}, []string{"t2"}},
		{"all three", gatehouse.Filter{Name: "alpha", ParentID: "c1", RefID: "s1"}, []string{"t1"}},
		{"all three, no match", gatehouse.Filter{Name: "beta", ParentID: "c1", RefID: "s1"}, nil},
	} {
		got := ids(e.list(gatehouse.KindToken, gatehouse.ListOptions{Filter: tc.filter}).Records)
		if len(got) == 0 {
			got = nil
		}
		if !reflect.DeepEqual(got, tc.want) {
			e.t.Errorf("List filtered by %s (%+v): got %v; want %v", tc.name, tc.filter, got, tc.want)
		}
	}

	// Filters page too.
	p := e.list(gatehouse.KindToken, gatehouse.ListOptions{Filter: gatehouse.Filter{RefID: "s2"}, Limit: 1})
	if got := ids(p.Records); !reflect.DeepEqual(got, []string{"t2"}) || p.Next == 0 {
		e.t.Fatalf("first filtered page: got %v, Next %d; want [t2] and a cursor", got, p.Next)
	}
	p = e.list(gatehouse.KindToken, gatehouse.ListOptions{Filter: gatehouse.Filter{RefID: "s2"}, Limit: 1, After: p.Next})
	if got := ids(p.Records); !reflect.DeepEqual(got, []string{"t3"}) || p.Next != 0 {
		e.t.Errorf("second filtered page: got %v, Next %d; want [t3], 0", got, p.Next)
	}
}

func testListReturnsEveryField(e *env) {
	e.create(rec(gatehouse.KindConsumer, "c1"))
	e.create(rec(gatehouse.KindService, "s1"))
	var want []*gatehouse.Record
	for i := range 3 {
		r := rec(gatehouse.KindCredential, fmt.Sprintf("k%d", i))
		r.Name = fmt.Sprintf("名前%d", i)
		r.Parent = &gatehouse.Ref{Kind: gatehouse.KindConsumer, ID: "c1"}
		r.Refs = []gatehouse.Ref{ref(gatehouse.KindService, "s1"), ref(gatehouse.KindConsumer, "c1")}
		r.Unique = []string{fmt.Sprintf("z:%d", i), fmt.Sprintf("a:%d", i)}
		r.Secret = []byte{byte(i), 0, 0xfe}
		e.create(r)
		want = append(want, clone(r))
		e.clock.Advance(time.Millisecond)
	}
	p := e.list(gatehouse.KindCredential, gatehouse.ListOptions{})
	if len(p.Records) != len(want) {
		e.t.Fatalf("List: got %d records; want %d", len(p.Records), len(want))
	}
	for i, got := range p.Records {
		e.wantEqual("List record "+want[i].ID, got, want[i])
	}
}

func testListCapsLimit(e *env) {
	const n = gatehouse.MaxPageSize + 1
	for i := range n {
		r := &gatehouse.Record{Kind: gatehouse.KindService, ID: fmt.Sprintf("s%04d", i), Body: []byte(`{}`)}
		e.create(r)
	}
	for _, tc := range []struct {
		limit, want int
	}{
		{0, 100},
		{-1, 100},
		{7, 7},
		{gatehouse.MaxPageSize, gatehouse.MaxPageSize},
		{gatehouse.MaxPageSize + 1, gatehouse.MaxPageSize},
		{1 << 30, gatehouse.MaxPageSize},
	} {
		p := e.list(gatehouse.KindService, gatehouse.ListOptions{Limit: tc.limit})
		if len(p.Records) != tc.want {
			e.t.Errorf("List with Limit %d: got %d records; want %d", tc.limit, len(p.Records), tc.want)
		}
		if p.Next == 0 {
			e.t.Errorf("List with Limit %d of %d records: got Next 0; want a cursor", tc.limit, n)
		}
	}
	p := e.list(gatehouse.KindService, gatehouse.ListOptions{Limit: gatehouse.MaxPageSize * 2})
	p = e.list(gatehouse.KindService, gatehouse.ListOptions{Limit: gatehouse.MaxPageSize, After: p.Next})
	if got := ids(p.Records); len(got) != 1 || got[0] != fmt.Sprintf("s%04d", n-1) || p.Next != 0 {
		e.t.Errorf("page after the capped one: got %v, Next %d; want [s%04d], 0", got, p.Next, n-1)
	}
}

func testCountCountsOneKind(e *env) {
	e.wantCount(gatehouse.KindService, 0)
	for i := range 3 {
		e.create(rec(gatehouse.KindService, fmt.Sprintf("s%d", i)))
	}
	e.create(rec(gatehouse.KindRoute, "r1"))
	e.wantCount(gatehouse.KindService, 3)
	e.wantCount(gatehouse.KindRoute, 1)
	e.wantCount(gatehouse.KindPolicy, 0)
	e.delete(gatehouse.KindService, "s1")
	e.wantCount(gatehouse.KindService, 2)
}

func testPing(e *env) {
	if err := e.store.Ping(e.ctx); err != nil {
		e.t.Fatalf("Ping: got %v; want success", err)
	}
}

// --- Concurrency ---

// workers is how many goroutines the concurrency tests race.
const workers = 8

// race runs fn(i) for i in [0, n) at once and returns the errors.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var ready, done sync.WaitGroup
	ready.Add(n)
	gate := make(chan struct{})
	for i := range n {
		done.Go(func() {
			ready.Done()
			<-gate
			errs[i] = fn(i)
		})
	}
	ready.Wait()
	close(gate)
	done.Wait()
	return errs
}

func testConcurrentUpdatesFromSameVersionExactlyOneWins(e *env) {
	base := e.create(rec(gatehouse.KindService, "s1"))
	for round := range 3 {
		current := e.get(gatehouse.KindService, "s1")
		recs := make([]*gatehouse.Record, workers)
		errs := race(workers, func(i int) error {
			recs[i] = rec(gatehouse.KindService, "s1")
			recs[i].Name = fmt.Sprintf("writer-%d", i)
			recs[i].Unique = []string{fmt.Sprintf("round:%d:%d", round, i)}
			return e.store.Update(e.ctx, recs[i], current.Version)
		})
		winner := -1
		for i, err := range errs {
			switch code := gatehouse.ErrorCode(err); {
			case err == nil:
				if winner >= 0 {
					e.t.Fatalf("round %d: got writers %d and %d both succeeding from version %d; want exactly one", round, winner, i, current.Version)
				}
				winner = i
			case code != gatehouse.EPRECONDITION:
				e.t.Fatalf("round %d, writer %d: got %s (%v); want success or %s", round, i, code, err, gatehouse.EPRECONDITION)
			}
		}
		if winner < 0 {
			e.t.Fatalf("round %d: got no writer succeeding; want exactly one", round)
		}
		got := e.get(gatehouse.KindService, "s1")
		e.wantEqual(fmt.Sprintf("round %d: Get after the race", round), got, recs[winner])
		if !got.CreatedAt.Equal(base.CreatedAt) {
			e.t.Errorf("round %d: got CreatedAt %v; want %v", round, got.CreatedAt, base.CreatedAt)
		}
		for i := range workers {
			want := ""
			if i == winner {
				want = "s1"
			}
			e.wantLookup(gatehouse.KindService, fmt.Sprintf("round:%d:%d", round, i), want)
		}
	}
}

func testConcurrentCreatesAllSurvive(e *env) {
	const perWorker = 5
	versions := make([][]int64, workers)
	errs := race(workers, func(i int) error {
		for j := range perWorker {
			r := rec(gatehouse.KindService, fmt.Sprintf("w%d-%d", i, j))
			r.Unique = []string{"name:" + r.ID}
			if err := e.store.Create(e.ctx, r); err != nil {
				return err
			}
			versions[i] = append(versions[i], r.Version)
		}
		return nil
	})
	for i, err := range errs {
		if err != nil {
			e.t.Fatalf("worker %d: got %v; want success", i, err)
		}
	}
	e.wantCount(gatehouse.KindService, workers*perWorker)
	seen := map[int64]bool{}
	for i := range workers {
		for j, v := range versions[i] {
			if seen[v] {
				e.t.Errorf("worker %d create %d: got Version %d twice; want unique versions", i, j, v)
			}
			seen[v] = true
			e.wantLookup(gatehouse.KindService, fmt.Sprintf("name:w%d-%d", i, j), fmt.Sprintf("w%d-%d", i, j))
		}
	}
}

func testConcurrentCreatesOfOneIDExactlyOneWins(e *env) {
	recs := make([]*gatehouse.Record, workers)
	errs := race(workers, func(i int) error {
		recs[i] = rec(gatehouse.KindService, "s1")
		recs[i].Name = fmt.Sprintf("writer-%d", i)
		return e.store.Create(e.ctx, recs[i])
	})
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				e.t.Fatalf("got creators %d and %d both succeeding; want exactly one", winner, i)
			}
			winner = i
		case gatehouse.ErrorCode(err) != gatehouse.ECONFLICT:
			e.t.Fatalf("creator %d: got %v; want success or %s", i, err, gatehouse.ECONFLICT)
		}
	}
	if winner < 0 {
		e.t.Fatalf("got no creator succeeding; want exactly one")
	}
	e.wantEqual("Get after the race", e.get(gatehouse.KindService, "s1"), recs[winner])
	e.wantCount(gatehouse.KindService, 1)
}

func testConcurrentClaimsOfOneKeyExactlyOneWins(e *env) {
	errs := race(workers, func(i int) error {
		r := rec(gatehouse.KindRoute, fmt.Sprintf("r%d", i))
		r.Unique = []string{"match:GET /x"}
		return e.store.Create(e.ctx, r)
	})
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				e.t.Fatalf("got creators %d and %d both holding the key; want exactly one", winner, i)
			}
			winner = i
		case gatehouse.ErrorCode(err) != gatehouse.ECONFLICT:
			e.t.Fatalf("creator %d: got %v; want success or %s", i, err, gatehouse.ECONFLICT)
		}
	}
	if winner < 0 {
		e.t.Fatalf("got no creator succeeding; want exactly one")
	}
	e.wantLookup(gatehouse.KindRoute, "match:GET /x", fmt.Sprintf("r%d", winner))
	e.wantCount(gatehouse.KindRoute, 1)
}

func testSnapshotHoldsEveryRecordOfEachKindInOrder(e *env) {
	for _, id := range []string{"s2", "s1", "s3"} {
		e.create(rec(gatehouse.KindService, id))
	}
	r := rec(gatehouse.KindRoute, "r1")
	r.Refs = []gatehouse.Ref{ref(gatehouse.KindService, "s1")}
	r.Unique = []string{"match:x"}
	e.create(r)
	e.create(rec(gatehouse.KindConsumer, "c1"))
	snap, err := e.store.Snapshot(e.ctx, gatehouse.KindService, gatehouse.KindRoute, gatehouse.KindPolicy)
	if err != nil {
		e.t.Fatalf("Snapshot: got %v; want success", err)
	}
	if got := ids(snap[gatehouse.KindService]); !reflect.DeepEqual(got, []string{"s2", "s1", "s3"}) {
		e.t.Errorf("services: got %v; want [s2 s1 s3] (creation order)", got)
	}
	if len(snap[gatehouse.KindRoute]) != 1 {
		e.t.Fatalf("routes: got %d; want 1", len(snap[gatehouse.KindRoute]))
	}
	e.wantEqual("snapshot route", snap[gatehouse.KindRoute][0], e.get(gatehouse.KindRoute, "r1"))
	if got, ok := snap[gatehouse.KindPolicy]; !ok || len(got) != 0 {
		e.t.Errorf("policies: got %v (present %v); want an empty entry", got, ok)
	}
	if _, ok := snap[gatehouse.KindConsumer]; ok {
		e.t.Error("consumers: present; want only the kinds asked for")
	}
}

// testSnapshotNeverSeesHalfAWrite moves a reference from one service to
// another while snapshots run: every snapshot must show the route's service.
func testSnapshotNeverSeesHalfAWrite(e *env) {
	e.create(rec(gatehouse.KindService, "a"))
	r := rec(gatehouse.KindRoute, "r")
	r.Refs = []gatehouse.Ref{ref(gatehouse.KindService, "a")}
	e.create(r)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 20 {
			next, prev := fmt.Sprintf("s%d", i), "a"
			if i > 0 {
				prev = fmt.Sprintf("s%d", i-1)
			}
			e.create(rec(gatehouse.KindService, next))
			cur := e.get(gatehouse.KindRoute, "r")
			cur.Refs = []gatehouse.Ref{ref(gatehouse.KindService, next)}
			e.update(cur, cur.Version)
			e.delete(gatehouse.KindService, prev)
		}
	}()
	for {
		select {
		case <-done:
			return
		default:
		}
		snap, err := e.store.Snapshot(e.ctx, gatehouse.KindService, gatehouse.KindRoute)
		if err != nil {
			e.t.Fatalf("Snapshot: got %v; want success", err)
		}
		services := map[string]bool{}
		for _, s := range snap[gatehouse.KindService] {
			services[s.ID] = true
		}
		for _, rt := range snap[gatehouse.KindRoute] {
			for _, rf := range rt.Refs {
				if !services[rf.ID] {
					e.t.Fatalf("snapshot shows route r using %s, which the same snapshot lacks", rf.ID)
				}
			}
		}
	}
}
