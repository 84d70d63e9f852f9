package deploy

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
)

// ClusterOptions configures a Deployer that applies through the cluster's
// data nodes. Zero values take the defaults given.
type ClusterOptions struct {
	// Timeout is how long a deployment waits for every live data node to
	// report; the nodes that did not are named in its failure. Default 30s.
	Timeout time.Duration
	// Poll is how often the nodes' records are read while waiting.
	// Default 100ms.
	Poll time.Duration
	// Kick, if set, is called once the active pointer has moved: the local
	// node's Agent.Notify, so that it applies at once instead of at its
	// next poll.
	Kick func()
	// Owner names this control node in the lease that lets one control
	// node at a time drive deployments. Default "gatehouse".
	Owner string
	// Lease is how long the lease lasts without renewal: how long a
	// crashed driver holds deployments up. Default 10s.
	Lease time.Duration
	// Observe is how often the nodes are read between deployments, so
	// that the Watch sees their heartbeats and any outage of the store.
	// Default 1s.
	Observe time.Duration
}

// NewCluster returns a Deployer for a cluster: a deployment points the
// Active record at its revision, and succeeds once every live data node
// (gatehouse.Node records of role data or all, heartbeating) reports it
// applied. If one reports an apply error, or not all report within the
// timeout, the deployment fails naming them and the Active record points
// back at the previous deployment, which the nodes then serve again, so
// that a failed deployment still leaves the last good revision serving.
// A deployment with no live data node succeeds at once: nodes that start
// later catch up from the Active record.
func NewCluster(store gatehouse.Store, log *slog.Logger, opts ClusterOptions) *Deployer {
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.Poll <= 0 {
		opts.Poll = 100 * time.Millisecond
	}
	if opts.Owner == "" {
		opts.Owner = "gatehouse"
	}
	if opts.Lease <= 0 {
		opts.Lease = 10 * time.Second
	}
	if opts.Observe <= 0 {
		opts.Observe = time.Second
	}
	if log == nil {
		log = slog.Default()
	}
	d := &Deployer{store: store, log: log, now: time.Now, wake: make(chan struct{}, 1),
		cluster: &opts, progress: make(chan struct{}, 1)}
	d.watch = NewWatch(func() time.Time { return d.now() })
	return d
}

// Watch is how this Deployer judges nodes live or down; the admin API's
// node list shares it.
func (d *Deployer) Watch() *Watch { return d.watch }

// observeNodes keeps the Watch's view fresh until ctx is done.
func (d *Deployer) observeNodes(ctx context.Context) {
	t := time.NewTicker(d.cluster.Observe)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// A failure marks the view broken; the deployment loop reports it.
		_ = d.watch.observe(ctx, d.store, nil)
	}
}

// Progressed tells the Deployer that a node reported, so that it looks at
// once rather than at its next poll (Agent's OnReport).
func (d *Deployer) Progressed() {
	select {
	case d.progress <- struct{}{}:
	default:
	}
}

func (d *Deployer) applyCluster(ctx context.Context, dep *gatehouse.Deployment) error {
	if _, err := d.revision(ctx, dep.Revision); err != nil {
		if gatehouse.ErrorCode(err) == gatehouse.EUNAVAILABLE {
			return err
		}
		return d.setState(ctx, dep, gatehouse.StateFailed, fmt.Sprintf("revision %d cannot be read: %s", dep.Revision, gatehouse.ErrorMessage(err)))
	}
	active, err := d.pointAt(ctx, dep)
	if err != nil {
		return err
	}
	if d.cluster.Kick != nil {
		d.cluster.Kick()
	}
	deadline := d.now().Add(d.cluster.Timeout)
	if dep.StartedAt != nil {
		deadline = dep.StartedAt.Add(d.cluster.Timeout)
	}
	tick := time.NewTicker(d.cluster.Poll)
	defer tick.Stop()
	for {
		if held, err := d.holdLease(ctx); err != nil || !held {
			return err // another control node drives it now
		}
		progress, err := d.nodeProgress(ctx, dep)
		if err != nil {
			return err
		}
		if !slices.Equal(progress, dep.Nodes) {
			dep.Nodes = progress
			if err := d.setState(ctx, dep, gatehouse.StateApplying, ""); err != nil {
				return err
			}
		}
		var failed, pending []string
		for _, p := range progress {
			switch p.State {
			case gatehouse.NodeFailed:
				failed = append(failed, fmt.Sprintf("node %s failed to apply revision %d: %s", p.Node, dep.Revision, p.Error))
			case gatehouse.NodePending:
				pending = append(pending, p.Node)
			}
		}
		switch {
		case len(failed) > 0:
			return d.fail(ctx, dep, active, strings.Join(failed, "; "))
		case len(pending) == 0:
			d.log.Info("deployment succeeded", "deployment", dep.ID, "action", dep.Action, "revision", dep.Revision, "nodes", len(progress))
			return d.setState(ctx, dep, gatehouse.StateSucceeded, "")
		case !d.now().Before(deadline):
			return d.fail(ctx, dep, active, fmt.Sprintf("node %s did not report applying revision %d within %v",
				strings.Join(pending, ", node "), dep.Revision, d.cluster.Timeout))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		case <-d.progress:
		}
	}
}

// pointAt makes dep the active deployment, remembering the one it replaces
// (kept when a deployment a crash interrupted is taken up again).
func (d *Deployer) pointAt(ctx context.Context, dep *gatehouse.Deployment) (*gatehouse.Active, error) {
	next := &gatehouse.Active{Meta: gatehouse.Meta{ID: gatehouse.ActiveID}, DeploymentID: dep.ID, Revision: dep.Revision}
	rec, err := d.store.Get(ctx, gatehouse.KindActive, gatehouse.ActiveID)
	switch {
	case err == nil:
		var cur gatehouse.Active
		if err := gatehouse.Decode(rec, &cur); err != nil {
			return nil, err
		}
		if cur.DeploymentID == dep.ID {
			return &cur, nil
		}
		next.PreviousDeploymentID, next.PreviousRevision = cur.DeploymentID, cur.Revision
		out, err := gatehouse.Encode(next, nil)
		if err != nil {
			return nil, gatehouse.Internal(err)
		}
		return next, d.store.Update(ctx, out, cur.Version)
	case gatehouse.Absent(err):
		out, err := gatehouse.Encode(next, nil)
		if err != nil {
			return nil, gatehouse.Internal(err)
		}
		return next, d.store.Create(ctx, out)
	default:
		return nil, err
	}
}

// fail records the failure, then points the Active record back at the
// previous deployment (or at nothing), which the nodes that applied this
// one then serve again. The failure is written first: a deployment that is
// failed is never applied again, so a crash or an error between the two
// writes cannot make it flap; revertFailed finishes the revert later.
func (d *Deployer) fail(ctx context.Context, dep *gatehouse.Deployment, active *gatehouse.Active, reason string) error {
	for _, p := range dep.Nodes {
		if p.State == gatehouse.NodeApplied {
			reason += fmt.Sprintf("; the nodes that applied it return to revision %d", active.PreviousRevision)
			break
		}
	}
	d.log.Warn("deployment failed", "deployment", dep.ID, "revision", dep.Revision, "reason", reason)
	if err := d.setState(ctx, dep, gatehouse.StateFailed, reason); err != nil {
		return err
	}
	return d.revertFailed(ctx)
}

// revertFailed points the Active record back to what preceded it when it
// names a failed deployment, and only then: the version check of the
// update keeps a newer deployment's pointer from being undone.
func (d *Deployer) revertFailed(ctx context.Context) error {
	rec, err := d.store.Get(ctx, gatehouse.KindActive, gatehouse.ActiveID)
	if gatehouse.Absent(err) {
		return nil
	} else if err != nil {
		return err
	}
	var active gatehouse.Active
	if err := gatehouse.Decode(rec, &active); err != nil {
		return err
	}
	drec, err := d.store.Get(ctx, gatehouse.KindDeployment, active.DeploymentID)
	if err != nil {
		return nil // not a deployment of ours to judge
	}
	current := gatehouse.NewDeployment()
	if err := gatehouse.Decode(drec, current); err != nil || current.State != gatehouse.StateFailed {
		return err
	}
	if active.PreviousDeploymentID == "" {
		err = d.store.Delete(ctx, gatehouse.KindActive, gatehouse.ActiveID, rec.Version)
	} else {
		prev := &gatehouse.Active{Meta: gatehouse.Meta{ID: gatehouse.ActiveID},
			DeploymentID: active.PreviousDeploymentID, Revision: active.PreviousRevision}
		out, eerr := gatehouse.Encode(prev, nil)
		if eerr != nil {
			return gatehouse.Internal(eerr)
		}
		err = d.store.Update(ctx, out, rec.Version)
	}
	if gatehouse.ErrorCode(err) == gatehouse.EPRECONDITION {
		return nil // moved on meanwhile: a newer deployment owns it
	}
	if err != nil {
		return err
	}
	if d.cluster.Kick != nil {
		d.cluster.Kick()
	}
	return nil
}

// nodeProgress reads every node and reports each data node that is live,
// or that already reported on dep, in creation order.
func (d *Deployer) nodeProgress(ctx context.Context, dep *gatehouse.Deployment) ([]gatehouse.NodeProgress, error) {
	out := []gatehouse.NodeProgress{}
	err := d.watch.observe(ctx, d.store, func(n *gatehouse.Node, live bool) {
		if !n.ServesTraffic() {
			return
		}
		p := gatehouse.NodeProgress{Node: n.ID, State: gatehouse.NodePending}
		switch {
		case n.DeploymentID == dep.ID:
			p.State = gatehouse.NodeApplied
		case n.FailedDeploymentID == dep.ID:
			p.State, p.Error = gatehouse.NodeFailed, n.ApplyError
		case !live:
			return // down: not waited for
		}
		out = append(out, p)
	})
	return out, err
}
