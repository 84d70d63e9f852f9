package main

// gatehouse serve: flags and environment, and the wiring of the store, the
// node, the data plane and the listeners.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/admin"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/config"
	"github.com/gatehouse/gatehouse/console"
	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/egress"
	"github.com/gatehouse/gatehouse/internal/serve"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/tunnel"
	"github.com/gatehouse/gatehouse/postgres"
	"github.com/gatehouse/gatehouse/proxy"
	"github.com/gatehouse/gatehouse/sqlite"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.opentelemetry.io/otel/trace"
)

type serveConfig struct {
	store              string
	dataDir            string
	adminAddr          string
	proxyAddr          string
	tombstoneRetention time.Duration
	adminMaxBody       int64
	specMaxBytes       int64
	readHeaderTimeout  time.Duration
	readTimeout        time.Duration
	idleTimeout        time.Duration
	maxHeaderBytes     int
	shutdownTimeout    time.Duration
	logFormat          string
	logLevel           string
	proxyMaxBody       int64
	tlsCert, tlsKey    string
	h2c                bool
	engine             string
	maxConnections     int
	accessLogSample    float64
	trustedProxies     string
	role               string
	nodeName           string
	heartbeat          time.Duration
	findingsInterval   time.Duration
	statsInterval      time.Duration
	deployTimeout      time.Duration
	redisURL           string
	egressAddr         string
	configMaxBytes     int64
	// configPaths, if set, are the files the configuration comes from
	// (file-only mode), polled every configPoll.
	configPaths []string
	configPoll  time.Duration
}

// newServeCmd is gatehouse serve.
func newServeCmd() *cobra.Command {
	c := &serveConfig{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway: the admin API and the proxy, or one of them (--role)",
		Long: `Run the gateway: the admin API and the proxy (--role all), or one of them
(--role control, --role data) on nodes sharing one store.

Every flag can also be set as an environment variable: --admin-addr is
GATEHOUSE_ADMIN_ADDR. A flag given on the command line wins.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd.Flags(), c, cmd.ErrOrStderr())
		},
	}
	serveFlags(cmd.Flags(), c)
	return cmd
}

// serveFlags defines serve's flags on fs, to be read into c.
func serveFlags(fs *pflag.FlagSet, c *serveConfig) {
	fs.StringVar(&c.store, "store", "sqlite", "the configuration store: sqlite (in --data-dir), or a postgres:// URL")
	fs.StringVar(&c.dataDir, "data-dir", "./gatehouse-data", "directory of the embedded SQLite store and the bootstrap admin token")
	fs.StringVar(&c.adminAddr, "admin-addr", "127.0.0.1:9080", "listen address of the admin API")
	fs.StringVar(&c.proxyAddr, "proxy-addr", ":8080", "listen address of the proxy")
	fs.DurationVar(&c.tombstoneRetention, "tombstone-retention", 24*time.Hour, "how long a deleted id answers 410 Gone before 404")
	fs.Int64Var(&c.adminMaxBody, "admin-max-body-bytes", 1<<20, "limit on admin request bodies (413 above)")
	fs.Int64Var(&c.specMaxBytes, "spec-max-bytes", 16<<20, "limit on a spec's OpenAPI document, in place of --admin-max-body-bytes (413 above)")
	fs.DurationVar(&c.readHeaderTimeout, "read-header-timeout", 10*time.Second, "time a client has to send its request headers (408 after)")
	fs.DurationVar(&c.readTimeout, "read-timeout", 60*time.Second, "time a client has to send its whole request (408 after)")
	fs.DurationVar(&c.idleTimeout, "idle-timeout", 120*time.Second, "how long an idle keep-alive connection stays open")
	fs.IntVar(&c.maxHeaderBytes, "max-header-bytes", 32<<10, "limit on request line and headers (431 above)")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long in-flight requests may run after SIGTERM")
	fs.StringVar(&c.logFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.Int64Var(&c.proxyMaxBody, "proxy-max-body-bytes", 8<<20, "body limit of routes that set none (413 above)")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "certificate file: the proxy serves HTTPS and HTTP/2 with it")
	fs.StringVar(&c.tlsKey, "tls-key", "", "private key file for --tls-cert")
	fs.BoolVar(&c.h2c, "h2c", false, "also accept cleartext HTTP/2 (prior knowledge) on the proxy")
	fs.StringVar(&c.engine, "engine", serve.EngineFast, "the proxy's HTTP/1.1 engine: fast (gatehouse's own) or std (net/http); the admin and egress listeners are on std")
	fs.IntVar(&c.maxConnections, "max-connections", 10000, "connections the proxy holds open at once; beyond it new ones wait to be accepted")
	fs.Float64Var(&c.accessLogSample, "access-log-sample", 1, "share of proxy requests logged, 0 to 1; 5xx answers are always logged, so 0 logs only those")
	fs.StringVar(&c.trustedProxies, "trusted-proxies", "", "comma-separated CIDRs of proxies in front of gatehouse whose X-Forwarded-For/Forwarded are believed")
	fs.StringVar(&c.role, "role", gatehouse.RoleAll, "what this node does: control (the admin API and deployments), data (the proxy) or all (both)")
	fs.StringVar(&c.nodeName, "node-name", "", "this node's id among the nodes sharing the store (default: the host name and the proxy port, or for a control node the admin port)")
	fs.DurationVar(&c.heartbeat, "heartbeat", 2*time.Second, "how often the node records that it is alive; it is down after missing 3")
	fs.DurationVar(&c.findingsInterval, "findings-interval", deploy.DefaultFindingsInterval, "how often, at most, a node that serves traffic publishes its conformance findings to the store for the admin API's report (only when they changed)")
	fs.DurationVar(&c.statsInterval, "stats-interval", deploy.DefaultStatsInterval, "how often a node that serves traffic measures its live figures' rates and publishes the figures to the store for the admin API's GET /stats (only when they changed)")
	fs.DurationVar(&c.deployTimeout, "deploy-timeout", 30*time.Second, "how long a deployment waits for every live data node to apply it before it fails")
	fs.StringVar(&c.egressAddr, "egress-addr", "", "listen address of the egress forward proxy for internal services' outbound calls (off if empty; roles data and all)")
	fs.StringVar(&c.redisURL, "redis-url", "", "Redis for cluster-wide rate limits (redis://[user:password@]host:port[/db]); policies with store redis need it")
	fs.Int64Var(&c.configMaxBytes, "config-max-bytes", 32<<20, "limit on a configuration document sent to /admin/v1/config, in place of --admin-max-body-bytes (413 above)")
	fs.StringSliceVar(&c.configPaths, "config", nil, "serve the configuration in these files or directories (comma-separated or repeated) instead of a store: file-only mode, the admin API read-only")
	fs.DurationVar(&c.configPoll, "config-poll", 2*time.Second, "with --config, how often the files are read for changes")
}

// parseFlags parses serve's arguments outside cobra, as the serve command
// does: flags, then the environment, then the checks.
func parseFlags(args []string, stderr io.Writer) (*serveConfig, error) {
	c := &serveConfig{}
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	serveFlags(fs, c)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if err := completeFlags(fs, c); err != nil {
		return nil, err
	}
	return c, nil
}

// completeFlags fills in from the environment what fs's command line did
// not set, then checks c and sets its derived defaults.
func completeFlags(fs *pflag.FlagSet, c *serveConfig) error {
	// Environment fills in what the command line did not set.
	set := map[string]bool{}
	fs.Visit(func(f *pflag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *pflag.Flag) {
		env := "GATEHOUSE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		// --help is cobra's, not a setting.
		if v, ok := os.LookupEnv(env); ok && !set[f.Name] && f.Name != "help" {
			if err := f.Value.Set(v); err != nil && envErr == nil {
				envErr = fmt.Errorf("%s=%q: %v", env, v, err)
			}
		}
	})
	if envErr != nil {
		return envErr
	}
	switch c.role {
	case gatehouse.RoleAll, gatehouse.RoleControl, gatehouse.RoleData:
	default:
		return fmt.Errorf("--role must be all, control or data, not %q", c.role)
	}
	switch c.engine {
	case serve.EngineStd, serve.EngineFast:
	default:
		return fmt.Errorf("--engine must be std or fast, not %q", c.engine)
	}
	if c.maxConnections <= 0 {
		return errors.New("--max-connections must be positive")
	}
	if c.egressAddr != "" && c.role == gatehouse.RoleControl {
		return errors.New("--egress-addr needs a node that serves traffic (--role data or all)")
	}
	if c.specMaxBytes <= 0 || c.configMaxBytes <= 0 {
		return errors.New("--spec-max-bytes and --config-max-bytes must be positive")
	}
	if len(c.configPaths) > 0 {
		// The files are the whole configuration of this one node: neither a
		// store shared with other nodes nor a split of roles fits.
		if fs.Changed("store") || os.Getenv("GATEHOUSE_STORE") != "" {
			return errors.New("--config serves from files and keeps no store: leave out --store")
		}
		if c.role != gatehouse.RoleAll {
			return errors.New("--config needs --role all: a node configured from files serves its own files")
		}
		if c.configPoll <= 0 {
			return errors.New("--config-poll must be positive")
		}
	}
	if c.heartbeat <= 0 || c.deployTimeout <= 0 || c.findingsInterval <= 0 || c.statsInterval <= 0 {
		return errors.New("--heartbeat, --findings-interval, --stats-interval and --deploy-timeout must be positive")
	}
	if c.nodeName == "" {
		addr := c.proxyAddr
		if c.role == gatehouse.RoleControl {
			addr = c.adminAddr
		}
		c.nodeName = defaultNodeName(addr)
	}
	if !gatehouse.ValidID(c.nodeName) {
		return fmt.Errorf("--node-name %q: %s", c.nodeName, gatehouse.IDRule)
	}
	return nil
}

// defaultNodeName is the host name and the port of addr, made a valid id
// ("edge-1.example:8080" is edge-1-example-8080).
func defaultNodeName(addr string) string {
	host, _ := os.Hostname()
	if host == "" {
		host = "gatehouse"
	}
	_, port, _ := net.SplitHostPort(addr)
	name := host
	if port != "" {
		name += "-" + port
	}
	name = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			return r
		}
		return '-'
	}, name)
	name = strings.TrimLeft(name, "-_")
	if len(name) > 64 {
		name = name[len(name)-64:]
		name = strings.TrimLeft(name, "-_")
	}
	if name == "" {
		name = gatehouse.NewID()
	}
	return name
}

func newLogger(c *serveConfig, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %v", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.logFormat {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be json or text, not %q", c.logFormat)
}

func runServe(fs *pflag.FlagSet, c *serveConfig, stderr io.Writer) error {
	// Signals are caught from the start, so that one arriving while the
	// store opens still ends in an orderly exit.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := completeFlags(fs, c); err != nil {
		return err
	}
	logger, err := newLogger(c, stderr)
	if err != nil {
		return err
	}
	slog.SetDefault(logger)
	tracer, flushTraces, err := newTracer(ctx, logger)
	if err != nil {
		return err
	}
	// Last of all, once the listeners drained: the spans of the final
	// requests are exported, within their own few seconds.
	defer flushTraces()

	store, err := openStore(ctx, c)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer store.Close()
	if len(c.configPaths) > 0 {
		logger.Info("file-only mode: the configuration comes from files; the admin API is read-only", "config", c.configPaths)
	}

	// A data node has no admin API, so it needs no admin token.
	if c.role != gatehouse.RoleData {
		if err := bootstrapToken(ctx, store, c.dataDir, stderr); err != nil {
			return err
		}
	}
	trusted, err := parsePrefixes(c.trustedProxies)
	if err != nil {
		return fmt.Errorf("--trusted-proxies: %w", err)
	}
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	var dataPlane *proxy.Handler
	var applier gatehouse.Applier // nil on a control node
	if c.role != gatehouse.RoleControl {
		dp, closeDataPlane, err := newDataPlane(c, logger, tracer, registry, trusted)
		if err != nil {
			return err
		}
		defer closeDataPlane()
		dataPlane, applier = dp, dp
	}
	// Every node registers itself and heartbeats; a node that serves
	// traffic also follows the active revision; a control node runs
	// deployments (deploy.Node says who wakes whom).
	nodeOpts := deploy.NodeOptions{Name: c.nodeName, Role: c.role, Heartbeat: c.heartbeat,
		DeployTimeout: c.deployTimeout, FindingsInterval: c.findingsInterval, StatsInterval: c.statsInterval}
	if dataPlane != nil {
		// The admin API of every node reports the whole cluster's findings
		// and live figures.
		if rc, ok := dataPlane.Findings().(*audit.Recorder); ok {
			nodeOpts.Findings = func() ([]byte, error) { return json.Marshal(rc.Snapshot()) }
		}
		nodeOpts.Stats = func() ([]byte, error) { return json.Marshal(dataPlane.SampleStats()) }
	}
	node := deploy.NewNode(store, applier, logger, nodeOpts)
	// The data plane serves the active revision before anything else
	// starts, so a restart does not interrupt routing.
	if served, err := node.Start(ctx); err != nil {
		return err
	} else if served {
		logger.Info("serving the active revision", "revision", dataPlane.Revision(), "node", c.nodeName)
	} else if n := node.Agent.Node(); n.ApplyError != "" {
		logger.Error("cannot serve the active revision", "node", c.nodeName, "error", n.ApplyError)
	}

	// From files: what they hold is applied and deployed before the
	// listeners open; files that cannot be served stop the start.
	var files *config.Files
	if len(c.configPaths) > 0 {
		files = &config.Files{Paths: c.configPaths, Store: store, Deployer: node.Deployer, Log: logger}
		if _, err := files.Sync(ctx); err != nil {
			var fe *config.FilesError
			if errors.As(err, &fe) {
				for _, line := range fe.Lines() {
					fmt.Fprintln(stderr, line)
				}
				return errors.New("the configuration files are not valid")
			}
			return err
		}
	}

	ls, err := newListeners(c, logger, tracer, store, dataPlane, node.Deployer, promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	if err != nil {
		return err
	}
	defer ls.close()
	errc, err := ls.serve(c, logger)
	if err != nil {
		return err
	}
	// The node uses the store: it is stopped, and waited for, before the
	// store closes, whichever way this function returns.
	runCtx, stopNode := context.WithCancel(context.Background())
	nodeDone := make(chan struct{})
	go func() {
		var running sync.WaitGroup
		if files != nil {
			running.Go(func() { files.Run(runCtx, c.configPoll) })
		}
		node.Run(runCtx)
		running.Wait()
		close(nodeDone)
	}()
	defer func() { stopNode(); <-nodeDone }()

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// A second signal during the drain kills the process at once.
	stop()
	logger.Info("shutting down: draining in-flight requests", "timeout", c.shutdownTimeout)
	ls.shutdown(c.shutdownTimeout, logger)
	stopNode()
	<-nodeDone
	// The drain may have used up its time: recording the shutdown gets its
	// own few seconds, so that the node is down at once for the cluster.
	rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer rcancel()
	if err := node.Stop(rctx); err != nil {
		logger.Warn("recording the node's shutdown", "error", err)
	}
	logger.Info("stopped")
	return nil
}

// newTracer is the tracer the OTEL_* environment configures
// (internal/telemetry), nil when tracing is off, and flush, which exports
// the spans still buffered and stops the exporter.
func newTracer(ctx context.Context, logger *slog.Logger) (trace.Tracer, func(), error) {
	tp, err := telemetry.Setup(ctx, os.Getenv, buildVersion())
	if err != nil || tp == nil {
		return nil, func() {}, err
	}
	logger.Info("tracing on: spans are exported by OTLP")
	return tp.Tracer(serve.TracerName), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tp.Shutdown(ctx); err != nil {
			logger.Warn("exporting the last spans", "error", err)
		}
	}, nil
}

// newDataPlane builds the proxy of a node that serves traffic, with its
// Redis client if --redis-url is set; release releases both. tracer is
// the server spans' (nil: tracing off), which starts the upstream spans
// too.
func newDataPlane(c *serveConfig, logger *slog.Logger, tracer trace.Tracer, registry *prometheus.Registry, trusted []netip.Prefix) (dp *proxy.Handler, release func(), err error) {
	metrics := proxy.NewMetrics(registry)
	popts := proxy.Options{MaxBodyBytes: c.proxyMaxBody, Logger: logger, Metrics: metrics,
		TrustedProxies: trusted, Findings: audit.NewRecorder(metrics.Conformance(0)), Tracer: tracer}
	var rdb *redis.Client
	if c.redisURL != "" {
		ropts, err := redis.ParseURL(c.redisURL)
		if err != nil {
			return nil, nil, fmt.Errorf("--redis-url: %w", err)
		}
		// Rate limits bound each Redis call by its context; the client
		// honours that only when told to.
		ropts.ContextTimeoutEnabled = true
		// The rate limiter logs Redis outages itself, once per back-off;
		// the client's own dial errors are detail.
		redis.SetLogger(redisLog{logger})
		rdb = redis.NewClient(ropts)
		popts.Redis = rdb // set only if not nil: a nil *redis.Client in the interface would not be nil
	}
	dp = proxy.New(popts)
	return dp, func() {
		dp.Close()
		if rdb != nil {
			rdb.Close()
		}
	}, nil
}

// listener is one of the process's HTTP servers.
type listener struct {
	name, addr string
	srv        *serve.Server
	tunnels    *tunnel.Set // its handler's tunnels; nil if it makes none
}

// listeners are the process's HTTP servers: the proxy on a node that
// serves traffic; the admin API on a control node, or on a data node only
// the probes and metrics; and the egress proxy if asked for.
type listeners struct {
	servers     []listener
	egressProxy *egress.Handler // nil without --egress-addr
}

func newListeners(c *serveConfig, logger *slog.Logger, tracer trace.Tracer, store gatehouse.Store, dataPlane *proxy.Handler,
	deployer *deploy.Deployer, metrics http.Handler) (*listeners, error) {
	serverOpts := serve.Options{
		ReadHeaderTimeout: c.readHeaderTimeout,
		ReadTimeout:       c.readTimeout,
		IdleTimeout:       c.idleTimeout,
		MaxHeaderBytes:    c.maxHeaderBytes,
		Logger:            logger,
		Tracer:            tracer,
	}
	ls := &listeners{}
	if dataPlane != nil {
		opts := serverOpts
		opts.Name = "proxy"
		opts.AccessLogSample = c.accessLogSample
		if c.accessLogSample == 0 {
			opts.AccessLogSample = -1 // serve's zero means "all"
		}
		opts.NegotiateProblems = true
		opts.TLSCert, opts.TLSKey, opts.H2C = c.tlsCert, c.tlsKey, c.h2c
		opts.Engine = c.engine
		opts.MaxConnections = c.maxConnections
		ls.servers = append(ls.servers, listener{"proxy", c.proxyAddr, serve.New(dataPlane, opts), dataPlane.Tunnels()})
	}
	adminOpts := serverOpts
	adminOpts.Traced = admin.Traced
	if c.role == gatehouse.RoleData {
		// No admin API; the probes and metrics stay on the admin address.
		adminOpts.Name = "probes"
		h := admin.New(store, admin.Options{ProbesOnly: true, Ready: dataPlane.Ready, Metrics: metrics})
		ls.servers = append(ls.servers, listener{"probes", c.adminAddr, serve.New(h, adminOpts), nil})
	} else {
		adminOpts.Name = "admin"
		opts := admin.Options{MaxBodyBytes: c.adminMaxBody, SpecMaxBytes: c.specMaxBytes, ConfigMaxBytes: c.configMaxBytes,
			Deployments: deployer, Metrics: metrics, Nodes: deployer.Watch(), NodeName: c.nodeName,
			ReadOnly: len(c.configPaths) > 0, Console: console.New()}
		if dataPlane != nil {
			opts.Ready = dataPlane.Ready
			opts.Conformance, _ = dataPlane.Findings().(admin.Conformance)
			opts.Stats = dataPlane
		}
		ls.servers = append(ls.servers, listener{"admin", c.adminAddr, serve.New(admin.New(store, opts), adminOpts), nil})
	}
	if c.egressAddr != "" {
		// The egress proxy reads the data plane's active policies: its
		// allowed destinations and the consumers that may use it.
		eg, err := egress.New(dataPlane.Policies, egress.Options{Logger: logger,
			Self: []string{c.adminAddr, c.proxyAddr, c.egressAddr}})
		if err != nil {
			return nil, err
		}
		egressOpts := serverOpts
		egressOpts.Name, egressOpts.NegotiateProblems = "egress", true
		// No TLS or h2c: CONNECT tunnels hijack HTTP/1.1 connections.
		ls.servers = append(ls.servers, listener{"egress", c.egressAddr, serve.New(eg, egressOpts), eg.Tunnels()})
		ls.egressProxy = eg
	}
	return ls, nil
}

// serve listens on every address and serves each in the background; the
// channel receives the first server that fails.
func (ls *listeners) serve(c *serveConfig, logger *slog.Logger) (<-chan error, error) {
	errc := make(chan error, len(ls.servers))
	for _, s := range ls.servers {
		l, err := net.Listen("tcp", s.addr)
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", s.addr, err)
		}
		logger.Info("listening", "listener", s.name, "addr", l.Addr().String(), "role", c.role, "node", c.nodeName)
		go func() { errc <- s.srv.Serve(l) }()
	}
	return errc, nil
}

// shutdown drains every listener at once, within timeout. A tunnel
// (WebSocket on the proxy, CONNECT on egress) runs inside its request and
// would hold its listener's drain until the timeout: tunnels get as long
// as the ordinary requests of every listener take to finish, then are
// cut, and the drain completes.
func (ls *listeners) shutdown(timeout time.Duration, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var drained sync.WaitGroup
	for _, s := range ls.servers {
		var open func() int
		if s.tunnels != nil {
			open = s.tunnels.Open
		}
		drained.Go(func() { s.srv.Drain(ctx, open) }) // Shutdown below reports a timeout
	}
	drained.Wait()
	for _, s := range ls.servers {
		if s.tunnels != nil {
			s.tunnels.Close()
		}
	}
	var stopped sync.WaitGroup
	for _, s := range ls.servers {
		stopped.Go(func() {
			if err := s.srv.Shutdown(ctx); err != nil {
				logger.Warn("shutdown incomplete", "listener", s.name, "error", err)
			}
		})
	}
	stopped.Wait()
}

// close releases what the listeners hold besides their servers.
func (ls *listeners) close() {
	if ls.egressProxy != nil {
		ls.egressProxy.Close()
	}
}

// parsePrefixes parses a comma-separated list of CIDRs; a bare address is
// a single host.
func parsePrefixes(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, err
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// openStore opens the store --store names. The data directory is created
// either way: it holds the generated admin token. In file-only mode the
// store is a private SQLite file in a temporary directory, removed when
// the store closes: the files are the configuration, and the store only
// holds what the admin API shows of it (revisions, deployments, nodes).
func openStore(ctx context.Context, c *serveConfig) (gatehouse.Store, error) {
	// The store holds credential hashes: keep it private to this user.
	if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
		return nil, err
	}
	switch {
	case len(c.configPaths) > 0:
		dir, err := os.MkdirTemp("", "gatehouse-files-")
		if err != nil {
			return nil, err
		}
		db, err := sqlite.Open(filepath.Join(dir, "gatehouse.db"), sqlite.Options{TombstoneRetention: c.tombstoneRetention})
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		return removeOnClose{db, dir}, nil
	case c.store == "sqlite":
		// SQLite gives its WAL and shared-memory files the database's mode.
		dbPath := filepath.Join(c.dataDir, "gatehouse.db")
		if f, err := os.OpenFile(dbPath, os.O_RDONLY|os.O_CREATE, 0o600); err == nil {
			f.Close()
		}
		return sqlite.Open(dbPath, sqlite.Options{TombstoneRetention: c.tombstoneRetention})
	case strings.HasPrefix(c.store, "postgres://"), strings.HasPrefix(c.store, "postgresql://"):
		return postgres.Open(ctx, c.store, postgres.Options{TombstoneRetention: c.tombstoneRetention})
	}
	return nil, fmt.Errorf("--store %q: want sqlite or a postgres:// URL", c.store)
}

// removeOnClose is a store whose directory goes when it closes.
type removeOnClose struct {
	*sqlite.DB
	dir string
}

func (s removeOnClose) Close() error {
	err := s.DB.Close()
	if rerr := os.RemoveAll(s.dir); err == nil {
		err = rerr
	}
	return err
}

// redisLog sends go-redis's own messages to the log at debug level.
type redisLog struct{ l *slog.Logger }

func (r redisLog) Printf(ctx context.Context, format string, v ...any) {
	r.l.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}
