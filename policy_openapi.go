package gatehouse

import (
	"encoding/json"
	"strings"
)

// Policy types that hold the APIs behind the gateway to their contract.
const (
	// PolicyOpenAPI validates requests against a spec's operations and
	// judges responses against the spec and HTTP.
	PolicyOpenAPI = "openapi"
	// PolicyHTTPAudit judges responses against HTTP alone: no spec.
	PolicyHTTPAudit = "http-audit"
)

// Modes of an openapi policy's requests and responses.
const (
	ModeEnforce = "enforce"
	ModeReport  = "report"
	ModeOff     = "off"
)

// OpenAPIConfig holds a route to the spec SpecID. Requests: enforce
// answers a request that breaks its operation with the contract's code
// before the upstream sees it; report lets it on and records a
// request-invalid finding. Responses: report records what breaks the
// spec or HTTP; enforce also replaces a response whose head breaks an
// error-severity rule with a 502.
type OpenAPIConfig struct {
	SpecID string `json:"spec_id"`
	// BasePath is what precedes the document's paths in a request's path;
	// "" means the path of the document's first server URL ("/v1" for
	// https://api.example.com/v1), "/" none.
	BasePath  string `json:"base_path"`
	Requests  string `json:"requests"`
	Responses string `json:"responses"`
	// NormalizeErrors turns an upstream 4xx/5xx that is not a problem
	// document into one.
	NormalizeErrors bool `json:"normalize_errors"`
	// SampleRate is the share of responses judged, 0 to 1.
	SampleRate float64 `json:"sample_rate"`
	// MaxBodyBytes bounds the response body judged against its schema; a
	// longer one is passed through unjudged by body-schema.
	MaxBodyBytes int64 `json:"max_body_bytes"`
}

func (c *OpenAPIConfig) SetDefaults() {
	*c = OpenAPIConfig{Requests: ModeEnforce, Responses: ModeReport, SampleRate: 1, MaxBodyBytes: 1 << 20}
}

// HTTPAuditConfig judges a route's responses by the rules of the
// contract that need no spec.
type HTTPAuditConfig struct {
	Responses       string  `json:"responses"`
	NormalizeErrors bool    `json:"normalize_errors"`
	SampleRate      float64 `json:"sample_rate"`
}

func (c *HTTPAuditConfig) SetDefaults() {
	*c = HTTPAuditConfig{Responses: ModeReport, SampleRate: 1}
}

func checkMode(field, v string, allowed []string, bad *fields) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	bad.add(field, "must be one of %v", allowed)
}

func init() {
	registerPolicyType(PolicyOpenAPI, false, func(c *OpenAPIConfig, bad, semantic *fields) {
		switch {
		case c.SpecID == "":
			bad.add("config.spec_id", "is required")
		case !ValidID(c.SpecID):
			bad.add("config.spec_id", IDRule)
		}
		CheckBasePath("config.base_path", c.BasePath, bad, semantic)
		checkMode("config.requests", c.Requests, []string{ModeEnforce, ModeReport, ModeOff}, bad)
		checkMode("config.responses", c.Responses, []string{ModeEnforce, ModeReport, ModeOff}, bad)
		if c.SampleRate < 0 || c.SampleRate > 1 {
			bad.add("config.sample_rate", "must be between 0 and 1")
		}
		if c.MaxBodyBytes < 0 || c.MaxBodyBytes > 64<<20 {
			bad.add("config.max_body_bytes", "must be between 0 and %d", 64<<20)
		}
	})
	registerPolicyType(PolicyHTTPAudit, false, func(c *HTTPAuditConfig, bad, semantic *fields) {
		checkMode("config.responses", c.Responses, []string{ModeEnforce, ModeReport, ModeOff}, bad)
		if c.SampleRate < 0 || c.SampleRate > 1 {
			bad.add("config.sample_rate", "must be between 0 and 1")
		}
	})
}

// SpecID is the spec an openapi policy validates against, or "" for a
// policy of another type: the reference that keeps the spec from being
// deleted while the policy uses it.
func (p *Policy) SpecID() string {
	if p.Type != PolicyOpenAPI {
		return ""
	}
	var c struct {
		SpecID string `json:"spec_id"`
	}
	if json.Unmarshal(p.Config, &c) != nil {
		return ""
	}
	return c.SpecID
}

// CheckBasePath checks what precedes a document's paths in a request's
// path, as an openapi policy's config and a route import give it: "" (the
// path of the document's first server URL), or a path pattern prefix
// ("/" for none, "/v1", "/tenants/{tenant}").
func CheckBasePath(field, v string, bad, semantic *fields) {
	switch {
	case v == "":
	case !strings.HasPrefix(v, "/"):
		bad.add(field, `must be "" (the path of the document's first server URL) or start with "/"`)
	case strings.Contains(v, "*"):
		semantic.add(field, "must not contain *: the document's paths follow it")
	default:
		if err := CheckPathPattern(v); err != nil {
			semantic.add(field, "%v", err)
		}
	}
}

// CheckBasePathFields is CheckBasePath for callers outside the domain,
// returning what a schema sees (400) and what needs meaning (422).
func CheckBasePathFields(field, v string) (invalid, unprocessable []FieldError) {
	var bad, semantic fields
	CheckBasePath(field, v, &bad, &semantic)
	return bad, semantic
}
