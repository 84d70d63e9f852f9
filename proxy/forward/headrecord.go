package forward

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"sync"

	"github.com/gatehouse/gatehouse/internal/httpx"
)

// netHTTPTransport is the *http.Transport https upstreams use, with what
// its ReadResponse loses put back: a Connection field that says close is
// deleted, and with it the names listed beside it (Connection: close,
// X-Secret), which the proxy then could not drop as hop-by-hop. Its
// connections (headRecorder) keep a copy of each response head, and
// RoundTrip drops the fields it named, as the h1Transport does.
type netHTTPTransport struct {
	*http.Transport
}

// DropConnectionNamed returns t as a RoundTripper that drops what
// net/http's ReadResponse hides: the fields named beside close in a
// response's Connection field (netHTTPTransport). It wraps t's dial
// functions, so that their connections record response heads: set them
// first, and call it before t is used. The egress listener's reverse proxy
// uses it as the data plane's https upstreams do.
func DropConnectionNamed(t *http.Transport) http.RoundTripper {
	return recordHeads(t)
}

// recordHeads makes t's connections headRecorders.
func recordHeads(t *http.Transport) netHTTPTransport {
	for _, dial := range []*func(context.Context, string, string) (net.Conn, error){&t.DialContext, &t.DialTLSContext} {
		if d := *dial; d != nil {
			*dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := d(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return &headRecorder{Conn: c}, nil
			}
		}
	}
	return netHTTPTransport{t}
}

// RoundTrip sends out on a copy carrying a trace that learns which
// connection served it; out itself is not modified.
func (t netHTTPTransport) RoundTrip(out *http.Request) (*http.Response, error) {
	var hr *headRecorder
	var reused bool
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		hr, _ = info.Conn.(*headRecorder)
		reused = info.Reused
	}}
	resp, err := t.Transport.RoundTrip(out.WithContext(httptrace.WithClientTrace(out.Context(), trace)))
	if hr == nil {
		return resp, err
	}
	if _, certless := hr.Conn.(*certlessConn); err != nil && certless && !reused {
		// A connection that served no exchange yet: the upstream may
		// have refused the missing certificate (classify).
		err = &certlessError{err: err}
	}
	need := err == nil && resp.Close && resp.Header["Connection"] == nil
	head := hr.finalHead(need)
	if !need {
		return resp, err
	}
	if head == nil {
		resp.Body.Close()
		return nil, errHeadUncheckable
	}
	dropConnectionNamed(resp.Header, head)
	return resp, nil
}

// maxRecording bounds the copy of a response head (1xx heads before it
// included). A head that says close and is longer cannot be checked for
// the fields its Connection names, and is refused as invalid (502):
// nginx refuses far smaller ones (proxy_buffer_size, 4 or 8 KiB).
const maxRecording = 64 << 10

// errHeadUncheckable is a head that said close, whose Connection names
// could not be read back (over maxRecording).
var errHeadUncheckable = errors.New("response head with Connection: close over " + strconv.Itoa(maxRecording>>10) + " KiB: the fields it names cannot be dropped")

// dropConnectionNamed deletes from h the fields that head's Connection
// names. ReadResponse deletes a Connection field that says close, and with
// it the names it lists beside (Connection: close, X-Secret): without
// this, the proxy would not know X-Secret for hop-by-hop and would relay
// it. It parses the head as ReadResponse did; it runs only for a response
// that said close. (The h1 transport needs none of this:
// h1.ResponseHead.Header drops those fields itself.)
func dropConnectionNamed(h http.Header, head []byte) {
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(head)))
	if _, err := tp.ReadLine(); err != nil { // the status line
		return
	}
	fields, err := tp.ReadMIMEHeader()
	if err != nil && len(fields) == 0 {
		return
	}
	for name := range httpx.FieldList(fields["Connection"]) {
		h.Del(name)
	}
}

// headRecorder is a connection that keeps a copy of the response head
// read after each request it writes: from the first byte read after a
// write to the end of the first head that is not 1xx.
type headRecorder struct {
	net.Conn

	mu        sync.Mutex
	recording bool
	rec       []byte
	start     int  // where the head being read begins in rec
	scanned   int  // how far rec was searched for the end of a head
	done      bool // rec is the final head
	taken     bool // RoundTrip has looked at it: the next write starts afresh
	upgraded  bool // a 101 was read: the connection no longer speaks HTTP
}

func (c *headRecorder) Write(p []byte) (int, error) {
	c.mu.Lock()
	// A request is going out, unless a response came before its body was
	// all written (an early 413) and RoundTrip has yet to read its head.
	if !c.upgraded && (!c.done || c.taken) {
		c.recording, c.done, c.taken = true, false, false
		c.rec, c.start, c.scanned = c.rec[:0], 0, 0
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *headRecorder) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		if c.recording {
			c.take(p[:n])
		}
		c.mu.Unlock()
	}
	return n, err
}

// take records b and stops at the end of the first head that is not 1xx,
// or past the limit of a head. Callers hold mu.
func (c *headRecorder) take(b []byte) {
	c.rec = append(c.rec, b...)
	for {
		end := headEnd(c.rec, c.scanned)
		if end < 0 {
			c.scanned = max(c.start, len(c.rec)-2)
			break
		}
		if interim(c.rec[c.start:end]) {
			c.start, c.scanned = end, end
			continue
		}
		c.rec, c.recording, c.done = c.rec[c.start:end], false, true
		c.upgraded = len(c.rec) > 12 && string(c.rec[9:12]) == "101"
		return
	}
	if len(c.rec) > maxRecording {
		c.rec, c.recording = c.rec[:0], false
	}
}

// headEnd returns where the head ends in b (past its empty line: CRLF
// or, as ReadResponse also takes, a bare LF), searching from from; -1 if
// it is not there yet.
func headEnd(b []byte, from int) int {
	for i := from; i < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		switch {
		case i+1 < len(b) && b[i+1] == '\n':
			return i + 2
		case i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n':
			return i + 3
		}
	}
	return -1
}

// interim reports whether head is a 1xx response's other than a 101,
// which is final.
func interim(head []byte) bool {
	return len(head) > 12 && bytes.HasPrefix(head, []byte("HTTP/1.")) && head[9] == '1' && string(head[9:12]) != "101"
}

// finalHead lets the next request record afresh and, if want is set,
// returns a copy of the response head recorded, or nil if it was not
// (over maxRecording).
func (c *headRecorder) finalHead(want bool) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.taken = true
	if !want || !c.done {
		return nil
	}
	return bytes.Clone(c.rec)
}
