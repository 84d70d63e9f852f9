package gatehouse

import (
	"context"
	"strconv"
	"time"
)

// Resource kinds of the deployment model. Revisions and deployments are
// written only by the server; the active pointer is internal.
const (
	KindRevision   Kind = "revisions"
	KindDeployment Kind = "deployments"
	KindActive     Kind = "active"
)

// Revision is one numbered, immutable snapshot of the draft configuration:
// everything the data plane needs, taken at one moment.
type Revision struct {
	Meta
	Number    int64       `json:"number"`
	Services  []*Service  `json:"services"`
	Routes    []*Route    `json:"routes"`
	Consumers []*Consumer `json:"consumers"`
	Policies  []*Policy   `json:"policies"`
	// Credentials are the consumers' credentials with the hashes of their
	// secrets, which the data plane verifies against; the admin API never
	// shows the hashes (Redact).
	Credentials []*RevisionCredential `json:"credentials"`
	// Specs are the OpenAPI documents the revision's openapi policies
	// name; a spec no policy names is not needed to serve and is left out.
	Specs []*Spec `json:"specs"`
}

// RevisionCredential is a credential as the data plane needs it.
type RevisionCredential struct {
	ID         string `json:"id"`
	ConsumerID string `json:"consumer_id"`
	Type       string `json:"type"`
	Username   string `json:"username,omitempty"`
	// Hash is the stored hash: HashToken of a key, HashPassword's form
	// for a password.
	Hash string `json:"hash,omitempty"`
}

// Redact clears the credentials' hashes and the policies' and services'
// write-only secrets, for showing a revision; the services get their
// warnings.
func (r *Revision) Redact() {
	for _, c := range r.Credentials {
		c.Hash = ""
	}
	for _, p := range r.Policies {
		p.Hide()
	}
	for _, s := range r.Services {
		s.Hide()
		s.Warn()
	}
}

// DraftKinds are the kinds a revision snapshots.
var DraftKinds = []Kind{KindService, KindRoute, KindConsumer, KindCredential, KindPolicy, KindSpec}

func NewRevision() *Revision {
	return &Revision{Services: []*Service{}, Routes: []*Route{}, Consumers: []*Consumer{}, Policies: []*Policy{},
		Credentials: []*RevisionCredential{}, Specs: []*Spec{}}
}

func (r *Revision) Kind() Kind  { return KindRevision }
func (r *Revision) Base() *Meta { return &r.Meta }
func (r *Revision) Index() Index {
	return Index{}
}
func (r *Revision) Check() (invalid, unprocessable []FieldError) { return nil, nil }

// RevisionID is the id of revision number n.
func RevisionID(n int64) string { return strconv.FormatInt(n, 10) }

// ParseRevisionNumber reads a revision number as RevisionID writes it,
// 0 (the empty configuration) included: decimal digits without sign or
// leading zero, so that one number has one spelling.
func ParseRevisionNumber(s string) (int64, bool) {
	if s == "" || len(s) > 19 || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// Deployment actions.
const (
	ActionDeploy   = "deploy"   // snapshot the draft into a new revision and apply it
	ActionRollback = "rollback" // apply an earlier revision again
	ActionUndeploy = "undeploy" // apply the empty configuration
)

// Deployment states. A deployment moves pending → applying → succeeded or
// failed; a failed one leaves the last good revision serving.
const (
	StatePending   = "pending"
	StateApplying  = "applying"
	StateSucceeded = "succeeded"
	StateFailed    = "failed"
)

// Deployment applies a revision to the data plane. It is asynchronous:
// creation answers 202 and the resource reports progress.
type Deployment struct {
	Meta
	Action string `json:"action"`
	// Revision is what the deployment applies: the new revision of a
	// deploy, the chosen one of a rollback, 0 (nothing) for an undeploy.
	Revision int64 `json:"revision"`
	// ReplacedRevision is the revision that was active when the
	// deployment began applying, 0 if none was: what the deployment
	// changes is the difference from it to Revision. Nil until the
	// deployment begins (and on one recorded before the field existed).
	ReplacedRevision *int64 `json:"replaced_revision,omitempty"`
	State            string `json:"state"`
	// Reason says why a deployment failed.
	Reason string `json:"reason,omitempty"`
	// StartedAt is when applying began; a cluster deployment's timeout
	// runs from it, however often it is taken up again.
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// Nodes is the progress of each live data node; absent when there is
	// none (the deployment then succeeds at once: nodes that start later
	// catch up).
	Nodes []NodeProgress `json:"nodes,omitempty"`
}

func NewDeployment() *Deployment { return &Deployment{Action: ActionDeploy} }

func (d *Deployment) Kind() Kind  { return KindDeployment }
func (d *Deployment) Base() *Meta { return &d.Meta }
func (d *Deployment) Index() Index {
	return Index{}
}

func (d *Deployment) Check() (invalid, unprocessable []FieldError) {
	var bad fields
	// The server numbers revisions before it stores the deployment; a
	// client-chosen id that then clashed would leave a revision behind.
	if d.ID != "" {
		bad.add("id", "is assigned by the server")
	}
	switch d.Action {
	case ActionDeploy, ActionUndeploy:
		if d.Revision != 0 {
			bad.add("revision", "is set by the server for %s", d.Action)
		}
	case ActionRollback:
		if d.Revision < 1 {
			bad.add("revision", "is required for rollback: the number of an earlier revision")
		}
	default:
		bad.add("action", "must be %s, %s or %s", ActionDeploy, ActionRollback, ActionUndeploy)
	}
	if d.ReplacedRevision != nil {
		bad.add("replaced_revision", "is set by the server")
	}
	if d.State != "" {
		bad.add("state", "is set by the server")
	}
	if d.Reason != "" {
		bad.add("reason", "is set by the server")
	}
	if d.StartedAt != nil {
		bad.add("started_at", "is set by the server")
	}
	if d.FinishedAt != nil {
		bad.add("finished_at", "is set by the server")
	}
	if d.Nodes != nil {
		bad.add("nodes", "is set by the server")
	}
	return bad, nil
}

// Active records which deployment the data plane serves, so that a
// restart serves it again at once.
//
// In a cluster it is also what data nodes follow: a deployment points it at
// its revision, and points it back at the previous one (Previous*) if any
// node fails to apply it.
type Active struct {
	Meta
	DeploymentID string `json:"deployment_id"`
	Revision     int64  `json:"revision"`
	// PreviousDeploymentID and PreviousRevision are what was active before
	// DeploymentID, while a cluster deployment is in progress; "" if
	// nothing was.
	PreviousDeploymentID string `json:"previous_deployment_id,omitempty"`
	PreviousRevision     int64  `json:"previous_revision,omitempty"`
}

// ActiveID is the id of the one Active record.
const ActiveID = "current"

func (a *Active) Kind() Kind                                   { return KindActive }
func (a *Active) Base() *Meta                                  { return &a.Meta }
func (a *Active) Index() Index                                 { return Index{} }
func (a *Active) Check() (invalid, unprocessable []FieldError) { return nil, nil }

// Applier makes a revision live on the data plane. A nil revision is the
// empty configuration. Apply returns an error, and changes nothing, when
// the revision cannot be served (it does not compile).
type Applier interface {
	Apply(ctx context.Context, rev *Revision) error
}
