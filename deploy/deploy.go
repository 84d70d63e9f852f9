// Package deploy turns the draft configuration into revisions and applies
// them to the data plane, one deployment at a time.
//
// Creating a deployment is quick and synchronous (the admin API answers 202
// with it); applying is the Deployer's work, in the background, in the order
// deployments were created: it points the Active record at the revision,
// and each node's Agent, which follows that record, applies it and reports.
// A single process is a cluster of one node, wired the same way (Node). The
// deployment resource records each step, so a client polling it sees
// pending, applying, then succeeded or failed with a reason. A failed
// deployment leaves the last good revision serving.
package deploy

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Deployer applies deployments in creation order, through the cluster's
// data nodes (NewCluster).
type Deployer struct {
	store gatehouse.Store
	log   *slog.Logger
	now   func() time.Time
	wake  chan struct{}

	cluster  *ClusterOptions
	progress chan struct{}
	watch    *Watch

	mu sync.Mutex // serialises revision numbering
}

// Create records a deployment and returns it, pending. A deploy first
// snapshots the draft into a new revision; a rollback must name an
// existing revision (EUNPROCESSABLE otherwise).
func (d *Deployer) Create(ctx context.Context, dep *gatehouse.Deployment) error {
	switch dep.Action {
	case gatehouse.ActionDeploy:
		rev, err := d.snapshot(ctx)
		if err != nil {
			return err
		}
		dep.Revision = rev.Number
	case gatehouse.ActionRollback:
		if _, err := d.store.Get(ctx, gatehouse.KindRevision, gatehouse.RevisionID(dep.Revision)); err != nil {
			if gatehouse.Absent(err) {
				return gatehouse.Unprocessable([]gatehouse.FieldError{{Field: "revision",
					Message: fmt.Sprintf("revision %d does not exist", dep.Revision)}})
			}
			return err
		}
	}
	dep.State = gatehouse.StatePending
	if dep.ID == "" {
		dep.ID = gatehouse.NewID()
	}
	rec, err := gatehouse.Encode(dep, nil)
	if err != nil {
		return gatehouse.Internal(err)
	}
	if err := d.store.Create(ctx, rec); err != nil {
		return err
	}
	gatehouse.Sync(dep, rec)
	d.Notify()
	return nil
}

// Refuse records a deploy that failed before it made a revision, with the
// reason (a node configured from files refusing an invalid change): the
// deployments list shows it beside the others, and the active revision
// is untouched.
func (d *Deployer) Refuse(ctx context.Context, reason string) (*gatehouse.Deployment, error) {
	now := d.now().UTC()
	dep := &gatehouse.Deployment{Meta: gatehouse.Meta{ID: gatehouse.NewID()}, Action: gatehouse.ActionDeploy,
		State: gatehouse.StateFailed, Reason: reason, StartedAt: &now, FinishedAt: &now}
	rec, err := gatehouse.Encode(dep, nil)
	if err != nil {
		return nil, gatehouse.Internal(err)
	}
	if err := d.store.Create(ctx, rec); err != nil {
		return nil, err
	}
	gatehouse.Sync(dep, rec)
	return dep, nil
}

// snapshot freezes the draft into the next revision.
func (d *Deployer) snapshot(ctx context.Context) (*gatehouse.Revision, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	snap, err := d.store.Snapshot(ctx, gatehouse.DraftKinds...)
	if err != nil {
		return nil, err
	}
	rev := gatehouse.NewRevision()
	for _, rec := range snap[gatehouse.KindService] {
		s := gatehouse.NewService()
		if err := gatehouse.Decode(rec, s); err != nil {
			return nil, err
		}
		rev.Services = append(rev.Services, s)
	}
	for _, rec := range snap[gatehouse.KindRoute] {
		r := gatehouse.NewRoute()
		if err := gatehouse.Decode(rec, r); err != nil {
			return nil, err
		}
		rev.Routes = append(rev.Routes, r)
	}
	for _, rec := range snap[gatehouse.KindConsumer] {
		c := gatehouse.NewConsumer()
		if err := gatehouse.Decode(rec, c); err != nil {
			return nil, err
		}
		rev.Consumers = append(rev.Consumers, c)
	}
	for _, rec := range snap[gatehouse.KindCredential] {
		c := gatehouse.NewCredential()
		if err := gatehouse.Decode(rec, c); err != nil {
			return nil, err
		}
		rev.Credentials = append(rev.Credentials, &gatehouse.RevisionCredential{ID: c.ID, ConsumerID: c.ConsumerID,
			Type: c.Type, Username: c.Username, Hash: string(rec.Secret)})
	}
	for _, rec := range snap[gatehouse.KindPolicy] {
		p := gatehouse.NewPolicy()
		if err := gatehouse.Decode(rec, p); err != nil {
			return nil, err
		}
		rev.Policies = append(rev.Policies, p)
	}
	// Only the specs a policy names: a spec nothing uses is not needed to
	// serve, and documents can be megabytes each.
	used := map[string]bool{}
	for _, p := range rev.Policies {
		if id := p.SpecID(); id != "" {
			used[id] = true
		}
	}
	for _, rec := range snap[gatehouse.KindSpec] {
		if !used[rec.ID] {
			continue
		}
		s := gatehouse.NewSpec()
		if err := gatehouse.Decode(rec, s); err != nil {
			return nil, err
		}
		rev.Specs = append(rev.Specs, s)
	}
	// Revisions are never deleted, so the count numbers them; a clash with
	// another node numbering at once is retried with the next number.
	for attempt := 0; attempt < 5; attempt++ {
		n, err := d.store.Count(ctx, gatehouse.KindRevision)
		if err != nil {
			return nil, err
		}
		rev.Number = int64(n) + 1
		rev.ID = gatehouse.RevisionID(rev.Number)
		rec, err := gatehouse.Encode(rev, nil)
		if err != nil {
			return nil, gatehouse.Internal(err)
		}
		err = d.store.Create(ctx, rec)
		if gatehouse.ErrorCode(err) == gatehouse.ECONFLICT {
			continue
		}
		if err != nil {
			return nil, err
		}
		gatehouse.Sync(rev, rec)
		return rev, nil
	}
	// Contention between control nodes, not a conflict with anything the
	// client named: the server's transient state (503, Retry-After).
	return nil, gatehouse.Errorf(gatehouse.EUNAVAILABLE, "Another deployment is numbering revisions; retry.")
}

// Notify wakes the Deployer to look for pending deployments.
func (d *Deployer) Notify() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run applies pending deployments until ctx is done. Deployments a crash
// left pending or applying are taken up again on start.
func (d *Deployer) Run(ctx context.Context) {
	d.Notify()
	// It also looks every third of a lease: to renew the lease it holds,
	// or to take over one a crashed driver let lapse.
	leaseTick := time.NewTicker(d.cluster.Lease / 3)
	defer leaseTick.Stop()
	var observing sync.WaitGroup
	defer observing.Wait()
	observing.Go(func() { d.observeNodes(ctx) })
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-leaseTick.C:
		}
		if err := d.applyPending(ctx); err != nil && ctx.Err() == nil {
			d.log.Error("applying deployments", "error", err)
			// Try again later rather than spin on a failing store.
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
				d.Notify()
			}
		}
	}
}

func (d *Deployer) applyPending(ctx context.Context) (err error) {
	// A bug here must not take the data plane down with it.
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic applying deployments: %v", v)
		}
	}()
	// One control node drives deployments; the others stand by and look
	// again when the lease may have lapsed (Run's lease tick).
	if held, err := d.holdLease(ctx); err != nil || !held {
		return err
	}
	// Finish a revert that an error or a crash interrupted.
	if err := d.revertFailed(ctx); err != nil {
		return err
	}
	var after int64
	for {
		page, err := d.store.List(ctx, gatehouse.KindDeployment, gatehouse.ListOptions{After: after, Limit: gatehouse.MaxPageSize})
		if err != nil {
			return err
		}
		for _, rec := range page.Records {
			dep := gatehouse.NewDeployment()
			if err := gatehouse.Decode(rec, dep); err != nil {
				return err
			}
			if dep.State == gatehouse.StatePending || dep.State == gatehouse.StateApplying {
				if err := d.apply(ctx, dep); err != nil {
					return err
				}
			}
		}
		if page.Next == 0 {
			return nil
		}
		after = page.Next
	}
}

// apply takes one deployment through applying to its outcome.
func (d *Deployer) apply(ctx context.Context, dep *gatehouse.Deployment) error {
	if dep.StartedAt == nil {
		// What it replaces is what is active as it begins, written with
		// StartedAt: a deployment taken up again after a crash has it
		// already, and the active pointer may since name dep itself.
		replaced, err := d.activeRevision(ctx)
		if err != nil {
			return err
		}
		dep.ReplacedRevision = &replaced
	}
	if err := d.setState(ctx, dep, gatehouse.StateApplying, ""); err != nil {
		return err
	}
	return d.applyCluster(ctx, dep)
}

// activeRevision is the revision the Active record names, 0 if there is
// none (nothing deployed yet, or undeployed).
func (d *Deployer) activeRevision(ctx context.Context) (int64, error) {
	rec, err := d.store.Get(ctx, gatehouse.KindActive, gatehouse.ActiveID)
	if gatehouse.Absent(err) {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	var active gatehouse.Active
	if err := gatehouse.Decode(rec, &active); err != nil {
		return 0, err
	}
	return active.Revision, nil
}

// revision loads revision n; 0 is the empty configuration.
func (d *Deployer) revision(ctx context.Context, n int64) (*gatehouse.Revision, error) {
	return loadRevision(ctx, d.store, n)
}

func (d *Deployer) setState(ctx context.Context, dep *gatehouse.Deployment, state, reason string) error {
	dep.State, dep.Reason = state, reason
	if state == gatehouse.StateApplying && dep.StartedAt == nil {
		now := d.now().UTC()
		dep.StartedAt = &now
	}
	if state == gatehouse.StateSucceeded || state == gatehouse.StateFailed {
		now := d.now().UTC()
		dep.FinishedAt = &now
	}
	rec, err := gatehouse.Encode(dep, nil)
	if err != nil {
		return gatehouse.Internal(err)
	}
	if err := d.store.Update(ctx, rec, dep.Version); err != nil {
		return err
	}
	gatehouse.Sync(dep, rec)
	return nil
}
