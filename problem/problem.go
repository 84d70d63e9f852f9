// Package problem turns gatehouse errors into HTTP responses: the one table
// from error code to status, and the one writer of RFC 9457 problem
// documents, shared by the admin API and the data plane.
package problem

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse"
	"go.opentelemetry.io/otel/trace"
)

// statuses is the one mapping from error code to HTTP status.
var statuses = map[gatehouse.Code]int{
	gatehouse.EINVALID:         http.StatusBadRequest,
	gatehouse.EUNAUTHORIZED:    http.StatusUnauthorized,
	gatehouse.EFORBIDDEN:       http.StatusForbidden,
	gatehouse.ENOTFOUND:        http.StatusNotFound,
	gatehouse.EMETHOD:          http.StatusMethodNotAllowed,
	gatehouse.ENOTACCEPTABLE:   http.StatusNotAcceptable,
	gatehouse.EPROXYAUTH:       http.StatusProxyAuthRequired,
	gatehouse.ETIMEOUT:         http.StatusRequestTimeout,
	gatehouse.ECONFLICT:        http.StatusConflict,
	gatehouse.EGONE:            http.StatusGone,
	gatehouse.EEXPECTATION:     http.StatusExpectationFailed,
	gatehouse.EPRECONDITION:    http.StatusPreconditionFailed,
	gatehouse.ETOOLARGE:        http.StatusRequestEntityTooLarge,
	gatehouse.EMEDIATYPE:       http.StatusUnsupportedMediaType,
	gatehouse.EUNPROCESSABLE:   http.StatusUnprocessableEntity,
	gatehouse.ETOOMANY:         http.StatusTooManyRequests,
	gatehouse.EHEADERSTOOLARGE: http.StatusRequestHeaderFieldsTooLarge,
	gatehouse.EINTERNAL:        http.StatusInternalServerError,
	gatehouse.ENOTIMPLEMENTED:  http.StatusNotImplemented,
	gatehouse.EBADGATEWAY:      http.StatusBadGateway,
	gatehouse.EGATEWAYTIMEOUT:  http.StatusGatewayTimeout,
	gatehouse.EVERSION:         http.StatusHTTPVersionNotSupported,
	gatehouse.EUNAVAILABLE:     http.StatusServiceUnavailable,
}

// Status returns the HTTP status for an error code. An unmapped code is a
// bug that problem's tests catch; at run time it is a 500.
func Status(code gatehouse.Code) int {
	if s, ok := statuses[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// TypeBase prefixes every problem type URI; the code completes it.
const TypeBase = "https://gatehouse.dev/problems/"

// RetryAfterSeconds is the default Retry-After of a 503.
const RetryAfterSeconds = 5

// Document is an RFC 9457 problem document with gatehouse's extensions.
type Document struct {
	XMLName   xml.Name               `json:"-" xml:"urn:ietf:rfc:7807 problem"`
	Type      string                 `json:"type" xml:"type"`
	Title     string                 `json:"title" xml:"title"`
	Status    int                    `json:"status" xml:"status"`
	Detail    string                 `json:"detail" xml:"detail"`
	Instance  string                 `json:"instance,omitempty" xml:"instance,omitempty"`
	RequestID string                 `json:"request_id" xml:"request_id"`
	Errors    []gatehouse.FieldError `json:"errors,omitempty" xml:"errors>i,omitempty"`
	// Successor is where a retired route's API went (410).
	Successor string `json:"successor,omitempty" xml:"successor,omitempty"`
	// Rule is the audit rule an upstream response broke, and
	// UpstreamStatus its status, when an enforcing audit replaced it.
	Rule           string `json:"rule,omitempty" xml:"rule,omitempty"`
	UpstreamStatus int    `json:"upstream_status,omitempty" xml:"upstream_status,omitempty"`
	// TraceID names the request's trace when it is sampled (TraceID).
	TraceID string `json:"trace_id,omitempty" xml:"trace_id,omitempty"`
}

// New builds the document for err. Internal failures get a generic detail:
// their text belongs in the log, tied to the client's copy by request id.
func New(err error, instance, requestID string) *Document {
	code := gatehouse.ErrorCode(err)
	status := Status(code)
	d := &Document{
		Type:      TypeBase + string(code),
		Title:     title(status),
		Status:    status,
		Detail:    gatehouse.ErrorMessage(err),
		Instance:  instance,
		RequestID: requestID,
		Errors:    gatehouse.ErrorFields(err),
		Successor: gatehouse.ErrorSuccessor(err),
	}
	d.upstream(err)
	return d
}

// title is the status's reason phrase as RFC 9110 names it; Go keeps two
// older names.
func title(status int) string {
	switch status {
	case http.StatusRequestEntityTooLarge:
		return "Content Too Large"
	case http.StatusUnprocessableEntity:
		return "Unprocessable Content"
	}
	return http.StatusText(status)
}

// Media types of problem documents.
const (
	JSON = "application/problem+json"
	XML  = "application/problem+xml"
)

// Marshal encodes d as JSON or, if mediaType is XML, as XML.
func (d *Document) Marshal(mediaType string) []byte {
	if mediaType == XML {
		b, _ := xml.Marshal(d)
		return append([]byte(xml.Header), b...)
	}
	b, _ := json.Marshal(d)
	return append(b, '\n')
}

// Write answers err as a JSON problem document (the admin API's form).
func Write(w http.ResponseWriter, r *http.Request, err error) {
	write(w, r, err, JSON)
}

// WriteNegotiated answers err as a problem document in JSON, or in XML when
// the request's Accept prefers XML (the data plane's form); to a gRPC
// request (IsGRPC), as the gRPC status GRPCCode maps it to.
func WriteNegotiated(w http.ResponseWriter, r *http.Request, err error) {
	mt := JSON
	switch {
	case IsGRPC(r):
		mt = grpcMedia
	case PrefersXML(r.Header.Get("Accept")):
		mt = XML
	}
	write(w, r, err, mt)
}

// grpcMedia is write's mediaType for a gRPC answer (writeGRPC).
const grpcMedia = "application/grpc"

func write(w http.ResponseWriter, r *http.Request, err error, mediaType string) {
	id := RequestID(r)
	doc := New(err, r.URL.Path, id)
	doc.TraceID = TraceID(r)
	h := w.Header()
	if doc.Type == TypeUpstream {
		// The upstream's own error: its fields stay, none is invented.
		restated(h)
		finish(w, r, h, doc, mediaType)
		return
	}
	// Our own failures are logged with their cause, which the client never
	// sees; an outage's cause is worth a warning. A deliberate 503 (a
	// draining server) has no cause and is in the access log already.
	switch code := gatehouse.ErrorCode(err); {
	case code == gatehouse.EINTERNAL:
		slog.ErrorContext(r.Context(), "request failed", "request_id", id, "status", doc.Status, "error", err)
	case code == gatehouse.EUNAVAILABLE && errors.Unwrap(err) != nil:
		slog.WarnContext(r.Context(), "request failed", "request_id", id, "status", doc.Status, "error", err)
	}
	switch doc.Status {
	case http.StatusUnauthorized:
		if h.Get("WWW-Authenticate") == "" {
			h.Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
		}
	case http.StatusProxyAuthRequired:
		if h.Get("Proxy-Authenticate") == "" {
			h.Set("Proxy-Authenticate", `Basic realm="gatehouse egress", charset="UTF-8"`)
		}
	case http.StatusRequestTimeout:
		// The rest of a stalled request may still arrive; it must not be
		// read as the next request.
		h.Set("Connection", "close")
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		if h.Get("Retry-After") == "" {
			h.Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
		}
	}
	// A success's validators do not describe an error.
	h.Del("ETag")
	h.Del("Last-Modified")
	h.Del("Location")
	h.Set("Cache-Control", "no-store")
	finish(w, r, h, doc, mediaType)
}

// finish writes doc as the response.
func finish(w http.ResponseWriter, r *http.Request, h http.Header, doc *Document, mediaType string) {
	if mediaType == grpcMedia {
		writeGRPC(w, h, doc)
		return
	}
	body := doc.Marshal(mediaType)
	h.Set("Content-Type", mediaType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if _, ok := h["Cache-Control"]; !ok {
		h.Set("Cache-Control", "no-store")
	}
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(doc.Status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// PrefersXML reports whether an Accept header ranks an XML type above every
// JSON type. JSON types a header does not name get the quality of "*/*" or
// "application/*", as RFC 9110 assigns it; an XML type the header names wins
// a tie against such a wildcard, but not against a JSON type it names.
// Elements with an invalid quality are ignored.
func PrefersXML(accept string) bool {
	if accept == "" {
		return false
	}
	bestXML, bestJSON, bestAny := -1.0, -1.0, -1.0 // -1: not named
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if s, ok := params["q"]; ok {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil || !(v >= 0 && v <= 1) {
				continue
			}
			q = v
		}
		switch {
		case strings.HasSuffix(mt, "/xml") || strings.HasSuffix(mt, "+xml"):
			bestXML = max(bestXML, q)
		case strings.HasSuffix(mt, "/json") || strings.HasSuffix(mt, "+json"):
			bestJSON = max(bestJSON, q)
		case mt == "*/*" || mt == "application/*":
			bestAny = max(bestAny, q)
		}
	}
	if bestJSON >= 0 {
		return bestXML > bestJSON
	}
	return bestXML > 0 && bestXML >= bestAny
}

// TraceID returns the id of r's trace when its span is sampled, so
// exported and findable, else "" (tracing off, or not sampled).
func TraceID(r *http.Request) string {
	sc := trace.SpanContextFromContext(r.Context())
	if !sc.IsSampled() {
		return ""
	}
	return sc.TraceID().String()
}

// RequestID returns the request's id. The server stack (internal/serve)
// puts it in the request's own X-Request-Id header, valid or replaced, so
// that forwarding passes it upstream with the rest of the header and no
// context has to carry it.
func RequestID(r *http.Request) string {
	if v := r.Header["X-Request-Id"]; len(v) > 0 {
		return v[0]
	}
	return ""
}
