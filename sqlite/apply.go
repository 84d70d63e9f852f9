package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Apply makes every change in one write transaction, in order, with the
// same functions as Create, Update and Delete. SQLite runs one write
// transaction at a time (see DB.write), so the draft the ifDraft check
// reads stays as it was read until the batch commits: no other writer can
// come between the check and the changes.
func (s *DB) Apply(ctx context.Context, changes []gatehouse.Change, ifDraft string) error {
	return s.apply(ctx, changes, ifDraft, false)
}

// Try judges a batch exactly as Apply does, in the same transaction, and
// then rolls it back.
func (s *DB) Try(ctx context.Context, changes []gatehouse.Change, ifDraft string) error {
	return s.apply(ctx, changes, ifDraft, true)
}

// apply is Apply, or with rollback Try: every change made, then undone.
func (s *DB) apply(ctx context.Context, changes []gatehouse.Change, ifDraft string, rollback bool) error {
	var done []assigned
	err := s.write(ctx, func(sqlTx *sql.Tx) error {
		tx := newStmtCache(sqlTx)
		now := s.clock()
		if ifDraft != "" {
			tag, err := draftTag(ctx, tx)
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
			var err error
			done[i], err = s.change(ctx, tx, c, now)
			if err != nil {
				return gatehouse.ChangeFailed(i, err)
			}
			deleted = deleted || c.Op == gatehouse.OpDelete
		}
		if rollback {
			return errRollback
		}
		if deleted {
			return s.purgeTombstones(ctx, tx, now)
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

// change makes one change of a batch within tx.
func (s *DB) change(ctx context.Context, tx querier, c gatehouse.Change, now time.Time) (assigned, error) {
	if c.Record == nil {
		return assigned{}, gatehouse.Internal(errors.New("sqlite: Apply: a change without a record"))
	}
	switch c.Op {
	case gatehouse.OpCreate:
		return s.createTx(ctx, tx, c.Record, now)
	case gatehouse.OpUpdate:
		return s.updateTx(ctx, tx, c.Record, c.IfVersion, now)
	case gatehouse.OpDelete:
		return assigned{}, s.deleteTx(ctx, tx, c.Record.Kind, c.Record.ID, c.IfVersion, now)
	}
	return assigned{}, gatehouse.Internal(fmt.Errorf("sqlite: Apply: unknown op %q", c.Op))
}

// DraftTag returns the DraftTag of the draft kinds, read in one snapshot.
func (s *DB) DraftTag(ctx context.Context) (string, error) {
	var tag string
	err := s.read(ctx, func(tx *sql.Tx) error {
		var err error
		tag, err = draftTag(ctx, tx)
		return err
	})
	if err != nil {
		return "", err
	}
	return tag, nil
}

// draftTag computes the DraftTag from the stamps of every draft record
// within tx.
func draftTag(ctx context.Context, tx querier) (string, error) {
	kinds := make([]any, len(gatehouse.DraftKinds))
	for i, k := range gatehouse.DraftKinds {
		kinds[i] = string(k)
	}
	rows, err := tx.QueryContext(ctx,
		`SELECT kind, id, version FROM records WHERE kind IN (`+placeholders(len(kinds))+`)`, kinds...)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var stamps []gatehouse.Stamp
	for rows.Next() {
		var st gatehouse.Stamp
		if err := rows.Scan(&st.Kind, &st.ID, &st.Version); err != nil {
			return "", err
		}
		stamps = append(stamps, st)
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	return gatehouse.DraftTag(stamps), nil
}
