package deploy

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/sqlite"
)

// applier records the revisions it is given.
type applier struct {
	mu      sync.Mutex
	applied []int64 // revision numbers; 0 for the empty configuration
}

func (a *applier) Apply(ctx context.Context, rev *gatehouse.Revision) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := int64(0)
	if rev != nil {
		n = rev.Number
	}
	a.applied = append(a.applied, n)
	return nil
}

func (a *applier) numbers() []int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]int64(nil), a.applied...)
}

func open(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func run(t *testing.T, d *Deployer) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// waitState polls a deployment until it reaches a final state.
func waitState(t *testing.T, store gatehouse.Store, id string) *gatehouse.Deployment {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rec, err := store.Get(context.Background(), gatehouse.KindDeployment, id)
		if err != nil {
			t.Fatal(err)
		}
		dep := gatehouse.NewDeployment()
		if err := gatehouse.Decode(rec, dep); err != nil {
			t.Fatal(err)
		}
		if dep.State == gatehouse.StateSucceeded || dep.State == gatehouse.StateFailed {
			return dep
		}
		if time.Now().After(deadline) {
			t.Fatalf("deployment %s still %s", id, dep.State)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runNode starts n as the binary does and runs it until the test ends.
func runNode(t *testing.T, n *Node) bool {
	t.Helper()
	served, err := n.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return served
}

func TestARestartedNodeServesTheActiveRevisionBeforeAnythingElse(t *testing.T) {
	path := t.TempDir() + "/g.db"
	db := open(t, path)
	first := &applier{}
	n := NewNode(db, first, quiet, NodeOptions{Name: "n"})
	if served := runNode(t, n); served {
		t.Fatal("Start on a new store: serving; want nothing to serve")
	}
	for _, action := range []string{gatehouse.ActionDeploy, gatehouse.ActionDeploy, gatehouse.ActionRollback} {
		dep := &gatehouse.Deployment{Action: action}
		if action == gatehouse.ActionRollback {
			dep.Revision = 1
		}
		if err := n.Deployer.Create(context.Background(), dep); err != nil {
			t.Fatal(err)
		}
		if got := waitState(t, db, dep.ID); got.State != gatehouse.StateSucceeded {
			t.Fatalf("%s: %s %s", action, got.State, got.Reason)
		}
	}
	if got := first.numbers(); len(got) != 3 || got[2] != 1 {
		t.Fatalf("applied %v; want [1 2 1]", got)
	}

	// A new process on the same store serves revision 1 again at once.
	second := &applier{}
	served, err := NewNode(open(t, path), second, quiet, NodeOptions{Name: "n"}).Start(context.Background())
	if !served || err != nil || len(second.numbers()) != 1 || second.numbers()[0] != 1 {
		t.Fatalf("Start: %v, %v, applied %v; want revision 1", served, err, second.numbers())
	}
}

func TestDeploymentsLeftPendingByACrashAreAppliedOnStart(t *testing.T) {
	db := open(t, t.TempDir()+"/g.db")
	// Created, but no Run: as if the process died right after answering 202.
	crashed := NewNode(db, &applier{}, quiet, NodeOptions{Name: "n"})
	dep := &gatehouse.Deployment{Action: gatehouse.ActionUndeploy}
	if err := crashed.Deployer.Create(context.Background(), dep); err != nil {
		t.Fatal(err)
	}
	a := &applier{}
	runNode(t, NewNode(db, a, quiet, NodeOptions{Name: "n"}))
	if got := waitState(t, db, dep.ID); got.State != gatehouse.StateSucceeded {
		t.Fatalf("got %s; want succeeded", got.State)
	}
	if got := a.numbers(); len(got) != 1 || got[0] != 0 {
		t.Fatalf("applied %v; want the empty configuration once", got)
	}
}

func TestRollbackToAMissingRevisionIsUnprocessable(t *testing.T) {
	db := open(t, t.TempDir()+"/g.db")
	err := NewCluster(db, quiet, ClusterOptions{}).Create(context.Background(), &gatehouse.Deployment{Action: gatehouse.ActionRollback, Revision: 9})
	if gatehouse.ErrorCode(err) != gatehouse.EUNPROCESSABLE {
		t.Fatalf("got %v; want EUNPROCESSABLE", err)
	}
	if n, _ := db.Count(context.Background(), gatehouse.KindDeployment); n != 0 {
		t.Fatalf("%d deployments stored by a refused request", n)
	}
}

func TestARefusedChangeIsListedAsFailedAndTheActiveRevisionKeepsServing(t *testing.T) {
	db := open(t, t.TempDir()+"/g.db")
	a := &applier{}
	n := NewNode(db, a, quiet, NodeOptions{Name: "n"})
	runNode(t, n)
	good := &gatehouse.Deployment{Action: gatehouse.ActionDeploy}
	if err := n.Deployer.Create(context.Background(), good); err != nil {
		t.Fatal(err)
	}
	if got := waitState(t, db, good.ID); got.State != gatehouse.StateSucceeded {
		t.Fatalf("deploy: %s %s", got.State, got.Reason)
	}
	refused, err := n.Deployer.Refuse(context.Background(), "routes.yaml:3:7: /routes/0/paths/0: must start with '/'")
	if err != nil {
		t.Fatal(err)
	}
	// Notify as a create would; a refused deployment must not be taken up.
	n.Deployer.Notify()
	got := waitState(t, db, refused.ID)
	if got.State != gatehouse.StateFailed || got.Reason != refused.Reason || got.Revision != 0 || got.FinishedAt == nil {
		t.Fatalf("refused deployment reads %+v; want failed with its reason, no revision, finished", got)
	}
	later := &gatehouse.Deployment{Action: gatehouse.ActionDeploy}
	if err := n.Deployer.Create(context.Background(), later); err != nil {
		t.Fatal(err)
	}
	if got := waitState(t, db, later.ID); got.State != gatehouse.StateSucceeded {
		t.Fatalf("deploy after the refusal: %s %s", got.State, got.Reason)
	}
	if got := a.numbers(); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("applied %v; want [1 2]: the refusal applies nothing", got)
	}
}
