package gatehouse

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/gatehouse/gatehouse/internal/strictjson"
)

// Policy is a named, reusable policy: what it does is its Type, how is its
// Config, whose schema depends on Type (PolicyTypes). A policy applies to
// the routes and services that list it in their policies, or to every
// route if it is Global.
//
// For each type, the most specific level that has policies of that type
// wins: a route's own, else its service's, else the global ones. Several
// policies of one type at that level all apply (two rate limits, say).
// Types run in a fixed order, cheapest and most fundamental first; see
// PolicyOrder.
type Policy struct {
	Meta
	Tagged
	Name   string          `json:"name"`
	Type   string          `json:"type"`
	Global bool            `json:"global"`
	Config json.RawMessage `json:"config"`

	// hidden is what Hide took out of Config, for KeepHidden.
	hidden *AuthConfig
	// unkept are the HS256 secrets KeepHidden could not keep because the
	// keys' kids do not tell them apart: Check explains their refusal.
	unkept []FieldError
}

// Policy types.
const (
	PolicyCORS                = "cors"
	PolicyDeprecation         = "deprecation"
	PolicyMaintenance         = "maintenance"
	PolicyAuth                = "auth"
	PolicyIPRestriction       = "ip-restriction"
	PolicyACL                 = "acl"
	PolicyContent             = "content"
	PolicyRateLimit           = "rate-limit"
	PolicyConcurrencyLimit    = "concurrency-limit"
	PolicyAdaptiveConcurrency = "adaptive-concurrency"
	PolicyCircuitBreaker      = "circuit-breaker"
	PolicyEgress              = "egress"
	PolicyTransform           = "transform"
)

// PolicyOrder is the order policies run in on the data plane, as the
// status-code contract orders checks: cors first, which refuses no actual
// request but puts its fields on every answer, so that a browser can read
// the refusals that follow (its preflights are answered before any policy
// runs); then a retired route (410) or one under maintenance (503)
// answers so whoever asks; then credentials (401), then permissions
// (403), then what the headers say of the content (406, 415), then
// limits, which count only requests that could be served (429, 503), and
// last what needs the body (the content schema: 400, 422). The openapi
// policy checks a request like content (its head with content, its body
// late); the http-audit policy only judges responses.
//
// A traffic split refuses nothing: it chooses the service that answers,
// once the checks of the client's own request (credentials, address,
// consumer, what it says of its content and its operation: none of them
// depends on the service) let it on, so that the choice may follow the
// consumer, and before the limits, so that what judges or is keyed by
// the upstream (a circuit breaker: one circuit per service) judges the
// one that will answer. A mirror, which refuses nothing either, comes
// after the limits, and copies the request as the transform leaves it
// (it reads the outbound request in the data plane, not in its Step). A
// transform, which refuses nothing, changes the request once every check
// let it on, those of the body included: after authentication, so that
// its values may name the consumer, and after every check that judges
// the client's own request (a schema skipped for a Content-Type a
// transform set would let any body through). Egress policies govern the
// egress listener, not routes.
var PolicyOrder = []string{
	PolicyCORS, PolicyDeprecation, PolicyMaintenance, PolicyAuth, PolicyIPRestriction, PolicyACL,
	PolicyContent, PolicyOpenAPI, PolicyTrafficSplit,
	PolicyRateLimit, PolicyConcurrencyLimit, PolicyAdaptiveConcurrency, PolicyCircuitBreaker,
	PolicyMirror, PolicyTransform, PolicyHTTPAudit,
}

// MaxPolicies bounds the policies one route or service lists.
const MaxPolicies = 32

// policyType decodes and checks one type's config.
type policyType struct {
	newConfig func() any
	// check reports what a schema sees (400) in bad and what needs
	// meaning (422) in semantic.
	check func(cfg any, bad, semantic *fields)
	// globalOnly types cannot be listed by routes and services.
	globalOnly bool
	// notGlobal, if set, is why the type cannot be global.
	notGlobal string
}

// PolicyTypes maps each policy type to its config schema. The configs are
// in policy_*.go.
var PolicyTypes = map[string]policyType{}

func registerPolicyType[C any](name string, globalOnly bool, check func(c *C, bad, semantic *fields)) {
	PolicyTypes[name] = policyType{
		newConfig: func() any {
			c := new(C)
			if d, ok := any(c).(interface{ SetDefaults() }); ok {
				d.SetDefaults()
			}
			return c
		},
		check:      func(cfg any, bad, semantic *fields) { check(cfg.(*C), bad, semantic) },
		globalOnly: globalOnly,
	}
}

// notGlobal marks a registered type as one that cannot be global, for
// the reason given.
func notGlobal(name, why string) {
	pt := PolicyTypes[name]
	pt.notGlobal = why
	PolicyTypes[name] = pt
}

func policyTypeNames() string {
	names := make([]string, 0, len(PolicyTypes))
	for n := range PolicyTypes {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func NewPolicy() *Policy { return &Policy{} }

func (p *Policy) Kind() Kind  { return KindPolicy }
func (p *Policy) Base() *Meta { return &p.Meta }

func (p *Policy) Index() Index {
	var refs []Ref
	if id := p.SpecID(); id != "" {
		refs = append(refs, Ref{KindSpec, id})
	}
	for _, fr := range p.serviceFieldRefs() {
		refs = append(refs, fr.Ref)
	}
	return Index{Name: p.Name, Refs: refs, Unique: []string{"name:" + p.Name}}
}

// GlobalOnly reports whether the policy's type applies only globally.
func (p *Policy) GlobalOnly() bool { return PolicyTypes[p.Type].globalOnly }

func (p *Policy) Check() (invalid, unprocessable []FieldError) {
	_, bad, semantic := p.check()
	return bad, semantic
}

// normalizeAndCheck checks the policy and, if its config is valid,
// rewrites it as Normalize does, from the one decoding (NormalizeAndCheck).
func (p *Policy) normalizeAndCheck() (invalid, unprocessable []FieldError) {
	cfg, bad, semantic := p.check()
	if cfg != nil {
		p.setConfig(cfg)
	}
	return bad, semantic
}

// check is Check, returning also the decoded config if the config itself
// is valid (errors elsewhere, in the name say, do not matter to it).
func (p *Policy) check() (cfg any, bad, semantic fields) {
	checkMeta(&p.Meta, &bad)
	checkTags("tags", p.Tags, &bad)
	checkName(p.Name, true, &bad)
	pt, known := PolicyTypes[p.Type]
	switch {
	case p.Type == "":
		bad.add("type", "is required: one of %s", policyTypeNames())
	case !known:
		bad.add("type", "must be one of %s", policyTypeNames())
	case len(p.Config) == 0 || string(p.Config) == "null":
		bad.add("config", "is required for type %s", p.Type)
	default:
		c, cbad, csemantic := p.decode(pt)
		p.explainUnkept(&cbad, &csemantic)
		bad, semantic = append(bad, cbad...), append(semantic, csemantic...)
		if c != nil && pt.globalOnly && !p.Global {
			semantic.add("global", "must be true: %s policies apply to the whole gateway", p.Type)
		}
		if c != nil && pt.notGlobal != "" && p.Global {
			semantic.add("global", "must be false: %s", pt.notGlobal)
		}
		if len(cbad)+len(csemantic) == 0 {
			cfg = c
		}
	}
	return cfg, bad, semantic
}

// decode decodes the config, of type pt, and checks it: the one decoding
// behind Check and DecodeConfig. cfg is nil if the config does not
// decode.
func (p *Policy) decode(pt policyType) (cfg any, bad, semantic fields) {
	c := pt.newConfig()
	tree, err := strictjson.Parse(p.Config)
	if err != nil {
		bad.add("config", "is not valid JSON")
		return nil, bad, nil
	}
	if errs := strictjson.Assign(tree, c); len(errs) > 0 {
		for _, e := range errs {
			f := FieldError(e) // an entry counting unlisted errors stays one
			f.Field = "config"
			if e.Field != "body" {
				f.Field = "config." + e.Field
			}
			bad = append(bad, f)
		}
		return nil, bad, nil
	}
	pt.check(c, &bad, &semantic)
	return c, bad, semantic
}

// Normalize rewrites a valid config with every default filled in, so that
// what is read back is what the data plane enforces.
func (p *Policy) Normalize() {
	if cfg, err := p.DecodeConfig(); err == nil {
		p.setConfig(cfg)
	}
}

// setConfig writes a decoded, valid config back with its defaults.
func (p *Policy) setConfig(cfg any) {
	if out, err := json.Marshal(cfg); err == nil {
		p.Config = out
	}
}

// DecodeConfig returns the policy's typed config (*RateLimitConfig, ...)
// with its defaults, validated as Check validates it.
func (p *Policy) DecodeConfig() (any, error) {
	pt, ok := PolicyTypes[p.Type]
	if !ok {
		return nil, fmt.Errorf("unknown policy type %q", p.Type)
	}
	cfg, bad, semantic := p.decode(pt)
	if all := append(bad, semantic...); len(all) > 0 {
		return nil, fmt.Errorf("policy %q: %s %s", p.ID, all[0].Field, all[0].Message)
	}
	return cfg, nil
}

// checkPolicyIDs checks the policies list of a route or service.
func checkPolicyIDs(ids []string, f *fields) {
	checkList("policies", ids, MaxPolicies, func(s string) string { return s }, f)
	for i, id := range ids {
		if id != "" && !ValidID(id) {
			f.add(fmt.Sprintf("policies[%d]", i), IDRule)
		}
	}
}

// policyRefs are the references a policies list makes.
func policyRefs(ids []string) []Ref {
	refs := make([]Ref, 0, len(ids))
	for _, id := range ids {
		refs = append(refs, Ref{KindPolicy, id})
	}
	return refs
}
