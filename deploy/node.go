package deploy

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
)

// NodeOptions configures a Node. Zero values take the defaults given.
type NodeOptions struct {
	// Name is the node's id in the store.
	Name string
	// Role is gatehouse.RoleAll (the default), RoleControl or RoleData.
	Role string
	// Heartbeat is how often the node records that it is alive, and how
	// often a control node reads the others' records. Default 2s.
	Heartbeat time.Duration
	// DeployTimeout is how long a deployment waits for every live data
	// node to report. Default 30s.
	DeployTimeout time.Duration
	// Findings and FindingsInterval: the node's conformance findings,
	// published by its Agent (AgentOptions).
	Findings         func() ([]byte, error)
	FindingsInterval time.Duration
	// Stats and StatsInterval: the data plane's live figures, published
	// likewise (AgentOptions).
	Stats         func() ([]byte, error)
	StatsInterval time.Duration
}

// Node is one gatehouse process's part in the cluster, wired the same way
// in every process (and in the tests of the admin API, so that they prove
// what ships): an Agent that registers the node, heartbeats and, on a node
// that serves traffic, follows the active revision; and on a node with the
// admin API (roles control and all) a Deployer.
//
// Who wakes whom, so that nothing waits for its next poll:
//   - the Deployer, having moved the active pointer, wakes the local Agent;
//   - the local Agent, having reported an apply, wakes the Deployer;
//   - on a store that says when records change (gatehouse.Notifier), a
//     change to the active pointer (or anything but a node's report) wakes
//     the Agent, and a node's report (or anything but the pointer) wakes
//     the Deployer: the other processes' doings. Published findings and
//     figures wake neither.
type Node struct {
	// Agent is the node's membership of the cluster.
	Agent *Agent
	// Deployer runs deployments; nil on a data node.
	Deployer *Deployer
	store    gatehouse.Store
}

// NewNode wires a Node on store. applier is the data plane; nil on a
// control node.
func NewNode(store gatehouse.Store, applier gatehouse.Applier, log *slog.Logger, opts NodeOptions) *Node {
	if opts.Role == "" {
		opts.Role = gatehouse.RoleAll
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = 2 * time.Second
	}
	n := &Node{store: store}
	agentOpts := AgentOptions{Name: opts.Name, Role: opts.Role, Heartbeat: opts.Heartbeat,
		Findings: opts.Findings, FindingsInterval: opts.FindingsInterval, Stats: opts.Stats, StatsInterval: opts.StatsInterval}
	if opts.Role != gatehouse.RoleData {
		n.Deployer = NewCluster(store, log, ClusterOptions{Timeout: opts.DeployTimeout, Owner: opts.Name,
			Observe: opts.Heartbeat, Kick: func() { n.Agent.Notify() }})
		agentOpts.OnReport = n.Deployer.Progressed
	}
	n.Agent = NewAgent(store, applier, log, agentOpts)
	return n
}

// Start registers the node and, on a node that serves traffic, applies the
// active revision (Agent.Start), before anything is served.
func (n *Node) Start(ctx context.Context) (bool, error) { return n.Agent.Start(ctx) }

// Run heartbeats, follows the active revision and runs deployments until
// ctx is done, and returns once all of it has stopped using the store.
func (n *Node) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { n.Agent.Run(ctx) })
	if n.Deployer != nil {
		wg.Go(func() { n.Deployer.Run(ctx) })
	}
	if notifier, ok := n.store.(gatehouse.Notifier); ok {
		wg.Go(func() {
			for kind := range notifier.Subscribe(ctx) {
				agent, deployer := wakes(kind)
				if agent {
					n.Agent.Notify()
				}
				if deployer && n.Deployer != nil {
					n.Deployer.Progressed()
				}
			}
		})
	}
	wg.Wait()
}

// wakes says whom a change to records of kind, which another process may
// have made, concerns: the Agent follows the active pointer, the Deployer
// the nodes' reports; "" (changes maybe missed) wakes both, and published
// findings and figures neither.
func wakes(kind gatehouse.Kind) (agent, deployer bool) {
	if kind == gatehouse.KindFindings || kind == gatehouse.KindStats {
		return false, false
	}
	return kind != gatehouse.KindNode, kind != gatehouse.KindActive
}

// Stop records that the node shut down (Agent.Stop).
func (n *Node) Stop(ctx context.Context) error { return n.Agent.Stop(ctx) }
