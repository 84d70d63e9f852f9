package audit

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/media"
)

// Body is what is known of a response's body.
type Body uint8

const (
	// BodyUnknown: the head does not say (chunked, or delimited by the
	// connection's close) and the body has not ended yet.
	BodyUnknown Body = iota
	// BodyAbsent: no body, or an empty one.
	BodyAbsent
	// BodyPresent: at least one byte of body.
	BodyPresent
)

// Response is what the rules that need no spec judge: the request's
// method, the upstream's status and header, and what is known of its
// body.
type Response struct {
	Method string
	Status int
	Header http.Header
	// ContentLength is the framing's length: -1 when the head does not
	// say (chunked, or delimited by the connection's close).
	ContentLength int64
	// Chunked: the upstream sent Transfer-Encoding: chunked.
	Chunked bool
	// Body is what is known of the body; BodyOf says it from the head.
	Body Body
}

// BodyOf says what the head of a response to method tells of its body.
//
//   - A response to HEAD has none, whatever its Content-Length (which
//     describes the GET's).
//   - A 304's Content-Length and Transfer-Encoding describe the selected
//     representation (RFC 9110 §8.6, RFC 9112 §6.1), not a body: none.
//     The framing ends a 304 at its head, so bytes after it never reach
//     the client (the transport refuses to reuse that connection).
//   - A 204 has none by HTTP's framing, but a Content-Length above 0 or a
//     chunked Transfer-Encoding says the upstream sent one: present.
//   - Otherwise a Content-Length says it (0: absent), and chunked or
//     close-delimited framing leaves it unknown until the body ends.
func BodyOf(method string, status int, contentLength int64, header http.Header, chunked bool) Body {
	switch {
	case method == http.MethodHead, status == http.StatusNotModified, status < 200:
		return BodyAbsent
	case status == http.StatusNoContent:
		if chunked {
			return BodyPresent
		}
		if v := header["Content-Length"]; len(v) > 0 {
			if n, err := strconv.ParseInt(v[0], 10, 64); err == nil && n > 0 {
				return BodyPresent
			}
		}
		return BodyAbsent
	case contentLength > 0:
		return BodyPresent
	case contentLength == 0:
		return BodyAbsent
	}
	return BodyUnknown
}

// Phase is when a rule can be judged.
type Phase uint8

const (
	// Head: the rule needs the head alone; an enforcing policy may
	// replace a response that breaks it.
	Head Phase = 1 << iota
	// Ended: the rule needs to know whether there is a body, which for a
	// body of unknown length is known once it ended.
	Ended
)

// check is one rule that needs no spec.
type check struct {
	rule  string
	phase Phase
	// broken returns what is wrong with r, "" if nothing.
	broken func(r *Response) string
}

// checks are the rules of the contract's table that hold for any route,
// in its order. Those of phase Ended are judged only when r.Body is known.
var checks = []check{
	{BodyOnNoContent, Head, func(r *Response) string {
		if r.Status == http.StatusNoContent && r.Body == BodyPresent {
			return "a 204 response has a body"
		}
		return ""
	}},
	{AllowMissing, Head, func(r *Response) string {
		// An empty Allow is one: the resource allows no method now (RFC
		// 9110 §10.2.1).
		if _, ok := r.Header["Allow"]; r.Status == http.StatusMethodNotAllowed && !ok {
			return "a 405 response has no Allow"
		}
		return ""
	}},
	{ChallengeMissing, Head, missing(http.StatusUnauthorized, "WWW-Authenticate")},
	{ProxyChallengeMissing, Head, missing(http.StatusProxyAuthRequired, "Proxy-Authenticate")},
	{ContentRangeMissing, Head, func(r *Response) string {
		if r.Status != http.StatusPartialContent || has(r.Header, "Content-Range") {
			return ""
		}
		// Several ranges come as multipart/byteranges, each part with its
		// own Content-Range (RFC 9110 §14.6).
		if typ, sub, ok := media.ContentType(r.Header["Content-Type"]); ok && strings.EqualFold(typ, "multipart") && strings.EqualFold(sub, "byteranges") {
			return ""
		}
		return "a 206 response has no Content-Range"
	}},
	{LocationMissing, Head, func(r *Response) string {
		switch r.Status {
		case http.StatusCreated, http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
			http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
			if !has(r.Header, "Location") {
				return "a " + strconv.Itoa(r.Status) + " response has no Location"
			}
		}
		return ""
	}},
	{RetryAfterMissing, Head, func(r *Response) string {
		if (r.Status == http.StatusTooManyRequests || r.Status == http.StatusServiceUnavailable) && !has(r.Header, "Retry-After") {
			return "a " + strconv.Itoa(r.Status) + " response has no Retry-After"
		}
		return ""
	}},
	{ErrorWithoutBody, Ended, func(r *Response) string {
		if r.Status >= 400 && r.Method != http.MethodHead && r.Body == BodyAbsent {
			return "a " + strconv.Itoa(r.Status) + " response has no body"
		}
		return ""
	}},
	{ContentTypeMissing, Ended, func(r *Response) string {
		if r.Body == BodyPresent && r.Status != http.StatusNoContent && !has(r.Header, "Content-Type") {
			return "a " + strconv.Itoa(r.Status) + " response has a body but no Content-Type"
		}
		return ""
	}},
	{ErrorNotProblem, Ended, func(r *Response) string {
		if r.Status < 400 || r.Body != BodyPresent || IsProblem(r.Header) {
			return ""
		}
		ct := r.Header.Get("Content-Type")
		if ct == "" {
			return "a " + strconv.Itoa(r.Status) + " response's body is not a problem document"
		}
		return "a " + strconv.Itoa(r.Status) + " response's body is " + ct + ", not a problem document"
	}},
}

func missing(status int, field string) func(r *Response) string {
	detail := "a " + strconv.Itoa(status) + " response has no " + field
	key := http.CanonicalHeaderKey(field) // Www-Authenticate
	return func(r *Response) string {
		if r.Status == status && !has(r.Header, key) {
			return detail
		}
		return ""
	}
}

// has reports whether the header has the field with a value that is not
// blank.
func has(h http.Header, canonical string) bool {
	for _, v := range h[canonical] {
		if strings.TrimSpace(v) != "" {
			return true
		}
	}
	return false
}

// IsProblem reports whether a header's Content-Type is an RFC 9457
// problem document, in JSON or XML.
func IsProblem(h http.Header) bool {
	typ, sub, ok := media.ContentType(h["Content-Type"])
	return ok && strings.EqualFold(typ, "application") &&
		(strings.EqualFold(sub, "problem+json") || strings.EqualFold(sub, "problem+xml"))
}

// Judge calls broke for each rule of the phase that r breaks, in the
// table's order, with what is wrong. It is the one judge of the rules
// that need no spec. A rule of phase Ended is judged with Head when the
// head told r.Body; otherwise the caller judges it with Ended once the
// body ended (and r.Body says whether there was one), so that each rule
// is judged once.
func Judge(r *Response, phase Phase, broke func(rule, detail string)) {
	for i := range checks {
		c := &checks[i]
		switch {
		case phase == Head && c.phase == Ended && r.Body == BodyUnknown:
			continue
		case phase == Ended && (c.phase != Ended || r.Body == BodyUnknown):
			continue
		}
		if d := c.broken(r); d != "" {
			broke(c.rule, d)
		}
	}
}

// HeadRule reports whether rule is judged from the head alone, whatever
// the body: an enforcing policy may replace a response breaking it. Of
// the spec's rules, all but body-schema are.
func HeadRule(rule string) bool {
	switch rule {
	case UndocumentedStatus, UndocumentedMediaType, MissingResponseHeader:
		return true
	}
	for i := range checks {
		if checks[i].rule == rule {
			return checks[i].phase == Head
		}
	}
	return false
}

// SeverityOf returns a rule's severity from Rules ("" for an unknown
// rule).
func SeverityOf(rule string) Severity {
	for i := range Rules {
		if Rules[i].ID == rule {
			return Rules[i].Severity
		}
	}
	return ""
}
