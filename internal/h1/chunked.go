package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/httpx"
)

// ChunkedReader decodes a chunked body (RFC 9112 §7.1) from r. It is at
// least as strict as net/http's: every line (chunk sizes, trailer fields)
// ends in CRLF, and a chunk's data is followed by CRLF; a chunk size is 1 to
// 16 hex digits, at most 2^63-1, with no sign or whitespace; extensions
// follow the RFC's grammar and are dropped. Trailer fields are checked as
// header fields are and kept: Trailer gives them once the body has ended.
//
// What a client may send beside the data is bounded, so that it cannot
// stream forever without body bytes: a line is at most maxChunkLine bytes;
// chunk lines beyond 16 bytes of overhead per chunk plus twice the chunk's
// data add up to at most maxChunkExcess (net/http's rule and bound); the
// trailer section is at most maxTrailer bytes.
//
// Errors in the encoding are *gatehouse.Error EINVALID; the end of r before
// the body's is io.ErrUnexpectedEOF; r's own errors (a deadline) pass
// through. It reads no byte beyond the body's end, so the next pipelined
// request is intact in r. The zero value is unusable; Reset lets a
// connection reuse one.
type ChunkedReader struct {
	r      *bufio.Reader
	state  uint8
	n      int64 // data left in the current chunk
	excess int64 // overhead beyond the allowance, as net/http counts it
	// trailer counts the trailer section's bytes so far.
	trailer int
	err     error
	// tbuf holds the trailer's field lines, copied out of r's buffer
	// (which the next read reuses); fields points into it once the body
	// has ended. Both are kept through Reset: a connection whose clients
	// send trailers grows them once.
	tbuf   []byte
	fields []Field
}

const (
	cSize    = iota // at a chunk-size line
	cData           // in chunk data
	cDataEnd        // at the CRLF after chunk data
	cTrailer        // at a trailer line, or the final CRLF
	cDone
)

const (
	// maxChunkLine bounds a chunk-size or trailer line, CRLF included:
	// net/http's bound with its 4 KiB read buffer.
	maxChunkLine = 4096
	// maxChunkExcess is net/http's bound on chunk overhead.
	maxChunkExcess = 16 << 10
	// maxTrailer bounds the trailer section, final CRLF included: net/http
	// wants it all within its 4 KiB read buffer.
	maxTrailer = 4096
)

var (
	errChunkLine = gatehouse.Errorf(gatehouse.EINVALID,
		"A line of the chunked body does not end in CRLF or is longer than 4096 bytes (RFC 9112 §7.1).")
	errChunkSize = gatehouse.Errorf(gatehouse.EINVALID,
		"A chunk size is not 1 to 16 hexadecimal digits within 2^63-1 (RFC 9112 §7.1).")
	errChunkExt = gatehouse.Errorf(gatehouse.EINVALID,
		"A chunk extension is malformed (RFC 9112 §7.1.1).")
	errChunkEnd = gatehouse.Errorf(gatehouse.EINVALID,
		"A chunk's data is not followed by CRLF (RFC 9112 §7.1).")
	errChunkExcess = gatehouse.Errorf(gatehouse.EINVALID,
		"The chunked body carries too much besides its data (chunk extensions).")
	errTrailerSize = gatehouse.Errorf(gatehouse.EINVALID,
		"The chunked body's trailer section exceeds 4096 bytes.")
	errTrailerField = gatehouse.Errorf(gatehouse.EINVALID,
		"A trailer field of the chunked body is malformed (RFC 9112 §7.1.2).")
)

// Reset makes c read a new chunked body from r.
func (c *ChunkedReader) Reset(r *bufio.Reader) {
	*c = ChunkedReader{r: r, tbuf: c.tbuf[:0], fields: c.fields[:0]}
}

// Trailer returns the trailer's fields in the order received (names as
// sent, values without surrounding whitespace), once Read has returned
// io.EOF; none before, or when the body had none. They are valid until
// Reset.
func (c *ChunkedReader) Trailer() []Field { return c.fields }

// Read reads decoded body bytes into p. Once it has some, it returns them
// rather than wait for more of the connection.
func (c *ChunkedReader) Read(p []byte) (n int, err error) {
	for c.err == nil {
		switch c.state {
		case cSize:
			if n > 0 && !c.lineBuffered() {
				return n, nil
			}
			c.readSize()
		case cData:
			if len(p) == 0 {
				return n, nil
			}
			if n > 0 && c.r.Buffered() == 0 {
				return n, nil
			}
			q := p
			if int64(len(q)) > c.n {
				q = q[:c.n]
			}
			k, err := c.r.Read(q)
			n, p, c.n = n+k, p[k:], c.n-int64(k)
			if c.n == 0 {
				c.state = cDataEnd
			}
			if err != nil {
				c.err = UnexpectedEOF(err)
			}
		case cDataEnd:
			if n > 0 && c.r.Buffered() < 2 {
				return n, nil
			}
			// Both bytes are read before they are judged, as net/http does.
			cr, err := c.r.ReadByte()
			if err == nil {
				var lf byte
				if lf, err = c.r.ReadByte(); err == nil && (cr != '\r' || lf != '\n') {
					err = errChunkEnd
				}
			}
			c.err = UnexpectedEOF(err)
			c.state = cSize
		case cTrailer:
			if n > 0 && !c.lineBuffered() {
				return n, nil
			}
			c.readTrailer()
		}
	}
	return n, c.err
}

// lineBuffered reports whether a whole line is in r's buffer.
func (c *ChunkedReader) lineBuffered() bool {
	buf, _ := c.r.Peek(c.r.Buffered())
	return bytes.IndexByte(buf, '\n') >= 0
}

// readLine returns the next line, CRLF included, at most maxChunkLine
// bytes; it waits for no more than that. The line aliases r's buffer.
func (c *ChunkedReader) readLine() ([]byte, error) {
	for {
		n := c.r.Buffered()
		buf, _ := c.r.Peek(min(n, maxChunkLine))
		if j := bytes.IndexByte(buf, '\n'); j >= 0 {
			line := buf[:j+1]
			// Only CRLF ends a line here: net/http refuses a bare LF in a
			// chunked body (RFC 9112 erratum 7633), and any CR before the
			// end.
			if j == 0 || bytes.IndexByte(line, '\r') != j-1 {
				return nil, errChunkLine
			}
			c.r.Discard(j + 1)
			return line, nil
		}
		if len(buf) >= maxChunkLine {
			return nil, errChunkLine
		}
		if _, err := c.r.Peek(n + 1); err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return nil, errChunkLine // r's buffer is smaller than the line
			}
			return nil, UnexpectedEOF(err)
		}
	}
}

// readSize reads a chunk-size line: chunk-size [ chunk-ext ] CRLF.
func (c *ChunkedReader) readSize() {
	line, err := c.readLine()
	if err != nil {
		c.err = err
		return
	}
	line = line[:len(line)-2]
	var n int64
	i := 0
	for ; i < len(line) && httpx.Unhex(line[i]) >= 0; i++ {
		if i == 16 || n > (1<<63-1)>>4 {
			c.err = errChunkSize
			return
		}
		n = n<<4 | int64(httpx.Unhex(line[i]))
	}
	if i == 0 {
		c.err = errChunkSize
		return
	}
	if i < len(line) {
		// net/http reads the size up to the first ';', so no whitespace
		// may come between them.
		if line[i] != ';' {
			c.err = errChunkSize
			return
		}
		if !validChunkExt(line[i:]) {
			c.err = errChunkExt
			return
		}
	}
	// net/http's rule: 16 bytes of overhead per chunk, plus twice the
	// chunk's data, are free; beyond that at most maxChunkExcess in all.
	c.excess += int64(len(line)) + 2 - 16 - 2*min(n, 1<<40)
	c.excess = max(c.excess, 0)
	if c.excess > maxChunkExcess {
		c.err = errChunkExcess
		return
	}
	c.n = n
	c.state = cData
	if n == 0 {
		c.state = cTrailer
	}
}

// readTrailer reads one line of the trailer section: a field, or the empty
// line that ends the body.
func (c *ChunkedReader) readTrailer() {
	line, err := c.readLine()
	if err != nil {
		c.err = err
		return
	}
	if c.trailer += len(line); c.trailer > maxTrailer {
		c.err = errTrailerSize
		return
	}
	if len(line) == 2 {
		// The lines were checked as they came: each is one field.
		for i := 0; i < len(c.tbuf); {
			f, next, err := parseField(c.tbuf, i)
			if err != nil {
				break // cannot be: each line was checked
			}
			c.fields = append(c.fields, f)
			i = next
		}
		c.state, c.err = cDone, io.EOF
		return
	}
	// Checked as a header field line is: a leading space (obsolete
	// folding) is no field name.
	if _, next, err := parseField(line, 0); err != nil || next != len(line) {
		c.err = errTrailerField
		return
	}
	c.tbuf = append(c.tbuf, line...)
}

// validChunkExt reports whether e is *( BWS ";" BWS chunk-ext-name
// [ BWS "=" BWS chunk-ext-val ] ), chunk-ext-val a token or a
// quoted-string (RFC 9112 §7.1.1).
func validChunkExt(e []byte) bool {
	i := 0
	bws := func() {
		for i < len(e) && (e[i] == ' ' || e[i] == '\t') {
			i++
		}
	}
	token := func() bool {
		start := i
		for i < len(e) && httpx.IsTokenByte(e[i]) {
			i++
		}
		return i > start
	}
	for i < len(e) {
		bws()
		if i == len(e) || e[i] != ';' {
			return false // whitespace at the line's end, or no ';'
		}
		i++
		bws()
		if !token() {
			return false
		}
		j := i
		bws()
		if i == len(e) || e[i] != '=' {
			i = j
			continue
		}
		i++
		bws()
		if i < len(e) && e[i] == '"' {
			if i = quotedStringEnd(e, i); i < 0 {
				return false
			}
		} else if !token() {
			return false
		}
	}
	return true
}

// quotedStringEnd returns the index after the quoted-string that starts at
// e[i], or -1 (RFC 9110 §5.6.4).
func quotedStringEnd(e []byte, i int) int {
	for i++; i < len(e); i++ {
		switch c := e[i]; {
		case c == '"':
			return i + 1
		case c == '\\':
			if i++; i == len(e) || badValueByte[e[i]] {
				return -1
			}
		case badValueByte[c]:
			return -1
		}
	}
	return -1
}

// UnexpectedEOF turns the end of the connection inside a message (a
// body, or an upstream's head) into io.ErrUnexpectedEOF: a message cut
// short, not a connection closed before one.
func UnexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ReadLength reads into p from br the rest of a body whose length is
// known, *n bytes still to come, counting *n down: io.EOF with the last
// byte, io.ErrUnexpectedEOF when br ends before it. Request bodies and
// the upstream's responses are framed by it alike.
func ReadLength(br *bufio.Reader, p []byte, n *int64) (int, error) {
	if int64(len(p)) > *n {
		p = p[:*n]
	}
	k, err := br.Read(p)
	*n -= int64(k)
	switch {
	case *n == 0:
		err = io.EOF
	case err == io.EOF:
		err = io.ErrUnexpectedEOF
	}
	return k, err
}
