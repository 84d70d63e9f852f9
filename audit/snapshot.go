package audit

import (
	"slices"
	"unicode/utf8"
)

// SnapshotMaxEntries bounds the entries of a published Snapshot, so that
// a node's record in the store, and its share of every control node's
// report, stays small however many distinct findings the node keeps.
const SnapshotMaxEntries = 500

// SnapshotMaxSampleBytes bounds a published sample's path and detail: a
// request path may be as long as the header limit allows.
const SnapshotMaxSampleBytes = 512

// Snapshot is a Recorder's findings as a node publishes them to the store
// for the report of the other nodes (the control nodes' above all).
type Snapshot struct {
	Entries []Entry `json:"entries"`
	// Dropped counts the findings the snapshot does not hold: those the
	// recorder's own cap dropped, and those of the entries cut to fit
	// SnapshotMaxEntries.
	Dropped int64 `json:"dropped"`
}

// Snapshot returns the SnapshotMaxEntries entries last seen most
// recently, in the order of Entries, with the findings of the others
// counted in Dropped.
func (rc *Recorder) Snapshot() Snapshot {
	es := rc.Entries(Filter{})
	s := Snapshot{Dropped: rc.Dropped()}
	if len(es) > SnapshotMaxEntries {
		// Stable on the report's order: entries seen at the same instant
		// are cut the same way every time.
		slices.SortStableFunc(es, func(a, b Entry) int { return b.LastSeen.Compare(a.LastSeen) })
		for _, e := range es[SnapshotMaxEntries:] {
			s.Dropped += e.Count
		}
		es = es[:SnapshotMaxEntries:SnapshotMaxEntries]
		sortEntries(es)
	}
	for i := range es {
		es[i].Sample.Path = truncate(es[i].Sample.Path, SnapshotMaxSampleBytes)
		es[i].Sample.Detail = truncate(es[i].Sample.Detail, SnapshotMaxSampleBytes)
	}
	s.Entries = es
	return s
}

// truncate cuts s to at most n bytes, at a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Merge returns the entries f selects of lists (the reports of several
// nodes), one per key: their counts summed, the earliest first seen, the
// latest last seen and that finding's sample; in the order of Entries.
func Merge(f Filter, lists ...[]Entry) []Entry {
	at := map[Key]int{}
	out := []Entry{}
	for _, list := range lists {
		for _, e := range list {
			if !f.Match(&e) {
				continue
			}
			i, seen := at[e.Key]
			if !seen {
				at[e.Key] = len(out)
				out = append(out, e)
				continue
			}
			m := &out[i]
			m.Count += e.Count
			if e.FirstSeen.Before(m.FirstSeen) {
				m.FirstSeen = e.FirstSeen
			}
			if e.LastSeen.After(m.LastSeen) {
				m.LastSeen, m.Sample = e.LastSeen, e.Sample
			}
		}
	}
	sortEntries(out)
	return out
}
