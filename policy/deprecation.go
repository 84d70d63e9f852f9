package policy

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse"
)

func init() { register(gatehouse.PolicyDeprecation, buildDeprecation) }

// deprecation marks a route deprecated and, from its sunset on, retired.
//
// Every response carries Deprecation: @<unix seconds> (RFC 9745 §2), a
// date in the future included (RFC 9745 allows it, to announce a
// deprecation to come). RFC 9745 requires a date; a policy without
// deprecated_at means "deprecated already", dated by the policy's
// creation, or @0 (1970, "long since") when that is unknown. Sunset (RFC
// 8594) carries sunset_at as an HTTP-date, and Link names the successor
// with rel="successor-version" (RFC 5829). rel="deprecation" is not used:
// RFC 9745 §3 keeps it for a link to documentation of the deprecation,
// which the config does not have.
//
// The headers are set on the response to come, so they reach the client on
// the upstream's answer (unless the upstream sends the same fields) and on
// any problem a later policy answers with. From sunset_at on the route
// answers 410 Gone with the same headers, the upstream never contacted.
//
// Several deprecation policies at one level are merged: the earliest
// deprecation date and the earliest sunset apply, and the successor is
// the one named by the policy whose sunset that is, else the first named.
type deprecation struct {
	deprecation, sunset, link []string
	sunsetAt                  time.Time // when gone is set
	now                       func() time.Time
	gone                      *gatehouse.Error
}

func buildDeprecation(b *Build, pols []*gatehouse.Policy) (Step, error) {
	cfgs, err := configs[gatehouse.DeprecationConfig](pols)
	if err != nil {
		return nil, err
	}
	var (
		deprecated            time.Time
		sunset                *time.Time
		successor, sunsetNext string
	)
	for i, c := range cfgs {
		at := time.Unix(0, 0)
		switch {
		case c.DeprecatedAt != nil:
			at = *c.DeprecatedAt
		case !pols[i].CreatedAt.IsZero():
			at = pols[i].CreatedAt
		}
		if i == 0 || at.Before(deprecated) {
			deprecated = at
		}
		if c.SunsetAt != nil && (sunset == nil || c.SunsetAt.Before(*sunset)) {
			sunset, sunsetNext = c.SunsetAt, c.Successor
		}
		if successor == "" {
			successor = c.Successor
		}
	}
	if sunsetNext != "" {
		successor = sunsetNext
	}
	d := &deprecation{deprecation: []string{"@" + strconv.FormatInt(deprecated.Unix(), 10)}, now: b.Env.Now}
	if successor != "" {
		d.link = []string{"<" + successor + `>; rel="successor-version"`}
	}
	if sunset != nil {
		d.sunsetAt = *sunset
		date := sunset.UTC().Format(http.TimeFormat)
		d.sunset = []string{date}
		d.gone = &gatehouse.Error{Code: gatehouse.EGONE, Message: "This API was retired on " + date + ".", Successor: successor}
	}
	return d, nil
}

func (d *deprecation) Check(r *Request) error {
	h := r.W.Header()
	h["Deprecation"] = d.deprecation
	if d.sunset != nil {
		h["Sunset"] = d.sunset
	}
	if d.link != nil {
		h["Link"] = d.link
	}
	if d.gone != nil && !d.now().Before(d.sunsetAt) {
		return d.gone
	}
	return nil
}
