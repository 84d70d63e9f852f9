package admin

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
)

// conformance returns the findings f selects of the whole cluster, merged
// per route, operation, status and rule, and how many findings were
// dropped: this node's own, from its data plane, and those every other
// node published to the store (its latest audit.Snapshot, bounded in size
// and write rate). The snapshot of a node that is down stays in the report
// as its history, until a process of that name publishes again; one that
// does not decode is left out, and its node named in unreadable.
func (h *Handler) conformance(ctx context.Context, f audit.Filter) (entries []audit.Entry, dropped int64, unreadable []string, err error) {
	var lists [][]audit.Entry
	own := h.opts.Conformance
	if own != nil {
		lists = append(lists, own.Entries(f))
		dropped = own.Dropped()
	}
	recs, err := h.store.Snapshot(ctx, gatehouse.KindFindings)
	if err != nil {
		return nil, 0, nil, err
	}
	for _, rec := range recs[gatehouse.KindFindings] {
		if own != nil && rec.ID == h.opts.NodeName {
			continue // this node's recorder, read above, is newer
		}
		var s audit.Snapshot
		if err := json.Unmarshal(rec.Body, &s); err != nil {
			// As the figures of /stats: one node's unreadable snapshot
			// costs its own findings, named, not everyone's report.
			slog.WarnContext(ctx, "a node's published findings do not decode: left out of the conformance report", "node", rec.ID, "error", err)
			unreadable = append(unreadable, rec.ID)
			continue
		}
		lists = append(lists, s.Entries)
		dropped += s.Dropped
	}
	return audit.Merge(f, lists...), dropped, unreadable, nil
}
