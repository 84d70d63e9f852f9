//go:build unix

package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TestApplyCheckingTheDraftWaitsForDraftWritesInFlight holds a single
// write midway (blocked on a row lock another session holds) while an
// Apply with ifDraft starts. A write of the draft has already taken the
// draft lock: the Apply waits for it to commit, then finds the draft
// changed. Without that lock the Apply would read the tag before the
// write commits and both would succeed, the write unseen. A write of
// another kind (a node's heartbeat) does not hold the Apply up.
func TestApplyCheckingTheDraftWaitsForDraftWritesInFlight(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc      string
		kind      gatehouse.Kind
		wantApply gatehouse.Code // "" for success
	}{
		{"an update of a service", gatehouse.KindService, gatehouse.EPRECONDITION},
		{"an update of a node", gatehouse.KindNode, ""},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			dsn := newDatabase(t)
			db := openTest(t, dsn, Options{})
			held := &gatehouse.Record{Kind: tc.kind, ID: "held", Body: []byte(`{}`)}
			if err := db.Create(ctx, held); err != nil {
				t.Fatal(err)
			}
			tag, err := db.DraftTag(ctx)
			if err != nil {
				t.Fatal(err)
			}

			other, err := pgxpool.New(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			tx, err := other.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(context.Background())
			if _, err := tx.Exec(ctx, `SELECT 1 FROM records WHERE kind = $1 AND id = 'held' FOR UPDATE`, string(tc.kind)); err != nil {
				t.Fatal(err)
			}

			written := make(chan error, 1)
			go func() { written <- db.Update(ctx, held, held.Version) }()
			waitForLockWaiters(t, other, 1)

			applied := make(chan error, 1)
			go func() {
				applied <- db.Apply(ctx, []gatehouse.Change{{Op: gatehouse.OpCreate, Record: svc("new")}}, tag)
			}()
			if tc.wantApply == "" {
				// It does not wait for the write, which is still held.
				select {
				case err := <-applied:
					if err != nil {
						t.Fatalf("Apply while %s is in flight: got %v; want success", tc.desc, err)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("Apply while %s is in flight: still waiting after 10s; want it not to wait for the write", tc.desc)
				}
				tx.Rollback(ctx)
				if err := <-written; err != nil {
					t.Fatalf("%s: got %v; want success", tc.desc, err)
				}
				return
			}
			select {
			case err := <-applied:
				t.Fatalf("Apply while %s is in flight: got %v before the write finished; want it to wait", tc.desc, err)
			case <-time.After(200 * time.Millisecond):
			}
			tx.Rollback(ctx)
			if err := <-written; err != nil {
				t.Fatalf("%s: got %v; want success", tc.desc, err)
			}
			err = <-applied
			if code := gatehouse.ErrorCode(err); code != tc.wantApply {
				t.Fatalf("Apply after %s committed: got %v; want %s", tc.desc, err, tc.wantApply)
			}
			if _, err := db.Get(ctx, gatehouse.KindService, "new"); gatehouse.ErrorCode(err) != gatehouse.ENOTFOUND {
				t.Errorf("Get of the refused Apply's service: got %v; want %s", err, gatehouse.ENOTFOUND)
			}
		})
	}
}

// waitForLockWaiters waits until n sessions of pool's database wait for a
// lock.
func waitForLockWaiters(t *testing.T, pool *pgxpool.Pool, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var waiting int
		if err := pool.QueryRow(t.Context(), `SELECT COUNT(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting >= n {
			return
		}
	}
	t.Fatalf("got fewer than %d sessions waiting for a lock after 10s", n)
}

// TestApplyRetriesAfterItsSessionEnded ends every session of the store's
// pool (as a server restart or failover does) before a batch: the batch
// runs again whole on a fresh connection, its draft check included.
func TestApplyRetriesAfterItsSessionEnded(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := newDatabase(t)
	db := openTest(t, dsn, Options{})
	if err := db.Create(ctx, svc("s1")); err != nil {
		t.Fatal(err)
	}
	tag, err := db.DraftTag(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ended int
	if err := admin.QueryRow(ctx, `SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = $1`, dsn[strings.LastIndex(dsn, "/")+1:strings.Index(dsn, "?")]).Scan(&ended); err != nil {
		t.Fatal(err)
	}
	if ended == 0 {
		t.Fatal("terminated no session; want the store's")
	}
	time.Sleep(50 * time.Millisecond) // let the server finish ending them

	changes := []gatehouse.Change{
		{Op: gatehouse.OpCreate, Record: svc("s2")},
		{Op: gatehouse.OpCreate, Record: &gatehouse.Record{Kind: gatehouse.KindRoute, ID: "r1", Body: []byte(`{}`),
			Refs: []gatehouse.Ref{{Kind: gatehouse.KindService, ID: "s2"}}}},
		{Op: gatehouse.OpDelete, Record: svc("s1")},
	}
	if err := db.Apply(ctx, changes, tag); err != nil {
		t.Fatalf("Apply after its sessions were ended: got %v; want success on a fresh connection", err)
	}
	for _, c := range changes[:2] {
		if _, err := db.Get(ctx, c.Record.Kind, c.Record.ID); err != nil {
			t.Errorf("Get(%s/%s) after Apply: got %v; want success", c.Record.Kind, c.Record.ID, err)
		}
	}
	if _, err := db.Get(ctx, gatehouse.KindService, "s1"); gatehouse.ErrorCode(err) != gatehouse.EGONE {
		t.Errorf("Get(s1) after Apply deleted it: got %v; want %s", err, gatehouse.EGONE)
	}
}
