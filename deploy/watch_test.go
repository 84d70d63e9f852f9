package deploy

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// fakeClock is a settable clock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time       { return c.t }
func (c *fakeClock) pass(d time.Duration) { c.t = c.t.Add(d) }
func node(id string, version int64, lastSeen time.Time) *gatehouse.Node {
	return &gatehouse.Node{Meta: gatehouse.Meta{ID: id, Version: version}, Role: gatehouse.RoleData,
		LastSeen: lastSeen, HeartbeatMS: 1000}
}

func TestWatchJudgesByHeartbeatsSeenNotByTheNodesClock(t *testing.T) {
	start := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		// lastSeen is the node's stamp, by its own clock, relative to ours.
		lastSeen time.Duration
		// beats says whether the node's record changes every second.
		beats bool
		// after is how long we watch; want the verdict then.
		after time.Duration
		want  string
	}{
		{"beating node with a clock an hour behind is live", -time.Hour, true, 10 * time.Second, gatehouse.NodeLive},
		{"silent node with a clock an hour ahead goes down after three heartbeats", time.Hour, false, 4 * time.Second, gatehouse.NodeDown},
		{"silent node with a clock an hour ahead is live within three heartbeats", time.Hour, false, 2 * time.Second, gatehouse.NodeLive},
		{"node first seen long silent is down", -time.Hour, false, 0, gatehouse.NodeDown},
		{"node first seen recently is live", 0, false, 0, gatehouse.NodeLive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{start}
			w := NewWatch(clock.now)
			n := node("a", 1, start.Add(tt.lastSeen))
			w.Judge(n)
			for elapsed := time.Duration(0); elapsed < tt.after; elapsed += time.Second {
				clock.pass(time.Second)
				if tt.beats {
					n = node("a", n.Version+1, n.LastSeen.Add(time.Second))
				}
				w.Judge(n)
			}
			if n.State != tt.want {
				t.Fatalf("state %q after %v; want %q", n.State, tt.after, tt.want)
			}
		})
	}
}

func TestWatchDoesNotCountAStoreOutageAgainstTheNodes(t *testing.T) {
	start := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	clock := &fakeClock{start}
	w := NewWatch(clock.now)
	live, gone := node("live", 1, start), node("gone", 1, start.Add(-time.Hour))
	w.Judge(live)
	w.Judge(gone)
	clock.pass(time.Second)
	w.Broken()
	clock.pass(time.Minute) // neither side can reach the store
	// The first reading after the outage finds the records as they were.
	if w.Judge(live); live.State != gatehouse.NodeLive {
		t.Fatalf("node live when the store went away: %q right after it came back; want live", live.State)
	}
	if w.Judge(gone); gone.State != gatehouse.NodeDown {
		t.Fatalf("node down before the outage: %q after it; want down", gone.State)
	}
	// It still has to be heard from within its window.
	clock.pass(4 * time.Second)
	if w.Judge(live); live.State != gatehouse.NodeDown {
		t.Fatalf("node silent for 4 heartbeats after the outage: %q; want down", live.State)
	}
}

func TestStoppedNodeIsDownAtOnce(t *testing.T) {
	w := NewWatch(nil)
	n := node("a", 1, time.Now())
	n.Stopped = true
	if w.Judge(n) || n.State != gatehouse.NodeDown {
		t.Fatalf("stopped node judged %q; want down", n.State)
	}
}

func TestTwoProcessesSharingANodeNameAreLogged(t *testing.T) {
	db := open(t, t.TempDir()+"/g.db")
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	opts := AgentOptions{Name: "twin", Role: gatehouse.RoleControl, Heartbeat: time.Hour}
	first, second := NewAgent(db, nil, log, opts), NewAgent(db, nil, log, opts)
	ctx := context.Background()
	for _, a := range []*Agent{first, second, first} {
		if _, err := a.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(logs.String(), "another process reports as this node") || !strings.Contains(logs.String(), second.Node().Instance) {
		t.Fatalf("log after two processes reported as node twin:\n%s\nwant an error naming the other instance", logs.String())
	}
}

func TestARestartedNodeIsNotMistakenForATwin(t *testing.T) {
	db := open(t, t.TempDir()+"/g.db")
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	opts := AgentOptions{Name: "a", Role: gatehouse.RoleControl, Heartbeat: time.Hour}
	ctx := context.Background()
	for range 2 { // the first process dies without Stop; the second starts
		if _, err := NewAgent(db, nil, log, opts).Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Contains(logs.String(), "another process") {
		t.Fatalf("a restart was logged as a twin:\n%s", logs.String())
	}
}
