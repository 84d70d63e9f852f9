package gatehouse

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/media"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// RateLimitConfig allows Requests per Per, with bursts of up to Burst
// (GCRA: the requests of a period may come at once, then one every
// Per/Requests). Over it is 429 with Retry-After, RateLimit-Policy and
// RateLimit. Counted per By: the consumer (the client address for requests
// without one), the route, or the client address. Store local counts in
// each data node; redis counts cluster-wide in --redis-url, and if Redis
// cannot be reached the node falls back to Fallback (local counting, or
// allow) and logs it.
type RateLimitConfig struct {
	Requests int    `json:"requests"`
	Per      string `json:"per"`
	Burst    int    `json:"burst"` // default: Requests
	By       string `json:"by"`
	Store    string `json:"store"`
	Fallback string `json:"fallback"`
}

func (c *RateLimitConfig) SetDefaults() {
	*c = RateLimitConfig{By: RateByConsumer, Store: StoreLocal, Fallback: StoreLocal}
}

// Rate limit keys and stores.
const (
	RateByConsumer = "consumer"
	RateByRoute    = "route"
	RateByIP       = "ip"
	StoreLocal     = "local"
	StoreRedis     = "redis"
	FallbackAllow  = "allow"
)

// Period returns Per as a duration.
func (c *RateLimitConfig) Period() time.Duration {
	switch c.Per {
	case "second":
		return time.Second
	case "minute":
		return time.Minute
	case "hour":
		return time.Hour
	}
	return 0
}

// ConcurrencyLimitConfig caps the requests a route has in flight on one
// node; over it is 503 with Retry-After at once, not a queue.
type ConcurrencyLimitConfig struct {
	Max               int `json:"max"`
	RetryAfterSeconds int `json:"retry_after_seconds"` // default 1
}

func (c *ConcurrencyLimitConfig) SetDefaults() { c.RetryAfterSeconds = 1 }

// AdaptiveConcurrencyConfig sheds load with 503 when the requests in flight
// exceed a limit that adapts to latency: it grows while latency stays near
// the lowest seen and shrinks when latency rises, so queues do not build
// up behind a saturated upstream. One limit is shared by every route the
// policy applies to (attach it globally for a gateway-wide limit).
type AdaptiveConcurrencyConfig struct {
	MinLimit          int `json:"min_limit"`           // default 4
	MaxLimit          int `json:"max_limit"`           // default 1000
	InitialLimit      int `json:"initial_limit"`       // default 20
	RetryAfterSeconds int `json:"retry_after_seconds"` // default 1
}

func (c *AdaptiveConcurrencyConfig) SetDefaults() {
	*c = AdaptiveConcurrencyConfig{MinLimit: 4, MaxLimit: 1000, InitialLimit: 20, RetryAfterSeconds: 1}
}

// CircuitBreakerConfig opens a service's circuit after Failures failures
// in a row (the upstream unreachable, timing out, or answering 5xx): for
// OpenSeconds requests fail fast with 503 and Retry-After, then one trial
// request is let through (half-open); its success closes the circuit, its
// failure opens it again. The state is per service and data node.
type CircuitBreakerConfig struct {
	Failures    int `json:"failures"`     // default 5
	OpenSeconds int `json:"open_seconds"` // default 30
}

func (c *CircuitBreakerConfig) SetDefaults() {
	*c = CircuitBreakerConfig{Failures: 5, OpenSeconds: 30}
}

// MaintenanceConfig answers every request with 503, Message as the
// problem's detail and Retry-After.
type MaintenanceConfig struct {
	Message           string `json:"message"`             // default "This API is down for maintenance."
	RetryAfterSeconds int    `json:"retry_after_seconds"` // default 300
}

func (c *MaintenanceConfig) SetDefaults() {
	*c = MaintenanceConfig{Message: "This API is down for maintenance.", RetryAfterSeconds: 300}
}

// DeprecationConfig marks the routes it applies to deprecated: responses
// carry Deprecation (RFC 9745) from DeprecatedAt, Sunset (RFC 8594) if
// SunsetAt is set, and a Link to Successor. From SunsetAt on, requests are
// answered 410 Gone, naming the successor in the problem.
type DeprecationConfig struct {
	DeprecatedAt *time.Time `json:"deprecated_at,omitempty"` // default: deprecated already
	SunsetAt     *time.Time `json:"sunset_at,omitempty"`
	Successor    string     `json:"successor,omitempty"` // a URL
}

// ContentConfig is a route's content contract: the media types request
// bodies may have (else 415 with Accept-Post / Accept-Patch), those the
// route produces (an Accept excluding all of them is 406), and a JSON
// Schema that JSON request bodies must satisfy (malformed JSON is 400, a
// violation 422 listing every one). All are decided before the upstream is
// contacted.
//
// Accepts lists media types and ranges (type/*, */*); a request with a
// body (a length, or chunked) must declare one of them in Content-Type,
// parameters aside, and a body without Content-Type is refused too.
// Requests without a body are not checked. Produces is judged against
// Accept with its weights and wildcards (RFC 9110 §12.5.1); no Accept
// admits anything. Schema (draft 2020-12 unless it names another; see
// CompileSchema) applies to application/json and +json bodies only, so a
// route that must take JSON lists it in Accepts too. The body is read
// whole, within the route's max_body_bytes, after every other policy has
// let the request on (limits included), and passed on unchanged. A body
// in which a key repeats within one object, or that is not UTF-8, is
// malformed: parsers disagree on such bodies, and what the schema passed
// must be what the upstream reads.
type ContentConfig struct {
	Accepts  []string        `json:"accepts"`
	Produces []string        `json:"produces"`
	Schema   json.RawMessage `json:"schema,omitempty"`

	// compiled is Schema as the check compiled it (CompiledSchema).
	compiled *jsonschema.Schema
}

func (c *ContentConfig) SetDefaults() { *c = ContentConfig{Accepts: []string{}, Produces: []string{}} }

// schemaURL names a content schema while it compiles. It is a URL on a
// reserved domain, so that a relative $ref resolves to a URL nobody
// serves, which the compiler is not let fetch (the compiler resolves
// relative references against a URN wrongly, to the schema itself).
const schemaURL = "https://gatehouse.invalid/content-schema.json"

// CompiledSchema is the Schema as decoding compiled it to check it (nil
// without a schema), so that the data plane does not compile it again.
func (c *ContentConfig) CompiledSchema() *jsonschema.Schema { return c.compiled }

// CompileSchema compiles a content policy's JSON Schema: draft 2020-12
// unless its $schema names another draft (the drafts' meta-schemas are
// built in). The policy's check calls it, so that a schema that does not
// compile is a 422 when the policy is written rather than a failed
// deployment later; the data plane calls it to enforce the schema.
//
// A schema is self-contained: a $ref may point into the schema itself or
// at a draft's meta-schema, and any other URL (http, https, file, or one
// resolved against an $id) is a compile error, never a fetch. Formats are
// annotations, as the draft says, and patterns are Go (RE2) regular
// expressions, which match in linear time.
func CompileSchema(schema json.RawMessage) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(noSchemaLoader{})
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, err
	}
	sch, err := c.Compile(schemaURL)
	if err != nil {
		return nil, schemaError(err)
	}
	return sch, nil
}

// schemaError words a compile error for the policy's author: a reference
// that would need a fetch, or each place where the schema breaks its
// draft's meta-schema, in one line (the compiler's own text is an
// indented tree).
func schemaError(err error) error {
	var le *jsonschema.LoadURLError
	if errors.As(err, &le) {
		return fmt.Errorf("%q is not fetched: a schema must be self-contained, its $refs pointing into it or at a draft's meta-schema", le.URL)
	}
	var se *jsonschema.SchemaValidationError
	var ve *jsonschema.ValidationError
	if !errors.As(err, &se) || !errors.As(se.Err, &ve) {
		return err
	}
	var leaves []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			leaves = append(leaves, e.Error()) // "at '/type': ..."
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	slices.Sort(leaves) // the validator's order follows map iteration
	if len(leaves) > 5 {
		leaves = append(leaves[:5], fmt.Sprintf("and %d more", len(leaves)-5))
	}
	return errors.New(strings.Join(leaves, "; "))
}

// noSchemaLoader refuses every URL the built-in meta-schemas do not
// cover; the compiler's default loader would read files.
type noSchemaLoader struct{}

func (noSchemaLoader) Load(url string) (any, error) { return nil, errNotFetched }

var errNotFetched = errors.New("not fetched")

// EgressConfig governs the egress listener (--egress-addr), the forward
// proxy internal services call out through: which destinations it may
// reach, and which consumers (by basic-auth credential in
// Proxy-Authorization) may use it.
type EgressConfig struct {
	Allow []EgressRule `json:"allow"`
	// Consumers and Groups allowed; both empty: any authenticated consumer.
	Consumers []string `json:"consumers"`
	Groups    []string `json:"groups"`
}

func (c *EgressConfig) SetDefaults() {
	*c = EgressConfig{Allow: []EgressRule{}, Consumers: []string{}, Groups: []string{}}
}

// EgressRule allows a host (exact, or "*.example.com" for any subdomain)
// on the listed ports (default 443 and 80).
type EgressRule struct {
	Host  string `json:"host"`
	Ports []int  `json:"ports"`
}

func (r *EgressRule) SetDefaults() { r.Ports = []int{443, 80} }

func init() {
	registerPolicyType(PolicyRateLimit, false, func(c *RateLimitConfig, bad, semantic *fields) {
		checkRange("config.requests", c.Requests, 1, 1_000_000_000, bad)
		if c.Period() == 0 {
			bad.add("config.per", "must be second, minute or hour")
		}
		// A burst left out is the period's requests (filled in here, so
		// that Normalize shows it).
		if c.Burst != 0 {
			checkRange("config.burst", c.Burst, 1, 1_000_000_000, bad)
		} else if c.Requests >= 1 {
			c.Burst = c.Requests
		}
		if !slices.Contains([]string{RateByConsumer, RateByRoute, RateByIP}, c.By) {
			bad.add("config.by", "must be consumer, route or ip")
		}
		if !slices.Contains([]string{StoreLocal, StoreRedis}, c.Store) {
			bad.add("config.store", "must be local or redis")
		}
		if !slices.Contains([]string{StoreLocal, FallbackAllow}, c.Fallback) {
			bad.add("config.fallback", "must be local or allow")
		}
	})
	registerPolicyType(PolicyConcurrencyLimit, false, func(c *ConcurrencyLimitConfig, bad, semantic *fields) {
		checkRange("config.max", c.Max, 1, 1_000_000, bad)
		checkRange("config.retry_after_seconds", c.RetryAfterSeconds, 0, 86400, bad)
	})
	registerPolicyType(PolicyAdaptiveConcurrency, false, func(c *AdaptiveConcurrencyConfig, bad, semantic *fields) {
		checkRange("config.min_limit", c.MinLimit, 1, 1_000_000, bad)
		checkRange("config.max_limit", c.MaxLimit, 1, 1_000_000, bad)
		checkRange("config.initial_limit", c.InitialLimit, 1, 1_000_000, bad)
		checkRange("config.retry_after_seconds", c.RetryAfterSeconds, 0, 86400, bad)
		if c.MinLimit > c.MaxLimit || c.InitialLimit < c.MinLimit || c.InitialLimit > c.MaxLimit {
			semantic.add("config", "must have min_limit <= initial_limit <= max_limit")
		}
	})
	registerPolicyType(PolicyCircuitBreaker, false, func(c *CircuitBreakerConfig, bad, semantic *fields) {
		checkRange("config.failures", c.Failures, 1, 1_000_000, bad)
		checkRange("config.open_seconds", c.OpenSeconds, 1, 86400, bad)
	})
	registerPolicyType(PolicyMaintenance, false, func(c *MaintenanceConfig, bad, semantic *fields) {
		if c.Message == "" || len(c.Message) > 1024 {
			bad.add("config.message", "must be 1 to 1024 characters")
		}
		checkRange("config.retry_after_seconds", c.RetryAfterSeconds, 0, 31_536_000, bad)
	})
	registerPolicyType(PolicyDeprecation, false, func(c *DeprecationConfig, bad, semantic *fields) {
		if c.Successor != "" {
			if u, err := url.Parse(c.Successor); err != nil || !u.IsAbs() || u.Host == "" || !quotable(c.Successor) {
				bad.add("config.successor", "must be an absolute URL")
			}
		}
		if c.DeprecatedAt != nil && c.SunsetAt != nil && c.SunsetAt.Before(*c.DeprecatedAt) {
			semantic.add("config.sunset_at", "must not be before deprecated_at")
		}
	})
	registerPolicyType(PolicyContent, false, func(c *ContentConfig, bad, semantic *fields) {
		if len(c.Accepts) == 0 && len(c.Produces) == 0 && len(c.Schema) == 0 {
			bad.add("config", "must set at least one of accepts, produces and schema")
		}
		checkMediaTypes("config.accepts", c.Accepts, bad)
		checkMediaTypes("config.produces", c.Produces, bad)
		if len(c.Schema) > 0 {
			var err error
			if c.compiled, err = CompileSchema(c.Schema); err != nil {
				semantic.add("config.schema", "is not a usable JSON Schema: %v", err)
			}
		}
	})
	registerPolicyType(PolicyEgress, true, func(c *EgressConfig, bad, semantic *fields) {
		if len(c.Allow) == 0 {
			bad.add("config.allow", "must list at least one destination")
		}
		for i, r := range c.Allow {
			field := fmt.Sprintf("config.allow[%d]", i)
			host := strings.TrimPrefix(strings.ToLower(r.Host), "*.")
			if host == "" || strings.ContainsAny(host, "*/:@ ") {
				bad.add(field+".host", "must be a host name or *.domain")
			}
			if len(r.Ports) == 0 {
				bad.add(field+".ports", "must list at least one port")
			}
			for j, p := range r.Ports {
				checkRange(fmt.Sprintf("%s.ports[%d]", field, j), p, 1, 65535, bad)
			}
		}
		checkGroups("config.consumers", c.Consumers, bad)
		checkGroups("config.groups", c.Groups, bad)
	})
}

// checkMediaTypes checks a list of media types or ranges as the data
// plane reads them (ParseMediaRange).
func checkMediaTypes(field string, list []string, f *fields) {
	checkList(field, list, 64, strings.ToLower, f)
	for i, s := range list {
		if _, _, ok := ParseMediaRange(s); s != "" && !ok {
			f.add(fmt.Sprintf("%s[%d]", field, i), "must be a media type such as application/json, or a range such as text/* or */*, without parameters")
		}
	}
}

// ParseMediaRange parses a policy's media type or range:
// "application/json", "text/*" or "*/*", without parameters; type and
// subtype come back in lower case.
func ParseMediaRange(s string) (typ, sub string, ok bool) {
	m, ok := media.ParseRange(s)
	return m.Type, m.Sub, ok
}
