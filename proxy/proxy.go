// Package proxy is gatehouse's data plane on net/http: it serves the
// active revision, asking package core what to do with each request and
// doing the I/O: problems written, or the request forwarded through package
// forward and the response streamed back.
//
// A revision is compiled once, in Apply, into an immutable state that is
// swapped in atomically: every request sees one whole revision, and
// requests in flight finish on the one they started with.
//
// The files: proxy.go is the Handler, its revision state and Apply;
// serve.go one request's path (decide, policies, then forward or a
// problem); forward.go the exchange with the upstream and the response
// streamed back; headers.go the rules for header fields in and out, and
// whom to believe about the client; tunnel.go upgrades; metrics.go the
// Prometheus collectors; stats.go the live figures read from them.
package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/internal/tunnel"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/proxy/core"
	"github.com/gatehouse/gatehouse/proxy/forward"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
)

// Options configures the data plane.
type Options struct {
	// MaxBodyBytes is the body limit of routes that set none; zero means
	// core.DefaultMaxBodyBytes (8 MiB).
	MaxBodyBytes int64
	// Logger receives the data plane's own events; nil means slog.Default().
	Logger *slog.Logger
	// Metrics, if set, records every request; NewMetrics makes it.
	Metrics *Metrics
	// TrustedProxies are the addresses whose X-Forwarded-For and
	// Forwarded fields are believed and extended. From anyone else those
	// fields, and X-Real-IP and X-Forwarded-Port/-Prefix, are replaced:
	// a client must not choose the address the upstream sees.
	TrustedProxies []netip.Prefix
	// Redis holds cluster-wide rate limits (policies with store redis);
	// nil refuses revisions that have such policies.
	Redis redis.UniversalClient
	// Now is the policies' clock (circuit breakers, sunsets); nil means
	// time.Now. Tests set it to move time without waiting.
	Now func() time.Time
	// Findings keeps what the response audit (http-audit and openapi
	// policies) finds; nil discards it. An audit.Recorder, usually, made
	// with Metrics.Conformance.
	Findings audit.Sink
	// StatsMaxRoutes is how many routes the live figures (Stats) hold,
	// the busiest; the others are summed. Default gatehouse.StatsMaxRoutes.
	StatsMaxRoutes int
	// Tracer starts the client spans of a traced request's upstream
	// attempts (forward.Config.Tracer): the server spans' tracer
	// (serve.Options.Tracer), so that both come from one provider. Nil
	// means the provider of the request's span, looked up per attempt.
	Tracer trace.Tracer
}

// Handler is the data plane's HTTP handler. It implements
// gatehouse.Applier.
type Handler struct {
	opts       Options
	transports *forward.Transports
	state      atomic.Pointer[state]
	mu         sync.Mutex // serialises Apply
	// policyState is what policies keep across revisions; background
	// stops their background work when the Handler closes.
	policyState *policy.State
	background  context.Context
	stop        context.CancelFunc
	// tunnels are the upgraded connections open, which Close ends.
	tunnels tunnel.Set
	// sampler measures the live figures' rates (stats.go).
	sampler sampler
}

var _ gatehouse.Applier = (*Handler)(nil)

// state is one applied revision: the decisions and the upstream pools.
type state struct {
	core     *core.Config
	policies *policy.Set
	pools    map[string]*forward.Pool
	cancel   context.CancelFunc // stops the pools' health checks
	// routes and unmatched are the metrics of each route and of requests
	// no route took; nil without metrics.
	routes    map[string]*routeMetrics
	unmatched *routeMetrics
	// identity are the canonical names of the fields that name a consumer
	// to the upstream (policy.AuthHeaders): no client sends them.
	identity []string
	// keys are the canonical names of the fields API keys are read from
	// (policy.AuthHeaders): never forwarded in a trailer.
	keys []string
	// preflights: some route has a cors policy, so an OPTIONS request
	// may be a preflight gatehouse answers (serve.go's preflight).
	preflights bool
	// mirrors are the routes' mirror targets' counters and limits
	// (mirror.go); nil if no route mirrors.
	mirrors map[*policy.MirrorTarget]*mirrorRuntime
}

// New returns a data plane serving nothing until the first Apply: every
// request gets 404 until then.
func New(opts Options) *Handler {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	background, stop := context.WithCancel(context.Background())
	return &Handler{opts: opts, transports: forward.NewTransports(), policyState: policy.NewState(),
		background: background, stop: stop}
}

// Apply compiles rev (nil: the empty configuration) and swaps it in. If it
// does not compile, nothing changes and the error says why.
func (h *Handler) Apply(ctx context.Context, rev *gatehouse.Revision) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	cfg, err := core.Compile(rev, core.Options{MaxBodyBytes: h.opts.MaxBodyBytes})
	if err != nil {
		return err
	}
	policies, err := policy.Compile(rev, &policy.Env{State: h.policyState, Redis: h.opts.Redis, Log: h.opts.Logger,
		Context: h.background, Now: h.opts.Now, Findings: h.opts.Findings})
	if err != nil {
		return err
	}
	pctx, cancel := context.WithCancel(context.Background())
	next := &state{core: cfg, policies: policies, pools: map[string]*forward.Pool{}, cancel: cancel,
		routes: map[string]*routeMetrics{}, unmatched: h.opts.Metrics.forRoute(""), preflights: policies.Preflights()}
	next.identity, next.keys = policy.AuthHeaders(rev)
	if rev != nil {
		for _, r := range rev.Routes {
			next.routes[r.ID] = h.opts.Metrics.forRoute(r.ID)
		}
		h.resolveSplits(next, rev)
		for _, s := range rev.Services {
			fc, err := poolConfig(s)
			if err != nil {
				cancel()
				return err
			}
			fc.Tracer = h.opts.Tracer
			if fc.TLS.SkipsVerify() {
				h.opts.Logger.Warn("service does not verify its upstream's TLS certificate (tls.verify false): anyone on the network path can impersonate the upstream",
					"service_id", s.ID, "service", s.Name, "revision", cfg.Revision)
			}
			next.pools[s.ID] = forward.NewPool(pctx, fc, h.transports)
		}
	}
	if old := h.state.Swap(next); old != nil {
		old.close()
		h.opts.Metrics.forget(removed(old.routes, next.routes), removed(old.pools, next.pools))
	}
	h.policyState.Sweep()
	if m := h.opts.Metrics; m != nil {
		m.revision.Set(float64(cfg.Revision))
	}
	return nil
}

// removed returns the keys of old that next does not have.
func removed[V1, V2 any](old map[string]V1, next map[string]V2) []string {
	var gone []string
	for k := range old {
		if _, ok := next[k]; !ok {
			gone = append(gone, k)
		}
	}
	return gone
}

func (s *state) close() {
	s.cancel()
	for _, p := range s.pools {
		p.Close()
	}
}

// Close stops health checks and policies' background work, ends the
// tunnels of upgraded connections (which an http.Server's Shutdown neither
// waits for nor closes) and drops idle upstream connections.
func (h *Handler) Close() {
	h.stop()
	h.tunnels.Close()
	if old := h.state.Swap(nil); old != nil {
		old.close()
	}
	h.transports.CloseIdle()
}

// Tunnels are the upgraded (WebSocket) connections open on the data
// plane: a shutdown waits until they are its listener's only requests,
// then cuts them (serve.Server.Drain).
func (h *Handler) Tunnels() *tunnel.Set { return &h.tunnels }

// Findings is what keeps the response audit's findings (Options.Findings).
func (h *Handler) Findings() audit.Sink { return h.opts.Findings }

// Ready reports whether a revision has been applied.
func (h *Handler) Ready() bool { return h.state.Load() != nil }

// Policies returns the active revision's compiled policies, nil before
// the first Apply (the egress listener reads its rules and consumers here).
func (h *Handler) Policies() *policy.Set {
	st := h.state.Load()
	if st == nil {
		return nil
	}
	return st.policies
}

// Revision returns the number of the revision being served, 0 for none or
// the empty one.
func (h *Handler) Revision() int64 {
	if st := h.state.Load(); st != nil {
		return st.core.Revision
	}
	return 0
}

// poolConfig turns a service into its upstream pool's settings.
func poolConfig(s *gatehouse.Service) (forward.Config, error) {
	cfg := forward.Config{
		ConnectTimeout: time.Duration(s.ConnectTimeoutMS) * time.Millisecond,
		ReadTimeout:    time.Duration(s.ReadTimeoutMS) * time.Millisecond,
		Retries:        s.Retries,
		HTTP2:          s.Protocol == gatehouse.ProtocolHTTP2,
	}
	targets := s.Targets
	if s.URL != "" {
		targets = []gatehouse.Target{{URL: s.URL, Weight: gatehouse.DefaultWeight}}
	}
	for _, t := range targets {
		u, err := url.Parse(t.URL)
		if err != nil {
			return cfg, fmt.Errorf("service %q: target %q: %v", s.ID, t.URL, err)
		}
		cfg.Targets = append(cfg.Targets, forward.Target{URL: u, Weight: t.Weight})
	}
	if t := s.TLS; t != nil {
		tc, err := forward.NewTLS(forward.TLSSettings{
			CABundle: []byte(t.CABundle), CAOnly: t.CAOnly,
			Certificate: []byte(t.ClientCertificate), Key: []byte(t.ClientKey),
			ServerName: t.ServerName, MinVersion: gatehouse.TLSVersion(t.MinVersion), SkipVerify: !t.Verify,
		})
		if err != nil {
			return cfg, fmt.Errorf("service %q: tls: %v", s.ID, err)
		}
		cfg.TLS = tc
	}
	if hc := s.HealthCheck; hc != nil {
		cfg.HealthCheck = &forward.HealthCheck{
			Path:               hc.Path,
			GRPC:               hc.GRPC(),
			GRPCService:        hc.GRPCService,
			Interval:           time.Duration(hc.IntervalMS) * time.Millisecond,
			Timeout:            time.Duration(hc.TimeoutMS) * time.Millisecond,
			HealthyThreshold:   hc.HealthyThreshold,
			UnhealthyThreshold: hc.UnhealthyThreshold,
		}
	}
	return cfg, nil
}

// unconfigured serves before the first revision: no routes, so every
// request is a 404 (or a 501 for a method nobody knows).
var unconfigured = func() *state {
	cfg, err := core.Compile(nil, core.Options{})
	if err != nil {
		panic(err)
	}
	identity, _ := policy.AuthHeaders(nil)
	return &state{core: cfg, identity: identity}
}()
