package admin

import (
	"context"
	"fmt"
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/config"
)

// diffFrom checks a revision's diff_from: the number of the revision to
// compare with, 0 for the empty configuration.
func diffFrom(v string) string {
	if _, ok := gatehouse.ParseRevisionNumber(v); !ok {
		return "must be a revision number in decimal, or 0 for the empty configuration"
	}
	return ""
}

// getRevision answers a revision or, with diff_from=m, what changes from
// revision m to it (config.DiffRevisions), secrets compared but never
// shown. Both revisions are immutable, so the diff is too: its ETag names
// both, and a 304 to If-None-Match holds for ever.
func getRevision(h *Handler, r *request) (*result, error) {
	v, ok := r.query["diff_from"]
	if !ok {
		return r.ep.owner.get(h, r)
	}
	m, _ := gatehouse.ParseRevisionNumber(v[0]) // checked by diffFrom
	to, err := readRevision(r.Context(), h.store, r.params[0])
	if err != nil {
		return nil, err
	}
	var from *gatehouse.Revision
	if m != 0 {
		from, err = readRevision(r.Context(), h.store, gatehouse.RevisionID(m))
		if gatehouse.Absent(err) {
			return nil, gatehouse.Errorf(gatehouse.ENOTFOUND, "Revision %d, which diff_from names, does not exist.", m)
		}
		if err != nil {
			return nil, err
		}
	}
	// The ETag and date of the pair: the revision's own, with the other's
	// version beside it (0 for the empty configuration).
	modified, fromVersion := to.UpdatedAt, int64(0)
	if from != nil {
		fromVersion = from.Version
		if from.UpdatedAt.After(modified) {
			modified = from.UpdatedAt
		}
	}
	tag := fmt.Sprintf(`"%d.%d"`, to.Version, fromVersion)
	if _, err := checkTagPreconditions(r.Request, tag, modified); err != nil {
		return nil, err
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" && matchesETag(inm, tag, true) {
		return &result{status: http.StatusNotModified, etag: tag, modified: modified}, nil
	}
	return &result{status: http.StatusOK, body: config.DiffRevisions(from, to), etag: tag, modified: modified}, nil
}

// readRevision reads a revision as stored, its secrets unredacted: for a
// diff, which must see a changed secret without showing it.
func readRevision(ctx context.Context, store gatehouse.Store, id string) (*gatehouse.Revision, error) {
	rec, err := store.Get(ctx, gatehouse.KindRevision, id)
	if err != nil {
		return nil, err
	}
	rev := gatehouse.NewRevision()
	if err := gatehouse.Decode(rec, rev); err != nil {
		return nil, err
	}
	return rev, nil
}
