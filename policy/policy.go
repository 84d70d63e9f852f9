// Package policy enforces a revision's policies on the data plane: it
// compiles each route's effective policies into a Chain of Steps that run,
// in gatehouse.PolicyOrder, after the route is found and before the
// upstream is called, each letting the request on or answering it with the
// status-code contract's error (401, 403, 406, 410, 415, 422, 429, 503).
//
// What must outlive a revision (rate-limit counters, circuit state,
// adaptive limits) lives in a State that the data plane keeps across
// deploys: redeploying an unchanged policy does not reset its counters.
package policy

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/proxy/route"
)

// Request is one request's passage through its route's policies.
type Request struct {
	// W is the response to come: a Step sets headers on it (a challenge,
	// Retry-After, Deprecation) and never writes it.
	W http.ResponseWriter
	// R is the client's request; a Step may change its headers, query
	// and body (adding the consumer's identity, removing a credential).
	R         *http.Request
	RouteID   string
	ServiceID string
	// Client is the client's address as the trusted proxies let it be
	// seen.
	Client netip.Addr
	// Consumer is who authenticated; nil if nobody did (yet).
	Consumer *Consumer
	// MaxBodyBytes is the route's body limit, for Steps that read the body.
	MaxBodyBytes int64
	Now          time.Time
	// Head is when the upstream's response head (or its failure) came;
	// set by the data plane.
	Head time.Time
	// ClientFault and UpstreamBroke are set by the data plane when the
	// exchange failed because of the client's body (400, 408, 413 while it
	// streamed) or its own deadline (a gRPC request's grpc-timeout), or
	// because the upstream broke off mid-response.
	ClientFault, UpstreamBroke bool
	// Params are the route's path parameters, percent-decoded, for a
	// transform's path template.
	Params []route.Param
	// Path, if a Step sets it (a transform), is the escaped path to send
	// upstream instead of the route's, before the service's base path.
	Path string
	// Resp is the upstream's response, for the route's ResponseSteps
	// (policy/audit.go).
	Resp Response
	// Mirrors are the shadow services the route's mirror policies chose
	// to copy this request to (policy/mirror.go); the data plane sends
	// the copies.
	Mirrors []*MirrorTarget
	// RefusedBy is the policy type that refused the request, "" if none
	// did (for traces).
	RefusedBy string

	done []func(Outcome)
}

// Outcome is how an exchange that the policies let on ended.
type Outcome struct {
	// Status is the status sent (0 if the client went away first).
	Status int
	// Latency is the time from the policies letting the request on to the
	// end of the response's head.
	Latency time.Duration
	// Refused says a later Step, or the data plane before forwarding,
	// refused the request: what it counted should not count.
	Refused bool
	// ClientFault: the client's body failed the exchange (its status is
	// gatehouse's 400, 408 or 413, which says nothing of the upstream), or
	// its own deadline passed (a 504 it asked for, or a stream reset).
	// UpstreamBroke: the upstream broke off mid-response (Status 0).
	ClientFault, UpstreamBroke bool
}

// OnDone has f called with the outcome once the exchange is over, or with
// Status 0 and Refused if a later Step refused the request (to release or
// give back what f holds).
func (r *Request) OnDone(f func(Outcome)) { r.done = append(r.done, f) }

// Finish calls what OnDone registered, latest first, and clears it.
func (r *Request) Finish(o Outcome) {
	for i := len(r.done) - 1; i >= 0; i-- {
		r.done[i](o)
	}
	clear(r.done)
	r.done = r.done[:0]
}

var requests = sync.Pool{New: func() any { return new(Request) }}

// NewRequest returns a Request from a pool; Release returns it.
func NewRequest() *Request { return requests.Get().(*Request) }

// Release returns r to the pool.
func (r *Request) Release() {
	done := r.done[:0]
	clear(r.Mirrors)
	*r = Request{done: done, Mirrors: r.Mirrors[:0]}
	requests.Put(r)
}

// Consumer is an authenticated client of the data plane.
type Consumer struct {
	ID     string
	Name   string
	Groups []string
}

// InGroup reports whether the consumer is in group g.
func (c *Consumer) InGroup(g string) bool {
	for _, have := range c.Groups {
		if strings.EqualFold(have, g) {
			return true
		}
	}
	return false
}

// Step is one compiled policy type on one route.
type Step interface {
	// Check lets the request on (nil) or returns the error to answer it
	// with, having set the headers that answer needs on r.W.
	Check(r *Request) error
}

// lateStep is a Step with a part that needs the request body (the content
// schema). Compile runs what Late returns after every type's Step, so
// that whatever the headers can decide, limits included, is answered
// before any of the body is read or 100 Continue is sent.
type lateStep interface {
	Step
	// Late returns the part to run last, or nil.
	Late() Step
}

// Chain is a route's compiled policies, in gatehouse.PolicyOrder: those
// the request's head decides, then those that read its body.
type Chain struct {
	steps   []Step
	late    []Step
	respond []ResponseStep
	// cors is the route's cors policy, nil if none: the data plane
	// answers preflights with it and lets it scrub the upstream's header.
	cors *CORS
	// transform is the route's transforms, nil if none: the data plane
	// hands them the upstream's response header.
	transform *Transform
	// split is the route's traffic split, nil if none; mirrors are its
	// mirror policies' targets (Mirrors).
	split   *Split
	mirrors []*MirrorTarget
	// Types lists the policy types on the route, for logs and tests.
	Types []string
	// lateTypes are the types of late's Steps, as Types are steps'.
	lateTypes []string
}

// Run is RunHead, then RunBody.
func (c *Chain) Run(r *Request) error {
	if err := c.RunHead(r); err != nil {
		return err
	}
	return c.RunBody(r)
}

// RunHead checks r against the Steps its head decides, in turn, stopping
// at the first refusal. After a refusal, what earlier Steps registered
// with OnDone has been called (Refused).
func (c *Chain) RunHead(r *Request) error { return run(c.steps, c.Types, r) }

// RunBody checks r against the Steps that read its body, once RunHead and
// the data plane's own head checks let it on.
func (c *Chain) RunBody(r *Request) error { return run(c.late, c.lateTypes, r) }

// types[i] is the policy type of steps[i].
func run(steps []Step, types []string, r *Request) error {
	// A Step that panics must not leave what earlier Steps took (a
	// concurrency slot, a half-open trial) taken for good.
	defer func() {
		if v := recover(); v != nil {
			r.Finish(Outcome{Refused: true})
			panic(v)
		}
	}()
	for i, s := range steps {
		if err := s.Check(r); err != nil {
			if i < len(types) {
				r.RefusedBy = types[i]
			}
			r.Finish(Outcome{Refused: true})
			return err
		}
	}
	return nil
}

// Set is a revision's compiled policies: one Chain per route that has any.
type Set struct {
	chains map[string]*Chain
	// preflights: some route has a cors policy.
	preflights bool
	// Egress is the revision's egress policies, for the egress listener.
	Egress []*gatehouse.EgressConfig
	// Consumers resolves credentials, for the egress listener too.
	Consumers *Consumers
}

// Chain returns the route's Chain, nil if it has no policies.
func (s *Set) Chain(routeID string) *Chain {
	if s == nil {
		return nil
	}
	return s.chains[routeID]
}

// Env is what compiling needs besides the revision.
type Env struct {
	// State keeps what outlives a revision; required.
	State *State
	// Redis is the store of cluster-wide rate limits; nil if none is
	// configured (a policy asking for Redis then fails to compile).
	Redis redis.UniversalClient
	// HTTPClient fetches JWKS documents; nil means a client with a 10 s
	// timeout.
	HTTPClient *http.Client
	Log        *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Context bounds background work (JWKS refreshes); it ends when the
	// data plane closes.
	Context context.Context
	// Findings keeps what openapi and http-audit policies find; nil
	// discards it.
	Findings audit.Sink
}

// builder compiles the policies of one type that apply to one route.
type builder func(b *Build, policies []*gatehouse.Policy) (Step, error)

var builders = map[string]builder{}

// register adds the builder of a policy type; each type's file calls it.
func register(typ string, b builder) { builders[typ] = b }

// Build is the compilation of one route's policies of one type.
type Build struct {
	Env       *Env
	Route     *gatehouse.Route
	Service   *gatehouse.Service
	Consumers *Consumers
	// Specs are the revision's OpenAPI documents, by id.
	Specs map[string]*gatehouse.Spec
	// specKeys are their State keys (specKey), by id: made once per
	// Compile, not once per route that lists the spec's policy.
	specKeys map[string]string
	// services are the revision's services, by id.
	services map[string]*gatehouse.Service
	// identity are the canonical names of the fields the revision's auth
	// policies name consumers in, which no transform may change.
	identity []string
	// Answering are the services the route's exchanges may go to: its
	// own first, then those its traffic split names. The split is built
	// before every type after it in PolicyOrder, the limits among them.
	Answering []string
}

// StateKey names state belonging to policy p on this build's route (or,
// shared, to p alone): the policy's id and version, so that a changed
// policy starts afresh and an unchanged one keeps its counters.
func (b *Build) StateKey(p *gatehouse.Policy, perRoute bool) string {
	k := fmt.Sprintf("%s@%d", p.ID, p.Version)
	if perRoute {
		k += "/" + b.Route.ID
	}
	return k
}

// HasService reports whether the revision has the service id.
func (b *Build) HasService(id string) bool { return b.services[id] != nil }

// Compile builds rev's policies. Every policy a route uses must be of a
// type this build knows and enforces: a data node never serves a route
// without a policy the revision asks for.
func Compile(rev *gatehouse.Revision, env *Env) (*Set, error) {
	if env.Now == nil {
		env.Now = time.Now
	}
	if env.Log == nil {
		env.Log = slog.Default()
	}
	if env.Context == nil {
		env.Context = context.Background()
	}
	env.State.begin()
	set := &Set{chains: map[string]*Chain{}}
	if rev == nil {
		return set, nil
	}
	consumers, err := newConsumers(rev)
	if err != nil {
		return nil, err
	}
	set.Consumers = consumers
	policies := make(map[string]*gatehouse.Policy, len(rev.Policies))
	var global []*gatehouse.Policy
	for _, p := range rev.Policies {
		policies[p.ID] = p
		if p.GlobalOnly() {
			if p.Type == gatehouse.PolicyEgress {
				cfg, err := p.DecodeConfig()
				if err != nil {
					return nil, err
				}
				set.Egress = append(set.Egress, cfg.(*gatehouse.EgressConfig))
			}
			continue
		}
		if p.Global {
			global = append(global, p)
		}
	}
	identity, _ := AuthHeaders(rev)
	specs := make(map[string]*gatehouse.Spec, len(rev.Specs))
	specKeys := make(map[string]string, len(rev.Specs))
	for _, s := range rev.Specs {
		specs[s.ID], specKeys[s.ID] = s, specKey(s)
	}
	services := make(map[string]*gatehouse.Service, len(rev.Services))
	for _, s := range rev.Services {
		services[s.ID] = s
	}
	lookup := func(owner string, ids []string) ([]*gatehouse.Policy, error) {
		out := make([]*gatehouse.Policy, 0, len(ids))
		for _, id := range ids {
			p, ok := policies[id]
			if !ok {
				return nil, fmt.Errorf("%s uses policy %q, which is not in the revision", owner, id)
			}
			if p.GlobalOnly() {
				return nil, fmt.Errorf("%s lists policy %q, but %s policies apply only globally", owner, id, p.Type)
			}
			out = append(out, p)
		}
		return out, nil
	}
	for _, r := range rev.Routes {
		own, err := lookup(fmt.Sprintf("route %q", r.ID), r.Policies)
		if err != nil {
			return nil, err
		}
		svc := services[r.ServiceID]
		var inherited []*gatehouse.Policy
		if svc != nil {
			if inherited, err = lookup(fmt.Sprintf("service %q", svc.ID), svc.Policies); err != nil {
				return nil, err
			}
		}
		chain := &Chain{}
		var late []Step
		answering := []string{r.ServiceID}
		for _, typ := range gatehouse.PolicyOrder {
			pols := ofType(own, typ)
			if len(pols) == 0 {
				pols = ofType(inherited, typ)
			}
			if len(pols) == 0 {
				pols = ofType(global, typ)
			}
			if len(pols) == 0 {
				continue
			}
			if typ == gatehouse.PolicyHTTPAudit && chain.judgesBySpec() {
				// An openapi policy judging responses judges HTTP's rules
				// too: a second judge would count each finding twice.
				continue
			}
			build, ok := builders[typ]
			if !ok {
				return nil, fmt.Errorf("route %q: policy %q is of type %s, which this gatehouse does not enforce", r.ID, pols[0].ID, typ)
			}
			step, err := build(&Build{Env: env, Route: r, Service: svc, Consumers: consumers, Specs: specs, specKeys: specKeys,
				identity: identity, services: services, Answering: answering}, pols)
			if err != nil {
				return nil, fmt.Errorf("route %q: %w", r.ID, err)
			}
			chain.steps = append(chain.steps, step)
			chain.Types = append(chain.Types, typ)
			if c, ok := step.(*CORS); ok {
				chain.cors, set.preflights = c, true
			}
			switch s := step.(type) {
			case *Transform:
				chain.transform = s
			case *Split:
				chain.split = s
				for _, sh := range s.shares {
					if !slices.Contains(answering, sh.service) {
						answering = append(answering, sh.service)
					}
				}
			case *Mirror:
				chain.mirrors = s.targets
			}
			if err := chain.addResponseStep(step); err != nil {
				return nil, fmt.Errorf("route %q: %w", r.ID, err)
			}
			if ls, ok := step.(lateStep); ok {
				if s := ls.Late(); s != nil {
					late = append(late, s)
					chain.lateTypes = append(chain.lateTypes, typ)
				}
			}
		}
		chain.late = late
		if len(chain.steps) > 0 {
			set.chains[r.ID] = chain
		}
	}
	return set, nil
}

func ofType(pols []*gatehouse.Policy, typ string) []*gatehouse.Policy {
	var out []*gatehouse.Policy
	for _, p := range pols {
		if p.Type == typ {
			out = append(out, p)
		}
	}
	return out
}

// configs decodes the configs of pols, all of one type C.
func configs[C any](pols []*gatehouse.Policy) ([]*C, error) {
	out := make([]*C, 0, len(pols))
	for _, p := range pols {
		cfg, err := p.DecodeConfig()
		if err != nil {
			return nil, err
		}
		c, ok := cfg.(*C)
		if !ok {
			return nil, fmt.Errorf("policy %q: config is a %T", p.ID, cfg)
		}
		out = append(out, c)
	}
	return out, nil
}

// State keeps what outlives a revision, by key (Build.StateKey). Each
// Compile is a generation: Sweep, once a compiled Set serves, drops what
// that generation did not ask for (the state of policies no longer
// deployed or changed since).
type State struct {
	mu    sync.Mutex
	gen   uint64
	items map[string]*stateItem
}

type stateItem struct {
	v   any
	gen uint64
}

// NewState returns an empty State.
func NewState() *State { return &State{items: map[string]*stateItem{}} }

// Get returns the item under key, made by make if there is none.
func Get[T any](s *State, key string, make func() T) T {
	s.mu.Lock()
	defer s.mu.Unlock()
	if it, ok := s.items[key]; ok {
		if t, ok := it.v.(T); ok {
			it.gen = s.gen
			return t
		}
	}
	v := make()
	s.items[key] = &stateItem{v: v, gen: s.gen}
	return v
}

func (s *State) begin() {
	s.mu.Lock()
	s.gen++
	s.mu.Unlock()
}

// Sweep drops the items the latest Compile did not ask for.
func (s *State) Sweep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, it := range s.items {
		if it.gen != s.gen {
			delete(s.items, k)
		}
	}
}
