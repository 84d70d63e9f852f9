package h1

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"golang.org/x/net/http/httpguts"

	"github.com/gatehouse/gatehouse/internal/httpx"
)

// The differential fuzzers hold ParseHead and ChunkedReader to net/http:
// for every input both refuse it, or both accept it and agree on what it
// says. Ours never accepts what net/http refuses. Where ours refuses what
// net/http accepts, the case is in one of the tables below with its
// reason, and the fuzzers tolerate exactly those.
//
// "net/http" here is what a net/http server does with the bytes, not
// http.ReadRequest alone: the server adds checks of its own after it
// (netHTTPServerChecks), and those are the behaviour gatehouse's std
// engine has.
//
// One deliberate laxness, the API's: ParseHead skips empty lines before
// the request line (RFC 9112 §2.2 SHOULD; net/http skips up to four CR or
// LF bytes only after a POST). The fuzzers strip them before net/http
// reads the input; they are framing, never part of a request.

// stricterHead lists what ParseHead refuses and net/http accepts.
var stricterHead = []struct {
	name, why string
	example   string
	match     func(w wireHead, r *http.Request) bool
}{
	{
		"\"PRI * HTTP/2.0\" as a request line",
		"505, and the connection closes: net/http hands it to the handler (http1ServerSupportsRequest, so that one may take the connection over for HTTP/2) and, when it has any field, keeps the connection for the requests after it. Nothing in gatehouse takes a connection over so; the engine hands one to HTTP/2 on the whole 24-byte preface only (RFC 9113 §3.4), before it parses a head. internal/serve's TestARequestLineLikeTheHTTP2PrefaceSmugglesNothingPastEitherEngine shows both engines.",
		"PRI * HTTP/2.0\r\nHost: a\r\n\r\n",
		func(w wireHead, r *http.Request) bool {
			return r.Method == "PRI" && r.ProtoMajor == 2 && r.RequestURI == "*"
		},
	},
	{
		"obsolete line folding",
		"400, as framing.go decides: net/http joins a folded line to the field before, so \"Content-Length:\\r\\n 5\" is a length to it and to no one who reads lines as fields.",
		"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n",
		func(w wireHead, r *http.Request) bool {
			for _, l := range w.lines {
				if l != "" && (l[0] == ' ' || l[0] == '\t') {
					return true
				}
			}
			return false
		},
	},
	{
		"Transfer-Encoding on HTTP/1.0",
		"400, as framing.go decides: net/http ignores it and reads the body as the next request.",
		"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
		func(w wireHead, r *http.Request) bool { return r.ProtoMinor == 0 && w.has("Transfer-Encoding") },
	},
	{
		"Transfer-Encoding with Content-Length",
		"400, as framing.go decides (RFC 9112 §6.1 \"ought to be handled as an error\"): net/http drops the length and keeps the connection, and a peer that framed it by the length disagrees about where the next request starts.",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
		func(w wireHead, r *http.Request) bool { return w.has("Transfer-Encoding") && w.has("Content-Length") },
	},
	{
		"a Host no route could mean",
		"400, serve.go's rule (httpx.ValidHost): net/http checks only the Host's characters, so \"a..b\" or \"a:80:80\" would reach a catch-all route and travel upstream.",
		"GET / HTTP/1.1\r\nHost: a..b\r\n\r\n",
		func(w wireHead, r *http.Request) bool {
			for _, v := range w.values("Host") {
				if !httpx.ValidHost(v) {
					return true
				}
			}
			return false
		},
	},
	{
		"an absolute-form target that is not http(s) with a valid host",
		"400: net/http takes any scheme, userinfo, an empty or malformed host, or \"http:/x\"; RFC 9110 §4.2 allows none of them for an http server, and the host is what routes match.",
		"GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n",
		func(w wireHead, r *http.Request) bool {
			t := w.target
			if t == "" || t[0] == '/' || t == "*" || w.method == "CONNECT" {
				return false
			}
			var rest string
			switch {
			case len(t) >= 7 && strings.EqualFold(t[:7], "http://"):
				rest = t[7:]
			case len(t) >= 8 && strings.EqualFold(t[:8], "https://"):
				rest = t[8:]
			default:
				return true
			}
			if j := strings.IndexAny(rest, "/?"); j >= 0 {
				rest = rest[:j]
			}
			return rest == "" || !httpx.ValidHost(rest)
		},
	},
	{
		"a CONNECT target that is not host:port",
		"400: net/http takes whatever parses after \"http://\", the empty target included; CONNECT is answered 501 in any case, but only once its target is understood.",
		"CONNECT a..b:443 HTTP/1.1\r\nHost: a\r\n\r\n",
		func(w wireHead, r *http.Request) bool {
			return w.method == "CONNECT" && (w.target == "" || w.target[0] != '/' && !httpx.ValidHost(w.target))
		},
	},
	{
		"CONNECT on HTTP/1.1 without Host",
		"400: RFC 9112 §3.2 wants Host in every HTTP/1.1 request; net/http waives it for CONNECT.",
		"CONNECT a:443 HTTP/1.1\r\n\r\n",
		func(w wireHead, r *http.Request) bool {
			return w.method == "CONNECT" && r.ProtoMinor >= 1 && !w.has("Host") // a later 1.x is 1.1
		},
	},
	{
		"a fragment in the target",
		"400: a request-target has no fragment (RFC 9112 §3.2); net/http leaves '#' in the path or query, where a route or the upstream may read it differently.",
		"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n",
		func(w wireHead, r *http.Request) bool { return strings.Contains(w.target, "#") },
	},
	{
		"asterisk-form with a method other than OPTIONS",
		"400: RFC 9112 §3.2.4 keeps \"*\" for OPTIONS.",
		"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
		func(w wireHead, r *http.Request) bool { return w.target == "*" && w.method != "OPTIONS" },
	},
	{
		"more than MaxFields field lines",
		"431: a bound on what a connection's Head keeps, as Apache and HAProxy have; net/http bounds only the head's bytes.",
		"GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X: 1\r\n", MaxFields) + "\r\n",
		func(w wireHead, r *http.Request) bool { return len(w.lines) > MaxFields },
	},
	{
		"an expectation besides 100-continue",
		"417 (RFC 9110 §10.1.1): net/http reads only the first Expect field and is content with 100-continue anywhere in it, so \"Expect: foo, 100-continue\" would ask the upstream for an expectation no one checked.",
		"POST / HTTP/1.1\r\nHost: a\r\nExpect: foo, 100-continue\r\n\r\n",
		func(w wireHead, r *http.Request) bool {
			for _, v := range w.values("Expect") {
				for e := range httpx.FieldList([]string{v}) {
					if !strings.EqualFold(e, "100-continue") {
						return true
					}
				}
			}
			return false
		},
	},
}

// stricterThanNetHTTP reports whether in is a head net/http accepts that
// ParseHead refuses on purpose, one of stricterHead's cases.
func stricterThanNetHTTP(in []byte) bool { return stricterHeadCase(in) != "" }

// stricterHeadCase names the stricterHead case in is, or "".
func stricterHeadCase(in []byte) string {
	r, _, err := netHTTPReadHead(in)
	if err != nil {
		return ""
	}
	w := splitWireHead(in)
	for _, c := range stricterHead {
		if c.match(w, r) {
			return c.name
		}
	}
	return ""
}

// wireHead is a head net/http accepted, as lines on the wire: what
// net/http deletes from its Header (Transfer-Encoding, duplicates) and
// what it joins (folded lines) are still there.
type wireHead struct {
	method, target string
	lines          []string // field lines without their line ends
}

func splitWireHead(in []byte) wireHead {
	in = skipEmptyLines(in)
	var w wireHead
	first := true
	for len(in) > 0 {
		line, rest, _ := bytes.Cut(in, []byte("\n"))
		in = rest
		l := strings.TrimSuffix(string(line), "\r")
		if first {
			first = false
			w.method, l, _ = strings.Cut(l, " ")
			w.target, _, _ = strings.Cut(l, " ")
			continue
		}
		if l == "" {
			break
		}
		w.lines = append(w.lines, l)
	}
	return w
}

// values lists the values of the (unfolded) field lines named name.
func (w wireHead) values(name string) []string {
	var vs []string
	for _, l := range w.lines {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, name) {
			vs = append(vs, strings.Trim(v, " \t"))
		}
	}
	return vs
}

func (w wireHead) has(name string) bool { return len(w.values(name)) > 0 }

// skipEmptyLines drops the empty lines before a request line, as ParseHead
// does.
func skipEmptyLines(in []byte) []byte {
	for {
		switch {
		case bytes.HasPrefix(in, []byte("\n")):
			in = in[1:]
		case bytes.HasPrefix(in, []byte("\r\n")):
			in = in[2:]
		default:
			return in
		}
	}
}

// netHTTPReadHead reads the head in as a net/http server does, and returns
// how many bytes of in it took (empty lines before it included).
func netHTTPReadHead(in []byte) (*http.Request, int, error) {
	body := skipEmptyLines(in)
	src := bytes.NewReader(body)
	br := bufio.NewReader(src)
	r, err := http.ReadRequest(br)
	if err != nil {
		return nil, 0, err
	}
	n := len(in) - src.Len() - br.Buffered()
	// http.ReadRequest deletes Host from the Header the server checks:
	// read the fields again as it read them.
	_, fields, _ := bytes.Cut(body, []byte("\n"))
	header, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(fields))).ReadMIMEHeader()
	if err != nil {
		return nil, 0, fmt.Errorf("reading the fields again: %w", err)
	}
	if err := netHTTPServerChecks(r, http.Header(header)); err != nil {
		return nil, 0, err
	}
	return r, n, nil
}

// netHTTPServerChecks are the refusals net/http's server adds to
// http.ReadRequest's (server.go, conn.readRequest and conn.serve, Go 1.26).
// header is r's fields before ReadRequest deleted Host.
func netHTTPServerChecks(r *http.Request, header http.Header) error {
	// http1ServerSupportsRequest: HTTP/1.x, and "PRI * HTTP/2.0" with any
	// fields.
	if r.ProtoMajor != 1 && (r.ProtoMajor != 2 || r.ProtoMinor != 0 || r.Method != "PRI" || r.RequestURI != "*") {
		return errors.New("505 unsupported protocol version")
	}
	// isH2Upgrade, on the server's Header, which still has Host.
	isH2Upgrade := r.Method == "PRI" && len(header) == 0 && r.URL.Path == "*" && r.Proto == "HTTP/2.0"
	hosts, haveHost := header["Host"]
	if r.ProtoAtLeast(1, 1) && (!haveHost || len(hosts) == 0) && !isH2Upgrade && r.Method != "CONNECT" {
		return errors.New("400 missing required Host header")
	}
	if len(hosts) == 1 && !httpguts.ValidHostHeader(hosts[0]) {
		return errors.New("400 malformed Host header")
	}
	for k, vv := range r.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return errors.New("400 invalid header name")
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return errors.New("400 invalid header value")
			}
		}
	}
	if e := r.Header.Get("Expect"); e != "" && !netHTTPHasToken(e, "100-continue") {
		return errors.New("417 expectation failed")
	}
	return nil
}

// netHTTPHasToken is net/http's hasToken (server.go): token anywhere in v
// between ' ', ',' or '\t' boundaries, case-insensitively.
func netHTTPHasToken(v, token string) bool {
	boundary := func(b byte) bool { return b == ' ' || b == ',' || b == '\t' }
	for sp := 0; sp+len(token) <= len(v); sp++ {
		if sp > 0 && !boundary(v[sp-1]) {
			continue
		}
		if end := sp + len(token); end != len(v) && !boundary(v[end]) {
			continue
		}
		if strings.EqualFold(v[sp:sp+len(token)], token) {
			return true
		}
	}
	return false
}

// headSeeds are the known desync tricks and the edges of the grammar.
var headSeeds = []string{
	"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /a?b=c HTTP/1.1\r\nHost: api.example.com\r\nAccept: */*\r\nUser-Agent: x\r\n\r\n",
	// CL.TE and TE.CL
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n",
	// TE.TE obfuscations
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked \r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity, chunked\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding\r\n : chunked\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nX: y\r\nTransfer-Encoding:\r\n chunked\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunk\x00ed\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\n\r\n",
	// Content-Length tricks
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 05\r\nContent-Length: 5\r\n\r\nhello",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775807\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775808\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n 5\r\n\r\nhello",
	// line endings, folding, bytes in values
	"GET / HTTP/1.1\nHost: a\n\n",
	"GET / HTTP/1.1\r\nHost: a\n\r\n",
	"GET / HTTP/1.1\rHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n",
	"GET / HTTP/1.1\r\n Host: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX:\x7f\r\n\r\n",
	"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"\rGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	// targets
	"GET http://b.example/x HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET HTTPS://b.example:8443 HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET http://u:p@b.example/x HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET ftp://b.example/x HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET http:/x HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET //b.example/x HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /a%zz HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /a?%zz HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /a#f HTTP/1.1\r\nHost: a\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
	"CONNECT b.example:443 HTTP/1.1\r\nHost: b.example:443\r\n\r\n",
	"CONNECT b.example:443 HTTP/1.1\r\n\r\n",
	// Host
	"GET / HTTP/1.1\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost:\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a:80:80\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
	// versions and connection management
	"GET / HTTP/1.0\r\n\r\n",
	"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
	"GET /\r\n\r\n",
	"GET / HTTP/0.9\r\n\r\n",
	"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	"PRI * HTTP/2.0\r\nHost: a\r\nX: 1\r\n\r\n",
	"PRI * HTTP/2.0\r\nX: 1\r\n\r\n",
	"PRI /x HTTP/2.0\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.2\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.10\r\nHost: a\r\n\r\n",
	"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
	"get / HTTP/1.1\r\nHost: a\r\n\r\n",
	// Expect
	"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
	"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue, foo\r\n\r\n",
	"PUT / HTTP/1.1\r\nHost: a\r\nExpect: foo\r\n\r\n",
	"PUT / HTTP/1.1\r\nHost: a\r\nExpect:\r\n\r\n",
	// Trailer: announced names, and the framing fields net/http refuses
	// there on a chunked body only
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum, X-Other\r\nTrailer: ,\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: ,\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum, content-length\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: Transfer-Encoding\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: trailer\r\nExpect: foo\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nTrailer: Content-Length\r\n\r\n",
	// Pragma, which net/http adds a Cache-Control for
	"GET / HTTP/1.1\r\nHost: a\r\nPragma: no-cache\r\n\r\n",
	// long lines
	"GET /" + strings.Repeat("a", 5000) + " HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("b", 5000) + "\r\n\r\n",
}

func FuzzParseHeadAgainstNetHTTP(f *testing.F) {
	for _, s := range headSeeds {
		f.Add([]byte(s))
	}
	for _, c := range stricterHead {
		f.Add([]byte(c.example))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var h Head
		n, err := ParseHead(in, &h, len(in)+1)
		prefixesAgree(t, in, n, err)
		r, wantN, werr := netHTTPReadHead(in)
		switch {
		case err != nil && werr != nil:
			return
		case err == nil && werr != nil:
			t.Fatalf("ParseHead accepts what net/http refuses (%v):\n%q", werr, in)
		case err != nil:
			if !stricterThanNetHTTP(in) {
				t.Fatalf("ParseHead refuses (%v) what net/http accepts, and no listed case explains it:\n%q", err, in)
			}
			return
		}
		if diff := compareHead(&h, n, r, wantN); diff != "" {
			t.Fatalf("ParseHead and net/http disagree about\n%q:\n%s", in, diff)
		}
	})
}

// prefixesAgree: the engine calls ParseHead again as bytes arrive, so
// every prefix of in must be incomplete, or have the verdict in has (a
// head that ended, an error at a byte the prefix holds).
func prefixesAgree(t *testing.T, in []byte, n int, err error) {
	step := max(1, len(in)/256)
	var h Head
	for k := 0; k < len(in); k += step {
		pn, perr := ParseHead(in[:k], &h, len(in)+1)
		if perr == ErrIncomplete {
			continue
		}
		if pn != n || fmt.Sprint(perr) != fmt.Sprint(err) {
			t.Fatalf("ParseHead of the first %d bytes = %d, %v; of all = %d, %v:\n%q", k, pn, perr, n, err, in)
		}
	}
}

// compareHead says where h, n differ from net/http's reading r, wantN.
func compareHead(h *Head, n int, r *http.Request, wantN int) string {
	var diff strings.Builder
	check := func(what string, got, want any) {
		if fmt.Sprint(got) != fmt.Sprint(want) {
			fmt.Fprintf(&diff, "%s: ours %q, net/http's %q\n", what, got, want)
		}
	}
	check("head length", n, wantN)
	check("method", h.Method, r.Method)
	check("target", string(h.Target), r.RequestURI)
	check("version", fmt.Sprintf("HTTP/1.%d", h.Minor), fmt.Sprintf("HTTP/1.%d", min(r.ProtoMinor, 1))) // a later 1.x is 1.1 to both
	check("host", string(h.Host), r.Host)
	check("chunked", h.Chunked, slices.Equal(r.TransferEncoding, []string{"chunked"}))
	if !h.Chunked {
		check("content length", h.ContentLength, r.ContentLength)
	}
	check("close", h.Close, r.Close)
	check("upgrade", h.Upgrade, r.ProtoMinor == 1 && httpguts.HeaderValuesContainsToken(r.Header["Connection"], "upgrade"))

	// The fields, as net/http leaves them in its Header: canonical names,
	// framing fields and Host removed, duplicate lengths merged, and a
	// Cache-Control for Pragma: no-cache.
	ours := http.Header{}
	for _, f := range h.Fields {
		k := textproto.CanonicalMIMEHeaderKey(string(f.Name))
		ours[k] = append(ours[k], string(f.Value))
	}
	delete(ours, "Host")
	delete(ours, "Transfer-Encoding")
	if cl := ours["Content-Length"]; len(cl) > 1 {
		ours["Content-Length"] = cl[:1]
	}
	if h.Chunked {
		delete(ours, "Content-Length")
		delete(ours, "Trailer") // the engine's declaredTrailer
	}
	if hp := ours["Pragma"]; len(hp) > 0 && hp[0] == "no-cache" && ours["Cache-Control"] == nil {
		ours["Cache-Control"] = []string{"no-cache"}
	}
	theirs := r.Header.Clone()
	delete(theirs, "Host")
	if !maps.EqualFunc(ours, theirs, slices.Equal) {
		fmt.Fprintf(&diff, "fields: ours %q, net/http's %q\n", ours, theirs)
	}
	// The trailer names announced, as the engine declares them.
	if t := declaredTrailer(h); !maps.EqualFunc(t, r.Trailer, slices.Equal) || (t == nil) != (r.Trailer == nil) {
		fmt.Fprintf(&diff, "declared trailer: ours %q, net/http's %q\n", t, r.Trailer)
	}
	return diff.String()
}

// TestStricterHeadCasesAreRecognised: each listed case's example is one
// net/http accepts, ParseHead refuses, and stricterThanNetHTTP names; and
// no seed ParseHead accepts is taken for one.
func TestStricterHeadCasesAreRecognised(t *testing.T) {
	for _, c := range stricterHead {
		t.Run(c.name, func(t *testing.T) {
			in := []byte(c.example)
			if _, _, err := netHTTPReadHead(in); err != nil {
				t.Fatalf("net/http refuses the example (%v): not a stricter case", err)
			}
			var h Head
			if _, err := ParseHead(in, &h, len(in)+1); err == nil {
				t.Fatal("ParseHead accepts the example")
			}
			if got := stricterHeadCase(in); got != c.name {
				t.Fatalf("stricterHeadCase = %q; want %q", got, c.name)
			}
		})
	}
	for _, s := range headSeeds {
		var h Head
		if _, err := ParseHead([]byte(s), &h, len(s)+1); err == nil && stricterThanNetHTTP([]byte(s)) {
			t.Errorf("accepted seed %q is taken for a stricter case", s)
		}
	}
}

// stricterChunked lists what ChunkedReader refuses and net/http accepts.
var stricterChunked = []struct {
	name, why string
	example   string
	match     func(body []byte) bool
}{
	{
		"whitespace after a chunk size or extension",
		"400: RFC 9112 §7.1's grammar has none at a chunk line's end; net/http trims it.",
		"5 \r\nhello\r\n0\r\n\r\n",
		func(body []byte) bool {
			return anyChunkLine(body, func(l string) bool {
				return strings.HasSuffix(l, " ") || strings.HasSuffix(l, "\t")
			})
		},
	},
	{
		"a chunk extension outside RFC 9112's grammar",
		"400: net/http drops whatever follows ';' unread; an extension that is not name[=token|quoted-string] is one another reader may take for something else.",
		"5;a=\r\nhello\r\n0\r\n\r\n",
		func(body []byte) bool {
			return anyChunkLine(body, func(l string) bool {
				_, ext, ok := strings.Cut(l, ";")
				return ok && !validChunkExt([]byte(";"+ext))
			})
		},
	},
	{
		"a trailer section net/http's header reader tolerates",
		"400: trailer lines are checked as head lines are, and end in CRLF like every line of a chunked body; net/http's textproto accepts a bare LF, a folded line and a space before the colon there.",
		"0\r\nX: 1\r\n 2\r\n\r\n",
		func(body []byte) bool {
			tr, ok := trailerSection(body)
			if !ok {
				return false
			}
			for len(tr) > 0 {
				line, rest, ok := strings.Cut(tr, "\n")
				tr = rest
				if !ok || !strings.HasSuffix(line, "\r") {
					return true // bare LF, or no line end
				}
				line = strings.TrimSuffix(line, "\r")
				if line == "" {
					return false
				}
				if _, next, err := parseField([]byte(line+"\r\n"), 0); err != nil || next != len(line)+2 {
					return true
				}
			}
			return false
		},
	},
}

// anyChunkLine reports whether f holds for a chunk-size line of body, read
// as net/http reads them (up to the last chunk).
func anyChunkLine(body []byte, f func(string) bool) bool {
	s := string(body)
	for {
		line, rest, ok := strings.Cut(s, "\r\n")
		if !ok {
			return false
		}
		if f(line) {
			return true
		}
		size, _, _ := strings.Cut(strings.TrimRight(line, " \t"), ";")
		var n int
		if _, err := fmt.Sscanf(size, "%x", &n); err != nil || n <= 0 || n+2 > len(rest) {
			return false
		}
		s = rest[n+2:]
	}
}

// trailerSection returns what follows the last chunk's line.
func trailerSection(body []byte) (string, bool) {
	s := string(body)
	for {
		line, rest, ok := strings.Cut(s, "\r\n")
		if !ok {
			return "", false
		}
		size, _, _ := strings.Cut(strings.TrimRight(line, " \t"), ";")
		var n int
		if _, err := fmt.Sscanf(size, "%x", &n); err != nil || n < 0 {
			return "", false
		}
		if n == 0 {
			return rest, true
		}
		if n+2 > len(rest) {
			return "", false
		}
		s = rest[n+2:]
	}
}

func stricterChunkedCase(body []byte) string {
	if _, _, _, err := netHTTPReadChunked(body); err != nil {
		return ""
	}
	for _, c := range stricterChunked {
		if c.match(body) {
			return c.name
		}
	}
	return ""
}

// netHTTPReadChunked decodes body as net/http's server does: its chunked
// reader, then its trailer reader (transfer.go, body.readTrailer), over a
// 4 KiB buffer as the server's. It returns the data, how many bytes of
// body it took, and the trailer's fields (nil when there are none).
func netHTTPReadChunked(body []byte) ([]byte, int, http.Header, error) {
	src := bytes.NewReader(body)
	br := bufio.NewReaderSize(src, 4096)
	data, err := io.ReadAll(httputil.NewChunkedReader(br))
	if err != nil {
		return nil, 0, nil, err
	}
	var trailer http.Header
	if buf, _ := br.Peek(2); string(buf) == "\r\n" {
		br.Discard(2)
	} else {
		if len(buf) < 2 {
			return nil, 0, nil, io.ErrUnexpectedEOF
		}
		seen := false
		for size := 4; ; size++ {
			buf, err := br.Peek(size)
			if bytes.HasSuffix(buf, []byte("\r\n\r\n")) {
				seen = true
				break
			}
			if err != nil {
				break
			}
		}
		if !seen {
			return nil, 0, nil, errors.New("suspiciously long trailer")
		}
		h, err := textproto.NewReader(br).ReadMIMEHeader()
		if err != nil {
			return nil, 0, nil, err
		}
		trailer = http.Header(h)
	}
	return data, len(body) - src.Len() - br.Buffered(), trailer, nil
}

var chunkedSeeds = []string{
	"5\r\nhello\r\n0\r\n\r\n",
	"5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n",
	"5;a=b;c=\"d\"\r\nhello\r\n0\r\nX: 1\r\n\r\n",
	"5 \r\nhello\r\n0\r\n\r\n",
	"5 ;a\r\nhello\r\n0\r\n\r\n",
	"5;a \r\nhello\r\n0\r\n\r\n",
	"+5\r\nhello\r\n0\r\n\r\n",
	"0x5\r\nhello\r\n0\r\n\r\n",
	"5\nhello\r\n0\r\n\r\n",
	"5\r\nhello\n0\r\n\r\n",
	"5\r\nhelloXY0\r\n\r\n",
	"5\r\r\nhello\r\n0\r\n\r\n",
	"ffffffffffffffff\r\nhello\r\n0\r\n\r\n",
	"00000000000000005\r\nhello\r\n0\r\n\r\n",
	"0\r\nX: 1\n\r\n",
	"0\r\nX: 1\r\n 2\r\n\r\n",
	"0\r\nX : 1\r\n\r\n",
	"0\r\n\n",
	// trailers: repeated names in any case, empty values, names net/http
	// reads but would refuse announced
	"3\r\nabc\r\n0\r\nx-sum: 1\r\nX-SUM: 2\r\nX-Other:\r\nContent-Length: 9\r\nHost: b\r\n\r\n",
	"0\r\nX:\t a b \t\r\nY: caf\xc3\xa9\r\n\r\nGET / HTTP/1.1\r\n",
	"0\r\nX: 1\r\n",
	"0\r\nX: a\x00b\r\n\r\n",
	strings.Repeat("1;"+strings.Repeat("e", 1000)+"\r\nx\r\n", 20) + "0\r\n\r\n",
	"5;" + strings.Repeat("a", 4092) + "\r\nhello\r\n0\r\n\r\n",
}

func FuzzChunkedReaderAgainstNetHTTP(f *testing.F) {
	for _, s := range chunkedSeeds {
		f.Add([]byte(s))
	}
	for _, c := range stricterChunked {
		f.Add([]byte(c.example))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		src := bytes.NewReader(body)
		br := bufio.NewReaderSize(src, 4096)
		var c ChunkedReader
		c.Reset(br)
		got, err := io.ReadAll(&c)
		n := len(body) - src.Len() - br.Buffered()
		// The trailer as the engine hands it on (mergeTrailer).
		var trailer http.Header
		if fs := c.Trailer(); len(fs) > 0 {
			trailer = trailerHeader(fs)
		}
		// The same body a byte at a time from the connection, read three
		// bytes at a time: the verdict must not depend on how it arrives.
		slow := bytes.NewReader(body)
		c.Reset(bufio.NewReaderSize(iotest.OneByteReader(slow), 4096))
		var got3 []byte
		var err3 error
		for buf := make([]byte, 3); err3 == nil; {
			var k int
			k, err3 = c.Read(buf)
			got3 = append(got3, buf[:k]...)
		}
		if err3 == io.EOF {
			err3 = nil
		}
		if !bytes.Equal(got3, got) || fmt.Sprint(err3) != fmt.Sprint(err) {
			t.Fatalf("read whole: %q, %v; read in pieces: %q, %v; from\n%q", got, err, got3, err3, body)
		}
		if fs := c.Trailer(); err == nil && (len(fs) > 0) != (trailer != nil) ||
			len(fs) > 0 && !maps.EqualFunc(trailerHeader(fs), trailer, slices.Equal) {
			t.Fatalf("read whole, the trailer is %q; read in pieces, %q; from\n%q", trailer, fs, body)
		}
		want, wantN, wantTrailer, werr := netHTTPReadChunked(body)
		switch {
		case err != nil && werr != nil:
			return
		case err == nil && werr != nil:
			t.Fatalf("ChunkedReader accepts what net/http refuses (%v):\n%q", werr, body)
		case err != nil:
			if stricterChunkedCase(body) == "" {
				t.Fatalf("ChunkedReader refuses (%v) what net/http accepts, and no listed case explains it:\n%q", err, body)
			}
			return
		}
		if !bytes.Equal(got, want) || n != wantN {
			t.Fatalf("ChunkedReader decodes %q (%d bytes taken), net/http %q (%d), from\n%q", got, n, want, wantN, body)
		}
		if !maps.EqualFunc(trailer, wantTrailer, slices.Equal) || (trailer == nil) != (wantTrailer == nil) {
			t.Fatalf("ChunkedReader's trailer is %q, net/http's %q, from\n%q", trailer, wantTrailer, body)
		}
	})
}

func TestStricterChunkedCasesAreRecognised(t *testing.T) {
	for _, c := range stricterChunked {
		t.Run(c.name, func(t *testing.T) {
			body := []byte(c.example)
			if _, _, _, err := netHTTPReadChunked(body); err != nil {
				t.Fatalf("net/http refuses the example (%v): not a stricter case", err)
			}
			var r ChunkedReader
			r.Reset(bufio.NewReader(bytes.NewReader(body)))
			if _, err := io.ReadAll(&r); err == nil {
				t.Fatal("ChunkedReader accepts the example")
			}
			if got := stricterChunkedCase(body); got != c.name {
				t.Fatalf("stricterChunkedCase = %q; want %q", got, c.name)
			}
		})
	}
}
