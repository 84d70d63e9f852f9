package gatehouse

import "time"

// KindNode is the collection of gatehouse processes sharing one store. Nodes
// write their own records (registering and heartbeating); the admin API only
// reads them.
const KindNode Kind = "nodes"

// Node roles: a control node serves the admin API and runs deployments, a
// data node serves traffic, and an all node (the default) does both.
const (
	RoleAll     = "all"
	RoleControl = "control"
	RoleData    = "data"
)

// Node states, derived from the last heartbeat when the node is read.
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
	// LastSeen is the node's last heartbeat; HeartbeatMS its interval.
	LastSeen    time.Time `json:"last_seen"`
	HeartbeatMS int64     `json:"heartbeat_ms"`
	// Stopped says the node shut down cleanly: it is down at once.
	Stopped bool `json:"stopped,omitempty"`
	// State is derived when the node is read: live if the node was seen
	// within NodeLiveHeartbeats heartbeats, else down. It is not stored.
	State string `json:"state,omitempty"`
}

func NewNode() *Node { return &Node{} }

func (n *Node) Kind() Kind                                   { return KindNode }
func (n *Node) Base() *Meta                                  { return &n.Meta }
func (n *Node) Index() Index                                 { return Index{} }
func (n *Node) Check() (invalid, unprocessable []FieldError) { return nil, nil }

// Live reports whether the node was seen recently enough at now.
func (n *Node) Live(now time.Time) bool {
	if n.Stopped {
		return false
	}
	hb := time.Duration(n.HeartbeatMS) * time.Millisecond
	if hb <= 0 {
		hb = 2 * time.Second
	}
	return now.Sub(n.LastSeen) <= NodeLiveHeartbeats*hb
}

// Derive sets State as of now.
func (n *Node) Derive(now time.Time) {
	n.State = NodeDown
	if n.Live(now) {
		n.State = NodeLive
	}
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
