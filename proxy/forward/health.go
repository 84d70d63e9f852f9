package forward

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
)

// succeeded records a response from t: any response, 5xx included, is the
// upstream's answer and proves it reachable. It resets the failure count
// and reinstates an ejected target (its trial succeeded). The hot path only
// loads: nothing is written unless something changes.
func (p *Pool) succeeded(t *target) {
	if t.fails.Load() != 0 {
		t.fails.Store(0)
	}
	if t.ejectedUntil.Load() != 0 && t.ejectedUntil.Swap(0) != 0 {
		t.since.Store(p.now().UnixNano())
		p.rebuild()
	}
}

// maxEjectedPercent (the default of Config.maxEjectedPercent) caps passive
// ejection, as Envoy's outlier detection
// caps it (max_ejection_percent): at most this share of the targets in
// rotation (a weight, not down by active checks), rounded down, is
// ejected at once. Passive health judges targets by the requests clients
// send, and a client can craft requests that make a target fail (answer
// garbage, time out): without the cap, a few anonymous requests would
// eject every target and take the service offline (503) for EjectFor.
// Past the cap, the failing targets stay in rotation: clients get the
// upstream's failures (502, 504) rather than none of its answers. A pool
// of one target is never passively ejected; active checks, which
// gatehouse sends itself, still take any target down.
const maxEjectedPercent = 50

// failed records a failed request to t (not a client that went away), of
// kind f. At MaxFails in a row the target is ejected for EjectFor, unless
// that would eject more than maxEjectedPercent of the targets; a failed
// trial ejects it again. Its health notes the failure that starts a run,
// the one that ejects and a failed trial: not every one, so that a
// failing upstream does not cost each request an allocation.
func (p *Pool) failed(t *target, f failure) {
	if p.maxFails <= 0 {
		return
	}
	n := t.fails.Add(1)
	if n == 1 {
		p.note(t, gatehouse.CheckPassive, failures[f].cause)
	}
	if n < p.maxFails {
		return
	}
	if t.ejectedUntil.Load() != 0 {
		// Already ejected (a failed trial, or a late failure): it is out
		// of the schedule, and a trialAt made stale-early is corrected by
		// the next pick. Its rest starts over.
		p.note(t, gatehouse.CheckPassive, failures[f].cause)
		t.ejectedUntil.Store(p.now().Add(p.ejectFor).UnixNano())
		return
	}
	if n == p.maxFails && n != 1 {
		p.note(t, gatehouse.CheckPassive, failures[f].cause)
	}
	// New ejections happen only here, under mu, so the count cannot be
	// overtaken; reinstatements (succeeded) only make it smaller.
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.mayEjectLocked() {
		return
	}
	now := p.now()
	if t.ejectedUntil.Swap(now.Add(p.ejectFor).UnixNano()) == 0 {
		t.since.Store(now.UnixNano())
		p.rebuildLocked()
	}
}

// note records a failure of t as its last, unless it is a probe failing
// as the last one did: a target down under active checks fails every
// probe, and a new time each interval would change the published figures
// at every publication for as long as it stays down. (Passive health
// notes only the failures that matter, see failed.)
func (p *Pool) note(t *target, check, cause string) {
	if last := t.lastFailure.Load(); check == gatehouse.CheckActive && last != nil && last.Check == check && last.Cause == cause {
		return
	}
	t.lastFailure.Store(&gatehouse.TargetFailure{At: p.now().UTC(), Check: check, Cause: cause})
}

// Health is the state of every target, read now: what the pool decides
// by, taking no lock (a state read as it changes is the old or the new).
// It is read when the live figures are taken, not per request.
func (p *Pool) Health() (targets []gatehouse.TargetHealth, active, passive bool) {
	targets = make([]gatehouse.TargetHealth, len(p.targets))
	for i := range p.targets {
		t := &p.targets[i]
		th := gatehouse.TargetHealth{Weight: t.Weight}
		if t.URL != nil {
			th.URL = t.URL.String()
		}
		th.Since = time.Unix(0, t.since.Load()).UTC()
		th.LastFailure = t.lastFailure.Load()
		switch eu := t.ejectedUntil.Load(); {
		case t.Weight <= 0:
			th.State = gatehouse.TargetDisabled
		case t.down.Load():
			th.State = gatehouse.TargetUnhealthy
		case eu != 0:
			th.State, th.TrialAt = gatehouse.TargetEjected, time.Unix(0, eu).UTC()
		default:
			th.State = gatehouse.TargetHealthy
		}
		targets[i] = th
	}
	return targets, p.check != nil, p.maxFails > 0
}

// mayEjectLocked reports whether one more target may be ejected within
// maxEjectedPercent. Callers hold p.mu.
func (p *Pool) mayEjectLocked() bool {
	inRotation, ejected := 0, 0
	for i := range p.targets {
		t := &p.targets[i]
		if t.Weight <= 0 || t.down.Load() {
			continue
		}
		inRotation++
		if t.ejectedUntil.Load() != 0 {
			ejected++
		}
	}
	return (ejected+1)*100 <= inRotation*p.maxEjectedPercent
}

// noTargetRetryAfter is the Retry-After of a pool with no target that
// could come back by itself (every weight 0).
const noTargetRetryAfter = 5 * time.Second

// unavailable returns the error for "no healthy target", with the time
// until the earliest target may serve again: an ejected target's trial, or
// the next active check of a target marked down.
func (p *Pool) unavailable() error {
	now := p.now().UnixNano()
	wait := time.Duration(-1)
	for i := range p.targets {
		t := &p.targets[i]
		if t.Weight <= 0 {
			continue
		}
		var d time.Duration
		switch eu := t.ejectedUntil.Load(); {
		case t.down.Load():
			d = p.check.Interval
		case eu != 0:
			d = time.Duration(eu - now)
		default:
			continue // reinstated since pick looked
		}
		if wait < 0 || d < wait {
			wait = d
		}
	}
	if wait < 0 {
		wait = noTargetRetryAfter
	}
	// Retry-After is whole seconds: round up, and never say 0.
	wait = max(time.Second, (wait+time.Second-1)/time.Second*time.Second)
	return &noTargetError{retryAfter: wait}
}

// checkLoop runs active health checks until ctx is done: a round of
// probes at once, then one every Interval. Counters of consecutive results
// belong to this goroutine alone; only the verdict (down) is shared.
func (p *Pool) checkLoop(ctx context.Context) {
	defer close(p.done)
	hc := p.check
	ok := make([]string, len(p.targets)) // each probe's failure, "" for none
	passes := make([]int, len(p.targets))
	fails := make([]int, len(p.targets))
	tick := time.NewTicker(hc.Interval)
	defer tick.Stop()
	for {
		p.probeAll(ctx, ok)
		if ctx.Err() != nil {
			return // a probe cut short by Close is no verdict
		}
		changed := false
		for i := range p.targets {
			t := &p.targets[i]
			if t.Weight <= 0 {
				continue
			}
			if ok[i] == "" {
				passes[i], fails[i] = passes[i]+1, 0
				if passes[i] >= hc.HealthyThreshold && t.down.Load() {
					t.down.Store(false)
					t.since.Store(p.now().UnixNano())
					changed = true
				}
			} else {
				p.note(t, gatehouse.CheckActive, ok[i])
				passes[i], fails[i] = 0, fails[i]+1
				if fails[i] >= hc.UnhealthyThreshold && !t.down.Load() {
					t.down.Store(true)
					t.since.Store(p.now().UnixNano())
					changed = true
				}
			}
		}
		if changed {
			p.rebuild()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// probeAll probes every target with a weight concurrently and waits for
// all of them; each probe ends within the check's Timeout. failed gets
// each probe's failure ("" for a success).
func (p *Pool) probeAll(ctx context.Context, failed []string) {
	var wg sync.WaitGroup
	for i := range p.targets {
		t := &p.targets[i]
		if t.Weight <= 0 {
			continue
		}
		wg.Go(func() { failed[i] = p.probe(ctx, t) })
	}
	wg.Wait()
}

// probe GETs the target's health URL: 2xx or 3xx within Timeout is a
// success. The body is drained (up to 64 KiB) so the connection is reused.
// A GRPC check calls gRPC's health check instead (probeGRPC). It returns
// the failure's cause in a few words, "" for a success.
func (p *Pool) probe(ctx context.Context, t *target) string {
	ctx, cancel := context.WithTimeout(ctx, p.check.Timeout)
	defer cancel()
	if p.check.GRPC {
		return p.probeGRPC(ctx, t)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.healthURL, nil)
	if err != nil {
		return "invalid health URL"
	}
	req.Header.Set("User-Agent", "gatehouse-health-check")
	resp, err := t.rt.RoundTrip(req)
	if err != nil {
		return probeCause(ctx, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return "answered " + strconv.Itoa(resp.StatusCode)
	}
	return ""
}

// probeCause names a probe's transport failure: the probe's own timeout
// passing is a timeout, not a request cut short.
func probeCause(ctx context.Context, err error) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return "probe timeout"
	}
	return failures[classify(context.WithoutCancel(ctx), err)].cause
}

// probeGRPC calls grpc.health.v1.Health/Check on the target (its health
// URL), as a gRPC client would: a success is HTTP 200, a gRPC content
// type, grpc-status 0 and one HealthCheckResponse saying SERVING. A
// trailers-only answer (NOT_FOUND for a service the server does not know,
// UNIMPLEMENTED from a server without the health service) is a failure.
func (p *Pool) probeGRPC(ctx context.Context, t *target) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.healthURL, bytes.NewReader(p.check.grpcRequest))
	if err != nil {
		return "invalid health URL"
	}
	req.Header = http.Header{
		"Content-Type": {"application/grpc"},
		"Te":           {"trailers"},
		"User-Agent":   {"gatehouse-health-check"},
	}
	resp, err := t.rt.RoundTrip(req)
	if err != nil {
		return probeCause(ctx, err)
	}
	defer resp.Body.Close()
	// Read to the end, where the trailers are; an answer over 64 KiB is
	// no HealthCheckResponse.
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch {
	case err != nil:
		return probeCause(ctx, err)
	case resp.StatusCode != http.StatusOK:
		return "answered " + strconv.Itoa(resp.StatusCode)
	case !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/grpc"):
		return "not a gRPC answer"
	}
	if code := grpcStatusOf(resp); code != "0" {
		return "grpc-status " + code
	}
	if status, ok := grpcHealthStatus(body); !ok || status != grpcServing {
		return "not serving"
	}
	return ""
}

// grpcStatusOf is an answer's grpc-status: from its trailers, or from its
// header for a trailers-only answer (how a server without the health
// service, or without the service asked about, answers). The cause it
// goes into is published, so the upstream does not choose its size: a
// value that is not a code of one or two digits is "invalid".
func grpcStatusOf(resp *http.Response) string {
	s := resp.Trailer.Get("Grpc-Status")
	if s == "" {
		s = resp.Header.Get("Grpc-Status")
	}
	if s == "" {
		return "missing"
	}
	if len(s) > 2 || strings.Trim(s, "0123456789") != "" {
		return "invalid"
	}
	return s
}
