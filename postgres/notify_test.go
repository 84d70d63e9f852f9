package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// next waits for the next kind on ch, or fails after 10 s.
func next(t *testing.T, ch <-chan gatehouse.Kind) gatehouse.Kind {
	t.Helper()
	select {
	case k, ok := <-ch:
		if !ok {
			t.Fatal("subscription closed")
		}
		return k
	case <-time.After(10 * time.Second):
		t.Fatal("no notification within 10s")
		return ""
	}
}

func TestSubscribeHearsCommittedWritesOfTheKindsNodesWaitOn(t *testing.T) {
	db := openTest(t, newDatabase(t), Options{})
	ctx, cancel := context.WithCancel(t.Context())
	ch := db.Subscribe(ctx)
	if k := next(t, ch); k != "" {
		t.Fatalf("first signal: got %q; want \"\" (listening: look now)", k)
	}
	// A service write says nothing; the active record and nodes do.
	if err := db.Create(ctx, svc("s1")); err != nil {
		t.Fatal(err)
	}
	active := &gatehouse.Record{Kind: gatehouse.KindActive, ID: gatehouse.ActiveID, Body: []byte(`{}`)}
	if err := db.Create(ctx, active); err != nil {
		t.Fatal(err)
	}
	if k := next(t, ch); k != gatehouse.KindActive {
		t.Fatalf("got %q; want %q (and nothing for the service)", k, gatehouse.KindActive)
	}
	node := &gatehouse.Record{Kind: gatehouse.KindNode, ID: "edge-1", Body: []byte(`{"last_seen":"1","revision":1}`)}
	if err := db.Create(ctx, node); err != nil {
		t.Fatal(err)
	}
	if k := next(t, ch); k != gatehouse.KindNode {
		t.Fatalf("got %q; want %q", k, gatehouse.KindNode)
	}
	// A heartbeat (only last_seen moves) says nothing; a report does.
	heartbeat := &gatehouse.Record{Kind: gatehouse.KindNode, ID: "edge-1", Body: []byte(`{"last_seen":"2","revision":1}`)}
	if err := db.Update(ctx, heartbeat, node.Version); err != nil {
		t.Fatal(err)
	}
	if err := db.Delete(ctx, gatehouse.KindActive, gatehouse.ActiveID, 0); err != nil {
		t.Fatal(err)
	}
	if k := next(t, ch); k != gatehouse.KindActive {
		t.Fatalf("after a heartbeat and a delete: got %q; want %q (and nothing for the heartbeat)", k, gatehouse.KindActive)
	}
	report := &gatehouse.Record{Kind: gatehouse.KindNode, ID: "edge-1", Body: []byte(`{"last_seen":"3","revision":2}`)}
	if err := db.Update(ctx, report, heartbeat.Version); err != nil {
		t.Fatal(err)
	}
	if k := next(t, ch); k != gatehouse.KindNode {
		t.Fatalf("after a node's report: got %q; want %q", k, gatehouse.KindNode)
	}
	cancel()
	for range ch {
	}
}

func TestSubscribeRecoversFromALostConnection(t *testing.T) {
	dsn := newDatabase(t)
	db := openTest(t, dsn, Options{})
	ch := db.Subscribe(t.Context())
	next(t, ch)
	// End every session of the database but ours: the listener's too.
	if _, err := db.pool.Exec(t.Context(),
		`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	// It says it may have missed something, listens again, and hears.
	for k := next(t, ch); k != ""; k = next(t, ch) {
	}
	active := &gatehouse.Record{Kind: gatehouse.KindActive, ID: gatehouse.ActiveID, Body: []byte(`{}`)}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := db.Create(t.Context(), active); err != nil && gatehouse.ErrorCode(err) != gatehouse.ECONFLICT {
			t.Fatal(err)
		}
		select {
		case k := <-ch:
			if k == gatehouse.KindActive {
				return
			}
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no notification after the listener's connection was terminated")
		}
		db.Delete(t.Context(), gatehouse.KindActive, gatehouse.ActiveID, 0)
	}
}
