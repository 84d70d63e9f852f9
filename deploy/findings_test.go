package deploy

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// findings is an AgentOptions.Findings whose body the test sets, and
// which says each time it was read.
type findings struct {
	mu   sync.Mutex
	body string
	read chan struct{}
}

func (f *findings) set(body string) {
	f.mu.Lock()
	f.body = body
	f.mu.Unlock()
}

func (f *findings) get() ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case f.read <- struct{}{}:
	default:
	}
	return []byte(f.body), nil
}

// reads waits until the agent read the findings n more times: the
// publish of all but the last of them is then done.
func (f *findings) reads(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-f.read:
		case <-time.After(10 * time.Second):
			t.Fatal("the agent stopped reading its findings")
		}
	}
}

func storedRecord(t *testing.T, store gatehouse.Store, kind gatehouse.Kind, node string) (string, int64) {
	t.Helper()
	rec, err := store.Get(context.Background(), kind, node)
	if err != nil {
		t.Fatal(err)
	}
	return string(rec.Body), rec.Version
}

// TestAgentPublishesItsFindingsAndFiguresOnlyWhenTheyChanged: the
// node's findings and live figures reach the store on their publish
// intervals, an unchanged snapshot is not written again, and Stop
// publishes what the last interval had not.
func TestAgentPublishesItsFindingsAndFiguresOnlyWhenTheyChanged(t *testing.T) {
	for _, tc := range []struct {
		kind gatehouse.Kind
		set  func(o *AgentOptions, read func() ([]byte, error))
	}{
		{gatehouse.KindFindings, func(o *AgentOptions, read func() ([]byte, error)) {
			o.Findings, o.FindingsInterval = read, time.Millisecond
		}},
		{gatehouse.KindStats, func(o *AgentOptions, read func() ([]byte, error)) { o.Stats, o.StatsInterval = read, time.Millisecond }},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			db := open(t, t.TempDir()+"/g.db")
			f := &findings{body: `{"n":1}`, read: make(chan struct{})}
			opts := AgentOptions{Name: "edge", Role: gatehouse.RoleData, Heartbeat: time.Hour}
			tc.set(&opts, f.get)
			a := NewAgent(db, nil, nil, opts)
			ctx, cancel := context.WithCancel(context.Background())
			if _, err := a.Start(ctx); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { a.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()

			f.reads(t, 2)
			body, first := storedRecord(t, db, tc.kind, "edge")
			if body != `{"n":1}` {
				t.Fatalf("stored %s; want the node's", body)
			}
			f.reads(t, 5)
			if _, v := storedRecord(t, db, tc.kind, "edge"); v != first {
				t.Fatalf("an unchanged body was written again: version %d, then %d", first, v)
			}
			f.set(`{"n":2}`)
			f.reads(t, 2)
			if body, _ := storedRecord(t, db, tc.kind, "edge"); body != `{"n":2}` {
				t.Fatalf("stored %s after a change; want {\"n\":2}", body)
			}

			cancel()
			<-done
			f.set(`{"n":3}`)
			if err := a.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			if body, _ := storedRecord(t, db, tc.kind, "edge"); body != `{"n":3}` {
				t.Fatalf("stored %s after Stop; want the last, {\"n\":3}", body)
			}

			// A later process of the same name replaces its predecessor's record.
			opts = AgentOptions{Name: "edge", Role: gatehouse.RoleData}
			tc.set(&opts, func() ([]byte, error) { return []byte(`{"n":0}`), nil })
			again := NewAgent(db, nil, nil, opts)
			if err := again.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			if body, _ := storedRecord(t, db, tc.kind, "edge"); body != `{"n":0}` {
				t.Fatalf("stored %s after a restart; want the new process's", body)
			}
		})
	}
}

func TestAgentPublishesFindingsAtMostEveryDefaultIntervalUnlessTold(t *testing.T) {
	a := NewAgent(nil, nil, nil, AgentOptions{Name: "edge"})
	if a.opts.FindingsInterval != DefaultFindingsInterval || DefaultFindingsInterval < 10*time.Second {
		t.Fatalf("interval %v (default %v); want the default, at least 10s: the bound on a node's write rate", a.opts.FindingsInterval, DefaultFindingsInterval)
	}
}

// TestAChangeWakesOnlyWhomItConcerns: a store's change notices wake the
// agent for the active pointer, the deployer for the nodes' reports, both
// when notices may have been missed, and neither for published findings
// and figures, which every data node writes on its own interval.
func TestAChangeWakesOnlyWhomItConcerns(t *testing.T) {
	for _, tc := range []struct {
		kind            gatehouse.Kind
		agent, deployer bool
	}{
		{gatehouse.KindActive, true, false},
		{gatehouse.KindNode, false, true},
		{gatehouse.KindDeployment, true, true},
		{"", true, true},
		{gatehouse.KindFindings, false, false},
		{gatehouse.KindStats, false, false},
	} {
		if agent, deployer := wakes(tc.kind); agent != tc.agent || deployer != tc.deployer {
			t.Errorf("a change to %q wakes the agent %v, the deployer %v; want %v, %v", tc.kind, agent, deployer, tc.agent, tc.deployer)
		}
	}
}
