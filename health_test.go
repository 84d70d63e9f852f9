package gatehouse

import (
	"fmt"
	"slices"
	"testing"
)

// nodeWith is a live node's figures holding one service's targets, each
// in the state given.
func nodeWith(node, service string, states ...string) NodeFigures {
	s := ServiceHealth{ServiceID: service, PassiveChecks: true}
	for i, st := range states {
		s.Targets = append(s.Targets, TargetHealth{URL: fmt.Sprintf("http://t%d", i), Weight: 1, TargetCondition: TargetCondition{State: st}})
	}
	return NodeFigures{Node: NodeShare{Node: node, State: NodeLive}, Stats: &NodeStats{Services: []ServiceHealth{s}}}
}

// TestSumHealthSaysHowTheNodesSeeAService: the service's state sums up
// every node's view: one node without a target in rotation makes it
// unhealthy (that node answers 503), a target out of rotation anywhere
// degraded; a target the nodes disagree on is mixed.
func TestSumHealthSaysHowTheNodesSeeAService(t *testing.T) {
	down := NodeFigures{Node: NodeShare{Node: "gone", State: NodeDown}}
	for _, tc := range []struct {
		desc        string
		nodes       []NodeFigures
		wantService string
		wantTargets []string
		wantHealthy []int
	}{
		{"all healthy everywhere", []NodeFigures{nodeWith("a", "s", TargetHealthy, TargetHealthy), nodeWith("b", "s", TargetHealthy, TargetHealthy)},
			ServiceHealthy, []string{TargetHealthy, TargetHealthy}, []int{2, 2}},
		{"a weight of 0 is no trouble", []NodeFigures{nodeWith("a", "s", TargetHealthy, TargetDisabled)},
			ServiceHealthy, []string{TargetHealthy, TargetDisabled}, []int{1, 0}},
		{"one target down on one node", []NodeFigures{nodeWith("a", "s", TargetHealthy, TargetUnhealthy), nodeWith("b", "s", TargetHealthy, TargetHealthy)},
			ServiceDegraded, []string{TargetHealthy, TargetMixed}, []int{2, 1}},
		{"one node has none in rotation", []NodeFigures{nodeWith("a", "s", TargetEjected, TargetUnhealthy), nodeWith("b", "s", TargetHealthy, TargetHealthy)},
			ServiceUnhealthy, []string{TargetMixed, TargetMixed}, []int{1, 1}},
		{"down on the only node", []NodeFigures{nodeWith("a", "s", TargetUnhealthy), down},
			ServiceUnhealthy, []string{TargetUnhealthy}, []int{0}},
		{"no node reports it", []NodeFigures{down, nodeWith("a", "other", TargetHealthy)},
			ServiceUnknown, nil, nil},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			views := SumHealth(tc.nodes, "s")
			if len(views) != 1 {
				t.Fatalf("got %d views; want s's alone", len(views))
			}
			v := views[0]
			var states []string
			var healthy []int
			for _, tv := range v.Targets {
				states, healthy = append(states, tv.State), append(healthy, tv.HealthyNodes)
			}
			if v.ServiceID != "s" || v.State != tc.wantService || !slices.Equal(states, tc.wantTargets) || !slices.Equal(healthy, tc.wantHealthy) {
				t.Errorf("got %s %s, targets %v healthy on %v nodes; want %s, %v on %v", v.ServiceID, v.State, states, healthy,
					tc.wantService, tc.wantTargets, tc.wantHealthy)
			}
		})
	}
}

// TestBoundHealthKeepsTheServicesInTroubleFirst: over the cap, the
// services with a target out of rotation are kept before healthy ones,
// whatever their ids; a service is kept whole or not at all.
func TestBoundHealthKeepsTheServicesInTroubleFirst(t *testing.T) {
	svc := func(id string, states ...string) ServiceHealth {
		return nodeWith("n", id, states...).Stats.Services[0]
	}
	kept, dropped := BoundHealth([]ServiceHealth{
		svc("a", TargetHealthy, TargetHealthy),
		svc("b", TargetHealthy),
		svc("z", TargetHealthy, TargetEjected),
		svc("y", TargetUnhealthy),
	}, 4)
	var ids []string
	for _, s := range kept {
		ids = append(ids, s.ServiceID)
	}
	if !slices.Equal(ids, []string{"b", "y", "z"}) || dropped != 1 {
		t.Fatalf("kept %v, dropped %d; want b, y, z by id (y and z in trouble first, then b that fits), 1 dropped", ids, dropped)
	}
}
