package policy

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/problem"
)

// fakeSpec is a description under which the operation "getPet" documents
// only 200, and whose body schema is broken by the body "bad".
type fakeSpec struct{ bodies [][]byte }

func (*fakeSpec) Operation(*Request, *Response) string { return "getPet" }

func (*fakeSpec) JudgeHead(r *Request, resp *Response, broke func(rule, detail string)) bool {
	if resp.Status != 200 {
		broke(audit.UndocumentedStatus, "getPet documents no 418")
		return false
	}
	return true
}

func (s *fakeSpec) JudgeBody(r *Request, resp *Response, body []byte, broke func(rule, detail string)) {
	s.bodies = append(s.bodies, body)
	if string(body) == "bad" {
		broke(audit.BodySchema, "/name: required")
	}
}

// respondWith runs a's response side as the data plane would, for a
// response of status with body; held says whether the data plane held it
// (and how much it read), else it streamed and was kept.
func respondWith(a *auditor, status int, body string) (*Response, bool) {
	r := &Request{R: httptest.NewRequest("GET", "/pets/1", nil), Now: time.Now()}
	resp := &r.Resp
	resp.Method, resp.Status, resp.Header = "GET", status, http.Header{"Content-Type": {"application/json"}}
	resp.ContentLength, resp.Body = int64(len(body)), audit.BodyPresent
	state := a.RespondHead(r, resp)
	if resp.Replace != nil || state == 0 {
		return resp, false
	}
	if n := resp.Held(); n > 0 {
		resp.Bytes, resp.Complete, resp.Over = int64(len(body)), len(body) <= int(n), len(body) > int(n)
		resp.Prefix = []byte(body[:min(len(body), int(n))])
		a.RespondHeld(r, resp, state)
		return resp, true
	}
	resp.Bytes, resp.Complete = int64(len(body)), true
	resp.Prefix = []byte(body[:min(len(body), int(resp.Kept()))])
	a.RespondEnd(r, resp, state)
	WaitJudges()
	return resp, false
}

func TestSpecRulesPlugIntoTheAuditor(t *testing.T) {
	t.Run("report: recorded under the operation, the body kept and judged at its end", func(t *testing.T) {
		rec := audit.NewRecorder(audit.RecorderOptions{})
		spec := &fakeSpec{}
		a := &auditor{route: "r", judge: true, rate: 1, sink: rec, spec: spec, bodyLimit: 8}
		if resp, held := respondWith(a, 200, "bad"); resp.Replace != nil || held {
			t.Fatalf("replaced %v, held %v; want the response streamed as it is", resp.Replace, held)
		}
		if e := rec.Entries(audit.Filter{Rule: audit.BodySchema}); len(e) != 1 || e[0].Operation != "getPet" {
			t.Fatalf("got %+v; want one body-schema finding of getPet", e)
		}
		respondWith(a, 200, "longer than eight")
		if len(spec.bodies) != 1 {
			t.Fatalf("judged %d bodies; want the one within the limit", len(spec.bodies))
		}
		respondWith(a, 418, "{}")
		if e := rec.Entries(audit.Filter{Rule: audit.UndocumentedStatus}); len(e) != 1 || e[0].Status != 418 {
			t.Fatalf("got %+v; want undocumented-status for 418", e)
		}
	})
	t.Run("enforce: a head or a held body that breaks the description is replaced", func(t *testing.T) {
		a := &auditor{route: "r", judge: true, enforce: true, rate: 1, spec: &fakeSpec{}, bodyLimit: 8}
		resp, _ := respondWith(a, 418, "{}")
		var nc *problem.Nonconforming
		if !errors.As(resp.Replace, &nc) || nc.Rule != audit.UndocumentedStatus || nc.UpstreamStatus != 418 {
			t.Fatalf("418: replaced by %v; want undocumented-status", resp.Replace)
		}
		resp, held := respondWith(a, 200, "bad")
		if !held || !errors.As(resp.Replace, &nc) || nc.Rule != audit.BodySchema {
			t.Fatalf("bad body: held %v, replaced by %v; want held and replaced for body-schema", held, resp.Replace)
		}
		if resp, _ := respondWith(a, 200, "good"); resp.Replace != nil {
			t.Fatalf("good body replaced by %v", resp.Replace)
		}
		if resp, _ := respondWith(a, 200, "bad but longer than the limit"); resp.Replace != nil {
			t.Fatalf("a body over the limit was replaced by %v; want it passed unjudged", resp.Replace)
		}
	})
}

// Judges off the request path are bounded: with every slot busy, one more
// is dropped rather than queued or run on the request's goroutine.
func TestBodyJudgesBeyondTheBoundAreDropped(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, cap(judges))
	for range cap(judges) {
		judgeLater(func() { started <- struct{}{}; <-release })
	}
	for range cap(judges) {
		<-started
	}
	ran := false
	judgeLater(func() { ran = true })
	close(release)
	WaitJudges()
	if ran {
		t.Fatal("a judge beyond the bound ran; want it dropped")
	}
	judgeLater(func() { ran = true })
	WaitJudges()
	if !ran {
		t.Fatal("a judge with a slot free did not run")
	}
}
