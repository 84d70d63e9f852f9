//go:build unix

package main

import (
	"encoding/json"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/testupstream"
)

// mortal is an upstream that can die (its listener closed: connections
// are refused) and come back on the same address.
type mortal struct {
	t    *testing.T
	addr string
	srv  *http.Server
}

func startMortal(t *testing.T) *mortal {
	m := &mortal{t: t, addr: "127.0.0.1:0"}
	m.revive()
	t.Cleanup(m.die)
	return m
}

func (m *mortal) revive() {
	m.t.Helper()
	var ln net.Listener
	var err error
	// The port was ours a moment ago; another process may briefly hold it.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ln, err = net.Listen("tcp", m.addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		m.t.Fatalf("listen again on %s: %v", m.addr, err)
	}
	m.addr = ln.Addr().String()
	m.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
	go m.srv.Serve(ln)
}

func (m *mortal) die() { m.srv.Close() }

func (m *mortal) url() string { return "http://" + m.addr }

// waitHealth polls p's GET /admin/v1/services/{id}/health until done
// accepts the answer, failing the test after 20s.
func waitHealth(t *testing.T, p *proc, id string, done func(*gatehouse.ServiceHealthView) bool) *gatehouse.ServiceHealthView {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := p.do("GET", "/admin/v1/services/"+id+"/health", statsToken, "")
		v := &gatehouse.ServiceHealthView{}
		if r.status != http.StatusOK || json.Unmarshal(r.body, v) != nil {
			t.Fatalf("health of %s: %d %s", id, r.status, r.body)
		}
		if done(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("the health of %s is still %.3000s", id, r.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// targetStates are v's targets' states, in order.
func targetStates(v *gatehouse.ServiceHealthView) []string {
	var out []string
	for _, tv := range v.Targets {
		out = append(out, tv.State)
	}
	return out
}

func statesAre(want ...string) func(*gatehouse.ServiceHealthView) bool {
	return func(v *gatehouse.ServiceHealthView) bool {
		got := targetStates(v)
		if len(got) != len(want) {
			return false
		}
		for i := range got {
			if got[i] != want[i] {
				return false
			}
		}
		return true
	}
}

// TestServiceHealthFollowsAnUpstreamThatDiesAndComesBack: over real HTTP,
// a target whose upstream dies goes unhealthy once the active checks
// fail, with the cause, and healthy again once it comes back; a target
// that refuses the requests proxied to it is ejected by passive health.
// The admin API shows each, and GET /stats lists the same.
func TestServiceHealthFollowsAnUpstreamThatDiesAndComesBack(t *testing.T) {
	alive := testupstream.Start(t)
	dying := startMortal(t)
	refused := startMortal(t)
	refused.die()
	p := launch(t, t.TempDir(), []string{"--node-name", "solo", "--stats-interval", "1h"}, "GATEHOUSE_ADMIN_TOKEN="+statsToken)
	wantStatus(t, "create the checked service", p.do("POST", "/admin/v1/services", statsToken, `{"id":"checked","name":"checked",
		"targets":[{"url":"`+alive.URL+`"},{"url":"`+dying.url()+`"}],
		"health_check":{"path":"/status/200","interval_ms":300,"timeout_ms":250,"healthy_threshold":1,"unhealthy_threshold":2}}`), http.StatusCreated)
	wantStatus(t, "create the passive service", p.do("POST", "/admin/v1/services", statsToken, `{"id":"passive","name":"passive",
		"targets":[{"url":"`+alive.URL+`"},{"url":"`+refused.url()+`"}]}`), http.StatusCreated)
	wantStatus(t, "create a route", p.do("POST", "/admin/v1/routes", statsToken,
		`{"id":"p","name":"p","paths":["/p/*"],"strip_path":true,"service_id":"passive"}`), http.StatusCreated)
	wantSucceeded(t, "deployment", p.deployAndWait(statsToken, `{}`))

	v := waitHealth(t, p, "checked", statesAre(gatehouse.TargetHealthy, gatehouse.TargetHealthy))
	if v.State != gatehouse.ServiceHealthy || !v.ActiveChecks || len(v.Nodes) != 1 || v.Nodes[0] != "solo" {
		t.Fatalf("checked, both up: %+v; want healthy with active checks, seen by solo", v)
	}
	died := time.Now()
	dying.die()
	v = waitHealth(t, p, "checked", statesAre(gatehouse.TargetHealthy, gatehouse.TargetUnhealthy))
	down := v.Targets[1].Nodes[0]
	if f := down.LastFailure; v.State != gatehouse.ServiceDegraded || f == nil || f.Check != gatehouse.CheckActive ||
		f.Cause != "connection refused" || down.Since.Before(died.Add(-time.Second)) {
		t.Fatalf("checked, one dead: %+v, its target on solo %+v; want degraded, down since it died, an active check's connection refused", v, down)
	}
	dying.revive()
	v = waitHealth(t, p, "checked", statesAre(gatehouse.TargetHealthy, gatehouse.TargetHealthy))
	if back := v.Targets[1].Nodes[0]; v.State != gatehouse.ServiceHealthy || !back.Since.After(down.Since) || back.LastFailure == nil {
		t.Fatalf("checked, back: %+v, the target %+v; want healthy since after it went down, its last failure kept", v, back)
	}

	// Round-robin over two targets: every other request is refused,
	// until the third refusal in a row ejects that target.
	for range 8 {
		p.do("GET", "http://"+p.proxyAddr+"/p/echo", "", "")
	}
	v = waitHealth(t, p, "passive", statesAre(gatehouse.TargetHealthy, gatehouse.TargetEjected))
	ejected := v.Targets[1].Nodes[0]
	if f := ejected.LastFailure; v.State != gatehouse.ServiceDegraded || v.ActiveChecks || !v.PassiveChecks || f == nil ||
		f.Check != gatehouse.CheckPassive || f.Cause != "connection refused" || ejected.TrialAt.IsZero() {
		t.Fatalf("passive: %+v, the refused target %+v; want degraded, ejected by requests refused, with its trial's time", v, ejected)
	}

	r := p.do("GET", "/admin/v1/stats", statsToken, "")
	var cs gatehouse.ClusterStats
	if err := json.Unmarshal(r.body, &cs); err != nil || len(cs.Services) != 2 || cs.Services[0].ServiceID != "checked" || cs.Services[1].State != gatehouse.ServiceDegraded {
		t.Fatalf("GET /stats services: %s; want checked and passive, passive degraded", r.body)
	}
}
