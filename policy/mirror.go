package policy

import (
	"fmt"
	"sync/atomic"

	"github.com/gatehouse/gatehouse"
)

func init() { register(gatehouse.PolicyMirror, buildMirror) }

// Mirror is a route's compiled mirror policies (gatehouse.MirrorConfig).
// It refuses nothing: it draws which of its shadow services get a copy of
// the request and lists them in Request.Mirrors. The data plane makes the
// copies from the request as the upstream gets it (after a transform),
// sends them on their own goroutines and throws their answers away.
// Several mirror policies at one level all apply.
type Mirror struct {
	targets []*MirrorTarget
}

// MirrorTarget is one mirror policy on one route.
type MirrorTarget struct {
	PolicyID  string
	ServiceID string
	// MaxBodyBytes bounds the body copied: a request with a longer one
	// is not mirrored.
	MaxBodyBytes int64
	bp           uint32 // share copied, of gatehouse.SplitScale
	max          int64  // shadow requests in flight at most
	// inFlight counts this policy's copies on this route, each from
	// before its body is kept to the end of its shadow request; it
	// outlives revisions (State), so that a redeploy does not let a
	// second max_concurrent go out beside the first.
	inFlight *atomic.Int64
	// draw is the share's draw in [0, SplitScale); tests replace it.
	draw func() uint32
}

func buildMirror(b *Build, pols []*gatehouse.Policy) (Step, error) {
	cfgs, err := configs[gatehouse.MirrorConfig](pols)
	if err != nil {
		return nil, err
	}
	m := &Mirror{}
	for i, c := range cfgs {
		if !b.HasService(c.ServiceID) {
			return nil, fmt.Errorf("policy %q mirrors to service %q, which is not in the revision", pols[i].ID, c.ServiceID)
		}
		m.targets = append(m.targets, &MirrorTarget{
			PolicyID: pols[i].ID, ServiceID: c.ServiceID, MaxBodyBytes: c.MaxBodyBytes,
			bp: uint32(c.BasisPoints()), max: int64(c.MaxConcurrent),
			inFlight: Get(b.Env.State, b.StateKey(pols[i], true)+"/mirror", func() *atomic.Int64 { return new(atomic.Int64) }),
			draw:     randomDraw,
		})
	}
	return m, nil
}

// Check lists the targets whose share this request falls in.
func (m *Mirror) Check(r *Request) error {
	for _, t := range m.targets {
		if t.bp >= gatehouse.SplitScale || t.draw() < t.bp {
			r.Mirrors = append(r.Mirrors, t)
		}
	}
	return nil
}

// Acquire takes one of the target's slots for a shadow request, or
// reports false if max_concurrent are in flight (the copy is dropped).
// Release gives it back.
func (t *MirrorTarget) Acquire() bool {
	if t.inFlight.Add(1) > t.max {
		t.inFlight.Add(-1)
		return false
	}
	return true
}

// Release gives back a slot Acquire took.
func (t *MirrorTarget) Release() { t.inFlight.Add(-1) }

// InFlight is the number of the target's slots taken.
func (t *MirrorTarget) InFlight() int64 { return t.inFlight.Load() }

// Mirrors returns the route's mirror targets, nil if it has none: the
// data plane resolves their metrics once.
func (c *Chain) Mirrors() []*MirrorTarget {
	if c == nil {
		return nil
	}
	return c.mirrors
}
