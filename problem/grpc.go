package problem

import (
	"net/http"
	"strconv"
	"strings"
)

// gRPC status codes (google.golang.org/grpc/codes) that gatehouse's own
// answers use.
const (
	grpcUnknown           = 2
	grpcDeadlineExceeded  = 4
	grpcPermissionDenied  = 7
	grpcResourceExhausted = 8
	grpcUnimplemented     = 12
	grpcInternal          = 13
	grpcUnavailable       = 14
	grpcUnauthenticated   = 16
)

// GRPCCode is the one mapping from the HTTP status of gatehouse's own
// answer to the gRPC status a gRPC client reads, as gRPC's
// http-grpc-status-mapping.md maps them; the README's gRPC table gives
// each row's reason.
func GRPCCode(status int) int {
	switch status {
	case http.StatusBadRequest, http.StatusInternalServerError:
		return grpcInternal
	case http.StatusUnauthorized:
		return grpcUnauthenticated
	case http.StatusForbidden:
		return grpcPermissionDenied
	case http.StatusNotFound:
		return grpcUnimplemented
	case http.StatusTooManyRequests:
		return grpcResourceExhausted
	case http.StatusBadGateway, http.StatusServiceUnavailable:
		return grpcUnavailable
	case http.StatusGatewayTimeout:
		return grpcDeadlineExceeded
	}
	return grpcUnknown
}

// IsGRPC reports whether r is a gRPC request: HTTP/2 (gRPC runs on
// nothing else, so an HTTP/1.1 client naming the type is answered as any
// HTTP client is, with the contract's status) and a Content-Type of
// application/grpc or application/grpc+<format> (parameters allowed).
// gRPC-Web (application/grpc-web...) is not: its status travels in a
// framed trailer inside the body, which this answer does not write.
func IsGRPC(r *http.Request) bool {
	if r.ProtoMajor != 2 {
		return false
	}
	ct := r.Header["Content-Type"]
	if len(ct) == 0 || len(ct[0]) < len("application/grpc") ||
		!strings.EqualFold(ct[0][:len("application/grpc")], "application/grpc") {
		return false
	}
	rest := ct[0][len("application/grpc"):]
	return rest == "" || rest[0] == '+' || rest[0] == ';'
}

// writeGRPC answers doc to a gRPC client as gRPC's clients read an error:
// HTTP 200, Content-Type application/grpc, and the status in grpc-status
// and grpc-message, in a trailers-only response (one header section that
// ends the stream: no body). The fields write set for the refusal
// (WWW-Authenticate, Retry-After, RateLimit-*, X-Request-Id) stay.
func writeGRPC(w http.ResponseWriter, h http.Header, doc *Document) {
	// A 408's Connection: close stays: net/http's HTTP/2 server turns it
	// into a GOAWAY, as it should be.
	h.Del("Content-Length")
	h.Set("Content-Type", "application/grpc")
	setGRPCStatus(h, "", doc)
	w.WriteHeader(http.StatusOK)
}

// WriteGRPCTrailers ends a gRPC response whose header section is already
// sent (the upstream's) with err's gRPC status in its trailers: the
// status and message writeGRPC would have answered err with before the
// head. The caller returns from its handler next, which sends them.
func WriteGRPCTrailers(w http.ResponseWriter, r *http.Request, err error) {
	doc := New(err, r.URL.Path, RequestID(r))
	doc.TraceID = TraceID(r)
	setGRPCStatus(w.Header(), http.TrailerPrefix, doc)
}

// setGRPCStatus sets grpc-status and grpc-message for doc in h, their
// names prefixed by prefix (http.TrailerPrefix for trailers), and the
// trace id of a sampled request as trace-id: the gRPC form of a problem
// document's trace_id. It is metadata beside the status, read as a
// client reads x-request-id, the request id every answer carries
// (grpc-go: grpc.Trailer; other stacks: the call's trailing metadata),
// where grpc-status-details-bin would make every client decode a
// google.rpc.Status to find one string.
func setGRPCStatus(h http.Header, prefix string, doc *Document) {
	h[prefix+"Grpc-Status"] = []string{strconv.Itoa(GRPCCode(doc.Status))}
	if doc.Detail != "" {
		h[prefix+"Grpc-Message"] = []string{EncodeGRPCMessage(doc.Detail)}
	}
	if doc.TraceID != "" {
		h[prefix+grpcTraceID] = []string{doc.TraceID}
	}
}

// grpcTraceID is the metadata key (in canonical header form) of the
// trace id on a gRPC refusal (setGRPCStatus).
const grpcTraceID = "Trace-Id"

// EncodeGRPCMessage percent-encodes s as gRPC's grpc-message requires:
// every byte of its UTF-8 outside the printable ASCII range (0x20-0x7E),
// and "%" itself, as %XX with upper-case hex digits.
func EncodeGRPCMessage(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '%' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c <= 0x7e && c != '%' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}
