package h1

// This file parses the response heads an upstream sends the proxy's
// HTTP/1.1 client (issue 14), with the field syntax of request heads
// (fieldLines, parseField). It is at least as strict as net/http's
// http.ReadResponse: a response that one refuses is a 502. Where it is
// stricter, response_fuzz_test.go lists the case and why.

import (
	"errors"
	"net/http"
	"net/textproto"
	"strconv"

	"github.com/gatehouse/gatehouse"
)

// ResponseHead is one parsed response head. Its byte slices alias the
// buffer ParseResponseHead was given.
type ResponseHead struct {
	Minor  int    // HTTP/1.Minor, as sent (a later 1.x reads as 1.1)
	Status int    // the status code, 000 to 999: its range is the caller's to judge
	Text   []byte // the status code and the reason, net/http's Response.Status ("200 OK")
	Fields []Field

	// Framing, decided by ParseResponseHead (RFC 9112 §6.3). NoBody: the
	// response has none (to HEAD; 1xx, 204, 304; Content-Length: 0).
	// Otherwise it is chunked, or ContentLength bytes long, or (-1) it
	// runs until the connection closes.
	NoBody        bool
	Chunked       bool  // Transfer-Encoding: chunked (even where NoBody)
	ContentLength int64 // for a response to HEAD, the length it declares (-1: none), as net/http's
	// Close: the connection ends after this response (Connection: close;
	// HTTP/1.0 without keep-alive; a body that runs to the close; both
	// Transfer-Encoding and Content-Length).
	Close bool

	// connClose: a Connection field says close.
	connClose bool
}

// Refusals of a response head. A proxy answers each with 502 (RFC 9112
// §6.3, RFC 9110 §15.6.3); the messages say what was wrong, for its logs.
var (
	errStatusLine     = errors.New(`malformed status line: want "HTTP/1.x", a space, three digits, and a space and a reason or nothing (RFC 9112 §4)`)
	errRespVersion    = errors.New("status line: only HTTP/1.x is spoken on this connection")
	errRespLineEnd    = errors.New("response head: a CR that does not end a line (RFC 9112 §2.2)")
	errRespObsFold    = errors.New("response head: a field continued on the next line (obsolete line folding, RFC 9112 §5.2)")
	errRespFieldName  = errors.New("response head: a field name that is empty or not a token, or no colon (RFC 9112 §5.1)")
	errRespFieldValue = errors.New("response head: a control character in a field value (RFC 9110 §5.5)")
	errRespFields     = errors.New("response head: more than " + strconv.Itoa(MaxResponseFields) + " header fields")
	errRespCLs        = errors.New("response head: Content-Length fields with different values (RFC 9110 §8.6)")
	errRespCL         = errors.New("response head: Content-Length is not one non-negative decimal number (RFC 9112 §6.3)")
	errRespTE         = errors.New(`response head: the only Transfer-Encoding accepted is a single "chunked"`)
	errRespTEOn10     = errors.New("response head: Transfer-Encoding in an HTTP/1.0 response, whose framing is then faulty (RFC 9112 §6.1)")
	errRespTrailer    = errors.New("response head: Trailer announces Content-Length, Transfer-Encoding or Trailer (RFC 9110 §6.5.1)")
)

// ParseResponseHead parses the response head at the start of b, the
// answer to a request whose method was HEAD if head is set. It returns
// the head's length, through the blank line, when b holds a whole head;
// (0, ErrIncomplete) when more bytes are needed (the caller bounds the
// head's size); otherwise an error: the response is not one to relay. h
// is reset first; its Fields slice is reused.
//
// A malformed head is refused as soon as the bytes that make it so have
// arrived, before the rest of it.
func ParseResponseHead(b []byte, h *ResponseHead, head bool) (int, error) {
	fields := h.Fields[:0]
	if cap(fields) > MaxFields {
		fields = nil // a rare head's many fields are not kept for the next
	}
	*h = ResponseHead{Fields: fields}
	i, err := h.parseStatusLine(b)
	if err != nil {
		return 0, err
	}
	var fr framing
	i, err = fieldLines(b, i, MaxResponseFields, &h.Fields, &fr, func(Field) error { return nil })
	if err != nil {
		return 0, responseError(err)
	}
	if err := h.frame(&fr, head); err != nil {
		return 0, err
	}
	return i, nil
}

// parseStatusLine parses "HTTP/1.x" SP 3DIGIT [ SP reason ] and the line
// end, and returns the index after it. Like net/http it takes more spaces
// before the code and any byte but LF in the reason, which nothing relays.
func (h *ResponseHead) parseStatusLine(b []byte) (int, error) {
	i := 0
	for ; i < len("HTTP/1.1"); i++ {
		if i == len(b) {
			return 0, ErrIncomplete
		}
		if !versionByte(i, b[i]) {
			return 0, errStatusLine
		}
	}
	if i == len(b) {
		return 0, ErrIncomplete
	}
	if b[i] != ' ' {
		return 0, errStatusLine
	}
	if b[5] != '1' {
		return 0, errRespVersion
	}
	h.Minor = int(b[7] - '0')
	for i < len(b) && b[i] == ' ' {
		i++
	}
	start := i
	for ; i < start+3; i++ {
		if i == len(b) {
			return 0, ErrIncomplete
		}
		if !isDigit(b[i]) {
			return 0, errStatusLine
		}
		h.Status = h.Status*10 + int(b[i]-'0')
	}
	// The code ends at a space or the line's end.
	switch {
	case i == len(b) || b[i] == '\r' && i+1 == len(b):
		return 0, ErrIncomplete
	case b[i] == '\r' && b[i+1] != '\n', b[i] != ' ' && b[i] != '\r' && b[i] != '\n':
		return 0, errStatusLine
	}
	for i < len(b) && b[i] != '\n' {
		i++
	}
	if i == len(b) {
		return 0, ErrIncomplete
	}
	end := i
	if b[end-1] == '\r' {
		end--
	}
	h.Text = b[start:end]
	return i + 1, nil
}

// frame decides the body's framing from the fields (RFC 9112 §6.3).
func (h *ResponseHead) frame(fr *framing, head bool) error {
	h.ContentLength = -1
	if fr.hasCL {
		// Read whatever else the head says, as net/http reads it: an
		// invalid length is a response a proxy must not relay (RFC 9112
		// §6.3, 5).
		n, ok := parseContentLength(fr.cl)
		if !ok {
			return errRespCL
		}
		h.ContentLength = n
	}
	switch {
	case fr.tes > 0 && h.Minor == 0:
		// net/http ignores it, and reads to the close or the length.
		return errRespTEOn10
	case fr.tes > 0 && !fr.chunked():
		return errRespTE
	case fr.tes > 0:
		h.Chunked = true
		// RFC 9112 §6.3: Transfer-Encoding overrides Content-Length, and
		// such a response "ought to be handled as an error": this
		// connection carries no other (net/http keeps it).
		h.Close = fr.hasCL
		if fr.framingTrailer {
			return errRespTrailer
		}
	}
	switch {
	case head:
		// The length a response to HEAD declares is the one a GET would
		// have had: net/http gives it too.
		h.NoBody = true
	case h.Status/100 == 1 || h.Status == 204 || h.Status == 304:
		h.NoBody, h.ContentLength = true, 0
	case h.Chunked:
		h.ContentLength = -1
	case h.ContentLength == 0:
		h.NoBody = true
	case h.ContentLength < 0:
		h.Close = true // the body ends with the connection
	}
	h.connClose = fr.conn.close
	h.Close = h.Close || fr.conn.close || h.Minor == 0 && !fr.conn.keepAlive
	return nil
}

// responseError words fieldLines' refusals, written for requests, for a
// response. None is a *gatehouse.Error: their kinds are a client's faults
// (400, 431), and an upstream's malformed response is a 502, which the
// proxy's classifier decides.
func responseError(err error) error {
	switch err {
	case ErrIncomplete:
		return err
	case errLineEnd:
		return errRespLineEnd
	case errObsFoldHead:
		return errRespObsFold
	case errFieldName:
		return errRespFieldName
	case errFieldValue:
		return errRespFieldValue
	case ErrTooManyFields:
		return errRespFields
	case errContentLengths:
		return errRespCLs
	}
	return errors.New("response head: " + gatehouse.ErrorMessage(err))
}

// Header returns h's fields as net/http's Response.Header has them, the
// framing fields excepted: canonical names, the values of a repeated name
// in order. As in net/http's, Transfer-Encoding is not in it
// (Response.TransferEncoding), nor are a chunked response's Trailer
// (Response.Trailer) and, where a body follows, its Content-Length; a
// repeated Content-Length is there once. As net/http does, it drops a
// Connection field that says close (in HTTP/1.1), and unlike net/http,
// the fields that it names too: they are hop-by-hop (RFC 9110 §7.6.1),
// and without the Connection field no caller could tell.
//
// hs is a copy of the head h was parsed from, b: names and values are
// parts of it. vals is where the values' slices are cut from, which the
// header keeps; with room for len(h.Fields) strings, the header costs its
// map alone, besides one string for each name neither canonical nor
// common.
func (h *ResponseHead) Header(b []byte, hs string, vals []string) http.Header {
	str := func(p []byte) string {
		off := cap(b) - cap(p) // p is a part of b
		return hs[off : off+len(p)]
	}
	if cap(vals) < len(h.Fields) {
		vals = make([]string, 0, len(h.Fields))
	}
	vals = vals[:0]
	hdr := make(http.Header, len(h.Fields))
	for _, f := range h.Fields {
		key, ok := commonKeys[string(f.Name)]
		if !ok {
			key = textproto.CanonicalMIMEHeaderKey(str(f.Name))
		}
		switch key {
		case "Transfer-Encoding":
			continue
		case "Content-Length":
			if h.Chunked && !h.NoBody || hdr[key] != nil {
				continue // overridden; or the same value again (framing)
			}
		case "Trailer":
			if h.Chunked {
				continue
			}
		}
		v := str(f.Value)
		if vs, ok := hdr[key]; ok {
			hdr[key] = append(vs, v) // a repeated name: rare
			continue
		}
		vals = append(vals, v)
		n := len(vals)
		hdr[key] = vals[n-1 : n : n]
	}
	if h.connClose && h.Minor >= 1 {
		for _, f := range h.Fields {
			if len(f.Name) == len("Connection") && equalFold(f.Name, "connection") {
				eachToken(f.Value, func(name []byte) {
					delete(hdr, textproto.CanonicalMIMEHeaderKey(string(name)))
				})
			}
		}
		delete(hdr, "Connection")
	}
	return hdr
}

// Trailer returns the trailer names h announces for its chunked body,
// as net/http's Response.Trailer has them before the body is read; nil
// for none.
func (h *ResponseHead) Trailer() http.Header {
	if !h.Chunked {
		return nil
	}
	return announcedTrailer(h.Fields)
}
