package h1

// This file parses request heads for gatehouse's own HTTP/1.1 engine
// (issue 14). The parser is a security boundary, so it is at least as
// strict as net/http's http.ReadRequest and as internal/serve/framing.go;
// where it is stricter, the differential fuzzer (diff_fuzz_test.go) lists
// the case and why.

import (
	"bytes"
	"errors"
	"unsafe"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/httpx"
)

// Head is one parsed request head. Its byte slices alias the buffer
// ParseHead was given: valid until that buffer is reused.
type Head struct {
	Method string  // the method; standard methods are constants (no allocation)
	Target []byte  // request-target as sent
	Minor  int     // HTTP/1.Minor: 0 or 1 (a later 1.x is read as 1.1)
	Fields []Field // header fields in order, as received (names as sent)
	// Host is the host the request is for: the authority of an
	// absolute-form target (RFC 9112 §3.2.2: the Host field is then
	// ignored, as net/http's Request.Host does), else the Host field's
	// value; nil when there is neither. It has passed httpx.ValidHost.
	Host []byte

	// Framing, decided by ParseHead (RFC 9112 §6): the body is chunked,
	// or ContentLength bytes long (0: none).
	Chunked       bool
	ContentLength int64
	// Close: the connection ends after this exchange (Connection: close,
	// or HTTP/1.0 without keep-alive).
	Close bool
	// Expect100: Expect: 100-continue (ignored on HTTP/1.0, as RFC 9110
	// §10.1.1 requires).
	Expect100 bool
	// Upgrade: the request asks for a protocol upgrade (Connection:
	// upgrade; ignored on HTTP/1.0, as RFC 9110 §7.8 requires).
	Upgrade bool

	// pathAt is where the path starts in Target: 0 in origin-form, after
	// the authority in absolute-form, -1 for asterisk- and authority-form.
	pathAt int
}

// Field is one header field line.
type Field struct{ Name, Value []byte }

// MaxFields is the most field lines a request head may have; more are
// 431, as headers over the limit (serve holds net/http's requests to it
// too, so both engines answer alike). It bounds what a connection's Head
// keeps (Fields is reused) to a few KiB however the head is shaped: a
// head of MaxHeaderBytes in three-byte lines would otherwise keep an
// array 16 times its size. Envoy (100), Apache (100) and HAProxy (101)
// have such a limit too.
const MaxFields = 128

// MaxResponseFields is the most field lines a response head may have. An
// upstream's valid answer may carry many more fields than a client's
// request (a Set-Cookie each), and refusing it is a 502: this only
// bounds the work of a hostile head, beside its size in bytes.
const MaxResponseFields = 10000

// ErrIncomplete is ParseHead's answer while the head has not all arrived.
var ErrIncomplete = errors.New("h1: incomplete request head")

// slash is the path of an absolute-form target without one.
var slash = []byte("/")

// OriginForm returns the target's path and query (RFC 9112 §3.2.1), which
// is what routes match and the upstream receives: for an absolute-form
// target "http://a.example/x?y" the path "/x" and the query "y". The path
// is "/" when an absolute-form target has none; query is nil when the
// target has no '?' (and empty, not nil, for a bare '?'). For "*" (OPTIONS)
// and an authority-form target (CONNECT) it returns the target and nil.
func (h *Head) OriginForm() (path, query []byte) {
	if h.pathAt < 0 {
		return h.Target, nil
	}
	path = h.Target[h.pathAt:]
	if q := bytes.IndexByte(path, '?'); q >= 0 {
		path, query = path[:q], path[q+1:]
	}
	if len(path) == 0 {
		path = slash
	}
	return path, query
}

// ParseHead parses the request head at the start of b (leading empty lines
// skipped as RFC 9112 §2.2 allows). It returns the head's length, through
// the blank line, when b holds a whole head; (0, ErrIncomplete) when more
// bytes are needed and len(b) < max; and otherwise an error that is a
// *gatehouse.Error whose code gives the contract's status: EINVALID (400)
// for anything malformed or ambiguous, EHEADERSTOOLARGE (431) for a head
// longer than max, ENOTIMPLEMENTED (501) for an unknown transfer coding,
// EEXPECTATION (417) for an expectation other than 100-continue, EVERSION
// (505) for a version other than HTTP/1.x. h is reset first; its
// Fields slice is reused (no allocation once grown).
//
// A malformed head is refused as soon as the bytes that make it so have
// arrived, before the rest of it.
func ParseHead(b []byte, h *Head, max int) (int, error) {
	*h = Head{Fields: h.Fields[:0]}
	p := b
	if len(p) > max {
		p = p[:max]
	}
	n, err := parseHead(p, h)
	if err == ErrIncomplete && len(b) >= max {
		return 0, HeadTooLarge(max)
	}
	return n, err
}

// HeadTooLarge is the refusal of a request head over max bytes (431):
// the fast engine's, and serve's for a head net/http read.
func HeadTooLarge(max int) error {
	return gatehouse.Errorf(gatehouse.EHEADERSTOOLARGE, "The request's head exceeds the limit of %d bytes.", max)
}

// Refusals. Their messages say what was wrong, for the problem document.
var (
	errRequestLine = gatehouse.Errorf(gatehouse.EINVALID,
		"The request line is malformed: it must be a method, a space, a request-target, a space and the HTTP version (RFC 9112 §3).")
	errVersion = gatehouse.Errorf(gatehouse.EINVALID,
		"The request line's HTTP version is malformed (RFC 9112 §2.3).")
	errVersionNotSupported = gatehouse.Errorf(gatehouse.EVERSION,
		"Only HTTP/1.0 and HTTP/1.1 are spoken on this connection.")
	errTarget = gatehouse.Errorf(gatehouse.EINVALID,
		"The request-target is malformed (RFC 9112 §3.2).")
	errLineEnd = gatehouse.Errorf(gatehouse.EINVALID,
		"A line of the request head has a CR that does not end it (RFC 9112 §2.2).")
	errObsFoldHead = gatehouse.Errorf(gatehouse.EINVALID,
		"A header field is continued on the next line (obsolete line folding), which is not accepted (RFC 9112 §5.2).")
	errFieldName = gatehouse.Errorf(gatehouse.EINVALID,
		"A header field's name is empty or not a token, or the colon is missing (RFC 9112 §5.1).")
	errFieldValue = gatehouse.Errorf(gatehouse.EINVALID,
		"A header field's value holds a control character (RFC 9110 §5.5).")
	errHostMissing = gatehouse.Errorf(gatehouse.EINVALID,
		"An HTTP/1.1 request must have a Host header field (RFC 9112 §3.2).")
	errHostTwice = gatehouse.Errorf(gatehouse.EINVALID,
		"The request has more than one Host header field (RFC 9112 §3.2).")
	ErrHostInvalid = gatehouse.Errorf(gatehouse.EINVALID,
		"The Host header is not a host name or IP address with an optional port from 1 to 65535.")
	ErrTooManyFields = gatehouse.Errorf(gatehouse.EHEADERSTOOLARGE,
		"The request has more than %d header fields.", MaxFields)
	errContentLength = gatehouse.Errorf(gatehouse.EINVALID,
		"Content-Length must be one non-negative decimal number (RFC 9110 §8.6).")
	errContentLengths = gatehouse.Errorf(gatehouse.EINVALID,
		"The request has Content-Length fields with different values (RFC 9110 §8.6).")
	errTEWithCL = gatehouse.Errorf(gatehouse.EINVALID,
		"The request has both Content-Length and Transfer-Encoding, which frame its body differently (RFC 9112 §6.1).")
	errTEOn10 = gatehouse.Errorf(gatehouse.EINVALID,
		"Transfer-Encoding is not defined for HTTP/1.0, so the request's body cannot be framed (RFC 9112 §6.1).")
	errTECoding = gatehouse.Errorf(gatehouse.ENOTIMPLEMENTED,
		"The only transfer coding accepted is a single \"chunked\" (RFC 9112 §6.1).")
	errTrailerName = gatehouse.Errorf(gatehouse.EINVALID,
		"The Trailer header announces Content-Length, Transfer-Encoding or Trailer, which frame a message and cannot come after its body (RFC 9110 §6.5.1).")
	errExpect = gatehouse.Errorf(gatehouse.EEXPECTATION,
		"The only expectation supported is 100-continue (RFC 9110 §10.1.1).")
)

// parseHead is ParseHead within the limit: ErrIncomplete when b ends
// before the head does.
func parseHead(b []byte, h *Head) (int, error) {
	i := 0
	// Empty lines before the request line (RFC 9112 §2.2), CRLF or LF.
	for {
		if i < len(b) && b[i] == '\n' {
			i++
		} else if i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n' {
			i += 2
		} else if i+1 == len(b) && b[i] == '\r' {
			return 0, ErrIncomplete
		} else {
			break
		}
	}

	// method SP
	start := i
	for i < len(b) && httpx.IsTokenByte(b[i]) {
		i++
	}
	if i == len(b) {
		return 0, ErrIncomplete
	}
	if b[i] != ' ' || i == start {
		return 0, errRequestLine
	}
	h.Method = method(b[start:i])
	i++

	// request-target SP: no space, control or DEL byte (RFC 9112 §3.2).
	start = i
	for i < len(b) && b[i] > ' ' && b[i] != 0x7f {
		i++
	}
	if i == len(b) {
		return 0, ErrIncomplete
	}
	if b[i] != ' ' || i == start {
		return 0, errRequestLine
	}
	h.Target = b[start:i]
	i++

	// HTTP-version, then the line's end: "HTTP/" DIGIT "." DIGIT, each
	// byte checked as it arrives.
	start = i
	for ; i < len(b) && b[i] != '\n'; i++ {
		if !versionByte(i-start, b[i]) {
			return 0, errVersion
		}
	}
	if i == len(b) {
		return 0, ErrIncomplete
	}
	v := b[start:i]
	if len(v) > 0 && v[len(v)-1] == '\r' {
		v = v[:len(v)-1]
	}
	if len(v) != len("HTTP/1.1") {
		return 0, errVersion
	}
	if v[5] != '1' {
		return 0, errVersionNotSupported
	}
	// A later HTTP/1.x is processed as 1.1, the highest minor version
	// gatehouse implements (RFC 9110 §2.5), as net/http serves it.
	h.Minor = min(int(v[7]-'0'), 1)
	i++

	authority, err := h.parseTarget()
	if err != nil {
		return 0, err
	}

	var (
		fr                    framing
		hosts                 int
		hostField             []byte
		expect, expectUnknown bool
	)
	i, err = fieldLines(b, i, MaxFields, &h.Fields, &fr, func(f Field) error {
		name, value := f.Name, f.Value
		switch len(name) {
		case len("Host"):
			if equalFold(name, "host") {
				if hosts++; hosts > 1 {
					return errHostTwice
				}
				hostField = value
			}
		case len("Expect"):
			if equalFold(name, "expect") {
				// A value of only commas asks for nothing known:
				// net/http answers it 417 too.
				expectUnknown = expectUnknown || len(value) > 0 && len(bytes.Trim(value, ", \t")) == 0
				eachToken(value, func(t []byte) {
					if equalFold(t, "100-continue") {
						expect = true
					} else {
						expectUnknown = true
					}
				})
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}

	switch {
	case hosts == 0 && h.Minor == 1:
		return 0, errHostMissing
	case hosts == 1 && !httpx.ValidHost(unsafeString(hostField)):
		return 0, ErrHostInvalid
	case authority != nil:
		h.Host = authority
	case hosts == 1:
		h.Host = hostField
	}

	switch {
	case fr.tes > 0 && fr.hasCL:
		// framing.go's decision, stricter than net/http (which drops the
		// length): a peer that framed it by the length disagrees.
		return 0, errTEWithCL
	case fr.tes > 0 && h.Minor == 0:
		// net/http ignores it and reads the body as the next request.
		return 0, errTEOn10
	case fr.tes > 0:
		if !fr.chunked() {
			return 0, errTECoding
		}
		h.Chunked = true
	case fr.hasCL:
		n, ok := parseContentLength(fr.cl)
		if !ok {
			return 0, errContentLength
		}
		h.ContentLength = n
	}

	if h.Chunked && fr.framingTrailer {
		return 0, errTrailerName
	}
	if expectUnknown {
		return 0, errExpect
	}
	h.Expect100 = expect && h.Minor == 1
	h.Close = fr.conn.close || h.Minor == 0 && !fr.conn.keepAlive
	// RFC 9110 §7.8: an Upgrade in an HTTP/1.0 request is ignored.
	h.Upgrade = fr.conn.upgrade && h.Minor == 1
	return i, nil
}

// fieldLines parses the field lines at b[i:] and the empty line that ends
// the head (RFC 9112 §5), for requests and responses alike. It appends
// each field to *fields (at most max), notes the framing fields in
// fr, and passes each to see, whose error ends the parse. It returns the
// index after the head, or ErrIncomplete when b ends first.
func fieldLines(b []byte, i int, max int, fields *[]Field, fr *framing, see func(Field) error) (int, error) {
	for {
		if i == len(b) {
			return 0, ErrIncomplete
		}
		switch b[i] {
		case '\n':
			return i + 1, nil
		case '\r':
			if i+1 == len(b) {
				return 0, ErrIncomplete
			}
			if b[i+1] != '\n' {
				return 0, errLineEnd
			}
			return i + 2, nil
		case ' ', '\t':
			// An obsolete line folding, or whitespace before the first
			// field: net/http joins the former and refuses the latter;
			// both are refused, so no reading of the head depends on it.
			return 0, errObsFoldHead
		}

		f, next, err := parseField(b, i)
		if err != nil {
			return 0, err
		}
		i = next
		if len(*fields) == max {
			return 0, ErrTooManyFields
		}
		*fields = append(*fields, f)
		if err := fr.add(f); err != nil {
			return 0, err
		}
		if err := see(f); err != nil {
			return 0, err
		}
	}
}

// framing is what a head's fields say about how its message is framed
// and whether the connection lasts (RFC 9112 §6, §9.6): one reading of
// them for requests and responses.
type framing struct {
	tes   int    // Transfer-Encoding fields
	te    []byte // the last one's value
	hasCL bool
	cl    []byte // Content-Length's value (all of them are equal)
	conn  connTokens
	// framingTrailer: a Trailer field announces Content-Length,
	// Transfer-Encoding or Trailer, which net/http refuses for a chunked
	// message (transfer.go, fixTrailer).
	framingTrailer bool
}

// add notes f if it is a framing field. A Content-Length unlike one
// before is errContentLengths: identical duplicates are one length, as
// net/http and RFC 9110 §8.6 allow; any difference is ambiguous.
func (fr *framing) add(f Field) error {
	name, value := f.Name, f.Value
	switch len(name) {
	case len("Trailer"):
		if equalFold(name, "trailer") {
			eachToken(value, func(t []byte) {
				fr.framingTrailer = fr.framingTrailer || equalFold(t, "content-length") ||
					equalFold(t, "transfer-encoding") || equalFold(t, "trailer")
			})
		}
	case len("Connection"):
		if equalFold(name, "connection") {
			fr.conn.add(value)
		}
	case len("Content-Length"):
		if equalFold(name, "content-length") {
			if fr.hasCL && !bytes.Equal(fr.cl, value) {
				return errContentLengths
			}
			fr.hasCL, fr.cl = true, value
		}
	case len("Transfer-Encoding"):
		if equalFold(name, "transfer-encoding") {
			fr.tes++
			fr.te = value
		}
	}
	return nil
}

// chunked reports whether the Transfer-Encoding is the one net/http
// accepts: a single field that says chunked.
func (fr *framing) chunked() bool { return fr.tes == 1 && equalFold(fr.te, "chunked") }

// parseField parses the field line at b[i:] (RFC 9112 §5: field-name ":"
// OWS field-value OWS, then CRLF or LF) and returns the index after it, or
// ErrIncomplete when b ends first.
func parseField(b []byte, i int) (f Field, next int, err error) {
	start := i
	for i < len(b) && httpx.IsTokenByte(b[i]) {
		i++
	}
	if i == len(b) {
		return f, 0, ErrIncomplete
	}
	if b[i] != ':' || i == start {
		return f, 0, errFieldName
	}
	f.Name = b[start:i]
	i++
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	start = i
	for i < len(b) && !badValueByte[b[i]] {
		i++
	}
	if i == len(b) {
		return f, 0, ErrIncomplete
	}
	end := i
	switch b[i] {
	case '\n':
	case '\r':
		if i+1 == len(b) {
			return f, 0, ErrIncomplete
		}
		if b[i+1] != '\n' {
			return f, 0, errFieldValue
		}
		i++
	default:
		return f, 0, errFieldValue
	}
	for end > start && (b[end-1] == ' ' || b[end-1] == '\t') {
		end--
	}
	f.Value = b[start:end]
	return f, i + 1, nil
}

// parseTarget checks h.Target's form (RFC 9112 §3.2) and sets h.pathAt;
// for an absolute-form target it returns the authority.
func (h *Head) parseTarget() (authority []byte, err error) {
	t := h.Target
	switch {
	case t[0] == '/':
		h.pathAt = 0
	case len(t) == 1 && t[0] == '*':
		// asterisk-form is for OPTIONS alone (RFC 9112 §3.2.4).
		if h.Method != "OPTIONS" {
			return nil, errTarget
		}
		h.pathAt = -1
		return nil, nil
	case h.Method == "CONNECT":
		// authority-form, for CONNECT alone (RFC 9112 §3.2.3), which
		// gatehouse does not serve (501, decided after parsing).
		if !httpx.ValidHost(unsafeString(t)) {
			return nil, errTarget
		}
		h.pathAt = -1
		return t, nil
	default:
		// absolute-form (RFC 9112 §3.2.2): an http or https URI with a
		// host and no userinfo (RFC 9110 §4.2.4).
		var rest []byte
		switch {
		case len(t) > len("http://") && equalFold(t[:len("http://")], "http://"):
			rest = t[len("http://"):]
		case len(t) > len("https://") && equalFold(t[:len("https://")], "https://"):
			rest = t[len("https://"):]
		default:
			return nil, errTarget
		}
		a := len(rest)
		if j := bytes.IndexAny(rest, "/?"); j >= 0 {
			a = j
		}
		authority = rest[:a]
		if len(authority) == 0 || !httpx.ValidHost(unsafeString(authority)) {
			return nil, errTarget
		}
		h.pathAt = len(t) - len(rest) + a
	}
	// The path's percent-encodings must be whole (net/http refuses the
	// request otherwise), and a fragment has no place in a request.
	inPath := true
	for i := h.pathAt; i < len(t); i++ {
		switch t[i] {
		case '?':
			inPath = false
		case '#':
			return nil, errTarget
		case '%':
			if inPath && (i+2 >= len(t) || httpx.Unhex(t[i+1]) < 0 || httpx.Unhex(t[i+2]) < 0) {
				return nil, errTarget
			}
		}
	}
	return authority, nil
}

// versionByte reports whether c may be byte j of "HTTP/" DIGIT "." DIGIT
// [CR].
func versionByte(j int, c byte) bool {
	switch {
	case j < len("HTTP/"):
		return c == "HTTP/"[j]
	case j == 5 || j == 7:
		return isDigit(c)
	case j == 6:
		return c == '.'
	case j == 8:
		return c == '\r'
	}
	return false
}

// method interns the standard methods, so that they cost no allocation.
func method(m []byte) string {
	switch string(m) {
	case "GET":
		return "GET"
	case "HEAD":
		return "HEAD"
	case "POST":
		return "POST"
	case "PUT":
		return "PUT"
	case "PATCH":
		return "PATCH"
	case "DELETE":
		return "DELETE"
	case "OPTIONS":
		return "OPTIONS"
	case "TRACE":
		return "TRACE"
	case "CONNECT":
		return "CONNECT"
	}
	return string(m)
}

// badValueByte marks the bytes that end or spoil a field value: every
// control byte but HTAB, and DEL (RFC 9110 §5.5; obs-text is allowed, as
// net/http allows it). CR and LF are among them, so the value loop stops
// at the line's end.
var badValueByte = func() (t [256]bool) {
	for c := 0; c < ' '; c++ {
		t[c] = c != '\t'
	}
	t[0x7f] = true
	return t
}()

// parseContentLength reads 1*DIGIT as net/http does (no sign, no space
// inside, at most 2^63-1).
func parseContentLength(v []byte) (int64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if !isDigit(c) || n > (1<<63-1-int64(c-'0'))/10 {
			return 0, false // not a digit, or past 2^63-1
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// connTokens is what the Connection fields list.
type connTokens struct{ close, keepAlive, upgrade bool }

func (c *connTokens) add(v []byte) {
	eachToken(v, func(t []byte) {
		switch {
		case equalFold(t, "close"):
			c.close = true
		case equalFold(t, "keep-alive"):
			c.keepAlive = true
		case equalFold(t, "upgrade"):
			c.upgrade = true
		}
	})
}

// eachToken calls f with each element of a comma-separated field value
// (RFC 9110 §5.6.1), trimmed of OWS, empty ones skipped.
func eachToken(v []byte, f func([]byte)) {
	for len(v) > 0 {
		e := v
		if j := bytes.IndexByte(v, ','); j >= 0 {
			e, v = v[:j], v[j+1:]
		} else {
			v = nil
		}
		for len(e) > 0 && (e[0] == ' ' || e[0] == '\t') {
			e = e[1:]
		}
		for len(e) > 0 && (e[len(e)-1] == ' ' || e[len(e)-1] == '\t') {
			e = e[:len(e)-1]
		}
		if len(e) > 0 {
			f(e)
		}
	}
}

// equalFold reports whether b equals the lower-case ASCII s, ignoring case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// unsafeString views b as a string without copying, for the checks that
// take strings and keep nothing (httpx.ValidHost): the request path stays
// free of allocations.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
