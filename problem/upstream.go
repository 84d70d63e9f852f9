package problem

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gatehouse/gatehouse"
)

// Types of the problems that stand for an upstream's response.
const (
	// TypeNonconforming: a response an enforcing audit replaced (502).
	TypeNonconforming = TypeBase + "nonconforming-response"
	// TypeUpstream: an upstream's error restated as a problem (error
	// normalisation), with the upstream's status.
	TypeUpstream = TypeBase + "upstream-error"
)

// Nonconforming is an upstream response replaced because its head broke
// an error-severity rule of the response audit: a 502 whose problem names
// the rule and keeps the upstream's status as upstream_status.
type Nonconforming struct {
	Rule           string
	UpstreamStatus int
	// Detail says what was wrong ("a 405 response has no Allow").
	Detail string
}

func (e *Nonconforming) Error() string {
	return "upstream response broke " + e.Rule + ": " + e.Detail
}

// Unwrap makes it a 502 wherever a gatehouse error code is asked for.
func (e *Nonconforming) Unwrap() error {
	return gatehouse.Errorf(gatehouse.EBADGATEWAY, "The upstream's response broke the rule %s: %s.", e.Rule, e.Detail)
}

// Upstream is an upstream's 4xx or 5xx whose body was not a problem
// document, restated as one: the same status, the upstream's message if
// one could be read (else ""). Its problem adds nothing the upstream did
// not say: no challenge, retry hint or other field of gatehouse's own.
type Upstream struct {
	Status  int
	Message string
}

func (e *Upstream) Error() string {
	return "upstream answered " + strconv.Itoa(e.Status) + ": " + e.Message
}

// StatusOf is the status err is answered with: an Upstream's own, else
// the status of err's code.
func StatusOf(err error) int {
	var up *Upstream
	if errors.As(err, &up) {
		return up.Status
	}
	return Status(gatehouse.ErrorCode(err))
}

// upstream fills in what d says of an upstream's response, if err stands
// for one.
func (d *Document) upstream(err error) {
	var nc *Nonconforming
	if errors.As(err, &nc) {
		d.Type, d.Rule, d.UpstreamStatus = TypeNonconforming, nc.Rule, nc.UpstreamStatus
		return
	}
	var up *Upstream
	if !errors.As(err, &up) {
		return
	}
	d.Type, d.Status, d.Title = TypeUpstream, up.Status, title(up.Status)
	d.Detail = up.Message
	if d.Detail == "" {
		d.Detail = "The upstream answered " + strconv.Itoa(up.Status) + " " + d.Title + "."
	}
}

// representationFields describe the upstream's body, which a restated
// error replaces: they would describe the problem falsely.
var representationFields = []string{
	"Content-Encoding", "Content-Language", "Content-Location", "Content-Range", "Content-Disposition",
	"Content-Md5", "Content-Digest", "Repr-Digest", "Digest", "Etag", "Last-Modified",
}

// restated clears from h what described the upstream's body; the rest
// (Retry-After, WWW-Authenticate, Allow, Location, Cache-Control...) is
// the upstream's word on its error, kept.
func restated(h http.Header) {
	for _, k := range representationFields {
		delete(h, k)
	}
}
