package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/serve"
	"github.com/gatehouse/gatehouse/internal/testupstream"
	"github.com/gatehouse/gatehouse/internal/wiretest"
)

// The request-smuggling suite: requests a client frames ambiguously or
// malformed, sent over a raw socket to the gateway in front of an upstream
// that keeps the bytes it receives. Each is either refused with the
// contract's status (a problem, and the connection closed, since where the
// next request starts is no longer known), or normalised; and in every
// case the upstream receives exactly the requests intended, each framed
// so that no reader could take it for another (rawUpstream). It runs on
// the engine testenv.Engine names (newGateway), so on both.

// rawUpstream answers every request 200 "ok", and reads what the gateway
// sends it as a strict server would: CRLF line ends only, no folded or
// control-character field, one Host, at most one of Content-Length (one
// field, digits) and Transfer-Encoding (one field: chunked), chunk sizes in
// hex without extensions. A request it cannot read so is recorded as a
// framing error: the gateway passed on something ambiguous.
type rawUpstream struct {
	url string
	mu  sync.Mutex
	// reqs are the complete requests received, as "METHOD target body".
	reqs []string
	// errs are the framing errors found.
	errs []error
}

func startRawUpstream(t *testing.T) *rawUpstream {
	t.Helper()
	u := &rawUpstream{}
	u.url = "http://" + testupstream.Raw(t, func(c net.Conn) {
		var raw bytes.Buffer
		br := bufio.NewReader(io.TeeReader(c, &raw))
		for {
			req, err := readStrictRequest(br)
			if err != nil {
				// A request broken off by the gateway (a client body
				// that failed) is no framing error: it was never
				// complete, so no server would act on it.
				if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.Is(err, net.ErrClosed) {
					u.mu.Lock()
					u.errs = append(u.errs, fmt.Errorf("%v; the connection carried %q", err, raw.Bytes()))
					u.mu.Unlock()
				}
				return
			}
			u.mu.Lock()
			u.reqs = append(u.reqs, req)
			u.mu.Unlock()
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
				return
			}
		}
	})
	return u
}

func (u *rawUpstream) received() ([]string, []error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.reqs), slices.Clone(u.errs)
}

// readStrictRequest reads one request as described at rawUpstream. It
// returns io.EOF at a clean end between requests, io.ErrUnexpectedEOF
// inside one.
func readStrictRequest(br *bufio.Reader) (string, error) {
	line, err := strictLine(br)
	if err != nil {
		return "", err
	}
	parts := strings.Split(line, " ")
	if len(parts) != 3 || parts[2] != "HTTP/1.1" || !strings.HasPrefix(parts[1], "/") {
		return "", fmt.Errorf("request line %q is not origin-form HTTP/1.1", line)
	}
	var hosts, cls, tes int
	var cl, te string
	for {
		line, err := strictLine(br)
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return "", err
		}
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return "", fmt.Errorf("header line %q is no field", line)
		}
		value = strings.Trim(value, " \t")
		switch strings.ToLower(name) {
		case "host":
			hosts++
		case "content-length":
			cls++
			cl = value
		case "transfer-encoding":
			tes++
			te = value
		}
	}
	switch {
	case hosts != 1:
		return "", fmt.Errorf("%d Host fields", hosts)
	case cls > 1 || tes > 1:
		return "", fmt.Errorf("%d Content-Length and %d Transfer-Encoding fields", cls, tes)
	case cls == 1 && tes == 1:
		return "", errors.New("both Content-Length and Transfer-Encoding")
	case tes == 1 && te != "chunked":
		return "", fmt.Errorf("Transfer-Encoding %q", te)
	}
	var body []byte
	switch {
	case cls == 1:
		n, err := strconv.ParseUint(cl, 10, 31)
		if err != nil || cl != strconv.FormatUint(n, 10) {
			return "", fmt.Errorf("Content-Length %q", cl)
		}
		body = make([]byte, n)
		if _, err := io.ReadFull(br, body); err != nil {
			return "", io.ErrUnexpectedEOF
		}
	case tes == 1:
		for {
			size, err := strictLine(br)
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			if err != nil {
				return "", err
			}
			n, perr := strconv.ParseUint(size, 16, 31)
			if perr != nil || size == "" || strings.ContainsAny(size, "+-xX") {
				return "", fmt.Errorf("chunk size line %q", size)
			}
			if n == 0 {
				break
			}
			chunk := make([]byte, n+2)
			if _, err := io.ReadFull(br, chunk); err != nil {
				return "", io.ErrUnexpectedEOF
			}
			if !bytes.HasSuffix(chunk, []byte("\r\n")) {
				return "", errors.New("chunk data not followed by CRLF")
			}
			body = append(body, chunk[:n]...)
		}
		for { // trailer section
			line, err := strictLine(br)
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			if err != nil {
				return "", err
			}
			if line == "" {
				break
			}
		}
	}
	return parts[0] + " " + parts[1] + " " + string(body), nil
}

// strictLine reads a line that ends in CRLF and holds no other control
// character than HTAB, nor starts with whitespace (a folded line).
func strictLine(br *bufio.Reader) (string, error) {
	b, err := br.ReadSlice('\n')
	if err != nil {
		if len(b) == 0 && err == io.EOF {
			return "", io.EOF
		}
		if err == io.EOF {
			return "", io.ErrUnexpectedEOF
		}
		return "", err
	}
	if !bytes.HasSuffix(b, []byte("\r\n")) {
		return "", fmt.Errorf("line %q ends in a bare LF", b)
	}
	b = b[:len(b)-2]
	if len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		return "", fmt.Errorf("folded line %q", b)
	}
	for _, c := range b {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return "", fmt.Errorf("control character %#x in line %q", c, b)
		}
	}
	return string(b), nil
}

const (
	firstRequest = "GET /first HTTP/1.1\r\nHost: x\r\n\r\n"
	// lastRequest follows every case; served only if the case left the
	// connection open and in step.
	lastRequest = "GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
)

// TestRequestSmugglingIsRefusedOrNormalisedAndTheUpstreamGetsExactlyTheIntendedRequests
// sends each case between a well-formed first and last request on one
// connection, in cleartext and over TLS (HTTP/1.1 by ALPN).
func TestRequestSmugglingIsRefusedOrNormalisedAndTheUpstreamGetsExactlyTheIntendedRequests(t *testing.T) {
	const smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	// fakeHead is a head refused twice over, as a body.
	const fakeHead = "GET /no HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n"
	cases := []struct {
		desc, send string
		// served are the case's requests the upstream receives, each
		// answered 200, as "METHOD target body".
		served []string
		// refused, if not 0, is the problem status that answers the
		// request after the served ones, ending the connection.
		refused int
		// ends: the case ends the connection with its last response
		// (HTTP/1.0 without keep-alive): the last request is not read.
		ends bool
		// stricter, if not 0, is the status a stricter engine may refuse
		// the case's first request with, where std normalises it
		// (RFC 9112 allows either; net/http normalises).
		stricter int
	}{
		// Content-Length with Transfer-Encoding (RFC 9112 §6.1): the
		// classic CL.TE and TE.CL desyncs.
		{desc: "content-length then chunked",
			send:    "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
			refused: 400},
		{desc: "chunked then content-length, odd case",
			send:    "POST /a HTTP/1.1\r\nHost: x\r\ntransfer-encoding: Chunked\r\ncontent-LENGTH: 3\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + smuggled,
			refused: 400},
		{desc: "content-length with an unknown coding",
			send:    "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc" + smuggled,
			refused: 400},
		{desc: "HTTP/1.0 with chunked",
			send:    "POST /a HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
			refused: 400},
		{desc: "HTTP/1.0 with chunked and bare LF",
			send:    "POST /a HTTP/1.0\nConnection: keep-alive\nTransfer-Encoding: chunked\n\n" + smuggled,
			refused: 400},
		{desc: "refused after a length-framed body",
			send:    "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" + "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
			served:  []string{"POST /a hello"},
			refused: 400},
		{desc: "refused after a chunked body with an extension and a trailer",
			send:    "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\n" + "GET /b HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n" + smuggled,
			served:  []string{"POST /a abc"},
			refused: 400},

		// Obfuscated and duplicate Transfer-Encoding: anything but one
		// "chunked" is a coding gatehouse does not implement.
		{desc: "chunked, twice",
			send:    "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
			refused: 501},
		{desc: "chunked in a list",
			send:    "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + smuggled,
			refused: 501},
		{desc: "chunked after identity",
			send:    "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
			refused: 501},
		{desc: "a near-chunked coding",
			send:    "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + smuggled,
			refused: 501},
		{desc: "chunked with a trailing comma",
			send:    "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked,\r\n\r\n0\r\n\r\n" + smuggled,
			refused: 501},
		{desc: "a space before the colon",
			send:    "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + smuggled,
			refused: 400},
		{desc: "chunked in capitals after a tab is chunked",
			send:     "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\tCHUNKED\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
			served:   []string{"POST /a hello"},
			stricter: 400},

		// Content-Length: one decimal number.
		{desc: "two different lengths",
			send:    "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nhello" + smuggled,
			refused: 400},
		{desc: "two lengths in one field",
			send:    "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello" + smuggled,
			refused: 400},
		{desc: "a signed length",
			send:    "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello" + smuggled,
			refused: 400},
		{desc: "a negative length",
			send:    "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n" + smuggled,
			refused: 400},
		{desc: "a hex length",
			send:    "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\nhello" + smuggled,
			refused: 400},
		{desc: "a length with a space inside",
			send:    "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1 0\r\n\r\nhellohello" + smuggled,
			refused: 400},
		{desc: "the same length twice is one length",
			send:     "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
			served:   []string{"POST /a hello"},
			stricter: 400},
		{desc: "leading zeros are the same length",
			send:     "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 005\r\n\r\nhello",
			served:   []string{"POST /a hello"},
			stricter: 400},

		// Chunk sizes and extensions.
		{desc: "a chunk size with 0x",
			send:    "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n" + smuggled,
			refused: 400},
		{desc: "a negative chunk size",
			send:    "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n" + smuggled,
			refused: 400},
		{desc: "a chunk size that overflows 64 bits to a small one",
			send:    "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n" + smuggled,
			refused: 400},
		{desc: "chunk data longer than its size",
			send:    "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n" + smuggled,
			refused: 400},
		{desc: "a chunk size line ending in a bare LF",
			send:    "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n" + smuggled,
			refused: 400},
		{desc: "a chunk extension with a bare LF",
			send:    "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\"x\ny\"\r\nhello\r\n0\r\n\r\n" + smuggled,
			refused: 400},
		{desc: "the last chunk without its CRLF",
			send:    "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello0\r\n\r\n" + smuggled,
			refused: 400},
		{desc: "chunk extensions are dropped",
			send:   "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value;q=\"a b\"\r\nhello\r\n0;last\r\n\r\n",
			served: []string{"POST /a hello"}},
		{desc: "a chunked body with a trailer",
			send:   "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n",
			served: []string{"POST /a hello"}},
		// net/http's fixTrailer: a framing field cannot follow the body.
		{desc: "a chunked body announcing a content-length trailer",
			send:    "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum, Content-Length\r\n\r\n5\r\nhello\r\n0\r\nContent-Length: 0\r\n\r\n" + smuggled,
			refused: 400},

		// Line ends, folding, control characters.
		{desc: "bare LF line ends",
			send:     "POST /a HTTP/1.1\nHost: x\nContent-Length: 5\n\nhello",
			served:   []string{"POST /a hello"},
			stricter: 400},
		{desc: "a folded field",
			send:    "GET /a HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\n\r\n" + smuggled,
			refused: 400},
		{desc: "a folded content-length",
			send:    "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n 5\r\n\r\nhello" + smuggled,
			refused: 400},
		{desc: "a content-length followed by a folded blank",
			send:    "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n \r\n\r\nhello" + smuggled,
			refused: 400},
		{desc: "a folded transfer-encoding",
			send:    "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n\tchunked\r\n\r\n0\r\n\r\n" + smuggled,
			refused: 400},
		{desc: "a NUL in a value",
			send:    "GET /a HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n" + smuggled,
			refused: 400},
		{desc: "a CR inside a value",
			send:    "GET /a HTTP/1.1\r\nHost: x\r\nX-A: a\rContent-Length: 5\r\n\r\nhello" + smuggled,
			refused: 400},
		{desc: "a NUL in a name",
			send:    "GET /a HTTP/1.1\r\nHost: x\r\nX-\x00A: 1\r\n\r\n" + smuggled,
			refused: 400},
		{desc: "a header line without a colon",
			send:    "GET /a HTTP/1.1\r\nHost: x\r\nContent-Length 5\r\n\r\nhello" + smuggled,
			refused: 400},
		{desc: "a CR in the request line",
			send:    "GET /a\rHTTP/1.1\r\nHost: x\r\n\r\n" + smuggled,
			refused: 400},

		// Pipelining after bodies: each body is read whole, no more.
		{desc: "pipelined after a length-framed body",
			send:   "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" + "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
			served: []string{"POST /a hello", "POST /b abc"}},
		{desc: "pipelined after a chunked body",
			send:   "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + "GET /b HTTP/1.1\r\nHost: x\r\n\r\n",
			served: []string{"POST /a hello", "GET /b "}},
		{desc: "a body that looks like a request is a body",
			send:   fmt.Sprintf("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(smuggled), smuggled),
			served: []string{"POST /a " + smuggled}},
		{desc: "a GET with a length-framed body",
			send:   fmt.Sprintf("GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(smuggled), smuggled),
			served: []string{"GET /a " + smuggled}},
		{desc: "bodies that look like refused heads are bodies",
			send: fmt.Sprintf("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(fakeHead), fakeHead) +
				fmt.Sprintf("POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(fakeHead), fakeHead) +
				"GET /c HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
			served: []string{"POST /a " + fakeHead, "POST /b " + fakeHead, "GET /c ok"}},
		{desc: "a field value naming a framing field is a value",
			send:   "GET /a HTTP/1.1\r\nHost: x\r\nX-Note: Transfer-Encoding: chunked\r\nX-Other: Content-Length: 5\r\n\r\n",
			served: []string{"GET /a "}},
		{desc: "an empty line before a request is skipped",
			send:   "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
			served: []string{"POST /a hello", "GET /b "}},

		// HTTP/1.0.
		{desc: "HTTP/1.0 keep-alive",
			send:   "GET /a HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\nPOST /b HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\nhello",
			served: []string{"GET /a ", "POST /b hello"}},
		{desc: "HTTP/1.0 without keep-alive ends the connection",
			send:   "GET /a HTTP/1.0\r\nHost: x\r\n\r\n" + smuggled,
			served: []string{"GET /a "},
			ends:   true},

		// Request targets and Host.
		{desc: "an absolute-form target goes upstream in origin form",
			send:   "GET http://x/a?q=1 HTTP/1.1\r\nHost: x\r\n\r\n",
			served: []string{"GET /a?q=1 "}},
		{desc: "an absolute-form target with another Host",
			send:   "GET http://y/a HTTP/1.1\r\nHost: x\r\n\r\n",
			served: []string{"GET /a "}},
		{desc: "a missing Host",
			send:    "GET /a HTTP/1.1\r\n\r\n" + smuggled,
			refused: 400},
		{desc: "two Hosts",
			send:    "GET /a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n" + smuggled,
			refused: 400},
		{desc: "two Hosts, the same",
			send:    "GET /a HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n" + smuggled,
			refused: 400},
		// RFC 9112 §3.2: the Host a client sends for a target without
		// an authority; the gateway routes it as no host.
		{desc: "an empty Host",
			send:   "GET /a HTTP/1.1\r\nHost:\r\n\r\n",
			served: []string{"GET /a "}},
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSigned(t, certFile, keyFile)
	for _, tc := range cases {
		for _, overTLS := range []bool{false, true} {
			name := tc.desc
			if overTLS {
				name = "TLS/" + name
			}
			t.Run(name, func(t *testing.T) {
				up := startRawUpstream(t)
				var g *gateway
				var c rawConn
				if overTLS {
					g = newGateway(t, func(o *serve.Options) { o.TLSCert, o.TLSKey = certFile, keyFile })
					c = rawConn{wiretest.DialTLS(t, g.addr)}
				} else {
					g = newGateway(t)
					c = g.dial()
				}
				g.route(up.url, "", "")
				c.send(firstRequest + tc.send + lastRequest)

				read := func() *response {
					t.Helper()
					r, err := readResponse(c)
					if err != nil {
						t.Fatalf("reading response: %v", err)
					}
					return r
				}
				if r := read(); r.status != http.StatusOK {
					t.Fatalf("first request: got %d; want 200: %s", r.status, r.body)
				}
				wantUp := []string{"GET /first "}
				served, refused := tc.served, tc.refused
				for i := range served {
					r := read()
					if i == 0 && tc.stricter != 0 && r.status == tc.stricter {
						// This engine refuses what std normalises: then
						// as a refusal, in full.
						assertProblem(t, r, tc.stricter)
						if !r.close {
							t.Fatal("refusal without Connection: close")
						}
						served, refused = nil, -1
						break
					}
					if r.status != http.StatusOK || string(r.body) != "ok" {
						t.Fatalf("request %d of the case: got %d %q; want the upstream's 200 ok", i+1, r.status, r.body)
					}
				}
				wantUp = append(wantUp, served...)
				switch {
				case refused > 0:
					r := read()
					assertProblem(t, r, refused)
					if !r.close {
						t.Fatal("refusal without Connection: close")
					}
				case refused == 0 && !tc.ends:
					if r := read(); r.status != http.StatusOK {
						t.Fatalf("last request: got %d; want 200: %s", r.status, r.body)
					}
					wantUp = append(wantUp, "GET /last ")
				}
				assertEnds(t, c)
				// The upstream records a request before it answers, and the
				// gateway forwards one before it answers: all is recorded.
				got, errs := up.received()
				for _, err := range errs {
					t.Errorf("the upstream received an ambiguous request: %v", err)
				}
				if !slices.Equal(got, wantUp) {
					t.Fatalf("the upstream received\n%q\nwant\n%q", got, wantUp)
				}
			})
		}
	}
}

// assertEnds fails the test unless the connection carries nothing more
// and ends (a reset, from a server closing with the client's bytes unread,
// is an end too), rather than staying open until the deadline.
func assertEnds(t *testing.T, c rawConn) {
	t.Helper()
	rest, err := io.ReadAll(c.R)
	if len(rest) != 0 {
		t.Fatalf("after the last response the connection carried %q; want its end", rest)
	}
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("after the last response the connection stayed open")
	}
}

// readResponse reads one response to a request of any method but HEAD.
func readResponse(c rawConn) (*response, error) {
	resp, err := http.ReadResponse(c.R, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: b, close: resp.Close}, nil
}

// TestTheSmugglingSuitesUpstreamReadsOnlyUnambiguousRequests: the suite's
// upstream, which judges what the gateway sends, itself refuses each
// ambiguity it looks for, and reads well-framed requests whole.
func TestTheSmugglingSuitesUpstreamReadsOnlyUnambiguousRequests(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", "POST /a hello"},
		{"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhe\r\n3\r\nllo\r\n0\r\nT: 1\r\n\r\n", "POST /a hello"},
		{"GET /a HTTP/1.1\r\nHost: x\r\n\r\n", "GET /a "},
		{"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", ""},
		{"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", ""},
		{"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 05\r\n\r\nhello", ""},
		{"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", ""},
		{"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;x\r\nhello\r\n0\r\n\r\n", ""},
		{"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n0\r\n\r\n", ""},
		{"GET /a HTTP/1.1\nHost: x\r\n\r\n", ""},
		{"GET /a HTTP/1.1\r\nHost: x\r\nX: 1\r\n 2\r\n\r\n", ""},
		{"GET /a HTTP/1.1\r\nHost: x\r\nX: 1\x002\r\n\r\n", ""},
		{"GET /a HTTP/1.1\r\n\r\n", ""},
		{"GET /a HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n", ""},
		{"GET http://x/a HTTP/1.1\r\nHost: x\r\n\r\n", ""},
		{"GET /a HTTP/1.0\r\nHost: x\r\n\r\n", ""},
	} {
		got, err := readStrictRequest(bufio.NewReader(strings.NewReader(tc.in)))
		if tc.want == "" && err == nil {
			t.Errorf("%q: read as %q; want a framing error", tc.in, got)
		}
		if tc.want != "" && (err != nil || got != tc.want) {
			t.Errorf("%q: got %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestABodyRefusedBeforeItIsReadIsNeverReadAsARequest: a request refused
// on its head (401 from the auth policy) whose body the client sends
// without waiting for 100 Continue, as an attacker would, the body being a
// request that would pass: the refusal comes first, and the body is then
// either read and dropped (the next request is served) or the connection
// closed; it never reaches the upstream as a request.
func TestABodyRefusedBeforeItIsReadIsNeverReadAsARequest(t *testing.T) {
	inner := "GET /smuggled HTTP/1.1\r\nHost: x\r\nX-API-Key: " + aliceAPIKey + "\r\n\r\n"
	chunked := fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(inner), inner)
	for _, tc := range []struct{ desc, head, body string }{
		{"expect 100-continue, length-framed",
			fmt.Sprintf("POST /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", len(inner)), inner},
		{"expect 100-continue, chunked",
			"POST /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n", chunked},
		{"no expectation, length-framed",
			fmt.Sprintf("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", len(inner)), inner},
		{"no expectation, chunked",
			"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", chunked},
		{"HTTP/1.0 keep-alive, length-framed",
			fmt.Sprintf("POST /a HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nContent-Length: %d\r\n\r\n", len(inner)), inner},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			up := startRawUpstream(t)
			g := newGateway(t)
			g.apply(newPolicyFixture(t, up.url).consumer("c-alice", "alice").key("c-alice", aliceAPIKey).
				policy(`{"name":"auth","type":"auth","global":true,"config":{"key_auth":{}}}`).rev)
			c := g.dial()
			last := "GET /last HTTP/1.1\r\nHost: x\r\nX-API-Key: " + aliceAPIKey + "\r\nConnection: close\r\n\r\n"
			c.send(tc.head + tc.body + last)
			r, err := readResponse(c)
			if err != nil {
				t.Fatal(err)
			}
			assertProblem(t, r, http.StatusUnauthorized)
			var wantUp []string
			if !r.close {
				// The body was read and dropped: the next request is
				// the last one.
				r, err := readResponse(c)
				if err != nil {
					t.Fatalf("after a 401 that kept the connection: %v", err)
				}
				if r.status != http.StatusOK || string(r.body) != "ok" {
					t.Fatalf("the request after the refused one: got %d %q; want the upstream's 200 ok", r.status, r.body)
				}
				wantUp = []string{"GET /last "}
			}
			assertEnds(t, c)
			got, errs := up.received()
			for _, err := range errs {
				t.Errorf("the upstream received an ambiguous request: %v", err)
			}
			if !slices.Equal(got, wantUp) {
				t.Fatalf("the upstream received %q; want %q", got, wantUp)
			}
		})
	}
}

// A request refused before its body is read (here: no route, 404) that
// declares a body too long to drop is answered at once and the
// connection closed, on either engine: not held until the read timeout
// for a body the client may never send.
func TestARefusalOfALargeDeclaredBodyIsNotHeldForTheBody(t *testing.T) {
	g := newGateway(t, func(o *serve.Options) { o.ReadTimeout = 30 * time.Second })
	c := g.dial()
	c.send("POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\nabc")
	begin := time.Now()
	r, err := readResponse(c)
	if err != nil {
		t.Fatal(err)
	}
	assertProblem(t, r, http.StatusNotFound)
	if took := time.Since(begin); took > 10*time.Second {
		t.Errorf("the 404 came after %v (the read timeout); want it at once", took.Round(time.Millisecond))
	}
	if !r.close {
		t.Error("the connection stays open with the body unread")
	}
}

// A head that stalls is answered 408 (the contract's row), also when it
// came in one segment with the request before it.
func TestAStalledHeadPipelinedAfterARequestGets408(t *testing.T) {
	up := startRawUpstream(t)
	g := newGateway(t, func(o *serve.Options) { o.ReadHeaderTimeout = 300 * time.Millisecond })
	g.route(up.url, "", "")
	c := g.dial()
	c.send(firstRequest + "GET /second HTTP/1.1\r\nHo")
	if r, err := readResponse(c); err != nil || r.status != http.StatusOK {
		t.Fatalf("first request: %v %v", r, err)
	}
	r, err := readResponse(c)
	if err != nil {
		t.Fatal(err)
	}
	assertProblem(t, r, http.StatusRequestTimeout)
	if r.header.Get("Date") == "" {
		t.Error("the 408 has no Date (RFC 9110 §6.6.1: an origin server with a clock sends one)")
	}
	assertEnds(t, c)
}
