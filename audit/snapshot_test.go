package audit

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSnapshotKeepsTheMostRecentlySeenEntriesAndCountsTheRestAsDropped:
// a recorder with more distinct entries than a snapshot holds publishes
// SnapshotMaxEntries of them, those last seen most recently, and counts
// every finding of the others, and those its own cap dropped, as dropped.
func TestSnapshotKeepsTheMostRecentlySeenEntriesAndCountsTheRestAsDropped(t *testing.T) {
	const extra, overCap = 7, 3
	rc := NewRecorder(RecorderOptions{MaxEntries: SnapshotMaxEntries + extra})
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	for i := range SnapshotMaxEntries + extra + overCap {
		// Route names sort the other way from the times they are seen
		// at, so that the report's order is not the order of recency.
		f := Finding{Rule: ErrorWithoutBody, RouteID: "r" + strconv.Itoa(1e6-i), Status: 500, At: t0.Add(time.Duration(i) * time.Second)}
		rc.Record(&f)
		rc.Record(&f)
	}
	s := rc.Snapshot()
	if len(s.Entries) != SnapshotMaxEntries {
		t.Fatalf("snapshot holds %d entries; want %d", len(s.Entries), SnapshotMaxEntries)
	}
	if want := int64(2*extra + 2*overCap); s.Dropped != want {
		t.Fatalf("dropped %d; want %d (%d entries of 2 cut, %d findings over the recorder's cap)", s.Dropped, want, extra, 2*overCap)
	}
	cutoff := t0.Add(extra * time.Second)
	for i, e := range s.Entries {
		if e.LastSeen.Before(cutoff) {
			t.Fatalf("entry %s last seen %v kept; the %d entries seen before %v should have been cut", e.RouteID, e.LastSeen, extra, cutoff)
		}
		if i > 0 && s.Entries[i-1].RouteID >= e.RouteID {
			t.Fatalf("entries out of the report's order at %d: %s then %s", i, s.Entries[i-1].RouteID, e.RouteID)
		}
	}
}

func TestSnapshotOfAFewEntriesHoldsThemAll(t *testing.T) {
	rc := NewRecorder(RecorderOptions{})
	rc.Record(&Finding{Rule: AllowMissing, RouteID: "a", Status: 405, At: time.Now()})
	if s := rc.Snapshot(); len(s.Entries) != 1 || s.Dropped != 0 {
		t.Fatalf("got %+v; want the one entry, none dropped", s)
	}
}

// TestSnapshotCutsLongSamplesAtARuneBoundary: a sample's path may be as
// long as the header limit; a published one is bounded.
func TestSnapshotCutsLongSamplesAtARuneBoundary(t *testing.T) {
	rc := NewRecorder(RecorderOptions{})
	long := "/" + strings.Repeat("é", SnapshotMaxSampleBytes) // 2 bytes a rune, after 1
	rc.Record(&Finding{Rule: AllowMissing, RouteID: "a", Status: 405, Path: long, Detail: long, At: time.Now()})
	got := rc.Snapshot().Entries[0].Sample
	for what, v := range map[string]string{"path": got.Path, "detail": got.Detail} {
		if len(v) > SnapshotMaxSampleBytes || len(v) < SnapshotMaxSampleBytes-1 || !strings.HasPrefix(long, v) || !utf8Valid(v) {
			t.Fatalf("%s: %d bytes, valid UTF-8 %v; want a prefix of at most %d bytes cut between runes", what, len(v), utf8Valid(v), SnapshotMaxSampleBytes)
		}
	}
	if full := rc.Entries(Filter{})[0].Sample.Path; full != long {
		t.Fatal("the node's own report must keep the whole sample")
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

// TestSnapshotRoundTripsThroughJSON: what a node publishes is what the
// other nodes read.
func TestSnapshotRoundTripsThroughJSON(t *testing.T) {
	rc := NewRecorder(RecorderOptions{})
	at := time.Date(2026, 12, 4, 12, 0, 0, 123456789, time.UTC)
	rc.Record(&Finding{Rule: BodySchema, RouteID: "a", Operation: "getPet", Status: 200, RequestID: "r1", Method: "GET", Path: "/pets/1", Detail: "d", At: at})
	s := rc.Snapshot()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back Snapshot
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, s) {
		t.Fatalf("got %+v\nwant %+v", back, s)
	}
}

func TestMergeSumsCountsPerKeyWithTheEarliestFirstAndTheLatestLastAndSample(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	key := Key{RouteID: "a", Status: 405, Rule: AllowMissing}
	entry := func(k Key, count int64, first, last time.Duration, req string) Entry {
		return Entry{Key: k, Severity: SeverityOf(k.Rule), Count: count, FirstSeen: t0.Add(first), LastSeen: t0.Add(last), Sample: Sample{RequestID: req}}
	}
	other := Key{RouteID: "b", Status: 201, Rule: LocationMissing}
	nodeA := []Entry{entry(key, 2, time.Minute, 2*time.Minute, "a-latest"), entry(other, 1, 0, 0, "b")}
	nodeB := []Entry{entry(key, 3, 0, 5*time.Minute, "b-latest")}
	nodeC := []Entry{entry(key, 1, 2*time.Minute, 3*time.Minute, "c-latest")}
	for _, tc := range []struct {
		name   string
		filter Filter
		want   []Entry
	}{
		{"all", Filter{}, []Entry{entry(key, 6, 0, 5*time.Minute, "b-latest"), entry(other, 1, 0, 0, "b")}},
		{"by route", Filter{RouteID: "b"}, []Entry{entry(other, 1, 0, 0, "b")}},
		{"by severity", Filter{Severity: Error}, []Entry{entry(key, 6, 0, 5*time.Minute, "b-latest")}},
		{"none", Filter{Status: 500}, []Entry{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Merge(tc.filter, nodeA, nodeB, nodeC); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
