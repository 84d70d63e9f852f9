// Reading a response head off an h1Conn into an *http.Response, with
// few allocations.

package forward

import (
	"bufio"
	"errors"
	"net/http"
	"unsafe"

	"github.com/gatehouse/gatehouse/internal/h1"
)

// h1Response is one response and what it needs besides its header map,
// in one allocation: its body, the values its header slices are cut from
// (for up to len(vals) fields; more cost one slice), and the bytes of its
// head, of which every string in the response is a part (a longer head
// costs one string). The head's bytes are never written once copied in:
// the strings over them are as immutable as any.
type h1Response struct {
	resp http.Response
	body h1Body
	vals [12]string
	head [h1InlineHead]byte
}

// h1InlineHead is the longest head an h1Response holds: h1Response is
// then just within the 1 KiB size class, and a typical head (a status
// line and a few fields) is a few hundred bytes.
const h1InlineHead = 600

// chunkedCoding is Response.TransferEncoding of every chunked response.
var chunkedCoding = []string{"chunked"}

// readResponse reads one response head, at most limit bytes, and returns
// the response and the head's length. Every string in the response is a
// part of the head's bytes (but names neither canonical nor common,
// h1.ResponseHead.Header). The body is the caller's to set up.
func (pc *h1Conn) readResponse(out *http.Request, limit int) (*h1Response, int, error) {
	b, buffered, err := pc.readHeadBytes(out.Method == http.MethodHead, limit)
	if err != nil {
		return nil, 0, err
	}
	h := &pc.head
	r := &h1Response{}
	var hs string
	if len(b) <= len(r.head) {
		hs = unsafe.String(&r.head[0], copy(r.head[:], b))
	} else {
		hs = string(b)
	}
	// The header is a map of its own, not one reused per connection: the
	// proxy reads it after the body ended and the connection went back to
	// the idle stack (the audit policy's RespondEnd judges it).
	r.resp = http.Response{
		Status:        hs[cap(b)-cap(h.Text):][:len(h.Text)],
		StatusCode:    h.Status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    h.Minor,
		Header:        h.Header(b, hs, r.vals[:0]),
		Body:          http.NoBody,
		ContentLength: h.ContentLength,
		Close:         h.Close,
		Trailer:       h.Trailer(),
		Request:       out,
	}
	if h.Minor != 1 {
		r.resp.Proto = hs[:len("HTTP/1.1")]
	}
	if h.Chunked {
		r.resp.TransferEncoding = chunkedCoding
	}
	if !h.NoBody {
		r.body = h1Body{resp: &r.resp, chunked: h.Chunked, n: h.ContentLength}
		r.resp.Body = &r.body // replaced by the exchange, for a 101
	}
	if buffered {
		pc.br.Discard(len(b))
	}
	return r, len(b), nil
}

// readHeadBytes parses the head at the start of pc.br into pc.head and
// returns its bytes: in pc.br's buffer, unread (buffered), or, for a head
// that outgrew the buffer, a copy of what was read. A head that has not
// ended within limit bytes is errHeaderTooLarge; a connection that ends
// inside one, io.ErrUnexpectedEOF (as ReadResponse has it).
func (pc *h1Conn) readHeadBytes(head bool, limit int) (b []byte, buffered bool, err error) {
	for {
		b, _ = pc.br.Peek(pc.br.Buffered())
		if len(b) > limit {
			b = b[:limit]
		}
		n, err := h1.ParseResponseHead(b, &pc.head, head)
		switch {
		case err == nil:
			return b[:n], true, nil
		case err != h1.ErrIncomplete:
			return nil, false, err
		case len(b) >= limit:
			return nil, false, errHeaderTooLarge
		case len(b) == pc.br.Size():
			return pc.readLongHead(head, limit)
		}
		if _, err := pc.br.Peek(len(b) + 1); err != nil {
			return nil, false, h1.UnexpectedEOF(err)
		}
	}
}

// readLongHead reads a head longer than pc.br's buffer line by line. It
// parses what it has at the empty line, and whenever it has doubled since
// the last parse, so that a malformed head is refused early at a cost
// linear in its length.
func (pc *h1Conn) readLongHead(head bool, limit int) ([]byte, bool, error) {
	var b []byte
	lineStart, parsed := 0, 0
	for {
		line, err := pc.br.ReadSlice('\n')
		if len(b)+len(line) > limit {
			return nil, false, errHeaderTooLarge
		}
		b = append(b, line...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return nil, false, h1.UnexpectedEOF(err)
		}
		if l := len(b) - lineStart; l == 1 || l == 2 && b[lineStart] == '\r' || len(b) >= 2*parsed {
			parsed = len(b)
			n, err := h1.ParseResponseHead(b, &pc.head, head)
			if err != h1.ErrIncomplete {
				if err == nil && n != len(b) {
					err = errors.New("response head: ended before its empty line") // cannot be
				}
				return b, false, err
			}
		}
		lineStart = len(b)
	}
}
