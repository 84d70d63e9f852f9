package h1

// A stand-in for the "parser" helper's head.go and chunked.go (issue 14),
// written to the frozen API so that the engine builds and its tests run
// before that branch is merged; the merge deletes this file. It is not
// the security boundary: it refuses the obvious, no more.

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"strconv"

	"github.com/gatehouse/gatehouse"
)

// Head is one parsed request head.
type Head struct {
	Method        string
	Target        []byte
	Minor         int
	Fields        []Field
	Host          []byte
	Chunked       bool
	ContentLength int64
	Close         bool
	Expect100     bool
	Upgrade       bool
}

// Field is one header field.
type Field struct{ Name, Value []byte }

// ErrIncomplete says more bytes are needed.
var ErrIncomplete = errors.New("h1: incomplete request head")

func bad(format string, a ...any) error { return gatehouse.Errorf(gatehouse.EINVALID, format, a...) }

// ParseHead parses the request head at the start of b.
func ParseHead(b []byte, h *Head, max int) (int, error) {
	fields := h.Fields[:0]
	*h = Head{Fields: fields}
	start := 0
	for start+1 < len(b) && b[start] == '\r' && b[start+1] == '\n' {
		start += 2
	}
	end := bytes.Index(b[start:], []byte("\r\n\r\n"))
	if end < 0 {
		if len(b) >= max {
			return 0, gatehouse.Errorf(gatehouse.EHEADERSTOOLARGE, "The request's header fields exceed the limit of %d bytes.", max)
		}
		return 0, ErrIncomplete
	}
	if start+end+4 > max {
		return 0, gatehouse.Errorf(gatehouse.EHEADERSTOOLARGE, "The request's header fields exceed the limit of %d bytes.", max)
	}
	head := b[start : start+end+2]
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	m, rl, ok1 := bytes.Cut(line, []byte(" "))
	t, v, ok2 := bytes.Cut(rl, []byte(" "))
	if !ok1 || !ok2 || len(m) == 0 || len(t) == 0 {
		return 0, bad("The request line is malformed.")
	}
	switch string(v) {
	case "HTTP/1.1":
		h.Minor = 1
	case "HTTP/1.0":
	default:
		if bytes.HasPrefix(v, []byte("HTTP/")) {
			return 0, gatehouse.Errorf(gatehouse.EVERSION, "Only HTTP/1.x is supported.")
		}
		return 0, bad("The request line is malformed.")
	}
	h.Method, h.Target = string(m), t
	h.ContentLength = 0
	cls, hosts := 0, 0
	connClose, keepAlive := false, false
	for len(rest) > 0 {
		var l []byte
		l, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, ok := bytes.Cut(l, []byte(":"))
		if !ok || len(name) == 0 || bytes.ContainsAny(name, " \t") || bytes.ContainsAny(l, "\r\n\x00") {
			return 0, bad("A header field is malformed.")
		}
		value = bytes.TrimSpace(value)
		h.Fields = append(h.Fields, Field{name, value})
		switch {
		case bytes.EqualFold(name, []byte("Host")):
			hosts++
			h.Host = value
		case bytes.EqualFold(name, []byte("Content-Length")):
			cls++
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 || value[0] == '+' {
				return 0, bad("The Content-Length is malformed.")
			}
			h.ContentLength = n
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			if !bytes.EqualFold(value, []byte("chunked")) || h.Chunked {
				return 0, gatehouse.Errorf(gatehouse.ENOTIMPLEMENTED, "The request's transfer coding is not supported.")
			}
			h.Chunked = true
		case bytes.EqualFold(name, []byte("Connection")):
			for _, tok := range bytes.Split(value, []byte(",")) {
				tok = bytes.TrimSpace(tok)
				switch {
				case bytes.EqualFold(tok, []byte("close")):
					connClose = true
				case bytes.EqualFold(tok, []byte("keep-alive")):
					keepAlive = true
				case bytes.EqualFold(tok, []byte("upgrade")):
					h.Upgrade = true
				}
			}
		case bytes.EqualFold(name, []byte("Expect")):
			if !bytes.EqualFold(value, []byte("100-continue")) {
				return 0, gatehouse.Errorf(gatehouse.EEXPECTATION, "The only expectation supported is 100-continue.")
			}
			h.Expect100 = true
		}
	}
	if cls > 1 || hosts > 1 || (cls > 0 && h.Chunked) {
		return 0, bad("The request's framing is ambiguous.")
	}
	if h.Minor == 1 && hosts == 0 && h.Method != http.MethodConnect {
		return 0, bad("missing required Host header")
	}
	h.Close = connClose || (h.Minor == 0 && !keepAlive)
	return start + end + 4, nil
}

// ChunkedReader decodes a chunked body; trailers are dropped.
type ChunkedReader struct {
	br   *bufio.Reader
	r    io.Reader
	done bool
}

// Reset starts a new body on r.
func (c *ChunkedReader) Reset(r *bufio.Reader) {
	*c = ChunkedReader{br: r, r: httputil.NewChunkedReader(r)}
}

func (c *ChunkedReader) Read(p []byte) (int, error) {
	if c.done {
		return 0, io.EOF
	}
	n, err := c.r.Read(p)
	if err == io.EOF {
		for { // the trailer section, up to its empty line
			line, rerr := c.br.ReadSlice('\n')
			if rerr != nil {
				return n, bad("The chunked body is malformed.")
			}
			if len(line) <= 2 {
				break
			}
		}
		c.done = true
	} else if err != nil {
		return n, bad("The chunked body is malformed: %v", err)
	}
	return n, err
}
