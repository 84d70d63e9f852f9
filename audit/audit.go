// Package audit judges the responses of the APIs behind the gateway by
// the rules of the status-code contract's "contract for upstream
// responses", and keeps what it finds: counted per route, operation,
// status and rule, bounded in memory, for metrics and the admin API's
// conformance report.
package audit

import "time"

// Severity is how badly a response breaks a rule.
type Severity string

const (
	// Error: the response breaks a MUST of HTTP or the API's own document.
	Error Severity = "error"
	// Warning: a SHOULD of HTTP, or a rule of the contract.
	Warning Severity = "warning"
	// Info: style.
	Info Severity = "info"
)

// Rule ids, as CONTRACT.md names them: reports, metrics and tests use
// them.
const (
	UndocumentedStatus    = "undocumented-status"
	UndocumentedMediaType = "undocumented-media-type"
	BodySchema            = "body-schema"
	MissingResponseHeader = "missing-response-header"
	BodyOnNoContent       = "body-on-no-content"
	AllowMissing          = "allow-missing"
	ChallengeMissing      = "challenge-missing"
	ProxyChallengeMissing = "proxy-challenge-missing"
	ContentRangeMissing   = "content-range-missing"
	LocationMissing       = "location-missing"
	RetryAfterMissing     = "retry-after-missing"
	ErrorWithoutBody      = "error-without-body"
	ContentTypeMissing    = "content-type-missing"
	ErrorNotProblem       = "error-not-problem"
	// RequestInvalid is a request that broke its operation on a route
	// whose openapi policy only reports.
	RequestInvalid = "request-invalid"
)

// Rule is one row of the contract's table.
type Rule struct {
	ID       string
	Severity Severity
	// Spec: the rule needs an OpenAPI document.
	Spec bool
	// Source is where the rule comes from (an RFC section, the spec).
	Source string
}

// Rules is the contract's table, in its order.
var Rules = []Rule{
	{UndocumentedStatus, Error, true, "spec"},
	{UndocumentedMediaType, Error, true, "spec"},
	{BodySchema, Error, true, "spec"},
	{MissingResponseHeader, Error, true, "spec"},
	{BodyOnNoContent, Error, false, "RFC 9110 §15.3.5, §15.4.5"},
	{AllowMissing, Error, false, "RFC 9110 §15.5.6"},
	{ChallengeMissing, Error, false, "RFC 9110 §15.5.2"},
	{ProxyChallengeMissing, Error, false, "RFC 9110 §15.5.8"},
	{ContentRangeMissing, Error, false, "RFC 9110 §15.3.7"},
	{LocationMissing, Warning, false, "RFC 9110 §15.3.2, §15.4"},
	{RetryAfterMissing, Warning, false, "RFC 6585 §4, RFC 9110 §15.6.4"},
	{ErrorWithoutBody, Warning, false, "seed 004"},
	{ContentTypeMissing, Warning, false, "RFC 9110 §8.3"},
	{ErrorNotProblem, Info, false, "RFC 9457"},
	{RequestInvalid, Warning, true, "spec"},
}

// Finding is one response (or, for request-invalid, one request) that
// broke a rule.
type Finding struct {
	Rule    string
	RouteID string
	// Operation is the spec's operation ("GET /pets/{petId}", or its
	// operationId); "" on a route without a spec.
	Operation string
	// Status is the upstream's status; 0 for request-invalid.
	Status    int
	RequestID string
	Method    string
	Path      string
	// Detail says what was wrong, as a problem's detail would.
	Detail string
	At     time.Time
}

// Sink keeps findings. Record must not block and must not keep f.
type Sink interface {
	Record(f *Finding)
}
