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

func storedFindings(t *testing.T, store gatehouse.Store, node string) (string, int64) {
	t.Helper()
	rec, err := store.Get(context.Background(), gatehouse.KindFindings, node)
	if err != nil {
		t.Fatal(err)
	}
	return string(rec.Body), rec.Version
}

// TestAgentPublishesItsFindingsOnlyWhenTheyChanged: the node's findings
// reach the store on its publish interval, an unchanged snapshot is not
// written again, and Stop publishes what the last interval had not.
func TestAgentPublishesItsFindingsOnlyWhenTheyChanged(t *testing.T) {
	db := open(t, t.TempDir()+"/g.db")
	f := &findings{body: `{"n":1}`, read: make(chan struct{})}
	a := NewAgent(db, nil, nil, AgentOptions{Name: "edge", Role: gatehouse.RoleData, Heartbeat: time.Hour,
		Findings: f.get, FindingsInterval: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	f.reads(t, 2)
	body, first := storedFindings(t, db, "edge")
	if body != `{"n":1}` {
		t.Fatalf("stored findings %s; want the node's", body)
	}
	f.reads(t, 5)
	if _, v := storedFindings(t, db, "edge"); v != first {
		t.Fatalf("unchanged findings were written again: version %d, then %d", first, v)
	}
	f.set(`{"n":2}`)
	f.reads(t, 2)
	if body, _ := storedFindings(t, db, "edge"); body != `{"n":2}` {
		t.Fatalf("stored findings %s after a change; want {\"n\":2}", body)
	}

	cancel()
	<-done
	f.set(`{"n":3}`)
	if err := a.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if body, _ := storedFindings(t, db, "edge"); body != `{"n":3}` {
		t.Fatalf("stored findings %s after Stop; want the last ones, {\"n\":3}", body)
	}

	// A later process of the same name replaces its predecessor's record.
	again := NewAgent(db, nil, nil, AgentOptions{Name: "edge", Role: gatehouse.RoleData,
		Findings: func() ([]byte, error) { return []byte(`{"n":0}`), nil }})
	if err := again.publish(context.Background()); err != nil {
		t.Fatal(err)
	}
	if body, _ := storedFindings(t, db, "edge"); body != `{"n":0}` {
		t.Fatalf("stored findings %s after a restart; want the new process's", body)
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
// when notices may have been missed, and neither for published findings,
// which every data node writes on its own interval.
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
	} {
		if agent, deployer := wakes(tc.kind); agent != tc.agent || deployer != tc.deployer {
			t.Errorf("a change to %q wakes the agent %v, the deployer %v; want %v, %v", tc.kind, agent, deployer, tc.agent, tc.deployer)
		}
	}
}
