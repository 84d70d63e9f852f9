package gatehouse

import "time"

// KindNode is the collection of gatehouse processes sharing one store. Nodes
// write their own records (registering and heartbeating); the admin API only
// reads them.
const KindNode Kind = "nodes"

// KindFindings is the collection of the response audit's findings that
// the nodes serving traffic publish, one record per node (its id the
// node's), for the conformance report of every node with the admin API.
// Nodes write them like their own records. The body is the audit
// package's Snapshot, opaque to the domain.
const KindFindings Kind = "findings"

// Node roles: a control node serves the admin API and runs deployments, a
// data node serves traffic, and an all node (the default) does both.
const (
	RoleAll     = "all"
	RoleControl = "control"
	RoleData    = "data"
)

// Node states, judged when the node is read (deploy.Watch).
const (
	NodeLive = "live"
	NodeDown = "down"
)

// NodeLiveHeartbeats is how many heartbeat intervals a node may miss before
// it is down.
const NodeLiveHeartbeats = 3

// Node is one gatehouse process as it last reported itself.
type Node struct {
	Meta
	Role string `json:"role"`
	// Revision is the revision the node serves (0: none or the empty
	// configuration), applied by the deployment DeploymentID ("" if the
	// node has applied none). Control nodes serve none.
	Revision     int64  `json:"revision"`
	DeploymentID string `json:"deployment_id,omitempty"`
	// ApplyError is why the node's last apply failed, the one of deployment
	// FailedDeploymentID; both are cleared by a successful apply.
	ApplyError         string `json:"apply_error,omitempty"`
	FailedDeploymentID string `json:"failed_deployment_id,omitempty"`
	// LastSeen is the node's last heartbeat, by the node's clock;
	// HeartbeatMS its interval.
	LastSeen    time.Time `json:"last_seen"`
	HeartbeatMS int64     `json:"heartbeat_ms"`
	// Instance is random per process: two processes reporting under one
	// name show as an instance that keeps changing.
	Instance string `json:"instance,omitempty"`
	// Stopped says the node shut down cleanly: it is down at once.
	Stopped bool `json:"stopped,omitempty"`
	// State is judged when the node is read: live if its record changed
	// within NodeLiveHeartbeats heartbeats, else down. It is not stored.
	State string `json:"state,omitempty"`
}

func NewNode() *Node { return &Node{} }

func (n *Node) Kind() Kind                                   { return KindNode }
func (n *Node) Base() *Meta                                  { return &n.Meta }
func (n *Node) Index() Index                                 { return Index{} }
func (n *Node) Check() (invalid, unprocessable []FieldError) { return nil, nil }

// LiveWindow is how long the node may stay silent and still be live.
func (n *Node) LiveWindow() time.Duration {
	hb := time.Duration(n.HeartbeatMS) * time.Millisecond
	if hb <= 0 {
		hb = 2 * time.Second
	}
	return NodeLiveHeartbeats * hb
}

// Live reports whether the node's last heartbeat, by its own clock, is
// recent at now, by the reader's: only as right as the two clocks agree,
// so deploy.Watch takes it as a hint for nodes it has not seen before.
func (n *Node) Live(now time.Time) bool {
	return !n.Stopped && now.Sub(n.LastSeen) <= n.LiveWindow()
}

// ServesTraffic reports whether the node runs a data plane.
func (n *Node) ServesTraffic() bool { return n.Role == RoleData || n.Role == RoleAll }

// NodeProgress is one data node's part in a deployment.
type NodeProgress struct {
	Node  string `json:"node"`
	State string `json:"state"` // NodePending, NodeApplied or NodeFailed
	Error string `json:"error,omitempty"`
}

// Per-node deployment states.
const (
	NodePending = "pending"
	NodeApplied = "applied"
	NodeFailed  = "failed"
)
