package deploy

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/sqlite"
)

// failingApplier refuses every revision but the empty configuration and
// those listed as good.
type failingApplier struct {
	applier
	good map[int64]bool
}

func (a *failingApplier) Apply(ctx context.Context, rev *gatehouse.Revision) error {
	if rev != nil && !a.good[rev.Number] {
		return errors.New("does not compile here")
	}
	return a.applier.Apply(ctx, rev)
}

var quiet = slog.New(slog.DiscardHandler)

// startAgent registers a data node on db and runs it until the test ends.
func startAgent(t *testing.T, db *sqlite.DB, name string, a gatehouse.Applier, d *Deployer) *Agent {
	t.Helper()
	ag := NewAgent(db, a, quiet, AgentOptions{Name: name, Role: gatehouse.RoleData, Heartbeat: 500 * time.Millisecond,
		Poll: 20 * time.Millisecond, OnReport: d.Progressed})
	if _, err := ag.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ag.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return ag
}

func deploy(t *testing.T, d *Deployer, db *sqlite.DB) *gatehouse.Deployment {
	t.Helper()
	dep := &gatehouse.Deployment{Action: gatehouse.ActionDeploy}
	if err := d.Create(context.Background(), dep); err != nil {
		t.Fatal(err)
	}
	return waitState(t, db, dep.ID)
}

func progress(dep *gatehouse.Deployment) string {
	var out []string
	for _, p := range dep.Nodes {
		out = append(out, p.Node+":"+p.State)
	}
	return strings.Join(out, " ")
}

// putNode writes a node record as a node that never follows would have.
func putNode(t *testing.T, db *sqlite.DB, name string, lastSeen time.Time) {
	t.Helper()
	rec, err := gatehouse.Encode(&gatehouse.Node{Meta: gatehouse.Meta{ID: name}, Role: gatehouse.RoleData,
		LastSeen: lastSeen, HeartbeatMS: time.Hour.Milliseconds()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Create(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
}

func TestClusterDeploymentSucceedsWhenEveryDataNodeApplies(t *testing.T) {
	db := open(t, t.TempDir()+"/g.db")
	d := NewCluster(db, quiet, ClusterOptions{Timeout: 10 * time.Second, Poll: 10 * time.Millisecond})
	a, b := &applier{}, &applier{}
	startAgent(t, db, "a", a, d)
	startAgent(t, db, "b", b, d)
	run(t, d)
	dep := deploy(t, d, db)
	if dep.State != gatehouse.StateSucceeded || progress(dep) != "a:applied b:applied" {
		t.Fatalf("got %s (%s), nodes %q; want succeeded, a and b applied", dep.State, dep.Reason, progress(dep))
	}
	for name, ap := range map[string]*applier{"a": a, "b": b} {
		if got := ap.numbers(); len(got) != 1 || got[0] != 1 {
			t.Fatalf("node %s applied %v; want [1]", name, got)
		}
		rec, err := db.Get(context.Background(), gatehouse.KindNode, name)
		if err != nil {
			t.Fatal(err)
		}
		var n gatehouse.Node
		gatehouse.Decode(rec, &n)
		if n.Revision != 1 || n.DeploymentID != dep.ID || n.ApplyError != "" {
			t.Fatalf("node %s reports %+v; want revision 1 of %s", name, n, dep.ID)
		}
	}
}

func TestClusterDeploymentFailsNamingTheNodeThatCouldNotApply(t *testing.T) {
	db := open(t, t.TempDir()+"/g.db")
	d := NewCluster(db, quiet, ClusterOptions{Timeout: 10 * time.Second, Poll: 10 * time.Millisecond})
	a := &applier{}
	b := &failingApplier{good: map[int64]bool{1: true}}
	startAgent(t, db, "a", a, d)
	startAgent(t, db, "b", b, d)
	run(t, d)
	if dep := deploy(t, d, db); dep.State != gatehouse.StateSucceeded {
		t.Fatalf("first deployment: %s %s", dep.State, dep.Reason)
	}
	dep := deploy(t, d, db)
	if dep.State != gatehouse.StateFailed || !strings.Contains(dep.Reason, "node b failed to apply revision 2: does not compile here") {
		t.Fatalf("got %s %q; want failed naming node b", dep.State, dep.Reason)
	}
	if strings.Contains(dep.Reason, "node a") {
		t.Fatalf("reason %q names node a, which applied", dep.Reason)
	}
	// Node a applied revision 2, then returns to revision 1 with the rest of
	// the cluster: the last good revision.
	deadline := time.Now().Add(5 * time.Second)
	for got := a.numbers(); len(got) != 3 || got[2] != 1; got = a.numbers() {
		if time.Now().After(deadline) {
			t.Fatalf("node a applied %v; want [1 2 1]", got)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := b.numbers(); len(got) != 1 || got[0] != 1 {
		t.Fatalf("node b applied %v; want [1]", got)
	}
	for _, p := range dep.Nodes {
		if (p.Node == "b") != (p.State == gatehouse.NodeFailed) || (p.Node == "b" && p.Error == "") {
			t.Fatalf("progress %+v; want a applied, b failed with its error", dep.Nodes)
		}
	}
}

func TestClusterDeploymentTimesOutNamingTheSilentNode(t *testing.T) {
	db := open(t, t.TempDir()+"/g.db")
	// Long enough for node a to apply on a loaded machine: the test waits
	// all of it for the silent node.
	d := NewCluster(db, quiet, ClusterOptions{Timeout: 3 * time.Second, Poll: 10 * time.Millisecond})
	startAgent(t, db, "a", &applier{}, d)
	putNode(t, db, "silent", time.Now()) // live, but never applies
	run(t, d)
	dep := deploy(t, d, db)
	if dep.State != gatehouse.StateFailed || !strings.Contains(dep.Reason, "node silent did not report") || progress(dep) != "a:applied silent:pending" {
		t.Fatalf("got %s %q, nodes %q; want a timeout naming node silent", dep.State, dep.Reason, progress(dep))
	}
	// The failure is recorded first, the revert follows.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := db.Get(context.Background(), gatehouse.KindActive, gatehouse.ActiveID)
		if gatehouse.ErrorCode(err) == gatehouse.EGONE {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("active record after the first deployment failed: %v; want none", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestClusterDeploymentDoesNotWaitForADownNode(t *testing.T) {
	db := open(t, t.TempDir()+"/g.db")
	d := NewCluster(db, quiet, ClusterOptions{Timeout: 10 * time.Second, Poll: 10 * time.Millisecond})
	startAgent(t, db, "a", &applier{}, d)
	putNode(t, db, "gone", time.Now().Add(-4*time.Hour)) // missed 3 heartbeats of 1h
	run(t, d)
	dep := deploy(t, d, db)
	if dep.State != gatehouse.StateSucceeded || progress(dep) != "a:applied" {
		t.Fatalf("got %s %q, nodes %q; want succeeded with only a", dep.State, dep.Reason, progress(dep))
	}
}

func TestAgentCatchesUpOnStart(t *testing.T) {
	db := open(t, t.TempDir()+"/g.db")
	d := NewCluster(db, quiet, ClusterOptions{Timeout: 10 * time.Second, Poll: 10 * time.Millisecond})
	startAgent(t, db, "a", &applier{}, d)
	run(t, d)
	deploy(t, d, db)
	late := &applier{}
	ag := NewAgent(db, late, quiet, AgentOptions{Name: "late", Role: gatehouse.RoleData})
	if served, err := ag.Start(context.Background()); !served || err != nil || len(late.numbers()) != 1 {
		t.Fatalf("Start: %v, %v, applied %v; want revision 1 at once", served, err, late.numbers())
	}
	if n := ag.Node(); n.Revision != 1 {
		t.Fatalf("late node reports revision %d; want 1", n.Revision)
	}
}

func TestOneControlNodeDrivesDeploymentsAndAnotherTakesOverWhenItStops(t *testing.T) {
	db := open(t, t.TempDir()+"/g.db")
	controls := map[string]*Deployer{}
	stops := map[string]func(){}
	for _, owner := range []string{"ctl-1", "ctl-2"} {
		d := NewCluster(db, quiet, ClusterOptions{Timeout: 10 * time.Second, Poll: 10 * time.Millisecond, Owner: owner, Lease: 300 * time.Millisecond})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { d.Run(ctx); close(done) }()
		controls[owner], stops[owner] = d, func() { cancel(); <-done }
		t.Cleanup(stops[owner])
	}
	startAgent(t, db, "a", &applier{}, controls["ctl-1"])
	owner := func() string {
		rec, err := db.Get(context.Background(), KindLease, leaseID)
		if err != nil {
			t.Fatal(err)
		}
		var l lease
		gatehouse.Decode(rec, &l)
		return l.Owner
	}
	if dep := deploy(t, controls["ctl-1"], db); dep.State != gatehouse.StateSucceeded {
		t.Fatalf("with two control nodes: got %s %q", dep.State, dep.Reason)
	}
	// The driver stops; its lease lapses; the other drives the next one.
	driver := owner()
	other := map[string]string{"ctl-1": "ctl-2", "ctl-2": "ctl-1"}[driver]
	stops[driver]()
	if dep := deploy(t, controls[other], db); dep.State != gatehouse.StateSucceeded {
		t.Fatalf("after the driver stopped: got %s %q", dep.State, dep.Reason)
	}
	if got := owner(); got != other {
		t.Fatalf("lease owner %q after %s stopped; want %s", got, driver, other)
	}
}
