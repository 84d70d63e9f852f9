package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Create inserts rec and sets its Version, CreatedAt and UpdatedAt.
func (s *DB) Create(ctx context.Context, rec *gatehouse.Record) error {
	var a assigned
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		a, err = s.createTx(ctx, tx, rec, s.clock())
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

// createTx is Create within tx, at time now: every rule of a create, for
// Create and Apply alike.
func (s *DB) createTx(ctx context.Context, tx querier, rec *gatehouse.Record, now time.Time) (assigned, error) {
	if rec.Kind == "" || rec.ID == "" {
		return assigned{}, gatehouse.Internal(errors.New("sqlite: Create needs a kind and an id"))
	}
	exists, err := recordExists(ctx, tx, rec.Kind, rec.ID)
	if err != nil {
		return assigned{}, err
	}
	if exists {
		return assigned{}, gatehouse.AlreadyExists(rec.Kind, rec.ID)
	}
	if err := checkTargets(ctx, tx, rec); err != nil {
		return assigned{}, err
	}
	keys := rec.DistinctKeys()
	if err := checkUnique(ctx, tx, rec.Kind, keys, 0); err != nil {
		return assigned{}, err
	}
	version, err := nextVersion(ctx, tx)
	if err != nil {
		return assigned{}, err
	}
	seq, err := insertRecord(ctx, tx, rec, version, now)
	if err != nil {
		return assigned{}, err
	}
	if err := insertRefs(ctx, tx, seq, rec.DistinctRefs()); err != nil {
		return assigned{}, err
	}
	if err := insertUnique(ctx, tx, rec.Kind, seq, keys); err != nil {
		return assigned{}, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM tombstones WHERE kind = ? AND id = ?`, rec.Kind, rec.ID); err != nil {
		return assigned{}, err
	}
	return assigned{version: version, created: now, updated: now}, nil
}

// Get returns the record kind/id.
func (s *DB) Get(ctx context.Context, kind gatehouse.Kind, id string) (*gatehouse.Record, error) {
	var rec *gatehouse.Record
	err := s.read(ctx, func(tx *sql.Tx) error {
		var err error
		rec, err = getRecord(ctx, tx, `kind = ? AND id = ?`, kind, id)
		if errors.Is(err, sql.ErrNoRows) {
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
	err := s.read(ctx, func(tx *sql.Tx) error {
		var err error
		rec, err = getRecord(ctx, tx,
			`seq = (SELECT owner_seq FROM unique_keys WHERE kind = ? AND key = ?)`, kind, key)
		if errors.Is(err, sql.ErrNoRows) {
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
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		a, err = s.updateTx(ctx, tx, rec, ifVersion, s.clock())
		return err
	})
	if err != nil {
		return err
	}
	a.put(rec)
	return nil
}

// updateTx is Update within tx, at time now.
func (s *DB) updateTx(ctx context.Context, tx querier, rec *gatehouse.Record, ifVersion int64, now time.Time) (assigned, error) {
	var seq, current, createdMicros int64
	err := tx.QueryRowContext(ctx,
		`SELECT seq, version, created_at FROM records WHERE kind = ? AND id = ?`,
		rec.Kind, rec.ID).Scan(&seq, &current, &createdMicros)
	if errors.Is(err, sql.ErrNoRows) {
		return assigned{}, s.missing(ctx, tx, rec.Kind, rec.ID)
	}
	if err != nil {
		return assigned{}, err
	}
	if current != ifVersion {
		return assigned{}, gatehouse.Stale(rec.Kind, rec.ID, current, ifVersion)
	}
	if err := checkTargets(ctx, tx, rec); err != nil {
		return assigned{}, err
	}
	keys := rec.DistinctKeys()
	if err := checkUnique(ctx, tx, rec.Kind, keys, seq); err != nil {
		return assigned{}, err
	}
	version, err := nextVersion(ctx, tx)
	if err != nil {
		return assigned{}, err
	}
	// The version condition repeats the check above in the write itself,
	// so that the check cannot be separated from the write even if the
	// locking around it ever changes.
	if err := updateRecord(ctx, tx, seq, ifVersion, rec, version, now); err != nil {
		return assigned{}, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM record_refs WHERE record_seq = ?`, seq); err != nil {
		return assigned{}, err
	}
	if err := insertRefs(ctx, tx, seq, rec.DistinctRefs()); err != nil {
		return assigned{}, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM unique_keys WHERE owner_seq = ?`, seq); err != nil {
		return assigned{}, err
	}
	if err := insertUnique(ctx, tx, rec.Kind, seq, keys); err != nil {
		return assigned{}, err
	}
	return assigned{version: version, created: fromMicros(createdMicros), updated: now}, nil
}

// Delete removes kind/id and, recursively, every record whose Parent it
// is, leaving a tombstone for each.
func (s *DB) Delete(ctx context.Context, kind gatehouse.Kind, id string, ifVersion int64) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		now := s.clock()
		if err := s.deleteTx(ctx, tx, kind, id, ifVersion, now); err != nil {
			return err
		}
		return s.purgeTombstones(ctx, tx, now)
	})
}

// deleteTx is Delete within tx, at time now, except for purging old
// tombstones, which a transaction needs to do once however much it
// deletes.
func (s *DB) deleteTx(ctx context.Context, tx querier, kind gatehouse.Kind, id string, ifVersion int64, now time.Time) error {
	var current int64
	err := tx.QueryRowContext(ctx,
		`SELECT version FROM records WHERE kind = ? AND id = ?`, kind, id).Scan(&current)
	if errors.Is(err, sql.ErrNoRows) {
		return s.missing(ctx, tx, kind, id)
	}
	if err != nil {
		return err
	}
	if ifVersion != 0 && current != ifVersion {
		return gatehouse.Stale(kind, id, current, ifVersion)
	}
	doomed, err := subtree(ctx, tx, kind, id)
	if err != nil {
		return err
	}
	if err := checkUnused(ctx, tx, doomed); err != nil {
		return err
	}
	return deleteRecords(ctx, tx, doomed, now)
}

// List returns a page of kind's records in creation order.
func (s *DB) List(ctx context.Context, kind gatehouse.Kind, opts gatehouse.ListOptions) (*gatehouse.Page, error) {
	limit := gatehouse.PageLimit(opts.Limit)

	where := []string{`kind = ?`, `seq > ?`}
	args := []any{kind, max(opts.After, 0)}
	if f := opts.Filter; f.Name != "" {
		where = append(where, `name = ?`)
		args = append(args, f.Name)
	}
	if f := opts.Filter; f.ParentID != "" {
		where = append(where, `parent_id = ?`)
		args = append(args, f.ParentID)
	}
	if f := opts.Filter; f.RefID != "" && f.RefKind != "" {
		where = append(where, `EXISTS (SELECT 1 FROM record_refs WHERE record_seq = records.seq AND ref_kind = ? AND ref_id = ?)`)
		args = append(args, string(f.RefKind), f.RefID)
	} else if f.RefID != "" {
		where = append(where, `EXISTS (SELECT 1 FROM record_refs WHERE record_seq = records.seq AND ref_id = ?)`)
		args = append(args, f.RefID)
	}
	// One more than the page, to know whether there is a next page
	// without a second query.
	args = append(args, limit+1)
	query := `SELECT ` + recordColumns + ` FROM records WHERE ` +
		strings.Join(where, ` AND `) + ` ORDER BY seq LIMIT ?`

	page := &gatehouse.Page{}
	err := s.read(ctx, func(tx *sql.Tx) error {
		recs, seqs, err := queryRecords(ctx, tx, query, args...)
		if err != nil {
			return err
		}
		if len(recs) > limit {
			recs, seqs = recs[:limit], seqs[:limit]
			page.Next = seqs[limit-1]
		}
		page.Records = recs
		return loadDetails(ctx, tx, recs, seqs)
	})
	if err != nil {
		return nil, err
	}
	return page, nil
}

// Snapshot reads every record of kinds in one read transaction.
func (s *DB) Snapshot(ctx context.Context, kinds ...gatehouse.Kind) (map[gatehouse.Kind][]*gatehouse.Record, error) {
	out := make(map[gatehouse.Kind][]*gatehouse.Record, len(kinds))
	err := s.read(ctx, func(tx *sql.Tx) error {
		for _, kind := range kinds {
			recs, seqs, err := queryRecords(ctx, tx,
				`SELECT `+recordColumns+` FROM records WHERE kind = ? ORDER BY seq`, kind)
			if err != nil {
				return err
			}
			if err := loadDetails(ctx, tx, recs, seqs); err != nil {
				return err
			}
			out[kind] = recs
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
	if err := s.Damaged(); err != nil {
		return 0, err
	}
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM records WHERE kind = ?`, kind).Scan(&n)
	if err != nil {
		return 0, s.classify(ctx, err)
	}
	return n, nil
}

// missing explains why kind/id is not there: EGONE if it was deleted within
// the retention, ENOTFOUND otherwise.
func (s *DB) missing(ctx context.Context, tx querier, kind gatehouse.Kind, id string) error {
	cutoff := toMicros(s.clock().Add(-s.retention))
	var gone bool
	err := tx.QueryRowContext(ctx,
		`SELECT EXISTS (SELECT 1 FROM tombstones WHERE kind = ? AND id = ? AND deleted_at > ?)`,
		kind, id, cutoff).Scan(&gone)
	if err != nil {
		return err
	}
	return gatehouse.Missing(kind, id, gone)
}

// purgeTombstones forgets deletions older than the retention. Get already
// ignores them; this only keeps the table small.
func (s *DB) purgeTombstones(ctx context.Context, tx querier, now time.Time) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM tombstones WHERE deleted_at <= ?`,
		toMicros(now.Add(-s.retention)))
	return err
}

func recordExists(ctx context.Context, tx querier, kind gatehouse.Kind, id string) (bool, error) {
	var ok bool
	err := tx.QueryRowContext(ctx,
		`SELECT EXISTS (SELECT 1 FROM records WHERE kind = ? AND id = ?)`, kind, id).Scan(&ok)
	return ok, err
}

// checkTargets fails with EUNPROCESSABLE unless rec's parent and every
// record it refers to exist. The store does not know which request field
// holds a reference, so the message names the reference and Fields stays
// empty; the domain checks references by field before it gets here.
func checkTargets(ctx context.Context, tx querier, rec *gatehouse.Record) error {
	targets := rec.Refs
	if rec.Parent != nil {
		targets = append([]gatehouse.Ref{*rec.Parent}, targets...)
	}
	for _, ref := range targets {
		ok, err := recordExists(ctx, tx, ref.Kind, ref.ID)
		if err != nil {
			return err
		}
		if !ok {
			return gatehouse.MissingRef(ref)
		}
	}
	return nil
}

// checkUnique fails with ECONFLICT if any of keys is held by a record of
// kind other than the one at seq (0 for a record not yet written).
func checkUnique(ctx context.Context, tx querier, kind gatehouse.Kind, keys []string, seq int64) error {
	for _, key := range keys {
		var owner string
		err := tx.QueryRowContext(ctx,
			`SELECT r.id FROM unique_keys k JOIN records r ON r.seq = k.owner_seq
			 WHERE k.kind = ? AND k.key = ? AND k.owner_seq <> ?`,
			kind, key, seq).Scan(&owner)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return err
		}
		return gatehouse.KeyTaken(kind, key, owner)
	}
	return nil
}

// nextVersion takes the next value of the store-wide version sequence.
func nextVersion(ctx context.Context, tx querier) (int64, error) {
	var v int64
	err := tx.QueryRowContext(ctx,
		`UPDATE sequence SET value = value + 1 WHERE id = 1 RETURNING value`).Scan(&v)
	return v, err
}

func insertRecord(ctx context.Context, tx querier, rec *gatehouse.Record, version int64, now time.Time) (int64, error) {
	pk, pid := parentColumns(rec.Parent)
	var seq int64
	err := tx.QueryRowContext(ctx,
		`INSERT INTO records (kind, id, version, created_at, updated_at, name, parent_kind, parent_id, secret, body)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`,
		rec.Kind, rec.ID, version, toMicros(now), toMicros(now), rec.Name, pk, pid,
		rec.StoredSecret(), rec.Body).Scan(&seq)
	return seq, err
}

func updateRecord(ctx context.Context, tx querier, seq, ifVersion int64, rec *gatehouse.Record, version int64, now time.Time) error {
	pk, pid := parentColumns(rec.Parent)
	res, err := tx.ExecContext(ctx,
		`UPDATE records SET version = ?, updated_at = ?, name = ?, parent_kind = ?, parent_id = ?, secret = ?, body = ?
		 WHERE seq = ? AND version = ?`,
		version, toMicros(now), rec.Name, pk, pid, rec.StoredSecret(), rec.Body, seq, ifVersion)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n != 1 {
		return gatehouse.Stale(rec.Kind, rec.ID, 0, ifVersion)
	}
	return nil
}

func insertRefs(ctx context.Context, tx querier, seq int64, refs []gatehouse.Ref) error {
	for i, ref := range refs {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO record_refs (record_seq, pos, ref_kind, ref_id) VALUES (?, ?, ?, ?)`,
			seq, i, ref.Kind, ref.ID); err != nil {
			return err
		}
	}
	return nil
}

func insertUnique(ctx context.Context, tx querier, kind gatehouse.Kind, seq int64, keys []string) error {
	for i, key := range keys {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO unique_keys (kind, key, owner_seq, pos) VALUES (?, ?, ?, ?)`,
			kind, key, seq, i); err != nil {
			return err
		}
	}
	return nil
}

// node is a record about to be deleted.
type node struct {
	seq  int64
	kind gatehouse.Kind
	id   string
}

// subtree returns kind/id and all its descendants by Parent. UNION (not
// UNION ALL) makes it terminate even if parents were ever made to form a
// cycle.
func subtree(ctx context.Context, tx querier, kind gatehouse.Kind, id string) ([]node, error) {
	rows, err := tx.QueryContext(ctx, `
		WITH RECURSIVE doomed (seq, kind, id) AS (
			SELECT seq, kind, id FROM records WHERE kind = ? AND id = ?
			UNION
			SELECT r.seq, r.kind, r.id FROM records r
			JOIN doomed d ON r.parent_kind = d.kind AND r.parent_id = d.id
		)
		SELECT seq, kind, id FROM doomed ORDER BY seq`, kind, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var nodes []node
	for rows.Next() {
		var n node
		if err := rows.Scan(&n.seq, &n.kind, &n.id); err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	return nodes, rows.Err()
}

// checkUnused fails with ECONFLICT if a record outside doomed refers to a
// record in it. References from within doomed (a child using its parent)
// go away with the delete and do not count.
func checkUnused(ctx context.Context, tx querier, doomed []node) error {
	inSet := make(map[int64]bool, len(doomed))
	for _, n := range doomed {
		inSet[n.seq] = true
	}
	for _, n := range doomed {
		rows, err := tx.QueryContext(ctx,
			`SELECT r.seq, r.kind, r.id FROM record_refs f JOIN records r ON r.seq = f.record_seq
			 WHERE f.ref_kind = ? AND f.ref_id = ? ORDER BY r.seq`, n.kind, n.id)
		if err != nil {
			return err
		}
		var user *node
		for rows.Next() {
			var u node
			if err := rows.Scan(&u.seq, &u.kind, &u.id); err != nil {
				rows.Close()
				return err
			}
			if !inSet[u.seq] {
				user = &u
				break
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if user != nil {
			return gatehouse.InUse(gatehouse.Ref{Kind: n.kind, ID: n.id}, gatehouse.Ref{Kind: user.kind, ID: user.id})
		}
	}
	return nil
}

// deleteRecords deletes doomed with their refs and keys, and tombstones
// each.
func deleteRecords(ctx context.Context, tx querier, doomed []node, now time.Time) error {
	for _, n := range doomed {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO tombstones (kind, id, deleted_at) VALUES (?, ?, ?)
			 ON CONFLICT (kind, id) DO UPDATE SET deleted_at = excluded.deleted_at`,
			n.kind, n.id, toMicros(now)); err != nil {
			return err
		}
	}
	// Refs and keys go first, then the records in one statement, so that
	// the foreign keys between doomed records are only checked once they
	// are all gone.
	for _, n := range doomed {
		if _, err := tx.ExecContext(ctx, `DELETE FROM record_refs WHERE record_seq = ?`, n.seq); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM unique_keys WHERE owner_seq = ?`, n.seq); err != nil {
			return err
		}
	}
	seqs := make([]any, len(doomed))
	for i, n := range doomed {
		seqs[i] = n.seq
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM records WHERE seq IN (`+placeholders(len(seqs))+`)`, seqs...)
	return err
}

// recordColumns are the records columns scanRecord reads, in its order.
const recordColumns = `seq, kind, id, version, created_at, updated_at, name, parent_kind, parent_id, secret, body`

// getRecord reads the one record matching where, with its refs and keys,
// or sql.ErrNoRows.
func getRecord(ctx context.Context, tx querier, where string, args ...any) (*gatehouse.Record, error) {
	recs, seqs, err := queryRecords(ctx, tx, `SELECT `+recordColumns+` FROM records WHERE `+where, args...)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, sql.ErrNoRows
	}
	if err := loadDetails(ctx, tx, recs, seqs); err != nil {
		return nil, err
	}
	return recs[0], nil
}

// queryRecords runs a query selecting recordColumns and returns the
// records, without refs and keys, and their seqs.
func queryRecords(ctx context.Context, tx querier, query string, args ...any) ([]*gatehouse.Record, []int64, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
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
			created, updated int64
			pk, pid          sql.NullString
		)
		if err := rows.Scan(&seq, &rec.Kind, &rec.ID, &rec.Version, &created, &updated,
			&rec.Name, &pk, &pid, &rec.Secret, &rec.Body); err != nil {
			return nil, nil, err
		}
		rec.CreatedAt, rec.UpdatedAt = fromMicros(created), fromMicros(updated)
		if pk.Valid {
			rec.Parent = &gatehouse.Ref{Kind: gatehouse.Kind(pk.String), ID: pid.String}
		}
		recs = append(recs, &rec)
		seqs = append(seqs, seq)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	return recs, seqs, nil
}

// loadDetails fills in Refs and Unique of recs (whose seqs are seqs) with
// one query each, in the order they were written.
func loadDetails(ctx context.Context, tx querier, recs []*gatehouse.Record, seqs []int64) error {
	if len(recs) == 0 {
		return nil
	}
	bySeq := make(map[int64]*gatehouse.Record, len(recs))
	args := make([]any, len(seqs))
	for i, seq := range seqs {
		bySeq[seq] = recs[i]
		args[i] = seq
	}
	in := placeholders(len(args))

	rows, err := tx.QueryContext(ctx,
		`SELECT record_seq, ref_kind, ref_id FROM record_refs WHERE record_seq IN (`+in+`) ORDER BY record_seq, pos`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var ref gatehouse.Ref
		if err := rows.Scan(&seq, &ref.Kind, &ref.ID); err != nil {
			return err
		}
		rec := bySeq[seq]
		rec.Refs = append(rec.Refs, ref)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	rows.Close()

	rows, err = tx.QueryContext(ctx,
		`SELECT owner_seq, key FROM unique_keys WHERE owner_seq IN (`+in+`) ORDER BY owner_seq, pos`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var key string
		if err := rows.Scan(&seq, &key); err != nil {
			return err
		}
		rec := bySeq[seq]
		rec.Unique = append(rec.Unique, key)
	}
	return rows.Err()
}

// placeholders returns "?, ?, ..." with n question marks.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func parentColumns(p *gatehouse.Ref) (kind, id sql.NullString) {
	if p == nil {
		return kind, id
	}
	return sql.NullString{String: string(p.Kind), Valid: true}, sql.NullString{String: p.ID, Valid: true}
}

func toMicros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }
