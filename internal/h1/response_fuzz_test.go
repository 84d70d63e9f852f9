package h1

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/httpx"
)

// FuzzParseResponseHeadAgainstNetHTTP holds ParseResponseHead to
// http.ReadResponse as FuzzParseHeadAgainstNetHTTP holds ParseHead to
// http.ReadRequest: both refuse a head, or both accept it and agree on
// what it says. Ours never accepts what net/http refuses (the proxy
// answers those 502); where it refuses what net/http accepts, the case is
// in stricterResponse with its reason.

// stricterResponse lists what ParseResponseHead refuses and net/http
// accepts. Each is a 502 where net/http relayed the response.
var stricterResponse = []struct {
	name, why string
	example   string
	match     func(w wireResponse, r *http.Response) bool
}{
	{
		"an HTTP version other than 1.x",
		"net/http takes any HTTP/d.d (HTTP/2.0, HTTP/0.9) on the connection it sent an HTTP/1.1 request on; such an answer speaks another protocol or none (RFC 9110 §6.2).",
		"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
		func(w wireResponse, r *http.Response) bool { return r.ProtoMajor != 1 },
	},
	{
		"a signed status code",
		"net/http's strconv.Atoi takes \"+20\" as 20 and \"-00\" as 0; the proxy refused every such code anyway, as outside 100-599 (invalidStatusError).",
		"HTTP/1.1 +20 OK\r\n\r\n",
		func(w wireResponse, r *http.Response) bool { return r.Status[0] == '+' || r.Status[0] == '-' },
	},
	{
		"obsolete line folding",
		"RFC 9112 §5.2 lets a proxy answer 502 for a response with obs-fold instead of joining the lines; net/http joins them, so \"Content-Length:\\r\\n 5\" is a length to it and to no one who reads lines as fields.",
		"HTTP/1.1 200 OK\r\nX: 1\r\n 2\r\nContent-Length: 0\r\n\r\n",
		func(w wireResponse, r *http.Response) bool {
			return slices.ContainsFunc(w.lines, func(l string) bool { return l != "" && (l[0] == ' ' || l[0] == '\t') })
		},
	},
	{
		"a space in a field name",
		"net/http's textproto keeps \"Transfer-Encoding : chunked\" as a field named \"Transfer-Encoding \" (golang.org/issue/34540) and relays it; RFC 9112 §5.1 forbids the space, and a reader that trims it frames the body by it.",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding : chunked\r\nContent-Length: 0\r\n\r\n",
		func(w wireResponse, r *http.Response) bool {
			return slices.ContainsFunc(w.lines, func(l string) bool {
				k, _, _ := strings.Cut(l, ":")
				return strings.ContainsAny(k, " ")
			})
		},
	},
	{
		"Transfer-Encoding on HTTP/1.0",
		"net/http ignores it and frames the body by Content-Length or the close; RFC 9112 §6.1 says such a message's framing is faulty.",
		"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
		func(w wireResponse, r *http.Response) bool { return r.ProtoMinor == 0 && w.has("Transfer-Encoding") },
	},
	{
		"more than MaxResponseFields field lines",
		"a bound on a hostile head's work, far above any real response's; net/http bounds only the head's bytes.",
		"HTTP/1.1 204 No Content\r\n" + strings.Repeat("X: 1\r\n", MaxResponseFields+1) + "\r\n",
		func(w wireResponse, r *http.Response) bool { return len(w.lines) > MaxResponseFields },
	},
}

// wireResponse is a response head net/http accepted, as lines on the wire.
type wireResponse struct{ lines []string }

func splitWireResponse(in []byte) wireResponse {
	var w wireResponse
	_, in, _ = bytes.Cut(in, []byte("\n"))
	for len(in) > 0 {
		line, rest, _ := bytes.Cut(in, []byte("\n"))
		in = rest
		l := strings.TrimSuffix(string(line), "\r")
		if l == "" {
			break
		}
		w.lines = append(w.lines, l)
	}
	return w
}

func (w wireResponse) values(name string) []string {
	var vs []string
	for _, l := range w.lines {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, name) {
			vs = append(vs, strings.Trim(v, " \t"))
		}
	}
	return vs
}

func (w wireResponse) has(name string) bool { return len(w.values(name)) > 0 }

// stricterResponseCase names the stricterResponse case in is, or "".
func stricterResponseCase(in []byte, head bool) string {
	r, _, err := netHTTPReadResponse(in, head)
	if err != nil {
		return ""
	}
	w := splitWireResponse(in)
	for _, c := range stricterResponse {
		if c.match(w, r) {
			return c.name
		}
	}
	return ""
}

// netHTTPReadResponse reads the response head in as net/http's client
// does, and returns how many bytes of in it took.
func netHTTPReadResponse(in []byte, head bool) (*http.Response, int, error) {
	method := "GET"
	if head {
		method = "HEAD"
	}
	src := bytes.NewReader(in)
	br := bufio.NewReader(src)
	r, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		return nil, 0, err
	}
	return r, len(in) - src.Len() - br.Buffered(), nil
}

// responseSeeds are the known response desync and splitting tricks, and
// the edges of the grammar.
var responseSeeds = []string{
	"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nDate: x\r\nServer: y\r\nContent-Type: a/b\r\nCache-Control: no-store\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 200\r\n\r\n",
	"HTTP/1.1 200 \r\n\r\n",
	"HTTP/1.1   200   spaced  reason\r\n\r\n",
	"HTTP/1.1 200OK\r\n\r\n",
	"HTTP/1.1 20 OK\r\n\r\n",
	"HTTP/1.1 2000 OK\r\n\r\n",
	"HTTP/1.1 -20 OK\r\n\r\n",
	"HTTP/1.1 999 Whatever\r\n\r\n",
	"HTTP/1.1 000 Zero\r\n\r\n",
	"HTTP/1.1 200 O\x00K\r\n\r\n",
	"HTTP/1.1 200 O\rK\r\n\r\n",
	"HTTP/1.1 200\r\r\n\r\n",
	"HTTP/1.1\t200 OK\r\n\r\n",
	"http/1.1 200 OK\r\n\r\n",
	"HTTP/1.0 200 OK\r\n\r\n",
	"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/0.9 200 OK\r\n\r\n",
	"HTTP/2 200 OK\r\n\r\n",
	"\r\nHTTP/1.1 200 OK\r\n\r\n",
	"HTTP/1.1 200 " + strings.Repeat("r", 5000) + "\r\n\r\n",
	// CL.TE, TE.CL and duplicates
	"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775808\r\n\r\n",
	"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nContent-Length: abc\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	// obfuscated Transfer-Encoding
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: CHUNKED\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding : chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunk\x00ed\r\n\r\n",
	"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n",
	// line ends, folding, bytes in values
	"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n",
	"HTTP/1.1 200 OK\rContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\n X: 1\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX: caf\xc3\xa9\r\n\r\n",
	"HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-Y z: 1\r\n\r\n",
	// connection management, hop-by-hop names, trailers, Pragma
	"HTTP/1.1 200 OK\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n",
	"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
	"HTTP/1.1 100 Continue\r\n\r\n",
	"HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum, X-Other\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Content-Length\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nTrailer: Content-Length\r\n\r\n",
	"HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nset-cookie: a=1\r\nSet-Cookie: b=2\r\ncontent-type: x\r\nCONTENT-TYPE: y\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX: " + strings.Repeat("b", 5000) + "\r\n\r\n",
}

func FuzzParseResponseHeadAgainstNetHTTP(f *testing.F) {
	for _, s := range responseSeeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	for _, c := range stricterResponse {
		f.Add([]byte(c.example), false)
	}
	f.Fuzz(func(t *testing.T, in []byte, head bool) {
		var h ResponseHead
		n, err := ParseResponseHead(in, &h, head)
		responsePrefixesAgree(t, in, head, n, err)
		if errors.As(err, new(*gatehouse.Error)) {
			t.Fatalf("ParseResponseHead's refusal %v is a *gatehouse.Error, whose kind is a client's fault", err)
		}
		r, wantN, werr := netHTTPReadResponse(in, head)
		switch {
		case err != nil && werr != nil:
			return
		case err == nil && werr != nil:
			t.Fatalf("ParseResponseHead accepts what net/http refuses (%v):\n%q", werr, in)
		case err == ErrIncomplete:
			t.Fatalf("ParseResponseHead wants more of what net/http accepts:\n%q", in)
		case err != nil:
			if stricterResponseCase(in, head) == "" {
				t.Fatalf("ParseResponseHead refuses (%v) what net/http accepts, and no listed case explains it:\n%q", err, in)
			}
			return
		}
		if diff := compareResponse(&h, in, n, r, wantN); diff != "" {
			t.Fatalf("ParseResponseHead and net/http disagree about\n%q (head %v):\n%s", in, head, diff)
		}
	})
}

// responsePrefixesAgree: the client parses again as bytes arrive, so
// every prefix of in must be incomplete, or have the verdict in has.
func responsePrefixesAgree(t *testing.T, in []byte, head bool, n int, err error) {
	step := max(1, len(in)/256)
	var h ResponseHead
	for k := 0; k < len(in); k += step {
		pn, perr := ParseResponseHead(in[:k], &h, head)
		if perr == ErrIncomplete {
			continue
		}
		if pn != n || fmt.Sprint(perr) != fmt.Sprint(err) {
			t.Fatalf("ParseResponseHead of the first %d bytes = %d, %v; of all = %d, %v:\n%q", k, pn, perr, n, err, in)
		}
	}
}

// compareResponse says where h, n differ from net/http's reading r, wantN.
func compareResponse(h *ResponseHead, in []byte, n int, r *http.Response, wantN int) string {
	var diff strings.Builder
	check := func(what string, got, want any) {
		if fmt.Sprint(got) != fmt.Sprint(want) {
			fmt.Fprintf(&diff, "%s: ours %q, net/http's %q\n", what, got, want)
		}
	}
	check("head length", n, wantN)
	check("status", h.Status, r.StatusCode)
	check("status text", string(h.Text), r.Status)
	check("version", fmt.Sprintf("HTTP/1.%d", h.Minor), fmt.Sprintf("HTTP/%d.%d", r.ProtoMajor, r.ProtoMinor))
	check("no body", h.NoBody, r.Body == http.NoBody)
	check("chunked", h.Chunked, slices.Equal(r.TransferEncoding, []string{"chunked"}))
	check("content length", h.ContentLength, r.ContentLength)
	w := splitWireResponse(in)
	// Ours closes after a response that has both Transfer-Encoding and
	// Content-Length; net/http keeps the connection.
	check("close", h.Close, r.Close || h.Chunked && w.has("Content-Length"))

	// The fields: ours drops those a Connection that says close names
	// (net/http drops only the Connection field), and net/http adds a
	// Cache-Control for Pragma: no-cache (ours does not: RFC 9111 §5.4
	// defines Pragma for requests alone).
	ours := h.Header(in, string(in), nil)
	theirs := r.Header.Clone()
	if conn := w.values("Connection"); r.ProtoMinor >= 1 && httpguts.HeaderValuesContainsToken(conn, "close") {
		for name := range httpx.FieldList(conn) {
			theirs.Del(name)
		}
	}
	if hp := theirs["Pragma"]; len(hp) > 0 && hp[0] == "no-cache" && ours["Cache-Control"] == nil {
		delete(theirs, "Cache-Control")
	}
	if !maps.EqualFunc(ours, theirs, slices.Equal) {
		fmt.Fprintf(&diff, "fields: ours %q, net/http's %q\n", ours, theirs)
	}
	if t := h.Trailer(); !maps.EqualFunc(t, r.Trailer, slices.Equal) || (t == nil) != (r.Trailer == nil) {
		fmt.Fprintf(&diff, "trailer: ours %q, net/http's %q\n", t, r.Trailer)
	}
	return diff.String()
}

// TestStricterResponseCasesAreRecognised: each listed case's example is
// one net/http accepts, ParseResponseHead refuses, and
// stricterResponseCase names; and no seed ParseResponseHead accepts is
// taken for one.
func TestStricterResponseCasesAreRecognised(t *testing.T) {
	for _, c := range stricterResponse {
		t.Run(c.name, func(t *testing.T) {
			in := []byte(c.example)
			if _, _, err := netHTTPReadResponse(in, false); err != nil {
				t.Fatalf("net/http refuses the example (%v): not a stricter case", err)
			}
			var h ResponseHead
			if _, err := ParseResponseHead(in, &h, false); err == nil || err == ErrIncomplete {
				t.Fatalf("ParseResponseHead = %v; want a refusal", err)
			}
			if got := stricterResponseCase(in, false); got != c.name {
				t.Fatalf("stricterResponseCase = %q; want %q", got, c.name)
			}
		})
	}
	for _, s := range responseSeeds {
		var h ResponseHead
		if _, err := ParseResponseHead([]byte(s), &h, false); err == nil && stricterResponseCase([]byte(s), false) != "" {
			t.Errorf("accepted seed %q is taken for a stricter case", s)
		}
	}
}
