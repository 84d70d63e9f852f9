package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/jackc/pgx/v5"
)

// Apply makes every change in one write transaction, in order, with the
// same functions as Create, Update and Delete, and so with their locks.
//
// With ifDraft, the transaction first takes draftLock exclusively, then
// reads the draft's tag. Every other write of a draft record holds the
// same lock in shared mode from before its first statement until it
// commits, so once the Apply holds it no such write is in flight: the tag
// it reads (each statement at READ COMMITTED sees every commit before it)
// is the draft as it stands, and stays so until the Apply commits. Of two
// Applies with the same ifDraft, the second to get the lock finds the tag
// changed by the first. Writes of other kinds (nodes, deployments) take
// no such lock and do not wait.
func (s *DB) Apply(ctx context.Context, changes []gatehouse.Change, ifDraft string) error {
	return s.apply(ctx, changes, ifDraft, false)
}

// Try judges a batch exactly as Apply does, in the same transaction and
// with the same locks, and then rolls it back.
func (s *DB) Try(ctx context.Context, changes []gatehouse.Change, ifDraft string) error {
	return s.apply(ctx, changes, ifDraft, true)
}

// apply is Apply, or with rollback Try: every change made, then undone.
func (s *DB) apply(ctx context.Context, changes []gatehouse.Change, ifDraft string, rollback bool) error {
	var done []assigned
	err := s.write(ctx, func(w *wtx) error {
		now := s.clock()
		if ifDraft != "" {
			if _, err := w.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, draftLock); err != nil {
				return err
			}
			w.draft = true
			tag, err := draftTag(ctx, w)
			if err != nil {
				return err
			}
			if tag != ifDraft {
				return gatehouse.DraftChanged(tag, ifDraft)
			}
		}
		done = make([]assigned, len(changes))
		deleted := false
		for i, c := range changes {
			if replanBefore(i) {
				if _, err := w.Exec(ctx, `DISCARD PLANS`); err != nil {
					return err
				}
			}
			var err error
			done[i], err = s.change(ctx, w, c, now)
			if err != nil {
				return gatehouse.ChangeFailed(i, err)
			}
			deleted = deleted || c.Op == gatehouse.OpDelete
		}
		if rollback {
			return errRollback
		}
		if deleted {
			return s.purgeTombstones(ctx, w, now)
		}
		return nil
	})
	if err != nil || rollback {
		return err
	}
	for i, c := range changes {
		if c.Op != gatehouse.OpDelete {
			done[i].put(c.Record)
		}
	}
	return nil
}

// replanBefore reports whether a batch drops the session's cached plans
// before its change i: at 64, 128, 256, ... changes.
//
// PostgreSQL plans a prepared statement (the store's, and those of its
// own foreign key checks) once for any parameters, from the tables as they
// were then, and keeps the plan until their statistics change. Made when
// the store was nearly empty, such a plan scans: a seq scan to find what
// a record refers to, every record of a kind to find one id. A batch
// grows the tables in its own transaction, which no ANALYZE sees, so each
// change would cost more than the last, O(n²) for the batch. Planned
// again at each doubling, the plans fit tables at least half their final
// size, at an amortised O(1) per change.
func replanBefore(i int) bool { return i >= 64 && i&(i-1) == 0 }

// change makes one change of a batch within w.
func (s *DB) change(ctx context.Context, w *wtx, c gatehouse.Change, now time.Time) (assigned, error) {
	if c.Record == nil {
		return assigned{}, gatehouse.Internal(errors.New("postgres: Apply: a change without a record"))
	}
	switch c.Op {
	case gatehouse.OpCreate:
		return s.createTx(ctx, w, c.Record, now)
	case gatehouse.OpUpdate:
		return s.updateTx(ctx, w, c.Record, c.IfVersion, now)
	case gatehouse.OpDelete:
		return assigned{}, s.deleteTx(ctx, w, c.Record.Kind, c.Record.ID, c.IfVersion, now)
	}
	return assigned{}, gatehouse.Internal(fmt.Errorf("postgres: Apply: unknown op %q", c.Op))
}

// DraftTag returns the DraftTag of the draft kinds, read by one statement
// and so from one snapshot.
func (s *DB) DraftTag(ctx context.Context) (string, error) {
	var tag string
	err := s.retry(ctx, func() error {
		var err error
		tag, err = draftTag(ctx, s.pool)
		return err
	})
	if err != nil {
		return "", err
	}
	return tag, nil
}

// draftTag computes the DraftTag from the stamps of every draft record.
func draftTag(ctx context.Context, q querier) (string, error) {
	kinds := make([]string, len(gatehouse.DraftKinds))
	for i, k := range gatehouse.DraftKinds {
		kinds[i] = string(k)
	}
	rows, err := q.Query(ctx, `SELECT kind, id, version FROM records WHERE kind = ANY($1)`, kinds)
	if err != nil {
		return "", err
	}
	stamps, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (gatehouse.Stamp, error) {
		var st gatehouse.Stamp
		var kind string
		err := row.Scan(&kind, &st.ID, &st.Version)
		st.Kind = gatehouse.Kind(kind)
		return st, err
	})
	if err != nil {
		return "", err
	}
	return gatehouse.DraftTag(stamps), nil
}
