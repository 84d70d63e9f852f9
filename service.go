package gatehouse

import (
	"fmt"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Service is an upstream: one URL, or several weighted targets.
type Service struct {
	Meta
	Tagged
	Name string `json:"name"`
	// URL is http or https, a host, an optional port and an optional base
	// path. Exactly one of URL and Targets is set.
	URL     string   `json:"url,omitempty"`
	Targets []Target `json:"targets,omitempty"`
	// ConnectTimeoutMS bounds dialling a target, in milliseconds. Default 5000.
	ConnectTimeoutMS int `json:"connect_timeout_ms"`
	// ReadTimeoutMS bounds the wait for the upstream's response headers, in
	// milliseconds. Default 60000.
	ReadTimeoutMS int `json:"read_timeout_ms"`
	// Retries is how many other targets an idempotent request may try after
	// a connection failure. Default 1.
	Retries int `json:"retries"`
	// HealthCheck, if set, probes every target actively; without it a
	// target is judged by the requests it fails (passive health).
	HealthCheck *HealthCheck `json:"health_check,omitempty"`
	// Policies are the ids of the policies that apply to the service's
	// routes (unless a route has its own of the same type).
	Policies []string `json:"policies"`
	// Protocol is how gatehouse speaks to the service's targets: "http1"
	// (the default: HTTP/1.1, over TLS for https) or "http2": HTTP/2 with
	// prior knowledge (h2c) to an http URL, HTTP/2 over TLS (ALPN h2, which
	// the upstream must select) to an https one. gRPC upstreams need http2.
	Protocol string `json:"protocol"`
	// TLS, if set, is how gatehouse speaks TLS to the service's https
	// targets; without it they are verified against the system's roots
	// under the URL's host name, with TLS 1.2 at least.
	TLS *ServiceTLS `json:"tls,omitempty"`
	// Warnings are the server's word on a risky setting (tls.verify
	// false), set when the service is shown; what a client sends for them
	// is ignored (KeepServerSet).
	Warnings []string `json:"warnings,omitempty"`

	// hiddenKey is what Hide took out of TLS.ClientKey, for KeepHidden.
	hiddenKey string
	// keyKept: a missing client key is the store's (StandInForHiddenKey).
	keyKept bool
}

// HealthCheck probes each target actively, as Type says: with GET Path
// (a 2xx or 3xx answer within TimeoutMS is a success), or with gRPC's
// health protocol (SERVING within TimeoutMS is). UnhealthyThreshold
// failures in a row take a target out of rotation, HealthyThreshold
// successes bring it back.
type HealthCheck struct {
	// Type is "http" (the default; "" is a check stored before the field
	// existed) or "grpc": the standard grpc.health.v1.Health/Check call,
	// which needs the service's protocol http2.
	Type string `json:"type"`
	// Path is what an http check GETs; a grpc check has none.
	Path string `json:"path,omitempty"`
	// GRPCService is the service a grpc check asks about; "" (the
	// default) asks about the server as a whole.
	GRPCService        string `json:"grpc_service,omitempty"`
	IntervalMS         int    `json:"interval_ms"`         // default 10000
	TimeoutMS          int    `json:"timeout_ms"`          // default 2000
	HealthyThreshold   int    `json:"healthy_threshold"`   // default 2
	UnhealthyThreshold int    `json:"unhealthy_threshold"` // default 3
}

// A health check's types (HealthCheck.Type).
const (
	HealthCheckHTTP = "http"
	HealthCheckGRPC = "grpc"
)

// MaxGRPCServiceLen bounds HealthCheck.GRPCService.
const MaxGRPCServiceLen = 256

// SetDefaults fills in a health check created from JSON.
func (h *HealthCheck) SetDefaults() {
	*h = HealthCheck{Type: HealthCheckHTTP, IntervalMS: 10_000, TimeoutMS: 2000, HealthyThreshold: 2, UnhealthyThreshold: 3}
}

// GRPC reports whether the check speaks gRPC's health protocol.
func (h *HealthCheck) GRPC() bool { return h.Type == HealthCheckGRPC }

// check adds what is wrong with the health check of s.
func (h *HealthCheck) check(s *Service, bad, semantic *fields) {
	switch h.Type {
	case "", HealthCheckHTTP:
		if !strings.HasPrefix(h.Path, "/") {
			bad.add("health_check.path", "is required and must start with /")
		}
		if h.GRPCService != "" {
			bad.add("health_check.grpc_service", "is only for type %q", HealthCheckGRPC)
		}
	case HealthCheckGRPC:
		if h.Path != "" {
			// Refused rather than ignored: a path that probes nothing
			// would read as if it did.
			bad.add("health_check.path", "is not used by type %q, which calls /grpc.health.v1.Health/Check: leave it out", HealthCheckGRPC)
		}
		if len(h.GRPCService) > MaxGRPCServiceLen || !printable(h.GRPCService) {
			bad.add("health_check.grpc_service", "must be at most %d printable ASCII characters, without spaces", MaxGRPCServiceLen)
		}
		if s.Protocol != ProtocolHTTP2 {
			semantic.add("health_check.type", "%q needs the service's protocol %q: gRPC runs over HTTP/2 only", HealthCheckGRPC, ProtocolHTTP2)
		}
	default:
		bad.add("health_check.type", "must be %q or %q", HealthCheckHTTP, HealthCheckGRPC)
	}
	checkRange("health_check.interval_ms", h.IntervalMS, 100, 3_600_000, bad)
	checkRange("health_check.timeout_ms", h.TimeoutMS, 1, 60_000, bad)
	checkRange("health_check.healthy_threshold", h.HealthyThreshold, 1, 100, bad)
	checkRange("health_check.unhealthy_threshold", h.UnhealthyThreshold, 1, 100, bad)
	if h.TimeoutMS >= h.IntervalMS {
		semantic.add("health_check.timeout_ms", "must be shorter than interval_ms")
	}
}

// Target is one upstream address of a service, with its share of traffic.
type Target struct {
	URL string `json:"url"`
	// Weight is the target's relative share, 0 to 1000; 0 drains it.
	// Default 100.
	Weight int `json:"weight"`
}

// SetDefaults gives a target created from JSON its default weight.
func (t *Target) SetDefaults() { t.Weight = DefaultWeight }

// Limits of a service's fields.
const (
	MaxTargets          = 64
	MaxConnectTimeoutMS = 600_000
	MaxReadTimeoutMS    = 3_600_000
	MaxRetries          = 10
	MaxWeight           = 1000
	DefaultWeight       = 100
)

// A service's protocols (Service.Protocol).
const (
	ProtocolHTTP1 = "http1"
	ProtocolHTTP2 = "http2"
)

// NewService returns a service with every default set.
func NewService() *Service {
	return &Service{ConnectTimeoutMS: 5000, ReadTimeoutMS: 60_000, Retries: 1, Protocol: ProtocolHTTP1, Policies: []string{}}
}

func (s *Service) Kind() Kind  { return KindService }
func (s *Service) Base() *Meta { return &s.Meta }

func (s *Service) Index() Index {
	return Index{Name: s.Name, Unique: []string{"name:" + s.Name}, Refs: policyRefs(s.Policies)}
}

func (s *Service) Check() (invalid, unprocessable []FieldError) {
	var bad, semantic fields
	checkMeta(&s.Meta, &bad)
	checkTags("tags", s.Tags, &bad)
	checkName(s.Name, true, &bad)
	checkPolicyIDs(s.Policies, &bad)
	switch {
	case s.URL == "" && len(s.Targets) == 0:
		bad.add("url", "is required unless targets are given")
	case s.URL != "" && len(s.Targets) > 0:
		bad.add("targets", "cannot be given together with url")
	case s.URL != "":
		if msg := checkUpstreamURL(s.URL); msg != "" {
			semantic.add("url", "%s", msg)
		}
	default:
		if len(s.Targets) > MaxTargets {
			bad.add("targets", "must have at most %d entries", MaxTargets)
		}
		live := 0
		seen := map[string]bool{}
		for i, t := range s.Targets {
			field := fmt.Sprintf("targets[%d]", i)
			if t.URL == "" {
				bad.add(field+".url", "is required")
			} else if msg := checkUpstreamURL(t.URL); msg != "" {
				semantic.add(field+".url", "%s", msg)
			} else if seen[t.URL] {
				semantic.add(field+".url", "repeats an earlier target")
			}
			seen[t.URL] = true
			checkRange(field+".weight", t.Weight, 0, MaxWeight, &bad)
			if t.Weight > 0 {
				live++
			}
		}
		if live == 0 && len(bad) == 0 {
			semantic.add("targets", "must have at least one target with a weight above 0")
		}
	}
	checkRange("connect_timeout_ms", s.ConnectTimeoutMS, 1, MaxConnectTimeoutMS, &bad)
	checkRange("read_timeout_ms", s.ReadTimeoutMS, 1, MaxReadTimeoutMS, &bad)
	checkRange("retries", s.Retries, 0, MaxRetries, &bad)
	// "" is a service stored before the field existed: http1.
	if s.Protocol != "" && s.Protocol != ProtocolHTTP1 && s.Protocol != ProtocolHTTP2 {
		bad.add("protocol", "must be %q or %q", ProtocolHTTP1, ProtocolHTTP2)
	}
	if s.TLS != nil {
		s.TLS.check(s, &bad, &semantic)
	}
	if hc := s.HealthCheck; hc != nil {
		hc.check(s, &bad, &semantic)
	}
	return bad, semantic
}

// checkUpstreamURL returns why u cannot be used as an upstream, or "".
func checkUpstreamURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "is not a URL"
	}
	switch {
	case p.Scheme != "http" && p.Scheme != "https":
		return fmt.Sprintf("has scheme %q; only http and https are supported", p.Scheme)
	case p.Opaque != "" || p.Host == "":
		return "must name a host, as in http://host:port/path"
	case p.User != nil:
		return "must not carry credentials"
	case p.RawQuery != "" || p.ForceQuery || p.Fragment != "":
		return "must not have a query or fragment"
	}
	host, port := p.Hostname(), p.Port()
	if host == "" {
		return "must name a host"
	}
	if strings.HasSuffix(p.Host, ":") {
		return "has an empty port"
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Sprintf("has port %s; a port is 1 to 65535", port)
		}
	}
	if net.ParseIP(host) == nil && !ValidHostname(host) {
		return fmt.Sprintf("has host %q, which is not a valid hostname or IP address", host)
	}
	return ""
}

// ValidHostname reports whether h is a DNS host name: labels of ASCII
// letters, digits and hyphens, each 1 to 63 bytes and neither starting nor
// ending with a hyphen, at most 253 bytes in all (RFC 1123 §2.1). It is
// gatehouse's one rule for a host name: in a route's hosts, in a service's
// upstream URL, and in a request's Host (internal/httpx.ValidHost).
func ValidHostname(h string) bool { return httpx.ValidHostname(h) }
