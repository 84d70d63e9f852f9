// Package httpx holds the small pieces of HTTP both gatehouse's proxies
// (the data plane and the egress listener) and its upstream transport
// need, written once.
package httpx

import (
	"iter"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// CeilSeconds rounds d up to whole seconds (0 for d <= 0).
func CeilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// RetrySeconds is a wait as Retry-After's delay-seconds (RFC 9110
// §10.2.3): rounded up, so that a client retrying then is not early, and
// at least 1, since 0 would invite an immediate retry.
func RetrySeconds(d time.Duration) int64 { return max(1, CeilSeconds(d)) }

// FieldList yields the elements of a comma-separated header field (RFC
// 9110 §5.6.1: Connection, Vary, Access-Control-Request-Headers...), the
// values of all its field lines in order, each trimmed of optional
// whitespace; empty elements are skipped. The one place gatehouse splits
// such lists.
func FieldList(values []string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, v := range values {
			for v != "" {
				var e string
				e, v, _ = strings.Cut(v, ",")
				if e = textproto.TrimString(e); e != "" && !yield(e) {
					return
				}
			}
		}
	}
}

// HasToken reports whether a comma-separated header field (Connection,
// TE, Expect) lists token, case-insensitively, without allocating.
func HasToken(values []string, token string) bool {
	for e := range FieldList(values) {
		if strings.EqualFold(e, token) {
			return true
		}
	}
	return false
}

// AddVia appends gatehouse's hop, in the protocol version of the message
// it received, to Via (RFC 9110 §7.6.3).
func AddVia(h http.Header, major, minor int) {
	hop := "1.1 gatehouse"
	switch {
	case major == 2 || major == 3:
		hop = strconv.Itoa(major) + " gatehouse"
	case major != 1 || minor != 1:
		hop = strconv.Itoa(major) + "." + strconv.Itoa(minor) + " gatehouse"
	}
	if prior := h["Via"]; len(prior) > 0 {
		h["Via"] = []string{strings.Join(prior, ", ") + ", " + hop}
		return
	}
	if hop == "1.1 gatehouse" {
		h["Via"] = via11 // the common case, without allocating
		return
	}
	h["Via"] = []string{hop}
}

// via11 is shared by every message: header maps only ever replace a value
// slice, never append to it.
var via11 = []string{"1.1 gatehouse"}

// HasBody reports whether a request declares a body: a length, or chunked
// framing (or, over HTTP/2, no length and no end of stream).
func HasBody(r *http.Request) bool {
	return r.ContentLength > 0 || r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody
}
