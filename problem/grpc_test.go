package problem_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/problem"
	"go.opentelemetry.io/otel/trace"
)

// TestGRPCCodeMapsEachStatusAsGRPCDoes pins the mapping row by row
// (http-grpc-status-mapping.md, and the README's gRPC table).
func TestGRPCCodeMapsEachStatusAsGRPCDoes(t *testing.T) {
	tests := []struct {
		status, want int
	}{
		{400, 13}, // INTERNAL
		{401, 16}, // UNAUTHENTICATED
		{403, 7},  // PERMISSION_DENIED
		{404, 12}, // UNIMPLEMENTED
		{429, 8},  // RESOURCE_EXHAUSTED
		{502, 14}, // UNAVAILABLE
		{503, 14}, // UNAVAILABLE
		{504, 4},  // DEADLINE_EXCEEDED
		{500, 13}, // INTERNAL
		// Everything else: UNKNOWN.
		{405, 2}, {406, 2}, {408, 2}, {410, 2}, {413, 2}, {415, 2}, {422, 2}, {431, 2}, {501, 2},
	}
	for _, tc := range tests {
		if got := problem.GRPCCode(tc.status); got != tc.want {
			t.Errorf("GRPCCode(%d) = %d; want %d", tc.status, got, tc.want)
		}
	}
}

func TestIsGRPCKnowsGRPCFromGRPCWebAndHTTP1(t *testing.T) {
	tests := []struct {
		contentType string
		want        bool
		http1       bool
	}{
		{"application/grpc", true, false},
		{"application/grpc+proto", true, false},
		{"application/grpc+json", true, false},
		{"application/grpc;charset=utf-8", true, false},
		{"Application/GRPC", true, false},
		{"application/grpc-web", false, false},
		{"application/grpc-web+proto", false, false},
		{"application/grpc-web-text", false, false},
		{"application/grpcx", false, false},
		{"application/json", false, false},
		{"", false, false},
		// gRPC needs HTTP/2: an HTTP/1.1 client gets the contract's status.
		{"application/grpc", false, true},
	}
	for _, tc := range tests {
		r := http2Request()
		if tc.http1 {
			r.ProtoMajor, r.ProtoMinor = 1, 1
		}
		if tc.contentType != "" {
			r.Header.Set("Content-Type", tc.contentType)
		}
		if got := problem.IsGRPC(r); got != tc.want {
			t.Errorf("IsGRPC(%q, HTTP/%d) = %t; want %t", tc.contentType, r.ProtoMajor, got, tc.want)
		}
	}
}

// TestWriteNegotiatedAnswersGRPCTrailersOnly: a gRPC request's refusal is
// HTTP 200 with application/grpc, grpc-status and the percent-encoded
// detail in grpc-message, no body, the refusal's own fields kept.
func TestWriteNegotiatedAnswersGRPCTrailersOnly(t *testing.T) {
	tests := []struct {
		err        error
		preset     map[string]string
		wantStatus string
		wantFields []string
	}{
		{err: gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "No key."), wantStatus: "16", wantFields: []string{"Www-Authenticate"}},
		{err: gatehouse.Errorf(gatehouse.ETOOMANY, "Rate limit exceeded: 1 request per hour."),
			preset: map[string]string{"Ratelimit-Limit": "1", "Retry-After": "3600"}, wantStatus: "8",
			wantFields: []string{"Ratelimit-Limit", "Retry-After"}},
		{err: gatehouse.Errorf(gatehouse.EUNAVAILABLE, "Maintenance: %d%% done soon, café.", 100), wantStatus: "14", wantFields: []string{"Retry-After"}},
		// The rest of a stalled request must not be read as the next one.
		{err: gatehouse.Errorf(gatehouse.ETIMEOUT, "Too slow."), wantStatus: "2", wantFields: []string{"Connection"}},
	}
	for _, tc := range tests {
		r := http2Request()
		r.Header.Set("Content-Type", "application/grpc")
		r.Header.Set("Accept", "application/problem+xml")
		r.Header.Set("X-Request-Id", "req-1")
		w := httptest.NewRecorder()
		w.Header().Set("X-Request-Id", "req-1")
		for k, v := range tc.preset {
			w.Header().Set(k, v)
		}
		problem.WriteNegotiated(w, r, tc.err)
		h := w.Result().Header
		if w.Code != http.StatusOK || h.Get("Content-Type") != "application/grpc" || w.Body.Len() != 0 {
			t.Errorf("%v: %d %q body %q; want 200 application/grpc and no body", tc.err, w.Code, h.Get("Content-Type"), w.Body)
		}
		if got := h.Get("Grpc-Status"); got != tc.wantStatus {
			t.Errorf("%v: grpc-status %q; want %s", tc.err, got, tc.wantStatus)
		}
		msg, err := url.PathUnescape(h.Get("Grpc-Message"))
		if err != nil || msg != gatehouse.ErrorMessage(tc.err) {
			t.Errorf("%v: grpc-message %q decodes to %q (%v)", tc.err, h.Get("Grpc-Message"), msg, err)
		}
		for _, f := range append(tc.wantFields, "X-Request-Id") {
			if h.Get(f) == "" {
				t.Errorf("%v: %s lost", tc.err, f)
			}
		}
		if h.Get("Content-Length") != "" {
			t.Errorf("%v: Content-Length %q; want none", tc.err, h.Get("Content-Length"))
		}
	}
}

func TestEncodeGRPCMessagePercentEncodesAsGRPCSays(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"Plain ASCII, kept: ~!", "Plain ASCII, kept: ~!"},
		{"100%", "100%25"},
		{"line\nbreak\ttab", "line%0Abreak%09tab"},
		{"café", "caf%C3%A9"},
		{"\x7f", "%7F"},
	}
	for _, tc := range tests {
		if got := problem.EncodeGRPCMessage(tc.in); got != tc.want {
			t.Errorf("EncodeGRPCMessage(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzEncodeGRPCMessage: the encoding is printable ASCII only and decodes
// back to the input, whatever the input.
func FuzzEncodeGRPCMessage(f *testing.F) {
	for _, s := range []string{"", "ok", "100%", "café", "\x00\xff", "%%41"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := problem.EncodeGRPCMessage(s)
		for i := 0; i < len(enc); i++ {
			if c := enc[i]; c < 0x20 || c > 0x7e {
				t.Fatalf("EncodeGRPCMessage(%q) = %q has byte %#x", s, enc, c)
			}
		}
		dec, err := url.PathUnescape(enc)
		if err != nil || dec != s {
			t.Fatalf("EncodeGRPCMessage(%q) = %q decodes to %q (%v)", s, enc, dec, err)
		}
		if utf8.ValidString(s) && !strings.ContainsAny(s, "%\x7f") && isPrintable(s) && enc != s {
			t.Fatalf("EncodeGRPCMessage(%q) = %q; printable ASCII stays as is", s, enc)
		}
	})
}

func isPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// http2Request is a request as net/http's HTTP/2 server hands it over.
func http2Request() *http.Request {
	r := httptest.NewRequest("POST", "/svc/M", nil)
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0
	return r
}

// TestGRPCRefusalNamesTheTraceWhenSampled: a gRPC refusal, trailers-only
// or in trailers after the upstream's head, carries the trace id as
// trace-id metadata exactly when a problem document would carry
// trace_id: the request's span is sampled.
func TestGRPCRefusalNamesTheTraceWhenSampled(t *testing.T) {
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	tid, _ := trace.TraceIDFromHex(traceID)
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	span := func(flags trace.TraceFlags) context.Context {
		return trace.ContextWithSpanContext(context.Background(),
			trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags}))
	}
	err := gatehouse.Errorf(gatehouse.EFORBIDDEN, "Not this consumer.")
	for _, tc := range []struct {
		desc string
		ctx  context.Context
		want string
	}{
		{"sampled", span(trace.FlagsSampled), traceID},
		{"not sampled", span(0), ""},
		{"untraced", context.Background(), ""},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			r := http2Request().WithContext(tc.ctx)
			r.Header.Set("Content-Type", "application/grpc")
			w := httptest.NewRecorder()
			problem.WriteNegotiated(w, r, err)
			if got := w.Result().Header.Get("Trace-Id"); got != tc.want || w.Result().Header.Get("Grpc-Status") != "7" {
				t.Errorf("trailers-only: trace-id %q, grpc-status %q; want %q, 7", got, w.Result().Header.Get("Grpc-Status"), tc.want)
			}
			w = httptest.NewRecorder()
			problem.WriteGRPCTrailers(w, r, err)
			if got := w.Header().Get(http.TrailerPrefix + "Trace-Id"); got != tc.want {
				t.Errorf("trailers: trace-id %q; want %q", got, tc.want)
			}
		})
	}
}
