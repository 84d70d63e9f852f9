package postgres

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/jackc/pgx/v5"
)

// Create inserts rec and sets its Version, CreatedAt and UpdatedAt.
func (s *DB) Create(ctx context.Context, rec *gatehouse.Record) error {
	var a assigned
	err := s.write(ctx, func(w *wtx) error {
		var err error
		a, err = s.createTx(ctx, w, rec, s.clock())
		return err
	})
	if err != nil {
		return err
	}
	a.put(rec)
	return nil
}

// assigned is what a create or update gave a record. It is put on the
// record only once the transaction has committed, so that a failed write
// leaves the caller's record as it was.
type assigned struct {
	version          int64
	created, updated time.Time
}

func (a assigned) put(rec *gatehouse.Record) {
	rec.Version, rec.CreatedAt, rec.UpdatedAt = a.version, a.created, a.updated
}

// createTx is Create within w, at time now: every rule of a create, for
// Create and Apply alike.
func (s *DB) createTx(ctx context.Context, w *wtx, rec *gatehouse.Record, now time.Time) (assigned, error) {
	if rec.Kind == "" || rec.ID == "" {
		return assigned{}, gatehouse.Internal(errors.New("postgres: Create needs a kind and an id"))
	}
	if err := w.shareDraft(ctx, rec.Kind); err != nil {
		return assigned{}, err
	}
	refs, keys := rec.DistinctRefs(), rec.DistinctKeys()
	// A create takes three round trips, two in a batch (which holds
	// createLock after its first create): one reads whether the id is
	// taken and locks what the record points at, one writes the record
	// with its refs and keys. In a batch of 10,000 creates, round trips
	// are much of the cost.
	exists, err := lockTargets(ctx, w, &gatehouse.Ref{Kind: rec.Kind, ID: rec.ID}, rec.Parent, refs)
	if err != nil {
		return assigned{}, err
	}
	if exists {
		return assigned{}, gatehouse.AlreadyExists(rec.Kind, rec.ID)
	}
	if err := w.orderCreates(ctx); err != nil {
		return assigned{}, err
	}
	// The refs, keys and tombstone go in the statement that inserts the
	// record. Its foreign keys are checked at the end of the statement,
	// when the record is there.
	var seq, version int64
	var claimed []string
	pk, pid := parentColumns(rec.Parent)
	refKinds, refIDs := splitRefs(refs)
	err = w.QueryRow(ctx,
		`WITH ins AS (
			INSERT INTO records (kind, id, version, created_at, updated_at, name, parent_kind, parent_id, secret, body)
			VALUES ($1, $2, nextval('record_versions'), $3, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (kind, id) DO NOTHING
			RETURNING seq, version
		), refs AS (
			INSERT INTO record_refs (record_seq, pos, ref_kind, ref_id)
			SELECT ins.seq, u.ord - 1, u.kind, u.id
			FROM ins, unnest($9::text[], $10::text[]) WITH ORDINALITY AS u (kind, id, ord)
		), keys AS (
			INSERT INTO unique_keys (kind, key, owner_seq, pos)
			SELECT $1, u.key, ins.seq, u.ord - 1
			FROM ins, unnest($11::text[]) WITH ORDINALITY AS u (key, ord)
			ORDER BY u.key -- as in claimKeys
			ON CONFLICT (kind, key) DO NOTHING
			RETURNING key
		), revived AS (
			DELETE FROM tombstones WHERE kind = $1 AND id = $2 AND EXISTS (SELECT FROM ins)
		)
		SELECT seq, version, ARRAY(SELECT key FROM keys) FROM ins`,
		string(rec.Kind), rec.ID, now, rec.Name, pk, pid, rec.StoredSecret(), rec.Body,
		refKinds, refIDs, keys).Scan(&seq, &version, &claimed)
	if errors.Is(err, pgx.ErrNoRows) {
		// Created by another transaction since the check above.
		return assigned{}, gatehouse.AlreadyExists(rec.Kind, rec.ID)
	}
	if err != nil {
		return assigned{}, err
	}
	if err := nameHolder(ctx, w, rec.Kind, keys, claimed); err != nil {
		return assigned{}, err
	}
	return assigned{version: version, created: now, updated: now}, nil
}

// Get returns the record kind/id.
func (s *DB) Get(ctx context.Context, kind gatehouse.Kind, id string) (*gatehouse.Record, error) {
	var rec *gatehouse.Record
	// One statement finds a record that is there.
	err := s.retry(ctx, func() error {
		var err error
		rec, err = getRecord(ctx, s.pool, `r.kind = $1 AND r.id = $2`, string(kind), id)
		if errors.Is(err, pgx.ErrNoRows) {
			rec, err = nil, nil
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if rec != nil {
		return rec, nil
	}
	// It is not: look again and for a tombstone in one snapshot, so that
	// the answer is one the store gave at one moment.
	err = s.read(ctx, func(tx pgx.Tx) error {
		var err error
		rec, err = getRecord(ctx, tx, `r.kind = $1 AND r.id = $2`, string(kind), id)
		if errors.Is(err, pgx.ErrNoRows) {
			return s.missing(ctx, tx, kind, id)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return rec, nil
}

// Lookup returns the record of kind holding the unique key.
func (s *DB) Lookup(ctx context.Context, kind gatehouse.Kind, key string) (*gatehouse.Record, error) {
	var rec *gatehouse.Record
	err := s.retry(ctx, func() error {
		var err error
		rec, err = getRecord(ctx, s.pool,
			`r.seq = (SELECT owner_seq FROM unique_keys WHERE kind = $1 AND key = $2)`, string(kind), key)
		if errors.Is(err, pgx.ErrNoRows) {
			return gatehouse.NoHolder(kind, key)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return rec, nil
}

// Update replaces the record rec.Kind/rec.ID, which must be at ifVersion.
// On success rec carries the new Version and UpdatedAt and the original
// CreatedAt.
func (s *DB) Update(ctx context.Context, rec *gatehouse.Record, ifVersion int64) error {
	var a assigned
	err := s.write(ctx, func(w *wtx) error {
		var err error
		a, err = s.updateTx(ctx, w, rec, ifVersion, s.clock())
		return err
	})
	if err != nil {
		return err
	}
	a.put(rec)
	return nil
}

// updateTx is Update within w, at time now.
func (s *DB) updateTx(ctx context.Context, w *wtx, rec *gatehouse.Record, ifVersion int64, now time.Time) (assigned, error) {
	if err := w.shareDraft(ctx, rec.Kind); err != nil {
		return assigned{}, err
	}
	refs, keys := rec.DistinctRefs(), rec.DistinctKeys()
	// The row lock queues concurrent writers of this record: the version
	// read here stays current until commit. NO KEY UPDATE, not UPDATE, so
	// that writers merely pointing at this record (FOR KEY SHARE) are not
	// held up. The refs and keys it holds come along, so that an update
	// that keeps them (most do) need not rewrite them.
	var seq, current int64
	var created time.Time
	var heldRefKinds, heldRefIDs, heldKeys []string
	err := w.QueryRow(ctx,
		`SELECT r.seq, r.version, r.created_at,
		        ARRAY(SELECT f.ref_kind FROM record_refs f WHERE f.record_seq = r.seq ORDER BY f.pos),
		        ARRAY(SELECT f.ref_id FROM record_refs f WHERE f.record_seq = r.seq ORDER BY f.pos),
		        ARRAY(SELECT k.key FROM unique_keys k WHERE k.owner_seq = r.seq ORDER BY k.pos)
		 FROM records r WHERE r.kind = $1 AND r.id = $2 FOR NO KEY UPDATE OF r`,
		string(rec.Kind), rec.ID).Scan(&seq, &current, &created, &heldRefKinds, &heldRefIDs, &heldKeys)
	if errors.Is(err, pgx.ErrNoRows) {
		return assigned{}, s.missing(ctx, w, rec.Kind, rec.ID)
	}
	if err != nil {
		return assigned{}, err
	}
	if current != ifVersion {
		return assigned{}, gatehouse.Stale(rec.Kind, rec.ID, current, ifVersion)
	}
	if _, err := lockTargets(ctx, w, nil, rec.Parent, refs); err != nil {
		return assigned{}, err
	}
	// The version condition repeats the check above in the write itself,
	// so that the check cannot be separated from the write even if the
	// locking around it ever changes.
	var version int64
	pk, pid := parentColumns(rec.Parent)
	err = w.QueryRow(ctx,
		`UPDATE records SET version = nextval('record_versions'), updated_at = $1, name = $2,
		        parent_kind = $3, parent_id = $4, secret = $5, body = $6
		 WHERE seq = $7 AND version = $8
		 RETURNING version`,
		now, rec.Name, pk, pid, rec.StoredSecret(), rec.Body, seq, ifVersion).Scan(&version)
	if errors.Is(err, pgx.ErrNoRows) {
		return assigned{}, gatehouse.Stale(rec.Kind, rec.ID, 0, ifVersion)
	}
	if err != nil {
		return assigned{}, err
	}
	refKinds, refIDs := splitRefs(refs)
	if !slices.Equal(refKinds, heldRefKinds) || !slices.Equal(refIDs, heldRefIDs) {
		if _, err := w.Exec(ctx, `DELETE FROM record_refs WHERE record_seq = $1`, seq); err != nil {
			return assigned{}, err
		}
		if err := insertRefs(ctx, w, seq, refs); err != nil {
			return assigned{}, err
		}
	}
	if !slices.Equal(keys, heldKeys) {
		if _, err := w.Exec(ctx, `DELETE FROM unique_keys WHERE owner_seq = $1`, seq); err != nil {
			return assigned{}, err
		}
		if err := claimKeys(ctx, w, rec.Kind, seq, keys); err != nil {
			return assigned{}, err
		}
	}
	return assigned{version: version, created: created.UTC(), updated: now}, nil
}

// Delete removes kind/id and, recursively, every record whose Parent it
// is, leaving a tombstone for each.
func (s *DB) Delete(ctx context.Context, kind gatehouse.Kind, id string, ifVersion int64) error {
	return s.write(ctx, func(w *wtx) error {
		now := s.clock()
		if err := s.deleteTx(ctx, w, kind, id, ifVersion, now); err != nil {
			return err
		}
		return s.purgeTombstones(ctx, w, now)
	})
}

// deleteTx is Delete within w, at time now, except for purging old
// tombstones, which a transaction needs to do once however much it
// deletes.
func (s *DB) deleteTx(ctx context.Context, w *wtx, kind gatehouse.Kind, id string, ifVersion int64, now time.Time) error {
	if err := w.shareDraft(ctx, kind); err != nil {
		return err
	}
	// FOR UPDATE conflicts with the FOR KEY SHARE that writers take on
	// what they point at: once this holds, no new child or use of the
	// record can appear, and any that was being written has committed and
	// is seen by the statements below.
	var seq, current int64
	err := w.QueryRow(ctx,
		`SELECT seq, version FROM records WHERE kind = $1 AND id = $2 FOR UPDATE`,
		string(kind), id).Scan(&seq, &current)
	if errors.Is(err, pgx.ErrNoRows) {
		return s.missing(ctx, w, kind, id)
	}
	if err != nil {
		return err
	}
	if ifVersion != 0 && current != ifVersion {
		return gatehouse.Stale(kind, id, current, ifVersion)
	}
	doomed, err := lockSubtree(ctx, w, node{seq: seq, kind: kind, id: id})
	if err != nil {
		return err
	}
	if err := checkUnused(ctx, w, doomed); err != nil {
		return err
	}
	return deleteRecords(ctx, w, doomed, now)
}

// List returns a page of kind's records in creation order.
func (s *DB) List(ctx context.Context, kind gatehouse.Kind, opts gatehouse.ListOptions) (*gatehouse.Page, error) {
	limit := gatehouse.PageLimit(opts.Limit)

	where := []string{`r.kind = $1`, `r.seq > $2`}
	args := []any{string(kind), max(opts.After, 0)}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f := opts.Filter; f.Name != "" {
		where = append(where, `r.name = `+arg(f.Name))
	}
	if f := opts.Filter; f.ParentID != "" {
		where = append(where, `r.parent_id = `+arg(f.ParentID))
	}
	if f := opts.Filter; f.RefID != "" && f.RefKind != "" {
		where = append(where, `EXISTS (SELECT 1 FROM record_refs f WHERE f.record_seq = r.seq AND f.ref_kind = `+arg(string(f.RefKind))+` AND f.ref_id = `+arg(f.RefID)+`)`)
	} else if f.RefID != "" {
		where = append(where, `EXISTS (SELECT 1 FROM record_refs f WHERE f.record_seq = r.seq AND f.ref_id = `+arg(f.RefID)+`)`)
	}
	// One more than the page, to know whether there is a next page
	// without a second query.
	query := selectRecords + ` WHERE ` + strings.Join(where, ` AND `) +
		` ORDER BY r.seq LIMIT ` + arg(limit+1)

	page := &gatehouse.Page{}
	err := s.retry(ctx, func() error {
		recs, seqs, err := queryRecords(ctx, s.pool, query, args...)
		if err != nil {
			return err
		}
		page.Next = 0
		if len(recs) > limit {
			recs, seqs = recs[:limit], seqs[:limit]
			page.Next = seqs[limit-1]
		}
		page.Records = recs
		return nil
	})
	if err != nil {
		return nil, err
	}
	return page, nil
}

// Snapshot reads every record of kinds in one REPEATABLE READ transaction.
func (s *DB) Snapshot(ctx context.Context, kinds ...gatehouse.Kind) (map[gatehouse.Kind][]*gatehouse.Record, error) {
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = string(k)
	}
	var out map[gatehouse.Kind][]*gatehouse.Record
	err := s.read(ctx, func(tx pgx.Tx) error {
		out = make(map[gatehouse.Kind][]*gatehouse.Record, len(kinds))
		for _, k := range kinds {
			out[k] = nil
		}
		recs, _, err := queryRecords(ctx, tx,
			selectRecords+` WHERE r.kind = ANY($1) ORDER BY r.seq`, names)
		if err != nil {
			return err
		}
		for _, r := range recs {
			out[r.Kind] = append(out[r.Kind], r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Count returns the number of records of kind.
func (s *DB) Count(ctx context.Context, kind gatehouse.Kind) (int, error) {
	var n int
	err := s.retry(ctx, func() error {
		return s.pool.QueryRow(ctx, `SELECT COUNT(*) FROM records WHERE kind = $1`, string(kind)).Scan(&n)
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// missing explains why kind/id is not there: EGONE if it was deleted within
// the retention, ENOTFOUND otherwise.
func (s *DB) missing(ctx context.Context, tx pgx.Tx, kind gatehouse.Kind, id string) error {
	cutoff := s.clock().Add(-s.retention)
	var gone bool
	err := tx.QueryRow(ctx,
		`SELECT EXISTS (SELECT 1 FROM tombstones WHERE kind = $1 AND id = $2 AND deleted_at > $3)`,
		string(kind), id, cutoff).Scan(&gone)
	if err != nil {
		return err
	}
	return gatehouse.Missing(kind, id, gone)
}

// purgeTombstones forgets deletions older than the retention. Get already
// ignores them; this only keeps the table small.
func (s *DB) purgeTombstones(ctx context.Context, tx pgx.Tx, now time.Time) error {
	_, err := tx.Exec(ctx, `DELETE FROM tombstones WHERE deleted_at <= $1`, now.Add(-s.retention))
	return err
}

// lockTargets fails with EUNPROCESSABLE unless parent (if any) and every
// one of refs exist, and locks those that do FOR KEY SHARE until commit, so
// that none can be deleted before this write commits and a Delete that
// waited for it sees the new use. The store does not know which request
// field holds a reference, so the message names the reference and Fields
// stays empty; the domain checks references by field before it gets here.
//
// If self is not nil, the same statement reads whether self exists (a
// create's id check, which comes first: if it exists, the targets are not
// judged).
func lockTargets(ctx context.Context, tx pgx.Tx, self, parent *gatehouse.Ref, refs []gatehouse.Ref) (selfExists bool, err error) {
	targets := refs
	if parent != nil {
		targets = append([]gatehouse.Ref{*parent}, refs...)
	}
	if len(targets) == 0 && self == nil {
		return false, nil
	}
	var selfKind, selfID string // matches no record
	if self != nil {
		selfKind, selfID = string(self.Kind), self.ID
	}
	kinds, ids := splitRefs(targets)
	var foundKinds, foundIDs []string
	err = tx.QueryRow(ctx,
		`WITH t AS (
			SELECT kind, id FROM records
			WHERE (kind, id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
			ORDER BY seq
			FOR KEY SHARE
		)
		SELECT EXISTS (SELECT FROM records WHERE kind = $3 AND id = $4),
		       ARRAY(SELECT kind FROM t), ARRAY(SELECT id FROM t)`,
		kinds, ids, selfKind, selfID).Scan(&selfExists, &foundKinds, &foundIDs)
	if err != nil || selfExists {
		return selfExists, err
	}
	found := make(map[gatehouse.Ref]bool, len(targets))
	for i := range foundKinds {
		found[gatehouse.Ref{Kind: gatehouse.Kind(foundKinds[i]), ID: foundIDs[i]}] = true
	}
	for _, ref := range targets {
		if !found[ref] {
			return false, gatehouse.MissingRef(ref)
		}
	}
	return false, nil
}

func insertRefs(ctx context.Context, tx pgx.Tx, seq int64, refs []gatehouse.Ref) error {
	if len(refs) == 0 {
		return nil
	}
	kinds, ids := splitRefs(refs)
	_, err := tx.Exec(ctx,
		`INSERT INTO record_refs (record_seq, pos, ref_kind, ref_id)
		 SELECT $1, u.ord - 1, u.kind, u.id
		 FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS u (kind, id, ord)`,
		seq, kinds, ids)
	return err
}

// claimKeys inserts keys for the record at seq, failing with ECONFLICT
// (gatehouse.KeyTaken) if another record of kind holds one. ON CONFLICT DO
// NOTHING waits for a concurrent claim of the same key to commit or roll
// back, so of several racing claims exactly one gets each key. (A create
// claims its keys in the statement that inserts the record, likewise.)
func claimKeys(ctx context.Context, tx pgx.Tx, kind gatehouse.Kind, seq int64, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx,
		`INSERT INTO unique_keys (kind, key, owner_seq, pos)
		 SELECT $1, u.key, $2, u.ord - 1
		 FROM unnest($3::text[]) WITH ORDINALITY AS u (key, ord)
		 ORDER BY u.key -- one order for every claim, so two claims of the same keys cannot deadlock
		 ON CONFLICT (kind, key) DO NOTHING
		 RETURNING key`,
		string(kind), seq, keys)
	if err != nil {
		return err
	}
	claimed, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	return nameHolder(ctx, tx, kind, keys, claimed)
}

// nameHolder fails with ECONFLICT (gatehouse.KeyTaken) naming the holder
// of the first of keys that a claim did not get (is not in claimed).
func nameHolder(ctx context.Context, tx pgx.Tx, kind gatehouse.Kind, keys, claimed []string) error {
	if len(claimed) == len(keys) {
		return nil
	}
	for _, key := range keys {
		if slices.Contains(claimed, key) {
			continue
		}
		var owner string
		err := tx.QueryRow(ctx,
			`SELECT r.id FROM unique_keys k JOIN records r ON r.seq = k.owner_seq
			 WHERE k.kind = $1 AND k.key = $2`, string(kind), key).Scan(&owner)
		if errors.Is(err, pgx.ErrNoRows) {
			// Its holder let go of it since: start again.
			return errKeyReleased
		}
		if err != nil {
			return err
		}
		return gatehouse.KeyTaken(kind, key, owner)
	}
	return nil
}

// errKeyReleased fails a write that lost a key to a claim that was then
// let go of before the write could name the holder. The write is retried.
var errKeyReleased = errors.New("postgres: a unique key was claimed and released concurrently")

// node is a record about to be deleted.
type node struct {
	seq  int64
	kind gatehouse.Kind
	id   string
}

// lockSubtree returns root, which the caller has locked, and all its
// descendants by Parent, locking each FOR UPDATE, in seq order. It goes
// level by level: each level's query runs after the previous level is
// locked, so it sees every child committed by a writer that held the
// parent, and no new child can appear. Seen seqs are skipped, so that it
// terminates even if parents were ever made to form a cycle.
func lockSubtree(ctx context.Context, tx pgx.Tx, root node) ([]node, error) {
	all := []node{root}
	seen := map[int64]bool{root.seq: true}
	level := []node{root}
	for len(level) > 0 {
		kinds := make([]string, len(level))
		ids := make([]string, len(level))
		for i, n := range level {
			kinds[i], ids[i] = string(n.kind), n.id
		}
		rows, err := tx.Query(ctx,
			`SELECT seq, kind, id FROM records
			 WHERE (parent_kind, parent_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
			 ORDER BY seq
			 FOR UPDATE`, kinds, ids)
		if err != nil {
			return nil, err
		}
		var next []node
		for rows.Next() {
			var n node
			var kind string
			if err := rows.Scan(&n.seq, &kind, &n.id); err != nil {
				rows.Close()
				return nil, err
			}
			n.kind = gatehouse.Kind(kind)
			if !seen[n.seq] {
				seen[n.seq] = true
				next = append(next, n)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		all = append(all, next...)
		level = next
	}
	slices.SortFunc(all, func(a, b node) int { return cmp.Compare(a.seq, b.seq) })
	return all, nil
}

// checkUnused fails with ECONFLICT if a record outside doomed refers to a
// record in it, naming the first such (in seq order) and its first user.
// References from within doomed (a child using its parent) go away with the
// delete and do not count.
func checkUnused(ctx context.Context, tx pgx.Tx, doomed []node) error {
	kinds, ids, seqs := splitNodes(doomed)
	var kind, id, userKind, userID string
	err := tx.QueryRow(ctx,
		`SELECT d.kind, d.id, r.kind, r.id
		 FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS d (kind, id, ord)
		 JOIN record_refs f ON f.ref_kind = d.kind AND f.ref_id = d.id
		 JOIN records r ON r.seq = f.record_seq
		 WHERE r.seq <> ALL ($3::bigint[])
		 ORDER BY d.ord, r.seq
		 LIMIT 1`, kinds, ids, seqs).Scan(&kind, &id, &userKind, &userID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	return gatehouse.InUse(gatehouse.Ref{Kind: gatehouse.Kind(kind), ID: id}, gatehouse.Ref{Kind: gatehouse.Kind(userKind), ID: userID})
}

// deleteRecords deletes doomed with their refs and keys, and tombstones
// each, in one round trip: the statements are sent as one pipeline and
// run in order.
func deleteRecords(ctx context.Context, tx pgx.Tx, doomed []node, now time.Time) error {
	kinds, ids, seqs := splitNodes(doomed)
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO tombstones (kind, id, deleted_at)
		 SELECT kind, id, $3 FROM unnest($1::text[], $2::text[]) AS u (kind, id)
		 ON CONFLICT (kind, id) DO UPDATE SET deleted_at = excluded.deleted_at`,
		kinds, ids, now)
	// Refs and keys go first, then the records in one statement, so that
	// the foreign keys between doomed records are only checked once they
	// are all gone.
	b.Queue(`DELETE FROM record_refs WHERE record_seq = ANY ($1)`, seqs)
	b.Queue(`DELETE FROM unique_keys WHERE owner_seq = ANY ($1)`, seqs)
	b.Queue(`DELETE FROM records WHERE seq = ANY ($1)`, seqs)
	return tx.SendBatch(ctx, b).Close()
}

// querier is what reads run on: the pool (a single statement is its own
// transaction) or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// selectRecords selects the columns scanRecords reads, in its order, with
// each record's refs and keys aggregated in the order they were written,
// so that one statement reads whole records.
const selectRecords = `SELECT r.seq, r.kind, r.id, r.version, r.created_at, r.updated_at, r.name,
	r.parent_kind, r.parent_id, r.secret, r.body,
	ARRAY(SELECT f.ref_kind FROM record_refs f WHERE f.record_seq = r.seq ORDER BY f.pos),
	ARRAY(SELECT f.ref_id FROM record_refs f WHERE f.record_seq = r.seq ORDER BY f.pos),
	ARRAY(SELECT k.key FROM unique_keys k WHERE k.owner_seq = r.seq ORDER BY k.pos)
	FROM records r`

// getRecord reads the one record matching where, or pgx.ErrNoRows.
func getRecord(ctx context.Context, q querier, where string, args ...any) (*gatehouse.Record, error) {
	recs, _, err := queryRecords(ctx, q, selectRecords+` WHERE `+where, args...)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, pgx.ErrNoRows
	}
	return recs[0], nil
}

// queryRecords runs a query that starts with selectRecords and returns the
// records and their seqs.
func queryRecords(ctx context.Context, q querier, query string, args ...any) ([]*gatehouse.Record, []int64, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var (
		recs []*gatehouse.Record
		seqs []int64
	)
	for rows.Next() {
		var (
			rec              gatehouse.Record
			seq              int64
			kind             string
			created, updated time.Time
			pk, pid          *string
			refKinds, refIDs []string
			keys             []string
		)
		if err := rows.Scan(&seq, &kind, &rec.ID, &rec.Version, &created, &updated,
			&rec.Name, &pk, &pid, &rec.Secret, &rec.Body, &refKinds, &refIDs, &keys); err != nil {
			return nil, nil, err
		}
		rec.Kind = gatehouse.Kind(kind)
		rec.CreatedAt, rec.UpdatedAt = created.UTC(), updated.UTC()
		if pk != nil && pid != nil {
			rec.Parent = &gatehouse.Ref{Kind: gatehouse.Kind(*pk), ID: *pid}
		}
		for i := range refKinds {
			rec.Refs = append(rec.Refs, gatehouse.Ref{Kind: gatehouse.Kind(refKinds[i]), ID: refIDs[i]})
		}
		if len(keys) > 0 {
			rec.Unique = keys
		}
		recs = append(recs, &rec)
		seqs = append(seqs, seq)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	return recs, seqs, nil
}

func splitRefs(refs []gatehouse.Ref) (kinds, ids []string) {
	kinds, ids = make([]string, len(refs)), make([]string, len(refs))
	for i, r := range refs {
		kinds[i], ids[i] = string(r.Kind), r.ID
	}
	return kinds, ids
}

func splitNodes(ns []node) (kinds, ids []string, seqs []int64) {
	kinds, ids, seqs = make([]string, len(ns)), make([]string, len(ns)), make([]int64, len(ns))
	for i, n := range ns {
		kinds[i], ids[i], seqs[i] = string(n.kind), n.id, n.seq
	}
	return kinds, ids, seqs
}

func parentColumns(p *gatehouse.Ref) (kind, id *string) {
	if p == nil {
		return nil, nil
	}
	k := string(p.Kind)
	return &k, &p.ID
}
