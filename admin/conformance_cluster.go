package admin

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
)

// conformance returns the findings f selects of the whole cluster, merged
// per route, operation, status and rule, and how many findings were
// dropped: this node's own, from its data plane, and those every other
// node published to the store (its latest audit.Snapshot, bounded in size
// and write rate). The snapshot of a node that is down stays in the report
// as its history, until a process of that name publishes again.
func (h *Handler) conformance(ctx context.Context, f audit.Filter) ([]audit.Entry, int64, error) {
	var lists [][]audit.Entry
	var dropped int64
	own := h.opts.Conformance
	if own != nil {
		lists = append(lists, own.Entries(f))
		dropped = own.Dropped()
	}
	recs, err := h.store.Snapshot(ctx, gatehouse.KindFindings)
	if err != nil {
		return nil, 0, err
	}
	for _, rec := range recs[gatehouse.KindFindings] {
		if own != nil && rec.ID == h.opts.NodeName {
			continue // this node's recorder, read above, is newer
		}
		var s audit.Snapshot
		if err := json.Unmarshal(rec.Body, &s); err != nil {
			return nil, 0, gatehouse.Internal(fmt.Errorf("decode the findings of node %s: %w", rec.ID, err))
		}
		lists = append(lists, s.Entries)
		dropped += s.Dropped
	}
	return audit.Merge(f, lists...), dropped, nil
}
