package gatehouse

import (
	"cmp"
	"maps"
	"slices"
	"strings"
	"time"
)

// A target's state, as a node's upstream pool knows it.
const (
	// TargetHealthy is in rotation: it gets requests.
	TargetHealthy = "healthy"
	// TargetUnhealthy is out of rotation: active checks failed
	// unhealthy_threshold times in a row; healthy_threshold successes
	// bring it back.
	TargetUnhealthy = "unhealthy"
	// TargetEjected is out of rotation: passive health saw max_fails
	// failed requests in a row; after a rest one trial request is let
	// through, whose success brings it back.
	TargetEjected = "ejected"
	// TargetDisabled has weight 0: it is never chosen.
	TargetDisabled = "disabled"
	// TargetMixed, in a cluster's view only, is a target whose state
	// differs between nodes.
	TargetMixed = "mixed"
)

// A service's state in a cluster's view (ServiceHealthView.State).
const (
	// ServiceHealthy: every target with a weight is healthy on every node.
	ServiceHealthy = "healthy"
	// ServiceDegraded: some target is out of rotation on some node, and
	// every node still has one in rotation.
	ServiceDegraded = "degraded"
	// ServiceUnhealthy: some node has no target in rotation; it answers
	// the service's requests 503.
	ServiceUnhealthy = "unhealthy"
	// ServiceUnknown: no live node reports the service: it is not in the
	// revision they serve, or no node serving traffic is live.
	ServiceUnknown = "unknown"
)

// StatsMaxTargets bounds the targets a node's published figures describe,
// over all services (a service has at most MaxTargets): services with a
// target out of rotation first, then by id, while they fit; the others
// are counted in NodeStats.DroppedServices.
const StatsMaxTargets = 1000

// ServiceHealth is one node's view of one service's targets: what its
// upstream pool knows when the figures are taken. The pool is built when
// the node applies a revision, so every state starts healthy there.
type ServiceHealth struct {
	ServiceID string `json:"service_id"`
	// ActiveChecks: the service has a health_check, probing every
	// target. PassiveChecks: failed requests eject targets (the default).
	ActiveChecks  bool           `json:"active_checks"`
	PassiveChecks bool           `json:"passive_checks"`
	Targets       []TargetHealth `json:"targets"`
}

// TargetHealth is one target's state on one node.
type TargetHealth struct {
	URL    string `json:"url"`
	Weight int    `json:"weight"`
	TargetCondition
}

// TargetCondition is a target's state on one node, since when, and the
// last failure the node saw of it.
type TargetCondition struct {
	// State is one of TargetHealthy, TargetUnhealthy, TargetEjected,
	// TargetDisabled.
	State string `json:"state"`
	// Since is the state's last change: the node's applying the
	// revision, if it never changed.
	Since time.Time `json:"since"`
	// TrialAt is when an ejected target is due its trial request.
	TrialAt time.Time `json:"trial_at,omitzero"`
	// LastFailure is the last failure seen (nil: none since the revision
	// was applied): a failed probe of the active checks, or for passive
	// health the first failed request of a run of them and the one that
	// ejected the target (each failure is not recorded: the request path
	// stays untouched).
	LastFailure *TargetFailure `json:"last_failure,omitempty"`
}

// TargetFailure is a failure seen of a target.
type TargetFailure struct {
	At time.Time `json:"at"`
	// Check is "active" (a probe) or "passive" (a request).
	Check string `json:"check"`
	// Cause says what failed in a few words ("connection refused",
	// "answered 503").
	Cause string `json:"cause"`
}

// The values of TargetFailure.Check.
const (
	CheckActive  = "active"
	CheckPassive = "passive"
)

// troubled reports whether the target is out of rotation by a check.
func (t *TargetHealth) troubled() bool {
	return t.State == TargetUnhealthy || t.State == TargetEjected
}

// BoundHealth keeps, of services, those that fit in limit targets: those
// with a target out of rotation first, then by id. It returns them by id,
// and how many were left out.
func BoundHealth(services []ServiceHealth, limit int) ([]ServiceHealth, int) {
	troubled := func(s *ServiceHealth) bool {
		return slices.ContainsFunc(s.Targets, func(t TargetHealth) bool { return t.troubled() })
	}
	slices.SortFunc(services, func(a, b ServiceHealth) int {
		if ta, tb := troubled(&a), troubled(&b); ta != tb {
			if ta {
				return -1
			}
			return 1
		}
		return strings.Compare(a.ServiceID, b.ServiceID)
	})
	kept, n := services[:0:0], 0
	for _, s := range services {
		if n+len(s.Targets) > limit {
			continue
		}
		n += len(s.Targets)
		kept = append(kept, s)
	}
	slices.SortFunc(kept, func(a, b ServiceHealth) int { return strings.Compare(a.ServiceID, b.ServiceID) })
	return kept, len(services) - len(kept)
}

// ServiceHealthView is a service's targets as every live node serving
// traffic sees them: the body of GET /services/{id}/health, and an entry
// of GET /stats's services.
type ServiceHealthView struct {
	ServiceID string `json:"service_id"`
	// State sums the nodes' views up: ServiceHealthy, ServiceDegraded,
	// ServiceUnhealthy or ServiceUnknown.
	State string `json:"state"`
	// ActiveChecks and PassiveChecks are as the nodes apply them (true if
	// any node does).
	ActiveChecks  bool               `json:"active_checks"`
	PassiveChecks bool               `json:"passive_checks"`
	Targets       []TargetHealthView `json:"targets"`
	// Nodes are the nodes whose view is included, by id.
	Nodes []string `json:"nodes"`
}

// TargetHealthView is a target as every node sees it.
type TargetHealthView struct {
	URL    string `json:"url"`
	Weight int    `json:"weight"`
	// State is the nodes' common state, or TargetMixed when they differ.
	State string `json:"state"`
	// HealthyNodes is how many of the nodes have it in rotation.
	HealthyNodes int                `json:"healthy_nodes"`
	Nodes        []NodeTargetHealth `json:"nodes"`
}

// NodeTargetHealth is one node's view of a target.
type NodeTargetHealth struct {
	Node string `json:"node"`
	TargetCondition
}

// SumHealth merges the services' health of the nodes that have figures,
// one view per service, by id; serviceID, if set, keeps that service only
// (and answers it unknown if no node reports it).
func SumHealth(nodes []NodeFigures, serviceID string) []ServiceHealthView {
	views := map[string]*ServiceHealthView{}
	targets := map[string]map[string]*TargetHealthView{} // service → url → view
	order := map[string][]string{}                       // service → urls, first seen first
	// serving counts, per service, the nodes that have a target in rotation.
	serving := map[string]int{}
	for _, nf := range nodes {
		if nf.Stats == nil {
			continue
		}
		for _, s := range nf.Stats.Services {
			if serviceID != "" && s.ServiceID != serviceID {
				continue
			}
			v := views[s.ServiceID]
			if v == nil {
				v = &ServiceHealthView{ServiceID: s.ServiceID, Targets: []TargetHealthView{}, Nodes: []string{}}
				views[s.ServiceID], targets[s.ServiceID] = v, map[string]*TargetHealthView{}
			}
			v.ActiveChecks = v.ActiveChecks || s.ActiveChecks
			v.PassiveChecks = v.PassiveChecks || s.PassiveChecks
			v.Nodes = append(v.Nodes, nf.Node.Node)
			inRotation := false
			for _, t := range s.Targets {
				tv := targets[s.ServiceID][t.URL]
				if tv == nil {
					tv = &TargetHealthView{URL: t.URL, Weight: t.Weight, State: t.State}
					targets[s.ServiceID][t.URL] = tv
					order[s.ServiceID] = append(order[s.ServiceID], t.URL)
				}
				if tv.State != t.State {
					tv.State = TargetMixed
				}
				if t.State == TargetHealthy {
					tv.HealthyNodes++
					inRotation = true
				}
				tv.Nodes = append(tv.Nodes, NodeTargetHealth{Node: nf.Node.Node, TargetCondition: t.TargetCondition})
			}
			if inRotation {
				serving[s.ServiceID]++
			}
		}
	}
	if serviceID != "" && views[serviceID] == nil {
		views[serviceID] = &ServiceHealthView{ServiceID: serviceID, Targets: []TargetHealthView{}, Nodes: []string{}}
	}
	out := make([]ServiceHealthView, 0, len(views))
	for _, id := range slices.Sorted(maps.Keys(views)) {
		v := views[id]
		slices.Sort(v.Nodes)
		v.State = ServiceHealthy
		for _, url := range order[id] {
			tv := targets[id][url]
			slices.SortFunc(tv.Nodes, func(a, b NodeTargetHealth) int { return cmp.Compare(a.Node, b.Node) })
			if tv.State != TargetHealthy && tv.State != TargetDisabled {
				v.State = ServiceDegraded
			}
			v.Targets = append(v.Targets, *tv)
		}
		switch {
		case len(v.Nodes) == 0:
			v.State = ServiceUnknown
		case serving[id] < len(v.Nodes):
			v.State = ServiceUnhealthy
		}
		out = append(out, *v)
	}
	return out
}
