package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
)

// AgentOptions configures an Agent. Zero values take the defaults given.
type AgentOptions struct {
	// Name is the node's id in the store.
	Name string
	// Role is gatehouse.RoleAll, RoleControl or RoleData. Only nodes that
	// serve traffic follow the active revision.
	Role string
	// Heartbeat is how often the node refreshes its record. Default 2s.
	Heartbeat time.Duration
	// Poll is how often the active pointer is read. Default 300ms.
	Poll time.Duration
	// OnReport, if set, is called after the node recorded the outcome of
	// an apply (the local Deployer listens to it, so that a
	// single-node deployment completes at once).
	OnReport func()
	// Findings, if set, returns the node's conformance findings, encoded,
	// to publish as its record of gatehouse.KindFindings: read every
	// FindingsInterval and written only when they changed, so that a
	// node's writes stay bounded in rate as Findings bounds their size.
	Findings func() ([]byte, error)
	// FindingsInterval is how often Findings is read. Default
	// DefaultFindingsInterval.
	FindingsInterval time.Duration
	// Stats, if set, returns the data plane's live figures, encoded, to
	// publish as the node's record of gatehouse.KindStats, as Findings
	// are: read every StatsInterval (each read measures the rates over
	// the interval), written only when they changed.
	Stats func() ([]byte, error)
	// StatsInterval is how often Stats is read. Default
	// DefaultStatsInterval.
	StatsInterval time.Duration
}

// DefaultFindingsInterval is how often, at most, a node publishes its
// conformance findings.
const DefaultFindingsInterval = 10 * time.Second

// DefaultStatsInterval is how often, at most, a node publishes its live
// figures, and so the window of the rates they give.
const DefaultStatsInterval = 5 * time.Second

// Agent is one node's membership of the cluster: it registers the node,
// heartbeats, and on a node that serves traffic, follows the Active record,
// applying each revision it names and reporting the outcome in the node's
// record. Polling is how it learns of new revisions.
type Agent struct {
	store   gatehouse.Store
	applier gatehouse.Applier // nil on a control node
	log     *slog.Logger
	opts    AgentOptions
	now     func() time.Time
	wake    chan struct{}

	syncMu sync.Mutex // one apply at a time
	mu     sync.Mutex // guards node and version
	node   gatehouse.Node
	// version is the node record's version as this agent last wrote it.
	version int64
	// stopping is set by Stop: reports from then on say stopped.
	stopping bool
	// twinWarned is when a twin (another process reporting under this
	// node's name) was last logged.
	twinWarned time.Time

	// findings and stats are the node's records of those kinds; nil
	// when not published.
	findings, stats *publication
}

// publication is a record of the node's that it publishes from read,
// only when the body changed.
type publication struct {
	kind gatehouse.Kind
	read func() ([]byte, error)
	mu   sync.Mutex // one publish at a time; guards the two below
	// published is the body as this agent last wrote it (nil: not yet,
	// so the first publish replaces a predecessor's), at version.
	published []byte
	version   int64
}

// NewAgent returns an Agent for the node opts names. applier is the data
// plane; nil for a control node.
func NewAgent(store gatehouse.Store, applier gatehouse.Applier, log *slog.Logger, opts AgentOptions) *Agent {
	if log == nil {
		log = slog.Default()
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = 2 * time.Second
	}
	if opts.Poll <= 0 {
		opts.Poll = 300 * time.Millisecond
	}
	if opts.Role == "" {
		opts.Role = gatehouse.RoleAll
	}
	if opts.FindingsInterval <= 0 {
		opts.FindingsInterval = DefaultFindingsInterval
	}
	if opts.StatsInterval <= 0 {
		opts.StatsInterval = DefaultStatsInterval
	}
	a := &Agent{store: store, applier: applier, log: log, opts: opts, now: time.Now, wake: make(chan struct{}, 1)}
	if opts.Findings != nil {
		a.findings = &publication{kind: gatehouse.KindFindings, read: opts.Findings}
	}
	if opts.Stats != nil {
		a.stats = &publication{kind: gatehouse.KindStats, read: opts.Stats}
	}
	a.node = gatehouse.Node{Meta: gatehouse.Meta{ID: opts.Name}, Role: opts.Role, HeartbeatMS: opts.Heartbeat.Milliseconds(),
		Instance: gatehouse.NewID()}
	return a
}

func (a *Agent) follows() bool { return a.applier != nil && a.opts.Role != gatehouse.RoleControl }

// Start registers the node and, on a node that serves traffic, applies the
// active revision at once: the catch-up of a (re)started node. It reports
// whether a revision (or the empty configuration of an undeploy) is served.
// A revision that fails to apply is reported in the node's record, not
// returned: the node still starts, and serves nothing until a deployment
// it can apply.
func (a *Agent) Start(ctx context.Context) (bool, error) {
	if err := a.report(ctx); err != nil {
		return false, fmt.Errorf("register node %s: %w", a.opts.Name, err)
	}
	if !a.follows() {
		return false, nil
	}
	if err := a.sync(ctx); err != nil {
		return false, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.node.DeploymentID != "", nil
}

// Notify makes the agent read the active pointer now rather than at its
// next poll.
func (a *Agent) Notify() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// Node returns the node as this agent last reported it.
func (a *Agent) Node() gatehouse.Node {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.node
}

// Run heartbeats, publishes the node's findings and live figures and
// follows the active pointer until ctx is done.
func (a *Agent) Run(ctx context.Context) {
	beat := time.NewTicker(a.opts.Heartbeat)
	defer beat.Stop()
	var poll, publish, figures <-chan time.Time
	if a.follows() {
		t := time.NewTicker(a.opts.Poll)
		defer t.Stop()
		poll = t.C
	}
	if a.findings != nil {
		t := time.NewTicker(a.opts.FindingsInterval)
		defer t.Stop()
		publish = t.C
	}
	if a.stats != nil {
		t := time.NewTicker(a.opts.StatsInterval)
		defer t.Stop()
		figures = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-beat.C:
			if err := a.report(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("heartbeat failed", "node", a.opts.Name, "error", err)
			}
			continue
		case <-publish:
			if err := a.publish(ctx, a.findings); err != nil && ctx.Err() == nil {
				a.log.Warn("publishing the conformance findings failed", "node", a.opts.Name, "error", err)
			}
			continue
		case <-figures:
			if err := a.publish(ctx, a.stats); err != nil && ctx.Err() == nil {
				a.log.Warn("publishing the live figures failed", "node", a.opts.Name, "error", err)
			}
			continue
		case <-poll:
		case <-a.wake:
		}
		if !a.follows() {
			continue
		}
		if err := a.sync(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("following the active revision", "node", a.opts.Name, "error", err)
		}
	}
}

// Stop records that the node shut down, so that it is down at once rather
// than after three missed heartbeats, and deployments stop waiting for it;
// and publishes the findings and figures since the last publish, which
// would be lost.
func (a *Agent) Stop(ctx context.Context) error {
	a.mu.Lock()
	a.stopping = true
	a.mu.Unlock()
	// The node's state first: deployments wait on it, nobody on findings.
	err := a.report(ctx)
	for _, p := range []*publication{a.findings, a.stats} {
		if p != nil {
			err = errors.Join(err, a.publish(ctx, p))
		}
	}
	return err
}

// publish writes the node's record of p, unless it is what it last wrote.
func (a *Agent) publish(ctx context.Context, p *publication) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	body, err := p.read()
	if err != nil {
		return gatehouse.Internal(err)
	}
	if p.published != nil && bytes.Equal(body, p.published) {
		return nil
	}
	rec := &gatehouse.Record{Kind: p.kind, ID: a.opts.Name, Body: body}
	current := func() (int64, error) { return storedVersion(ctx, a.store, p.kind, a.opts.Name) }
	if err := a.put(ctx, rec, &p.version, current); err != nil {
		return err
	}
	p.published = body
	return nil
}

// sync applies what the active pointer names, unless this node already
// serves it or already failed to apply it.
func (a *Agent) sync(ctx context.Context) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic following the active revision: %v", v)
		}
	}()
	a.syncMu.Lock()
	defer a.syncMu.Unlock()
	var target gatehouse.Active
	rec, err := a.store.Get(ctx, gatehouse.KindActive, gatehouse.ActiveID)
	switch {
	case err == nil:
		if err := gatehouse.Decode(rec, &target); err != nil {
			return err
		}
	case gatehouse.Absent(err):
		// Nothing is active: serve nothing (a deployment that failed
		// before any other succeeded points back at nothing).
	default:
		return err
	}
	a.mu.Lock()
	served, failed := a.node.DeploymentID, a.node.FailedDeploymentID
	a.mu.Unlock()
	if target.DeploymentID == served || target.DeploymentID == failed {
		return nil
	}
	var rev *gatehouse.Revision
	var applyErr error
	if target.DeploymentID != "" {
		rev, applyErr = loadRevision(ctx, a.store, target.Revision)
		// Only a revision that is missing or will not decode is this
		// deployment's failure; an outage, a shutdown (a canceled
		// context) or any other store trouble is tried again later.
		if applyErr != nil && (ctx.Err() != nil || !revisionBroken(applyErr)) {
			return applyErr
		}
		if applyErr != nil {
			applyErr = fmt.Errorf("revision %d cannot be read: %s", target.Revision, gatehouse.ErrorMessage(applyErr))
		}
	}
	if applyErr == nil {
		applyErr = a.applier.Apply(ctx, rev)
	}
	a.mu.Lock()
	if applyErr != nil {
		a.node.ApplyError, a.node.FailedDeploymentID = applyErr.Error(), target.DeploymentID
	} else {
		a.node.DeploymentID, a.node.Revision = target.DeploymentID, target.Revision
		a.node.ApplyError, a.node.FailedDeploymentID = "", ""
	}
	a.mu.Unlock()
	if applyErr != nil {
		a.log.Warn("apply failed", "node", a.opts.Name, "deployment", target.DeploymentID, "revision", target.Revision, "error", applyErr)
	} else if target.DeploymentID != "" {
		a.log.Info("applied", "node", a.opts.Name, "deployment", target.DeploymentID, "revision", target.Revision)
	}
	err = a.report(ctx)
	if a.opts.OnReport != nil {
		a.opts.OnReport()
	}
	return err
}

// report writes the node's record, stamped now: Create on first start,
// Update afterwards, re-reading the version when another writer (an earlier
// process of the same name) moved it.
func (a *Agent) report(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.node.LastSeen = a.now().UTC()
	node := a.node
	// Once Stop has begun, every report (a heartbeat racing it included)
	// says stopped.
	node.Stopped = a.stopping
	node.State = ""
	node.Meta = gatehouse.Meta{ID: a.opts.Name}
	rec, err := gatehouse.Encode(&node, nil)
	if err != nil {
		return gatehouse.Internal(err)
	}
	return a.put(ctx, rec, &a.version, func() (int64, error) { return a.reread(ctx) })
}

// put writes rec, which the agent last wrote at *version (0: never):
// Create at first, Update afterwards, taking the stored version from
// current when another writer (an earlier process of the same name) moved
// it. It sets *version to what it wrote.
func (a *Agent) put(ctx context.Context, rec *gatehouse.Record, version *int64, current func() (int64, error)) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if *version == 0 {
			err = a.store.Create(ctx, rec)
		} else {
			err = a.store.Update(ctx, rec, *version)
		}
		switch gatehouse.ErrorCode(err) {
		case gatehouse.ECONFLICT, gatehouse.EPRECONDITION:
			v, err := current()
			if err != nil {
				return err
			}
			*version = v
			continue
		case gatehouse.ENOTFOUND, gatehouse.EGONE:
			*version = 0
			continue
		}
		if err != nil {
			return err
		}
		*version = rec.Version
		return nil
	}
	return fmt.Errorf("the %s record keeps changing under this node: is another process using the same --node-name?", rec.Kind)
}

// reread returns the stored node record's version (0: none); a.mu is
// held. A record another instance wrote after this one registered means
// two processes share the node's name: each overwrites the other's
// reports, so deployments and the node list see one node that flips
// between two states. It is logged, at most once a minute, rather than
// refused: both still serve correctly.
func (a *Agent) reread(ctx context.Context) (int64, error) {
	cur, err := a.store.Get(ctx, gatehouse.KindNode, a.opts.Name)
	switch {
	case err == nil:
		var other gatehouse.Node
		if a.version != 0 && gatehouse.Decode(cur, &other) == nil && other.Instance != a.node.Instance {
			if now := a.now(); now.Sub(a.twinWarned) >= time.Minute {
				a.twinWarned = now
				a.log.Error("another process reports as this node: give each gatehouse process its own --node-name",
					"node", a.opts.Name, "instance", a.node.Instance, "other_instance", other.Instance)
			}
		}
		return cur.Version, nil
	case gatehouse.Absent(err):
		return 0, nil
	default:
		return 0, err
	}
}

// storedVersion returns the stored record's version, 0 if there is none.
func storedVersion(ctx context.Context, store gatehouse.Store, kind gatehouse.Kind, id string) (int64, error) {
	rec, err := store.Get(ctx, kind, id)
	switch {
	case err == nil:
		return rec.Version, nil
	case gatehouse.Absent(err):
		return 0, nil
	default:
		return 0, err
	}
}

// loadRevision loads revision n; 0 is the empty configuration.
func loadRevision(ctx context.Context, store gatehouse.Store, n int64) (*gatehouse.Revision, error) {
	if n == 0 {
		return nil, nil
	}
	rec, err := store.Get(ctx, gatehouse.KindRevision, gatehouse.RevisionID(n))
	if err != nil {
		return nil, err
	}
	rev := gatehouse.NewRevision()
	return rev, gatehouse.Decode(rec, rev)
}

// revisionBroken reports whether loading a revision failed because of the
// revision itself (missing, or stored in a form that does not decode),
// which no retry mends, rather than because of the store.
func revisionBroken(err error) bool {
	switch gatehouse.ErrorCode(err) {
	case gatehouse.ENOTFOUND, gatehouse.EGONE:
		return true
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	return errors.As(err, &se) || errors.As(err, &te)
}
