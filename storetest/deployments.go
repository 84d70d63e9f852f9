package storetest

import (
	"context"
	"log/slog"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/deploy"
)

// The deployment model on the store: what the Deployer records in it and
// reads back. Listed in tests (storetest.go) with the others.

// testDeploymentsRecordTheRevisionTheyReplaced runs deploys, a rollback
// and an undeploy through a Deployer on the store (no data node is live,
// so each succeeds once the active pointer moves): each must read back,
// from the store, the revision active when it began, 0 for none; a
// deployment not yet begun has none.
func testDeploymentsRecordTheRevisionTheyReplaced(e *env) {
	d := deploy.NewCluster(e.store, slog.New(slog.DiscardHandler), deploy.ClusterOptions{Poll: 10 * time.Millisecond})
	steps := []struct {
		action       string
		revision     int64 // a rollback's
		wantRevision int64
		wantReplaced int64
	}{
		{action: gatehouse.ActionDeploy, wantRevision: 1, wantReplaced: 0},
		{action: gatehouse.ActionDeploy, wantRevision: 2, wantReplaced: 1},
		{action: gatehouse.ActionRollback, revision: 1, wantRevision: 1, wantReplaced: 2},
		{action: gatehouse.ActionUndeploy, wantRevision: 0, wantReplaced: 1},
		{action: gatehouse.ActionDeploy, wantRevision: 3, wantReplaced: 0},
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	defer func() { cancel(); <-done }()
	for i, step := range steps {
		dep := &gatehouse.Deployment{Action: step.action, Revision: step.revision}
		if err := d.Create(e.ctx, dep); err != nil {
			e.t.Fatalf("%s: Create: got %v; want success", step.action, err)
		}
		if i == 0 {
			// Nothing applies it yet: it has begun nothing, replaced nothing.
			if got := e.deployment(dep.ID); got.ReplacedRevision != nil {
				e.t.Errorf("pending deploy: replaced_revision %d; want none before it begins", *got.ReplacedRevision)
			}
			go func() { d.Run(ctx); close(done) }()
		}
		got := e.waitDeployment(dep.ID)
		if got.State != gatehouse.StateSucceeded {
			e.t.Fatalf("%s: %s (%s); want succeeded", step.action, got.State, got.Reason)
		}
		switch {
		case got.Revision != step.wantRevision:
			e.t.Errorf("%s: revision %d; want %d", step.action, got.Revision, step.wantRevision)
		case got.ReplacedRevision == nil:
			e.t.Errorf("%s of revision %d: no replaced_revision; want %d", step.action, got.Revision, step.wantReplaced)
		case *got.ReplacedRevision != step.wantReplaced:
			e.t.Errorf("%s of revision %d: replaced_revision %d; want %d", step.action, got.Revision, *got.ReplacedRevision, step.wantReplaced)
		}
	}
}

// deployment reads a deployment from the store.
func (e *env) deployment(id string) *gatehouse.Deployment {
	e.t.Helper()
	dep := gatehouse.NewDeployment()
	if err := gatehouse.Decode(e.get(gatehouse.KindDeployment, id), dep); err != nil {
		e.t.Fatalf("deployment %s: %v", id, err)
	}
	return dep
}

// waitDeployment reads a deployment until it has succeeded or failed.
func (e *env) waitDeployment(id string) *gatehouse.Deployment {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		dep := e.deployment(id)
		if dep.State == gatehouse.StateSucceeded || dep.State == gatehouse.StateFailed {
			return dep
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("deployment %s: still %s after 20s", id, dep.State)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
