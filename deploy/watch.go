package deploy

import (
	"context"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Watch judges whether nodes are live from what this process has seen of
// their heartbeats, timed by its own clock: a node is live while its record
// keeps changing. Comparing the LastSeen a node stamps with its clock to
// this process's clock would turn every skew between machines into a wrong
// verdict: a node whose clock lags would be left out of deployments while it
// serves, one whose clock runs ahead waited for after it died. The node's
// stamp is only a hint for a node seen for the first time, and a wrong hint
// lasts one heartbeat.
//
// An observer that cannot read the store sees no heartbeats, and the nodes
// most likely cannot write them either: after an outage every node would
// look down, and a deployment would complete with no node applying it. So
// the time this process's view was broken does not count against the nodes
// that were live when it broke.
type Watch struct {
	now func() time.Time

	mu   sync.Mutex
	seen map[string]sighting
	// lastRead is the time of the last reading; brokeAt, that of the last
	// reading before the view broke (zero while it is whole).
	lastRead, brokeAt time.Time
}

type sighting struct {
	version int64
	// at is when this process saw the version first; zero if the node was
	// down when first seen and has not reported since.
	at     time.Time
	window time.Duration
}

// NewWatch returns a Watch on the clock now (nil: time.Now).
func NewWatch(now func() time.Time) *Watch {
	if now == nil {
		now = time.Now
	}
	return &Watch{now: now, seen: map[string]sighting{}}
}

// Judge records a reading of n, sets its State and reports whether it is
// live.
func (w *Watch) Judge(n *gatehouse.Node) bool {
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.brokeAt.IsZero() {
		w.mend(now)
	}
	w.lastRead = now
	s, ok := w.seen[n.ID]
	if !ok || s.version != n.Version {
		s = sighting{version: n.Version, at: now, window: n.LiveWindow()}
		if !ok && !n.Live(now) {
			s.at = time.Time{} // first seen long silent, by its own clock
		}
		w.seen[n.ID] = s
	}
	live := !n.Stopped && !s.at.IsZero() && now.Sub(s.at) <= s.window
	n.State = gatehouse.NodeDown
	if live {
		n.State = gatehouse.NodeLive
	}
	return live
}

// Broken tells the Watch that a read of the nodes failed.
func (w *Watch) Broken() {
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.brokeAt.IsZero() {
		w.brokeAt = w.lastRead
		if w.brokeAt.IsZero() {
			w.brokeAt = now
		}
	}
}

// mend makes the view whole again at now: each node that was live at the
// last reading before it broke gets a fresh window to be seen in. w.mu is
// held.
func (w *Watch) mend(now time.Time) {
	for id, s := range w.seen {
		if !s.at.IsZero() && w.brokeAt.Sub(s.at) <= s.window {
			s.at = now
			w.seen[id] = s
		}
	}
	w.brokeAt = time.Time{}
}

// observe reads every node into the Watch, calling each with its verdict.
func (w *Watch) observe(ctx context.Context, store gatehouse.Store, each func(n *gatehouse.Node, live bool)) error {
	var after int64
	for {
		page, err := store.List(ctx, gatehouse.KindNode, gatehouse.ListOptions{After: after, Limit: gatehouse.MaxPageSize})
		if err != nil {
			if ctx.Err() == nil {
				w.Broken()
			}
			return err
		}
		for _, rec := range page.Records {
			var n gatehouse.Node
			if err := gatehouse.Decode(rec, &n); err != nil {
				return err
			}
			live := w.Judge(&n)
			if each != nil {
				each(&n, live)
			}
		}
		if page.Next == 0 {
			return nil
		}
		after = page.Next
	}
}
