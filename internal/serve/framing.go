package serve

import (
	"bytes"
	"errors"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/httpx"
)

// framing follows the HTTP/1 requests a client sends on one connection,
// head and body, as the bytes reach net/http, to find the requests whose
// framing net/http accepts but a handler can no longer see:
//
//   - Content-Length together with Transfer-Encoding: net/http drops the
//     length and reads chunks, and keeps the connection; RFC 9112 §6.1
//     allows that only if the connection is closed after the response,
//     because a peer that framed it by the length disagrees about where
//     the next request starts (request smuggling).
//
//   - Transfer-Encoding on an HTTP/1.0 request: net/http ignores it, reads
//     no body, and parses the body as the next request.
//
//   - A header line continued on the next (obsolete line folding, a line
//     that starts with SP or HTAB): net/http joins it to the field before,
//     so "Content-Length:\r\n 5" is a length to net/http and to no one
//     who reads lines as fields.
//
// net/http deletes the framing fields before a handler runs, so only the
// bytes tell. Such a request is refused with 400 and the connection
// closed, as nginx does, before net/http reads any of it as a complete
// request.
//
// It reads no more than it must to stay in step with net/http: the version
// from the request line, Content-Length and Transfer-Encoding from the
// header fields, and body lengths and chunk sizes to skip bodies. What
// net/http itself refuses (malformed lengths, unknown codings, bad chunks)
// net/http answers; framing then no longer knows where the next request
// starts (lost), and it fails safe: no byte after the one that lost it
// reaches net/http, so whatever net/http made of the request, it reads no
// other from the connection (see errLost). Where framing is laxer than
// net/http (bare LF and stray CR in chunk lines, over-long lines, too much
// chunk overhead) net/http fails the body, and a body that fails makes
// net/http close the connection after the response.
type framing struct {
	state uint8
	// tail holds the last 8 bytes of the request line: its version.
	tail   uint64
	http10 bool
	// name is the lower-cased start of the current field name.
	name  [len("transfer-encoding")]byte
	nameN int // len(name)+1 when longer than any name looked for
	field uint8
	// What the head declared.
	hasCL, clBad, clEnded, clDigits bool
	cl, clField                     int64
	teFields                        int
	te                              [len("chunked") + 1]byte
	teN                             int
	teTrailingSpace                 bool
	// remain is what is left of the body, or of the current chunk.
	remain    int64
	sizeDigit bool
	crBad     bool // the byte after chunk data was not CR
	// headEnded: the current request's head reached net/http complete
	// (and was counted), so a loss is inside that request.
	headEnded bool
}

const (
	fStart        = iota // before a request line, skipping CR and LF
	fRequestLine         // in the request line
	fLineStart           // at the start of a header line
	fName                // in a field name
	fValue               // in a field value
	fBody                // in a body of known length
	fChunkSize           // in a chunk-size line
	fChunkExt            // in a chunk extension, up to the line's end
	fChunkBad            // in a chunk-size line net/http refuses, up to its end
	fChunkData           // in chunk data
	fChunkCR             // after chunk data, expecting CR
	fChunkLF             // expecting LF
	fTrailerStart        // at the start of a trailer line
	fTrailer             // in a trailer line
	fLost                // no longer following the connection
)

// errLost is what feed returns when framing can no longer tell where the
// next request starts. Unlike a refusal it has no problem of its own: the
// bytes up to the loss reach net/http, which answers them as it does (a
// 400 for a malformed head, an error to the handler for a malformed body),
// and none after it do, so the response to the current request is the
// connection's last.
var errLost = errors.New("lost track of the request framing")

// errObsFold refuses a folded header line.
var errObsFold = gatehouse.Errorf(gatehouse.EINVALID,
	"A header field is continued on the next line (obsolete line folding), which is not accepted (RFC 9112 §5.2).")

const (
	fieldOther = iota
	fieldCL
	fieldTE
)

// http10Tail is "HTTP/1.0" as the last 8 bytes of tail.
const http10Tail = uint64('H')<<56 | uint64('T')<<48 | uint64('T')<<40 | uint64('P')<<32 |
	uint64('/')<<24 | uint64('1')<<16 | uint64('.')<<8 | uint64('0')

// inHead reports whether part of a request head has come and its end not
// yet.
func (f *framing) inHead() bool {
	return f.state == fRequestLine || f.state == fLineStart || f.state == fName || f.state == fValue
}

// feed follows p, the next bytes the client sent. It returns how many
// complete request heads p ends, and, when it stops following, the offset
// of the first byte that must not reach net/http (nor any after it) and
// why: a refusal's problem, or errLost. It is not fed after that.
func (f *framing) feed(p []byte) (heads, cut int, stop error) {
	for i := 0; i < len(p); i++ {
		b := p[i]
		switch f.state {
		case fStart:
			if b == '\r' || b == '\n' {
				continue // net/http skips blank lines before a request
			}
			*f = framing{state: fRequestLine}
			f.tail = uint64(b)
		case fRequestLine:
			switch b {
			case '\n':
				f.http10 = f.tail == http10Tail
				f.state = fLineStart
			case '\r':
			default:
				f.tail = f.tail<<8 | uint64(b)
			}
		case fLineStart:
			switch b {
			case '\r':
			case '\n':
				if err := f.endHead(); err != nil {
					return heads, i, err
				}
				heads++
				if f.state == fLost {
					return heads, i + 1, errLost
				}
			case ' ', '\t':
				// An obsolete line folding, which net/http joins to the
				// field before (and refuses on the first line): refused
				// for every field, not only the framing ones, so no
				// reading of the head depends on it.
				return heads, i, errObsFold
			default:
				f.nameN, f.field = 0, fieldOther
				f.addName(b)
				f.state = fName
			}
		case fName:
			switch b {
			case ':':
				f.startValue()
				f.state = fValue
			case '\n':
				// net/http refuses a line without a colon once it has
				// the whole line.
				f.state = fLost
				return heads, i + 1, errLost
			default:
				f.addName(b)
			}
		case fValue:
			if f.field == fieldOther {
				// Only the line's end matters in a field framing does
				// not read: jump to it rather than visit every byte.
				j := bytes.IndexByte(p[i:], '\n')
				if j < 0 {
					i = len(p)
					continue
				}
				i += j
			} else if b != '\n' {
				f.addValue(b)
				continue
			}
			f.endValue()
			f.state = fLineStart
		case fBody:
			i = f.skip(p, i, fStart)
		case fChunkSize:
			switch d := httpx.Unhex(b); {
			case d >= 0:
				if f.remain >= 1<<59 {
					// The digit would shift the size past 63 bits.
					f.state = fChunkBad
					continue
				}
				f.remain = f.remain<<4 | int64(d)
				f.sizeDigit = true
			case b == ';' || b == ' ' || b == '\t':
				f.state = fChunkExt
			case b == '\r':
			case b == '\n':
				if f.endChunkSize(); f.state == fLost {
					return heads, i + 1, errLost
				}
			default:
				f.state = fChunkBad
			}
		case fChunkExt:
			if b == '\n' {
				if f.endChunkSize(); f.state == fLost {
					return heads, i + 1, errLost
				}
			}
		case fChunkBad:
			// net/http reads the whole line before it parses the size:
			// pass it whole, so that net/http, not a cut, fails the body.
			if b == '\n' {
				f.state = fLost
				return heads, i + 1, errLost
			}
		case fChunkData:
			i = f.skip(p, i, fChunkCR)
		case fChunkCR:
			// net/http reads both bytes before it checks them.
			f.state, f.crBad = fChunkLF, b != '\r'
		case fChunkLF:
			f.state, f.remain, f.sizeDigit = fChunkSize, 0, false
			if f.crBad || b != '\n' {
				f.state = fLost
				return heads, i + 1, errLost
			}
		case fTrailerStart:
			switch b {
			case '\r':
			case '\n':
				f.state = fStart
			default:
				f.state = fTrailer
			}
		case fTrailer:
			if b == '\n' {
				f.state = fTrailerStart
			}
		case fLost:
			return heads, i, errLost // not reached: not fed after a stop
		}
	}
	return heads, 0, nil
}

// skip passes over the body bytes from p[i] on, at most f.remain, moving to
// state next at their end, and returns the index of the last one.
func (f *framing) skip(p []byte, i int, next uint8) int {
	n := min(int64(len(p)-i), f.remain)
	f.remain -= n
	if f.remain == 0 {
		f.state = next
	}
	return i + int(n) - 1
}

func (f *framing) addName(b byte) {
	if f.nameN < len(f.name) {
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		f.name[f.nameN] = b
	}
	f.nameN = min(f.nameN+1, len(f.name)+1)
}

func (f *framing) startValue() {
	f.field = fieldOther
	switch string(f.name[:min(f.nameN, len(f.name))]) {
	case "content-length":
		if f.nameN == len("content-length") {
			f.field = fieldCL
			f.clField, f.clDigits, f.clEnded = 0, false, false
		}
	case "transfer-encoding":
		if f.nameN == len("transfer-encoding") {
			f.field = fieldTE
			f.teFields++
			f.teN, f.teTrailingSpace = 0, false
		}
	}
}

func (f *framing) addValue(b byte) {
	switch f.field {
	case fieldCL:
		switch {
		case b == ' ' || b == '\t' || b == '\r':
			f.clEnded = f.clDigits
		case '0' <= b && b <= '9' && !f.clEnded && f.clField < 1<<59:
			f.clField = f.clField*10 + int64(b-'0')
			f.clDigits = true
		default:
			f.clBad = true
		}
	case fieldTE:
		switch {
		case b == ' ' || b == '\t' || b == '\r':
			f.teTrailingSpace = f.teN > 0
		case f.teTrailingSpace || f.teN >= len(f.te):
			f.teN = len(f.te) // not "chunked"
		default:
			if 'A' <= b && b <= 'Z' {
				b += 'a' - 'A'
			}
			f.te[f.teN] = b
			f.teN++
		}
	}
}

func (f *framing) endValue() {
	if f.field != fieldCL {
		return
	}
	if !f.clDigits || f.hasCL && f.cl != f.clField {
		f.clBad = true
	}
	f.hasCL, f.cl = true, f.clField
}

// endHead decides the body that follows a complete head, or refuses it.
func (f *framing) endHead() error {
	switch {
	case f.teFields > 0 && f.hasCL:
		return gatehouse.Errorf(gatehouse.EINVALID,
			"The request has both Content-Length and Transfer-Encoding, which frame its body differently (RFC 9112 §6.1).")
	case f.teFields > 0 && f.http10:
		return gatehouse.Errorf(gatehouse.EINVALID,
			"Transfer-Encoding is not defined for HTTP/1.0, so the request's body cannot be framed (RFC 9112 §6.1).")
	}
	f.headEnded = true
	switch {
	case f.teFields > 0:
		f.state = fLost // net/http answers 501 to anything but one "chunked"
		if f.teFields == 1 && string(f.te[:f.teN]) == "chunked" {
			f.state, f.remain, f.sizeDigit = fChunkSize, 0, false
		}
	case f.hasCL && f.clBad:
		f.state = fLost // net/http refuses it
	case f.hasCL && f.cl > 0:
		f.state, f.remain = fBody, f.cl
	default:
		f.state = fStart
	}
	return nil
}

func (f *framing) endChunkSize() {
	switch {
	case !f.sizeDigit:
		f.state = fLost
	case f.remain == 0:
		f.state = fTrailerStart
	default:
		f.state = fChunkData
	}
}
